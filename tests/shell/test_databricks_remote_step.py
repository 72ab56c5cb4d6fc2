"""DatabricksStepOperator on a Databricks workspace: the local Databricks server (its runs really execute)
driven through databricks-sdk, data staged in Azurite and passed as ``abfss://`` URIs; deferred and inline
waits, reuse, the run page link, failures with the run's error, kill, retry, checks before submission."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.dagtools import logs_of, run_dag, write_dag
from support.databricks_server import DatabricksTestServer, running_databricks_server
from support.stores import BlobContainer, local_store
from support.worker_kill import kill_worker_then_retry, wait_for

from airflow_provider_amlpipe.errors import ConfigurationError

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.azurite]

PREP = """\
import sys
from pathlib import Path
Path(sys.argv[1], "testdata.txt").write_text(sys.argv[2] if len(sys.argv) > 2 else "hello world\\nhello airflow\\n")
"""
# Reads and writes through dbutils.fs / open on the paths it is given (the local server hands a run the
# local mirror of each abfss:// URI, as a cluster's ABFS driver would serve it).
COPY_NOTEBOOK = """# Databricks notebook source
src = dbutils.widgets.get("input")
dst = dbutils.widgets.get("output")

# COMMAND ----------

text = open(src + "/testdata.txt").read()
if text.startswith("boom"):
    raise ValueError("the data says boom")
dbutils.fs.put(dst + "/output.txt", text.upper(), True)
dbutils.notebook.exit("copied " + str(len(text.splitlines())) + " lines " + dbutils.widgets.get("myparam"))
"""
ARGS_SCRIPT = """\
import argparse, os
parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
parser.add_argument("--suffix", default="")
args, _ = parser.parse_known_args()
os.makedirs(args.output, exist_ok=True)
text = open(os.path.join(args.input, "testdata.txt")).read()
open(os.path.join(args.output, "lines.txt"), "w").write(text + args.suffix)
print("script saw", os.path.basename(args.input), "and wrote lines.txt")
"""


@pytest.fixture
def server(azurite_connection_string: str) -> Iterator[DatabricksTestServer]:
    with running_databricks_server() as state:
        state.storage_accounts["devstoreaccount1"] = azurite_connection_string
        state.clusters["0101-cluster"] = "RUNNING"
        yield state


@pytest.fixture
def blob(azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> BlobContainer:
    return BlobContainer(azurite_connection_string, "dbx_data", monkeypatch, "dbx")


def databricks_connection(monkeypatch: pytest.MonkeyPatch, server: DatabricksTestServer, **extra: Any) -> dict:
    connection = {
        "conn_type": "amlpipe_databricks",
        "host": server.endpoint,
        "password": server.token,
        "extra": {"allow_insecure_loopback": True, "cluster_id": "0101-cluster", **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_DBX_TEST", json.dumps(connection))
    return {"AIRFLOW_CONN_DBX_TEST": json.dumps(connection)}


def remote_dag(dag_id: str, tmp_path: Path, datastore: str, step: str, prep_args: str = "") -> None:
    """A local Python step writing ``testdata.txt`` into Blob, then the Databricks step on the workspace."""
    src = tmp_path / "prep_src"
    src.mkdir(exist_ok=True)
    (src / "prep.py").write_text(PREP)
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DatabricksStepOperator, Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            prep = PythonScriptStepOperator(
                task_id="prep", source_directory={str(src)!r}, script_name="prep.py",
                arguments=["{{outputs.data}}"{prep_args}], outputs=[Output("data")], datastore={datastore!r},
            )
            DatabricksStepOperator(
                task_id="db", inputs={{"input": prep.output}}, outputs=[Output("output")],
                datastore={datastore!r}, compute="dbx_test", poll_interval=0.2, {step}
            )
        """,
    )


