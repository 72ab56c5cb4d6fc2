"""A no-op rerun in a real deployment: ten reused steps against ten tasks that do nothing.

The deployment is the tests' (tests/support/airflow_cluster.py): api-server, scheduler, dag-processor and
triggerer with PostgreSQL metadata, and -- by default -- Airflow's CeleryExecutor with the machine's
Redis as broker and two Celery workers (``--executor local``: the LocalExecutor instead). The steps'
datastore is Azure Blob on Azurite (shared by the workers, as a Celery deployment needs).

Three DAGs of ten chained tasks each, every run triggered through the REST API (a bearer token) and
timed from the trigger call to the moment the API first reports the run ``success`` (polled every
``--poll`` seconds):

- ``steps``: ten ``PythonScriptStepOperator`` steps, each reading the one before; run once untimed
  so that every timed run reuses all ten (checked after each run through their status XComs);
- ``python``: ten ``PythonOperator`` tasks returning ``None``: what any task costs on this
  deployment, a worker round trip included -- the baseline of the goal (steps <= 1.2 x python);
- ``empty``: ten ``EmptyOperator`` tasks, for reference: the scheduler marks them done itself,
  they never reach the executor.

The DAGs alternate (rotating the order every repeat), ``--repeats`` times. Reported: each DAG's
median, min and max seconds and the ratios of the medians. Run: ``python bench/bench_deployment.py
[--repeats 5] [--executor celery|local]`` (needs ``npm ci`` for Azurite, PostgreSQL and Redis).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

STEPS = 10
CONN_ID = "bench_blob"
DAG_IDS = {"steps": "bench_deploy_steps", "python": "bench_deploy_python", "empty": "bench_deploy_empty"}

STEP_SCRIPT = """\
from airflow_provider_amlpipe import runtime
previous = runtime.input_path("previous") if "previous" in runtime.context()["inputs"] else None
text = (previous / "n.txt").read_text() if previous else "0"
(runtime.output_path("n") / "n.txt").write_text(str(int(text) + 1))
"""

DAGS = f"""\
from pathlib import Path

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, chain

from airflow_provider_amlpipe import Output, PythonScriptStepOperator

N = {STEPS}
SCRIPTS = str(Path(__file__).parent / "scripts")


def nothing():
    return None


with DAG(dag_id={DAG_IDS["steps"]!r}, schedule=None, catchup=False):
    previous = None
    for i in range(N):
        step = PythonScriptStepOperator(
            task_id=f"step_{{i}}", source_directory=SCRIPTS, script_name="step.py",
            inputs={{"previous": previous.output}} if previous is not None else None,
            outputs=[Output("n")], datastore={CONN_ID!r},
        )
        previous = step
with DAG(dag_id={DAG_IDS["python"]!r}, schedule=None, catchup=False):
    chain(*[PythonOperator(task_id=f"task_{{i}}", python_callable=nothing) for i in range(N)])
with DAG(dag_id={DAG_IDS["empty"]!r}, schedule=None, catchup=False):
    chain(*[EmptyOperator(task_id=f"task_{{i}}") for i in range(N)])
