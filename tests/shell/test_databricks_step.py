"""DatabricksStepOperator with compute="local" in DAGs run by ``dag.test()``: notebooks get inputs and
outputs as widgets, scripts as ``--NAME path`` arguments; reuse, failures naming the cell, the
ported examples, and the arguments refused at parse time.

Tests whose task starts Spark (a JVM) are ``slow``; the fast ones run notebooks and scripts that never
touch ``spark`` (it is only started on first use).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from support.dagtools import logs_of, run_dag, write_dag
from support.paths import REPO, SAMPLES
from support.session import DAGS_FOLDER
from support.stores import local_store

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.errors import ConfigurationError

pytestmark = [pytest.mark.usefixtures("airflow_db")]

HEADER = "# Databricks notebook source\n"
SEP = "\n# COMMAND ----------\n\n"
PREP = """\
import sys
from pathlib import Path
Path(sys.argv[1], "testdata.txt").write_text("hello world\\nhello airflow\\n")
"""
# A notebook that never touches spark: no JVM starts.
COPY_NOTEBOOK = HEADER + SEP.join(
    [
        "# MAGIC %md\n# MAGIC Copies the input's testdata.txt upper-cased into the output.\n",
        'from pathlib import Path\nsrc = dbutils.widgets.get("input")\ndst = dbutils.widgets.get("output")\n'
        'print("myparam is", dbutils.widgets.get("myparam"))\n',
        'text = Path(src, "testdata.txt").read_text()\n'
        "if text.startswith('boom'):\n    raise ValueError('the data says boom')\n"
        'dbutils.fs.put(dst + "/output.txt", text.upper(), overwrite=True)\n',
        'dbutils.notebook.exit("copied " + str(len(text.splitlines())) + " lines")\n',
    ]
)
ARGS_SCRIPT = """\
import argparse
from pathlib import Path
parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
parser.add_argument("--suffix", default="")
args = parser.parse_args()
text = Path(args.input, "testdata.txt").read_text()
Path(args.output, "lines.txt").write_text(text + args.suffix)
print("script saw", args.input, args.output)
"""


def step_dag(dag_id: str, tmp_path: Path, datastore: str, step: str, prep: str = PREP) -> None:
    """A Python step writing ``testdata.txt``, then the Databricks step (``step``: its arguments)."""
    src = tmp_path / "prep_src"
    src.mkdir(exist_ok=True)
    (src / "prep.py").write_text(prep)
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DatabricksStepOperator, Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            prep = PythonScriptStepOperator(
                task_id="prep", source_directory={str(src)!r}, script_name="prep.py",
                arguments=["{{outputs.data}}"], outputs=[Output("data")], datastore={datastore!r},
            )
            DatabricksStepOperator(
                task_id="db", inputs={{"input": prep.output}}, outputs=[Output("output")],
                datastore={datastore!r}, {step}
            )
        """,
    )


def test_a_notebook_gets_widgets_commits_its_output_and_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    dag_id = "t_dbx_notebook"
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    notebook = tmp_path / "nb" / "copy.py"
    notebook.parent.mkdir()
    notebook.write_text(COPY_NOTEBOOK)
    step_dag(
        dag_id, tmp_path, datastore,
        f"notebook_path={str(notebook)!r}, notebook_params={{'myparam': 'testparam'}}, num_workers=1,"
        " spark_version='15.4.x-scala2.12', node_type='Standard_D3_v2'",
    )  # fmt: skip
    first = run_dag(dag_id)
    logs = logs_of(capfd)
    assert first.state == "success", first.task_states
    ref = first.xcom("db", "output")
    assert store.read_bytes(f"{ref['path']}/output.txt") == b"HELLO WORLD\nHELLO AIRFLOW\n"
    assert "myparam is testparam" in logs
    assert "Notebook exit value: copied 2 lines" in logs
    assert run_dag(dag_id).ran() == set()
    # The notebook's content is part of the fingerprint; cluster settings are not.
    notebook.write_text(COPY_NOTEBOOK.replace("copied ", "copied: "))
    assert run_dag(dag_id).ran() == {"db"}


