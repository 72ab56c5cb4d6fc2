"""AML's sampling methods over a parameter space, each backed by an Optuna sampler.

=================================  =====================================  ===========================
AML                                 Optuna sampler                         expressions allowed
=================================  =====================================  ===========================
``RandomParameterSampling``         ``RandomSampler``                      all
``GridParameterSampling``           ``GridSampler``                        ``choice`` only
``BayesianParameterSampling``       ``TPESampler`` (constant liar)         ``choice``, ``uniform``,
                                                                           ``quniform``
=================================  =====================================  ===========================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.sweep.expressions import Expression, check_space, flag, grid_size

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler

#: AML's limits on a sweep's run counts.
MAX_TOTAL_RUNS = 1000


@dataclass
class ParameterSampling:
    """A parameter space and how to sample it (use one of the three subclasses)."""

    parameter_space: dict[str, Any]
    #: Seeds the Optuna sampler; ``None`` derives one from the sweep, so a rerun samples the same trials.
    seed: int | None = None
    method: ClassVar[str] = ""
    allowed: ClassVar[tuple[str, ...] | None] = None
    space: dict[str, Expression] = field(init=False)

    def __post_init__(self) -> None:
        name = type(self).__name__
        self.space = check_space(f"{name}.parameter_space", self.parameter_space)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigurationError(f"{name}.seed", f"expected an integer, got {self.seed!r}", "pass seed=42")
        if self.allowed is not None:
            for hp, expression in self.space.items():
                if expression.kind not in self.allowed:
                    raise ConfigurationError(
                        f"{name}.parameter_space[{hp!r}]",
                        f"{expression!r}: {self.method} sampling supports only {', '.join(self.allowed)}",
                        self._fix(),
                    )

    def _fix(self) -> str:
        return "use RandomParameterSampling for other distributions"

    def identity(self) -> dict[str, Any]:
        """What defines the sampling (fingerprinted)."""
        return {
            "method": self.method,
            "space": {name: e.to_json() for name, e in sorted(self.space.items())},
            "seed": self.seed,
        }

    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: e.distribution() for name, e in self.space.items()}

    def values(self, sampled: dict[str, Any]) -> dict[str, Any]:
        """The hyperparameters for the values Optuna sampled, in the space's order."""
        return {name: e.value(sampled[name]) for name, e in self.space.items()}

    def max_runs(self) -> int | None:
        """How many distinct trials the space holds, when that is finite and enforced (grid)."""
        return None

    def sampler(self, seed: int, max_concurrent_runs: int) -> BaseSampler:
        """The Optuna sampler, seeded with ``seed`` (the sweep adds its own ``seed``, or derives one).

        Subclasses import :mod:`.samplers` (and Optuna, 0.3 s) here, when a sweep runs: DAG files build these
        classes, and every parse of the file would pay for it."""
        raise NotImplementedError


class RandomParameterSampling(ParameterSampling):
    """Values drawn at random from every expression (all expression kinds)."""

    method = "random"

    def sampler(self, seed: int, max_concurrent_runs: int) -> BaseSampler:
        from airflow_provider_amlpipe.sweep import samplers

        return samplers.random_sampler(seed)


class GridParameterSampling(ParameterSampling):
    """Every combination of the ``choice`` options, each once (at most ``max_total_runs`` of them)."""

    method = "grid"
    allowed = ("choice",)

    def _fix(self) -> str:
        return "list the values with choice(...), or use RandomParameterSampling for continuous ranges"

    def max_runs(self) -> int:
        return grid_size(self.space)

    def sampler(self, seed: int, max_concurrent_runs: int) -> BaseSampler:
        grid = {name: list(e.args) for name, e in self.space.items()}
        from airflow_provider_amlpipe.sweep import samplers

        return samplers.grid_sampler(grid, seed)


class BayesianParameterSampling(ParameterSampling):
    """Each trial chosen from how earlier ones did (Optuna's TPE); ``choice``, ``uniform``, ``quniform``.

    Trials still running are assumed to score as badly as the worst finished one (TPE's "constant
    liar"), so concurrent trials spread out; AML advises few concurrent runs with Bayesian sampling.
    """

    method = "bayesian"
    allowed = ("choice", "uniform", "quniform")

    def _fix(self) -> str:
        return "use choice, uniform or quniform, or use RandomParameterSampling"

    def sampler(self, seed: int, max_concurrent_runs: int) -> BaseSampler:
        from airflow_provider_amlpipe.sweep import samplers

        return samplers.tpe_sampler(seed, constant_liar=max_concurrent_runs > 1)


def check_sampling(value: object) -> ParameterSampling:
    if not isinstance(value, ParameterSampling) or type(value) is ParameterSampling:
        raise ConfigurationError(
            "hyperparameter_sampling",
            f"expected a parameter sampling, got {value!r}",
            "pass RandomParameterSampling({...}), GridParameterSampling({...}) or BayesianParameterSampling({...})",
        )
    return value


def check_flag_clash(sampling: ParameterSampling, arguments: list[str]) -> None:
    """Refuse a hyperparameter whose flag the trial's own arguments already pass."""
    clash = sorted({flag(n) for n in sampling.space} & set(arguments))
    if clash:
        raise ConfigurationError(
            "trial.arguments",
            f"{', '.join(clash)} is both a trial argument and a hyperparameter",
            "drop it from the trial's arguments: the sweep passes each hyperparameter as --name value",
        )
