"""HyperDriveStepOperator refuses bad sweeps where the DAG is written (parse time, no I/O)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_amlpipe import HyperDriveStepOperator, ScriptTrial
from airflow_provider_amlpipe.compute.environment import PythonEnvironment
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.sweep import (
    BanditPolicy,
    BayesianParameterSampling,
    GridParameterSampling,
    MedianStoppingPolicy,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
    uniform,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text("print('hi')\n")
    return tmp_path


def build(folder: Path, **overrides: Any) -> HyperDriveStepOperator:
    options: dict[str, Any] = {
        "task_id": "sweep",
        "trial": ScriptTrial(script_name="train.py", source_directory=str(folder)),
        "hyperparameter_sampling": RandomParameterSampling({"--lr": uniform(0.01, 0.1)}),
        "primary_metric_name": "acc",
        "primary_metric_goal": PrimaryMetricGoal.MAXIMIZE,
        "max_total_runs": 4,
        "max_concurrent_runs": 2,
        **overrides,
    }
    with DAG(dag_id="bad_sweep", schedule=None):
        return HyperDriveStepOperator(**options)


def test_a_good_sweep_builds(folder: Path) -> None:
    op = build(folder, policy=BanditPolicy(slack_factor=0.1), outputs=["model"])
    assert [o.name for o in op.outputs] == ["model", "metrics"]
    assert op.max_concurrent_runs == 2
    assert build(folder, max_concurrent_runs=None).max_concurrent_runs == 4  # AML: all at once


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"hyperparameter_sampling": {"--lr": uniform(0, 1)}}, "hyperparameter_sampling", "RandomParameterSampling"),
        (
            {
                "hyperparameter_sampling": BayesianParameterSampling({"--lr": uniform(0, 1)}),
                "policy": MedianStoppingPolicy(),
            },
            "policy",
            "Bayesian sampling supports no early termination",
        ),
        ({"max_concurrent_runs": 5}, "max_concurrent_runs", "from 1 to 4"),
        ({"max_concurrent_runs": 0}, "max_concurrent_runs", "from 1 to 4"),
        ({"max_total_runs": 0}, "max_total_runs", "from 1 to 1000"),
        ({"primary_metric_goal": "up"}, "primary_metric_goal", "MAXIMIZE or MINIMIZE"),
        ({"policy": "bandit"}, "policy", "early termination policy"),
        ({"max_duration_minutes": 0}, "max_duration_minutes", "positive"),
        ({"optuna_storage": "redis://localhost"}, "optuna_storage", "RDB storage URL"),
        ({"outputs": ["metrics"]}, "metrics_output", "also a trial output"),
        (
            {"trial": ScriptTrial(script_name="train.py", arguments=["--lr", "0.1"])},
            "trial.arguments",
            "both a trial argument and a hyperparameter",
        ),
        ({"trial": ScriptTrial(script_name="train.py", compute="my_batch")}, "trial.pool_id", "not a Batch pool id"),
        ({"trial": ScriptTrial(script_name="train.py", pool_id="p")}, "trial.pool_id", "given with compute='local'"),
        ({"trial": ScriptTrial(script_name="train.py", compute="")}, "trial.compute", "expected a connection id"),
        (
            {
                "trial": ScriptTrial(
                    script_name="train.py",
                    compute="my_batch",
                    pool_id="trials",
                    environment=PythonEnvironment(requirements="requirements.txt"),
                )
            },
            "trial.environment.requirements",
            "not on a Batch node",
        ),
        ({"trial": "train.py"}, "trial", "ScriptTrial"),
    ],
)
def test_bad_sweeps_fail_at_parse_time(folder: Path, overrides: dict[str, Any], field: str, words: str) -> None:
    if (
        "trial" in overrides
        and isinstance(overrides["trial"], ScriptTrial)
        and overrides["trial"].source_directory is None
    ):
        overrides["trial"].source_directory = str(folder)
    with pytest.raises(ConfigurationError) as info:
        build(folder, **overrides)
    assert info.value.field == field
    assert words in str(info.value)


def test_grid_with_a_continuous_distribution_and_both_slacks() -> None:
    with pytest.raises(ConfigurationError, match="grid sampling supports only choice"):
        GridParameterSampling({"--lr": uniform(0, 1)})
    with pytest.raises(ConfigurationError, match="both slack_factor and slack_amount"):
        BanditPolicy(slack_factor=0.1, slack_amount=0.1)
    assert GridParameterSampling({"--bs": choice(1, 2)}).max_runs() == 2


def test_a_missing_script_is_named(folder: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"trial script 'nope\.py' does not exist"):
        build(folder, trial=ScriptTrial(script_name="nope.py", source_directory=str(folder)))
