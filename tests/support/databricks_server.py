"""A local server speaking the Databricks REST APIs a Databricks step uses, as ``databricks-sdk`` 0.167 sends them.

The server keeps a workspace tree, a DBFS root and Unity Catalog volumes as folders under a temporary directory,
and **really runs every submitted run** through the repo's local backend
(:class:`airflow_provider_amlpipe.databricks.local_runner.LocalRunner`: a notebook or a Python script in a
child interpreter with PySpark in local mode, a jar with PySpark's ``spark-submit``), one worker thread per run.

Implemented:

* Auth: ``Authorization: Bearer <PAT>``; the configured ``token`` (any non-empty one when ``token`` is None).
  No header → ``401 {"error_code": "UNAUTHENTICATED", ...}``; another token → ``403 {"error_code": 403,
  "message": "Invalid access token."}`` (numeric, as the service sends it; the SDK raises ``PermissionDenied``).
  Every other error is Databricks' JSON ``{"error_code", "message"}``, which the SDK maps to its exception
  classes (``NotFound``, ``ResourceAlreadyExists``, ``InvalidParameterValue``, ...).
* Host metadata ``/.well-known/databricks-config`` (unauthenticated; ``workspace_id``, ``cloud`` azure), which
  the SDK reads when a client is built.
* Jobs API 2.2 (and the same paths under 2.1): ``runs/submit`` (``tasks`` with exactly one of
  ``notebook_task`` {``notebook_path``, ``base_parameters``, ``source`` WORKSPACE}, ``spark_python_task``
  {``python_file``: ``dbfs:/``, ``/Volumes/``, ``/Workspace/`` or a workspace path; ``parameters``},
  ``spark_jar_task`` {``main_class_name``, ``parameters``} with ``libraries`` [{``jar``}] (the jar holding the
  main class is run, the others go on the class path); ``existing_cluster_id``, ``new_cluster`` (its
  ``spark_env_vars`` become the run's environment, its ``spark_conf`` the local session's settings) or
  neither (serverless); ``timeout_seconds`` of the run and of the task (the smaller one wins → ``TIMEDOUT``);
  ``idempotency_token``: a token seen before answers the same ``run_id`` and runs nothing);
  ``runs/get`` (``state`` {``life_cycle_state`` PENDING → RUNNING → (TERMINATING →) TERMINATED or
  INTERNAL_ERROR, ``result_state`` SUCCESS / FAILED / TIMEDOUT / CANCELED, ``state_message``,
  ``user_cancelled_or_timedout``}, ``status`` {``state``, ``termination_details``}, ``tasks`` with their own
  ``run_id`` and state, ``run_page_url``, ``start_time`` / ``end_time`` / durations, ``job_id``,
  ``run_type`` SUBMIT_RUN); ``runs/get-output`` (of a **task** run, as Databricks: the parent run of a
  multi-task run is refused with ``INVALID_PARAMETER_VALUE``): ``notebook_output`` {``result``,
  ``truncated``}, ``error``, ``error_trace``, ``logs`` (stdout of script and jar tasks), ``metadata``;
  ``runs/cancel`` (kills the run's process group; the run ends TERMINATED / CANCELED); ``runs/list``.
  A submitted notebook or script that does not exist ends the run ``INTERNAL_ERROR`` (as Databricks does,
  with a ``state_message`` naming the path); a notebook that cannot be read locally does too.
* Workspace API 2.0: ``import`` (``content`` base64, ``format`` SOURCE / JUPYTER / AUTO / RAW, ``language``,
  ``overwrite``; the parent folder must exist → ``RESOURCE_DOES_NOT_EXIST``; an existing path without
  ``overwrite`` → ``RESOURCE_ALREADY_EXISTS``), ``export`` (``content`` base64 in the stored form: source or
  ipynb; ``file_type``), ``get-status`` (``object_type`` NOTEBOOK / FILE / DIRECTORY, ``language``,
  ``object_id``, ``path``), ``list``, ``mkdirs``, ``delete`` (``recursive``). Paths may carry ``/Workspace``.
* DBFS API 2.0: ``put`` (base64 ``contents``), ``create`` / ``add-block`` / ``close`` (handles), ``read``
  (``offset``, ``length``, base64 ``data``), ``get-status``, ``list``, ``delete`` (``recursive``), ``mkdirs``,
  ``move``; paths ``/x`` or ``dbfs:/x``.
* Files API 2.0 over ``/Volumes/...``: ``PUT`` / ``GET`` (``Range``) / ``HEAD`` / ``DELETE`` on
  ``/api/2.0/fs/files{path}`` (``overwrite=false`` → 409 ``ALREADY_EXISTS``), ``PUT`` / ``HEAD`` / ``GET`` (list)
  / ``DELETE`` on ``/api/2.0/fs/directories{path}``; ``/api/2.0/fs/endpoints`` tells the SDK's ``FilesExt`` to
  transfer through this host's Files API 2.0 (no presigned URLs).

How paths are seen by a run: ``dbfs:/x`` and ``/dbfs/x`` (in the notebook's ``dbutils.fs`` and in task
parameters read through it) are ``<root>/dbfs/x`` — the same folder the DBFS API writes; the run's working
folder is ``<root>/runs/<run_id>/`` (relative paths resolve there); absolute local paths are the server
machine's. The notebook is copied out of the workspace for each run.

* Clusters API 2.1 ``clusters/get`` for the ids in ``clusters`` (id → state); others are refused as missing.
* Storage: task parameters holding ``abfss://`` / ``wasbs://`` URIs of an account in ``storage_accounts``
  (name → Azurite connection string) are read from and written to that account
  (:class:`databricks_storage.StorageMirror`), as a cluster configured for that storage does.

Not implemented: ``/Volumes/``
paths inside a running notebook (``dbutils.fs`` maps only ``dbfs:``); installing ``pypi`` / ``maven`` / ``whl``
libraries (recorded in the run, not installed); ``depends_on`` (tasks run one after another in the order
given; after a failure the remaining tasks are ``SKIPPED`` / ``UPSTREAM_FAILED``); ``git_source`` and
``source: GIT``; jobs (``jobs/create``, ``run-now``), clusters, repair, ``runs/delete``, ``runs/export``;
DIRECTORY export; conversion between ipynb and source on export; access control; ``run_as``; queueing.

Test hooks: ``run_delay`` (seconds a run stays RUNNING before its task starts, so cancel / reattach can be
tested), ``pending_delay`` (seconds in PENDING), ``inject`` (status codes answered, with a Databricks error body,
to the next requests), ``requests`` (every request received), ``submit_requests`` (every ``runs/submit``
call), ``submissions`` (runs ``runs/submit`` created; a resubmission with a known idempotency token adds none),
``runs_created`` (their ids), ``executions`` (task starts, keyed by task run id), ``cancels`` (run ids
cancelled), ``task_logs(task_run_id)`` (every line a task run printed).

Client set-up (``http://127.0.0.1:PORT``; the SDK takes an http host as is)::

    from databricks.sdk import WorkspaceClient

    client = WorkspaceClient(host=server.endpoint, token=server.token, auth_type="pat")
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from airflow_provider_amlpipe.databricks.local_runner import LocalRunner, RunResult
from airflow_provider_amlpipe.databricks.notebook import NotebookError
from support.databricks_storage import StorageMirror
from support.loopback_http import ServiceHandler, admit, hosting

DEFAULT_TOKEN = "dapi-local-test-token"
ORG_ID = "1234567890123456"
LOG_LINES = 10_000
TASK_KINDS = ("notebook_task", "spark_python_task", "spark_jar_task")
UNSUPPORTED_TASK_KINDS = (
    "python_wheel_task",
    "sql_task",
    "dbt_task",
    "spark_submit_task",
    "pipeline_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
)


class DatabricksError(Exception):
    """An error answer: ``{"error_code": code, "message": message}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str | int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def _bad(message: str) -> DatabricksError:
    return DatabricksError(400, "INVALID_PARAMETER_VALUE", message)