def test_a_script_gets_name_arguments_after_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dag_id = "t_dbx_script"
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    code = tmp_path / "code"
    code.mkdir()
    (code / "job.py").write_text(ARGS_SCRIPT)
    step_dag(
        dag_id, tmp_path, datastore,
        f"python_script_name='job.py', source_directory={str(code)!r}, python_script_params=['--suffix', 'END'],"
        " existing_cluster_id='0123-456789-abc'",
    )  # fmt: skip
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    ref = first.xcom("db", "output")
    assert store.read_bytes(f"{ref['path']}/lines.txt") == b"hello world\nhello airflow\nEND"
    assert run_dag(dag_id).ran() == set()
    # Another file of source_directory changes the fingerprint.
    (code / "helper.py").write_text("X = 1\n")
    assert run_dag(dag_id).ran() == {"db"}


def test_a_failing_notebook_fails_the_task_naming_the_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    dag_id = "t_dbx_fail"
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    notebook = tmp_path / "copy.py"
    notebook.write_text(COPY_NOTEBOOK)
    step_dag(
        dag_id, tmp_path, datastore, f"notebook_path={str(notebook)!r}, notebook_params={{'myparam': 'x'}}",
        prep=PREP.replace("hello world", "boom"),
    )  # fmt: skip
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["db"] == "failed"
    assert "ValueError: the data says boom (in cell 3, a %python cell starting at line" in logs
    assert "Databricks notebook run FAILED" in logs
    assert all(json.loads(store.read_bytes(k))["released"] for k in store.list("reuse/leases"))


def test_a_notebook_with_a_magic_that_cannot_run_locally_fails_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    dag_id = "t_dbx_magic"
    datastore, _ = local_store(dag_id, tmp_path, monkeypatch)
    notebook = tmp_path / "sh.py"
    notebook.write_text(HEADER + "print('never')\n" + SEP + "# MAGIC %sh\n# MAGIC ls\n")
    step_dag(dag_id, tmp_path, datastore, f"notebook_path={str(notebook)!r}")
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["db"] == "failed"
    assert "notebook_path" in logs and "%sh" in logs
    assert "never" not in logs.replace("print('never')", "")


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "problem"),
    [
        ({}, "notebook_path/python_script_name/python_script_path/main_class_name", "no task given"),
        (
            {"notebook_path": "nb.py", "python_script_name": "x.py"},
            "notebook_path/python_script_name/python_script_path/main_class_name",
            "notebook_path and python_script_name given together",
        ),
        (
            {"notebook_path": "nb.py", "existing_cluster_id": "c-1", "spark_version": "15.4.x", "num_workers": 1},
            "existing_cluster_id",
            "new-cluster field.*spark_version, num_workers",
        ),
        (
            {"notebook_path": "nb.py", "num_workers": 2, "min_workers": 1, "max_workers": 4},
            "num_workers",
            "autoscale bounds",
        ),
        ({"notebook_path": "nb.py", "min_workers": 1}, "min_workers/max_workers", "both bounds"),
        ({"notebook_path": "nb.py", "min_workers": 5, "max_workers": 2}, "min_workers", "above max_workers"),
        ({"notebook_path": "nb.py", "source_directory": "code"}, "source_directory", "only used with python_script"),
        ({"main_class_name": "a.Main", "source_directory": "code"}, "source_directory", "python_script_name"),
        ({"python_script_path": "/Volumes/main/default/v/x.py"}, "python_script_path", "workspace path"),
        ({"main_class_name": "a.Main"}, "jar_libraries", "needs the jar"),
        ({"notebook_path": "nb.py", "jar_params": ["a"]}, "jar_params", "only used with main_class_name"),
        (
            {"notebook_path": "nb.py", "notebook_params": {"input": "x"}, "inputs": {"input": "{{ x }}"}},
            "notebook_params",
            "'input' is both",
        ),
        ({"notebook_path": "nb.py", "libraries": [{"npm": "x"}]}, r"libraries\[0\]", "not a Databricks library"),
        ({"notebook_path": "nb.py", "timeout_seconds": 0}, "timeout_seconds", "whole number"),
        ({"notebook_path": "nb.py", "notebook_params": {"p": [1]}}, r"notebook_params\['p'\]", "text"),
    ],
)
def test_bad_arguments_are_refused_at_parse_time(kwargs: dict[str, Any], field: str, problem: str) -> None:
    from airflow_provider_amlpipe import DatabricksStepOperator

    with pytest.raises(ConfigurationError, match=problem) as caught:
        DatabricksStepOperator(task_id="t", **kwargs)
    assert caught.value.field.replace("[", "\\[").replace("]", "\\]") == field or caught.value.field == field