"""


def timed_run(client: Any, dag_id: str, poll: float) -> tuple[str, float]:
    """Trigger ``dag_id`` over REST; its run id and the seconds until the API reports it ``success``."""
    started = time.perf_counter()
    run_id = client.trigger(dag_id)
    while True:
        state = client.dag_run(dag_id, run_id)["state"]
        if state == "success":
            return run_id, time.perf_counter() - started
        if state == "failed":
            raise RuntimeError(f"{dag_id} run {run_id} failed: {client.task_states(dag_id, run_id)}")
        if time.perf_counter() - started > 600:
            raise RuntimeError(f"{dag_id} run {run_id} not done after 600 s: {client.task_states(dag_id, run_id)}")
        time.sleep(poll)


def task_seconds(client: Any, dag_id: str, run_id: str) -> float:
    """The sum of the run's task instances' own durations (start to end, as Airflow recorded them)."""
    total = 0.0
    for ti in client.task_instances(dag_id, run_id).values():
        if ti.get("start_date") and ti.get("end_date"):
            start = datetime.fromisoformat(ti["start_date"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00"))
            total += (end - start).total_seconds()
    return total


def reused_steps(client: Any, run_id: str) -> int:
    dag_id = DAG_IDS["steps"]
    return sum(bool(client.xcom(dag_id, run_id, f"step_{i}", "amlpipe_status")["reused"]) for i in range(STEPS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--executor", choices=("celery", "local"), default="celery")
    parser.add_argument("--tag", default="", help="suffix of the results file name")
    args = parser.parse_args()
    result = measure(args)
    print(json.dumps(result["summary"], indent=2))
    name = f"deployment-{result['date']}{'-' + args.tag if args.tag else ''}.json"
    out = Path(__file__).parent / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from _machine import cpu_model, host_cpu
    from azure.storage.blob import BlobServiceClient
    from support.airflow_cluster import CeleryWorker, airflow_cluster
    from support.azurite_server import ACCOUNT_KEY, ACCOUNT_NAME, running_azurite

    started = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="amlpipe-bench-deploy-") as tmp, running_azurite() as azurite:
        container = f"bench-{uuid.uuid4().hex[:12]}"
        BlobServiceClient.from_connection_string(azurite).create_container(container)
        endpoint = next(p.split("=", 1)[1] for p in azurite.split(";") if p.startswith("BlobEndpoint="))
        blob = {
            "conn_type": "amlpipe_azure_blob",
            "host": endpoint,
            "login": ACCOUNT_NAME,
            "password": ACCOUNT_KEY,
            "extra": {"container": container},
        }
        dags = Path(tmp) / "dags"
        (dags / "scripts").mkdir(parents=True)
        (dags / "scripts" / "step.py").write_text(STEP_SCRIPT)
        (dags / "bench_deployment.py").write_text(DAGS)
        env = {f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(blob), "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
        workers = [CeleryWorker("worker-a"), CeleryWorker("worker-b")] if args.executor == "celery" else []
        with airflow_cluster(dags, extra_env=env, users={"admin": "admin"}, celery_workers=workers) as cluster:
            client = cluster.client
            for dag_id in DAG_IDS.values():
                client.wait_for_dag(dag_id)
                client.unpause(dag_id)
            # Untimed: the steps' first run executes them; one run of each warms the deployment.
            for dag_id in DAG_IDS.values():
                timed_run(client, dag_id, args.poll)
            times: dict[str, list[float]] = {name: [] for name in DAG_IDS}
            in_tasks: dict[str, list[float]] = {name: [] for name in DAG_IDS}
            orders = []
            busy0, steal0 = host_cpu()
            for repeat in range(args.repeats):
                names = list(DAG_IDS)
                order = names[repeat % len(names) :] + names[: repeat % len(names)]
                orders.append(order)
                for name in order:
                    run_id, seconds = timed_run(client, DAG_IDS[name], args.poll)
                    times[name].append(seconds)
                    in_tasks[name].append(task_seconds(client, DAG_IDS[name], run_id))
                    if name == "steps":
                        reused = reused_steps(client, run_id)
                        if reused != STEPS:
                            raise RuntimeError(f"only {reused} of {STEPS} steps were reused in {run_id}")
                    print(f"repeat {repeat}: {name} {seconds:.2f} s ({in_tasks[name][-1]:.2f} s in tasks)", flush=True)
            busy1, steal1 = host_cpu()
    medians = {name: statistics.median(values) for name, values in times.items()}
    summary = {
        "executor": args.executor,
        "median_s": {name: round(value, 3) for name, value in medians.items()},
        "min_s": {name: round(min(values), 3) for name, values in times.items()},
        "max_s": {name: round(max(values), 3) for name, values in times.items()},
        "ratio_steps_to_python": round(medians["steps"] / medians["python"], 3),
        # Of each run, the time spent inside its ten task instances (the rest: scheduling, queueing, polling).
        "median_in_tasks_s": {name: round(statistics.median(values), 3) for name, values in in_tasks.items()},
        "ratio_steps_to_empty": round(medians["steps"] / medians["empty"], 3),
        "goal": "steps <= 1.2 x python (ten tasks that run on a worker)",
    }
    wall = sum(sum(values) for values in times.values())
    return {
        "date": started.date().isoformat(),  # the day the run started (it names the results file)
        "started_utc": started.isoformat(timespec="seconds"),
        "summary": summary,
        "runs_s": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "in_tasks_s": {name: [round(v, 3) for v in values] for name, values in in_tasks.items()},
        "orders": orders,
        "settings": {"repeats": args.repeats, "poll_s": args.poll, "steps": STEPS, "workers": len(workers)},
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "python": sys.version.split()[0],
            "machine_cpu_busy_share": round((busy1 - busy0) / (wall * (os.cpu_count() or 1)), 3) if wall else None,
            "cpu_stolen_s": round(steal1 - steal0, 2),
        },
    }


if __name__ == "__main__":
    main()
