"""AML's published-pipeline body as a DAG run's conf, and DataPath parameters as Params (the REST surfaces
themselves are tested end to end through a real api-server in test_e2e_rest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.dagtools import run_dag
from support.paths import REPO
from support.session import DAGS_FOLDER

from airflow_provider_amlpipe.data.datastore import LocalDatastore

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_the_body_becomes_conf_with_data_paths_in_amls_shape() -> None:
    from airflow_provider_amlpipe.plugin.aml_rest import SubmitBody

    body = SubmitBody.model_validate(
        {
            "ExperimentName": "exp",
            "ParameterAssignments": {"top": 3},
            "DataPathAssignments": {"data": {"DataStoreName": "store", "RelativePath": "a/b.csv"}},
            "RegenerateOutputs": ["summarize"],
            "Description": "nightly",
            "RunSource": "SDK",
        }
    )
    assert body.conf() == {
        "top": 3,
        "data": {"DataStoreName": "store", "RelativePath": "a/b.csv"},
        "amlpipe": {"regenerate_outputs": ["summarize"]},
    }
    assert body.note() == "Experiment: exp nightly (run source: SDK)"
    path = {"DataStoreName": "s", "RelativePath": "p"}
    clash = SubmitBody.model_validate({"ParameterAssignments": {"data": 1}, "DataPathAssignments": {"data": path}})
    with pytest.raises(ValueError, match=r"\['data'\] given in both"):
        clash.conf()
    with pytest.raises(ValueError, match="DataStoreName"):
        SubmitBody.model_validate({"DataPathAssignments": {"data": {"RelativePath": "p"}}})


def test_a_data_path_param_is_overridden_per_run_and_validated_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMLPIPE_DEFAULT", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    store = LocalDatastore("amlpipe_default", root)
    shutil.copy(REPO / "dags" / "aml_published_pipeline.py", DAGS_FOLDER / "aml_published_pipeline.py")
    shutil.copytree(REPO / "dags" / "scripts", DAGS_FOLDER / "scripts", dirs_exist_ok=True)
    (DAGS_FOLDER / ".airflowignore").write_text("scripts/\ndata/\n")
    default = run_dag("aml_published_pipeline")
    assert default.state == "success", default.task_states
    ref = default.xcom("summarize", "summary")
    assert store.read_bytes(f"{ref['path']}/count.txt") == b"5\n"  # sample_input.csv
    passengers = {"DataStoreName": "amlpipe_samples", "RelativePath": "passengers.csv"}
    other = run_dag("aml_published_pipeline", conf={"top": 2, "test_data": passengers})
    assert other.ran() == {"summarize"}
    top = store.read_bytes(f"{other.xcom('summarize', 'summary')['path']}/top.csv").decode().splitlines()
    assert len(top) == 2
    assert run_dag("aml_published_pipeline", conf={"top": 2, "test_data": passengers}).ran() == set()
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError, match="test_data"):
        run_dag("aml_published_pipeline", conf={"test_data": {"DataStoreName": "amlpipe_samples"}})
