"""The ADLA job API backend, its hook and trigger, against a local server speaking the protocol."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from adla_server import AdlaTestServer, running_adla_server

from airflow_provider_amlpipe.compute.adla import (
    AdlaAuthError,
    AdlaJobBackend,
    AdlaJobsClient,
    JobInfo,
    StaticTokenCredential,
    job_id_for,
    job_info_from_event,
    next_job_id,
)
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError

TOKEN = "test-bearer-token-5f0c1e"  # what the test server accepts; must never be logged


@pytest.fixture
def server() -> Iterator[AdlaTestServer]:
    with running_adla_server(TOKEN) as state:
        yield state


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


def _script(tmp_path: Path, rows: str = "a\t1\nb\t2\na\t3\n") -> tuple[str, Path]:
    source = tmp_path / "in.tsv"
    source.write_text(rows)
    out = tmp_path / "out" / "sums.csv"
    script = (
        f'@rs = EXTRACT k string, v int FROM "{source}" USING Extractors.Tsv();\n'
        "@g = SELECT k, SUM(v) AS total FROM @rs GROUP BY k;\n"
        f'OUTPUT @g TO "{out}" ORDER BY k USING Outputters.Csv();\n'
    )
    return script, out


def test_a_job_runs_the_script_and_writes_its_output(
    server: AdlaTestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    script, out = _script(tmp_path)
    sink = Lines()
    job_id = job_id_for("fp-1", "dag.task.run1.-1")
    with _client(server) as client:
        AdlaJobBackend(client).run_script(
            script, job_id=job_id, name="sums", degree_of_parallelism=4, priority=500, sink=sink, poll_interval=0.02
        )
    assert out.read_bytes() == b'"a",4\r\n"b",2\r\n'
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
    assert "submitted" in text and "Ended (Succeeded)" in text
    assert TOKEN not in text and TOKEN not in caplog.text  # secrets never reach the sink or logs
    assert all(r.authorization == f"Bearer {TOKEN}" for r in server.requests)


def test_a_failing_script_surfaces_the_usql_error(server: AdlaTestServer, tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("a\t1\n")
    script = (
        f'@rs = EXTRACT k string, v int FROM "{source}" USING Extractors.Tsv();\n'
        'OUTPUT @nope TO "x.csv" USING Outputters.Csv();\n'
    )
    sink = Lines()
    with _client(server) as client, pytest.raises(StepFailedError) as info:
        AdlaJobBackend(client).run_script(script, job_id=uuid.uuid4(), name="bad", sink=sink, poll_interval=0.02)
    message = str(info.value)
    assert "ended with result Failed" in message
    assert ":2:" in message and "nope" in message  # file:line:column and the unknown rowset's name
    assert [line for stream, line in sink.lines if stream == "stderr" and "nope" in line]


def test_resubmitting_the_same_job_id_reattaches_instead_of_running_twice(
    server: AdlaTestServer, tmp_path: Path
) -> None:
    script, out = _script(tmp_path)
    job_id = job_id_for("fp-2", "dag.task.run1.-1")
    assert job_id == job_id_for("fp-2", "dag.task.run1.-1") != job_id_for("fp-2", "dag.task.run2.-1")
    with _client(server) as client:
        backend = AdlaJobBackend(client)
        backend.run_script(script, job_id=job_id, name="sums", sink=Lines(), poll_interval=0.02)
        out.unlink()
        second = Lines()  # an Airflow retry of the same task instance: same deterministic id
        backend.run_script(script, job_id=job_id, name="sums", sink=second, poll_interval=0.02)
        info, created = client.create_job(job_id, "sums", script)
    assert server.executions == {str(job_id): 1}
    assert not out.exists()  # the script did not run again
    assert "reattaching" in second.text()
    assert not created and info.succeeded
    assert [r.method for r in server.requests].count("PUT") == 3


def test_a_failed_job_under_the_id_is_not_reused_by_a_retry(server: AdlaTestServer, tmp_path: Path) -> None:
    script, out = _script(tmp_path)
    bad = tmp_path / "missing.tsv"
    failing = script.replace(str(tmp_path / "in.tsv"), str(bad))
    job_id = job_id_for("fp-3", "dag.task.run1.-1")
    with _client(server) as client:
        backend = AdlaJobBackend(client)
        with pytest.raises(StepFailedError):
            backend.run_script(failing, job_id=job_id, name="sums", sink=Lines(), poll_interval=0.02)
        bad.write_text("z\t9\n")  # the retry after fixing the input: a new job under the next id
        sink = Lines()
        backend.run_script(failing, job_id=job_id, name="sums", sink=sink, poll_interval=0.02)
    assert out.read_bytes() == b'"z",9\r\n'
    assert server.executions == {str(job_id): 1, str(next_job_id(job_id)): 1}
    assert "ended with result Failed; submitting under the next id" in sink.text()


def test_cancel_stops_a_slow_job(server: AdlaTestServer, tmp_path: Path) -> None:
    server.run_delay = 30.0
    script, out = _script(tmp_path)
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
    assert not server.executions and not out.exists()


def test_a_wrong_token_is_a_clear_auth_error(server: AdlaTestServer, tmp_path: Path) -> None:
    script, _ = _script(tmp_path)
    with _client(server, token="not-the-token") as client, pytest.raises(AdlaAuthError) as info:
        AdlaJobBackend(client).run_script(script, job_id=uuid.uuid4(), name="x", sink=Lines(), poll_interval=0.02)
    assert info.value.status_code == 401
    assert "rejected the credentials" in str(info.value) and "AuthenticationFailed" in str(info.value)
    assert "not-the-token" not in str(info.value)
    assert len(server.requests) == 1  # not retried


def test_transient_errors_are_retried(server: AdlaTestServer, tmp_path: Path) -> None:
    script, out = _script(tmp_path)
    server.inject = [503, 429]
    with _client(server) as client:
        AdlaJobBackend(client).run_script(script, job_id=uuid.uuid4(), name="x", sink=Lines(), poll_interval=0.02)
    assert out.exists()
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
    server: AdlaTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_amlpipe.hooks.adla import AdlaHook, adla_endpoint

    _connection(monkeypatch, "adla_test", server)
    script, out = _script(tmp_path)
    backend = AdlaHook("adla_test").get_backend()
    with backend.client:
        backend.run_script(script, job_id=uuid.uuid4(), name="hook", sink=Lines(), poll_interval=0.02)
    assert out.exists()
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
    server: AdlaTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_amlpipe.triggers.adla_job import AdlaJobTrigger

    _connection(monkeypatch, "adla_trigger", server)
    script, out = _script(tmp_path)
    server.run_delay = 0.3
    with _client(server) as client:
        submitted = AdlaJobBackend(client).submit(script, job_id=uuid.uuid4(), name="deferred")
    assert not submitted.ended

    trigger = AdlaJobTrigger("adla_trigger", submitted.job_id, poll_interval=0.05)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_amlpipe.triggers.adla_job.AdlaJobTrigger"
    rebuilt = AdlaJobTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    json.dumps(kwargs)

    async def first_event(t: AdlaJobTrigger) -> dict[str, object]:
        async def take() -> dict[str, object]:
            async for event in t.run():
                return dict(event.payload)
            raise AssertionError("no event")

        return await asyncio.wait_for(take(), 20)

    payload = asyncio.run(first_event(rebuilt))
    assert payload["status"] == "ended" and payload["result"] == "Succeeded"
    assert payload["job_id"] == submitted.job_id and payload["errors"] == []
    json.dumps(payload)
    AdlaJobBackend.raise_for_result(job_info_from_event(payload))
    assert out.exists()

    bad = tmp_path / "bad.usql"
    failing = f'@rs = EXTRACT k string FROM "{bad}" USING Extractors.Tsv();\nOUTPUT @rs TO "{tmp_path / "o.csv"}";\n'
    with _client(server) as client:
        failed = AdlaJobBackend(client).submit(failing, job_id=uuid.uuid4(), name="deferred-bad")
    payload = asyncio.run(first_event(AdlaJobTrigger("adla_trigger", failed.job_id, poll_interval=0.05)))
    assert payload["result"] == "Failed" and payload["errors"]
    with pytest.raises(StepFailedError, match="Failed"):
        AdlaJobBackend.raise_for_result(JobInfo.from_event(payload))

    missing = asyncio.run(first_event(AdlaJobTrigger("adla_trigger", str(uuid.uuid4()), poll_interval=0.05)))
    assert missing["status"] == "error" and "no such job" in str(missing["message"])
    with pytest.raises(StepFailedError, match="no such job"):
        job_info_from_event(missing)
    assert TOKEN not in json.dumps(payload) + json.dumps(missing)


def test_killing_the_deferred_task_cancels_the_job_and_frees_the_lease(
    server: AdlaTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from airflow_provider_amlpipe.data.datastore import LocalDatastore
    from airflow_provider_amlpipe.reuse.store import Busy, Lease, ReuseStore
    from airflow_provider_amlpipe.triggers.adla_job import AdlaJobTrigger

    _connection(monkeypatch, "adla_kill", server)
    root = tmp_path / "store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_KILL_STORE", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    reuse = ReuseStore(LocalDatastore("kill_store", root))
    lease = reuse.acquire("fp", ttl=3600, bind_to_process=False, owner="dag.task.run.-1")
    assert isinstance(lease, Lease)
    script, out = _script(tmp_path)
    server.run_delay = 30.0
    with _client(server) as client:
        submitted = AdlaJobBackend(client).submit(script, job_id=uuid.uuid4(), name="killed")
    resume = {"datastore": "kill_store", "lease": dataclasses.asdict(lease)}
    trigger = AdlaJobTrigger("adla_kill", submitted.job_id, poll_interval=0.05, resume=resume)
    asyncio.run(trigger.on_kill())
    with _client(server) as client:
        for _ in range(100):
            info = client.get_job(submitted.job_id)
            if info.ended:
                break
            time.sleep(0.05)
    assert info.result == "Cancelled"
    assert not out.exists()
    assert not isinstance(reuse.acquire("fp", ttl=30), Busy)  # the killed task's lease was released
