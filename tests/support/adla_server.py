"""A local server speaking the ADLA job service's REST protocol (api-version 2016-11-01).

It checks the bearer token and api-version, stores jobs, and really runs each U-SQL script with
our compiler (:mod:`airflow_provider_amlpipe.usql`) in a background thread, moving the job through
New → Compiling → Queued → Running → Ended (result Succeeded / Failed / Cancelled, with
``errorMessage`` entries carrying the ``UsqlError`` text). It honours ``CancelJob``, answers
``409 Conflict`` to a second ``PUT`` of an existing id, and records every request.

Storage behaves as on a real account whose only reachable store is one linked Blob storage
account (Azurite, given by its connection string): every
``wasb://<container>@<account>.blob.core.windows.net/<path>`` in the script is downloaded before
the run (a blob, a folder, or for a file set the folder above its first ``{``) and the files the
script OUTPUTs to such URIs are uploaded afterwards. A ``wasb://`` path that does not exist (and is
not written by the script), another storage account, and a local path (``/...``, ``~...``,
``file:``, ``C:\\...``; a real account cannot read the submitting machine's disk) fail the job
with an ADLA-style ``E_STORE_...`` error, before anything runs. Local paths are recognised among
the script's string literals by their form, so a data value such as ``"/api/v1"`` counts too.

Test hooks: ``run_delay`` (seconds a job stays Running before its script runs; a cancel during
the delay ends it as Cancelled), ``inject`` (status codes to answer the next requests with,
to exercise client retries), ``executions`` (how many times a script was run, per job id), and
``reads`` / ``writes`` (the ``wasb://`` URIs jobs downloaded / uploaded, in order).
"""

from __future__ import annotations

import re
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from airflow_provider_amlpipe.usql import UsqlError, compile_script
from airflow_provider_amlpipe.usql.runner import execute
from support.loopback_http import RecordedRequest, ServiceHandler, admit, parse_request, serving

API_VERSION = "2016-11-01"
_JOB = re.compile(r"^/jobs/([0-9a-fA-F-]{36})(/canceljob)?$", re.IGNORECASE)
_WASB = re.compile(r'wasbs?://(?P<container>[^@/"\s]+)@(?P<host>[^/"\s]+)(?P<path>/[^"\s]*)?')
_BLOB_SUFFIX = ".blob.core.windows.net"
# String literals (regular, verbatim, char) and comments, in one pass so each is seen in context.
_TOKENS = re.compile(
    r'(?P<comment>//[^\n]*|/\*.*?\*/)|@"(?P<verbatim>(?:[^"]|"")*)"|"(?P<string>(?:[^"\\\n]|\\.)*)"'
    r"|'(?:[^'\\\n]|\\.)'",
    re.DOTALL,
)
_LOCAL_PATH = re.compile(r"^(?:/[^/\s]|~|file:|[A-Za-z]:[\\/])")


