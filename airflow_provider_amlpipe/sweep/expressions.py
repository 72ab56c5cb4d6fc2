"""AML's parameter expressions (``choice``, ``uniform``, ``loguniform``, ...) on Optuna distributions.

Each expression names the distribution Optuna samples (:meth:`Expression.distribution`) and how a
sampled value becomes the hyperparameter the trial gets (:meth:`Expression.value`), with AML's
documented meaning:

=====================================  ===========================================================
``choice(*options)``                    one of the options
``randint(upper)``                      an integer in ``[0, upper)``
``uniform(low, high)``                  uniform in ``[low, high]``
``quniform(low, high, q)``              ``round(uniform(low, high) / q) * q``
``loguniform(low, high)``               ``exp(uniform(low, high))``
``qloguniform(low, high, q)``           ``round(exp(uniform(low, high)) / q) * q``
``normal(mu, sigma)``                   normally distributed
``qnormal(mu, sigma, q)``               ``round(normal(mu, sigma) / q) * q``
``lognormal(mu, sigma)``                ``exp(normal(mu, sigma))``
``qlognormal(mu, sigma, q)``            ``round(exp(normal(mu, sigma)) / q) * q``
=====================================  ===========================================================

Optuna's distributions are bounded, so the normal family is sampled as a quantile ``u`` in
``(0, 1)`` (a uniform Optuna parameter) mapped through the normal's inverse CDF: the trial's value is
exactly normally distributed, and Optuna still records and models the parameter it sampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from airflow_provider_amlpipe.errors import ConfigurationError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

#: The quantile range the normal family is sampled in (its ends would map to infinities).
_QUANTILE_EPS = 1e-12
Choice = str | int | float | bool | None


@dataclass(frozen=True)
class Expression:
    """One hyperparameter's distribution, as AML writes it."""

    kind: str
    args: tuple[Any, ...]

    @property
    def continuous(self) -> bool:
        """Whether the expression is not a ``choice`` (grid sampling takes only choices)."""
        return self.kind != "choice"

    def distribution(self) -> BaseDistribution:
        """The distribution Optuna samples for this expression."""
        # imported here: the expressions are checked when the DAG is parsed, Optuna is needed once a sweep runs
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        kind, a = self.kind, self.args
        if kind == "choice":
            return CategoricalDistribution(a)
        if kind == "randint":
            return IntDistribution(0, a[0] - 1)
        if kind in ("uniform", "quniform"):
            return FloatDistribution(a[0], a[1])
        if kind in ("loguniform", "qloguniform"):
            return FloatDistribution(math.exp(a[0]), math.exp(a[1]), log=True)
        return FloatDistribution(_QUANTILE_EPS, 1 - _QUANTILE_EPS)  # the normal family: a quantile

    def value(self, sampled: Any) -> Any:
        """The hyperparameter for the value Optuna sampled from :meth:`distribution`."""
        kind, a = self.kind, self.args
        if kind in ("choice", "randint", "uniform", "loguniform"):
            return sampled
        if kind in ("quniform", "qloguniform"):
            return _quantize(sampled, a[2])
        x = NormalDist(a[0], a[1]).inv_cdf(sampled)
        if kind.endswith("lognormal"):
            x = math.exp(x)
        return _quantize(x, a[2]) if kind.startswith("q") else x

    def to_json(self) -> list[Any]:
        """AML's own encoding, ``[kind, [args]]`` (what ``azureml.train.hyperdrive`` produced)."""
        return [self.kind, list(self.args)]

    def __repr__(self) -> str:
        return f"{self.kind}({', '.join(map(repr, self.args))})"


def _quantize(value: float, q: float) -> float:
    # AML rounds to a multiple of q; an integral q gives integral values, as a script expects of sizes.
    rounded = round(value / q) * q
    return float(rounded) if not float(q).is_integer() else float(int(rounded))


