"""The Optuna samplers behind AML's sampling methods (:mod:`.sampling`), built when a sweep runs.

Apart from :mod:`.sampling`, whose classes a DAG file builds, so that parsing the DAG file needs no Optuna.
"""

from __future__ import annotations

from typing import Any

from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler


class _AskTellGridSampler(GridSampler):
    """Optuna's grid sampler, minus its ``study.stop()`` once the grid is exhausted: that call is only
    allowed inside ``study.optimize``; the sweep controller stops after the grid's size itself."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


def random_sampler(seed: int) -> BaseSampler:
    """``RandomParameterSampling``'s sampler."""
    return RandomSampler(seed=seed)


def grid_sampler(grid: dict[str, list[Any]], seed: int) -> BaseSampler:
    """``GridParameterSampling``'s sampler over ``grid`` (each hyperparameter's choices)."""
    return _AskTellGridSampler(grid, seed=seed)


def tpe_sampler(seed: int, constant_liar: bool) -> BaseSampler:
    """``BayesianParameterSampling``'s sampler (TPE; ``constant_liar`` when trials run concurrently)."""
    return TPESampler(seed=seed, constant_liar=constant_liar)