def test_a_deferred_notebook_run_commits_its_output_links_its_run_and_is_reused(
    server: DatabricksTestServer,
    blob: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dag_id = "t_dbx_remote_nb"
    databricks_connection(monkeypatch, server)
    notebook = tmp_path / "copy.py"
    notebook.write_text(COPY_NOTEBOOK)
    remote_dag(
        dag_id, tmp_path, blob.conn_id,
        f"notebook_path={str(notebook)!r}, notebook_params={{'myparam': 'testparam'}}, deferrable=True",
    )  # fmt: skip
    first = run_dag(dag_id)
    logs = logs_of(capfd)
    assert first.state == "success", first.task_states
    ref = first.xcom("db", "output")
    assert blob.client.download_blob(f"{ref['path']}/output.txt").readall() == b"HELLO WORLD\nHELLO AIRFLOW\n"
    assert "Notebook exit value: copied 2 lines testparam" in logs
    # The run got the data as abfss:// URIs of the staging container, as widgets named after them.
    run = server.run(server.runs_created[0])
    params = run["tasks"][0]["notebook_task"]["base_parameters"]
    uri = re.compile(rf"abfss://{blob.name}@devstoreaccount1\.dfs\.core\.windows\.net/\S+")
    assert uri.fullmatch(params["input"]) and uri.fullmatch(params["output"]) and params["myparam"] == "testparam"
    assert run["tasks"][0]["existing_cluster_id"] == "0101-cluster"  # the connection's default cluster
    assert first.xcom("db", "_link_RemoteJobLink") == run["run_page_url"]
    # Staging and uploaded code are gone; the next run is reused without a request to the workspace.
    assert blob.keys("amlpipe-staging/") == []
    assert not [p for p in server.objects if p.startswith("/Shared/amlpipe/")]
    requests = len(server.requests)
    second = run_dag(dag_id)
    assert second.ran() == set() and server.submissions == 1 and len(server.requests) == requests
    # Changing the notebook changes the fingerprint.
    notebook.write_text(COPY_NOTEBOOK.replace("copied ", "copied: "))
    assert run_dag(dag_id).ran() == {"db"} and server.submissions == 2


def test_an_inline_script_run_on_a_new_cluster_gets_uris_as_arguments(
    server: DatabricksTestServer, blob: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag_id = "t_dbx_remote_script"
    databricks_connection(monkeypatch, server, storage_key_secret="storage/key")
    code = tmp_path / "code"
    code.mkdir()
    (code / "job.py").write_text(ARGS_SCRIPT)
    (code / "helper.py").write_text("X = 1\n")
    remote_dag(
        dag_id, tmp_path, blob.conn_id,
        f"python_script_name='job.py', source_directory={str(code)!r}, python_script_params=['--suffix', 'END'],"
        " spark_version='15.4.x-scala2.12', node_type='Standard_D3_v2', min_workers=1, max_workers=2,"
        " spark_env_variables={'MODE': 'test'}, libraries=[{'pypi': {'package': 'pyarrow'}}], deferrable=False",
    )  # fmt: skip
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    ref = first.xcom("db", "output")
    assert blob.client.download_blob(f"{ref['path']}/lines.txt").readall() == b"hello world\nhello airflow\nEND"
    task = server.run(server.runs_created[0])["tasks"][0]
    parameters = task["spark_python_task"]["parameters"]
    assert parameters[:2] == ["--suffix", "END"] and parameters[2] == "--input" and parameters[4] == "--output"
    assert parameters[3].startswith(f"abfss://{blob.name}@devstoreaccount1.dfs.core.windows.net/")
    cluster = task["new_cluster"]
    assert cluster["autoscale"] == {"min_workers": 1, "max_workers": 2}
    assert cluster["spark_env_vars"] == {"MODE": "test"}
    # The storage key reaches the cluster as a secret reference, never as a value.
    assert cluster["spark_conf"] == {
        "fs.azure.account.key.devstoreaccount1.dfs.core.windows.net": "{{secrets/storage/key}}",
        "fs.azure.account.key.devstoreaccount1.blob.core.windows.net": "{{secrets/storage/key}}",
    }
    assert task["libraries"] == [{"pypi": {"package": "pyarrow"}}]
    assert run_dag(dag_id).ran() == set()


def test_a_failed_run_fails_the_step_with_its_error(
    server: DatabricksTestServer,
    blob: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dag_id = "t_dbx_remote_fail"
    databricks_connection(monkeypatch, server)
    notebook = tmp_path / "copy.py"
    notebook.write_text(COPY_NOTEBOOK)
    remote_dag(
        dag_id, tmp_path, blob.conn_id,
        f"notebook_path={str(notebook)!r}, notebook_params={{'myparam': 'x'}}", prep_args=", 'boom'",
    )  # fmt: skip
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["db"] == "failed"
    assert "ValueError: the data says boom" in logs
    assert re.search(r"StepFailedError: Databricks job \S+ failed: TERMINATED FAILED", logs)  # the error names the run
    assert re.search(r"\[status\] Databricks job \S+: failed \(TERMINATED FAILED", logs)  # so does its last state
    assert blob.keys("amlpipe-staging/") == []


def test_an_input_on_a_local_datastore_is_refused_before_any_request(
    server: DatabricksTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    blob: BlobContainer,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dag_id = "t_dbx_remote_local_input"
    databricks_connection(monkeypatch, server, staging_datastore=blob.conn_id)
    datastore, _store = local_store(dag_id, tmp_path, monkeypatch)
    notebook = tmp_path / "copy.py"
    notebook.write_text(COPY_NOTEBOOK)
    remote_dag(dag_id, tmp_path, datastore, f"notebook_path={str(notebook)!r}")
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["db"] == "failed"
    assert "inputs['input']: is on" in logs and "which a Databricks cluster cannot read" in logs
    assert server.submit_requests == 0 and not any(r.path.endswith("/import") for r in server.requests)
    assert blob.keys() == []


def test_killing_the_deferred_task_cancels_the_run(
    server: DatabricksTestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow_provider_amlpipe.hooks.databricks import DatabricksHook
    from airflow_provider_amlpipe.triggers.remote_job import RemoteJobTrigger

    databricks_connection(monkeypatch, server)
    notebook = tmp_path / "sleep.py"
    notebook.write_text("# Databricks notebook source\nimport time\ntime.sleep(120)\n")
    spec = {
        "run_name": "t", "cluster": {"existing_cluster_id": "0101-cluster"}, "libraries": [], "remote_paths": {},
        "code": {"sleep.py": {"path": str(notebook), "as": "notebook"}}, "task_kind": "notebook",
        "entry": {"code": "sleep.py"}, "parameters": {},
    }  # fmt: skip
    job = DatabricksHook("dbx_test").get_backend().submit("kill-1", spec, lambda *_: None)
    wait_for(lambda: sum(server.executions.values()) == 1)
    trigger = RemoteJobTrigger(
        "dbx_test", "airflow_provider_amlpipe.hooks.databricks:adatabricks_backend", job.to_dict(), 0.1
    )
    asyncio.run(trigger.on_kill())
    assert server.cancels == [job.details["run_id"]]
    wait_for(lambda: server.run(job.details["run_id"])["state"].get("result_state") == "CANCELED")
    assert not [p for p in server.objects if p.startswith("/Shared/amlpipe/kill-1")]


@pytest.mark.slow
def test_a_retry_of_a_worker_killed_while_deferred_reattaches_to_its_run(
    server: DatabricksTestServer, blob: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag_id = "t_dbx_remote_retry"
    env = {**os.environ, **databricks_connection(monkeypatch, server), **blob.env}
    notebook = tmp_path / "copy.py"
    notebook.write_text(COPY_NOTEBOOK)
    remote_dag(
        dag_id, tmp_path, blob.conn_id,
        f"notebook_path={str(notebook)!r}, notebook_params={{'myparam': 'x'}}, deferrable=True",
    )  # fmt: skip
    server.run_delay = 4.0  # the run stays RUNNING while the worker dies
    retry = kill_worker_then_retry(dag_id, "db", env, tmp_path / "victim.log", lambda: server.submissions == 1)
    output = retry.stdout
    assert retry.returncode == 0, output[-4000:]
    assert "reattached to" in output
    assert server.submissions == 1 and server.submit_requests == 2
    assert sum(server.executions.values()) == 1


@pytest.mark.parametrize(
    ("kwargs", "field", "problem"),
    [
        ({"spark_version": "15.4.x-scala2.12", "num_workers": 1}, "node_type", "node type or an instance pool"),
        ({"node_type": "n", "num_workers": 1}, "spark_version", "needs a Databricks runtime"),
        ({"spark_version": "15.4.x-scala2.12", "node_type": "n"}, "num_workers", "needs a size"),
        (
            {"spark_version": "v", "node_type": "n", "spark_conf": {"fs.azure.sas.c.a.blob.core.windows.net": "sig=x"}},
            "spark_conf['fs.azure.sas.c.a.blob.core.windows.net']",
            "literal credential",
        ),
    ],
)
def test_incomplete_clusters_and_pasted_secrets_are_refused_at_parse_time(
    kwargs: dict[str, Any], field: str, problem: str
) -> None:
    from airflow_provider_amlpipe import DatabricksStepOperator

    with pytest.raises(ConfigurationError) as error:
        DatabricksStepOperator(task_id="t", notebook_path="nb.py", compute="dbx", **kwargs)
    assert error.value.field == field and problem in error.value.problem


def test_a_workspace_script_path_is_taken_as_is_on_a_workspace_only() -> None:
    from airflow_provider_amlpipe import DatabricksStepOperator

    op = DatabricksStepOperator(task_id="t", python_script_path="dbfs:/scripts/train.py", compute="dbx")
    assert op.python_script_path == "dbfs:/scripts/train.py"
    with pytest.raises(ConfigurationError, match="workspace path, which compute='local' cannot read"):
        DatabricksStepOperator(task_id="t", python_script_path="/Workspace/Shared/train.py")


def test_a_script_on_dbfs_runs_in_place_and_is_fingerprinted_by_its_content(
    server: DatabricksTestServer, blob: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_amlpipe.hooks.databricks import upload_to_databricks

    dag_id = "t_dbx_remote_dbfs"
    databricks_connection(monkeypatch, server)
    script = tmp_path / "job.py"
    script.write_text(ARGS_SCRIPT)
    assert upload_to_databricks("dbx_test", script, "dbfs:/scripts/job.py") == "dbfs:/scripts/job.py"
    assert server.dbfs_local("dbfs:/scripts/job.py").read_text() == ARGS_SCRIPT  # through the DBFS API
    remote_dag(dag_id, tmp_path, blob.conn_id, "python_script_path='dbfs:/scripts/job.py', deferrable=False")
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    task = server.run(server.runs_created[0])["tasks"][0]
    assert task["spark_python_task"]["python_file"] == "dbfs:/scripts/job.py"  # used in place, not uploaded
    assert run_dag(dag_id).ran() == set()
    # Edited on DBFS (not on this machine): its content, read through the API, changes the fingerprint.
    script.write_text(ARGS_SCRIPT + "print('edited')\n")
    upload_to_databricks("dbx_test", script, "dbfs:/scripts/job.py")
    assert run_dag(dag_id).ran() == {"db"} and server.submissions == 2
