"""A real, throw-away Airflow deployment for end-to-end tests, driven through its REST API.

:func:`airflow_cluster` creates its own Airflow home, dags folder and PostgreSQL database,
migrates it, and starts ``api-server`` (loopback only), ``scheduler`` (LocalExecutor),
``dag-processor`` and ``triggerer`` as separate process groups sharing one environment; nothing
listens beyond 127.0.0.1. It waits
until the API server reports every component healthy, yields an :class:`AirflowCluster` (with a
:class:`RestClient`), and on exit stops the process groups and drops the database. Each process
logs to a file in the cluster's directory; :meth:`AirflowCluster.log_tails` shows their ends.

With ``celery_workers`` the deployment runs Airflow's ``CeleryExecutor`` instead: the machine's Redis
as broker (every key under a prefix of this cluster's own, so parallel test sessions never see each
other's messages), the cluster's PostgreSQL database as result backend, and one ``airflow celery
worker`` per :class:`CeleryWorker`, each its own process group, consuming its own queues and
reporting its own name as the task instances' ``hostname``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil

from support.paths import SAMPLES
from support.session import PG_SERVER as _PG_SERVER
from support.session import admin_sql as _admin_sql

HOST = "127.0.0.1"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
_START_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 20.0
#: The machine's Redis (``AMLPIPE_TEST_REDIS_URL`` overrides it): a database number of its own for the
#: tests' Celery deployments, whose keys each cluster prefixes with its own id besides.
REDIS_URL = os.environ.get("AMLPIPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
#: Written into the cluster's directory and imported by each Celery worker's task processes as
#: ``[core] hostname_callable``: two workers on one machine then report distinct hostnames.
_HOSTNAME_MODULE = """\
import os


def hostname() -> str:
    return os.environ["AMLPIPE_CLUSTER_WORKER"]
"""


class ClusterError(RuntimeError):
    """The cluster did not start, or did not do what a wait expected in time."""


@dataclass(frozen=True)
class CeleryWorker:
    """One ``airflow celery worker`` of a cluster.

    ``name`` is its Celery node name and the ``hostname`` its task instances report; ``queues`` are
    the queue names it consumes as a test spells them (the cluster makes them unique: see
    :meth:`AirflowCluster.queue`); ``None`` consumes the cluster's default queue.
    """

    name: str
    queues: tuple[str, ...] | None = None
    concurrency: int = 2


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def celery_queue(cluster_id: str, name: str) -> str:
    """The Celery queue a test calls ``name`` in the cluster ``cluster_id``: unique to that cluster, so
    parallel test sessions sharing one broker never take each other's tasks."""
    return f"amlpipe_{cluster_id}_{name}"


