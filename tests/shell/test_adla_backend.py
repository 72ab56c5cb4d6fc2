"""The ADLA job API backend, its hook and trigger, against a local server speaking the protocol.

The server reads and writes only its linked Blob storage (Azurite), like a real account: scripts
here use ``wasb://`` URIs, and local paths fail the job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from support.adla_server import AdlaTestServer, running_adla_server

from airflow_provider_amlpipe.compute.adla import (
    AdlaAuthError,
    AdlaJobBackend,
    AdlaJobsClient,
    StaticTokenCredential,
    next_job_id,
)
from airflow_provider_amlpipe.compute.remote import RemoteJob, remote_job_id
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError

BACKEND = "airflow_provider_amlpipe.hooks.adla:aadla_backend"
TOKEN = "test-bearer-token-5f0c1e"  # what the test server accepts; must never be logged

pytestmark = pytest.mark.azurite


@pytest.fixture
def server(azurite_connection_string: str) -> Iterator[AdlaTestServer]:
    with running_adla_server(TOKEN, azurite_connection_string) as state:
        yield state


class Blobs:
    """A fresh container of the server's linked storage account, addressed by wasb:// URIs."""

    def __init__(self, connection_string: str) -> None:
        service = BlobServiceClient.from_connection_string(connection_string)
        self.account = str(service.account_name)
        self.container: ContainerClient = service.create_container(f"adla-{uuid.uuid4().hex[:12]}")

    def uri(self, key: str) -> str:
        return f"wasb://{self.container.container_name}@{self.account}.blob.core.windows.net/{key}"

    def put(self, key: str, data: bytes) -> None:
        self.container.upload_blob(key, data, overwrite=True)

    def read(self, key: str) -> bytes:
        return self.container.download_blob(key).readall()

    def exists(self, key: str) -> bool:
        return bool(self.container.get_blob_client(key).exists())

    def delete(self, key: str) -> None:
        self.container.delete_blob(key)


@pytest.fixture
def blobs(azurite_connection_string: str) -> Blobs:
    return Blobs(azurite_connection_string)


def _client(server: AdlaTestServer, token: str = TOKEN) -> AdlaJobsClient:
    return AdlaJobsClient(
        server.endpoint, StaticTokenCredential(token), verify_https=False, retries=3, retry_wait_max=0.05
    )


