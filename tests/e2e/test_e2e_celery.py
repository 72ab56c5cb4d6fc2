"""Many workers: a real CeleryExecutor deployment (Redis broker, PostgreSQL metadata and results) with
two Celery workers and the Azure Blob datastore on Azurite.

Each worker consumes a queue of its own (``a`` or ``b``, to pin a task to it) and a ``shared`` one. A
worker reports its name as its task instances' ``hostname``, so the tests see where each try ran.
Asserted, through the REST API with a bearer token: a step run on worker A is reused on worker B;
two runs reaching one step on both workers at once execute it once; a worker SIGKILLed with its
whole process tree mid-step has its lease taken over and the step completes on the other worker,
leaving only the complete version. One deployment serves the module; the kill test comes last (it
leaves one worker).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from support.airflow_cluster import AirflowCluster, CeleryWorker, airflow_cluster, celery_queue
from support.azurite_server import ACCOUNT_KEY, ACCOUNT_NAME

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.registry import DatasetRegistry
from airflow_provider_amlpipe.data.sequence import Sequence
from airflow_provider_amlpipe.hashing import Hasher, StatCache
from airflow_provider_amlpipe.hooks.datastore import datastore_from_connection
from airflow_provider_amlpipe.reuse.store import ReuseStore

pytestmark = [pytest.mark.slow, pytest.mark.azurite]

CONN_ID = "celery_blob"
WORKERS = ("worker-a", "worker-b")
#: How long a step that waits for the test (a gate file, or being killed) waits at most.
GATE_S = 300
WORKER_OF = {"celery_slow_on_a": "worker-a", "celery_slow_on_b": "worker-b"}

# Every script appends one line per execution to a counter file (the worker it ran on), so a test
# counts executions without trusting the step's own records.
STAMP_SCRIPT = """\
import os
from pathlib import Path
from airflow_provider_amlpipe import runtime
Path(os.environ["AMLPIPE_TEST_COUNTERS"], "stamp").open("a").write(os.environ["AMLPIPE_CLUSTER_WORKER"] + "\\n")
(runtime.output_path("stamp") / "stamp.txt").write_text("stamped")
"""

# Runs until the test opens its gate: the test sees the other run waiting on it before it may end.
SLOW_SCRIPT = f"""\
import os, time
from pathlib import Path
from airflow_provider_amlpipe import runtime
counters = Path(os.environ["AMLPIPE_TEST_COUNTERS"])
(counters / "slow").open("a").write(os.environ["AMLPIPE_CLUSTER_WORKER"] + "\\n")
deadline = time.monotonic() + {GATE_S}
while not (counters / "slow_gate").exists() and time.monotonic() < deadline:
    time.sleep(0.1)
(runtime.output_path("slow") / "done.txt").write_text("done")
"""

# The first execution writes half its output, says it has started, and waits to be killed; the
# retry's execution runs straight through.
TAKEOVER_SCRIPT = f"""\
import os, time
from pathlib import Path
from airflow_provider_amlpipe import runtime
counter = Path(os.environ["AMLPIPE_TEST_COUNTERS"], "takeover")
first = not counter.exists()
out = runtime.output_path("parts")
(out / "part1.txt").write_text("first half")
counter.open("a").write(os.environ["AMLPIPE_CLUSTER_WORKER"] + "\\n")
if first:
    time.sleep({GATE_S})
(out / "part2.txt").write_text("second half")
"""

DAGS = """\
from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import Output, PythonScriptStepOperator

SCRIPTS = Path(__file__).parent / "scripts"
QUEUES = {queues!r}


def step(dag_id, script, output, queue, **kwargs):
    # The same step (code, output dataset) in several DAGs: one fingerprint, whichever DAG runs it.
    with DAG(dag_id=dag_id, schedule=None, catchup=False, max_active_runs=2):
        PythonScriptStepOperator(
            task_id=output,
            source_directory=str(SCRIPTS),
            script_name=script,
            outputs=[Output(output, register_as=f"celery_{{output}}")],
            datastore={conn_id!r},
            queue=QUEUES[queue],
            poll_interval=1,
            **kwargs,
        )


for worker in ("a", "b"):
    step(f"celery_stamp_on_{{worker}}", "stamp.py", "stamp", worker)
    # The waiting run defers at once: the test sees it "deferred" before it lets the step end.
    step(f"celery_slow_on_{{worker}}", "slow.py", "slow", worker, wait_before_defer=0)