def test_valid_cluster_arguments_are_accepted() -> None:
    from airflow_provider_amlpipe import DatabricksStepOperator

    op = DatabricksStepOperator(
        task_id="t", notebook_path="nb.py", spark_version="15.4.x-scala2.12", node_type="Standard_D3_v2",
        min_workers=1, max_workers=3, spark_env_variables={"A": 1}, spark_conf={"spark.x": "y"},
        init_scripts=[{"workspace": {"destination": "/init.sh"}}], instance_pool_id=None,
        libraries=[{"pypi": {"package": "requests"}}, {"jar": "dbfs:/a.jar"}], timeout_seconds=600,
    )  # fmt: skip
    assert op.task_kind == "notebook" and op.spark_env_variables == {"A": "1"}
    assert DatabricksStepOperator(task_id="u", python_script_path="job.py", existing_cluster_id="c-1",
                                  permit_cluster_restart=True).task_kind == "python_script_path"  # fmt: skip


# -- with Spark -----------------------------------------------------------------------------------


def copy_examples() -> None:
    for name in ("aml_databricks_notebook.py", "aml_databricks_script.py", "aml_databricks_dbfs.py"):
        shutil.copy(REPO / "dags" / name, DAGS_FOLDER / name)
    shutil.copytree(
        REPO / "dags" / "scripts" / "databricks", DAGS_FOLDER / "scripts" / "databricks", dirs_exist_ok=True
    )
    (DAGS_FOLDER / ".airflowignore").write_text("scripts/\ndata/\n")


@pytest.mark.slow
def test_the_notebook_example_runs_locally_on_spark_and_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    copy_examples()
    store = LocalDatastore("default", tmp_path / "store")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMLPIPE_DEFAULT", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(store.root)}})
    )
    first = run_dag("aml_databricks_notebook")
    logs = logs_of(capfd)
    assert first.state == "success", first.task_states
    ref = first.xcom("DBNotebookInWS", "output")
    rows = store.read_bytes(f"{ref['path']}/output.txt").decode().splitlines()
    words = (SAMPLES / "databricks" / "testdata.txt").read_text().split()
    assert sorted(rows) == sorted(f"{w},{words.count(w)}" for w in set(words))
    assert f"Notebook exit value: {len(set(words))} words written to output.txt" in logs
    assert run_dag("aml_databricks_notebook").ran() == set()


@pytest.mark.slow
def test_the_script_example_runs_locally_on_spark_and_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_examples()
    store = LocalDatastore("default", tmp_path / "store")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMLPIPE_DEFAULT", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(store.root)}})
    )
    first = run_dag("aml_databricks_script")
    assert first.state == "success", first.task_states
    ref = first.xcom("DBPythonInLocalMachine", "output")
    lines = store.read_bytes(f"{ref['path']}/word_counts.csv").decode().splitlines()
    assert lines[0] == "word,count" and "hello,2" in lines
    assert run_dag("aml_databricks_script").ran() == set()


@pytest.mark.slow
def test_the_dbfs_script_and_jar_examples_run_locally_and_are_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_examples()
    store = LocalDatastore("default", tmp_path / "store")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMLPIPE_DEFAULT", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(store.root)}})
    )
    dbfs = tmp_path / "dbfs"
    monkeypatch.setenv("AIRFLOW__AMLPIPE__LOCAL_DBFS_ROOT", str(dbfs))
    first = run_dag("aml_databricks_dbfs")
    assert first.state == "success", first.task_states
    assert (dbfs / "aml-pipelines-demo" / "train-db-dbfs.py").is_file()
    words = (SAMPLES / "databricks" / "testdata.txt").read_text().split()
    expected = ["word,count", *sorted(f"{w},{words.count(w)}" for w in set(words))]
    for task_id in ("DBFSReference", "DBJarInDBFS"):
        ref = first.xcom(task_id, "output")
        assert sorted(store.read_bytes(f"{ref['path']}/word_counts.csv").decode().splitlines()) == sorted(expected)
        assert list(store.list(ref["path"])) == [f"{ref['path']}/word_counts.csv"]  # no side files
    # Uploaded again (the jar rebuilt byte for byte): both steps reused.
    assert run_dag("aml_databricks_dbfs").ran() == set()
    # A changed script on DBFS reruns its step only.
    script = dbfs / "aml-pipelines-demo" / "train-db-dbfs.py"
    (DAGS_FOLDER / "scripts" / "databricks" / "dbfs" / "train-db-dbfs.py").write_text(
        script.read_text() + "\nprint('changed')\n"
    )
    assert run_dag("aml_databricks_dbfs").ran() == {"DBFSReference"}


