"""Bad input fails with a message naming the field and the fix, before anything runs or is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.dagtools import run_dag, write_dag
from support.stores import new_blob_datastore

from airflow_provider_amlpipe import DataPath, DatasetInput, Output, PythonScriptStepOperator
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.errors import ConfigurationError


def build(**kwargs: object) -> PythonScriptStepOperator:
    from airflow.sdk import DAG

    kwargs = {"script_name": "s.py", **kwargs}
    with DAG(dag_id="t_bad_input_parse", schedule=None):
        return PythonScriptStepOperator(task_id="step", **kwargs)  # type: ignore[arg-type]


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
    (tmp_path / "data" / "empty").mkdir()
    monkeypatch.setenv(
        "AIRFLOW_CONN_BAD_INPUT_RELATIVE",
        json.dumps({"conn_type": "amlpipe_local", "extra": {"path": "relative/data"}}),
    )
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
    # A literal script name is checked at parse time (test_missing_script_in_an_existing_folder_fails_at_parse_time); a
    # templated one only when the task runs.
    "missing_script": ("script_name=\"{{ 'nope' }}.py\"", "script_name", "does not exist"),
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
    # Templates rendered into something invalid are caught when the task starts.
    "templated_version": (
        'script_name="ok.py", inputs={"raw": DatasetInput("x", version="{{ \'²\' }}")}',
        "inputs['raw'].version",
        "'²' is not a version",
    ),
    "templated_absolute_datapath": (
        'script_name="ok.py", inputs={"raw": DataPath(datastore="bad_input_data", path="{{ \'/present.csv\' }}")}',
        "inputs['raw'].path",
        "is absolute",
    ),
    "rendered_step_params_too_large": (
        'script_name="ok.py", step_params={"blob": "{{ \'x\' * 70000 }}"}',
        "step_params (rendered)",
        "put large data in an input",
    ),
    "empty_folder": (
        'script_name="ok.py", inputs={"raw": DataPath(datastore="bad_input_data", path="empty/")}',
        "inputs['raw'].path",
        "'empty' in local datastore 'bad_input_data'",
    ),
    "relative_local_datastore": (
        'script_name="ok.py", inputs={"raw": DataPath(datastore="bad_input_relative", path="x.csv")}',
        "datastore (connection 'bad_input_relative')",
        "the folder 'relative/data' is a relative path",
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


CONF_CASES = {
    "typo_in_amlpipe_conf": (
        {"amlpipe": {"regenrate_outputs": True}},
        "dag_run.conf.amlpipe",
        "unknown key(s) 'regenrate_outputs'",
    ),
    "regenerate_unknown_task": (
        {"amlpipe": {"regenerate_outputs": ["claen"]}},
        "dag_run.conf.amlpipe.regenerate_outputs",
        "'claen' is not a task of this DAG (its tasks: step)",
    ),
    "regenerate_at_top_level": (
        {"regenerate_outputs": True},
        "dag_run.conf.regenerate_outputs",
        'nest it: {"amlpipe": {"regenerate_outputs": ...}}',
    ),
}


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("case", sorted(CONF_CASES))
def test_run_conf_mistakes_fail_before_anything_is_written(
    case: str, step_dag: tuple[Path, LocalDatastore], capfd: pytest.CaptureFixture[str]
) -> None:
    src, store = step_dag
    conf, field, words = CONF_CASES[case]
    dag_id = f"t_bad_input_{case}"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            PythonScriptStepOperator(
                task_id="step", script_name="ok.py", source_directory={str(src)!r}, outputs=[Output("out")],
                datastore="bad_input_store",
            )
        """,
    )
    result = run_dag(dag_id, conf)
    output = capfd.readouterr()
    assert result.task_states["step"] == "failed"
    assert f"ConfigurationError: {field}: " in output.out + output.err
    assert words in output.out + output.err
    assert not (src / "ran").exists()
    assert not store.root.exists() or not any(store.root.rglob("*"))


def test_existing_dataset_version_errors_list_what_exists(tmp_path: Path) -> None:
    from airflow_provider_amlpipe.data.objects import publish
    from airflow_provider_amlpipe.data.registry import DatasetRegistry
    from airflow_provider_amlpipe.hashing import Hasher, StatCache
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


# -- parse time: every argument checkable without I/O -------------------------------------------

