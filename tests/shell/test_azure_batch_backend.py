"""The Azure Batch job backend with the real azure-batch 15 client against the local Batch server
(which really runs each task's command line, fetching resource files from and uploading output
files to Azurite), plus what is refused before anything is submitted."""

from __future__ import annotations

import shlex
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from support.batch_server import BatchTestServer, running_batch_server

from airflow_provider_amlpipe.compute.azure_batch import AzureBatchJobBackend, batch_job_id, command_line
from airflow_provider_amlpipe.compute.remote import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    JobWaiter,
    RemoteJob,
    failure_message,
)
from airflow_provider_amlpipe.compute.staging import InputSource, staging_layout
from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.azure_batch import batch_backend_from_connection
from airflow_provider_amlpipe.steps.azure_batch import AzureBatchStep, PoolSpec

POOL = PoolSpec(
    "pool-t",
    create=True,
    vm_size="standard_d2s_v3",
    image={"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts", "version": "latest"},
    node_agent_sku_id="batch.node.ubuntu 22.04",
)


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, stream: str, line: str) -> None:
        with self.lock:
            self.lines.append((stream, line))

    def of(self, stream: str) -> list[str]:
        with self.lock:
            return [line for s, line in self.lines if s == stream]


@pytest.fixture
def server() -> Iterator[BatchTestServer]:
    with running_batch_server() as state:
        yield state


def _backend(server: BatchTestServer) -> AzureBatchJobBackend:
    return batch_backend_from_connection(
        "batch_t",
        "amlpipe_azure_batch",
        server.endpoint,
        server.account_name,
        server.account_key,
        {"allow_insecure_loopback": True},
    )


@pytest.fixture
def backend(server: BatchTestServer) -> Iterator[AzureBatchJobBackend]:
    backend = _backend(server)
    yield backend
    backend.close()


@pytest.fixture
def store(azurite_connection_string: str) -> AzureBlobDatastore:
    name = f"batch-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite_connection_string).create_container(name)
    return AzureBlobDatastore.from_settings("staging", container=name, connection_string=azurite_connection_string)


