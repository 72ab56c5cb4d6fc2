"""Bad input fails with a message naming the field and the fix, before anything runs or is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagtools import run_dag, write_dag

from airflow_provider_amlpipe import DatasetInput, Output, PythonScriptStepOperator
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.errors import ConfigurationError


def build(**kwargs: object) -> PythonScriptStepOperator:
    from airflow.sdk import DAG

    with DAG(dag_id="t_bad_input_parse", schedule=None):
        return PythonScriptStepOperator(task_id="step", script_name="s.py", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"arguments": ["--in", "{inputs.missing}"]}, "arguments[1]", "names no declared input"),
        ({"arguments": ["{outputs.nope}"], "outputs": ["model"]}, "arguments[0]", "declare outputs="),
        ({"outputs": [Output("model"), Output("model")]}, "outputs[1].name", "two outputs are named 'model'"),
        ({"outputs": [Output("a/b")]}, "outputs[0].name", "'/'"),
        ({"outputs": [Output("..secret")]}, "outputs[0].name", "'..'"),
        ({"outputs": [Output("has space")]}, "outputs[0].name", "cannot hold"),
        ({"outputs": [Output("ok", register_as="bad/name")]}, "outputs[0].register_as", "cannot hold"),
        ({"outputs": ["return_value"]}, "outputs[0].name", "reserved"),
        ({"arguments": "--epochs 5"}, "arguments", "pass a list"),
        ({"compute": "gpu-cluster"}, "compute", "use 'local'"),
    ],
)
def test_parse_time_errors_name_the_field_and_the_fix(kwargs: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(**kwargs)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "Fix:" in str(caught.value)


@pytest.fixture
def step_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, LocalDatastore]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.py").write_text("from pathlib import Path\nPath(__file__).with_name('ran').write_text('x')\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "present.csv").write_text("a,b\n1,2\n")
    monkeypatch.setenv(
        "AIRFLOW_CONN_BAD_INPUT_STORE",
        json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(tmp_path / "store")}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_BAD_INPUT_DATA",
        json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(tmp_path / "data")}}),
    )
    return src, LocalDatastore("s", tmp_path / "store")


CASES = {
    "missing_script": ('script_name="nope.py"', "script_name", "does not exist"),
    "missing_source_directory": (
        'script_name="ok.py", source_directory="/does/not/exist"',
        "source_directory",
        "not a folder",
    ),
    "missing_datapath": (
        'script_name="ok.py", inputs={"raw": DataPath(datastore="bad_input_data", path="absent.csv")}',
        "inputs['raw'].path",
        "'absent.csv' does not exist",
    ),
    "unknown_datastore_connection": (
        'script_name="ok.py", inputs={"raw": DataPath(datastore="no_such_conn", path="present.csv")}',
        "datastore",
        "no Airflow connection named 'no_such_conn'",
    ),
    "unknown_dataset_version": (
        'script_name="ok.py", inputs={"raw": DatasetInput("never_registered", version=3)}',
        "inputs['raw']",
        "no dataset named 'never_registered'",
    ),
}


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("case", sorted(CASES))
def test_run_time_errors_fail_before_anything_is_written(
    case: str, step_dag: tuple[Path, LocalDatastore], capfd: pytest.CaptureFixture[str]
) -> None:
    src, store = step_dag
    arguments, field, words = CASES[case]
    if "source_directory" not in arguments:
        arguments += f", source_directory={str(src)!r}"
    dag_id = f"t_bad_input_{case}"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, DatasetInput, Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            PythonScriptStepOperator(task_id="step", {arguments}, outputs=[Output("out")], datastore="bad_input_store")
        """,
    )
    result = run_dag(dag_id)
    output = capfd.readouterr()
    assert result.task_states["step"] == "failed"
    assert f"ConfigurationError: {field}: " in output.out + output.err
    assert words in output.out + output.err
    assert not (src / "ran").exists()  # the script never started
    assert not store.root.exists() or not any(store.root.rglob("*"))


def test_existing_dataset_version_errors_list_what_exists(tmp_path: Path) -> None:
    from airflow_provider_amlpipe.data.objects import publish
    from airflow_provider_amlpipe.data.registry import DatasetRegistry
    from airflow_provider_amlpipe.reuse.hashing import Hasher, StatCache
    from airflow_provider_amlpipe.steps.inputs import resolve_inputs

    store = LocalDatastore("s", tmp_path / "store")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "f.txt").write_text("v1")
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    DatasetRegistry(store).register("known", publish(store, tmp_path / "out", hasher), {})
    with pytest.raises(ConfigurationError) as caught:
        resolve_inputs({"x": DatasetInput("known", version=2)}, lambda _: store, hasher, "s")
    assert caught.value.field == "inputs['x']"
    assert "has no version 2 (versions: 1..1)" in str(caught.value)
    resolved = resolve_inputs({"x": DatasetInput("known", version="latest")}, lambda _: store, hasher, "s")
    assert resolved["x"].ref is not None and resolved["x"].ref.version == 1