def _not_found(message: str) -> DatabricksError:
    return DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", message)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class _TaskRun:
    run_id: int
    spec: dict[str, Any]
    life_cycle: str = "PENDING"
    result: str | None = None
    message: str = ""
    start: int = 0
    end: int = 0
    output: RunResult | None = None
    logs: list[str] = field(default_factory=list)


@dataclass
class _Run:
    run_id: int
    job_id: int
    body: dict[str, Any]
    tasks: list[_TaskRun]
    life_cycle: str = "PENDING"
    result: str | None = None
    message: str = "Waiting for cluster"
    start: int = 0
    end: int = 0
    cancelled: bool = False
    runner: LocalRunner | None = None
    thread: threading.Thread | None = None
    wake: threading.Event = field(default_factory=threading.Event)


def _millis() -> int:
    return int(time.time() * 1000)


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


class DatabricksTestServer:
    """The server's state; :func:`running_databricks_server` starts it on a free loopback port."""

    def __init__(self, token: str | None, root: Path) -> None:
        self.token = token
        self.root = root
        self.endpoint = ""
        self.workspace_dir = root / "workspace"
        self.dbfs_dir = root / "dbfs"
        self.volumes_dir = root / "Volumes"
        self.runs_dir = root / "runs"
        for folder in (self.workspace_dir, self.dbfs_dir, self.volumes_dir, self.runs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.run_delay = 0.0
        self.pending_delay = 0.0
        self.inject: list[int] = []
        self.requests: list[RecordedRequest] = []
        self.submit_requests = 0
        self.submissions = 0
        self.runs_created: list[int] = []
        self.executions: Counter[int] = Counter()
        self.cancels: list[int] = []
        self.runs: dict[int, _Run] = {}
        self.task_runs: dict[int, tuple[_Run, _TaskRun]] = {}
        self.idempotency: dict[str, int] = {}
        self.objects: dict[str, dict[str, Any]] = {"/": {"object_type": "DIRECTORY", "object_id": 0}}
        self.handles: dict[int, Path] = {}
        #: Clusters ``clusters/get`` knows: id → state (``RUNNING``, ``TERMINATED``...).
        self.clusters: dict[str, str] = {}
        #: Storage accounts a run's ``abfss://`` / ``wasbs://`` parameters reach: name → Azurite connection string.
        self.storage_accounts: dict[str, str] = {}
        self.lock = threading.RLock()
        self._ids = itertools.count(1001)
        self._closing = threading.Event()

    # -- protocol entry point ----------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, Any]:
        """``(status, extra headers, payload)``; payload is JSON-able, bytes, or None."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        path = parts.path
        parsed: Any = body
        is_files = path.startswith("/api/2.0/fs/files")
        if body and not is_files:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        if path == "/.well-known/databricks-config" and method == "GET":  # host metadata: no auth, as the service
            return 200, {}, {"oidc_endpoint": f"{self.endpoint}/oidc", "workspace_id": ORG_ID, "cloud": "azure"}
        injected = admit(self, RecordedRequest(method, path, query, dict(headers), None if is_files else parsed))
        try:
            if injected is not None:
                raise DatabricksError(injected, "TEMPORARILY_UNAVAILABLE", f"injected HTTP {injected}")
            self._authenticate(headers)
            if body and not is_files and not isinstance(parsed, dict):
                raise DatabricksError(400, "MALFORMED_REQUEST", "Could not parse request object: invalid JSON")
            return self._route(method, path, query, headers, parsed if body else None)
        except DatabricksError as exc:
            return exc.status, exc.headers, {"error_code": exc.code, "message": exc.message}
        except Exception as exc:  # a server bug: answer like the service's internal errors, keep serving
            return 500, {}, {"error_code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}

    def _authenticate(self, headers: dict[str, str]) -> None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not value:
            raise DatabricksError(
                401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."
            )
        if self.token is not None and value != self.token:
            # as the service answers: a numeric error_code, and the reason phrase in a header
            reason = {"X-Databricks-Reason-Phrase": "Invalid access token."}
            raise DatabricksError(403, 403, "Invalid access token.", reason)

    def _route(self, method: str, path: str, query: dict, headers: dict[str, str], body: Any) -> tuple[int, dict, Any]:
        q = {k: v[0] for k, v in query.items()}
        b = body if isinstance(body, dict) else {}
        for prefix in ("/api/2.2/jobs/runs/", "/api/2.1/jobs/runs/"):
            if path.startswith(prefix):
                return self._jobs(method, path[len(prefix) :], q, b)
        if path == "/api/2.1/clusters/get" and method == "GET":
            with self.lock:
                state = self.clusters.get(q.get("cluster_id", ""))
            if state is None:
                raise _bad(f"Cluster {q.get('cluster_id')} does not exist")
            return 200, {}, {"cluster_id": q["cluster_id"], "state": state, "cluster_name": q["cluster_id"]}
        if path.startswith("/api/2.0/workspace/"):
            return self._workspace(method, path[len("/api/2.0/workspace/") :], q, b)
        if path.startswith("/api/2.0/dbfs/"):
            return self._dbfs(method, path[len("/api/2.0/dbfs/") :], q, b)
        if path == "/api/2.0/fs/endpoints" and method == "GET":
            host = self.endpoint.split("://", 1)[1]
            entry = {"api": "FILES_API", "api_version": "2.0", "scheme": "http", "hostname": host}
            return 200, {}, {"endpoints": [{**entry, "multipart_upload_supported": False}]}
        if path.startswith("/api/2.0/fs/files/"):
            return self._files(method, unquote(path[len("/api/2.0/fs/files") :]), q, headers, body)
        if path.startswith("/api/2.0/fs/directories/"):
            return self._directories(method, unquote(path[len("/api/2.0/fs/directories") :]))
        raise DatabricksError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")

    # -- paths -----------------------------------------------------------------------------------

    @staticmethod
    def _under(base: Path, rel: str) -> Path:
        local = (base / rel.lstrip("/")).resolve()
        if local != base.resolve() and base.resolve() not in local.parents:
            raise _bad(f"Path {rel} is outside its root")
        return local

    def dbfs_local(self, path: str) -> Path:
        """The folder behind a DBFS path (``/x``, ``dbfs:/x`` or ``/dbfs/x``)."""
        for prefix in ("dbfs:", "/dbfs/"):
            if path.startswith(prefix):
                path = "/" + path[len(prefix) :].lstrip("/")
        if not path.startswith("/"):
            raise _bad(f"Path must be absolute: {path}")
        return self._under(self.dbfs_dir, path)

    def volume_local(self, path: str) -> Path:
        parts = path.strip("/").split("/")
        if parts[0] != "Volumes" or len(parts) < 4:
            raise _bad(f"Invalid path: {path} is not a /Volumes/<catalog>/<schema>/<volume>/... path")
        return self._under(self.root, path)

    @staticmethod
    def _ws_path(path: str | None) -> str:
        if not path or not path.startswith("/"):
            raise _bad(f"Path ({path}) must be an absolute path")
        if path == "/Workspace" or path.startswith("/Workspace/"):
            path = path[len("/Workspace") :] or "/"
        return "/" + "/".join(p for p in path.split("/") if p)

    def _ws_local(self, path: str) -> Path:
        info = self.objects[path]
        suffix = {"py_source": ".py", "ipynb": ".ipynb"}.get(info.get("stored", ""), "")
        return self._under(self.workspace_dir, path + suffix) if path != "/" else self.workspace_dir

    def local_path(self, path: str) -> Path:
        """The local file behind a path a task names: ``dbfs:/``, ``/dbfs/``, ``/Volumes/``, or a workspace path."""
        if path.startswith(("dbfs:", "/dbfs/")):
            return self.dbfs_local(path)
        if path.startswith("/Volumes/"):
            return self.volume_local(path)
        ws = self._ws_path(path)
        with self.lock:
            if ws not in self.objects:
                raise FileNotFoundError(path)
            return self._ws_local(ws)

    # -- Jobs API ----------------------------------------------------------------------------------

    def _jobs(self, method: str, op: str, q: dict[str, str], b: dict[str, Any]) -> tuple[int, dict, Any]:
        if op == "submit" and method == "POST":
            return 200, {}, self._submit(b)
        if op == "get" and method == "GET":
            with self.lock:
                return 200, {}, self._run_view(self._run(q.get("run_id")))
        if op == "get-output" and method == "GET":
            return 200, {}, self._output(q.get("run_id"))
        if op == "cancel" and method == "POST":
            self.cancel(self._run(b.get("run_id")).run_id)
            return 200, {}, {}
        if op == "list" and method == "GET":
            with self.lock:
                runs = sorted(self.runs.values(), key=lambda r: -r.run_id)
                active = _truthy(q.get("active_only", "false"))
                views = [self._run_view(r) for r in runs if not active or r.life_cycle != "TERMINATED"]
            return 200, {}, {"runs": views, "has_more": False} if views else {"has_more": False}
        raise DatabricksError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /jobs/runs/{op}'")

    def _run(self, run_id: Any) -> _Run:
        try:
            rid = int(run_id)
        except (TypeError, ValueError):
            raise _bad(f"Invalid run_id: {run_id}") from None
        with self.lock:
            if rid in self.runs:
                return self.runs[rid]
            if rid in self.task_runs:
                return self.task_runs[rid][0]
        raise _bad(f"Run {rid} does not exist.")

    def _validate(self, body: dict[str, Any]) -> None:
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise _bad("At least one task is required.")
        keys = set()
        for task in tasks:
            key = task.get("task_key")
            if not key:
                raise _bad("Task key must be specified for all tasks.")
            if key in keys:
                raise _bad(f"Task key {key} is not unique.")
            keys.add(key)
            kinds = [k for k in (*TASK_KINDS, *UNSUPPORTED_TASK_KINDS) if task.get(k) is not None]
            if len(kinds) != 1:
                raise _bad(f"Task {key} must specify exactly one task type; found {kinds or 'none'}.")
            if kinds[0] in UNSUPPORTED_TASK_KINDS:
                raise DatabricksError(501, "NOT_IMPLEMENTED", f"{kinds[0]} is not implemented by the local server")
            if task.get("existing_cluster_id") and task.get("new_cluster"):
                raise _bad(f"Task {key}: only one of existing_cluster_id and new_cluster may be set.")
            spec = task[kinds[0]]
            if kinds[0] == "notebook_task":
                if not spec.get("notebook_path"):
                    raise _bad(f"Task {key}: notebook_path is required.")
                if spec.get("source", "WORKSPACE") != "WORKSPACE":
                    raise DatabricksError(501, "NOT_IMPLEMENTED", "notebook source GIT is not implemented")
            elif kinds[0] == "spark_python_task":
                if not spec.get("python_file"):
                    raise _bad(f"Task {key}: python_file is required.")
            elif not spec.get("main_class_name"):
                raise _bad(f"Task {key}: main_class_name is required.")

    def _submit(self, body: dict[str, Any]) -> dict[str, Any]:
        self._validate(body)
        with self.lock:
            self.submit_requests += 1
            token = body.get("idempotency_token")
            if token and token in self.idempotency:
                return {"run_id": self.idempotency[token]}
            run_id, job_id = next(self._ids), next(self._ids)
            tasks = []
            for spec in body["tasks"]:
                task = _TaskRun(next(self._ids), spec)
                tasks.append(task)
            run = _Run(run_id, job_id, body, tasks, start=_millis())
            for task in tasks:
                self.task_runs[task.run_id] = (run, task)
            self.runs[run_id] = run
            if token:
                self.idempotency[token] = run_id
            self.submissions += 1
            self.runs_created.append(run_id)
            run.thread = threading.Thread(target=self._execute, args=(run,), name=f"dbx-run-{run_id}", daemon=True)
            run.thread.start()
            return {"run_id": run_id}

    def _state(self, life_cycle: str, result: str | None, message: str, cancelled: bool) -> dict[str, Any]:
        state: dict[str, Any] = {"life_cycle_state": life_cycle, "state_message": message}
        if result:
            state["result_state"] = result
            state["user_cancelled_or_timedout"] = cancelled or result in ("CANCELED", "TIMEDOUT")
        else:
            state["user_cancelled_or_timedout"] = False
        return state

    @staticmethod
    def _status(life_cycle: str, result: str | None, message: str) -> dict[str, Any]:
        if life_cycle in ("PENDING", "QUEUED"):
            return {"state": "PENDING"}
        if life_cycle in ("RUNNING", "TERMINATING"):
            return {"state": life_cycle}
        code, kind = {
            "SUCCESS": ("SUCCESS", "SUCCESS"),
            "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
            "TIMEDOUT": ("TIMED_OUT", "CLIENT_ERROR"),
            "CANCELED": ("USER_CANCELED", "SUCCESS"),
            "UPSTREAM_FAILED": ("UPSTREAM_FAILED", "CLIENT_ERROR"),
        }.get(result or "", ("INTERNAL_ERROR", "INTERNAL_ERROR"))
        return {"state": "TERMINATED", "termination_details": {"code": code, "type": kind, "message": message}}

    def _page_url(self, run: _Run, task_run_id: int | None = None) -> str:
        return f"{self.endpoint}/?o={ORG_ID}#job/{run.job_id}/run/{task_run_id or run.run_id}"

    def _task_view(self, run: _Run, task: _TaskRun) -> dict[str, Any]:
        spec = task.spec
        view: dict[str, Any] = {
            "run_id": task.run_id,
            "task_key": spec["task_key"],
            "state": self._state(task.life_cycle, task.result, task.message, run.cancelled),
            "status": self._status(task.life_cycle, task.result, task.message),
            "run_page_url": self._page_url(run, task.run_id),
            "start_time": task.start,
            "end_time": task.end,
            "attempt_number": 0,
        }
        for key in (*TASK_KINDS, "existing_cluster_id", "new_cluster", "libraries", "timeout_seconds"):
            if key in spec:
                view[key] = spec[key]
        if spec.get("existing_cluster_id"):
            view["cluster_instance"] = {"cluster_id": spec["existing_cluster_id"]}
        return view

    def _run_view(self, run: _Run) -> dict[str, Any]:
        end = run.end
        view: dict[str, Any] = {
            "run_id": run.run_id,
            "job_id": run.job_id,
            "number_in_job": run.run_id,
            "original_attempt_run_id": run.run_id,
            "run_name": run.body.get("run_name", "Untitled"),
            "run_type": "SUBMIT_RUN",
            "creator_user_name": "local@example.com",
            "state": self._state(run.life_cycle, run.result, run.message, run.cancelled),
            "status": self._status(run.life_cycle, run.result, run.message),
            "tasks": [self._task_view(run, t) for t in run.tasks],
            "run_page_url": self._page_url(run),
            "start_time": run.start,
            "end_time": end,
            "setup_duration": 0,
            "execution_duration": max(0, end - run.start) if end else 0,
            "cleanup_duration": 0,
            "format": "MULTI_TASK",
        }
        if run.body.get("timeout_seconds"):
            view["timeout_seconds"] = run.body["timeout_seconds"]
        return view

    def _output(self, run_id: Any) -> dict[str, Any]:
        try:
            rid = int(run_id)
        except (TypeError, ValueError):
            raise _bad(f"Invalid run_id: {run_id}") from None
        with self.lock:
            if rid in self.runs:
                run = self.runs[rid]
                if run.tasks:  # a submitted run is a multi-task run, even with one task
                    raise _bad(
                        "Retrieving the output of runs with multiple tasks is not supported. "
                        "Please retrieve the output of each individual task run instead."
                    )
            if rid not in self.task_runs:
                raise _bad(f"Run {rid} does not exist.")
            run, task = self.task_runs[rid]
            payload: dict[str, Any] = {"metadata": self._task_view(run, task)}
            result = task.output
            if "notebook_task" in task.spec:
                payload["notebook_output"] = (
                    {"result": result.exit_value, "truncated": False}
                    if result and result.exit_value is not None
                    else {}
                )
            elif task.logs:
                text = "\n".join(task.logs[-LOG_LINES:])
                payload["logs"] = text
                payload["logs_truncated"] = len(task.logs) > LOG_LINES
            if task.result and task.result != "SUCCESS":
                error = result.error if result and result.error else task.message
                payload["error"] = error
                if result and result.trace:
                    payload["error_trace"] = result.trace
            return payload

    def cancel(self, run_id: int) -> None:
        """Cancel a run (as ``runs/cancel``): its process is killed and it ends TERMINATED / CANCELED."""
        with self.lock:
            run = self.runs[run_id]
            self.cancels.append(run_id)
            if run.life_cycle in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED"):
                return
            run.cancelled = True
            run.life_cycle = "TERMINATING"
            run.message = "Run cancellation requested."
            for task in run.tasks:
                if task.life_cycle in ("PENDING", "RUNNING"):
                    task.life_cycle = "TERMINATING"
            runner = run.runner
            run.wake.set()
        if runner is not None:
            threading.Thread(target=runner.cancel, daemon=True).start()

    # -- running -------------------------------------------------------------------------------------

    def _sleep(self, run: _Run, seconds: float) -> bool:
        """Wait ``seconds``; False when the run was cancelled meanwhile (or the server closes)."""
        if seconds > 0:
            run.wake.wait(seconds)
        return not (run.cancelled or self._closing.is_set())

    def _execute(self, run: _Run) -> None:
        try:
            if self._sleep(run, self.pending_delay):
                with self.lock:
                    if not run.cancelled:
                        run.life_cycle, run.message = "RUNNING", "In run"
            failed = False
            for task in run.tasks:
                with self.lock:
                    if run.cancelled or self._closing.is_set():
                        task.life_cycle, task.result, task.message = "TERMINATED", "CANCELED", "Run cancelled."
                        task.end = task.end or _millis()
                        continue
                    if failed:
                        task.life_cycle, task.result = "SKIPPED", "UPSTREAM_FAILED"
                        task.message = "Upstream task failed."
                        continue
                    task.life_cycle, task.message, task.start = "RUNNING", "In run", _millis()
                self._run_task(run, task)
                failed = task.result != "SUCCESS"
            with self.lock:
                run.end = _millis()
                internal = [t for t in run.tasks if t.life_cycle == "INTERNAL_ERROR"]
                failed_tasks = [t for t in run.tasks if t.result not in (None, "SUCCESS", "UPSTREAM_FAILED")]
                if run.cancelled:
                    run.life_cycle, run.result, run.message = "TERMINATED", "CANCELED", "Run cancelled."
                elif internal:
                    run.life_cycle, run.result, run.message = "INTERNAL_ERROR", "FAILED", internal[0].message
                elif failed_tasks:
                    first = failed_tasks[0]
                    run.life_cycle, run.result = "TERMINATED", first.result
                    run.message = first.message
                else:
                    run.life_cycle, run.result, run.message = "TERMINATED", "SUCCESS", ""
        except Exception as exc:  # a server bug: the run ends like an internal error, the server keeps serving
            with self.lock:
                run.life_cycle, run.result = "INTERNAL_ERROR", "FAILED"
                run.message, run.end = f"{type(exc).__name__}: {exc}", _millis()

    def _run_task(self, run: _Run, task: _TaskRun) -> None:
        spec = task.spec
        cluster = spec.get("new_cluster") or {}
        workdir = self.runs_dir / str(run.run_id)
        timeouts = [float(t) for t in (run.body.get("timeout_seconds"), spec.get("timeout_seconds")) if t]
        timeout = min(timeouts) if timeouts else None

        def sink(stream: str, line: str) -> None:
            with self.lock:
                task.logs.append(line)

        mirror = StorageMirror(self.storage_accounts, workdir / ".storage")
        runner = LocalRunner(
            workdir=workdir,
            dbfs_root=self.dbfs_dir,
            env=cluster.get("spark_env_vars") or {},
            spark_conf=cluster.get("spark_conf") or {},
            sink=sink,
        )
        with self.lock:
            run.runner = runner
        if not self._sleep(run, self.run_delay):
            result = RunResult("CANCELED", error="the run was cancelled")
        else:
            try:
                with self.lock:
                    self.executions[task.run_id] += 1
                result = self._start(runner, mirror.localize(spec), workdir, timeout)
            except (FileNotFoundError, NotebookError, DatabricksError) as exc:
                message = exc.message if isinstance(exc, DatabricksError) else str(exc)
                with self.lock:
                    task.life_cycle, task.result, task.end = "INTERNAL_ERROR", "FAILED", _millis()
                    task.message = message
                return
            finally:
                mirror.write_back()  # what the task wrote reaches the storage even when it then failed
        with self.lock:
            task.output, task.end = result, _millis()
            task.life_cycle, task.result = "TERMINATED", result.state
            task.message = {
                "SUCCESS": "",
                "FAILED": "Workload failed, see run output for details",
                "TIMEDOUT": f"Run timed out after {timeout:g} seconds." if timeout else "Run timed out.",
                "CANCELED": "Run cancelled.",
            }.get(result.state, result.error or "")

    def _start(self, runner: LocalRunner, spec: dict[str, Any], workdir: Path, timeout: float | None) -> RunResult:
        if "notebook_task" in spec:
            nb = spec["notebook_task"]
            path = self._ws_path(nb["notebook_path"])
            with self.lock:
                info = self.objects.get(path)
                if info is None or info["object_type"] != "NOTEBOOK":
                    raise FileNotFoundError(f'Unable to access the notebook "{nb["notebook_path"]}".')
                source = self._ws_local(path)
                copy = workdir / ".notebook" / source.name
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy)
            return runner.run_notebook(copy, nb.get("base_parameters") or {}, timeout=timeout)
        if "spark_python_task" in spec:
            task = spec["spark_python_task"]
            local = self.local_path(task["python_file"])
            if not local.is_file():
                raise FileNotFoundError(f"Python file {task['python_file']} does not exist.")
            return runner.run_python_script(local, task.get("parameters") or [], timeout=timeout)
        task = spec["spark_jar_task"]
        jars = [self.local_path(lib["jar"]) for lib in spec.get("libraries") or [] if lib.get("jar")]
        if task.get("jar_uri"):
            jars.insert(0, self.local_path(task["jar_uri"]))
        for jar in jars:
            if not jar.is_file():
                raise FileNotFoundError(f"Library {jar.name} does not exist.")
        entry = task["main_class_name"].replace(".", "/") + ".class"
        main = next((j for j in jars if entry in _jar_entries(j)), None)
        if main is None:
            raise FileNotFoundError(f"Class {task['main_class_name']} not found in the task's jar libraries.")
        others = [j for j in jars if j != main]
        return runner.run_jar(
            main, task["main_class_name"], task.get("parameters") or [], libraries=others, timeout=timeout
        )

    # -- Workspace API --------------------------------------------------------------------------------

    def _workspace(self, method: str, op: str, q: dict[str, str], b: dict[str, Any]) -> tuple[int, dict, Any]:
        with self.lock:
            if op == "import" and method == "POST":
                return self._import(b)
            if op == "export" and method == "GET":
                return self._export(q)
            if op == "get-status" and method == "GET":
                path = self._ws_path(q.get("path"))
                if path not in self.objects:
                    raise _not_found(f"Path ({q.get('path')}) doesn't exist.")
                return 200, {}, self._object_view(path)
            if op == "list" and method == "GET":
                path = self._ws_path(q.get("path"))
                if path not in self.objects:
                    raise _not_found(f"Path ({q.get('path')}) doesn't exist.")
                if self.objects[path]["object_type"] != "DIRECTORY":
                    return 200, {}, {"objects": [self._object_view(path)]}
                children = [p for p in self.objects if p != path and p.rsplit("/", 1)[0] == path.rstrip("/")]
                children = [p for p in children if p != "/" and (p.rsplit("/", 1)[0] or "/") == path]
                return 200, {}, {"objects": [self._object_view(p) for p in sorted(children)]}
            if op == "mkdirs" and method == "POST":
                self._mkdirs(self._ws_path(b.get("path")))
                return 200, {}, {}
            if op == "delete" and method == "POST":
                self._ws_delete(self._ws_path(b.get("path")), _truthy(b.get("recursive", False)))
                return 200, {}, {}
        raise DatabricksError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /workspace/{op}'")

    def _object_view(self, path: str) -> dict[str, Any]:
        info = self.objects[path]
        view = {"path": path, "object_type": info["object_type"], "object_id": info["object_id"]}
        if info.get("language"):
            view["language"] = info["language"]
        if info["object_type"] != "DIRECTORY":
            local = self._ws_local(path)
            stat = local.stat()
            view.update(size=stat.st_size, modified_at=int(stat.st_mtime * 1000), created_at=info["created_at"])
        return view

    def _mkdirs(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            current = "/" + "/".join(parts[:i])
            existing = self.objects.get(current)
            if existing is None:
                self.objects[current] = {"object_type": "DIRECTORY", "object_id": next(self._ids)}
                self._under(self.workspace_dir, current).mkdir(parents=True, exist_ok=True)
            elif existing["object_type"] != "DIRECTORY":
                raise DatabricksError(400, "RESOURCE_ALREADY_EXISTS", f"Path ({current}) already exists.")

    def _import(self, b: dict[str, Any]) -> tuple[int, dict, Any]:
        path = self._ws_path(b.get("path"))
        if path == "/":
            raise _bad("Cannot import to the root folder")
        try:
            content = base64.b64decode(b.get("content") or "", validate=True)
        except ValueError:
            raise _bad("content is not valid base64") from None
        fmt = (b.get("format") or "SOURCE").upper()
        language = (b.get("language") or "").upper() or None
        parent = path.rsplit("/", 1)[0] or "/"
        if self.objects.get(parent, {}).get("object_type") != "DIRECTORY":
            raise _not_found(f"The parent folder ({parent}) does not exist.")
        text = content.decode("utf-8", errors="replace")
        if fmt == "AUTO":  # as Databricks: a notebook by extension and header, imported without its extension
            if path.endswith(".ipynb"):
                fmt, path = "JUPYTER", path[: -len(".ipynb")]
            elif path.endswith(".py") and text.startswith("# Databricks notebook source"):
                fmt, language, path = "SOURCE", "PYTHON", path[: -len(".py")]
            else:
                fmt = "RAW"
        if fmt == "SOURCE":
            if language is None:
                raise _bad("The language field is required when format is SOURCE.")
            if language != "PYTHON":
                raise DatabricksError(501, "NOT_IMPLEMENTED", f"{language} notebooks are not implemented locally")
            stored, object_type = "py_source", "NOTEBOOK"
        elif fmt == "JUPYTER":
            stored, object_type, language = "ipynb", "NOTEBOOK", "PYTHON"
        elif fmt == "RAW":
            stored, object_type, language = "raw", "FILE", None
        else:
            raise DatabricksError(501, "NOT_IMPLEMENTED", f"import format {fmt} is not implemented")
        existing = self.objects.get(path)
        if existing is not None:
            if existing["object_type"] == "DIRECTORY" or not _truthy(b.get("overwrite", False)):
                raise DatabricksError(400, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")
            self._ws_local(path).unlink(missing_ok=True)
        object_id = existing["object_id"] if existing else next(self._ids)
        self.objects[path] = {
            "object_type": object_type,
            "object_id": object_id,
            "language": language,
            "stored": stored,
            "created_at": existing["created_at"] if existing else _millis(),
        }
        local = self._ws_local(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(content)
        return 200, {}, {}

    def _export(self, q: dict[str, str]) -> tuple[int, dict, Any]:
        path = self._ws_path(q.get("path"))
        info = self.objects.get(path)
        if info is None:
            raise _not_found(f"Path ({q.get('path')}) doesn't exist.")
        if info["object_type"] == "DIRECTORY":
            raise DatabricksError(501, "NOT_IMPLEMENTED", "exporting a directory is not implemented")
        fmt = (q.get("format") or "SOURCE").upper()
        stored = info["stored"]
        wanted = {"SOURCE": "py_source", "JUPYTER": "ipynb"}.get(fmt)
        if info["object_type"] == "NOTEBOOK" and wanted and wanted != stored:
            raise DatabricksError(501, "NOT_IMPLEMENTED", f"converting a {stored} notebook to {fmt} is not implemented")
        data = self._ws_local(path).read_bytes()
        if _truthy(q.get("direct_download", "false")):
            return 200, {}, data
        file_type = {"py_source": "py", "ipynb": "ipynb"}.get(stored, Path(path).suffix.lstrip("."))
        return 200, {}, {"content": base64.b64encode(data).decode(), "file_type": file_type}

    def _ws_delete(self, path: str, recursive: bool) -> None:
        if path not in self.objects or path == "/":
            raise _not_found(f"Path ({path}) doesn't exist.")
        children = [p for p in self.objects if p.startswith(path + "/")]
        if children and not recursive:
            raise DatabricksError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty")
        for p in sorted([*children, path], reverse=True):
            info = self.objects[p]
            local = self._ws_local(p)
            if info["object_type"] == "DIRECTORY":
                shutil.rmtree(local, ignore_errors=True)
            else:
                local.unlink(missing_ok=True)
            del self.objects[p]

    # -- DBFS API ----------------------------------------------------------------------------------------

    def _file_info(self, local: Path, path: str) -> dict[str, Any]:
        stat = local.stat()
        is_dir = local.is_dir()
        return {
            "path": path,
            "is_dir": is_dir,
            "file_size": 0 if is_dir else stat.st_size,
            "modification_time": int(stat.st_mtime * 1000),
        }

    def _dbfs(self, method: str, op: str, q: dict[str, str], b: dict[str, Any]) -> tuple[int, dict, Any]:
        with self.lock:
            if op == "put" and method == "POST":
                local = self._dbfs_new(b.get("path"), _truthy(b.get("overwrite", False)))
                local.write_bytes(base64.b64decode(b.get("contents") or ""))
                return 200, {}, {}
            if op == "create" and method == "POST":
                local = self._dbfs_new(b.get("path"), _truthy(b.get("overwrite", False)))
                local.write_bytes(b"")
                handle = next(self._ids)
                self.handles[handle] = local
                return 200, {}, {"handle": handle}
            if op in ("add-block", "close") and method == "POST":
                block_handle = b.get("handle")
                if block_handle not in self.handles:
                    raise _not_found(f"Handle {block_handle} does not exist.")
                if op == "close":
                    del self.handles[block_handle]
                    return 200, {}, {}
                data = base64.b64decode(b.get("data") or "")
                if len(data) > 1024 * 1024:
                    raise DatabricksError(400, "MAX_BLOCK_SIZE_EXCEEDED", "The block size exceeded 1 MB.")
                with self.handles[block_handle].open("ab") as out:
                    out.write(data)
                return 200, {}, {}
            if op in ("read", "get-status", "list"):
                path = q.get("path") or ""
                local = self.dbfs_local(path)
                if not local.exists():
                    raise _not_found(f"No file or directory exists on path {path}.")
                if op == "get-status":
                    return 200, {}, self._file_info(local, path)
                if op == "list":
                    if not local.is_dir():
                        return 200, {}, {"files": [self._file_info(local, path)]}
                    base = path.rstrip("/")
                    infos = [self._file_info(c, f"{base}/{c.name}") for c in sorted(local.iterdir())]
                    return 200, {}, {"files": infos} if infos else {}
                if local.is_dir():
                    raise _bad(f"Cannot read a directory: {path}")
                offset, length = int(q.get("offset") or 0), int(q.get("length") or 512 * 1024)
                if length > 1024 * 1024:
                    raise _bad("Length must be at most 1 MB.")
                with local.open("rb") as src:
                    src.seek(offset)
                    data = src.read(length)
                return 200, {}, {"bytes_read": len(data), "data": base64.b64encode(data).decode()}
            if op == "mkdirs" and method == "POST":
                local = self.dbfs_local(b.get("path") or "")
                if local.is_file():
                    raise DatabricksError(400, "RESOURCE_ALREADY_EXISTS", f"A file exists at {b.get('path')}.")
                local.mkdir(parents=True, exist_ok=True)
                return 200, {}, {}
            if op == "delete" and method == "POST":
                local = self.dbfs_local(b.get("path") or "")
                if local == self.dbfs_dir:
                    raise _bad("Cannot delete the root")
                if local.is_dir():
                    if any(local.iterdir()) and not _truthy(b.get("recursive", False)):
                        raise DatabricksError(400, "IO_ERROR", f"Directory {b.get('path')} is not empty.")
                    shutil.rmtree(local)
                elif local.exists():
                    local.unlink()
                return 200, {}, {}
            if op == "move" and method == "POST":
                source = self.dbfs_local(b.get("source_path") or "")
                dst = self.dbfs_local(b.get("destination_path") or "")
                if not source.exists():
                    raise _not_found(f"No file or directory exists on path {b.get('source_path')}.")
                if dst.exists():
                    raise DatabricksError(
                        400, "RESOURCE_ALREADY_EXISTS", f"{b.get('destination_path')} already exists."
                    )
                dst.parent.mkdir(parents=True, exist_ok=True)
                source.rename(dst)
                return 200, {}, {}
        raise DatabricksError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /dbfs/{op}'")

    def _dbfs_new(self, path: Any, overwrite: bool) -> Path:
        local = self.dbfs_local(str(path or ""))
        if local.is_dir():
            raise DatabricksError(400, "RESOURCE_ALREADY_EXISTS", f"A directory already exists at {path}.")
        if local.exists() and not overwrite:
            raise DatabricksError(400, "RESOURCE_ALREADY_EXISTS", f"A file or directory already exists at {path}.")
        local.parent.mkdir(parents=True, exist_ok=True)
        return local

    # -- Files API -------------------------------------------------------------------------------------

    def _files(
        self, method: str, path: str, q: dict[str, str], headers: dict[str, str], body: Any
    ) -> tuple[int, dict, Any]:
        local = self.volume_local(path)
        with self.lock:
            if method == "PUT":
                if local.is_dir():
                    raise DatabricksError(409, "ALREADY_EXISTS", f"A directory exists at {path}.")
                if local.exists() and q.get("overwrite", "true").lower() == "false":
                    raise DatabricksError(409, "ALREADY_EXISTS", f"The file being created already exists: {path}.")
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(body if isinstance(body, bytes) else b"")
                return 204, {}, None
            if not local.is_file():
                raise DatabricksError(404, "NOT_FOUND", f"The file being accessed is not found: {path}.")
            stat = local.stat()
            meta = {
                "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
                "Content-Type": "application/octet-stream",
            }
            if method == "HEAD":
                return 200, {**meta, "Content-Length": str(stat.st_size)}, None
            if method == "DELETE":
                local.unlink()
                return 204, {}, None
            if method == "GET":
                data = local.read_bytes()
                rng = headers.get("range", "")
                if rng.startswith("bytes="):
                    first, _, last = rng[len("bytes=") :].partition("-")
                    start = int(first or 0)
                    stop = int(last) + 1 if last else len(data)
                    if start >= len(data) and data:
                        raise DatabricksError(416, "INVALID_PARAMETER_VALUE", "Range not satisfiable")
                    chunk = data[start:stop]
                    extra = {**meta, "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(data)}"}
                    return 206, extra, chunk
                return 200, meta, data
        raise DatabricksError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on files")

    def _directories(self, method: str, path: str) -> tuple[int, dict, Any]:
        local = self.volume_local(path.rstrip("/") or "/")
        with self.lock:
            if method == "PUT":
                if local.is_file():
                    raise DatabricksError(409, "ALREADY_EXISTS", f"A file exists at {path}.")
                local.mkdir(parents=True, exist_ok=True)
                return 204, {}, None
            if not local.is_dir():
                raise DatabricksError(404, "NOT_FOUND", f"The directory being accessed is not found: {path}.")
            if method == "HEAD":
                return 200, {}, None
            if method == "DELETE":
                if any(local.iterdir()):
                    raise DatabricksError(409, "DIRECTORY_NOT_EMPTY", f"The directory is not empty: {path}.")
                local.rmdir()
                return 204, {}, None
            if method == "GET":
                base = path.rstrip("/")
                contents = []
                for child in sorted(local.iterdir()):
                    entry: dict[str, Any] = {
                        "path": f"{base}/{child.name}" + ("/" if child.is_dir() else ""),
                        "name": child.name,
                        "is_directory": child.is_dir(),
                    }
                    if child.is_file():
                        entry.update(file_size=child.stat().st_size, last_modified=int(child.stat().st_mtime * 1000))
                    contents.append(entry)
                return 200, {}, {"contents": contents} if contents else {}
        raise DatabricksError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on directories")

    # -- for tests ---------------------------------------------------------------------------------------

    def run(self, run_id: int) -> dict[str, Any]:
        """A copy of a run's current ``runs/get`` JSON (for assertions)."""
        with self.lock:
            return self._run_view(self.runs[run_id])

    def task_logs(self, task_run_id: int) -> list[str]:
        """Every line a task run printed so far (stdout and stderr, in order)."""
        with self.lock:
            return list(self.task_runs[task_run_id][1].logs)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait for every run's thread to finish (so a test leaves nothing running)."""
        deadline = time.monotonic() + timeout
        for run in list(self.runs.values()):
            if run.thread is not None:
                run.thread.join(max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        self._closing.set()
        with self.lock:
            runs = list(self.runs.values())
        for run in runs:
            run.wake.set()
            if run.runner is not None:
                run.runner.cancel()
        self.wait_idle(20)


def _jar_entries(jar: Path) -> set[str]:
    with contextlib.suppress(zipfile.BadZipFile, OSError), zipfile.ZipFile(jar) as archive:
        return set(archive.namelist())
    return set()


def _handler(state: DatabricksTestServer) -> type[ServiceHandler]:
    class Handler(ServiceHandler):
        def service_headers(self, request: dict[str, str]) -> list[tuple[str, str]]:
            return [("x-request-id", str(uuid.uuid4()))]

        def _serve(self) -> None:
            self.dispatch(state.handle)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve

    return Handler


@contextmanager
def running_databricks_server(token: str | None = DEFAULT_TOKEN) -> Iterator[DatabricksTestServer]:
    """Serve the APIs on ``127.0.0.1`` at a free port; ``state.endpoint`` is its http URL.

    ``token`` is the only personal access token accepted (``None``: any non-empty one). At exit the server
    stops, every run's process is killed, and the workspace, DBFS and volume folders are removed.
    """
    root = Path(tempfile.mkdtemp(prefix="databricks-server-"))
    state = DatabricksTestServer(token, root)
    with hosting(state, _handler(state), root):
        yield state