def _spec(
    tmp_path: Path, store: AzureBlobDatastore, job_id: str, script: str, pool: PoolSpec = POOL, **step: Any
) -> dict[str, Any]:
    """A rendered Batch step spec: ``run.sh`` (``script``) in source_directory, one staged input file."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "run.sh").write_text("#!/bin/sh\nset -e\n" + script)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "in.txt").write_text("alpha\nbeta\n")
    layout = staging_layout("stage/", job_id, {"data": InputSource(str(data), ("in.txt",), False, True)}, ["out"])
    for upload in layout.uploads:
        store.upload_file(Path(upload.local_path), upload.key)
    definition = AzureBatchStep(
        "run.sh", str(src), ["{inputs.data}", "{outputs.out}"], pool=pool, local=False, job_name="dag.step", **step
    )
    return definition.remote_spec(layout, store, job_id)


def _wait_ended(backend: AzureBatchJobBackend, job: RemoteJob, sink: Lines) -> Any:
    return JobWaiter(backend, job, sink).wait(0.05)


# -- the command line ---------------------------------------------------------------------------


def test_command_lines_make_output_folders_and_quote_for_the_nodes_shell() -> None:
    spec = {
        "executable": "copy files.sh",
        "bundled": True,
        "arguments": ["{inputs.data}", "--name=it's", "{outputs.out}/x"],
        "paths": {"inputs.data": "inputs/data/a b.csv", "outputs.out": "outputs/out"},
        "output_dirs": ["outputs/out"],
    }
    linux = command_line(spec, windows=False)
    # What the node runs: sh -c "<mkdir> && exec <argv>" — the argv survives both quoting levels.
    program, flag, inner = shlex.split(linux)
    assert (program, flag) == ("/bin/sh", "-c")
    assert shlex.split(inner.split(" && ", 1)[1]) == [
        "exec",
        "./copy files.sh",
        "inputs/data/a b.csv",
        "--name=it's",
        "outputs/out/x",
    ]
    windows = command_line({**spec, "executable": "copy.cmd"}, windows=True)
    assert windows == 'cmd /c "mkdir outputs\\out 2>nul & copy.cmd "inputs\\data\\a b.csv" --name=it\'s outputs\\out/x"'


# -- against the Batch server --------------------------------------------------------------------


@pytest.mark.azurite
def test_a_task_runs_with_inputs_and_code_as_resource_files_and_uploads_its_outputs(
    server: BatchTestServer, backend: AzureBatchJobBackend, store: AzureBlobDatastore, tmp_path: Path
) -> None:
    job_id = str(uuid.uuid4())
    spec = _spec(tmp_path, store, job_id, 'echo "reading $1"\ncp "$1" "$2/copy.txt"\nprintf partial')
    backend.check(spec)
    sink = Lines()
    job = backend.submit(job_id, spec, sink)
    status = _wait_ended(backend, job, sink)
    assert status.state == SUCCEEDED, status
    assert store.read_bytes(f"stage/{job_id}/outputs/out/copy.txt") == b"alpha\nbeta\n"
    # Logs arrive line by line; the last one, without a newline, once the task ended.
    assert sink.of("stdout") == ["reading inputs/data/in.txt", "partial"]
    assert server.pools_created["pool-t"] == 1
    assert server.jobs_created[batch_job_id(job_id)] == 1
    task = server.task(batch_job_id(job_id), "step")
    assert task["commandLine"].startswith("/bin/sh -c 'mkdir -p -- outputs/out && exec ./run.sh")
    # Every URL the node used was signed for it, and none was written to the sink.
    urls = [r["httpUrl"] for r in task["resourceFiles"]] + [
        o["destination"]["container"]["containerUrl"] for o in task["outputFiles"]
    ]
    assert len(urls) == 3 and all("sig=" in u for u in urls)
    assert sorted(u.split("?")[0].rsplit("/", 3)[-2] for u in server.downloads) == ["code", "data"]
    assert not any("sig=" in line for _, line in sink.lines)


@pytest.mark.azurite
def test_resubmitting_the_same_id_reattaches_and_a_failed_task_runs_again_under_the_next_id(
    server: BatchTestServer, backend: AzureBatchJobBackend, store: AzureBlobDatastore, tmp_path: Path
) -> None:
    job_id = str(uuid.uuid4())
    server.run_delay = 0.5
    spec = _spec(tmp_path, store, job_id, 'cp "$1" "$2/"')
    first = backend.submit(job_id, spec, Lines())
    again = Lines()
    second = backend.submit(job_id, spec, again)  # an Airflow retry of the same task instance
    assert second.details["batch_job_id"] == first.details["batch_job_id"] == batch_job_id(job_id)
    assert "reattaching" in " ".join(again.of("status"))
    assert _wait_ended(backend, second, Lines()).state == SUCCEEDED
    assert server.jobs_created[batch_job_id(job_id)] == 1 and sum(server.executions.values()) == 1

    failing_id = str(uuid.uuid4())
    failing = _spec(tmp_path, store, failing_id, 'echo "no disk left" >&2\nexit 3')
    job = backend.submit(failing_id, failing, Lines())
    status = _wait_ended(backend, job, Lines())
    assert (status.state, status.exit_code, status.detail) == (FAILED, 3, "FailureExitCode")
    message = failure_message(job, status)
    assert "Azure Batch job" in message and "exit code 3" in message and "no disk left" in message
    retry = Lines()
    rerun = backend.submit(failing_id, failing, retry)
    assert rerun.details["batch_job_id"] == batch_job_id(failing_id, 1)
    assert "ended unsuccessfully; submitting under the next id" in " ".join(retry.of("status"))


@pytest.mark.azurite
def test_a_positive_exit_code_can_be_declared_a_success(
    backend: AzureBatchJobBackend, store: AzureBlobDatastore, tmp_path: Path
) -> None:
    job_id = str(uuid.uuid4())
    spec = _spec(tmp_path, store, job_id, 'cp "$1" "$2/"\nexit 2', is_positive_exit_code_failure=False)
    status = _wait_ended(backend, backend.submit(job_id, spec, Lines()), Lines())
    assert (status.state, status.exit_code) == (SUCCEEDED, 2)
    # The outputs are uploaded on completion, not only on success.
    assert store.read_bytes(f"stage/{job_id}/outputs/out/in.txt") == b"alpha\nbeta\n"


@pytest.mark.azurite
def test_stop_cancels_a_running_task_and_cleanup_deletes_job_and_pool(
    server: BatchTestServer, backend: AzureBatchJobBackend, store: AzureBlobDatastore, tmp_path: Path
) -> None:
    job_id = str(uuid.uuid4())
    spec = _spec(tmp_path, store, job_id, "echo started\nsleep 60", delete_batch_pool_after_finish=True)
    sink = Lines()
    job = backend.submit(job_id, spec, sink)
    waiter = JobWaiter(backend, job, sink)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(waiter.wait(0.05)))
    thread.start()
    deadline = time.monotonic() + 20
    while "started" not in sink.of("stdout"):  # streamed while the task runs
        assert time.monotonic() < deadline, sink.lines
        time.sleep(0.05)
    waiter.stop()
    thread.join(20)
    assert not thread.is_alive() and result[0].state == CANCELLED
    assert any(r.method == "POST" and r.path.endswith("/tasks/step/terminate") for r in server.requests)
    backend.cleanup(job)
    deadline = time.monotonic() + 20
    while batch_job_id(job_id) in server.jobs or "pool-t" in server.pools:
        assert time.monotonic() < deadline, "job and pool were not deleted"
        time.sleep(0.05)


def test_an_unknown_pool_is_refused_before_anything_is_created(
    server: BatchTestServer, backend: AzureBatchJobBackend
) -> None:
    spec = {"pool": PoolSpec("no-such-pool").to_dict()}
    with pytest.raises(ConfigurationError) as caught:
        backend.check(spec)
    assert caught.value.field == "pool_id"
    assert "'no-such-pool' does not exist" in caught.value.problem and "create_pool=True" in caught.value.fix
    assert [r.method for r in server.requests] == ["GET"]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"password": None}, "neither an account key nor a credential"),
        ({"host": "http://batch.example.com"}, "is not https"),
        ({"host": ""}, "no Batch account URL"),
        ({"conn_type": "amlpipe_adla"}, "is not an Azure Batch account"),
        ({"password": None, "extra": {"tenant_id": "t"}}, "needs its tenant id, client id and secret"),
        ({"password": None, "extra": {"use_default_credential": "yes"}}, "extra.use_default_credential is 'yes'"),
    ],
)
def test_bad_connections_are_refused_naming_the_field(fields: dict[str, Any], problem: str) -> None:
    values: dict[str, Any] = {
        "conn_type": "amlpipe_azure_batch",
        "host": "https://acct.westeurope.batch.azure.com",
        "login": "acct",
        "password": "a2V5",
        "extra": {},
        **fields,
    }
    with pytest.raises(ConfigurationError, match=problem) as caught:
        batch_backend_from_connection(
            "my_batch", values["conn_type"], values["host"], values["login"], values["password"], values["extra"]
        )
    assert caught.value.field.startswith("compute (connection 'my_batch')")
    assert "a2V5" not in str(caught.value)


@pytest.mark.azurite
def test_a_kept_job_is_ended_not_left_active(
    server: BatchTestServer, backend: AzureBatchJobBackend, store: AzureBlobDatastore, tmp_path: Path
) -> None:
    job_id = str(uuid.uuid4())
    spec = _spec(tmp_path, store, job_id, 'cp "$1" "$2/"', delete_batch_job_after_finish=False)
    job = backend.submit(job_id, spec, Lines())
    assert _wait_ended(backend, job, Lines()).state == SUCCEEDED
    assert server.jobs[batch_job_id(job_id)].info["state"] == "active"  # the service does not end it by itself
    backend.cleanup(job)
    deadline = time.monotonic() + 20
    while server.jobs[batch_job_id(job_id)].info["state"] != "completed":
        assert time.monotonic() < deadline, server.jobs[batch_job_id(job_id)].info["state"]
        time.sleep(0.05)
    assert "pool-t" in server.pools  # delete_batch_pool_after_finish=False keeps the pool
