"""AML's early-termination policies, as rules over the primary metric's curves.

Every time a trial logs the primary metric counts as one *interval* (1, 2, 3, ...), whatever
``step`` it passes. A policy is applied to a running trial when it logs interval ``N`` such that
``N`` is a multiple of ``evaluation_interval`` and ``N >= delay_evaluation``; it compares the trial
with the others *up to interval N* only, so a young trial is never judged against values older
trials reached later. The rules, as AML documents them:

- **Bandit**: terminate when the trial's best value up to ``N`` is not within the slack of the best
  value any trial reached up to ``N``: maximizing, ``best_trial * (1 + slack_factor) < best_all`` or
  ``best_trial + slack_amount < best_all``; minimizing, ``best_trial > best_all * (1 + slack_factor)``
  or ``best_trial > best_all + slack_amount``.
- **MedianStopping**: terminate when the trial's best value up to ``N`` is worse than the median of
  the running averages over intervals ``1..N`` of all trials that reached ``N``.
- **TruncationSelection**: terminate when the trial's value at ``N`` is among the lowest
  ``truncation_percentage`` percent of the values at ``N`` of all trials that reached ``N`` (finished
  trials are left out with ``exclude_finished_jobs``); ties are resolved in the trial's favour.
- **NoTermination** (or ``None``): never terminate.

The controller asks :meth:`TerminationPolicy.decide` each time a trial logs the primary metric, with
every trial's curve as read so far; Optuna records the same values as intermediate values.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow_provider_amlpipe.errors import ConfigurationError

MAXIMIZE = "maximize"
MINIMIZE = "minimize"
Curves = Mapping[int, Sequence[float]]


def check_goal(value: object) -> str:
    """``"maximize"`` or ``"minimize"`` (AML's ``PrimaryMetricGoal.MAXIMIZE`` / ``MINIMIZE`` too)."""
    text = str(getattr(value, "value", value)).lower()
    if text not in (MAXIMIZE, MINIMIZE):
        raise ConfigurationError(
            "primary_metric_goal", f"expected MAXIMIZE or MINIMIZE, got {value!r}", "pass PrimaryMetricGoal.MAXIMIZE"
        )
    return text


class PrimaryMetricGoal:
    """AML's goal names."""

    MAXIMIZE = MAXIMIZE
    MINIMIZE = MINIMIZE


def best_of(values: Sequence[float], goal: str) -> float:
    return max(values) if goal == MAXIMIZE else min(values)


def _worse(a: float, b: float, goal: str) -> bool:
    """Whether ``a`` is strictly worse than ``b``."""
    return a < b if goal == MAXIMIZE else a > b


def _check_int(policy: str, field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(
            f"{policy}.{field}", f"expected an integer of at least {minimum}, got {value!r}", f"pass {field}={minimum}"
        )
    return value


@dataclass(frozen=True)
class TerminationPolicy:
    """Base of the policies: when a policy applies, and what defines it (fingerprinted)."""

    evaluation_interval: int = 1
    delay_evaluation: int = 0
    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        name = type(self).__name__
        _check_int(name, "evaluation_interval", self.evaluation_interval, 1)
        _check_int(name, "delay_evaluation", self.delay_evaluation, 0)

    def applies_at(self, interval: int) -> bool:
        """Whether the policy is evaluated when a trial logs ``interval`` (1-based)."""
        return interval % self.evaluation_interval == 0 and interval >= self.delay_evaluation

    def identity(self) -> dict[str, Any]:
        return {"policy": self.kind, **{k: v for k, v in sorted(self.__dict__.items())}}

    def decide(
        self, trial: int, interval: int, curves: Curves, goal: str, finished: Collection[int] = ()
    ) -> str | None:
        """Why ``trial`` must stop now that it logged ``interval``, or ``None`` to let it run."""
        curve = curves[trial]
        if not self.applies_at(interval) or len(curve) < interval:
            return None
        return self._rule(trial, interval, curves, goal, finished)

    def _rule(self, trial: int, interval: int, curves: Curves, goal: str, finished: Collection[int]) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True)
class NoTerminationPolicy(TerminationPolicy):
    """Every trial runs to its end."""

    kind = "no_termination"

    def _rule(self, trial: int, interval: int, curves: Curves, goal: str, finished: Collection[int]) -> str | None:
        return None


@dataclass(frozen=True)
class BanditPolicy(TerminationPolicy):
    """Stop trials whose best value is not within ``slack_factor`` (a ratio) or ``slack_amount`` (an
    absolute distance) of the best value any trial reached by the same interval."""

    slack_factor: float | None = None
    slack_amount: float | None = None
    kind = "bandit"

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.slack_factor is None) == (self.slack_amount is None):
            raise ConfigurationError(
                "BanditPolicy",
                "both slack_factor and slack_amount given" if self.slack_factor is not None else "no slack given",
                "pass exactly one: slack_factor=0.1 (a ratio) or slack_amount=0.2 (an absolute distance)",
            )
        for field in ("slack_factor", "slack_amount"):
            value = getattr(self, field)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
            ):
                raise ConfigurationError(
                    f"BanditPolicy.{field}", f"expected a number of at least 0, got {value!r}", f"pass {field}=0.1"
                )

    def _rule(self, trial: int, interval: int, curves: Curves, goal: str, finished: Collection[int]) -> str | None:
        mine = best_of(curves[trial][:interval], goal)
        best = best_of([best_of(c[:interval], goal) for c in curves.values() if c], goal)
        if self.slack_factor is not None:
            factor = 1 + self.slack_factor
            stop = mine * factor < best if goal == MAXIMIZE else mine > best * factor
            slack = f"slack_factor {self.slack_factor:g}"
        else:
            amount = float(self.slack_amount or 0.0)
            stop = mine + amount < best if goal == MAXIMIZE else mine > best + amount
            slack = f"slack_amount {amount:g}"
        if not stop:
            return None
        return f"bandit: best {mine:g} by interval {interval} is not within {slack} of the best trial's {best:g}"