NOT_JSON = object()


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"inputs": [DataPath("d", "raw.csv")]}, "inputs", "expected a dict"),
        ({"inputs": {"raw": "raw.csv"}}, "inputs['raw']", "wrap it: DataPath("),
        ({"inputs": {"raw": None}}, "inputs['raw']", "is None"),
        ({"inputs": {"raw": 3}}, "inputs['raw']", "unsupported input"),
        ({"inputs": {"bad name": DataPath("d", "x")}}, "inputs['bad name']", "cannot hold"),
        ({"inputs": {"raw": DataPath("d", "/raw/x.csv")}}, "inputs['raw'].path", "write 'raw/x.csv'"),
        ({"inputs": {"raw": DataPath("", "x.csv")}}, "inputs['raw'].datastore", "no datastore"),
        ({"inputs": {"raw": DataPath("d", "a//b")}}, "inputs['raw'].path", "empty"),
        ({"inputs": {"raw": DataPath("d", "x", fingerprint_mode="fast")}}, "inputs['raw'].fingerprint_mode", "use one"),
        ({"inputs": {"raw": DatasetInput("x", version=None)}}, "inputs['raw'].version", "is not a version"),  # type: ignore[arg-type]
        ({"inputs": {"raw": DatasetInput("x", version=True)}}, "inputs['raw'].version", "(bool) is not a version"),
        ({"inputs": {"raw": DatasetInput("x", version=2.7)}}, "inputs['raw'].version", "(float) is not a version"),  # type: ignore[arg-type]
        ({"inputs": {"raw": DatasetInput("x", version="²")}}, "inputs['raw'].version", "'²' is not a version"),
        ({"inputs": {"raw": DatasetInput("x", version=0)}}, "inputs['raw'].version", "versions start at 1"),
        ({"inputs": {"raw": DatasetInput("x", version="v2")}}, "inputs['raw'].version", "'latest'"),
        ({"inputs": {"raw": DatasetInput("a/b")}}, "inputs['raw'].name", "cannot hold"),
        ({"step_params": [1, 2]}, "step_params", "expected a dict"),
        ({"step_params": {"a": NOT_JSON}}, "step_params['a']", "is not JSON"),
        ({"step_params": {"a": {"when": {1, 2}}}}, "step_params['a']['when']", "is not JSON"),
        ({"step_params": {"a": float("nan")}}, "step_params['a']", "not a JSON number"),
        ({"step_params": {"a": {1: "x"}}}, "step_params['a']", "JSON keys are strings"),
        ({"step_params": {"blob": "x" * 70_000}}, "step_params", "put large data in an input"),
        ({"arguments": ["{{inputs.raw}}"], "inputs": {"raw": DataPath("d", "x")}}, "arguments[0]", "'{inputs.raw}'"),
        ({"arguments": ["{{ outputs.m }}"], "outputs": ["m"]}, "arguments[0]", "use single braces"),
        ({"arguments": ["{input.raw}"], "inputs": {"raw": DataPath("d", "x")}}, "arguments[0]", "'{inputs.raw}'"),
        ({"arguments": ["{ inputs.raw }"], "inputs": {"raw": DataPath("d", "x")}}, "arguments[0]", "'{inputs.raw}'"),
        ({"arguments": ["--in={inputs.raw"], "inputs": {"raw": DataPath("d", "x")}}, "arguments[0]", "'{inputs.raw}'"),
        ({"arguments": ["{Outputs.m}"], "outputs": ["m"]}, "arguments[0]", "'{outputs.m}'"),
        ({"arguments": ["--in", DataPath("d", "x")]}, "arguments[1]", "declare it as an input"),
        ({"arguments": ["--in", DatasetInput("x")]}, "arguments[1]", "declare it as an input"),
        ({"arguments": ["--n", None]}, "arguments[1]", "not a command-line argument"),
        ({"arguments": ["--cfg", {"a": 1}]}, "arguments[1]", "not a command-line argument"),
        ({"arguments": {"--n": 1}}, "arguments", "expected a list"),
        ({"lease_ttl": "60"}, "lease_ttl", "expected a number of seconds"),
        ({"lease_ttl": 0}, "lease_ttl", "below the minimum of 2"),
        ({"lease_ttl": 1.5}, "lease_ttl", "below the minimum of 2"),
        ({"lease_ttl": True}, "lease_ttl", "expected a number of seconds"),
        ({"lease_ttl": float("inf")}, "lease_ttl", "expected a number of seconds"),
        ({"poll_interval": "5"}, "poll_interval", "expected a number of seconds"),
        ({"poll_interval": 0}, "poll_interval", "below the minimum"),
        ({"allow_reuse": "no"}, "allow_reuse", "expected True or False"),
        ({"allow_reuse": 0}, "allow_reuse", "expected True or False"),
        ({"outputs": "model"}, "outputs", "pass a list, such as outputs=['model']"),
        ({"outputs": {"model": 1}}, "outputs", "expected a list"),
        ({"outputs": [Output("m"), 3]}, "outputs[1]", "expected an Output or a name"),  # type: ignore[list-item]
        (
            {"outputs": [Output("a", register_as="shared"), Output("b", register_as="shared")]},
            "outputs[1].register_as",
            "both would write versions of one dataset",
        ),
        (
            {"outputs": [Output("a", register_as="t_bad_input_parse.step.b"), Output("b")]},
            "outputs[1]",
            "also the dataset of outputs[0]",
        ),
        ({"datastore": ""}, "datastore", "expected a connection id"),
        ({"datastore": None}, "datastore", "expected a connection id"),
        ({"environment": "python3.11"}, "environment", "PythonEnvironment"),
        ({"script_name": ""}, "script_name", "expected a file name"),
        ({"script_name": None}, "script_name", "expected a file name"),
        ({"params": {"epochs": 5}}, "params", "step_params={'epochs': ...}"),
    ],
)
def test_more_parse_time_errors(kwargs: dict[str, object], field: str, words: str) -> None:
    test_parse_time_errors_name_the_field_and_the_fix(kwargs, field, words)