# -- the definition alone -------------------------------------------------------------------------


def test_the_fingerprint_covers_code_and_params_not_the_cluster(tmp_path: Path) -> None:
    from airflow_provider_amlpipe.hashing import Hasher
    from airflow_provider_amlpipe.steps.databricks import DatabricksStep

    notebook = tmp_path / "nb.py"
    notebook.write_text(COPY_NOTEBOOK)

    def parts(**kwargs: Any) -> dict[str, Any]:
        step = DatabricksStep(**{"task_kind": "notebook", "notebook_path": str(notebook), **kwargs})
        return step.fingerprint_parts(Hasher())

    base = parts(notebook_params={"myparam": "a"})
    assert parts(notebook_params={"myparam": "a"}, spark_conf={"spark.x": "1"}, timeout_seconds=5) == base
    assert parts(notebook_params={"myparam": "b"}) != base
    notebook.write_text(COPY_NOTEBOOK + "\n# COMMAND ----------\n\nprint(1)\n")
    assert parts(notebook_params={"myparam": "a"}) != base


def test_killing_the_step_stops_the_notebook_and_what_it_started(tmp_path: Path) -> None:
    import os
    import threading
    import time

    from airflow_provider_amlpipe.compute.local import LocalProcessBackend
    from airflow_provider_amlpipe.errors import StepFailedError
    from airflow_provider_amlpipe.steps.databricks import DatabricksStep
    from airflow_provider_amlpipe.steps.runner import StepWorkspace

    pid_file = tmp_path / "pid"
    notebook = tmp_path / "slow.py"
    notebook.write_text(
        HEADER + "import os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\nprint('started', flush=True)\ntime.sleep(120)\n"
    )
    root = tmp_path / "ws"
    root.mkdir()
    workspace = StepWorkspace(root, {}, {}, root / "metrics.jsonl", root / "context.json")
    invocation = DatabricksStep(task_kind="notebook", notebook_path=str(notebook)).invocation(workspace)
    backend = LocalProcessBackend()
    lines: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            backend.run(invocation, lambda _s, line: lines.append(line))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while "started" not in lines:
        assert time.monotonic() < deadline and thread.is_alive(), lines
        time.sleep(0.05)
    started = time.monotonic()
    backend.terminate()
    thread.join(timeout=30)
    assert not thread.is_alive() and time.monotonic() - started < 20
    assert errors and isinstance(errors[0], StepFailedError)
    notebook_pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while True:  # the notebook's own process (the runner's child) is gone too
        try:
            os.kill(notebook_pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the notebook's process outlived the kill"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_jar_step_gets_name_arguments_and_runs_with_spark_submit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    if shutil.which("javac") is None or shutil.which("jar") is None:
        pytest.skip("no JDK (javac, jar) on this machine")
    src = tmp_path / "src" / "demo"
    src.mkdir(parents=True)
    (src / "Main.java").write_text(
        "package demo;\n"
        "import java.nio.file.*;\n"
        "public class Main {\n"
        "  public static void main(String[] args) throws Exception {\n"
        "    String in = null, out = null;\n"
        "    for (int i = 0; i < args.length - 1; i++) {\n"
        '      if (args[i].equals("--input")) in = args[i + 1];\n'
        '      if (args[i].equals("--output")) out = args[i + 1];\n'
        "    }\n"
        '    String text = new String(Files.readAllBytes(Paths.get(in, "testdata.txt")));\n'
        '    Files.write(Paths.get(out, "upper.txt"), (args[0] + ":" + text.toUpperCase()).getBytes());\n'
        "  }\n"
        "}\n"
    )
    classes = tmp_path / "classes"
    subprocess.run(["javac", "-d", str(classes), str(src / "Main.java")], check=True)
    jar = tmp_path / "demo.jar"
    subprocess.run(["jar", "cf", str(jar), "-C", str(classes), "."], check=True)
    dag_id = "t_dbx_jar"
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    step_dag(
        dag_id, tmp_path, datastore,
        f"main_class_name='demo.Main', jar_params=['first'], jar_libraries=[{str(jar)!r}]",
    )  # fmt: skip
    result = run_dag(dag_id)
    assert result.state == "success", result.task_states
    ref = result.xcom("db", "output")
    assert store.read_bytes(f"{ref['path']}/upper.txt") == b"first:HELLO WORLD\nHELLO AIRFLOW\n"
    assert run_dag(dag_id).ran() == set()