class RestClient:
    """The few calls of Airflow's public REST API (``/api/v2``) the tests need."""

    def __init__(
        self, base_url: str, cluster: AirflowCluster | None = None, credentials: tuple[str, str] | None = None
    ) -> None:
        self.base_url = base_url
        self.cluster = cluster
        self.http = httpx.Client(base_url=base_url, timeout=30.0, trust_env=False)
        self.credentials = credentials
        self._token: str | None = None

    def close(self) -> None:
        self.http.close()

    # plumbing ------------------------------------------------------------------------------------
    def token(self) -> str:
        """A JWT from ``/auth/token``: for ``credentials`` (user, password), else (with
        ``simple_auth_manager_all_admins``) a plain GET suffices."""
        if self._token is None and self.credentials is not None:
            user, password = self.credentials
            response = self.http.post("/auth/token", json={"username": user, "password": password})
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        if self._token is None:
            response = self.http.get("/auth/token")
            if response.status_code == 405:
                response = self.http.post("/auth/token")
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code not in ok:
            raise ClusterError(f"{method} {path} -> {response.status_code}: {response.text[:2000]}")
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def _fail(self, message: str) -> ClusterError:
        tails = self.cluster.log_tails() if self.cluster is not None else ""
        return ClusterError(f"{message}\n{tails}")

    @staticmethod
    def _run_path(dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"

    # DAGs ----------------------------------------------------------------------------------------
    def wait_for_dag(self, dag_id: str, timeout: float = 90.0) -> dict[str, Any]:
        """The DAG once the dag-processor has parsed it; fails early on an import error of the DAG."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.request("GET", f"/api/v2/dags/{quote(dag_id, safe='')}", ok=(200, 404))
            if response.status_code == 200:
                return dict(response.json())
            errors = self.get("/api/v2/importErrors").get("import_errors", [])
            if errors:
                raise self._fail(f"import errors while waiting for DAG {dag_id}: {json.dumps(errors, indent=1)}")
            if time.monotonic() > deadline:
                raise self._fail(f"DAG {dag_id} was not parsed within {timeout:.0f}s")
            time.sleep(1.0)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{quote(dag_id, safe='')}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a run now (no logical date); its run id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        response = self.request("POST", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", json=body)
        return str(response.json()["dag_run_id"])

    # runs and task instances ---------------------------------------------------------------------
    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(self._run_path(dag_id, run_id)))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """task_id -> the task instance (map index -1 only)."""
        data = self.get(f"{self._run_path(dag_id, run_id)}/taskInstances")
        return {ti["task_id"]: ti for ti in data["task_instances"] if ti.get("map_index", -1) == -1}

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {task_id: ti["state"] for task_id, ti in self.task_instances(dag_id, run_id).items()}

    def wait_for_runs(
        self,
        dag_id: str,
        run_ids: list[str],
        timeout: float = 120.0,
        interval: float = 0.5,
        seen: dict[str, dict[str, set[str | None]]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Poll until every run is ``success`` or ``failed``; run id -> run.

        ``seen`` (run id -> task id -> states) collects every task state observed while polling.
        """
        deadline = time.monotonic() + timeout
        while True:
            runs = {run_id: self.dag_run(dag_id, run_id) for run_id in run_ids}
            if seen is not None:
                for run_id in run_ids:
                    for task_id, state in self.task_states(dag_id, run_id).items():
                        seen.setdefault(run_id, {}).setdefault(task_id, set()).add(state)
            if all(run["state"] in TERMINAL_RUN_STATES for run in runs.values()):
                return runs
            if self.cluster is not None:
                self.cluster.check_alive()
            if time.monotonic() > deadline:
                states = {run_id: self.task_states(dag_id, run_id) for run_id in run_ids}
                raise self._fail(f"runs of {dag_id} not finished after {timeout:.0f}s: {states}")
            time.sleep(interval)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll until the run is ``success`` or ``failed``; the run."""
        return self.wait_for_runs(dag_id, [run_id], timeout)[run_id]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        """An XCom value as stored (JSON-decoded when the API returns it as a JSON string)."""
        entry = self.get(f"{self._run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}/xcomEntries/{key}")
        value = entry["value"]
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log for one try, one event per line (``full_content``)."""
        path = f"{self._run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}/logs/{try_number}"
        data = self.get(path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        content = data.get("content", [])
        if isinstance(content, str):
            return content
        lines = []
        for item in content:
            lines.append(item.get("event", json.dumps(item)) if isinstance(item, dict) else str(item))
        return "\n".join(lines)


class AirflowCluster:
    """A running deployment: its directory, environment, processes and REST client."""

    def __init__(
        self,
        root: Path,
        port: int,
        env: dict[str, str],
        passwords: Mapping[str, str] | None = None,
        *,
        cluster_id: str = "",
    ) -> None:
        self.root = root
        #: Unique per cluster: names its database, its Celery queues and its broker keys.
        self.cluster_id = cluster_id or uuid.uuid4().hex[:10]
        self.home = root / "airflow_home"
        self.dags_folder = root / "dags"
        self.log_dir = root / "process_logs"
        self.port = port
        self.env = env
        self.base_url = f"http://{HOST}:{port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        #: Components a test killed on purpose: not reported as dead by :meth:`check_alive`.
        self.killed: set[str] = set()
        #: user -> password of the auth manager's users (none: every request is an admin's).
        self.passwords = dict(passwords or {})
        admin = next((u for u in self.passwords if u == "admin"), None)
        self.client = RestClient(self.base_url, self, (admin, self.passwords[admin]) if admin else None)

    def client_for(self, user: str) -> RestClient:
        """A REST client authenticated as ``user`` (one of the cluster's ``users``)."""
        return RestClient(self.base_url, self, (user, self.passwords[user]))

    def log_path(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def queue(self, name: str) -> str:
        """The Celery queue a test calls ``name``, unique to this cluster (for a task's ``queue=``)."""
        return celery_queue(self.cluster_id, name)

    def start(self, component: str, *args: str, env: Mapping[str, str] | None = None, command: str = "") -> None:
        """Start ``airflow <command or component> *args`` as its own process group, logging to its file."""
        argv = [sys.executable, "-m", "airflow", *(command or component).split(), *args]
        with self.log_path(component).open("ab") as log:
            self.processes[component] = subprocess.Popen(
                argv,
                cwd=self.root,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops its children too
            )

    def start_worker(self, worker: CeleryWorker) -> None:
        """Start one Celery worker (component ``worker-<name>``) and wait until it consumes its queues."""
        queues = (
            [self.queue(q) for q in worker.queues] if worker.queues else [self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]]
        )
        component = f"celery-{worker.name}"
        self.start(
            component,
            "--celery-hostname", f"{worker.name}@{self.cluster_id}",
            "--queues", ",".join(queues),
            "--concurrency", str(worker.concurrency),
            "--pid", str(self.root / f"{component}.pid"),
            "--skip-serve-logs",  # the API server reads task logs from this machine's disk
            "--without-mingle",
            "--without-gossip",
            command="celery worker",
            env={
                "AMLPIPE_CLUSTER_WORKER": worker.name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "amlpipe_cluster_host.hostname",
            },
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._pong(f"{worker.name}@{self.cluster_id}"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"Celery worker {worker.name} not ready within {_START_TIMEOUT_S:.0f}s\n{self.log_tails()}"
                )
            time.sleep(0.5)

    def _pong(self, node: str) -> bool:
        """Whether the Celery worker ``node`` answers a ping through the broker (it consumes by then)."""
        from celery import Celery

        app = Celery(broker=self.env["AIRFLOW__CELERY__BROKER_URL"], set_as_current=False)
        prefix = self.env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"]
        app.conf.broker_transport_options = {"global_keyprefix": prefix}
        try:
            return bool(app.control.ping(destination=[node], timeout=1.0))
        finally:
            app.close()

    def kill_tree(self, component: str) -> list[int]:
        """SIGKILL ``component`` and every process under it, as a crashed machine would lose them; the pids.

        Airflow's task supervisor puts each task process in a process group of its own, so the
        component's group alone would leave the task (and the step it runs) alive: the tree is
        frozen first (SIGSTOP, until no new process appears), then killed.
        """
        root = psutil.Process(self.processes[component].pid)
        self.killed.add(component)
        frozen: dict[int, psutil.Process] = {}
        while True:
            found = [root, *root.children(recursive=True)]
            fresh = [proc for proc in found if proc.pid not in frozen]
            if not fresh:
                break
            for proc in fresh:
                with suppress(psutil.NoSuchProcess):
                    proc.send_signal(signal.SIGSTOP)
                frozen[proc.pid] = proc
        for proc in frozen.values():
            with suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        with suppress(ProcessLookupError):
            os.killpg(root.pid, signal.SIGKILL)
        self.processes[component].wait()
        return sorted(frozen)

    def check_alive(self) -> None:
        dead = {
            name: proc.returncode
            for name, proc in self.processes.items()
            if name not in self.killed and proc.poll() is not None
        }
        if dead:
            raise ClusterError(f"Airflow components exited: {dead}\n{self.log_tails()}")

    def log_tails(self, lines: int = 40) -> str:
        parts = []
        for component in self.processes or COMPONENTS:
            path = self.log_path(component)
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"----- {component} ({path}) -----\n{tail}")
        return "\n".join(parts)

    def log_text(self, component: str) -> str:
        path = self.log_path(component)
        return path.read_text(errors="replace") if path.exists() else ""

    @contextmanager
    def dump_logs_on_failure(self) -> Iterator[None]:
        """Print the tail of every component's log (shown in pytest's report) if the block fails."""
        try:
            yield
        except BaseException:
            print(f"\n===== Airflow component logs (tails) =====\n{self.log_tails(80)}", file=sys.stderr)
            raise

    def wait_healthy(self, timeout: float = _START_TIMEOUT_S) -> None:
        """Until ``/api/v2/monitor/health`` reports the database and every job component healthy."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = self.client.http.get("/api/v2/monitor/health")
                last = response.text
                if response.status_code == 200:
                    health = response.json()
                    wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                    if all((health.get(k) or {}).get("status") == "healthy" for k in wanted):
                        return
            except httpx.TransportError as exc:
                last = exc
            time.sleep(1.0)
        raise ClusterError(f"cluster not healthy within {timeout:.0f}s (last: {last})\n{self.log_tails()}")

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for proc in self.processes.values():
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with suppress(ProcessLookupError):  # whatever is left in the group (task processes, workers)
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _celery_env(cluster_id: str, root: Path, db_url: str, broker_url: str) -> dict[str, str]:
    """The settings that make a cluster a CeleryExecutor deployment of its own on a shared broker."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{db_url}",
        # Every broker key (queues, bindings, unacked messages) under this cluster's prefix.
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"amlpipe_{cluster_id}_",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": celery_queue(cluster_id, "default"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(root / "pymodules"), os.environ.get("PYTHONPATH")) if p),
    }


def _drop_broker_keys(broker_url: str, prefix: str) -> None:
    """Delete a finished cluster's keys from the shared broker (Redis)."""
    import redis

    client = redis.Redis.from_url(broker_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _base_env() -> dict[str, str]:
    """The test process's environment minus every Airflow / amlpipe setting the session put there."""
    drop = ("AIRFLOW_HOME", "AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "AMLPIPE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _fill_dags_folder(target: Path, dags: Mapping[str, str] | os.PathLike[str] | str) -> None:
    if isinstance(dags, Mapping):
        target.mkdir(parents=True)
        for relative, text in dags.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    else:
        shutil.copytree(Path(dags), target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


@contextmanager
def airflow_cluster(
    dags: Mapping[str, str] | os.PathLike[str] | str,
    *,
    extra_env: Mapping[str, str] | None = None,
    users: Mapping[str, str] | None = None,
    celery_workers: Sequence[CeleryWorker] = (),
    broker_url: str = REDIS_URL,
    cluster_id: str | None = None,
) -> Iterator[AirflowCluster]:
    """Start a deployment serving ``dags`` (a folder to copy, or relative path -> file text).

    ``extra_env`` is added to every component's environment (task processes inherit it). ``users`` (name ->
    role of Airflow's simple auth manager: ``viewer``, ``user``, ``op``, ``admin``) replaces "everyone is an
    admin" with those users, each with a generated password; ``cluster.client`` is then ``admin``'s.
    ``celery_workers`` switches the executor to Celery (broker ``broker_url``, a Redis URL) and starts
    those workers (components ``celery-<name>``) besides the other components. ``cluster_id`` (default: a
    new one) names the cluster's database, broker keys and queues: a test that writes its DAG files before
    the cluster starts picks it to spell its queues (:func:`celery_queue`).
    """
    root = Path(tempfile.mkdtemp(prefix="amlpipe-cluster-"))
    cluster_id = cluster_id or uuid.uuid4().hex[:10]
    db_name = f"amlpipe_e2e_{cluster_id}"
    port = free_port()
    env = _base_env()
    env.update(
        {
            "AIRFLOW_HOME": str(root / "airflow_home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{port}/execution/",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{_PG_SERVER}/{db_name}",
            "AIRFLOW__API__BASE_URL": f"http://{HOST}:{port}",
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AMLPIPE_STAT_CACHE": str(root / "statcache.sqlite"),
            "AIRFLOW_CONN_AMLPIPE_SAMPLES": json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(SAMPLES)}}),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    passwords = {name: secrets.token_urlsafe(12) for name in users or {}}
    if users:
        root.joinpath("passwords.json").write_text(json.dumps(passwords))
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "False"
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join(f"{n}:{r}" for n, r in users.items())
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(root / "passwords.json")
    if celery_workers:
        env.update(_celery_env(cluster_id, root, f"{_PG_SERVER}/{db_name}", broker_url))
        (root / "pymodules").mkdir()
        (root / "pymodules" / "amlpipe_cluster_host.py").write_text(_HOSTNAME_MODULE)
    env.update(extra_env or {})
    cluster = AirflowCluster(root, port, env, passwords, cluster_id=cluster_id)
    cluster.home.mkdir(parents=True)
    cluster.log_dir.mkdir(parents=True)
    _fill_dags_folder(cluster.dags_folder, dags)
    _admin_sql(f"CREATE DATABASE {db_name}")
    try:
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=env, cwd=root
        )
        if migrate.returncode != 0:
            raise ClusterError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}")
        try:
            cluster.start("api-server", "--host", HOST, "--port", str(port), "--workers", "1")
            # No log-serving sidecars: they listen on every interface, and the API server reads the
            # task and trigger logs straight from this machine's disk anyway.
            cluster.start("scheduler", "--skip-serve-logs")
            cluster.start("dag-processor")
            cluster.start("triggerer", "--skip-serve-logs")
            cluster.wait_healthy()
            for worker in celery_workers:
                cluster.start_worker(worker)
            yield cluster
        finally:
            cluster.client.close()
            cluster.stop()
    finally:
        if celery_workers:
            _drop_broker_keys(broker_url, f"amlpipe_{cluster_id}_")
        _admin_sql(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        shutil.rmtree(root, ignore_errors=True)