step(
    "celery_takeover", "takeover.py", "parts", "shared",
    retries=1, retry_delay=timedelta(seconds=1), lease_ttl=5,
)
"""


@pytest.fixture(scope="module")
def counters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("celery_counters")


@pytest.fixture(scope="module")
def blob(azurite_connection_string: str) -> dict[str, Any]:
    """A new Azurite container: the ``celery_blob`` connection's fields."""
    container = f"celery-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite_connection_string).create_container(container)
    endpoint = next(p.split("=", 1)[1] for p in azurite_connection_string.split(";") if p.startswith("BlobEndpoint="))
    return {
        "conn_type": "amlpipe_azure_blob",
        "host": endpoint,
        "login": ACCOUNT_NAME,
        "password": ACCOUNT_KEY,
        "extra": {"container": container},
    }


@pytest.fixture(scope="module")
def store(blob: dict[str, Any]) -> Datastore:
    """The deployment's datastore, read directly by the tests."""
    return datastore_from_connection(
        CONN_ID, blob["conn_type"], blob["host"], blob["login"], blob["password"], blob["extra"]
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, counters: Path, blob: dict[str, Any]) -> Iterator[AirflowCluster]:
    cluster_id = uuid.uuid4().hex[:10]
    queues = {name: celery_queue(cluster_id, name) for name in ("a", "b", "shared")}
    dags = tmp_path_factory.mktemp("celery_dags")
    (dags / "scripts").mkdir()
    (dags / "scripts" / "stamp.py").write_text(STAMP_SCRIPT)
    (dags / "scripts" / "slow.py").write_text(SLOW_SCRIPT)
    (dags / "scripts" / "takeover.py").write_text(TAKEOVER_SCRIPT)
    (dags / "celery_steps.py").write_text(DAGS.format(queues=queues, conn_id=CONN_ID))
    env = {
        "AMLPIPE_TEST_COUNTERS": str(counters),
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(blob),
        # A task whose worker vanished is failed (and retried) after 60 s without a heartbeat, not 5 min;
        # not much less, or a live task on a loaded 2-core machine could be failed for late heartbeats.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    }
    workers = [CeleryWorker("worker-a", ("a", "shared")), CeleryWorker("worker-b", ("b", "shared"))]
    with airflow_cluster(
        dags, extra_env=env, users={"admin": "admin"}, celery_workers=workers, cluster_id=cluster_id
    ) as running:
        yield running


def executions(counters: Path, name: str) -> list[str]:
    """The workers that executed the script ``name``, in order."""
    path = counters / name
    return path.read_text().split() if path.exists() else []


def run_to_success(cluster: AirflowCluster, dag_id: str) -> str:
    client = cluster.client
    client.wait_for_dag(dag_id)
    client.unpause(dag_id)
    run_id = client.trigger(dag_id)
    assert client.wait_for_run(dag_id, run_id)["state"] == "success", client.task_states(dag_id, run_id)
    return run_id


def test_a_step_run_on_worker_a_is_reused_on_worker_b(cluster: AirflowCluster, counters: Path) -> None:
    client = cluster.client
    with cluster.dump_logs_on_failure():
        first = run_to_success(cluster, "celery_stamp_on_a")
        second = run_to_success(cluster, "celery_stamp_on_b")

        ran_on = client.task_instances("celery_stamp_on_a", first)["stamp"]["hostname"]
        reused_on = client.task_instances("celery_stamp_on_b", second)["stamp"]["hostname"]
        assert (ran_on, reused_on) == WORKERS
        assert executions(counters, "stamp") == ["worker-a"]

        ran = client.xcom("celery_stamp_on_a", first, "stamp", "amlpipe_status")
        reused = client.xcom("celery_stamp_on_b", second, "stamp", "amlpipe_status")
        assert ran["reused"] is False and reused["reused"] is True
        assert reused["fingerprint"] == ran["fingerprint"]
        assert reused["producer"]["dag_id"] == "celery_stamp_on_a" and reused["producer"]["run_id"] == first
        log = client.task_log("celery_stamp_on_b", second, "stamp")
        assert "REUSED" in log and first in log, log


def test_two_runs_on_two_workers_execute_one_step_once(cluster: AirflowCluster, counters: Path) -> None:
    client = cluster.client
    dags = ("celery_slow_on_a", "celery_slow_on_b")
    with cluster.dump_logs_on_failure():
        for dag_id in dags:
            client.wait_for_dag(dag_id)
            client.unpause(dag_id)
        run_ids = {dag_id: client.trigger(dag_id) for dag_id in dags}
        # One run executes the step (it holds it open); the other finds it running and defers on it.
        deadline = time.monotonic() + 180
        while True:
            ran = executions(counters, "slow")
            states = {dag_id: client.task_states(dag_id, run_id).get("slow") for dag_id, run_id in run_ids.items()}
            if len(ran) == 1 and [s for d, s in states.items() if WORKER_OF[d] != ran[0]] == ["deferred"]:
                break
            failed = [d for d, state in states.items() if state == "failed"]
            logs = "\n".join(f"--- {d}:\n{client.task_log(d, run_ids[d], 'slow')[-4000:]}" for d in failed)
            assert not failed and time.monotonic() < deadline, (ran, states, logs)
            cluster.check_alive()
            time.sleep(0.3)
        (counters / "slow_gate").touch()
        for dag_id, run_id in run_ids.items():
            assert client.wait_for_run(dag_id, run_id)["state"] == "success", client.task_states(dag_id, run_id)

        assert len(executions(counters, "slow")) == 1  # the body ran once, on one of the workers
        tis = {dag_id: client.task_instances(dag_id, run_id)["slow"] for dag_id, run_id in run_ids.items()}
        assert {ti["hostname"] for ti in tis.values()} == set(WORKERS)
        status = {dag_id: client.xcom(dag_id, run_id, "slow", "amlpipe_status") for dag_id, run_id in run_ids.items()}
        [producer] = [dag_id for dag_id in dags if not status[dag_id]["reused"]]
        [waiter] = [dag_id for dag_id in dags if status[dag_id]["reused"]]
        assert executions(counters, "slow") == [tis[producer]["hostname"]]
        assert status[waiter]["producer"]["run_id"] == run_ids[producer]
        assert status[waiter]["fingerprint"] == status[producer]["fingerprint"]
        # The waiter met the running step (its lease), waited in the triggerer, and reused its result.
        log = client.task_log(waiter, run_ids[waiter], "slow")
        assert "is running now" in log and "waiting for it" in log, log
        assert "The identical step we waited for ended (committed)" in log and "REUSED" in log, log


def test_a_killed_worker_s_step_is_taken_over_and_completes_on_the_other(
    cluster: AirflowCluster, counters: Path, store: Datastore, tmp_path: Path
) -> None:
    client = cluster.client
    dag_id = "celery_takeover"
    with cluster.dump_logs_on_failure():
        client.wait_for_dag(dag_id)
        client.unpause(dag_id)
        run_id = client.trigger(dag_id)
        deadline = time.monotonic() + 120
        while not executions(counters, "takeover"):  # the step has started (and written half its output)
            assert time.monotonic() < deadline, client.task_states(dag_id, run_id)
            cluster.check_alive()
            time.sleep(0.2)
        [victim] = executions(counters, "takeover")
        assert client.task_instances(dag_id, run_id)["parts"]["hostname"] == victim
        killed = cluster.kill_tree(f"celery-{victim}")
        assert len(killed) >= 4  # the worker, its pool process, the task process, the step's script

        finished = client.wait_for_run(dag_id, run_id, timeout=180)
        assert finished["state"] == "success", client.task_states(dag_id, run_id)
        [survivor] = [w for w in WORKERS if w != victim]
        ti = client.task_instances(dag_id, run_id)["parts"]
        assert ti["try_number"] == 2 and ti["hostname"] == survivor
        assert executions(counters, "takeover") == [victim, survivor]

        status = client.xcom(dag_id, run_id, "parts", "amlpipe_status")
        assert status["reused"] is False and status["producer"]["try_number"] == 2
        # The killed try's lease was taken over by the retry: two leases, two owners.
        fingerprint = status["fingerprint"]
        leases = Sequence(store, f"reuse/leases/{fingerprint}")
        owners = [leases.get(number)["owner"] for number in leases.numbers()]
        assert len(owners) == 2 and owners[0] != owners[1], owners
        assert ReuseStore(store).pending(fingerprint) == []  # no commit left half done
        # Only the complete version exists, and it verifies against its manifest.
        registry = DatasetRegistry(store)
        assert [v["version"] for v in registry.list_versions("celery_parts")] == [1]
        ref = registry.get("celery_parts")
        manifest = objects.verify(store, ref.digest, Hasher(StatCache(tmp_path / "stat.sqlite")))
        assert sorted(f.path for f in manifest.files) == ["part1.txt", "part2.txt"]
        assert store.read_bytes(f"{ref.path}/part2.txt") == b"second half"