def build_adla(**kwargs: object) -> object:
    from airflow.sdk import DAG

    from airflow_provider_amlpipe import AdlaStepOperator

    kwargs = {"script_name": "s.usql", **kwargs}
    with DAG(dag_id="t_bad_input_adla", schedule=None):
        return AdlaStepOperator(task_id="step", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"priority": "high"}, "priority", "whole number"),
        ({"priority": 0}, "priority", "whole number"),
        ({"degree_of_parallelism": 2.5}, "degree_of_parallelism", "whole number"),
        ({"deferrable": "yes"}, "deferrable", "True or False"),
        ({"compute": ""}, "compute", "connection id"),
        ({"runtime_version": 3}, "runtime_version", "runtime name"),
        (
            {"step_params": {"raw": "x"}, "inputs": {"raw": DataPath("d", "x")}},
            "step_params",
            "'raw' is both a step parameter and an input",
        ),
        ({"inputs": {"x": DataPath("d", "x")}, "outputs": ["x"]}, "step_params", "is both an input and an output"),
        ({"params": {"region": "eu"}}, "params", "step_params="),
        ({"lease_ttl": "1h"}, "lease_ttl", "number of seconds"),
    ],
)
def test_adla_parse_time_errors(kwargs: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_adla(**kwargs)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_what_is_deferred_to_render_time_or_is_airflow_s_is_accepted() -> None:
    from airflow.sdk import DAG, Param

    with DAG(dag_id="t_bad_input_ok", schedule=None, params={"v": Param(2), "path": "raw.csv"}):
        upstream = PythonScriptStepOperator(task_id="up", script_name="s.py", outputs=("m", Output("n")))
        step = PythonScriptStepOperator(
            task_id="step",
            script_name="s.py",
            arguments=["--in={inputs.raw}", "{outputs.out}", 3, 1.5, Path("x"), upstream.output[STATUS_KEY]],
            inputs={
                "raw": DataPath("d", "{{ params.path }}"),
                "versioned": DatasetInput("x", version="{{ params.v }}"),
                "digits": DatasetInput("x", version="7"),
                "from_up": upstream.output["m"],
                "also": {"datastore": "d", "path": "x"},
            },
            outputs=["out"],
            step_params={"n": upstream.output["n"], "when": "{{ ds }}", "nested": {"a": [1, None, True]}},
            lease_ttl=2,
        )
        # Task-level params are Airflow's own when a template of the task reads them.
        templated = PythonScriptStepOperator(
            task_id="templated", script_name="s.py", params={"lr": 0.1}, step_params={"lr": "{{ params.lr }}"}
        )
    assert step.inputs["digits"].validate("x") == 7
    assert step.lease_ttl == 2.0
    assert templated.params["lr"] == 0.1
    assert upstream.outputs[0].name == "m"


STATUS_KEY = "amlpipe_status"


def build_in(dag_id: str, task_id: str = "step", **kwargs: object) -> PythonScriptStepOperator:
    from airflow.sdk import DAG

    kwargs = {"script_name": "s.py", **kwargs}
    with DAG(dag_id=dag_id, schedule=None):
        return PythonScriptStepOperator(task_id=task_id, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("dag_id", ["d" * 190, "données", "pipeline_ü"])
def test_derived_dataset_names_are_checked_at_parse_time(dag_id: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_in(dag_id, outputs=["model"])
    assert caught.value.field == "outputs[0]"
    assert "register_as='short_name'" in caught.value.fix
    assert "Output('model'" in caught.value.fix


def test_leading_underscore_and_long_names_are_valid_dataset_names() -> None:
    step = build_in("_private", outputs=["model"])
    assert [a.name.rsplit("/", 1)[-1] for a in step.outlets] == ["_private.step.model"]
    long_id = "p" * 180
    step = build_in(long_id, outputs=[Output("model", register_as="model")])
    assert [a.name.rsplit("/", 1)[-1] for a in step.outlets] == ["model"]
    with pytest.raises(ConfigurationError, match="at most 200"):
        build_in("x", outputs=[Output("m", register_as="r" * 201)])


def test_unicode_dag_id_with_register_as_gives_assets_airflow_can_store() -> None:
    from airflow.models.asset import AssetModel

    from airflow_provider_amlpipe.assets import dataset_asset

    step = build_in("données", outputs=[Output("model", register_as="modele")], datastore="magasin_données")
    asset = dataset_asset("magasin_données", "modele")
    AssetModel(name=asset.name, uri=asset.uri)  # raises "URI must be ascii" when it is not
    assert asset.uri == "amlpipe://magasin_donn%C3%A9es/modele"
    assert [alias.name for alias in step.outlets] == [asset.uri]  # the step emits events through an alias


def test_step_output_typo_names_the_declared_outputs() -> None:
    from airflow.sdk import DAG

    with DAG(dag_id="t_bad_input_typo", schedule=None):
        up = PythonScriptStepOperator(task_id="up", script_name="s.py", outputs=["model", "metrics"])
        with pytest.raises(ConfigurationError) as caught:
            PythonScriptStepOperator(task_id="down", script_name="s.py", inputs={"m": up.output["modle"]})
        assert caught.value.field == "up.output['modle']"
        assert "its outputs: model, metrics" in caught.value.problem
        down = PythonScriptStepOperator(task_id="down", script_name="s.py", inputs={"m": up.output["model"]})
    assert down.upstream_task_ids == {"up"}
    assert up.output["model"].key == "model"
    assert up.output[STATUS_KEY].key == STATUS_KEY


def test_a_step_output_in_arguments_must_be_an_input() -> None:
    from airflow.sdk import DAG

    with DAG(dag_id="t_bad_input_xcom_arg", schedule=None):
        up = PythonScriptStepOperator(task_id="up", script_name="s.py", outputs=["model"])
        with pytest.raises(ConfigurationError) as caught:
            PythonScriptStepOperator(task_id="down", script_name="s.py", arguments=["--m", up.output["model"]])
    assert caught.value.field == "arguments[1]"
    assert "{inputs." in caught.value.fix


def test_relative_source_directory_is_relative_to_the_dag_file(tmp_path: Path) -> None:
    step = build_in("t_bad_input_rel", source_directory="scripts/train")
    here = Path(__file__).parent
    assert step.source_directory == str(here / "scripts" / "train")
    no_folder = build_in("t_bad_input_rel2")
    definition = no_folder.step_definition()
    assert definition.script_path == (here / "s.py").resolve()  # type: ignore[attr-defined]


def test_missing_script_in_an_existing_folder_fails_at_parse_time(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    with pytest.raises(ConfigurationError) as caught:
        build_in("t_bad_input_missing", source_directory=str(tmp_path), script_name="trian.py")
    assert caught.value.field == "script_name"
    assert str(tmp_path) in caught.value.problem
    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigurationError, match="is a file, not a folder"):
        build_in("t_bad_input_missing", source_directory=str(tmp_path / "afile"))
    # Templated names are checked when the task runs; a folder absent here may exist on the workers.
    build_in("t_bad_input_missing", source_directory=str(tmp_path), script_name="{{ 'x' }}.py")
    build_in("t_bad_input_missing", source_directory=str(tmp_path / "only_on_workers"))


def test_regenerate_conf_mistakes_are_errors() -> None:
    from airflow_provider_amlpipe.operators.base import regenerate_requested

    ids = ["train", "clean"]
    cases: list[tuple[dict[str, object], str, str]] = [
        ({"amlpipe": {"regenrate_outputs": True}}, "dag_run.conf.amlpipe", "'regenerate_outputs'"),
        ({"amlpipe": []}, "dag_run.conf.amlpipe", "expected an object"),
        ({"amlpipe": None}, "dag_run.conf.amlpipe", "expected an object"),
        ({"regenerate_outputs": True}, "dag_run.conf.regenerate_outputs", '"amlpipe"'),
        ({"amlpipe": {"regenerate_outputs": ["claen"]}}, "dag_run.conf.amlpipe.regenerate_outputs", "clean, train"),
        ({"amlpipe": {"regenerate_outputs": "train"}}, "dag_run.conf.amlpipe.regenerate_outputs", "a list"),
    ]
    for conf, field, words in cases:
        with pytest.raises(ConfigurationError) as caught:
            regenerate_requested(conf, "train", ids)
        assert caught.value.field == field, conf
        assert words in str(caught.value), conf
    assert regenerate_requested({"amlpipe": {"regenerate_outputs": ["clean"]}}, "clean", ids)
    assert not regenerate_requested({"amlpipe": {"regenerate_outputs": ["clean"]}}, "train", ids)
    assert not regenerate_requested({"amlpipe": {}}, "train", ids)
    # A DAG Param of that name is the DAG's own, not a misplaced amlpipe option.
    conf = {"regenerate_outputs": 1, "amlpipe": {"regenerate_outputs": True}}
    assert regenerate_requested(conf, "x", dag_params=["regenerate_outputs"])


def test_local_datastore_connections_need_an_absolute_folder(tmp_path: Path) -> None:
    from airflow_provider_amlpipe.hooks.datastore import datastore_from_connection

    with pytest.raises(ConfigurationError) as caught:
        datastore_from_connection("rel", "amlpipe_local", None, None, None, {"path": "data/store"})
    assert caught.value.field == "datastore (connection 'rel')"
    assert "absolute path" in caught.value.fix
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigurationError, match="is a file, not a folder"):
        datastore_from_connection("f", "amlpipe_local", None, None, None, {"path": str(tmp_path / "file")})
    store = datastore_from_connection("ok", "amlpipe_local", None, None, None, {"path": str(tmp_path / "new")})
    assert store.local_path("x") == tmp_path / "new" / "x"


@pytest.mark.parametrize(
    ("host", "login", "words"),
    [
        ("not a url", None, "Host 'not a url' is not an account URL"),
        ("ftp://acct.blob.core.windows.net", None, "is not an account URL"),
        ("myaccount", None, "is not an account URL"),
        ("https://", None, "is not an account URL"),
        ("http://127.0.0.1:port/devstoreaccount1", None, "is not an account URL"),
        (None, "My Account", "is not a storage account name"),
    ],
)
def test_blob_connection_urls_are_checked_naming_the_connection(
    host: str | None, login: str | None, words: str
) -> None:
    from airflow_provider_amlpipe.hooks.datastore import datastore_from_connection

    with pytest.raises(ConfigurationError) as caught:
        datastore_from_connection(
            "blob_conn", "amlpipe_azure_blob", host, login, "c2VjcmV0LWtleQ==", {"container": "data"}
        )
    assert caught.value.field == "datastore (connection 'blob_conn')"
    assert words in caught.value.problem
    assert "c2VjcmV0LWtleQ==" not in str(caught.value)


def test_an_unreachable_blob_service_is_named_without_secrets() -> None:
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
    from airflow_provider_amlpipe.hooks.datastore import datastore_from_connection

    key = "c2VjcmV0LWtleS1uZXZlci1zaG93bg=="
    # A bare host name with a dot is taken as https, as the SDK does.
    bare = datastore_from_connection(
        "b", "amlpipe_azure_blob", "acct.blob.core.windows.net", None, key, {"container": "cont"}
    )
    assert isinstance(bare, AzureBlobDatastore)
    assert bare.container_url == "https://acct.blob.core.windows.net/cont"
    store = AzureBlobDatastore.from_settings(
        "unreachable_conn",
        container="data",
        account_url="http://127.0.0.1:9/devstoreaccount1",  # the discard port: nothing listens
        account_key=key,
        retry_total=0,
    )
    for call in (lambda: store.exists("x"), lambda: list(store.list("raw")), lambda: store.write_bytes("k", b"x")):
        with pytest.raises(ConfigurationError) as caught:
            call()
        message = str(caught.value)
        assert caught.value.field == "datastore 'unreachable_conn'"
        assert "cannot reach the Blob service at http://127.0.0.1:9/devstoreaccount1/data" in message
        assert "connection 'unreachable_conn'" in caught.value.fix
        assert key not in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


# -- run time: what only a real run shows ------------------------------------------------------

SECRET_STEP = """\
import hashlib, sys
from airflow_provider_amlpipe import runtime

def digest(value):
    return hashlib.sha256(str(value).encode()).hexdigest()

# The script gets the real values: it writes their digests, never the values themselves.
lines = [digest(sys.argv[2]), digest(runtime.param("pw")), digest(runtime.param("api"))]
(runtime.output_path("out") / "digests.txt").write_text("\\n".join(lines))
"""


@pytest.mark.usefixtures("airflow_db")
def test_templated_secrets_reach_the_script_but_never_the_datastore_or_xcom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import uuid

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    password = f"pw-{uuid.uuid4().hex}"
    api_secret = f"api-{uuid.uuid4().hex}"
    src = tmp_path / "src"
    src.mkdir()
    (src / "step.py").write_text(SECRET_STEP)
    store_root = tmp_path / "store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_SECRET_STORE", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(store_root)}})
    )
    monkeypatch.setenv("AIRFLOW_CONN_SECRET_SERVICE", json.dumps({"conn_type": "generic", "password": password}))
    monkeypatch.setenv("AIRFLOW_VAR_SERVICE_API_SECRET", api_secret)
    dag_id = "t_bad_input_secrets"
    write_dag(
        dag_id,
        f"""
        from pathlib import Path
        from airflow.sdk import DAG, task
        from airflow_provider_amlpipe import Output, PythonScriptStepOperator, StepCommitOperator, StepReuseSensor

        def guarded(check):
            Path(check["outputs"]["made"], "made.txt").write_text("made")

        with DAG(dag_id={dag_id!r}, schedule=None):
            PythonScriptStepOperator(
                task_id="step", script_name="step.py", source_directory={str(src)!r}, datastore="secret_store",
                arguments=["--pw", "{{{{ conn.secret_service.password }}}}", "--mode", "fast"],
                step_params={{
                    "pw": "{{{{ conn.secret_service.password }}}}",
                    "api": "{{{{ var.value.service_api_secret }}}}",
                    "tokenizer": "bert-base",
                }},
                outputs=[Output("out")],
            )
            check = StepReuseSensor(
                task_id="check", guarded_task_id="work", code=[guarded], outputs=["made"], datastore="secret_store",
                fingerprint_params={{"pw": "{{{{ conn.secret_service.password }}}}"}},
            )
            commit = StepCommitOperator(
                task_id="commit", check_task_id="check", guarded_task_id="work", datastore="secret_store"
            )
            check >> task(task_id="work")(guarded)(check.output) >> commit
        """,
    )
    result = run_dag(dag_id)
    assert result.state == "success", result.task_states

    from airflow_provider_amlpipe.hooks.datastore import dataref_path

    digests = (dataref_path(result.xcom("step", "out")) / "digests.txt").read_text().split()
    expected = [hashlib.sha256(v.encode()).hexdigest() for v in (password, password, api_secret)]
    assert digests == expected  # the script received the real values
    stored = [p for p in store_root.rglob("*") if p.is_file()]
    assert any(p.parent.name == "steps" for p in stored)  # the records were written ...
    for path in stored:  # ... and no file of the datastore holds a secret
        data = path.read_bytes()
        assert password.encode() not in data, path
        assert api_secret.encode() not in data, path
    step_parts = json.loads(next(p for p in stored if p.name == f"{dag_id}.step.json").read_text())["parts"]
    assert step_parts["params"] == {"pw": "***", "api": "***", "tokenizer": "bert-base"}
    assert step_parts["arguments"] == ["--pw", "***", "--mode", "fast"]
    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=result.run_id, dag_ids=dag_id)).all()
        values = [json.dumps(XComModel.deserialize_value(row), default=str) for row in rows]
    assert {row.task_id for row in rows} >= {"step", "check", "commit"}
    for value in values:
        assert password not in value
        assert api_secret not in value


