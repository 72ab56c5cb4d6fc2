"""databricks-sdk against the local Databricks server (support/databricks_server.py): runs really execute locally."""

from __future__ import annotations

import base64
import datetime
import io
import json
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language, ObjectType
from support.databricks_server import DatabricksTestServer, running_databricks_server

NOTEBOOK = """# Databricks notebook source
dbutils.widgets.text("name", "nobody")
name = dbutils.widgets.get("name")

# COMMAND ----------

print("hello", name)
dbutils.notebook.exit(f"hi {name}")
"""

FAILING = """# Databricks notebook source
x = 1

# COMMAND ----------

raise ValueError("bad input data")
"""

SLEEPING = """# Databricks notebook source
import time
dbutils.fs.put("dbfs:/tmp/started.txt", "yes", True)
time.sleep(120)
dbutils.notebook.exit("should not get here")
"""


@pytest.fixture
def server() -> Iterator[DatabricksTestServer]:
    with running_databricks_server() as state:
        yield state


@pytest.fixture
def client(server: DatabricksTestServer) -> WorkspaceClient:
    return WorkspaceClient(host=server.endpoint, token=server.token, auth_type="pat")


def _import(client: WorkspaceClient, path: str, text: str) -> None:
    client.workspace.mkdirs(path.rsplit("/", 1)[0])
    client.workspace.import_(
        path,
        content=base64.b64encode(text.encode()).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )


def _wait(client: WorkspaceClient, run_id: int, timeout: float = 120) -> jobs.Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.jobs.get_run(run_id)
        assert run.state is not None
        if run.state.life_cycle_state in (jobs.RunLifeCycleState.TERMINATED, jobs.RunLifeCycleState.INTERNAL_ERROR):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end")


def _task_id(run: jobs.Run) -> int:
    """The run id of the run's only task (``get_run_output`` takes a task run)."""
    assert run.tasks and run.tasks[0].run_id is not None
    return run.tasks[0].run_id


