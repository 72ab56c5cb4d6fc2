"""A local server speaking the Azure Batch data-plane REST protocol (api-version 2025-06-01).

That is the api-version ``azure-batch`` 15.1.0 sends (its new ``azure.batch.BatchClient``; the v14
``BatchServiceClient`` is not targeted). The server keeps pools, jobs and tasks, and **really runs
every task** on a simulated Linux compute node: a folder per node under a temporary directory laid
out as ``/mnt/batch/tasks`` is on a real node (``workitems/<job>/job-1/<task>/`` holding ``wd/``,
``stdout.txt``, ``stderr.txt``, ``certs/``; plus ``shared/``, ``startup/``, ``fsmounts/``).

For each task, in order, as the service does: the task waits until its job's pool exists, is steady
and has a free task slot (``currentDedicatedNodes * taskSlotsPerNode``; a job whose pool does not
exist is accepted, as the service accepts it, and its tasks wait); it turns ``running``; its
``resourceFiles`` are downloaded into ``wd/`` (``httpUrl`` with a plain HTTP GET, e.g. a blob SAS URL
on Azurite; ``storageContainerUrl`` [+ ``blobPrefix``] lists the container with that SAS URL and
downloads every blob, keeping its full blob name under ``filePath``; ``autoStorageContainerName``
uses the auto-storage account when one is configured; ``fileMode`` is applied). A download that
fails completes the task with ``result: failure`` and a ``failureInfo`` of category ``usererror``
(``BlobNotFound``, ``BlobAccessDenied``, ``BlobDownloadMiscError``, ``ResourceContainerAccessDenied``,
``ResourceContainerListMiscError``) and the command line never runs. Then the command line runs.

Command lines follow Linux node semantics: **no shell** is involved. The line is split into
arguments with POSIX quoting rules (``shlex.split``), and the program is executed directly, found on
``PATH`` or, when it contains a ``/``, relative to the working directory ``wd/``; so ``$VAR``, ``>``,
``|`` and ``&&`` only work when the line asks for a shell, e.g. ``/bin/sh -c 'cat in.txt > out.txt'``
(this is what the service documents). A program that does not exist fails the task with
``CommandProgramNotFound``. The process runs in ``wd/`` with ``stdout.txt`` / ``stderr.txt`` written
live in the task directory, with the task's ``environmentSettings`` over the job's
``commonEnvironmentSettings`` over the ``AZ_BATCH_*`` variables the service sets (``ACCOUNT_NAME``,
``ACCOUNT_URL``, ``POOL_ID``, ``NODE_ID``, ``NODE_IS_DEDICATED``, ``JOB_ID``, ``TASK_ID``,
``NODE_ROOT_DIR``, ``NODE_SHARED_DIR``, ``NODE_STARTUP_DIR``, ``NODE_MOUNTS_DIR``, ``TASK_DIR``,
``TASK_WORKING_DIR``, ``CERTIFICATES_DIR``, ``TASK_USER``, ``TASK_USER_IDENTITY``) and a plain
``PATH``. ``constraints.maxWallClockTime`` is honoured (the process is killed). After the process
exits, ``outputFiles`` are uploaded to their ``containerUrl`` (a container SAS URL) according to
``uploadOptions.uploadCondition`` (``tasksuccess`` / ``taskfailure`` / ``taskcompletion``):
``filePattern`` is relative to ``wd/`` (``../stdout.txt`` reaches the logs), supports ``*``, ``?``
and ``**``; without a wildcard ``path`` is the blob name, with one it is the virtual directory the
matched files' paths (relative to the pattern's fixed leading folders) go under. Upload progress is
logged to ``fileuploadout.txt`` / ``fileuploaderr.txt`` in the task directory, as on a real node; an
upload failure fails the task (``FileUploadContainerNotFound`` / ``FileUploadMiscError``). The exit
code lands in ``executionInfo.exitCode``, with ``result`` and, for a non-zero code, ``failureInfo``
code ``FailureExitCode``. Terminating a running task kills its process group (SIGTERM, then SIGKILL)
and completes it with ``failureInfo`` code ``TaskEnded`` and exit code 128 + signal.

Every URL a task downloads from or uploads to must be on loopback (``127.0.0.1`` / ``localhost`` /
``[::1]``); anything else fails the task like an unreachable store, so a test can never reach out.

Authentication is verified the way the service does it:

* ``SharedKey <account>:<signature>`` (``AzureNamedKeyCredential``): the string to sign is rebuilt
  from the request as received, exactly as ``azure/batch/_patch.py`` (``BatchSharedKeyAuthPolicy``)
  builds it: verb, the eleven standard headers (``content-length`` defaulting to ``0`` for verbs other
  than GET/HEAD), the ``ocp-*`` headers sorted, ``/<account><raw path>`` and the query parameters
  sorted; the HMAC-SHA256 under the base64 account key must match, else ``403 AuthenticationFailed``
  (with the ``AuthenticationErrorDetail`` the service gives).
* ``Bearer <token>``: any non-empty token, or exactly ``token`` when one is configured; else ``401``.

Errors are the service's OData JSON (``{"odata.metadata", "code", "message": {"lang", "value"},
"values": [{"key", "value"}]}``), which the SDK's ``BatchErrorFormat`` parses into ``error.code``.

Client set-up (``http://127.0.0.1:PORT``)::

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(
        server.endpoint,
        AzureNamedKeyCredential(server.account_name, server.account_key),
        retry_backoff_factor=0.01,  # injected 5xx are retried quickly
    )

Shared key works over http as is (its policy never checks the scheme). A bearer token is refused
over http by azure-core's ``BearerTokenCredentialPolicy`` ("Bearer token authentication is not
permitted for non-TLS protected (non-https) URLs"); :class:`AllowHttpPolicy` (a per-call policy that
sets ``enforce_https = False`` in each request's context) lifts that for the whole client::

    client = BatchClient(server.endpoint, token_credential, per_call_policies=[AllowHttpPolicy()])

(passing ``enforce_https=False`` to every operation call works too, but not to the constructor).
The long-running ``begin_delete_pool`` / ``begin_terminate_job`` / ``begin_resize_pool`` poll with
``get_pool`` / ``get_job`` every ``polling_interval`` seconds (default 5): pass a small one.

Quirks of azure-batch 15.1.0 itself, which these tests pin: ``pool_exists`` raises
``ResourceNotFoundError`` for a missing pool (its ``BatchExceptionPolicy`` raises on every non-2xx,
also the 404 that means "no"); ``begin_terminate_job`` fails client-side (``ValueError``) without an
options body (``models._models.BatchJobTerminateOptions``); ``download_task_file`` streams, so on an
error it raises ``HttpResponseError`` with ``error`` None (only ``status_code`` tells 404 from 416).

Implemented: pools (create 201 / 409 ``PoolExists``, get, HEAD exists, list, delete 202 → ``deleting``
→ 404, resize / stop resize with ``allocationState`` ``resizing`` → ``steady``, nodes list / get);
jobs (create 201 / 409 ``JobExists``, get, list, delete 202 → ``deleting`` → 404 killing its running
tasks, terminate 202 → ``terminating`` → ``completed``; tasks cannot be added to a completed job,
409 ``JobCompleted``; task counts); tasks (create 201 / 409 ``TaskExists``, add collection, get, list,
terminate 204, delete 200; ``active`` → ``running`` → ``completed``); task files (list, recursive or
not; get with ``ocp-range: bytes=a-b`` / ``bytes=a-`` answering 200 with that slice, 416
``InvalidRange`` past the end; HEAD properties with ``Content-Length`` and the ``ocp-batch-file-*``
headers; delete); ``$select``; ``$filter`` of the ``prop eq 'value' [and …]`` form; paging with
``maxresults`` / ``odata.nextLink``. Not implemented: start tasks are recorded but not run; job
preparation / release tasks, job manager tasks, task dependencies, multi-instance tasks, containers,
retries (``maxTaskRetryCount``), requeue of running tasks when their pool is deleted, autoscale,
pool / job update (PATCH / PUT), job schedules, node operations (reboot, remote login, …), upload
headers of output files, and request timeouts (``timeOut``).

Test hooks: ``run_delay`` (seconds a task stays ``running`` between its downloads and its command,
so terminate / reattach can be tested), ``resize_delay`` (seconds a created or resized pool stays
``resizing``), ``delete_delay`` (seconds a deleted pool or job stays ``deleting``), ``inject``
(status codes for the next requests, to exercise client retries), ``requests`` (every request
received, in order), ``pools_created`` / ``jobs_created`` / ``tasks_created`` / ``executions``
(counters per id), ``uploads`` (blob URLs written, without SAS), ``downloads`` (URLs read).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.storage.blob import BlobServiceClient, ContainerClient

from support.loopback_http import ServiceHandler, admit, hosting, parse_request

API_VERSION = "2025-06-01"
JSON_TYPE = "application/json;odata=minimalmetadata"
DEFAULT_ACCOUNT_KEY = base64.b64encode(b"amlpipe-batch-test-server-key-0123456789abcdef").decode()
# What BatchSharedKeyAuthPolicy signs, in this order.
SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_DURATION = "P10675199DT2H48M5.4775807S"  # the service's "unlimited"
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_ERRORS_METADATA = "Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_KILL_GRACE_S = 2.0


class AllowHttpPolicy(SansIOHTTPPolicy):
    """Client side: let azure-core send bearer tokens to an ``http://`` loopback test server."""

    def on_request(self, request: Any) -> None:
        request.context["enforce_https"] = False


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class BatchError(Exception):
    """Answer the request with this status and Batch error code."""

    def __init__(self, status: int, code: str, message: str, values: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.values = status, code, message, values or {}


class TaskFailure(Exception):
    """The task completes with this ``failureInfo`` (raised before or instead of its command)."""

    def __init__(self, code: str, message: str, **details: str) -> None:
        super().__init__(message)
        self.info = {
            "category": "usererror",
            "code": code,
            "message": message,
            "details": [{"name": k, "value": v} for k, v in details.items()],
        }


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rfc1123(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


def parse_duration(value: str | None) -> float | None:
    """Seconds in an ISO 8601 duration as the SDK sends it (``PT2S``, ``P1DT02H00M00S``); None if absent."""
    if not value or value == _MAX_DURATION:
        return None
    match = _DURATION.match(value)
    if not match:
        raise BatchError(400, "InvalidPropertyValue", f"{value!r} is not an ISO 8601 duration")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def string_to_sign(method: str, raw_path: str, headers: dict[str, str], account: str) -> str:
    """The SharedKey string to sign for a received request (``headers`` keyed in lower case)."""
    parts = urlsplit(raw_path)
    present = {k: v for k, v in headers.items() if v}
    if method not in ("GET", "HEAD"):
        present.setdefault("content-length", "0")
    text = method + "\n" + "\n".join(present.get(h, "") for h in SIGNED_HEADERS) + "\n"
    for name, value in sorted((k, v) for k, v in present.items() if "ocp-" in k):
        text += f"{name}:{value}\n"
    text += f"/{account}{parts.path}"
    query = parse_qs(parts.query)
    for name in sorted(query):
        if query[name][0]:
            text += f"\n{name}:{query[name][0]}"
    return text


def sign(key: str, text: str) -> str:
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in _LOOPBACK:
        raise OSError(f"{host or url!r} is not reachable from this test server (only loopback URLs are)")


def _strip_sas(url: str) -> str:
    return url.split("?", 1)[0]


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    """A regex for a Batch output ``filePattern`` (relative path): ``**`` any folders, ``*`` ``?`` in a name."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


@dataclass
class _Pool:
    info: dict[str, Any]
    steady_at: float = 0.0
    gone_at: float | None = None
    nodes: list[str] = field(default_factory=list)


@dataclass
class _Task:
    job_id: str
    info: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    task_dir: Path | None = None
    pool_id: str | None = None
    end_reason: str | None = None  # "terminate" / "walltime" / "delete"


@dataclass
class _Job:
    info: dict[str, Any]
    tasks: dict[str, _Task] = field(default_factory=dict)
    gone_at: float | None = None
    completed_at: float | None = None


class BatchTestServer:
    """The server's state; :func:`running_batch_server` starts it on a free loopback port."""

    def __init__(
        self,
        account_name: str,
        account_key: str,
        token: str | None,
        root: Path,
        auto_storage_connection_string: str | None = None,
    ) -> None:
        self.account_name = account_name
        self.account_key = account_key
        self.token = token
        self.root = root
        self.auto_storage_connection_string = auto_storage_connection_string
        self.endpoint = ""
        self.run_delay = 0.0
        self.resize_delay = 0.0
        self.delete_delay = 0.0
        self.inject: list[int] = []
        self.requests: list[RecordedRequest] = []
        self.pools_created: Counter[str] = Counter()
        self.jobs_created: Counter[str] = Counter()
        self.tasks_created: Counter[str] = Counter()  # keyed "job/task"
        self.executions: Counter[str] = Counter()  # command lines started, keyed "job/task"
        self.uploads: list[str] = []
        self.downloads: list[str] = []
        self.pools: dict[str, _Pool] = {}
        self.jobs: dict[str, _Job] = {}
        self.lock = threading.RLock()
        self._etag = 0
        self._closing = threading.Event()

    # -- protocol entry point ----------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, Any]:
        """``(status, extra headers, payload)``; payload is JSON-able, bytes, or None."""
        path, query, parsed = parse_request(raw_path, body)
        injected = admit(self, RecordedRequest(method, path, query, dict(headers), parsed))
        try:
            if injected is not None:
                raise BatchError(injected, "InjectedFailure", f"injected HTTP {injected}")
            self._authenticate(method, raw_path, headers)
            if query.get("api-version") != [API_VERSION]:
                raise BatchError(
                    400,
                    "InvalidApiVersion",
                    f"The API version {query.get('api-version')} is invalid",
                    {"supported": API_VERSION},
                )
            if body and not isinstance(parsed, (dict, list)):
                raise BatchError(400, "InvalidRequestBody", "The request body is not valid JSON")
            with self.lock:
                self._advance()
                return self._route(method, path, query, headers, parsed)
        except BatchError as exc:
            return exc.status, {}, self._error_body(exc)
        except Exception as exc:  # a server bug: answer like the service's internal errors, keep serving
            return 500, {}, self._error_body(BatchError(500, "InternalServerError", f"{type(exc).__name__}: {exc}"))

    def _error_body(self, exc: BatchError) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "odata.metadata": f"{self.endpoint}/$metadata#{_ERRORS_METADATA}",
            "code": exc.code,
            "message": {"lang": "en-US", "value": f"{exc.message}\nRequestId:{uuid.uuid4()}\nTime:{_iso(_now())}"},
        }
        if exc.values:
            payload["values"] = [{"key": k, "value": v} for k, v in exc.values.items()]
        return payload

    def _authenticate(self, method: str, raw_path: str, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme == "SharedKey":
            account, _, signature = value.partition(":")
            text = string_to_sign(method, raw_path, headers, self.account_name)
            if account != self.account_name or not hmac.compare_digest(signature, sign(self.account_key, text)):
                raise BatchError(
                    403,
                    "AuthenticationFailed",
                    "Server failed to authenticate the request. Make sure the value of Authorization header is"
                    " correctly formed including the signature.",
                    {
                        "AuthenticationErrorDetail": f"The MAC signature found in the HTTP request '{signature}' is"
                        f" not the same as any computed signature. Server used following string to sign: '{text}'."
                    },
                )
            return
        if scheme == "Bearer" and value and (self.token is None or value == self.token):
            return
        raise BatchError(401, "AuthenticationFailed", "The Authorization header is missing, malformed or invalid.")

    # -- routing -------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict, headers: dict[str, str], body: Any) -> tuple[int, dict, Any]:
        segs = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        n = len(segs)
        if segs[:1] == ["pools"]:
            if n == 1 and method == "POST":
                return self._create_pool(body)
            if n == 1 and method == "GET":
                return self._list(path, "pools", [self._pool_view(p) for p in self.pools.values()], query)
            if n >= 2:
                pool = self._pool(segs[1])
                if n == 2 and method == "GET":
                    return 200, self._entity_headers(pool.info), self._select(self._pool_view(pool), query)
                if n == 2 and method == "HEAD":
                    return 200, self._entity_headers(pool.info), None
                if n == 2 and method == "DELETE":
                    return self._delete_pool(pool)
                if n == 3 and method == "POST" and segs[2] == "resize":
                    return self._resize_pool(pool, body or {})
                if n == 3 and method == "POST" and segs[2] == "stopresize":
                    if pool.info["allocationState"] == "resizing":  # keep the nodes it has now
                        pool.info["targetDedicatedNodes"] = pool.info["currentDedicatedNodes"]
                        pool.steady_at = 0.0
                    self._advance()
                    return 202, self._entity_headers(pool.info), None
                if n == 3 and method == "GET" and segs[2] == "nodes":
                    return self._list(path, "nodes", [self._node_view(pool, i) for i in pool.nodes], query)
                if n == 4 and method == "GET" and segs[2] == "nodes":
                    if segs[3] not in pool.nodes:
                        raise BatchError(404, "NodeNotFound", "The specified node does not exist.")
                    return 200, {}, self._select(self._node_view(pool, segs[3]), query)
        if segs[:1] == ["jobs"]:
            if n == 1 and method == "POST":
                return self._create_job(body)
            if n == 1 and method == "GET":
                return self._list(path, "jobs", [dict(j.info) for j in self.jobs.values()], query)
            if n >= 2:
                job = self._job(segs[1])
                if n == 2 and method == "GET":
                    return 200, self._entity_headers(job.info), self._select(dict(job.info), query)
                if n == 2 and method == "DELETE":
                    return self._delete_job(job)
                if n == 3 and method == "POST" and segs[2] == "terminate":
                    return self._terminate_job(job, body or {})
                if n == 3 and method == "GET" and segs[2] == "taskcounts":
                    return 200, {}, self._task_counts(job)
                if n == 3 and method == "POST" and segs[2] == "tasks":
                    task = self._create_task(job, body)
                    return 201, {**self._entity_headers(task.info), "DataServiceId": task.info["url"]}, None
                if n == 3 and method == "GET" and segs[2] == "tasks":
                    return self._list(path, "tasks", [self._task_view(t) for t in job.tasks.values()], query)
                if n == 3 and method == "POST" and segs[2] == "addtaskcollection":
                    return self._add_collection(job, body)
                if n >= 4 and segs[2] == "tasks":
                    task = job.tasks.get(segs[3])
                    if task is None:
                        raise BatchError(404, "TaskNotFound", "The specified task does not exist.")
                    if n == 4 and method == "GET":
                        return 200, self._entity_headers(task.info), self._select(self._task_view(task), query)
                    if n == 4 and method == "DELETE":
                        self._end_task(task, "delete")
                        del job.tasks[segs[3]]
                        return 200, {}, None
                    if n == 5 and method == "POST" and segs[4] == "terminate":
                        return self._terminate_task(task)
                    if n == 5 and method == "GET" and segs[4] == "files":
                        return self._list_files(task, query)
                    if n == 6 and segs[4] == "files":
                        return self._file(task, segs[5], method, headers, query)
        raise BatchError(404 if method in ("GET", "HEAD") else 400, "InvalidUri", f"{method} {path} is not supported")

    # -- time-driven state ------------------------------------------------------------------

    def _advance(self) -> None:
        """Move resizing pools to steady and finish deletes / terminations whose time has come."""
        now = time.monotonic()
        for pool_id, pool in list(self.pools.items()):
            info = pool.info
            if pool.gone_at is not None:
                if now >= pool.gone_at:
                    del self.pools[pool_id]
                continue
            if info["allocationState"] == "resizing" and now >= pool.steady_at:
                target = info["targetDedicatedNodes"]
                while len(pool.nodes) < target:
                    pool.nodes.append(f"tvmps_{uuid.uuid4().hex[:40]}_d")
                del pool.nodes[target:]
                info.update(
                    currentDedicatedNodes=target, allocationState="steady", allocationStateTransitionTime=_iso(_now())
                )
                self._touch(info)
        for job_id, job in list(self.jobs.items()):
            if job.gone_at is not None and now >= job.gone_at:
                del self.jobs[job_id]
            elif job.completed_at is not None and now >= job.completed_at and job.info["state"] == "terminating":
                self._set_state(job.info, "completed")
                job.info.setdefault("executionInfo", {})["endTime"] = _iso(_now())

    def _next_etag(self) -> str:
        self._etag += 1
        return f"0x8DC{self._etag:012X}"

    def _touch(self, info: dict[str, Any]) -> None:
        info["eTag"] = self._next_etag()
        info["lastModified"] = _iso(_now())

    def _set_state(self, info: dict[str, Any], state: str) -> None:
        now = _iso(_now())
        if info.get("state") != state:
            info["previousState"], info["previousStateTransitionTime"] = (
                info.get("state"),
                info.get("stateTransitionTime"),
            )
        info["state"], info["stateTransitionTime"] = state, now
        self._touch(info)

    @staticmethod
    def _entity_headers(info: dict[str, Any]) -> dict[str, str]:
        modified = datetime.strptime(info["lastModified"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        return {"ETag": info["eTag"], "Last-Modified": _rfc1123(modified)}

    def _select(self, view: dict[str, Any], query: dict) -> dict[str, Any]:
        if "$select" not in query:
            return view
        wanted = {s.strip() for s in query["$select"][0].split(",")}
        return {k: v for k, v in view.items() if k in wanted}

    def _list(self, path: str, kind: str, items: list[dict[str, Any]], query: dict) -> tuple[int, dict, Any]:
        if "$filter" in query:
            items = [i for i in items if self._matches(i, query["$filter"][0])]
        items = [self._select(i, query) for i in items]
        start = int(query.get("$skiptoken", ["0"])[0])
        size = int(query.get("maxresults", ["1000"])[0])
        page: dict[str, Any] = {
            "odata.metadata": f"{self.endpoint}/$metadata#{kind}",
            "value": items[start : start + size],
        }
        if start + size < len(items):
            page["odata.nextLink"] = (
                f"{self.endpoint}{path}?api-version={API_VERSION}&maxresults={size}&$skiptoken={start + size}"
            )
        return 200, {}, page

    @staticmethod
    def _matches(item: dict[str, Any], text: str) -> bool:
        for clause in re.split(r"\s+and\s+", text.strip()):
            match = re.fullmatch(r"\s*(\w+)\s+eq\s+'([^']*)'\s*", clause)
            if not match:
                raise BatchError(400, "InvalidQueryParameterValue", f"$filter {text!r} is not supported here")
            if str(item.get(match.group(1))) != match.group(2):
                return False
        return True

    # -- pools -------------------------------------------------------------------------------

    def _pool(self, pool_id: str) -> _Pool:
        pool = self.pools.get(pool_id)
        if pool is None:
            raise BatchError(404, "PoolNotFound", "The specified pool does not exist.")
        return pool

    def _create_pool(self, body: Any) -> tuple[int, dict, Any]:
        if not isinstance(body, dict):
            raise BatchError(400, "InvalidRequestBody", "The request body is missing")
        for name in ("id", "vmSize"):
            if not body.get(name):
                raise BatchError(400, "MissingRequiredProperty", f"{name} is required", {"PropertyName": name})
        if not _ID.match(body["id"]):
            raise BatchError(400, "InvalidPropertyValue", "The pool id is invalid", {"PropertyName": "id"})
        vmc = body.get("virtualMachineConfiguration")
        if not isinstance(vmc, dict) or not vmc.get("imageReference") or not vmc.get("nodeAgentSKUId"):
            raise BatchError(
                400,
                "MissingRequiredProperty",
                "virtualMachineConfiguration with imageReference and nodeAgentSKUId is required",
                {"PropertyName": "virtualMachineConfiguration"},
            )
        if body["id"] in self.pools:
            raise BatchError(409, "PoolExists", "The specified pool already exists.")
        if body.get("enableAutoScale"):
            raise BatchError(400, "FeatureNotSupported", "autoscale is not supported by this test server")
        now = _iso(_now())
        info = {
            "id": body["id"],
            "url": f"{self.endpoint}/pools/{quote(body['id'], safe='')}",
            "creationTime": now,
            "state": "active",
            "stateTransitionTime": now,
            "allocationState": "resizing",
            "allocationStateTransitionTime": now,
            "vmSize": body["vmSize"],
            "virtualMachineConfiguration": vmc,
            "resizeTimeout": body.get("resizeTimeout", "PT15M"),
            "currentDedicatedNodes": 0,
            "currentLowPriorityNodes": 0,
            "targetDedicatedNodes": int(body.get("targetDedicatedNodes") or 0),
            "targetLowPriorityNodes": int(body.get("targetLowPriorityNodes") or 0),
            "enableAutoScale": False,
            "enableInterNodeCommunication": bool(body.get("enableInterNodeCommunication", False)),
            "taskSlotsPerNode": int(body.get("taskSlotsPerNode") or 1),
            "taskSchedulingPolicy": body.get("taskSchedulingPolicy") or {"nodeFillType": "Spread"},
        }
        for optional in (
            "displayName",
            "startTask",
            "metadata",
            "networkConfiguration",
            "userAccounts",
            "applicationPackageReferences",
            "mountConfiguration",
        ):
            if optional in body:
                info[optional] = body[optional]
        self._touch(info)
        pool = _Pool(info, steady_at=time.monotonic() + self.resize_delay)
        self.pools[body["id"]] = pool
        self.pools_created[body["id"]] += 1
        self._advance()
        return 201, {**self._entity_headers(info), "DataServiceId": info["url"]}, None

    def _pool_view(self, pool: _Pool) -> dict[str, Any]:
        return dict(pool.info)

    def _delete_pool(self, pool: _Pool) -> tuple[int, dict, Any]:
        if pool.gone_at is not None:
            raise BatchError(409, "PoolBeingDeleted", "The specified pool has been marked for deletion.")
        self._set_state(pool.info, "deleting")
        pool.info["allocationState"] = "resizing"
        pool.gone_at = time.monotonic() + self.delete_delay
        self._advance()
        return 202, {}, None

    def _resize_pool(self, pool: _Pool, body: dict[str, Any]) -> tuple[int, dict, Any]:
        if pool.gone_at is not None:
            raise BatchError(409, "PoolBeingDeleted", "The specified pool has been marked for deletion.")
        if pool.info["allocationState"] != "steady":
            raise BatchError(409, "PoolNotSteady", "The specified pool is not in a steady state.")
        pool.info["targetDedicatedNodes"] = int(body.get("targetDedicatedNodes") or 0)
        pool.info["targetLowPriorityNodes"] = int(body.get("targetLowPriorityNodes") or 0)
        pool.info.update(allocationState="resizing", allocationStateTransitionTime=_iso(_now()))
        self._touch(pool.info)
        pool.steady_at = time.monotonic() + self.resize_delay
        self._advance()
        return 202, self._entity_headers(pool.info), None

    def _node_view(self, pool: _Pool, node_id: str) -> dict[str, Any]:
        running = [
            t
            for j in self.jobs.values()
            for t in j.tasks.values()
            if t.info.get("nodeInfo", {}).get("nodeId") == node_id and t.info["state"] == "running"
        ]
        return {
            "id": node_id,
            "url": f"{pool.info['url']}/nodes/{node_id}",
            "state": "running" if running else "idle",
            "schedulingState": "enabled",
            "stateTransitionTime": pool.info["allocationStateTransitionTime"],
            "allocationTime": pool.info["allocationStateTransitionTime"],
            "ipAddress": "127.0.0.1",
            "vmSize": pool.info["vmSize"],
            "isDedicated": True,
            "runningTasksCount": len(running),
            "runningTaskSlotsCount": len(running),
            "nodeAgentInfo": {"version": "1.0.0-test", "lastUpdateTime": pool.info["creationTime"]},
        }

    # -- jobs --------------------------------------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise BatchError(404, "JobNotFound", "The specified job does not exist.")
        return job

    def _create_job(self, body: Any) -> tuple[int, dict, Any]:
        if not isinstance(body, dict) or not body.get("id"):
            raise BatchError(400, "MissingRequiredProperty", "id is required", {"PropertyName": "id"})
        if not _ID.match(body["id"]):
            raise BatchError(400, "InvalidPropertyValue", "The job id is invalid", {"PropertyName": "id"})
        pool_info = body.get("poolInfo")
        if not isinstance(pool_info, dict) or not pool_info.get("poolId"):
            # A pool that does not exist yet is accepted: its tasks wait for it (as the service documents).
            raise BatchError(
                400,
                "MissingRequiredProperty",
                "poolInfo.poolId is required (auto pools are not supported by this test server)",
                {"PropertyName": "poolInfo"},
            )
        if body["id"] in self.jobs:
            raise BatchError(409, "JobExists", "The specified job already exists.")
        now = _iso(_now())
        info = {
            "id": body["id"],
            "url": f"{self.endpoint}/jobs/{quote(body['id'], safe='')}",
            "creationTime": now,
            "state": "active",
            "stateTransitionTime": now,
            "priority": int(body.get("priority") or 0),
            "maxParallelTasks": int(body.get("maxParallelTasks", -1)),
            "usesTaskDependencies": bool(body.get("usesTaskDependencies", False)),
            "constraints": body.get("constraints") or {"maxWallClockTime": _MAX_DURATION, "maxTaskRetryCount": 0},
            "poolInfo": pool_info,
            "onAllTasksComplete": body.get("onAllTasksComplete", "noaction"),
            "onTaskFailure": body.get("onTaskFailure", "noaction"),
            "executionInfo": {"startTime": now, "poolId": pool_info["poolId"]},
        }
        for optional in (
            "displayName",
            "commonEnvironmentSettings",
            "metadata",
            "jobManagerTask",
            "jobPreparationTask",
            "jobReleaseTask",
        ):
            if optional in body:
                info[optional] = body[optional]
        self._touch(info)
        self.jobs[body["id"]] = _Job(info)
        self.jobs_created[body["id"]] += 1
        return 201, {**self._entity_headers(info), "DataServiceId": info["url"]}, None

    def _delete_job(self, job: _Job) -> tuple[int, dict, Any]:
        if job.gone_at is None:
            self._set_state(job.info, "deleting")
            job.gone_at = time.monotonic() + self.delete_delay
            for task in job.tasks.values():
                self._end_task(task, "delete")
            self._advance()
        return 202, {}, None

    def _terminate_job(self, job: _Job, body: dict[str, Any]) -> tuple[int, dict, Any]:
        if job.info["state"] in ("completed", "terminating"):
            raise BatchError(409, "JobCompleted", "The specified job is already in a completed state.")
        if job.info["state"] == "deleting":
            raise BatchError(409, "JobBeingDeleted", "The specified job has been marked for deletion.")
        self._set_state(job.info, "terminating")
        job.info["executionInfo"]["terminateReason"] = body.get("terminateReason") or "UserTerminate"
        for task in job.tasks.values():
            if task.info["state"] == "running":
                self._end_task(task, "terminate")
        job.completed_at = time.monotonic() + self.delete_delay
        self._advance()
        return 202, self._entity_headers(job.info), None

    def _task_counts(self, job: _Job) -> dict[str, Any]:
        states = [t.info for t in job.tasks.values()]
        counts = {
            "active": sum(s["state"] == "active" for s in states),
            "running": sum(s["state"] in ("running", "preparing") for s in states),
            "completed": sum(s["state"] == "completed" for s in states),
            "succeeded": sum(s.get("executionInfo", {}).get("result") == "success" for s in states),
            "failed": sum(s.get("executionInfo", {}).get("result") == "failure" for s in states),
        }
        return {"taskCounts": counts, "taskSlotCounts": dict(counts)}

    # -- tasks -------------------------------------------------------------------------------

    def _validate_task(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise BatchError(400, "InvalidRequestBody", "The request body is missing")
        for name in ("id", "commandLine"):
            if not body.get(name):
                raise BatchError(400, "MissingRequiredProperty", f"{name} is required", {"PropertyName": name})
        if not _ID.match(body["id"]):
            raise BatchError(400, "InvalidPropertyValue", "The task id is invalid", {"PropertyName": "id"})
        for rf in body.get("resourceFiles") or []:
            sources = [k for k in ("httpUrl", "storageContainerUrl", "autoStorageContainerName") if rf.get(k)]
            if len(sources) != 1:
                raise BatchError(
                    400,
                    "InvalidPropertyValue",
                    "exactly one of httpUrl, storageContainerUrl and autoStorageContainerName must be given",
                    {"PropertyName": "resourceFiles"},
                )
            if rf.get("httpUrl") and not rf.get("filePath"):
                raise BatchError(
                    400, "MissingRequiredProperty", "filePath is required with httpUrl", {"PropertyName": "filePath"}
                )
            if ".." in Path(rf.get("filePath") or ".").parts or (rf.get("filePath") or "").startswith("/"):
                raise BatchError(
                    400,
                    "InvalidPropertyValue",
                    "filePath must stay inside the working directory",
                    {"PropertyName": "filePath"},
                )
        for of in body.get("outputFiles") or []:
            if not of.get("filePattern") or not (of.get("destination") or {}).get("container", {}).get("containerUrl"):
                raise BatchError(
                    400,
                    "MissingRequiredProperty",
                    "outputFiles need filePattern and destination.container.containerUrl",
                    {"PropertyName": "outputFiles"},
                )
        parse_duration((body.get("constraints") or {}).get("maxWallClockTime"))

    def _create_task(self, job: _Job, body: Any) -> _Task:
        self._validate_task(body)
        if job.info["state"] in ("completed", "terminating"):
            raise BatchError(409, "JobCompleted", "The specified job is already in a completed state.")
        if job.info["state"] == "deleting":
            raise BatchError(409, "JobBeingDeleted", "The specified job has been marked for deletion.")
        if body["id"] in job.tasks:
            raise BatchError(409, "TaskExists", "The specified task already exists.")
        now = _iso(_now())
        constraints = {"maxWallClockTime": _MAX_DURATION, "retentionTime": "P7D", "maxTaskRetryCount": 0}
        constraints.update(body.get("constraints") or {})
        info = {
            "id": body["id"],
            "url": f"{job.info['url']}/tasks/{quote(body['id'], safe='')}",
            "creationTime": now,
            "state": "active",
            "stateTransitionTime": now,
            "commandLine": body["commandLine"],
            "constraints": constraints,
            "requiredSlots": int(body.get("requiredSlots") or 1),
            "userIdentity": body.get("userIdentity") or {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
            "executionInfo": {"retryCount": 0, "requeueCount": 0},
        }
        for optional in (
            "displayName",
            "resourceFiles",
            "outputFiles",
            "environmentSettings",
            "exitConditions",
            "affinityInfo",
            "containerSettings",
            "multiInstanceSettings",
            "dependsOn",
            "applicationPackageReferences",
        ):
            if optional in body:
                info[optional] = body[optional]
        self._touch(info)
        task = _Task(job.info["id"], info)
        job.tasks[body["id"]] = task
        self.tasks_created[f"{job.info['id']}/{body['id']}"] += 1
        task.thread = threading.Thread(target=self._run, args=(task,), daemon=True, name=f"batch-task-{body['id']}")
        task.thread.start()
        return task

    def _add_collection(self, job: _Job, body: Any) -> tuple[int, dict, Any]:
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list) or not values or len(values) > 100:
            raise BatchError(400, "InvalidPropertyValue", "value must hold 1 to 100 tasks", {"PropertyName": "value"})
        results = []
        for item in values:
            task_id = item.get("id") if isinstance(item, dict) else None
            try:
                task = self._create_task(job, item)
            except BatchError as exc:
                if exc.code in ("JobCompleted", "JobBeingDeleted"):
                    raise
                error = {"code": exc.code, "message": {"lang": "en-US", "value": exc.message}}
                results.append({"status": "clienterror", "taskId": task_id, "error": error})
                continue
            results.append(
                {
                    "status": "success",
                    "taskId": task.info["id"],
                    "eTag": task.info["eTag"],
                    "lastModified": task.info["lastModified"],
                    "location": task.info["url"],
                }
            )
        return 200, {}, {"odata.metadata": f"{self.endpoint}/$metadata#taskaddresult", "value": results}

    def _task_view(self, task: _Task) -> dict[str, Any]:
        return json.loads(json.dumps(task.info))

    def _terminate_task(self, task: _Task) -> tuple[int, dict, Any]:
        if task.info["state"] == "completed":
            raise BatchError(409, "TaskCompleted", "The specified task is already completed.")
        self._end_task(task, "terminate")
        return 204, self._entity_headers(task.info), None

    def _end_task(self, task: _Task, reason: str) -> None:
        """Stop a task: kill its process (the runner thread then completes it), or complete it if not started."""
        if task.info["state"] == "completed" or task.cancel.is_set():
            return
        task.end_reason = reason
        task.cancel.set()
        if task.proc is not None:
            _kill_group(task.proc, wait=False)
        elif task.info["state"] == "active" and reason == "terminate":
            self._complete(task, None, TaskFailure("TaskEnded", "Task Was Ended by User Request"))

    # -- running a task ------------------------------------------------------------------------

    def _acquire_slot(self, task: _Task) -> tuple[_Pool, str] | None:
        """Wait for the job's pool to be steady with a free slot; the (pool, node) the task runs on."""
        while not task.cancel.is_set() and not self._closing.is_set():
            with self.lock:
                self._advance()
                job = self.jobs.get(task.job_id)
                if job is None or job.info["state"] != "active":
                    if job is None or job.info["state"] == "deleting":
                        return None
                else:
                    pool = self.pools.get(job.info["poolInfo"]["poolId"])
                    if pool is not None and pool.gone_at is None and pool.info["allocationState"] == "steady":
                        node = self._free_node(pool, task.info["requiredSlots"])
                        if node is not None:
                            task.pool_id = pool.info["id"]
                            self._prepare_task_dir(task, node)  # the logs exist once the task runs
                            root = f"workitems/{task.job_id}/job-1/{task.info['id']}"
                            task.info["nodeInfo"] = {
                                "affinityId": f"TVM:{node}",
                                "nodeUrl": f"{pool.info['url']}/nodes/{node}",
                                "poolId": pool.info["id"],
                                "nodeId": node,
                                "taskRootDirectory": root,
                                "taskRootDirectoryUrl": f"{pool.info['url']}/nodes/{node}/files/{root}",
                            }
                            task.info["executionInfo"]["startTime"] = _iso(_now())
                            self._set_state(task.info, "running")
                            return pool, node
            task.cancel.wait(0.02)
        return None

    def _prepare_task_dir(self, task: _Task, node: str) -> None:
        node_root = self.root / "nodes" / node
        task_dir = node_root / "workitems" / task.job_id / "job-1" / task.info["id"]
        shutil.rmtree(task_dir, ignore_errors=True)  # left by a deleted task or job of the same id
        for folder in (
            task_dir / "wd",
            task_dir / "certs",
            *(node_root / d for d in ("shared", "startup", "fsmounts")),
        ):
            folder.mkdir(parents=True, exist_ok=True)
        (task_dir / "stdout.txt").touch()
        (task_dir / "stderr.txt").touch()
        task.task_dir = task_dir

    def _free_node(self, pool: _Pool, slots: int) -> str | None:
        per_node = pool.info["taskSlotsPerNode"]
        used: Counter[str] = Counter()
        for job in self.jobs.values():
            for other in job.tasks.values():
                if other.info["state"] == "running" and other.pool_id == pool.info["id"]:
                    used[other.info["nodeInfo"]["nodeId"]] += other.info["requiredSlots"]
        free = [n for n in pool.nodes if used[n] + slots <= per_node]
        return min(free, key=lambda n: used[n]) if free else None

    def _run(self, task: _Task) -> None:
        placed = self._acquire_slot(task)
        if placed is None:
            return
        pool, node = placed
        job_id, task_id = task.job_id, task.info["id"]
        node_root = self.root / "nodes" / node
        task_dir = node_root / "workitems" / job_id / "job-1" / task_id
        wd = task_dir / "wd"
        with self.lock:
            job = self.jobs.get(job_id)
            common_env = list((job.info.get("commonEnvironmentSettings") if job else None) or [])
        exit_code: int | None = None
        try:
            self._download_resources(task, wd)
            if self.run_delay and not task.cancel.is_set():
                task.cancel.wait(self.run_delay)
            if task.cancel.is_set():
                raise self._ended(task)
            env = self._environment(pool, node, node_root, task_dir, job_id, task_id, common_env, task.info)
            exit_code = self._execute(task, task_dir, wd, env)
            failure = self._ended(task) if task.end_reason else None
            if failure is None and exit_code != 0:
                failure = TaskFailure(
                    "FailureExitCode",
                    "The task process exited with an unexpected exit code",
                    Message="The task process exited with an unexpected exit code",
                )
            upload_failure = self._upload_outputs(task, task_dir, wd, succeeded=failure is None)
            self._complete(task, exit_code, failure or upload_failure)
        except TaskFailure as failure:
            self._complete(task, exit_code, failure)
        except Exception as exc:  # a bug or an unexpected node-side error: report, never hang the task
            self._complete(
                task, exit_code, TaskFailure("UnknownError", f"{type(exc).__name__}: {exc}"), category="servererror"
            )

    @staticmethod
    def _ended(task: _Task) -> TaskFailure:
        if task.end_reason == "walltime":
            return TaskFailure(
                "TaskEnded",
                "The task exceeded its maximum wall clock time and was ended",
                Message="MaxWallClockTimeExceeded",
            )
        return TaskFailure("TaskEnded", "Task Was Ended by User Request")

    def _complete(
        self, task: _Task, exit_code: int | None, failure: TaskFailure | None, category: str = "usererror"
    ) -> None:
        with self.lock:
            if task.info["state"] == "completed":
                return
            execution = task.info["executionInfo"]
            execution["endTime"] = _iso(_now())
            if exit_code is not None:
                execution["exitCode"] = exit_code
            execution["result"] = "failure" if failure else "success"
            if failure:
                execution["failureInfo"] = {**failure.info, "category": category}
            self._set_state(task.info, "completed")

    def _environment(
        self,
        pool: _Pool,
        node: str,
        node_root: Path,
        task_dir: Path,
        job_id: str,
        task_id: str,
        common: list[dict[str, str]],
        info: dict[str, Any],
    ) -> dict[str, str]:
        env = {
            "PATH": _PATH,
            "HOME": str(task_dir / "wd"),
            "LANG": "C.UTF-8",
            "AZ_BATCH_ACCOUNT_NAME": self.account_name,
            "AZ_BATCH_ACCOUNT_URL": self.endpoint,
            "AZ_BATCH_POOL_ID": pool.info["id"],
            "AZ_BATCH_NODE_ID": node,
            "AZ_BATCH_NODE_IS_DEDICATED": "true",
            "AZ_BATCH_JOB_ID": job_id,
            "AZ_BATCH_TASK_ID": task_id,
            "AZ_BATCH_NODE_ROOT_DIR": str(node_root),
            "AZ_BATCH_NODE_SHARED_DIR": str(node_root / "shared"),
            "AZ_BATCH_NODE_STARTUP_DIR": str(node_root / "startup"),
            "AZ_BATCH_NODE_MOUNTS_DIR": str(node_root / "fsmounts"),
            "AZ_BATCH_TASK_DIR": str(task_dir),
            "AZ_BATCH_TASK_WORKING_DIR": str(task_dir / "wd"),
            "AZ_BATCH_CERTIFICATES_DIR": str(task_dir / "certs"),
            "AZ_BATCH_TASK_USER": "_azbatch",
            "AZ_BATCH_TASK_USER_IDENTITY": "PoolNonAdmin",
        }
        for setting in [*common, *(info.get("environmentSettings") or [])]:
            env[setting["name"]] = setting.get("value") or ""
        return env

    def _execute(self, task: _Task, task_dir: Path, wd: Path, env: dict[str, str]) -> int:
        try:
            argv = shlex.split(task.info["commandLine"])
        except ValueError as exc:
            raise TaskFailure("CommandLaunchFailed", f"The command line could not be parsed: {exc}") from None
        if not argv:
            raise TaskFailure("CommandLaunchFailed", "The command line is empty")
        program = argv[0]
        if "/" in program:
            resolved = program if program.startswith("/") else str(wd / program)
        else:
            resolved = shutil.which(program, path=env["PATH"]) or ""
        if not resolved or not os.path.exists(resolved):
            raise TaskFailure(
                "CommandProgramNotFound",
                f"The program {program!r} was not found",
                Message=f"The program {program!r} specified in the command line was not found",
            )
        with self.lock:
            self.executions[f"{task.job_id}/{task.info['id']}"] += 1
        with open(task_dir / "stdout.txt", "ab") as out, open(task_dir / "stderr.txt", "ab") as err:
            try:
                proc = subprocess.Popen(
                    [resolved, *argv[1:]],
                    cwd=wd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as exc:
                raise TaskFailure("CommandLaunchFailed", f"The command could not be started: {exc}") from None
            with self.lock:
                task.proc = proc
                cancelled = task.cancel.is_set()
            if cancelled:
                _kill_group(proc, wait=False)
            limit = parse_duration(task.info["constraints"].get("maxWallClockTime"))
            started = time.monotonic()
            while proc.poll() is None:
                if limit is not None and time.monotonic() - started > limit and not task.cancel.is_set():
                    task.end_reason = "walltime"
                    task.cancel.set()
                    _kill_group(proc, wait=False)
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
        code = proc.returncode
        return 128 - code if code < 0 else code

    # -- storage -------------------------------------------------------------------------------

    def _download_resources(self, task: _Task, wd: Path) -> None:
        for rf in task.info.get("resourceFiles") or []:
            if task.cancel.is_set():
                return
            target = wd / (rf.get("filePath") or "")
            written: list[Path] = []
            if rf.get("httpUrl"):
                written.append(self._download_url(rf["httpUrl"], target))
            else:
                container = self._container_for(rf)
                prefix = rf.get("blobPrefix") or None
                try:
                    names = [b.name for b in container.list_blobs(name_starts_with=prefix)]
                except HttpResponseError as exc:
                    code = (
                        "ResourceContainerAccessDenied"
                        if exc.status_code in (401, 403)
                        else ("ResourceContainerListMiscError")
                    )
                    raise TaskFailure(
                        code,
                        f"Could not list the resource container: {exc.reason}",
                        ContainerUrl=_strip_sas(container.url),
                    ) from None
                except OSError as exc:
                    raise TaskFailure(
                        "ResourceContainerListMiscError", str(exc), ContainerUrl=_strip_sas(container.url)
                    ) from None
                for name in names:
                    dest = target / name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        dest.write_bytes(container.download_blob(name).readall())
                    except HttpResponseError as exc:
                        raise TaskFailure(
                            "BlobDownloadMiscError",
                            f"Could not download {name}: {exc.reason}",
                            FilePath=str(dest.relative_to(wd)),
                        ) from None
                    with self.lock:
                        self.downloads.append(f"{_strip_sas(container.url)}/{name}")
                    written.append(dest)
            mode = int(rf["fileMode"], 8) if rf.get("fileMode") else 0o770
            for path in written:
                path.chmod(mode)

    def _download_url(self, url: str, dest: Path) -> Path:
        try:
            _require_loopback(url)
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
        except urllib.error.HTTPError as exc:
            code = {404: "BlobNotFound", 403: "BlobAccessDenied", 401: "BlobAccessDenied"}.get(
                exc.code, "BlobDownloadMiscError"
            )
            raise TaskFailure(
                code,
                f"Could not download a resource file: HTTP {exc.code} {exc.reason}",
                FilePath=dest.name,
                ResourceFileUrl=_strip_sas(url),
            ) from None
        except OSError as exc:
            raise TaskFailure(
                "BlobDownloadMiscError",
                f"Could not download a resource file: {exc}",
                FilePath=dest.name,
                ResourceFileUrl=_strip_sas(url),
            ) from None
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        with self.lock:
            self.downloads.append(_strip_sas(url))
        return dest

    def _container_for(self, rf: dict[str, Any]) -> ContainerClient:
        if rf.get("autoStorageContainerName"):
            if not self.auto_storage_connection_string:
                raise TaskFailure("ResourceContainerListMiscError", "This account has no auto-storage account")
            service = BlobServiceClient.from_connection_string(self.auto_storage_connection_string)
            _require_loopback(service.url)
            return service.get_container_client(rf["autoStorageContainerName"])
        try:
            _require_loopback(rf["storageContainerUrl"])
        except OSError as exc:
            raise TaskFailure("ResourceContainerListMiscError", str(exc)) from None
        return ContainerClient.from_container_url(rf["storageContainerUrl"])

    def _upload_outputs(self, task: _Task, task_dir: Path, wd: Path, succeeded: bool) -> TaskFailure | None:
        outputs = task.info.get("outputFiles") or []
        if not outputs:
            return None
        log_out = open(task_dir / "fileuploadout.txt", "a")  # noqa: SIM115 - closed below
        log_err = open(task_dir / "fileuploaderr.txt", "a")  # noqa: SIM115
        try:
            for spec in outputs:
                condition = ((spec.get("uploadOptions") or {}).get("uploadCondition") or "taskcompletion").lower()
                if (condition == "tasksuccess" and not succeeded) or (condition == "taskfailure" and succeeded):
                    continue
                destination = spec["destination"]["container"]
                try:
                    _require_loopback(destination["containerUrl"])
                    container = ContainerClient.from_container_url(destination["containerUrl"])
                    for local, blob_name in self._matches_for(spec["filePattern"], wd, destination.get("path")):
                        with open(local, "rb") as handle:
                            container.upload_blob(blob_name, handle, overwrite=True)
                        url = f"{_strip_sas(destination['containerUrl'])}/{blob_name}"
                        log_out.write(f"{_iso(_now())} Uploaded {local} to {url}\n")
                        with self.lock:
                            self.uploads.append(url)
                except HttpResponseError as exc:
                    log_err.write(f"{_iso(_now())} {exc.status_code} {exc.reason}: {exc}\n")
                    code = "FileUploadContainerNotFound" if exc.status_code == 404 else "FileUploadMiscError"
                    return TaskFailure(
                        code, f"An error occurred uploading output files: {exc.reason}", FilePattern=spec["filePattern"]
                    )
                except OSError as exc:
                    log_err.write(f"{_iso(_now())} {exc}\n")
                    return TaskFailure(
                        "FileUploadMiscError",
                        f"An error occurred uploading output files: {exc}",
                        FilePattern=spec["filePattern"],
                    )
        finally:
            log_out.close()
            log_err.close()
        return None

    @staticmethod
    def _matches_for(pattern: str, wd: Path, path: str | None) -> Iterator[tuple[Path, str]]:
        """``(local file, blob name)`` for every file ``pattern`` (relative to ``wd``) matches."""
        full = pattern if pattern.startswith("/") else os.path.normpath(str(wd / pattern))
        if not any(c in full for c in "*?"):
            local = Path(full)
            if local.is_file():
                yield local, path or local.name
            return
        parts = full.split("/")
        fixed = next(i for i, p in enumerate(parts) if any(c in p for c in "*?"))
        base = Path("/".join(parts[:fixed]) or "/")
        regex = _compile_pattern("/".join(parts[fixed:]))
        if not base.is_dir():
            return
        for local in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = local.relative_to(base).as_posix()
            if regex.match(rel):
                yield local, f"{path.rstrip('/')}/{rel}" if path else rel

    # -- task files --------------------------------------------------------------------------

    def _task_root(self, task: _Task) -> Path:
        if task.task_dir is None or not task.task_dir.exists():
            raise BatchError(
                409,
                "TaskNotStarted" if task.info["state"] == "active" else "TaskFilesUnavailable",
                "The files of the specified task are not available (it has not run on a node).",
            )
        return task.task_dir

    def _file_entry(self, task: _Task, path: Path, rel: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": rel,
            "url": f"{task.info['url']}/files/{quote(rel, safe='')}",
            "isDirectory": path.is_dir(),
        }
        if not path.is_dir():
            stat = path.stat()
            entry["properties"] = {
                "creationTime": _iso(datetime.fromtimestamp(stat.st_ctime, timezone.utc)),
                "lastModified": _iso(datetime.fromtimestamp(stat.st_mtime, timezone.utc)),
                "contentLength": str(stat.st_size),
                "contentType": "application/octet-stream",
                "fileMode": oct(stat.st_mode),
            }
        return entry

    def _list_files(self, task: _Task, query: dict) -> tuple[int, dict, Any]:
        root = self._task_root(task)
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        paths = sorted(root.rglob("*") if recursive else root.iterdir())
        entries = [self._file_entry(task, p, p.relative_to(root).as_posix()) for p in paths]
        if "$filter" in query:
            match = re.fullmatch(r"\s*startswith\(name,\s*'([^']*)'\)\s*", query["$filter"][0])
            if not match:
                raise BatchError(400, "InvalidQueryParameterValue", "only startswith(name, '...') is supported")
            entries = [e for e in entries if e["name"].startswith(match.group(1))]
        return 200, {}, {"odata.metadata": f"{self.endpoint}/$metadata#files", "value": entries}

    def _file(self, task: _Task, rel: str, method: str, headers: dict[str, str], query: dict) -> tuple[int, dict, Any]:
        root = self._task_root(task)
        path = (root / rel).resolve()
        if not path.is_relative_to(root.resolve()) or not path.exists():
            raise BatchError(404, "FileNotFound", "The specified file does not exist.")
        if method == "DELETE":
            if path.is_dir():
                if any(path.iterdir()) and query.get("recursive", ["false"])[0].lower() != "true":
                    raise BatchError(409, "DirectoryNotEmpty", "The directory is not empty; use recursive=true.")
                shutil.rmtree(path)
            else:
                path.unlink()
            return 200, {}, None
        if method not in ("GET", "HEAD"):
            raise BatchError(400, "InvalidUri", f"{method} is not supported on a file")
        stat = path.stat()
        meta = {
            "ocp-creation-time": _rfc1123(datetime.fromtimestamp(stat.st_ctime, timezone.utc)),
            "ocp-batch-file-isdirectory": str(path.is_dir()),
            "ocp-batch-file-url": quote(f"{task.info['url']}/files/{rel}", safe=":/"),
            "ocp-batch-file-mode": oct(stat.st_mode),
            "Last-Modified": _rfc1123(datetime.fromtimestamp(stat.st_mtime, timezone.utc)),
            "Content-Type": "application/octet-stream",
        }
        if method == "HEAD":
            return 200, {**meta, "Content-Length": str(0 if path.is_dir() else stat.st_size)}, None
        if path.is_dir():
            raise BatchError(400, "FileIsDirectory", "The specified path is a directory; list it instead.")
        data = path.read_bytes()
        wanted = headers.get("ocp-range")
        if wanted:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if not match:
                raise BatchError(400, "InvalidHeaderValue", f"ocp-range {wanted!r} is invalid")
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data) or end < start:
                raise BatchError(
                    416, "InvalidRange", "The range specified is invalid for the current size of the file."
                )
            data = data[start : end + 1]
        return 200, meta, data

    # -- lifecycle ----------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for every task thread to finish (so a test leaves nothing running)."""
        deadline = time.monotonic() + timeout
        for job in list(self.jobs.values()):
            for task in list(job.tasks.values()):
                if task.thread is not None:
                    task.thread.join(max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        self._closing.set()
        with self.lock:
            tasks = [t for j in self.jobs.values() for t in j.tasks.values()]
        for task in tasks:
            task.cancel.set()
            if task.proc is not None:
                _kill_group(task.proc, wait=True)
        self.wait_idle(10)

    def task(self, job_id: str, task_id: str) -> dict[str, Any]:
        """A copy of a task's current JSON (for assertions)."""
        with self.lock:
            return self._task_view(self.jobs[job_id].tasks[task_id])


def _kill_group(proc: subprocess.Popen[bytes], wait: bool) -> None:
    """SIGTERM the task's process group, then SIGKILL it after a short grace (in the background unless ``wait``)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return

    def finish() -> None:
        try:
            proc.wait(timeout=_KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    if wait:
        finish()
    else:
        threading.Thread(target=finish, daemon=True).start()


def _handler(state: BatchTestServer) -> type[ServiceHandler]:
    class Handler(ServiceHandler):
        json_type = JSON_TYPE

        def service_headers(self, request: dict[str, str]) -> list[tuple[str, str]]:
            echo = [("client-request-id", request["client-request-id"])] if request.get("client-request-id") else []
            return [("request-id", str(uuid.uuid4())), *echo, ("DataServiceVersion", "3.0")]

        def _serve(self) -> None:
            self.dispatch(state.handle)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve

    return Handler


@contextmanager
def running_batch_server(
    account_name: str = "amlpipetest",
    account_key: str = DEFAULT_ACCOUNT_KEY,
    token: str | None = None,
    auto_storage_connection_string: str | None = None,
) -> Iterator[BatchTestServer]:
    """Serve the protocol on ``127.0.0.1`` at a free port; ``state.endpoint`` is its http URL.

    ``account_key`` is the base64 shared key; ``token`` (if given) is the only bearer token accepted
    (else any non-empty one is). At exit the server stops, every task process is killed, and the
    nodes' folders are removed.
    """
    root = Path(tempfile.mkdtemp(prefix="batch-server-"))
    state = BatchTestServer(account_name, account_key, token, root, auto_storage_connection_string)
    with hosting(state, _handler(state), root):
        yield state


def ubuntu_pool_options(pool_id: str, nodes: int = 1, **kwargs: Any) -> Any:
    """``BatchPoolCreateOptions`` of an Ubuntu pool of ``nodes`` dedicated nodes, as the tests create it."""
    from azure.batch import models as bm

    image = bm.BatchVmImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts")
    return bm.BatchPoolCreateOptions(
        id=pool_id,
        vm_size="standard_d2s_v3",
        virtual_machine_configuration=bm.VirtualMachineConfiguration(
            image_reference=image, node_agent_sku_id="batch.node.ubuntu 22.04"
        ),
        target_dedicated_nodes=nodes,
        **kwargs,
    )


def create_pool(state: BatchTestServer, pool_id: str, nodes: int) -> None:
    """Create ``ubuntu_pool_options(pool_id, nodes)`` on the running server through the real SDK client."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(state.endpoint, AzureNamedKeyCredential(state.account_name, state.account_key))
    try:
        client.create_pool(ubuntu_pool_options(pool_id, nodes))
    finally:
        client.close()
