"""Hyperparameter sweeps (AML's HyperDrive) on Optuna: parameter expressions, sampling methods,
early-termination policies and the controller that runs trials. No Airflow here."""

from __future__ import annotations

from airflow_provider_amlpipe.sweep.expressions import (
    choice,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)
from airflow_provider_amlpipe.sweep.policies import (
    BanditPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    PrimaryMetricGoal,
    TruncationSelectionPolicy,
)
from airflow_provider_amlpipe.sweep.sampling import (
    BayesianParameterSampling,
    GridParameterSampling,
    RandomParameterSampling,
)

__all__ = [
    "BanditPolicy",
    "BayesianParameterSampling",
    "GridParameterSampling",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "PrimaryMetricGoal",
    "RandomParameterSampling",
    "TruncationSelectionPolicy",
    "choice",
    "lognormal",
    "loguniform",
    "normal",
    "qlognormal",
    "qloguniform",
    "qnormal",
    "quniform",
    "randint",
    "uniform",
]