@dataclass(frozen=True)
class MedianStoppingPolicy(TerminationPolicy):
    """Stop trials whose best value is worse than the median of all trials' running averages."""

    kind = "median_stopping"

    def _rule(self, trial: int, interval: int, curves: Curves, goal: str, finished: Collection[int]) -> str | None:
        mine = best_of(curves[trial][:interval], goal)
        averages = [statistics.fmean(c[:interval]) for c in curves.values() if len(c) >= interval]
        median = statistics.median(averages)
        # An average of equal values may differ from them in the last bit: that is not "worse".
        if not _worse(mine, median, goal) or math.isclose(mine, median, rel_tol=1e-12):
            return None
        return (
            f"median stopping: best {mine:g} by interval {interval} is worse than the median {median:g}"
            f" of {len(averages)} trials' running averages"
        )


@dataclass(frozen=True)
class TruncationSelectionPolicy(TerminationPolicy):
    """Stop the lowest ``truncation_percentage`` percent of trials at each evaluation interval."""

    truncation_percentage: int = 0
    exclude_finished_jobs: bool = False
    kind = "truncation_selection"

    def __post_init__(self) -> None:
        super().__post_init__()
        value = self.truncation_percentage
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
            raise ConfigurationError(
                "TruncationSelectionPolicy.truncation_percentage",
                f"expected an integer from 1 to 99, got {value!r}",
                "pass truncation_percentage=20",
            )
        if not isinstance(self.exclude_finished_jobs, bool):
            raise ConfigurationError(
                "TruncationSelectionPolicy.exclude_finished_jobs",
                f"expected True or False, got {self.exclude_finished_jobs!r}",
                "pass exclude_finished_jobs=True",
            )

    def _rule(self, trial: int, interval: int, curves: Curves, goal: str, finished: Collection[int]) -> str | None:
        peers = {
            number: curve[interval - 1]
            for number, curve in curves.items()
            if len(curve) >= interval and (number == trial or not (self.exclude_finished_jobs and number in finished))
        }
        cut = len(peers) * self.truncation_percentage // 100
        mine = peers[trial]
        # Ties in the trial's favour: it is cut only if it and everything as bad or worse fit in the cut.
        as_bad = sum(1 for value in peers.values() if not _worse(mine, value, goal))
        if cut == 0 or as_bad > cut:
            return None
        return (
            f"truncation selection: value {mine:g} at interval {interval} is in the lowest"
            f" {self.truncation_percentage}% of {len(peers)} trials"
        )


def check_policy(value: object) -> TerminationPolicy:
    """The policy to apply: ``None`` is :class:`NoTerminationPolicy`."""
    if value is None:
        return NoTerminationPolicy()
    if not isinstance(value, TerminationPolicy) or type(value) is TerminationPolicy:
        raise ConfigurationError(
            "policy",
            f"expected an early termination policy, got {value!r}",
            "pass BanditPolicy(...), MedianStoppingPolicy(...), TruncationSelectionPolicy(...),"
            " NoTerminationPolicy() or None",
        )
    return value