def _wait_state(client: WorkspaceClient, run_id: int, state: jobs.RunLifeCycleState, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.jobs.get_run(run_id)
        if run.state and run.state.life_cycle_state == state:
            return
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {state}")


def _notebook_run(path: str, params: dict[str, str] | None = None) -> list[jobs.SubmitTask]:
    return [
        jobs.SubmitTask(
            task_key="main",
            existing_cluster_id="0101-000000-local",
            notebook_task=jobs.NotebookTask(notebook_path=path, base_parameters=params, source=jobs.Source.WORKSPACE),
        )
    ]


def test_notebook_run_with_parameters_and_exit_value(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    _import(client, "/Users/me@example.com/hello", NOTEBOOK)
    status = client.workspace.get_status("/Users/me@example.com/hello")
    assert status.object_type == ObjectType.NOTEBOOK and status.language == Language.PYTHON
    exported = client.workspace.export("/Users/me@example.com/hello")
    assert base64.b64decode(exported.content or "").decode() == NOTEBOOK

    submitted = client.jobs.submit(
        run_name="hello", tasks=_notebook_run("/Users/me@example.com/hello", {"name": "amlpipe"})
    )
    run = _wait(client, submitted.run_id)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.run_page_url and str(submitted.run_id) in run.run_page_url
    assert run.tasks and _task_id(run) != submitted.run_id
    with pytest.raises(InvalidParameterValue, match="multiple tasks"):
        client.jobs.get_run_output(submitted.run_id)
    output = client.jobs.get_run_output(_task_id(run))
    assert output.notebook_output is not None and output.notebook_output.result == "hi amlpipe"
    assert output.error is None
    assert "hello amlpipe" in "\n".join(server.task_logs(_task_id(run)))
    assert server.submissions == 1


def test_jupyter_notebook_imported_with_auto(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    cell = {"cell_type": "code", "source": ["dbutils.notebook.exit(dbutils.widgets.get('x'))"], "metadata": {}}
    notebook = {"cells": [{**cell, "outputs": [], "execution_count": None}], "metadata": {}, "nbformat": 4}
    client.workspace.mkdirs("/Shared")
    content = base64.b64encode(json.dumps(notebook).encode()).decode()
    client.workspace.import_("/Shared/j.ipynb", content=content, format=ImportFormat.AUTO)
    assert client.workspace.get_status("/Shared/j").object_type == ObjectType.NOTEBOOK  # the extension is dropped
    run = _wait(
        client, client.jobs.submit(run_name="j", tasks=_notebook_run("/Workspace/Shared/j", {"x": "ok"})).run_id
    )
    output = client.jobs.get_run_output(_task_id(run))
    assert output.notebook_output is not None and output.notebook_output.result == "ok"


def test_python_script_on_dbfs_with_arguments(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    script = b"import sys\nprint('args', sys.argv[1:])\nopen(sys.argv[2] + '/out/seen.txt', 'w').write(sys.argv[4])\n"
    client.dbfs.upload("/scripts/job.py", io.BytesIO(script), overwrite=True)
    assert client.dbfs.get_status("/scripts/job.py").file_size == len(script)
    (server.dbfs_dir / "out").mkdir()
    out_dir = str(server.dbfs_dir)
    submitted = client.jobs.submit(
        run_name="script",
        tasks=[
            jobs.SubmitTask(
                task_key="main",
                new_cluster=jobs.compute.ClusterSpec(
                    spark_version="15.4.x-scala2.12", node_type_id="Standard_DS3_v2", num_workers=1
                ),
                spark_python_task=jobs.SparkPythonTask(
                    python_file="dbfs:/scripts/job.py", parameters=["--root", out_dir, "--value", "42"]
                ),
            )
        ],
    )
    run = _wait(client, submitted.run_id)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    assert run.tasks
    output = client.jobs.get_run_output(_task_id(run))
    assert output.logs and "args ['--root'" in output.logs
    with client.dbfs.download("/out/seen.txt") as f:
        assert f.read() == b"42"


def test_idempotency_token_resubmission_reattaches(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    _import(client, "/Shared/hello", NOTEBOOK)
    first = client.jobs.submit(run_name="x", tasks=_notebook_run("/Shared/hello"), idempotency_token="fp-1-ti-1")
    second = client.jobs.submit(run_name="x", tasks=_notebook_run("/Shared/hello"), idempotency_token="fp-1-ti-1")
    run_id: int = first.run_id
    assert second.run_id == run_id
    run = _wait(client, run_id)
    third = client.jobs.submit(run_name="x", tasks=_notebook_run("/Shared/hello"), idempotency_token="fp-1-ti-1")
    assert third.run_id == run_id
    assert server.submissions == 1 and server.submit_requests == 3
    assert run.tasks and server.executions[_task_id(run)] == 1


def test_cancel_kills_a_running_notebook(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    _import(client, "/Shared/sleep", SLEEPING)
    submitted = client.jobs.submit(run_name="sleep", tasks=_notebook_run("/Shared/sleep"))
    deadline = time.monotonic() + 60
    while not (server.dbfs_dir / "tmp" / "started.txt").exists():
        assert time.monotonic() < deadline, "the notebook never started"
        time.sleep(0.05)
    started = time.monotonic()
    client.jobs.cancel_run(submitted.run_id)
    run = _wait(client, submitted.run_id, timeout=30)
    assert time.monotonic() - started < 20
    assert run.state is not None and run.state.result_state == jobs.RunResultState.CANCELED
    assert run.state.user_cancelled_or_timedout
    assert server.cancels == [submitted.run_id]


def test_cancel_while_pending_runs_nothing(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    _import(client, "/Shared/hello", NOTEBOOK)
    server.run_delay = 30
    submitted = client.jobs.submit(run_name="x", tasks=_notebook_run("/Shared/hello"))
    _wait_state(client, submitted.run_id, jobs.RunLifeCycleState.RUNNING)
    client.jobs.cancel_run(submitted.run_id)
    run = _wait(client, submitted.run_id, timeout=10)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.CANCELED
    assert sum(server.executions.values()) == 0


def test_failing_notebook_reports_error_and_trace(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    _import(client, "/Shared/fail", FAILING)
    submitted = client.jobs.submit(run_name="fail", tasks=_notebook_run("/Shared/fail"))
    run = _wait(client, submitted.run_id)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.FAILED
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.tasks
    output = client.jobs.get_run_output(_task_id(run))
    assert output.error and "bad input data" in output.error
    assert output.error_trace and "ValueError" in output.error_trace


def test_timeout_seconds(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    _import(client, "/Shared/sleep", SLEEPING)
    submitted = client.jobs.submit(run_name="t", tasks=_notebook_run("/Shared/sleep"), timeout_seconds=3)
    run = _wait(client, submitted.run_id, timeout=60)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.TIMEDOUT


def test_missing_notebook_is_an_internal_error(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    submitted = client.jobs.submit(run_name="x", tasks=_notebook_run("/Shared/nope"))
    run = _wait(client, submitted.run_id)
    assert run.state is not None and run.state.life_cycle_state == jobs.RunLifeCycleState.INTERNAL_ERROR
    assert "/Shared/nope" in (run.state.state_message or "")


def test_bad_submissions_are_refused(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue):
        client.jobs.submit(run_name="x", tasks=[jobs.SubmitTask(task_key="a")])
    both = jobs.SubmitTask(
        task_key="a",
        notebook_task=jobs.NotebookTask(notebook_path="/x"),
        spark_python_task=jobs.SparkPythonTask(python_file="dbfs:/x.py"),
    )
    with pytest.raises(InvalidParameterValue, match="exactly one"):
        client.jobs.submit(run_name="x", tasks=[both])
    assert server.submissions == 0


def test_wrong_or_missing_token(server: DatabricksTestServer) -> None:
    wrong = WorkspaceClient(host=server.endpoint, token="dapi-wrong", auth_type="pat")
    with pytest.raises(PermissionDenied, match="Invalid access token"):
        wrong.workspace.get_status("/")
    with pytest.raises(PermissionDenied):
        wrong.jobs.submit(run_name="x", tasks=_notebook_run("/Shared/x"))
    assert server.submissions == 0
    status, _, body = server.handle("GET", "/api/2.0/workspace/get-status?path=/", {}, b"")
    assert status == 401 and body["error_code"] == "UNAUTHENTICATED"


def test_workspace_import_rules(client: WorkspaceClient) -> None:
    content = base64.b64encode(NOTEBOOK.encode()).decode()
    with pytest.raises(ResourceDoesNotExist):
        client.workspace.import_(
            "/Users/nobody/nb", content=content, format=ImportFormat.SOURCE, language=Language.PYTHON
        )
    _import(client, "/Shared/nb", NOTEBOOK)
    with pytest.raises(ResourceAlreadyExists):
        client.workspace.import_("/Shared/nb", content=content, format=ImportFormat.SOURCE, language=Language.PYTHON)
    client.workspace.import_("/Shared/auto.py", content=content, format=ImportFormat.AUTO)
    assert client.workspace.get_status("/Shared/auto").object_type == ObjectType.NOTEBOOK
    names = sorted(o.path or "" for o in client.workspace.list("/Shared"))
    assert names == ["/Shared/auto", "/Shared/nb"]
    client.workspace.delete("/Shared/nb")
    with pytest.raises(NotFound):
        client.workspace.get_status("/Shared/nb")


def test_dbfs_and_volumes_files(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    data = bytes(range(256)) * 20_000  # > 1 MB: several add-block calls
    client.dbfs.upload("/data/big.bin", io.BytesIO(data), overwrite=True)
    with client.dbfs.download("/data/big.bin") as f:
        assert f.read() == data
    assert [i.path for i in client.dbfs.list("/data")] == ["/data/big.bin"]
    client.dbfs.delete("/data", recursive=True)
    with pytest.raises(NotFound):
        client.dbfs.get_status("/data/big.bin")

    client.files.create_directory("/Volumes/main/default/vol/scripts")
    client.files.upload("/Volumes/main/default/vol/scripts/a.py", io.BytesIO(b"print('v')\n"), overwrite=True)
    assert (server.volumes_dir / "main/default/vol/scripts/a.py").read_bytes() == b"print('v')\n"
    assert client.files.get_metadata("/Volumes/main/default/vol/scripts/a.py").content_length == 11
    contents = client.files.download("/Volumes/main/default/vol/scripts/a.py").contents
    assert contents is not None and contents.read() == b"print('v')\n"
    entries = list(client.files.list_directory_contents("/Volumes/main/default/vol/scripts"))
    assert [e.name for e in entries] == ["a.py"]
    client.files.delete("/Volumes/main/default/vol/scripts/a.py")
    with pytest.raises(NotFound):
        client.files.get_metadata("/Volumes/main/default/vol/scripts/a.py")


def test_python_script_on_a_volume(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    client.files.upload("/Volumes/main/default/vol/s.py", io.BytesIO(b"import sys\nprint('volume', *sys.argv[1:])\n"))
    task = jobs.SubmitTask(
        task_key="s",
        spark_python_task=jobs.SparkPythonTask(python_file="/Volumes/main/default/vol/s.py", parameters=["a", "b"]),
    )
    run = _wait(client, client.jobs.submit(run_name="v", tasks=[task]).run_id)
    assert run.tasks and run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS
    assert "volume a b" in (client.jobs.get_run_output(_task_id(run)).logs or "")


def test_injected_errors_are_retried(server: DatabricksTestServer, client: WorkspaceClient) -> None:
    server.inject = [503]
    client.workspace.mkdirs("/Shared/retry")
    assert client.workspace.get_status("/Shared/retry").object_type == ObjectType.DIRECTORY
    assert [r.path for r in server.requests].count("/api/2.0/workspace/mkdirs") == 2


SPARK_NOTEBOOK = """# Databricks notebook source
out = dbutils.widgets.get("output")
df = spark.range(5).selectExpr("id", "id * id AS square")
df.coalesce(1).write.mode("overwrite").option("header", True).csv(out)

# COMMAND ----------

dbutils.notebook.exit(str(spark.read.option("header", True).csv(out).count()))
"""


@pytest.mark.slow
def test_spark_notebook_waited_with_the_sdk(
    server: DatabricksTestServer, client: WorkspaceClient, tmp_path: Path
) -> None:
    _import(client, "/Shared/spark", SPARK_NOTEBOOK)
    out = tmp_path / "squares"
    waiter = client.jobs.submit(run_name="spark", tasks=_notebook_run("/Shared/spark", {"output": str(out)}))
    run = waiter.result(timeout=datetime.timedelta(minutes=5))  # the SDK's wait_get_run_job_terminated_or_skipped
    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    output = client.jobs.get_run_output(_task_id(run))
    assert output.notebook_output is not None and output.notebook_output.result == "5"
    assert sorted(out.glob("part-*.csv"))


JAVA = """public class Hello {
  public static void main(String[] args) {
    System.out.println("jar says " + String.join(",", args));
    if (args.length > 0 && args[0].equals("fail")) throw new IllegalStateException("asked to fail");
  }
}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK to build the test jar")
def test_jar_task(server: DatabricksTestServer, client: WorkspaceClient, tmp_path: Path) -> None:
    (tmp_path / "Hello.java").write_text(JAVA)
    subprocess.run(["javac", "--release", "11", "Hello.java"], cwd=tmp_path, check=True)
    jar = io.BytesIO()
    with zipfile.ZipFile(jar, "w") as archive:
        archive.write(tmp_path / "Hello.class", "Hello.class")
    jar.seek(0)
    client.dbfs.upload("/jars/hello.jar", jar, overwrite=True)
    task = jobs.SubmitTask(
        task_key="jar",
        existing_cluster_id="0101-000000-local",
        spark_jar_task=jobs.SparkJarTask(main_class_name="Hello", parameters=["x", "y"]),
        libraries=[jobs.compute.Library(jar="dbfs:/jars/hello.jar")],
    )
    run = _wait(client, client.jobs.submit(run_name="jar", tasks=[task]).run_id, timeout=300)
    assert run.tasks and run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    assert "jar says x,y" in (client.jobs.get_run_output(_task_id(run)).logs or "")