@dataclass
class _Job:
    info: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class JobFailure(Exception):
    """The job fails with this ADLA-style ``errorMessage`` entry (raised before anything runs)."""

    def __init__(self, error_id: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.error = {
            "errorId": error_id,
            "message": message,
            "details": details,
            "severity": "Error",
            "source": "USER",
        }


def _string_literals(script: str) -> Iterable[str]:
    for match in _TOKENS.finditer(script):
        if match.group("verbatim") is not None:
            yield match.group("verbatim").replace('""', '"')
        elif match.group("string") is not None:
            yield match.group("string")


@dataclass
class _Mounted:
    """A job's view of its wasb:// paths: each URI's local copy, and which URIs did not exist."""

    root: Path
    local: dict[str, str] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def unmount(self, text: str) -> str:
        """``text`` with the local copies' paths replaced by their wasb:// URIs (longest first)."""
        for uri, local in sorted(self.local.items(), key=lambda item: -len(item[1])):
            text = text.replace(local, uri)
        return text


class LinkedBlobStorage:
    """The Blob storage account linked to the test ADLA account, as a job sees it."""

    def __init__(self, connection_string: str) -> None:
        self.service = BlobServiceClient.from_connection_string(connection_string)
        self.account = str(self.service.account_name)
        self.reads: list[str] = []
        self.writes: list[str] = []
        self._lock = threading.Lock()

    def mount(self, script: str, root: Path) -> tuple[str, _Mounted]:
        """Download every wasb:// path of ``script`` under ``root``; the script rewritten to read there."""
        for literal in _string_literals(script):
            self._refuse_unreachable(literal)
        mounted = _Mounted(root)
        for match in _WASB.finditer(script):
            uri = match.group(0)
            if uri not in mounted.local:
                mounted.local[uri] = self._fetch(match, root, mounted)
        rewritten = _WASB.sub(lambda m: mounted.local[m.group(0)], script)
        return rewritten, mounted

    def _refuse_unreachable(self, literal: str) -> None:
        if _LOCAL_PATH.match(literal):
            raise JobFailure(
                "E_STORE_USER_FILENOTFOUND",
                f"File not found: {literal}",
                "a path without a store is looked up in the account's default Data Lake Store; an ADLA job cannot"
                " read or write the submitting machine's files",
            )
        if literal.startswith(("adl://", "swebhdfs://")):
            raise JobFailure(
                "E_STORE_USER_ACCOUNTNOTLINKED", f"{literal}: no Data Lake Store account is linked to this account"
            )

    def _fetch(self, match: re.Match[str], root: Path, mounted: _Mounted) -> str:
        container, host, path = match.group("container"), match.group("host"), (match.group("path") or "/")
        account = host.split(".", 1)[0]
        if not host.endswith(_BLOB_SUFFIX) or account != self.account:
            raise JobFailure(
                "E_STORE_USER_ACCOUNTNOTLINKED",
                f"{match.group(0)}: storage account {account!r} is not linked to this Data Lake Analytics account",
            )
        key = path.lstrip("/")
        local = f"{root / container}/{key}"
        client = self.service.get_container_client(container)
        try:
            if "{" in key:  # a file set: everything in the folder above its first pattern
                folder = key[: key.index("{")].rpartition("/")[0]
                Path(root / container / folder).mkdir(parents=True, exist_ok=True)
                self._download_prefix(client, f"{folder}/" if folder else "", root / container)
            elif key and client.get_blob_client(key).exists():
                self._download(client, key, root / container)
            elif not self._download_prefix(client, f"{key.rstrip('/')}/" if key else "", root / container):
                mounted.missing.add(match.group(0))
        except ResourceNotFoundError:  # the container does not exist
            mounted.missing.add(match.group(0))
        if match.group(0) not in mounted.missing:
            with self._lock:
                self.reads.append(match.group(0))
        return local

    def _download_prefix(self, client: Any, prefix: str, dest: Path) -> int:
        names = [b.name for b in client.list_blobs(name_starts_with=prefix or None)]
        for name in names:
            self._download(client, name, dest)
        return len(names)

    @staticmethod
    def _download(client: Any, name: str, dest: Path) -> None:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.download_blob(name).readall())

    def check(self, mounted: _Mounted, outputs: Iterable[Path]) -> None:
        """Fail like ADLA for inputs that do not exist and outputs outside linked storage."""
        outputs = list(outputs)
        for out in outputs:
            if not out.is_relative_to(mounted.root):
                raise JobFailure(
                    "E_STORE_USER_CANNOTWRITE",
                    f"OUTPUT to {out}: not a path in this account's linked storage",
                    "an ADLA job writes only to its Data Lake Store and linked Blob storage",
                )
        for uri in sorted(mounted.missing):
            local = Path(mounted.local[uri])
            if not any(out == local or out.is_relative_to(local) for out in outputs):
                raise JobFailure("E_STORE_USER_FILENOTFOUND", f"File not found: {uri}")

    @staticmethod
    def raise_if_missing(mounted: _Mounted, message: str) -> None:
        """A :class:`JobFailure` if ``message`` (a compiler error) is about a wasb:// path that does not exist."""
        for uri in sorted(mounted.missing):
            if mounted.local[uri] in message:
                raise JobFailure("E_STORE_USER_FILENOTFOUND", f"File not found: {uri}")

    def upload(self, mounted: _Mounted, written: Iterable[Path]) -> None:
        """Upload the files the script wrote back to their wasb:// location."""
        for path in written:
            container, *parts = path.relative_to(mounted.root).parts
            key = "/".join(parts)
            with open(path, "rb") as handle:
                self.service.get_container_client(container).upload_blob(key, handle, overwrite=True)
            with self._lock:
                self.writes.append(f"wasb://{container}@{self.account}{_BLOB_SUFFIX}/{key}")


