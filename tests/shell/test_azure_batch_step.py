"""AzureBatchStepOperator in DAGs: locally (compute="local") and on the local Batch server through
the real azure-batch 15 client, deferred and inline; staging through Azurite, pools created and
deleted, reuse, failures with the remote stderr, kill and retry."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.azurite_server import ACCOUNT_KEY
from support.batch_server import BatchTestServer, running_batch_server
from support.dagtools import logs_of, run_dag, write_dag
from support.paths import REPO, SAMPLES
from support.session import DAGS_FOLDER
from support.stores import BlobContainer, leases_released, local_store
from support.worker_kill import kill_worker_then_retry, wait_for

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.errors import ConfigurationError

pytestmark = [pytest.mark.usefixtures("airflow_db")]

COPY = """\
#!/bin/sh
# copy.sh <input folder> <output folder> [fail]
set -e
echo "copying from $1"
cp -R "$1"/. "$2/"
ls "$2"
if [ "${3:-}" = fail ]; then echo "disk quota exceeded on the node" >&2; exit 4; fi
if [ "${3:-}" = slow ]; then sleep 120; fi
"""
CREATED_POOL = (
    "create_pool=True, vm_size='standard_d2s_v3', vm_image_urn='canonical:0001-com-ubuntu-server-jammy:22_04-lts',"
    " delete_batch_pool_after_finish=True"
)
PREP = """\
import sys
from pathlib import Path
Path(sys.argv[1], "rows.csv").write_text("id,name\\n1,ada\\n2,grace\\n")
"""


@pytest.fixture
def server() -> Iterator[BatchTestServer]:
    with running_batch_server() as state:
        yield state


@pytest.fixture
def staging(azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> BlobContainer:
    return BlobContainer(azurite_connection_string, "batch_staging", monkeypatch, "batch")


def batch_connection(monkeypatch: pytest.MonkeyPatch, server: BatchTestServer, **extra: Any) -> dict[str, str]:
    connection = {
        "conn_type": "amlpipe_azure_batch",
        "host": server.endpoint,
        "login": server.account_name,
        "password": server.account_key,
        "extra": {"allow_insecure_loopback": True, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_BATCH_TEST", json.dumps(connection))
    return {"AIRFLOW_CONN_BATCH_TEST": json.dumps(connection)}


def batch_dag(
    dag_id: str,
    tmp_path: Path,
    *,
    datastore: str,
    compute: str = "batch_test",
    deferrable: bool = True,
    mode: str = "",
    pool: str = CREATED_POOL,
    extra: str = "",
) -> None:
    """A local Python step writing rows, then a Batch step copying them (``copy.sh``)."""
    src = tmp_path / "batch_src"
    src.mkdir(exist_ok=True)
    (src / "copy.sh").write_text(COPY)
    (src / "copy.sh").chmod(0o755)
    (src / "README.txt").write_text("shipped with the code\n")
    prep = tmp_path / "prep_src"
    prep.mkdir(exist_ok=True)
    (prep / "prep.py").write_text(PREP)
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import AzureBatchStepOperator, Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            prep = PythonScriptStepOperator(
                task_id="prep", source_directory={str(prep)!r}, script_name="prep.py",
                arguments=["{{outputs.rows}}"], outputs=[Output("rows")], datastore={datastore!r},
            )
            AzureBatchStepOperator(
                task_id="copy", executable="copy.sh", source_directory={str(src)!r},
                arguments=["{{inputs.rows}}", "{{outputs.copied}}"{", " + repr(mode) if mode else ""}],
                inputs={{"rows": prep.output}}, outputs=[Output("copied")],
                compute={compute!r}, pool_id="pool-dag", {pool},
                deferrable={deferrable}, poll_interval=0.2, datastore={datastore!r}, {extra}
            )
        """,
    )


# -- on this machine -------------------------------------------------------------------------------