class Lines:
    """A sink that keeps the lines it is given."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def _script(blobs: Blobs, rows: str = "a\t1\nb\t2\na\t3\n") -> tuple[str, str]:
    """A script summing an input blob; ``(script, key of its output)``."""
    run = uuid.uuid4().hex[:8]
    blobs.put(f"in/{run}.tsv", rows.encode())
    out = f"out/{run}/sums.csv"
    script = (
        f'@rs = EXTRACT k string, v int FROM "{blobs.uri(f"in/{run}.tsv")}" USING Extractors.Tsv();\n'
        "@g = SELECT k, SUM(v) AS total FROM @rs GROUP BY k;\n"
        f'OUTPUT @g TO "{blobs.uri(out)}" ORDER BY k USING Outputters.Csv();\n'
    )
    return script, out


def test_a_job_runs_the_script_and_writes_its_output(
    server: AdlaTestServer, blobs: Blobs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    script, out = _script(blobs)
    sink = Lines()
    job_id = uuid.UUID(remote_job_id("fp-1", "dag.task.run1.-1"))
    with _client(server) as client:
        AdlaJobBackend(client).run_script(
            script, job_id=job_id, name="sums", degree_of_parallelism=4, priority=500, sink=sink, poll_interval=0.02
        )
    assert blobs.read(out) == b'"a",4\r\n"b",2\r\n'  # written back to linked storage
    assert server.writes == [blobs.uri(out)]
    assert server.executions[str(job_id)] == 1
    put = next(r for r in server.requests if r.method == "PUT")
    assert put.path == f"/Jobs/{job_id}" and put.query == {"api-version": ["2016-11-01"]}
    assert put.body == {
        "type": "USql",
        "name": "sums",
        "degreeOfParallelism": 4,
        "priority": 500,
        "properties": {"type": "USql", "script": script},
    }
    text = sink.text()
    assert "submitted" in text and f"ADLA job {job_id}: succeeded" in text
    assert TOKEN not in text and TOKEN not in caplog.text  # secrets never reach the sink or logs
    assert all(r.authorization == f"Bearer {TOKEN}" for r in server.requests)


def test_a_failing_script_surfaces_the_usql_error(server: AdlaTestServer, blobs: Blobs) -> None:
    blobs.put("in.tsv", b"a\t1\n")
    script = (
        f'@rs = EXTRACT k string, v int FROM "{blobs.uri("in.tsv")}" USING Extractors.Tsv();\n'
        f'OUTPUT @nope TO "{blobs.uri("x.csv")}" USING Outputters.Csv();\n'
    )
    sink = Lines()
    with _client(server) as client, pytest.raises(StepFailedError) as info:
        AdlaJobBackend(client).run_script(script, job_id=uuid.uuid4(), name="bad", sink=sink, poll_interval=0.02)
    message = str(info.value)
    assert "ended with result Failed" in message
    assert ":2:" in message and "nope" in message  # file:line:column and the unknown rowset's name
    assert [line for stream, line in sink.lines if stream == "stderr" and "nope" in line]


def test_resubmitting_the_same_job_id_reattaches_instead_of_running_twice(server: AdlaTestServer, blobs: Blobs) -> None:
    script, out = _script(blobs)
    job_id = uuid.UUID(remote_job_id("fp-2", "dag.task.run1.-1"))
    assert (
        job_id
        == uuid.UUID(remote_job_id("fp-2", "dag.task.run1.-1"))
        != uuid.UUID(remote_job_id("fp-2", "dag.task.run2.-1"))
    )
    with _client(server) as client:
        backend = AdlaJobBackend(client)
        backend.run_script(script, job_id=job_id, name="sums", sink=Lines(), poll_interval=0.02)
        blobs.delete(out)
        second = Lines()  # an Airflow retry of the same task instance: same deterministic id
        backend.run_script(script, job_id=job_id, name="sums", sink=second, poll_interval=0.02)
        info, created = client.create_job(job_id, "sums", script)
    assert server.executions == {str(job_id): 1}
    assert not blobs.exists(out)  # the script did not run again
    assert "reattaching" in second.text()
    assert not created and info.succeeded
    assert [r.method for r in server.requests].count("PUT") == 3


def test_a_failed_job_under_the_id_is_not_reused_by_a_retry(server: AdlaTestServer, blobs: Blobs) -> None:
    script, out = _script(blobs)
    failing = re.sub(r"in/\w+\.tsv", "in/missing.tsv", script)
    job_id = uuid.UUID(remote_job_id("fp-3", "dag.task.run1.-1"))
    with _client(server) as client:
        backend = AdlaJobBackend(client)
        with pytest.raises(StepFailedError, match=f"File not found: {re.escape(blobs.uri('in/missing.tsv'))}"):
            backend.run_script(failing, job_id=job_id, name="sums", sink=Lines(), poll_interval=0.02)
        blobs.put("in/missing.tsv", b"z\t9\n")  # the retry after fixing the input: a new job under the next id
        sink = Lines()
        backend.run_script(failing, job_id=job_id, name="sums", sink=sink, poll_interval=0.02)
    assert blobs.read(out) == b'"z",9\r\n'
    assert server.executions == {str(job_id): 1, str(next_job_id(job_id)): 1}
    assert "ended with result Failed; submitting under the next id" in sink.text()


def test_cancel_stops_a_slow_job(server: AdlaTestServer, blobs: Blobs) -> None:
    server.run_delay = 30.0
    script, out = _script(blobs)
    sink = Lines()
    errors: list[BaseException] = []
    with _client(server) as client:
        backend = AdlaJobBackend(client)

        def run() -> None:
            try:
                backend.run_script(script, job_id=uuid.uuid4(), name="slow", sink=sink, poll_interval=0.05)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 10
        while "Running" not in sink.text() and time.monotonic() < deadline:
            time.sleep(0.02)
        started = time.monotonic()
        backend.terminate()
        worker.join(10)
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert len(errors) == 1 and isinstance(errors[0], StepFailedError)
    assert "Cancelled" in str(errors[0])
    assert any(r.path.endswith("/CancelJob") and r.method == "POST" for r in server.requests)
    assert not server.executions and not blobs.exists(out)


def test_a_wrong_token_is_a_clear_auth_error(server: AdlaTestServer, blobs: Blobs) -> None:
    script, _ = _script(blobs)
    with _client(server, token="not-the-token") as client, pytest.raises(AdlaAuthError) as info:
        AdlaJobBackend(client).run_script(script, job_id=uuid.uuid4(), name="x", sink=Lines(), poll_interval=0.02)
    assert info.value.status_code == 401
    assert "rejected the credentials" in str(info.value) and "AuthenticationFailed" in str(info.value)
    assert "not-the-token" not in str(info.value)
    assert len(server.requests) == 1  # not retried


def test_transient_errors_are_retried(server: AdlaTestServer, blobs: Blobs) -> None:
    script, out = _script(blobs)
    server.inject = [503, 429]
    with _client(server) as client:
        AdlaJobBackend(client).run_script(script, job_id=uuid.uuid4(), name="x", sink=Lines(), poll_interval=0.02)
    assert blobs.exists(out)
    assert [r.method for r in server.requests[:3]] == ["PUT", "PUT", "PUT"]


@pytest.mark.parametrize(
    ("endpoint", "verify", "problem"),
    [
        ("http://adla.example.com", False, "plain http to 'adla.example.com' is refused"),
        ("http://adla.example.com", True, "plain http to 'adla.example.com' is refused"),
        ("http://127.0.0.1:1", True, "plain http to '127.0.0.1' is refused"),
        ("https://adla.example.com", False, "TLS verification cannot be disabled"),
        ("ftp://adla.example.com", True, "is not an http(s) URL"),
    ],
)
def test_insecure_endpoints_are_refused_before_any_request(endpoint: str, verify: bool, problem: str) -> None:
    class Recording:
        calls = 0

        def get_token(self, *scopes: str, **kwargs: object) -> object:
            self.calls += 1
            raise AssertionError("no token may be requested")

    credential = Recording()
    with pytest.raises(ConfigurationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        AdlaJobsClient(endpoint, credential, verify_https=verify)
    assert credential.calls == 0


@pytest.mark.parametrize("endpoint", ["http://localhost:9", "http://[::1]:9", "http://127.0.0.1:9/"])
def test_loopback_http_is_allowed_with_verify_https_false(endpoint: str) -> None:
    with AdlaJobsClient(endpoint, StaticTokenCredential("t"), verify_https=False) as client:
        assert not client.endpoint.endswith("/")
        assert client.endpoint.startswith("http://")
    assert "secret-value" not in repr(StaticTokenCredential("secret-value"))


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, server: AdlaTestServer, **extra: object) -> None:
    extras = {"static_token": TOKEN, "allow_insecure_loopback": True, **extra}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps({"conn_type": "amlpipe_adla", "host": server.endpoint, "extra": extras}),
    )


def test_the_hook_builds_a_client_from_its_connection(
    server: AdlaTestServer, blobs: Blobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_amlpipe.hooks.adla import AdlaHook, adla_endpoint

    _connection(monkeypatch, "adla_test", server)
    script, out = _script(blobs)
    backend = AdlaHook("adla_test").get_backend()
    with backend.client:
        backend.run_script(script, job_id=uuid.uuid4(), name="hook", sink=Lines(), poll_interval=0.02)
    assert blobs.exists(out)
    assert adla_endpoint("c", "myacct", None, None) == "https://myacct.azuredatalakeanalytics.net"
    assert adla_endpoint("c", None, "myacct", None) == "https://myacct.azuredatalakeanalytics.net"
    assert adla_endpoint("c", "http://127.0.0.1", None, 8080) == "http://127.0.0.1:8080"

    monkeypatch.setenv(
        "AIRFLOW_CONN_ADLA_PLAIN",
        json.dumps({"conn_type": "amlpipe_adla", "host": server.endpoint, "extra": {"static_token": TOKEN}}),
    )
    with pytest.raises(ConfigurationError, match="allow_insecure_loopback"):
        AdlaHook("adla_plain").get_client()


def test_the_trigger_yields_the_final_state_and_round_trips(
    server: AdlaTestServer, blobs: Blobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_amlpipe.compute.remote import JobStatus, raise_for_status
    from airflow_provider_amlpipe.triggers.remote_job import RemoteJobTrigger

    _connection(monkeypatch, "adla_trigger", server)
    script, out = _script(blobs)
    server.run_delay = 0.3
    with _client(server) as client:
        backend = AdlaJobBackend(client)
        submitted = backend.submit(str(uuid.uuid4()), {"script": script, "name": "deferred"}, Lines())
        assert not backend.status(submitted).ended

    trigger = RemoteJobTrigger("adla_trigger", BACKEND, submitted.to_dict(), poll_interval=0.05)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_amlpipe.triggers.remote_job.RemoteJobTrigger"
    rebuilt = RemoteJobTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    json.dumps(kwargs)

    async def first_event(t: RemoteJobTrigger) -> dict[str, object]:
        async def take() -> dict[str, object]:
            async for event in t.run():
                return dict(event.payload)
            raise AssertionError("no event")

        return await asyncio.wait_for(take(), 20)

    payload = asyncio.run(first_event(rebuilt))
    assert payload["status"] == "ended" and payload["job"] == submitted.to_dict()
    final = JobStatus.from_dict(payload["job_status"])  # type: ignore[arg-type]
    assert final.succeeded and final.errors == ()
    json.dumps(payload)
    raise_for_status(submitted, final)
    assert blobs.exists(out)

    failing = (
        f'@rs = EXTRACT k string FROM "{blobs.uri("bad.tsv")}" USING Extractors.Tsv();\n'
        f'OUTPUT @rs TO "{blobs.uri("o.csv")}";\n'
    )
    with _client(server) as client:
        failed = AdlaJobBackend(client).submit(str(uuid.uuid4()), {"script": failing, "name": "deferred-bad"}, Lines())
    payload = asyncio.run(first_event(RemoteJobTrigger("adla_trigger", BACKEND, failed.to_dict(), poll_interval=0.05)))
    final = JobStatus.from_dict(payload["job_status"])  # type: ignore[arg-type]
    assert final.state == "failed" and final.errors and "Failed" in final.detail
    with pytest.raises(StepFailedError, match="Failed"):
        raise_for_status(failed, final)

    gone = RemoteJob("ADLA", str(uuid.uuid4())).to_dict()
    missing = asyncio.run(first_event(RemoteJobTrigger("adla_trigger", BACKEND, gone, poll_interval=0.05)))
    assert missing["status"] == "error" and "no such job" in str(missing["message"])
    assert TOKEN not in json.dumps(payload) + json.dumps(missing)


def test_killing_the_deferred_task_cancels_the_job_frees_the_lease_and_deletes_staging(
    server: AdlaTestServer,
    blobs: Blobs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    azurite_connection_string: str,
) -> None:
    import dataclasses

    from airflow_provider_amlpipe.data.datastore import LocalDatastore
    from airflow_provider_amlpipe.reuse.store import Busy, Lease, ReuseStore
    from airflow_provider_amlpipe.triggers.remote_job import RemoteJobTrigger

    _connection(monkeypatch, "adla_kill", server)
    root = tmp_path / "store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_KILL_STORE", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    staging_conn = {"connection_string": azurite_connection_string, "container": blobs.container.container_name}
    monkeypatch.setenv(
        "AIRFLOW_CONN_KILL_STAGING", json.dumps({"conn_type": "amlpipe_azure_blob", "extra": staging_conn})
    )
    reuse = ReuseStore(LocalDatastore("kill_store", root))
    lease = reuse.acquire("fp", ttl=3600, bind_to_process=False, owner="dag.task.run.-1")
    assert isinstance(lease, Lease)
    script, out = _script(blobs)
    blobs.put("amlpipe-staging/job-1/inputs/data/x.csv", b"1\n")
    server.run_delay = 30.0
    with _client(server) as client:
        submitted = AdlaJobBackend(client).submit(str(uuid.uuid4()), {"script": script, "name": "killed"}, Lines())
    resume = {
        "datastore": "kill_store",
        "lease": dataclasses.asdict(lease),
        "staging": {"datastore": "kill_staging", "prefix": "amlpipe-staging/job-1", "outputs": {}},
    }
    trigger = RemoteJobTrigger("adla_kill", BACKEND, submitted.to_dict(), poll_interval=0.05, resume=resume)
    asyncio.run(trigger.on_kill())
    with _client(server) as client:
        for _ in range(100):
            info = client.get_job(submitted.job_id)
            if info.ended:
                break
            time.sleep(0.05)
    assert info.result == "Cancelled"
    assert not blobs.exists(out)
    assert not isinstance(reuse.acquire("fp", ttl=30), Busy)  # the killed task's lease was released
    assert not list(blobs.container.list_blobs(name_starts_with="amlpipe-staging/"))  # its staging is gone


# -- the server stands for a real account: only linked storage, never the worker's disk ------------


def _copy(source: str, target: str) -> str:
    return (
        f'@rs = EXTRACT k string, v int FROM "{source}" USING Extractors.Tsv();\n'
        f'OUTPUT @rs TO "{target}" USING Outputters.Csv();\n'
    )


def test_a_local_path_in_the_script_fails_the_job_before_anything_runs(
    server: AdlaTestServer, blobs: Blobs, tmp_path: Path
) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("a\t1\n")
    reads_local = _copy(str(source), blobs.uri("o.csv"))
    local_out = tmp_path / "out.csv"
    blobs.put("in.tsv", b"a\t1\n")
    writes_local = _copy(blobs.uri("in.tsv"), str(local_out))
    with _client(server) as client:
        backend = AdlaJobBackend(client)
        with pytest.raises(StepFailedError) as reading:
            backend.run_script(reads_local, job_id=uuid.uuid4(), name="local-in", sink=Lines(), poll_interval=0.02)
        with pytest.raises(StepFailedError) as writing:
            backend.run_script(writes_local, job_id=uuid.uuid4(), name="local-out", sink=Lines(), poll_interval=0.02)
    assert f"[E_STORE_USER_FILENOTFOUND] File not found: {source}" in str(reading.value)
    assert f"File not found: {local_out}" in str(writing.value)
    assert "cannot read or write the submitting machine's files" in str(writing.value)
    assert not local_out.exists() and not blobs.exists("o.csv")
    assert server.writes == []


def test_missing_blobs_and_unlinked_accounts_fail_like_adla(server: AdlaTestServer, blobs: Blobs) -> None:
    missing = _copy(blobs.uri("nope.tsv"), blobs.uri("o.csv"))
    other = missing.replace(f"@{blobs.account}.", "@otheraccount.")
    with _client(server) as client:
        backend = AdlaJobBackend(client)
        with pytest.raises(StepFailedError) as not_found:
            backend.run_script(missing, job_id=uuid.uuid4(), name="missing", sink=Lines(), poll_interval=0.02)
        with pytest.raises(StepFailedError) as unlinked:
            backend.run_script(other, job_id=uuid.uuid4(), name="other", sink=Lines(), poll_interval=0.02)
    assert f"[E_STORE_USER_FILENOTFOUND] File not found: {blobs.uri('nope.tsv')}" in str(not_found.value)
    assert "[E_STORE_USER_ACCOUNTNOTLINKED]" in str(unlinked.value) and "'otheraccount'" in str(unlinked.value)
    assert not blobs.exists("o.csv")


def test_file_sets_and_declared_paths_read_whole_blob_folders(server: AdlaTestServer, blobs: Blobs) -> None:
    blobs.put("sales/2024/01/north.csv", b"1,10\n2,20\n")
    blobs.put("sales/2024/02/south.csv", b"3,30\n")
    blobs.put("elsewhere/ignored.csv", b"9,90\n")
    script = (
        f'DECLARE @in string = "{blobs.uri("sales/{year}/{month}/{region}.csv")}";\n'
        f'DECLARE @out string = "{blobs.uri("report/")}" + "totals.csv";\n'
        "@rs = EXTRACT id int, amount int, year string, month string, region string FROM @in USING Extractors.Csv();\n"
        "OUTPUT (SELECT region, SUM(amount) AS total FROM @rs GROUP BY region) TO @out ORDER BY region"
        " USING Outputters.Csv();\n"
    )
    with _client(server) as client:
        AdlaJobBackend(client).run_script(script, job_id=uuid.uuid4(), name="sets", sink=Lines(), poll_interval=0.02)
    assert blobs.read("report/totals.csv") == b'"north",30\r\n"south",30\r\n'
