"""A local server speaking the ADLA job service's REST protocol (api-version 2016-11-01).

It checks the bearer token and api-version, stores jobs, and really runs each U-SQL script with
:func:`airflow_provider_amlpipe.usql.run_script` in a background thread, moving the job through
New → Compiling → Queued → Running → Ended (result Succeeded / Failed / Cancelled, with
``errorMessage`` entries carrying the ``UsqlError`` text). It honours ``CancelJob``, answers
``409 Conflict`` to a second ``PUT`` of an existing id, and records every request.

Test hooks: ``run_delay`` (seconds a job stays Running before its script runs; a cancel during
the delay ends it as Cancelled), ``inject`` (status codes to answer the next requests with,
to exercise client retries) and ``executions`` (how many times a script was run, per job id).
Scripts' paths are local paths: the server runs on the test machine.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_amlpipe.usql import UsqlError, run_script

API_VERSION = "2016-11-01"
_JOB = re.compile(r"^/jobs/([0-9a-fA-F-]{36})(/canceljob)?$", re.IGNORECASE)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any


@dataclass
class _Job:
    info: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class AdlaTestServer:
    """The server's state; :func:`running_adla_server` starts it on a free loopback port."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.run_delay = 0.0
        self.inject: list[int] = []
        self.requests: list[RecordedRequest] = []
        self.executions: Counter[str] = Counter()
        self.jobs: dict[str, _Job] = {}
        self.lock = threading.Lock()
        self.endpoint = ""

    # -- the protocol ----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                return 400, _error("InvalidRequestBody", "the body is not JSON")
        with self.lock:
            self.requests.append(RecordedRequest(method, parts.path, query, headers.get("authorization"), parsed))
            if self.inject:
                status = self.inject.pop(0)
                return status, _error("InjectedFailure", f"injected HTTP {status}")
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, _error("AuthenticationFailed", "the bearer token is missing, malformed or invalid")
        if query.get("api-version") != [API_VERSION]:
            return 400, _error("InvalidApiVersion", f"api-version must be {API_VERSION}")
        match = _JOB.match(parts.path)
        if not match:
            return 404, _error("ResourceNotFound", f"no route {parts.path}")
        job_id, cancel = match.group(1).lower(), bool(match.group(2))
        if cancel and method == "POST":
            return self._cancel(job_id)
        if not cancel and method == "PUT":
            return self._create(job_id, parsed)
        if not cancel and method == "GET":
            with self.lock:
                job = self.jobs.get(job_id)
                return (200, dict(job.info)) if job else (404, _error("JobNotFound", f"job {job_id} not found"))
        return 405, _error("MethodNotAllowed", f"{method} {parts.path}")

    def _create(self, job_id: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or body.get("type") != "USql" or not body.get("name"):
            return 400, _error("InvalidJob", "type USql, name and properties are required")
        properties = body.get("properties") or {}
        if properties.get("type") != "USql" or not isinstance(properties.get("script"), str):
            return 400, _error("InvalidJob", "properties.type must be USql and properties.script a string")
        priority = int(body.get("priority", 1000))
        dop = int(body.get("degreeOfParallelism", 1))
        if priority < 1 or dop < 1:
            return 400, _error("InvalidJob", "priority and degreeOfParallelism must be greater than 0")
        with self.lock:
            if job_id in self.jobs:
                return 409, _error("JobAlreadyExists", f"a job with id {job_id} already exists")
            info = {
                "jobId": job_id,
                "name": body["name"],
                "type": "USql",
                "submitter": "test@local",
                "degreeOfParallelism": dop,
                "priority": priority,
                "submitTime": _now(),
                "state": "New",
                "result": "None",
                "errorMessage": [],
                "properties": {
                    "type": "USql",
                    "script": properties["script"],
                    "runtimeVersion": properties.get("runtimeVersion") or "default",
                },
            }
            job = _Job(info)
            self.jobs[job_id] = job
            job.thread = threading.Thread(target=self._run, args=(job_id, job), daemon=True)
            job.thread.start()
            return 200, dict(info)

    def _cancel(self, job_id: str) -> tuple[int, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, _error("JobNotFound", f"job {job_id} not found")
            job.cancel.set()
        return 200, None

    def _set(self, job: _Job, **changes: Any) -> None:
        with self.lock:
            job.info.update(changes)

    def _run(self, job_id: str, job: _Job) -> None:
        for state in ("Compiling", "Queued", "Running"):
            if job.cancel.wait(0.02):
                break
            self._set(job, state=state, **({"startTime": _now()} if state == "Running" else {}))
        if not job.cancel.is_set() and self.run_delay:
            job.cancel.wait(self.run_delay)
        if job.cancel.is_set():
            self._set(job, state="Ended", result="Cancelled", endTime=_now())
            return
        with self.lock:
            self.executions[job_id] += 1
        try:
            run_script(job.info["properties"]["script"], source_name=f"{job_id}.usql")
        except UsqlError as exc:
            error = {
                "errorId": f"E_USQL_{exc.construct.upper().replace(' ', '_')}",
                "message": str(exc),
                "description": exc.message,
                "severity": "Error",
                "source": "USER",
                "lineNumber": exc.line,
            }
            self._set(job, state="Ended", result="Failed", endTime=_now(), errorMessage=[error])
            return
        except Exception as exc:
            error = {"errorId": "E_SYSTEM", "message": f"{type(exc).__name__}: {exc}", "severity": "Error"}
            self._set(job, state="Ended", result="Failed", endTime=_now(), errorMessage=[error])
            return
        self._set(job, state="Ended", result="Succeeded", endTime=_now())

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for every job thread to finish (so a test leaves nothing running)."""
        for job in list(self.jobs.values()):
            if job.thread is not None:
                job.thread.join(timeout)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _handler(state: AdlaTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = state.handle(self.command, self.path, headers, body)
            data = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@contextmanager
def running_adla_server(token: str) -> Iterator[AdlaTestServer]:
    """Serve the protocol on ``127.0.0.1`` at a free port; ``state.endpoint`` is its http URL."""
    state = AdlaTestServer(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        for job in list(state.jobs.values()):
            job.cancel.set()
        server.shutdown()
        server.server_close()
        state.wait_idle(10)