def test_redaction_replaces_known_secrets_only() -> None:
    from airflow.sdk.log import mask_secret

    from airflow_provider_amlpipe.operators.base import redact_secrets

    mask_secret("a-registered-secret-value")
    parts = {"tokenizer": "bert", "password": "plain", "args": ["--k", "x=a-registered-secret-value"], "n": 3}
    # Key names that merely sound secret are kept: they must still change the fingerprint.
    assert redact_secrets(parts) == {"tokenizer": "bert", "password": "plain", "args": ["--k", "x=***"], "n": 3}


@pytest.mark.usefixtures("airflow_db")
def test_relative_source_directory_and_a_long_dag_id_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.session import DAGS_FOLDER

    scripts = DAGS_FOLDER / "bad_input_scripts" / "train"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / "train.py").write_text(
        "from airflow_provider_amlpipe import runtime\n(runtime.output_path('model') / 'm.txt').write_text('m')\n"
    )
    store_root = tmp_path / "store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_LONG_STORE", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(store_root)}})
    )
    monkeypatch.chdir(tmp_path)  # the worker's current directory is not the DAG file's folder
    dag_id = "t_bad_input_long_" + "x" * 200
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            PythonScriptStepOperator(
                task_id="train_with_a_long_task_id", source_directory="bad_input_scripts/train",
                script_name="train.py", outputs=[Output("model", register_as="long_dag_model")],
                datastore="long_store",
            )
        """,
    )
    result = run_dag(dag_id)
    assert result.task_states["train_with_a_long_task_id"] == "success"
    assert result.xcom("train_with_a_long_task_id", "model")["name"] == "long_dag_model"
    steps = [p.name for p in (store_root / "reuse" / "steps").iterdir()]
    assert len(steps) == 1 and len(steps[0].encode()) <= 170 and steps[0].startswith("t_bad_input_long_x")
    assert run_dag(dag_id).reused("train_with_a_long_task_id")  # the shortened key explains and reuses


@pytest.mark.azurite
def test_blob_folder_markers_are_skipped_and_impossible_names_are_named(
    azurite_connection_string: str, tmp_path: Path
) -> None:

    from airflow_provider_amlpipe.hashing import Hasher, StatCache
    from airflow_provider_amlpipe.steps.inputs import resolve_inputs

    store = new_blob_datastore(azurite_connection_string, "markers", name="blob_markers")
    client = store.container_client
    try:
        client.upload_blob("raw/", b"")  # Storage Explorer's folder marker
        client.upload_blob("raw/sub/", b"")
        client.upload_blob("raw/sub/a.csv", b"a\n")
        client.upload_blob("raw/b.csv", b"b\n")
        client.upload_blob("adls/dir", b"", metadata={"hdi_isfolder": "true"})  # an ADLS Gen2 directory
        client.upload_blob("adls/dir/c.csv", b"c\n")
        client.upload_blob("only_markers/", b"")
        client.upload_blob("only_markers/inner/", b"")
        client.upload_blob("bad/ok.csv", b"ok\n")
        client.upload_blob("bad//double.csv", b"x\n")
        client.upload_blob("hdi_empty", b"", metadata={"hdi_isfolder": "true"})

        assert sorted(store.list("raw")) == ["raw/b.csv", "raw/sub/a.csv"]
        assert not store.exists("adls/dir")  # a directory, not an object
        hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))

        def resolve(path: str) -> object:
            return resolve_inputs({"x": DataPath("blob_markers", path)}, lambda _: store, hasher, "blob_markers")["x"]

        staged = resolve("raw").stage(tmp_path / "staged")  # type: ignore[attr-defined]
        assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()) == [
            "b.csv",
            "sub/a.csv",
        ]
        assert resolve("adls/dir").kind == "folder"  # type: ignore[attr-defined]
        for empty in ("only_markers", "hdi_empty"):
            with pytest.raises(ConfigurationError) as caught:
                resolve(empty)
            assert caught.value.field == "inputs['x'].path"
            assert "is an empty folder" in caught.value.problem
        with pytest.raises(ConfigurationError) as caught:
            resolve("absent")
        assert "does not exist" in caught.value.problem
        with pytest.raises(ConfigurationError) as caught:
            resolve("bad")
        assert caught.value.field == "inputs['x'].path"
        assert "'bad//double.csv'" in caught.value.problem and "cannot be a file" in caught.value.problem
    finally:
        client.delete_container()


def test_environment_and_whole_step_inputs_are_checked_at_parse_time(tmp_path: Path) -> None:
    from airflow.sdk import DAG

    from airflow_provider_amlpipe import PythonEnvironment

    (tmp_path / "s.py").write_text("")
    with pytest.raises(ConfigurationError) as caught:
        build_in("t_env", source_directory=str(tmp_path), environment=PythonEnvironment(requirements="reqs.txt"))
    assert caught.value.field == "environment.requirements"
    with pytest.raises(ConfigurationError, match="expected a path"):
        build_in("t_env", environment=PythonEnvironment(requirements=5))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="True or False"):
        build_in("t_env", environment=PythonEnvironment(system_site_packages="no"))  # type: ignore[arg-type]
    with DAG(dag_id="t_whole_step", schedule=None):
        two = PythonScriptStepOperator(task_id="two", script_name="s.py", outputs=["a", "b"])
        one = PythonScriptStepOperator(task_id="one", script_name="s.py", outputs=["a"])
        with pytest.raises(ConfigurationError) as caught:
            PythonScriptStepOperator(task_id="down", script_name="s.py", inputs={"x": two.output})
        assert caught.value.field == "inputs['x']"
        assert "two.output['<output name>']" in caught.value.fix
        PythonScriptStepOperator(task_id="down_ok", script_name="s.py", inputs={"x": one.output})


def test_blob_connection_flags_are_not_guessed() -> None:
    from airflow_provider_amlpipe.hooks.datastore import datastore_from_connection

    extra = {"container": "data", "create_container": "no"}
    with pytest.raises(ConfigurationError) as caught:
        datastore_from_connection("flags", "amlpipe_azure_blob", "https://a.blob.core.windows.net", None, "k", extra)
    assert caught.value.field == "datastore (connection 'flags')"
    assert "extra.create_container" in caught.value.fix


@pytest.mark.azurite
def test_refused_blob_credentials_name_the_connection(azurite_connection_string: str) -> None:
    from support.azurite_server import ACCOUNT_NAME

    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore

    endpoint = next(p.split("=", 1)[1] for p in azurite_connection_string.split(";") if p.startswith("BlobEndpoint="))
    wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
    store = AzureBlobDatastore.from_settings(
        "wrong_key_conn", container="anything", account_url=endpoint, account_key=wrong_key, retry_total=0
    )
    assert ACCOUNT_NAME in store.container_url
    with pytest.raises(ConfigurationError) as caught:
        store.exists("x")
    assert caught.value.field == "datastore 'wrong_key_conn'"
    assert "refused the credentials" in caught.value.problem
    assert wrong_key not in str(caught.value)


def test_commit_operator_ids_are_checked() -> None:
    from airflow.sdk import DAG

    from airflow_provider_amlpipe import StepCommitOperator

    with DAG(dag_id="t_bad_commit", schedule=None):
        with pytest.raises(ConfigurationError, match="check_task_id"):
            StepCommitOperator(task_id="c1", check_task_id=None, guarded_task_id="g")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="datastore"):
            StepCommitOperator(task_id="c2", check_task_id="c", guarded_task_id="g", datastore="")


def test_a_source_directory_missing_at_parse_time_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    import logging

    with caplog.at_level(logging.WARNING):
        build_in("t_missing_folder", source_directory=str(tmp_path / "deployed_elsewhere"))
    printed = capfd.readouterr()
    logged = caplog.text + printed.out + printed.err
    assert "does not exist on this machine" in logged and "deployed_elsewhere" in logged
