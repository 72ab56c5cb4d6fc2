"""The HyperDrive example DAG as shipped in dags/: sweep, register the best model, score it; reused on rerun."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.dagtools import run_dag
from support.paths import REPO
from support.session import DAGS_FOLDER

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.slow]


def test_hyperdrive_example_registers_and_scores_the_best_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(REPO / "dags" / "aml_hyperdrive.py", DAGS_FOLDER / "aml_hyperdrive.py")
    shutil.copytree(REPO / "dags" / "scripts", DAGS_FOLDER / "scripts", dirs_exist_ok=True)
    (DAGS_FOLDER / ".airflowignore").write_text("scripts/\ndata/\n")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMLPIPE_DEFAULT",
        json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(tmp_path / "store")}}),
    )
    first = run_dag("aml_hyperdrive")
    assert first.state == "success", first.task_states
    assert first.ran() == {"sweep", "register", "score"}
    best = first.xcom("sweep", "best_value")
    assert 0.5 < best <= 1.0
    assert set(first.xcom("sweep", "best_hyperparameters")) == {
        "--batch-size",
        "--first-layer-neurons",
        "--second-layer-neurons",
        "--learning-rate",
    }
    registered = first.xcom("register", "registered")
    assert registered["name"] == "digits_mlp_model" and registered["version"] == 1
    test_accuracy = first.statuses["score"]["metrics"][0]["value"]
    assert test_accuracy > 0.8  # the best small network really learned the digits

    assert run_dag("aml_hyperdrive").ran() == set()