class AdlaTestServer:
    """The server's state; :func:`running_adla_server` starts it on a free loopback port."""

    def __init__(self, token: str, storage: LinkedBlobStorage) -> None:
        self.token = token
        self.storage = storage
        self.run_delay = 0.0
        self.inject: list[int] = []
        self.requests: list[RecordedRequest] = []
        self.executions: Counter[str] = Counter()
        self.jobs: dict[str, _Job] = {}
        self.lock = threading.Lock()
        self.endpoint = ""

    # -- the protocol ----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        path, query, parsed = parse_request(raw_path, body)
        if isinstance(parsed, bytes):
            return 400, _error("InvalidRequestBody", "the body is not JSON")
        injected = admit(self, RecordedRequest(method, path, query, headers.get("authorization"), parsed))
        if injected is not None:
            return injected, _error("InjectedFailure", f"injected HTTP {injected}")
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, _error("AuthenticationFailed", "the bearer token is missing, malformed or invalid")
        if query.get("api-version") != [API_VERSION]:
            return 400, _error("InvalidApiVersion", f"api-version must be {API_VERSION}")
        match = _JOB.match(path)
        if not match:
            return 404, _error("ResourceNotFound", f"no route {path}")
        job_id, cancel = match.group(1).lower(), bool(match.group(2))
        if cancel and method == "POST":
            return self._cancel(job_id)
        if not cancel and method == "PUT":
            return self._create(job_id, parsed)
        if not cancel and method == "GET":
            with self.lock:
                job = self.jobs.get(job_id)
                return (200, dict(job.info)) if job else (404, _error("JobNotFound", f"job {job_id} not found"))
        return 405, _error("MethodNotAllowed", f"{method} {path}")

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
            self._execute(job_id, job.info["properties"]["script"])
        except JobFailure as exc:
            self._set(job, state="Ended", result="Failed", endTime=_now(), errorMessage=[exc.error])
            return
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

    def _execute(self, job_id: str, script: str) -> None:
        """Run the script on local copies of its linked-storage paths, then upload what it wrote."""
        with tempfile.TemporaryDirectory(prefix="adla-job-") as tmp:
            mounted_script, mounted = self.storage.mount(script, Path(tmp) / "wasb")
            # Relative paths would be in the account's default Data Lake Store: an empty folder here.
            default_store = Path(tmp) / "default-store"
            default_store.mkdir()
            try:
                compiled = compile_script(mounted_script, source_name=f"{job_id}.usql", base_dir=default_store)
                self.storage.check(mounted, compiled.outputs)
                report = execute(compiled)
            except UsqlError as exc:
                # The compiler checks that inputs exist: name the missing blob as ADLA would.
                self.storage.raise_if_missing(mounted, exc.message)
                raise UsqlError(exc.file, exc.line, exc.column, exc.construct, mounted.unmount(exc.message)) from None
            self.storage.upload(mounted, report.rows_written)

    @property
    def reads(self) -> list[str]:
        return self.storage.reads

    @property
    def writes(self) -> list[str]:
        return self.storage.writes

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for every job thread to finish (so a test leaves nothing running)."""
        for job in list(self.jobs.values()):
            if job.thread is not None:
                job.thread.join(timeout)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _handler(state: AdlaTestServer) -> type[ServiceHandler]:
    def _without_headers(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, Any]:
        status, payload = state.handle(method, path, headers, body)
        return status, {}, payload

    class Handler(ServiceHandler):
        json_type = "application/json; charset=utf-8"
        typed_when_empty = True  # a cancel's empty 200 still says JSON

        def service_headers(self, request: dict[str, str]) -> list[tuple[str, str]]:
            return [("x-ms-request-id", str(uuid.uuid4()))]

        def _serve(self) -> None:
            self.dispatch(_without_headers)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

    return Handler


@contextmanager
def running_adla_server(token: str, blob_connection_string: str) -> Iterator[AdlaTestServer]:
    """Serve the protocol on ``127.0.0.1`` at a free port; ``state.endpoint`` is its http URL.

    ``blob_connection_string`` names the storage account linked to the test account (Azurite).
    """
    state = AdlaTestServer(token, LinkedBlobStorage(blob_connection_string))
    try:
        with serving(_handler(state)) as endpoint:
            state.endpoint = endpoint
            try:
                yield state
            finally:
                for job in list(state.jobs.values()):
                    job.cancel.set()
    finally:
        state.wait_idle(10)