def test_the_example_dag_runs_locally_and_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(REPO / "dags" / "aml_azure_batch.py", DAGS_FOLDER / "aml_azure_batch.py")
    shutil.copytree(
        REPO / "dags" / "scripts" / "azure_batch", DAGS_FOLDER / "scripts" / "azure_batch", dirs_exist_ok=True
    )
    (DAGS_FOLDER / ".airflowignore").write_text("scripts/\ndata/\n")
    store = LocalDatastore("default", tmp_path / "store")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMLPIPE_DEFAULT", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(store.root)}})
    )
    first = run_dag("aml_azure_batch")
    assert first.state == "success", first.task_states
    ref = first.xcom("copy", "output")
    assert store.read_bytes(f"{ref['path']}/sample_input.csv") == (SAMPLES / "sample_input.csv").read_bytes()
    assert run_dag("aml_azure_batch").ran() == set()


def test_a_local_run_gets_local_paths_and_a_copy_of_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dag_id = "t_batch_local"
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    batch_dag(dag_id, tmp_path, datastore=datastore, compute="local")
    result = run_dag(dag_id)
    assert result.state == "success", result.task_states
    ref = result.xcom("copy", "copied")
    assert store.read_bytes(f"{ref['path']}/rows.csv") == b"id,name\n1,ada\n2,grace\n"
    # The executable's folder is its working directory's copy, not the shipped folder itself.
    assert sorted(p.name for p in (tmp_path / "batch_src").iterdir()) == ["README.txt", "copy.sh"]


# -- on the Batch server -----------------------------------------------------------------------------


