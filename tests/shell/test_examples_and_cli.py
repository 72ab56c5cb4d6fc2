"""The example DAGs (as shipped in dags/), a Param-overridden DataPath, the amlpipe command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.dagtools import run_dag
from support.paths import REPO
from support.session import DAGS_FOLDER

from airflow_provider_amlpipe.cli import main as amlpipe

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example DAGs in the session's dags folder, writing to a datastore of their own."""
    for name in ("aml_getting_started.py", "aml_data_dependency.py"):
        shutil.copy(REPO / "dags" / name, DAGS_FOLDER / name)
    for folder in ("scripts", "data"):
        shutil.copytree(REPO / "dags" / folder, DAGS_FOLDER / folder, dirs_exist_ok=True)
    (DAGS_FOLDER / ".airflowignore").write_text("scripts/\ndata/\n")
    store = tmp_path_factory.mktemp("example-store")
    os.environ["AIRFLOW_CONN_AMLPIPE_DEFAULT"] = json.dumps(
        {"conn_type": "amlpipe_local", "extra": {"path": str(store)}}
    )
    return store


def test_getting_started_runs_in_parallel_then_reuses(examples: Path) -> None:
    first = run_dag("aml_getting_started")
    assert first.state == "success", first.task_states
    assert first.ran() == {"train", "extract", "compare"}
    assert first.statuses["train"]["metrics"][0]["name"] == "train_accuracy"
    model = json.loads((Path(examples) / first.xcom("train", "model")["path"] / "model.json").read_text())
    assert set(model["survival_rate"]) == {f"{s}/{c}" for s in ("female", "male") for c in "123"}
    assert run_dag("aml_getting_started").ran() == set()


def test_data_dependency_param_overrides_the_datapath(examples: Path) -> None:
    first = run_dag("aml_data_dependency")
    assert first.state == "success", first.task_states
    accuracy = first.statuses["compare"]["metrics"][0]["value"]
    assert 0.6 < accuracy < 0.95  # the group-rate model learns something real from the passenger list

    # Point the reference DataPath at another file through the run's conf (as a REST trigger would).
    subset = REPO / "dags" / "data" / "passengers.csv"
    lines = subset.read_text().splitlines()
    alt = DAGS_FOLDER / "data" / "first_half.csv"
    alt.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    os.environ["AIRFLOW_CONN_AMLPIPE_SAMPLES"] = json.dumps(
        {"conn_type": "amlpipe_local", "extra": {"path": str(DAGS_FOLDER / "data")}}
    )
    try:
        second = run_dag("aml_data_dependency", conf={"reference_path": "first_half.csv"})
    finally:
        os.environ["AIRFLOW_CONN_AMLPIPE_SAMPLES"] = json.dumps(
            {"conn_type": "amlpipe_local", "extra": {"path": str(REPO / "dags" / "data")}}
        )
    assert second.state == "success", second.task_states
    assert second.ran() == {"compare"}  # train and extract saw the same bytes
    assert second.statuses["compare"]["reason"] == "changed since the last record: inputs.reference"


def test_cli_lists_versions_and_resolves_a_dataset(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dag("aml_data_dependency")
    root = str(examples)
    assert amlpipe(["datasets", "list", "--path", root]) == 0
    assert "passenger_model_comparison\tlatest v" in capsys.readouterr().out
    assert amlpipe(["datasets", "resolve", "passenger_model_comparison", "--version", "1", "--path", root]) == 0
    resolved = Path(capsys.readouterr().out.strip())
    assert json.loads((resolved / "comparison.json").read_text())["tested"] > 0
    assert amlpipe(["datasets", "show", "passenger_model_comparison", "--version", "99", "--path", root]) == 2
    assert "has no version 99" in capsys.readouterr().err
    # The installed console script, through the Airflow connection rather than a path.
    result = subprocess.run(
        [Path(sys.executable).with_name("amlpipe"), "datasets", "versions", "passenger_model_comparison"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v1\t")