def _number(kind: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(
            f"{kind}({name})", f"expected a finite number, got {value!r}", f"pass a number as {name}"
        )
    return float(value)


def choice(*options: Any) -> Expression:
    """One of ``options``: ``choice(25, 50, 100)``, ``choice([25, 50, 100])`` or ``choice(range(1, 5))``."""
    values: list[Any] = list(options)
    if len(options) == 1 and isinstance(options[0], (list, tuple, range)):
        values = list(options[0])
    if not values:
        raise ConfigurationError("choice()", "no options given", "pass the options, such as choice(25, 50, 100)")
    for value in values:
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ConfigurationError(
                "choice()",
                f"option {value!r} is {type(value).__name__}; options become command-line arguments",
                "use strings, numbers, booleans or None",
            )
    if len(set(map(repr, values))) != len(values):
        raise ConfigurationError("choice()", f"options repeat: {values!r}", "list every option once")
    return Expression("choice", tuple(values))


def randint(upper: int) -> Expression:
    """An integer in ``[0, upper)``."""
    if isinstance(upper, bool) or not isinstance(upper, int) or upper < 1:
        raise ConfigurationError("randint(upper)", f"expected a positive integer, got {upper!r}", "pass randint(10)")
    return Expression("randint", (upper,))


def _bounded(kind: str, low: float, high: float, q: float | None = None) -> Expression:
    lo, hi = _number(kind, "low", low), _number(kind, "high", high)
    if lo >= hi:
        raise ConfigurationError(f"{kind}(low, high)", f"low {lo:g} is not below high {hi:g}", "swap or widen them")
    if q is None:
        return Expression(kind, (lo, hi))
    return Expression(kind, (lo, hi, _quantum(kind, q)))


def _quantum(kind: str, q: object) -> float:
    value = _number(kind, "q", q)
    if value <= 0:
        raise ConfigurationError(f"{kind}(q)", f"q must be positive, got {value:g}", "pass a step such as q=1")
    return value


def _normal(kind: str, mu: float, sigma: float, q: float | None = None) -> Expression:
    m, s = _number(kind, "mu", mu), _number(kind, "sigma", sigma)
    if s <= 0:
        raise ConfigurationError(f"{kind}(sigma)", f"sigma must be positive, got {s:g}", "pass a positive sigma")
    return Expression(kind, (m, s) if q is None else (m, s, _quantum(kind, q)))


def uniform(min_value: float, max_value: float) -> Expression:
    """Uniform in ``[min_value, max_value]``."""
    return _bounded("uniform", min_value, max_value)


def quniform(min_value: float, max_value: float, q: float) -> Expression:
    """``round(uniform(min_value, max_value) / q) * q``."""
    return _bounded("quniform", min_value, max_value, q)


def loguniform(min_value: float, max_value: float) -> Expression:
    """``exp(uniform(min_value, max_value))``: the bounds are natural logarithms, as in AML."""
    return _bounded("loguniform", min_value, max_value)


def qloguniform(min_value: float, max_value: float, q: float) -> Expression:
    """``round(exp(uniform(min_value, max_value)) / q) * q``."""
    return _bounded("qloguniform", min_value, max_value, q)


def normal(mu: float, sigma: float) -> Expression:
    """Normally distributed with mean ``mu`` and standard deviation ``sigma``."""
    return _normal("normal", mu, sigma)


def qnormal(mu: float, sigma: float, q: float) -> Expression:
    """``round(normal(mu, sigma) / q) * q``."""
    return _normal("qnormal", mu, sigma, q)


def lognormal(mu: float, sigma: float) -> Expression:
    """``exp(normal(mu, sigma))``."""
    return _normal("lognormal", mu, sigma)


def qlognormal(mu: float, sigma: float, q: float) -> Expression:
    """``round(exp(normal(mu, sigma)) / q) * q``."""
    return _normal("qlognormal", mu, sigma, q)


_FACTORIES = {
    "choice": choice,
    "randint": randint,
    "uniform": uniform,
    "quniform": quniform,
    "loguniform": loguniform,
    "qloguniform": qloguniform,
    "normal": normal,
    "qnormal": qnormal,
    "lognormal": lognormal,
    "qlognormal": qlognormal,
}
KINDS = tuple(_FACTORIES)


def parse_expression(field: str, value: object) -> Expression:
    """An :class:`Expression`, also from AML's JSON form ``["choice", [[25, 50]]]``; anything else is refused."""
    if isinstance(value, Expression):
        return value
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], (list, tuple))
    ):
        kind, args = value
        if kind in _FACTORIES:
            try:
                return _FACTORIES[kind](*args)
            except TypeError as exc:
                raise ConfigurationError(field, f"{kind}{tuple(args)!r}: {exc}", f"see {kind}()'s arguments") from None
        raise ConfigurationError(field, f"unknown parameter expression {kind!r}", f"use one of {', '.join(KINDS)}")
    raise ConfigurationError(
        field,
        f"{value!r} is not a parameter expression",
        f"use one of {', '.join(k + '(...)' for k in KINDS)} from airflow_provider_amlpipe.sweep",
    )


def check_space(field: str, space: object) -> dict[str, Expression]:
    """A parameter space: a non-empty dict of hyperparameter name -> expression."""
    if not isinstance(space, dict) or not space:
        raise ConfigurationError(
            field,
            f"expected a non-empty dict of name -> parameter expression, got {space!r}",
            "pass {'--learning-rate': loguniform(-6, -1), '--batch-size': choice(25, 50, 100)}",
        )
    checked: dict[str, Expression] = {}
    for name, expression in space.items():
        if not isinstance(name, str) or not name.strip("-") or any(c.isspace() for c in name):
            raise ConfigurationError(
                field, f"hyperparameter name {name!r} is not a command-line flag name", "use names like '--batch-size'"
            )
        checked[name] = parse_expression(f"{field}[{name!r}]", expression)
    flags = [flag(n) for n in checked]
    if len(set(flags)) != len(flags):
        raise ConfigurationError(field, f"two names give the same flag: {sorted(checked)}", "name each once")
    return checked


def flag(name: str) -> str:
    """The command-line flag a hyperparameter is passed as: the name itself when it starts with '-',
    else ``--name`` (AML passes ``--name value``)."""
    return name if name.startswith("-") else f"--{name}"


def argument_text(value: Any) -> str:
    """A hyperparameter value as a command-line argument (``repr`` of floats keeps every digit)."""
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def grid_size(space: dict[str, Expression]) -> int:
    """Number of points of a grid over choices."""
    size = 1
    for expression in space.values():
        size *= len(expression.args)
    return size
