"""The Azure Batch test server, driven by the real azure-batch 15 ``BatchClient`` (shared key or token).

Tasks really run on the server's simulated Linux node; resource and output files go to Azurite
through SAS URLs, as they would to a real storage account.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)
from support.azurite_server import ACCOUNT_KEY, ACCOUNT_NAME
from support.batch_server import (
    AllowHttpPolicy,
    BatchTestServer,
    running_batch_server,
    sign,
    string_to_sign,
    ubuntu_pool_options,
)

POOL = "pool-a"
JOB = "job-a"


@pytest.fixture
def server() -> Iterator[BatchTestServer]:
    with running_batch_server() as state:
        yield state


def _client(server: BatchTestServer, key: str | None = None, **kwargs: Any) -> BatchClient:
    credential = AzureNamedKeyCredential(server.account_name, key or server.account_key)
    return BatchClient(server.endpoint, credential, retry_backoff_factor=0.01, **kwargs)


@pytest.fixture
def client(server: BatchTestServer) -> BatchClient:
    return _client(server)


@pytest.fixture
def job(client: BatchClient) -> str:
    client.create_pool(ubuntu_pool_options(POOL))
    client.create_job(bm.BatchJobCreateOptions(id=JOB, pool_info=bm.BatchPoolInfo(pool_id=POOL)))
    return JOB


def _wait(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def _wait_state(client: BatchClient, job_id: str, task_id: str, state: str, timeout: float = 20.0) -> bm.BatchTask:
    def reached() -> bm.BatchTask | None:
        task = client.get_task(job_id, task_id)
        return task if task.state == state else None

    return _wait(reached, timeout)


def _read(client: BatchClient, job_id: str, task_id: str, name: str, **kwargs: Any) -> str:
    return b"".join(client.download_task_file(job_id, task_id, name, **kwargs)).decode()


# -- auth --------------------------------------------------------------------------------------


def test_shared_key_signature_is_recomputed_from_the_request(server: BatchTestServer, client: BatchClient) -> None:
    client.create_pool(ubuntu_pool_options(POOL))
    create = server.requests[0]
    assert create.headers["authorization"].startswith(f"SharedKey {server.account_name}:")
    assert create.headers["content-type"] == "application/json; odata=minimalmetadata"
    # The server's string to sign is the one the SDK signed: same signature.
    text = string_to_sign(
        "POST", f"/pools?api-version={create.query['api-version'][0]}", create.headers, server.account_name
    )
    assert text.startswith("POST\n\n\n") and f"/{server.account_name}/pools\napi-version:" in text
    assert create.headers["authorization"].endswith(sign(server.account_key, text))


def test_wrong_key_is_refused_with_403(server: BatchTestServer) -> None:
    wrong = _client(server, key="d3Jvbmcta2V5LXdyb25nLWtleQ==", retry_total=0)
    with pytest.raises(HttpResponseError) as caught:
        wrong.get_pool("anything")
    assert caught.value.status_code == 403
    assert caught.value.error.code == "AuthenticationFailed"
    assert "string to sign" in str(caught.value)


class _Token:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        assert scopes == ("https://batch.core.windows.net//.default",)
        return AccessToken(self.token, int(time.time()) + 3600)


def test_bearer_token_needs_the_http_policy_and_the_configured_token() -> None:
    with running_batch_server(token="the-token") as server:
        plain = BatchClient(server.endpoint, _Token("the-token"), retry_total=0)
        with pytest.raises(ServiceRequestError, match="non-TLS"):
            plain.get_pool(POOL)
        good = BatchClient(server.endpoint, _Token("the-token"), per_call_policies=[AllowHttpPolicy()])
        good.create_pool(ubuntu_pool_options(POOL))
        assert good.get_pool(POOL).id == POOL
        assert server.requests[-1].headers["authorization"] == "Bearer the-token"
        bad = BatchClient(server.endpoint, _Token("other"), per_call_policies=[AllowHttpPolicy()])
        with pytest.raises(ClientAuthenticationError):
            bad.get_pool(POOL)


def test_injected_failures_are_retried_by_the_client(server: BatchTestServer, client: BatchClient) -> None:
    client.create_pool(ubuntu_pool_options(POOL))
    server.inject = [503, 500]
    before = len(server.requests)
    assert client.get_pool(POOL).id == POOL
    assert [r.method for r in server.requests[before:]] == ["GET", "GET", "GET"]


# -- pools and jobs ----------------------------------------------------------------------------


def test_pool_lifecycle(server: BatchTestServer, client: BatchClient) -> None:
    start = bm.BatchStartTask(command_line="/bin/true", wait_for_success=True)
    client.create_pool(ubuntu_pool_options(POOL, nodes=2, start_task=start))
    with pytest.raises(ResourceExistsError) as caught:
        client.create_pool(ubuntu_pool_options(POOL, nodes=2))
    assert caught.value.error.code == "PoolExists"
    assert server.pools_created[POOL] == 1

    pool = client.get_pool(POOL)
    assert (pool.state, pool.allocation_state) == ("active", "steady")
    assert pool.current_dedicated_nodes == pool.target_dedicated_nodes == 2
    assert pool.vm_size == "standard_d2s_v3"
    image = pool.virtual_machine_configuration.image_reference
    assert (image.publisher, image.offer, image.sku) == ("canonical", "0001-com-ubuntu-server-jammy", "22_04-lts")
    assert pool.start_task.command_line == "/bin/true"
    assert len(list(client.list_nodes(POOL))) == 2
    assert [p.id for p in client.list_pools()] == [POOL]
    assert client.pool_exists(POOL)

    server.resize_delay = 0.3
    poller = client.begin_resize_pool(POOL, bm.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=0.05)
    assert client.get_pool(POOL).allocation_state == "resizing"
    poller.result()
    assert client.get_pool(POOL).current_dedicated_nodes == 3

    server.delete_delay = 0.2
    poller = client.begin_delete_pool(POOL, polling_interval=0.05)
    assert client.get_pool(POOL).state == "deleting"
    poller.result()
    with pytest.raises(ResourceNotFoundError) as caught:
        client.get_pool(POOL)
    assert caught.value.error.code == "PoolNotFound"
    # azure-batch 15.1.0's BatchExceptionPolicy raises on the 404 that pool_exists means as "no".
    with pytest.raises(ResourceNotFoundError):
        client.pool_exists(POOL)


def test_job_on_a_missing_pool_is_accepted_and_waits_for_it(server: BatchTestServer, client: BatchClient) -> None:
    client.create_job(bm.BatchJobCreateOptions(id=JOB, pool_info=bm.BatchPoolInfo(pool_id=POOL)))
    with pytest.raises(ResourceExistsError) as caught:
        client.create_job(bm.BatchJobCreateOptions(id=JOB, pool_info=bm.BatchPoolInfo(pool_id=POOL)))
    assert caught.value.error.code == "JobExists"
    client.create_task(JOB, bm.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    time.sleep(0.2)
    assert client.get_task(JOB, "t").state == "active"  # no pool yet: the service does not reject, it waits
    with pytest.raises(ResourceExistsError) as caught:  # not on a node yet: no files
        list(client.list_task_files(JOB, "t"))
    assert caught.value.error.code == "TaskNotStarted"

    server.resize_delay = 0.2
    client.create_pool(ubuntu_pool_options(POOL))
    assert client.get_task(JOB, "t").state == "active"  # the pool is still allocating its node
    task = _wait_state(client, JOB, "t", "completed")
    assert task.execution_info.result == "success"
    assert task.node_info.pool_id == POOL
    assert server.jobs_created[JOB] == 1


def test_terminate_and_delete_job(server: BatchTestServer, client: BatchClient, job: str) -> None:
    client.create_task(job, bm.BatchTaskCreateOptions(id="long", command_line="sleep 30"))
    _wait_state(client, job, "long", "running")
    # azure-batch 15.1.0 cannot send the terminate request without a body: options are needed.
    reason = bm._models.BatchJobTerminateOptions(termination_reason="Cancelled by test")
    client.begin_terminate_job(job, reason, polling_interval=0.05).result()
    finished = client.get_job(job)
    assert finished.state == "completed"
    assert finished.execution_info.termination_reason == "Cancelled by test"
    task = _wait_state(client, job, "long", "completed")
    assert task.execution_info.failure_info.code == "TaskEnded"
    with pytest.raises(ResourceExistsError) as caught:
        client.create_task(job, bm.BatchTaskCreateOptions(id="late", command_line="/bin/true"))
    assert caught.value.error.code == "JobCompleted"

    client.begin_delete_job(job, polling_interval=0.05).result()
    with pytest.raises(ResourceNotFoundError) as caught:
        client.get_job(job)
    assert caught.value.error.code == "JobNotFound"


# -- tasks ---------------------------------------------------------------------------------------


def test_task_runs_with_batch_environment(server: BatchTestServer, client: BatchClient, job: str) -> None:
    client.create_task(
        job,
        bm.BatchTaskCreateOptions(
            id="env",
            command_line="/bin/sh -c 'echo $AZ_BATCH_TASK_ID $AZ_BATCH_JOB_ID $MY_SETTING; pwd; "
            'test "$PWD" = "$AZ_BATCH_TASK_WORKING_DIR" && test -d "$AZ_BATCH_NODE_SHARED_DIR" && echo dirs-ok\'',
            environment_settings=[bm.EnvironmentSetting(name="MY_SETTING", value="v 1")],
        ),
    )
    with pytest.raises(ResourceExistsError) as caught:
        client.create_task(job, bm.BatchTaskCreateOptions(id="env", command_line="/bin/true"))
    assert caught.value.error.code == "TaskExists"

    task = _wait_state(client, job, "env", "completed")
    assert (task.execution_info.exit_code, task.execution_info.result) == (0, "success")
    assert task.execution_info.failure_info is None
    assert task.previous_state == "running"
    out = _read(client, job, "env", "stdout.txt").splitlines()
    assert out[0] == f"env {job} v 1"
    assert out[1].endswith(f"/workitems/{job}/job-1/env/wd")
    assert out[2] == "dirs-ok"
    assert server.tasks_created[f"{job}/env"] == 1
    assert server.executions[f"{job}/env"] == 1


def test_failing_command_reports_exit_code_and_stderr(client: BatchClient, job: str) -> None:
    client.create_task(job, bm.BatchTaskCreateOptions(id="bad", command_line="/bin/sh -c 'echo broken >&2; exit 3'"))
    task = _wait_state(client, job, "bad", "completed")
    assert (task.execution_info.exit_code, task.execution_info.result) == (3, "failure")
    assert task.execution_info.failure_info.category == "usererror"
    assert task.execution_info.failure_info.code == "FailureExitCode"
    assert _read(client, job, "bad", "stderr.txt") == "broken\n"
    props = client.get_task_file_properties(job, "bad", "stderr.txt")
    assert int(props.content_length) == len("broken\n")


def test_command_line_is_not_run_by_a_shell(client: BatchClient, job: str) -> None:
    client.create_task(job, bm.BatchTaskCreateOptions(id="literal", command_line="echo $HOME 'a  b' > x"))
    client.create_task(job, bm.BatchTaskCreateOptions(id="missing", command_line="no-such-program --flag"))
    assert _wait_state(client, job, "literal", "completed").execution_info.exit_code == 0
    assert _read(client, job, "literal", "stdout.txt") == "$HOME a  b > x\n"
    task = _wait_state(client, job, "missing", "completed")
    assert task.execution_info.failure_info.code == "CommandProgramNotFound"
    assert task.execution_info.exit_code is None


def test_create_tasks_collection(client: BatchClient, job: str) -> None:
    tasks = [bm.BatchTaskCreateOptions(id=f"c{i}", command_line=f"echo {i}") for i in range(3)]
    result = client.create_tasks(job, tasks)
    assert sorted(r.task_id for r in result.result_values) == ["c0", "c1", "c2"]
    assert {r.status for r in result.result_values} == {"success"}
    for i in range(3):
        _wait_state(client, job, f"c{i}", "completed")
    assert sorted(t.id for t in client.list_tasks(job, max_results=2)) == ["c0", "c1", "c2"]
    done = list(client.list_tasks(job, filter="state eq 'completed'", select=["id", "state"]))
    assert len(done) == 3 and done[0].command_line is None
    counts = client.get_job_task_counts(job)
    assert (counts.task_counts.completed, counts.task_counts.succeeded) == (3, 3)


def test_terminate_running_task_kills_its_process(server: BatchTestServer, client: BatchClient, job: str) -> None:
    client.create_task(job, bm.BatchTaskCreateOptions(id="sleeper", command_line="/bin/sh -c 'echo $$; sleep 60'"))
    _wait_state(client, job, "sleeper", "running")
    pid = int(_wait(lambda: _read(client, job, "sleeper", "stdout.txt").strip()))
    started = time.monotonic()
    client.terminate_task(job, "sleeper")
    task = _wait_state(client, job, "sleeper", "completed")
    assert time.monotonic() - started < 5
    assert task.execution_info.result == "failure"
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert task.execution_info.exit_code == 128 + 15
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ResourceExistsError) as caught:
        client.terminate_task(job, "sleeper")
    assert caught.value.error.code == "TaskCompleted"


def test_terminate_during_run_delay_never_runs_the_command(
    server: BatchTestServer, client: BatchClient, job: str
) -> None:
    server.run_delay = 30
    client.create_task(job, bm.BatchTaskCreateOptions(id="delayed", command_line="/bin/true"))
    _wait_state(client, job, "delayed", "running")
    client.terminate_task(job, "delayed")
    task = _wait_state(client, job, "delayed", "completed", timeout=5)
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert server.executions[f"{job}/delayed"] == 0
    client.delete_task(job, "delayed")
    with pytest.raises(ResourceNotFoundError):
        client.get_task(job, "delayed")


def test_max_wall_clock_time_ends_the_task(client: BatchClient, job: str) -> None:
    limit = bm.BatchTaskConstraints(max_wall_clock_time=timedelta(seconds=0.5))
    client.create_task(job, bm.BatchTaskCreateOptions(id="slow", command_line="sleep 30", constraints=limit))
    task = _wait_state(client, job, "slow", "completed", timeout=10)
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert task.execution_info.exit_code == 128 + 15


def test_task_slots_limit_concurrency(server: BatchTestServer, client: BatchClient, job: str) -> None:
    server.run_delay = 0.5
    client.create_task(job, bm.BatchTaskCreateOptions(id="first", command_line="/bin/true"))
    _wait_state(client, job, "first", "running")
    client.create_task(job, bm.BatchTaskCreateOptions(id="second", command_line="/bin/true"))
    time.sleep(0.2)
    assert client.get_task(job, "second").state == "active"  # one node, one slot: it waits
    _wait_state(client, job, "second", "completed")
    assert client.get_task(job, "first").state == "completed"


def test_stdout_can_be_read_incrementally(server: BatchTestServer, client: BatchClient, job: str) -> None:
    script = "echo one; while [ ! -e go ]; do sleep 0.05; done; echo two"
    client.create_task(job, bm.BatchTaskCreateOptions(id="talker", command_line=f"/bin/sh -c '{script}'"))
    _wait_state(client, job, "talker", "running")
    assert _wait(lambda: _read(client, job, "talker", "stdout.txt")) == "one\n"
    offset = int(client.get_task_file_properties(job, "talker", "stdout.txt").content_length)
    assert offset == 4
    with pytest.raises(HttpResponseError) as caught:  # nothing new yet
        _read(client, job, "talker", "stdout.txt", ocp_range=f"bytes={offset}-")
    assert caught.value.status_code == 416
    files = {f.name: f for f in client.list_task_files(job, "talker", recursive=True)}
    assert {"stdout.txt", "stderr.txt", "wd"} <= set(files) and files["wd"].is_directory
    wd = client.get_task(job, "talker").node_info.task_root_directory
    assert wd.endswith(f"{job}/job-1/talker")
    # Let the command go on by creating the file it waits for in its working directory.
    node_dir = next(p for p in server.root.rglob("talker") if p.is_dir())
    (node_dir / "wd" / "go").touch()
    _wait_state(client, job, "talker", "completed")
    assert _read(client, job, "talker", "stdout.txt", ocp_range=f"bytes={offset}-") == "two\n"
    assert _read(client, job, "talker", "stdout.txt", ocp_range="bytes=0-2") == "one"


# -- storage (Azurite) -------------------------------------------------------------------------


class Storage:
    """A fresh Azurite container with SAS URLs signed by the development account key."""

    def __init__(self, connection_string: str) -> None:
        service = BlobServiceClient.from_connection_string(connection_string)
        self.service = service
        self.container: ContainerClient = service.create_container(f"batch-{uuid.uuid4().hex[:12]}")
        self.name = self.container.container_name

    def put(self, name: str, data: bytes) -> None:
        self.container.upload_blob(name, data, overwrite=True)

    def read(self, name: str) -> bytes:
        return self.container.download_blob(name).readall()

    def names(self) -> list[str]:
        return sorted(b.name for b in self.container.list_blobs())

    def blob_sas_url(self, name: str) -> str:
        sas = generate_blob_sas(
            ACCOUNT_NAME,
            self.name,
            name,
            account_key=ACCOUNT_KEY,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(timezone.utc) + timedelta(hours=1),
        )
        return f"{self.container.url}/{name}?{sas}"

    def container_sas_url(self, name: str | None = None, **permissions: bool) -> str:
        sas = generate_container_sas(
            ACCOUNT_NAME,
            name or self.name,
            account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions(**permissions),
            expiry=datetime.now(timezone.utc) + timedelta(hours=1),
        )
        return f"{self.container.url.rsplit('/', 1)[0]}/{name or self.name}?{sas}"


@pytest.fixture
def storage(azurite_connection_string: str) -> Storage:
    return Storage(azurite_connection_string)


def _output(pattern: str, url: str, path: str | None = None, condition: str = "taskcompletion") -> bm.OutputFile:
    return bm.OutputFile(
        file_pattern=pattern,
        destination=bm.OutputFileDestination(
            container=bm.OutputFileBlobContainerDestination(container_url=url, path=path)
        ),
        upload_options=bm.OutputFileUploadConfiguration(upload_condition=condition),
    )


@pytest.mark.azurite
def test_resource_files_in_and_output_files_out(
    server: BatchTestServer, client: BatchClient, job: str, storage: Storage
) -> None:
    storage.put("inputs/data.csv", b"a,b\n1,2\n")
    storage.put("lib/one.py", b"print(1)\n")
    storage.put("lib/sub/two.py", b"print(2)\n")
    storage.put("other/skip.txt", b"no")
    write_url = storage.container_sas_url(write=True, create=True)
    command = (
        "/bin/sh -c 'mkdir -p out/deep && cp in/data.csv out/copy.csv && cp in/data.csv out/deep/again.csv"
        " && ls -R code > out/listing.txt && cat code/lib/sub/two.py && test -x run.sh'"
    )
    client.create_task(
        job,
        bm.BatchTaskCreateOptions(
            id="copy",
            command_line=command,
            resource_files=[
                bm.ResourceFile(http_url=storage.blob_sas_url("inputs/data.csv"), file_path="in/data.csv"),
                bm.ResourceFile(
                    storage_container_url=storage.container_sas_url(read=True, list=True),
                    blob_prefix="lib/",
                    file_path="code",
                ),
                bm.ResourceFile(http_url=storage.blob_sas_url("lib/one.py"), file_path="run.sh", file_mode="0755"),
            ],
            output_files=[
                _output("out/**/*.csv", write_url, path="results"),
                _output("out/listing.txt", write_url, path="listing/ls.txt", condition="tasksuccess"),
                _output("../std*.txt", write_url, path="logs"),
                _output("out/copy.csv", write_url, path="never.csv", condition="taskfailure"),
            ],
        ),
    )
    task = _wait_state(client, job, "copy", "completed")
    assert task.execution_info.result == "success", _read(client, job, "copy", "stderr.txt")
    assert storage.read("results/copy.csv") == b"a,b\n1,2\n"
    assert storage.read("results/deep/again.csv") == b"a,b\n1,2\n"
    assert b"one.py" in storage.read("listing/ls.txt") and b"sub" in storage.read("listing/ls.txt")
    assert storage.read("logs/stdout.txt") == b"print(2)\n"
    assert "never.csv" not in storage.names()
    assert not any("skip" in u for u in server.downloads)
    assert any(u.endswith("/results/copy.csv") and "?" not in u for u in server.uploads)
    files = {f.name for f in client.list_task_files(job, "copy", recursive=True)}
    assert {"wd/code/lib/one.py", "wd/code/lib/sub/two.py", "wd/in/data.csv", "fileuploadout.txt"} <= files


@pytest.mark.azurite
def test_failed_task_uploads_only_on_failure_conditions(client: BatchClient, job: str, storage: Storage) -> None:
    write_url = storage.container_sas_url(write=True, create=True)
    client.create_task(
        job,
        bm.BatchTaskCreateOptions(
            id="fails",
            command_line="/bin/sh -c 'echo partial > part.txt; echo oops >&2; exit 2'",
            output_files=[
                _output("part.txt", write_url, condition="tasksuccess"),
                _output("../stderr.txt", write_url, path="failed/stderr.txt", condition="taskfailure"),
            ],
        ),
    )
    task = _wait_state(client, job, "fails", "completed")
    assert task.execution_info.exit_code == 2
    assert storage.names() == ["failed/stderr.txt"]
    assert storage.read("failed/stderr.txt") == b"oops\n"


@pytest.mark.azurite
def test_resource_file_failures_do_not_run_the_command(
    server: BatchTestServer, client: BatchClient, job: str, storage: Storage
) -> None:
    client.create_task(
        job,
        bm.BatchTaskCreateOptions(
            id="missing-blob",
            command_line="/bin/true",
            resource_files=[bm.ResourceFile(http_url=storage.blob_sas_url("nope.txt"), file_path="nope.txt")],
        ),
    )
    client.create_task(
        job,
        bm.BatchTaskCreateOptions(
            id="no-list",
            command_line="/bin/true",
            resource_files=[bm.ResourceFile(storage_container_url=storage.container_sas_url(read=True))],
        ),
    )
    client.create_task(
        job,
        bm.BatchTaskCreateOptions(
            id="off-box",
            command_line="/bin/true",
            resource_files=[bm.ResourceFile(http_url="https://example.invalid/x", file_path="x")],
        ),
    )
    expected = {
        "missing-blob": "BlobNotFound",
        "no-list": "ResourceContainerAccessDenied",
        "off-box": "BlobDownloadMiscError",
    }
    for task_id, code in expected.items():
        task = _wait_state(client, job, task_id, "completed")
        info = task.execution_info
        assert (info.result, info.failure_info.category, info.failure_info.code) == ("failure", "usererror", code)
        assert info.exit_code is None
        assert server.executions[f"{job}/{task_id}"] == 0


@pytest.mark.azurite
def test_upload_to_a_missing_container_fails_the_task(client: BatchClient, job: str, storage: Storage) -> None:
    url = storage.container_sas_url("no-such-container", write=True, create=True)
    client.create_task(
        job,
        bm.BatchTaskCreateOptions(
            id="lost", command_line="/bin/sh -c 'echo x > x.txt'", output_files=[_output("x.txt", url)]
        ),
    )
    task = _wait_state(client, job, "lost", "completed")
    assert task.execution_info.exit_code == 0
    assert task.execution_info.failure_info.code == "FileUploadContainerNotFound"
    assert "ContainerNotFound" in _read(client, job, "lost", "fileuploaderr.txt")


def test_task_file_operations(client: BatchClient, job: str) -> None:
    client.create_task(job, bm.BatchTaskCreateOptions(id="files", command_line="/bin/sh -c 'mkdir d; echo 1 > d/f'"))
    _wait_state(client, job, "files", "completed")
    with pytest.raises(HttpResponseError) as caught:
        _read(client, job, "files", "wd")
    # download_task_file streams: the SDK does not read an error body, so only the status is known.
    assert (caught.value.status_code, caught.value.error) == (400, None)
    assert client.get_task_file_properties(job, "files", "wd/d/f").content_length == 2
    with pytest.raises(ResourceExistsError) as caught:
        client.delete_task_file(job, "files", "wd/d")
    assert caught.value.error.code == "DirectoryNotEmpty"
    client.delete_task_file(job, "files", "wd/d", recursive=True)
    with pytest.raises(ResourceNotFoundError) as caught:
        client.get_task_file_properties(job, "files", "wd/d/f")
    names = {f.name for f in client.list_task_files(job, "files", recursive=True)}
    assert "wd/d" not in names and "wd" in names


def test_recreated_job_starts_with_clean_task_folders(client: BatchClient, job: str) -> None:
    client.create_task(job, bm.BatchTaskCreateOptions(id="t", command_line="/bin/sh -c 'echo old > left.txt'"))
    _wait_state(client, job, "t", "completed")
    client.begin_delete_job(job, polling_interval=0.05).result()
    client.create_job(bm.BatchJobCreateOptions(id=job, pool_info=bm.BatchPoolInfo(pool_id=POOL)))
    client.create_task(job, bm.BatchTaskCreateOptions(id="t", command_line="ls"))
    _wait_state(client, job, "t", "completed")
    assert _read(client, job, "t", "stdout.txt") == ""