@pytest.mark.azurite
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "inline"])
def test_a_local_step_then_a_batch_step_runs_commits_and_reruns_reused(
    server: BatchTestServer,
    staging: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    dag_id = f"t_batch_remote_{'deferred' if deferrable else 'inline'}"
    batch_connection(monkeypatch, server, staging_datastore=staging.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    batch_dag(dag_id, tmp_path, datastore=datastore, deferrable=deferrable)
    first = run_dag(dag_id)
    logs = logs_of(capfd)
    assert first.state == "success", first.task_states
    assert first.ran() == {"prep", "copy"}
    ref = first.xcom("copy", "copied")
    assert store.read_bytes(f"{ref['path']}/rows.csv") == b"id,name\n1,ada\n2,grace\n"
    assert [k.rsplit("/", 1)[-1] for k in store.list(ref["path"])] == ["rows.csv"]  # only what it wrote
    assert sum(server.pools_created.values()) == 1 and sum(server.executions.values()) == 1
    assert "[stdout] copying from inputs/rows" in logs  # the node's stdout reached the task log
    # The pool the step created and the job were deleted, the staging folder too; the lease is free.
    wait_for(lambda: not server.pools and not server.jobs)
    assert staging.keys() == []
    assert leases_released(store)
    assert ACCOUNT_KEY not in logs and server.account_key not in logs and "sig=" not in logs

    second = run_dag(dag_id)
    assert second.state == "success" and second.ran() == set()
    assert sum(server.jobs_created.values()) == 1  # reused: no second job


@pytest.mark.azurite
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "inline"])
def test_a_failed_task_fails_the_step_with_the_remote_stderr_and_cleans_up(
    server: BatchTestServer,
    staging: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    dag_id = f"t_batch_fail_{'deferred' if deferrable else 'inline'}"
    batch_connection(monkeypatch, server, staging_datastore=staging.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    batch_dag(dag_id, tmp_path, datastore=datastore, deferrable=deferrable, mode="fail")
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["copy"] == "failed"
    assert "StepFailedError" in logs and "exit code 4" in logs
    assert "disk quota exceeded on the node" in logs  # the stderr tail
    wait_for(lambda: not server.pools and not server.jobs)  # deleted after failure too
    assert staging.keys() == []
    assert leases_released(store)
    records = [json.loads(store.read_bytes(k)) for k in store.list("reuse/records") if k.endswith(".json")]
    assert all(r.get("producer", {}).get("task_id") != "copy" for r in records)


@pytest.mark.azurite
def test_killing_the_inline_wait_terminates_the_task_and_frees_the_lease(
    server: BatchTestServer, staging: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag_id = "t_batch_timeout"
    batch_connection(monkeypatch, server, staging_datastore=staging.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    batch_dag(
        dag_id,
        tmp_path,
        datastore=datastore,
        deferrable=False,
        mode="slow",
        extra="execution_timeout=__import__('datetime').timedelta(seconds=4),",
    )
    result = run_dag(dag_id)
    assert result.task_states["copy"] == "failed"
    assert any(r.method == "POST" and r.path.endswith("/tasks/step/terminate") for r in server.requests)
    wait_for(lambda: not server.pools and not server.jobs)
    assert leases_released(store)
    assert staging.keys() == []


@pytest.mark.azurite
def test_killing_the_deferred_task_cancels_the_job(
    server: BatchTestServer, staging: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from airflow_provider_amlpipe.compute.azure_batch import batch_job_id
    from airflow_provider_amlpipe.compute.remote import RemoteJob
    from airflow_provider_amlpipe.hooks.azure_batch import AzureBatchHook
    from airflow_provider_amlpipe.triggers.remote_job import RemoteJobTrigger

    batch_connection(monkeypatch, server)
    backend = AzureBatchHook("batch_test").get_backend()
    spec = {
        "pool": {"pool_id": "p", "create": True, "vm_size": "s", "node_agent_sku_id": "batch.node.ubuntu 22.04",
                 "image": {"publisher": "canonical", "offer": "o", "sku": "22_04-lts"}, "target_compute_nodes": 1},
        "display_name": "t", "executable": "sleep", "bundled": False, "arguments": ["60"], "paths": {},
        "output_dirs": [], "resource_files": [], "output_files": [], "delete_job": True, "delete_pool": True,
        "positive_exit_code_failure": True, "run_as_admin": False,
    }  # fmt: skip
    job = backend.submit("kill-1", spec, lambda *_: None)
    backend.close()
    wait_for(lambda: server.task(batch_job_id("kill-1"), "step")["state"] == "running")
    trigger = RemoteJobTrigger(
        "batch_test", "airflow_provider_amlpipe.hooks.azure_batch:aazure_batch_backend", job.to_dict(), 0.1
    )
    asyncio.run(trigger.on_kill())
    assert any(r.method == "POST" and r.path.endswith("/tasks/step/terminate") for r in server.requests)
    wait_for(lambda: not server.pools and not server.jobs)  # cleaned up as the step asked
    assert RemoteJob.from_dict(job.to_dict()) == job


@pytest.mark.slow
@pytest.mark.azurite
def test_a_retry_of_a_worker_killed_while_deferred_reattaches_without_a_new_job(
    server: BatchTestServer, staging: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag_id = "t_batch_retry"
    env = {**os.environ, **batch_connection(monkeypatch, server, staging_datastore=staging.conn_id), **staging.env}
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    env[f"AIRFLOW_CONN_{datastore.upper()}"] = os.environ[f"AIRFLOW_CONN_{datastore.upper()}"]
    batch_dag(dag_id, tmp_path, datastore=datastore, deferrable=True)
    server.run_delay = 3.0  # the task stays running while the worker dies
    # The same task instance again (same run id, as an Airflow retry): it must find its job, not submit a second one.
    retry = kill_worker_then_retry(
        dag_id, "copy", env, tmp_path / "victim.log", lambda: sum(server.tasks_created.values()) == 1
    )
    output = retry.stdout
    assert retry.returncode == 0, output[-4000:]
    assert "already submitted; reattaching" in output
    assert sum(server.jobs_created.values()) == 1 and sum(server.tasks_created.values()) == 1
    assert sum(server.executions.values()) == 1
    assert leases_released(store)


# -- refused before anything is submitted ------------------------------------------------------------


@pytest.mark.azurite
def test_a_local_datastore_without_staging_fails_before_any_request(
    server: BatchTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    dag_id = "t_batch_no_staging"
    batch_connection(monkeypatch, server)
    datastore, _store = local_store(dag_id, tmp_path, monkeypatch)
    batch_dag(dag_id, tmp_path, datastore=datastore)
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["copy"] == "failed"
    assert "compute (connection 'batch_test') extra.staging_datastore: not set" in logs
    assert "Fix: set extra.staging_datastore on the Azure Batch connection" in logs
    assert server.requests == []


@pytest.mark.azurite
def test_an_unknown_pool_fails_before_anything_is_uploaded(
    server: BatchTestServer,
    staging: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dag_id = "t_batch_no_pool"
    batch_connection(monkeypatch, server, staging_datastore=staging.conn_id)
    datastore, _store = local_store(dag_id, tmp_path, monkeypatch)
    batch_dag(dag_id, tmp_path, datastore=datastore, pool="create_pool=False")
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["copy"] == "failed"
    assert "pool_id: pool 'pool-dag' does not exist" in logs
    assert sum(server.jobs_created.values()) == 0
    assert staging.keys() == []


@pytest.mark.parametrize(
    ("kwargs", "field", "problem"),
    [
        ({"executable": ""}, "executable", "expected a program name"),
        ({"compute": "batch"}, "pool_id", "no pool given"),
        ({"pool_id": "bad id!"}, "pool_id", "is not a Batch pool id"),
        ({"pool_id": "p", "create_pool": True}, "vm_size", "needs the nodes' VM size"),
        ({"pool_id": "p", "create_pool": True, "vm_size": "s"}, "vm_image_urn", "needs the nodes' image"),
        (
            {"pool_id": "p", "create_pool": True, "vm_size": "s", "vm_image_urn": "a:b"},
            "vm_image_urn",
            "publisher:offer",
        ),
        (
            {"pool_id": "p", "create_pool": True, "vm_size": "s", "vm_image_urn": "debian:debian-12:12"},
            "node_agent_sku_id",
            "is not known",
        ),
        ({"pool_id": "p", "target_compute_nodes": 0}, "target_compute_nodes", "expected a positive number"),
        ({"arguments": ["{inputs.nope}"]}, "arguments[0]", "names no declared input"),
        ({"create_pool": "yes"}, "create_pool", "expected True or False"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], field: str, problem: str) -> None:
    from airflow_provider_amlpipe import AzureBatchStepOperator

    arguments = {"task_id": "t", "executable": "copy.sh", **kwargs}
    with pytest.raises(ConfigurationError, match=problem) as caught:
        AzureBatchStepOperator(**arguments)
    assert caught.value.field == field


def test_node_agents_are_inferred_for_common_images() -> None:
    from airflow_provider_amlpipe import AzureBatchStepOperator

    linux = AzureBatchStepOperator(
        task_id="l", executable="x", pool_id="p", create_pool=True, vm_size="s",
        vm_image_urn="urn:canonical:ubuntu-24_04-lts:server",
    )  # fmt: skip
    assert linux.batch_pool is not None and linux.batch_pool.node_agent_sku_id == "batch.node.ubuntu 24.04"
    windows = AzureBatchStepOperator(
        task_id="w", executable="copy.cmd", pool_id="p", create_pool=True, vm_size="s",
        vm_image_publisher="MicrosoftWindowsServer", vm_image_offer="WindowsServer", vm_image_sku="2022-datacenter",
    )  # fmt: skip
    assert windows.batch_pool is not None and windows.batch_pool.node_agent_sku_id == "batch.node.windows amd64"
    assert windows.batch_pool.image == {
        "publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter", "version": "latest",
    }  # fmt: skip
