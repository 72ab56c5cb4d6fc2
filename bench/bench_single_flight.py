"""Single flight: what a duplicate run pays while an identical step runs elsewhere.

Two ``airflow dags test`` processes (a throw-away PostgreSQL metadata database) run the same DAG
run conf at once: a step whose script waits for a go file, then works ``--step`` seconds (0.5 s).
The first holds the step's lease; the second finds it running and waits. When the second has
logged that it waits, the go file is created (``t0``). Reported, per round and as medians:

- holder: ``t0`` to the holder task's end (the step's own duration, commit included);
- waiter: ``t0`` to the waiting task's end (it then reuses the holder's outputs);
- ratio waiter / holder (goal <= 1.5 for a 0.5 s step), and the waiter's extra seconds.

Side by side: ``wait_before_defer=15`` (wait on the worker, the default) and ``wait_before_defer=0``
(defer at once: the triggerer round trip, as before). Run:
``python bench/bench_single_flight.py [--rounds 5] [--step 0.5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

PG_SERVER = os.environ.get("AMLPIPE_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
SCRIPT = """\
import os, sys, time
from pathlib import Path
go = Path(os.environ["BENCH_GO"])
while not go.exists():
    time.sleep(0.01)
time.sleep(float(os.environ["BENCH_STEP"]))
Path(sys.argv[1], "result.txt").write_text("done")
"""


def admin_sql(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_SERVER.replace("postgresql+psycopg2://", "postgresql://") + "/postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def task_end(dag_id: str, run_marker: str, env: dict[str, str]) -> dict[str, float]:
    """End times (epoch seconds) of the step's task in the runs whose conf carries ``run_marker``."""
    code = f"""
import json
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
from sqlalchemy import select
with create_session() as s:
    rows = s.execute(select(DagRun.run_id, DagRun.conf, TaskInstance.end_date).join(
        TaskInstance, (TaskInstance.run_id == DagRun.run_id) & (TaskInstance.dag_id == DagRun.dag_id)
    ).where(DagRun.dag_id == {dag_id!r}, TaskInstance.task_id == "step")).all()
print(json.dumps({{r: e.timestamp() for r, c, e in rows if (c or {{}}).get("n") == {run_marker!r} and e}}))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return {k: float(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def one_round(dag_id: str, env: dict[str, str], work: Path, step: float, n: str) -> dict[str, float]:
    go = work / f"go-{n}"
    run_env = {**env, "BENCH_GO": str(go), "BENCH_STEP": str(step)}
    conf = json.dumps({"n": n})
    logs = [work / f"{n}-{i}.log" for i in range(2)]
    holder = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id, "-c", conf],
        env=run_env,
        stdout=logs[0].open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while "RUNNING: fingerprint" not in logs[0].read_text(errors="replace"):
        if time.monotonic() > deadline or holder.poll() is not None:
            sys.exit(f"the holder never started its step:\n{logs[0].read_text()[-3000:]}")
        time.sleep(0.05)
    waiter = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id, "-c", conf],
        env=run_env,
        stdout=logs[1].open("wb"),
        stderr=subprocess.STDOUT,
    )
    while "is running now" not in logs[1].read_text(errors="replace"):
        if time.monotonic() > deadline or waiter.poll() is not None:
            sys.exit(f"the waiter never waited:\n{logs[1].read_text()[-3000:]}")
        time.sleep(0.05)
    t0 = time.time()
    go.touch()
    if holder.wait(timeout=300) or waiter.wait(timeout=300):
        sys.exit(f"a run failed:\n{logs[0].read_text()[-2000:]}\n{logs[1].read_text()[-2000:]}")
    if "REUSED: fingerprint" not in logs[1].read_text(errors="replace"):
        sys.exit("the waiting run did not reuse the holder's outputs")
    ends = sorted(task_end(dag_id, n, env).values())
    if len(ends) != 2:
        sys.exit(f"expected two task instances, found {len(ends)}")
    return {"holder_s": ends[0] - t0, "waiter_s": ends[1] - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--step", type=float, default=0.5)
    args = parser.parse_args()
    from _machine import cpu_model

    database = f"amlpipe_bench_{uuid.uuid4().hex[:10]}"
    admin_sql(f"CREATE DATABASE {database}")
    try:
        with tempfile.TemporaryDirectory(prefix="amlpipe-bench-sf-") as tmp:
            work = Path(tmp)
            src = work / "src"
            src.mkdir()
            (src / "step.py").write_text(SCRIPT)
            dags = work / "dags"
            dags.mkdir()
            env = {
                **os.environ,
                "AIRFLOW_HOME": str(work / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{PG_SERVER}/{database}",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AMLPIPE_STAT_CACHE": str(work / "statcache.sqlite"),
                "AIRFLOW_CONN_BENCH_STORE": json.dumps(
                    {"conn_type": "amlpipe_local", "extra": {"path": str(work / "store")}}
                ),
            }
            subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
            result: dict[str, Any] = {
                "date": date.today().isoformat(),
                "cpu": cpu_model(),
                "nproc": os.cpu_count(),
                "rounds": args.rounds,
                "step_s": args.step,
            }
            for mode, wait in (("wait_on_worker", 15.0), ("defer_at_once", 0.0)):
                dag_id = f"bench_sf_{mode}"
                (dags / f"{dag_id}.py").write_text(
                    f"""
from airflow.sdk import DAG
from airflow_provider_amlpipe import Output, PythonScriptStepOperator
with DAG(dag_id={dag_id!r}, schedule=None, max_active_runs=4):
    PythonScriptStepOperator(
        task_id="step", source_directory={str(src)!r}, script_name="step.py", arguments=["{{outputs.out}}"],
        outputs=[Output("out")], step_params={{"n": "{{{{ dag_run.conf['n'] }}}}"}}, datastore="bench_store",
        poll_interval=1.0, wait_before_defer={wait},
    )
"""
                )
                subprocess.run(
                    [sys.executable, "-m", "airflow", "dags", "reserialize"], env=env, check=True, capture_output=True
                )
                rounds = [
                    one_round(dag_id, env, work, args.step, f"{mode}-{i}-{datetime.now().timestamp()}")
                    for i in range(args.rounds)
                ]
                holder = statistics.median(r["holder_s"] for r in rounds)
                waiter = statistics.median(r["waiter_s"] for r in rounds)
                result[mode] = {
                    "wait_before_defer_s": wait,
                    "holder_s_median": round(holder, 3),
                    "waiter_s_median": round(waiter, 3),
                    "waiter_extra_s_median": round(statistics.median(r["waiter_s"] - r["holder_s"] for r in rounds), 3),
                    "ratio_waiter_to_holder": round(waiter / holder, 3),
                    "rounds": [{k: round(v, 3) for k, v in r.items()} for r in rounds],
                }
    finally:
        admin_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"single-flight-{result['date']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
