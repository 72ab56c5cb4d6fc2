"""Benchmark what a reused step costs inside Airflow: a 10-step DAG rerun under ``airflow dags test``.

Usage::

    python bench/bench_dag_overhead.py [--repeats 5] [--dir D] [--keep]

Three DAGs of ten tasks in a chain, in a throw-away Airflow home on SQLite:

* ``bench_steps``: ten ``PythonScriptStepOperator`` steps, each with one output that the next
  step takes as its input (the default datastore, ``amlpipe_default``, left undefined as in most
  deployments). A first, untimed run executes them; every timed run reuses all ten;
* ``bench_tasks``: ten ``@task`` functions returning ``None`` -- the cheapest task that runs code;
* ``bench_empty``: ten ``EmptyOperator`` -- the scheduler marks them done without running anything.

Each timed run is one ``airflow dags test <dag>`` process (alternating order between repetitions).
Reported: the process's wall time (the "whole rerun"), the DAG run's own duration, and each task
instance's duration from its recorded start and end dates (the first task of each run apart: it
also pays the process's start of the in-process execution API). The ratios the issue asks for:
per-step task time ÷ ``@task`` task time, and whole rerun ÷ the ``EmptyOperator`` DAG's. Every timed
run of ``bench_steps`` is checked: all ten tasks succeeded and every ``amlpipe_status`` says reused.
Results: ``bench/results/dag-overhead-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _machine import cpu_model, host_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
STEPS = 10
DAGS = ("bench_steps", "bench_tasks", "bench_empty")
PREFIX = {"bench_steps": "step", "bench_tasks": "task", "bench_empty": "empty"}

STEP_SCRIPT = """\
import argparse
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--out")
parser.add_argument("--prev")
args = parser.parse_args()
Path(args.out, "part.txt").write_text((Path(args.prev, "part.txt").read_text() if args.prev else "") + "x")
"""

DAG_FILES = {
    "bench_steps": f"""
        from pathlib import Path

        from airflow.sdk import DAG

        from airflow_provider_amlpipe import Output, PythonScriptStepOperator

        with DAG(dag_id="bench_steps", schedule=None, catchup=False):
            previous = None
            for i in range({STEPS}):
                step = PythonScriptStepOperator(
                    task_id=f"step{{i}}",
                    source_directory=str(Path(__file__).parent / "step_code"),
                    script_name="step.py",
                    arguments=["--out", "{{outputs.out}}"] + (["--prev", "{{inputs.prev}}"] if previous else []),
                    inputs={{"prev": previous.output}} if previous else {{}},
                    outputs=[Output("out")],
                )
                previous = step
    """,
    "bench_tasks": f"""
        from airflow.sdk import DAG, chain, task

        @task
        def noop() -> None:
            return None

        with DAG(dag_id="bench_tasks", schedule=None, catchup=False):
            chain(*[noop.override(task_id=f"task{{i}}")() for i in range({STEPS})])
    """,
    "bench_empty": f"""
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG, chain

        with DAG(dag_id="bench_empty", schedule=None, catchup=False):
            chain(*[EmptyOperator(task_id=f"empty{{i}}") for i in range({STEPS})])
    """,
}


def environment(work: Path) -> dict[str, str]:
    """A clean Airflow environment in ``work`` (none of the caller's connections or settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AMLPIPE_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(work / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(work / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AMLPIPE_STAT_CACHE": str(work / "statcache.sqlite"),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }
    )
    return env


def prepare(work: Path) -> dict[str, str]:
    """DAG files, step code and a migrated SQLite metadata database."""
    (work / "dags" / "step_code").mkdir(parents=True, exist_ok=True)
    (work / "dags" / "step_code" / "step.py").write_text(STEP_SCRIPT)
    for dag_id, body in DAG_FILES.items():
        (work / "dags" / f"{dag_id}.py").write_text(textwrap.dedent(body))
    env = environment(work)
    if not (work / "home" / "airflow.db").exists():
        airflow(env, "db", "migrate")
    return env


def airflow(env: dict[str, str], *args: str) -> float:
    """Run the ``airflow`` CLI of this interpreter; its wall seconds. Fails loudly."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall


def _when(value: str | None) -> datetime:
    if value is None:
        raise SystemExit("a task instance without a start or end date")
    return datetime.fromisoformat(value)


def last_run(work: Path, dag_id: str) -> dict[str, Any]:
    """The newest run of ``dag_id``: its duration, each task's state and duration, steps' statuses."""
    with sqlite3.connect(work / "home" / "airflow.db") as db:
        run_id, state, start, end = db.execute(
            "SELECT run_id, state, start_date, end_date FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchone()
        tis = db.execute(
            "SELECT task_id, state, start_date, end_date FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        ).fetchall()
        statuses = {
            task_id: json.loads(value)
            for task_id, value in db.execute(
                "SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = 'amlpipe_status'",
                (dag_id, run_id),
            )
        }
    if state != "success" or len(tis) != STEPS or any(s != "success" for _, s, _, _ in tis):
        raise SystemExit(f"{dag_id} run {run_id} did not succeed: {state}, {tis}")
    durations = {
        task_id: (_when(e) - _when(s)).total_seconds() for task_id, _, s, e in tis if s is not None and e is not None
    }
    return {
        "run_id": run_id,
        "dag_run_s": (_when(end) - _when(start)).total_seconds(),
        "task_s": durations,
        "statuses": statuses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="work dir (default: a new temp dir); refused inside the repo")
    parser.add_argument("--keep", action="store_true", help="keep the Airflow home for a later run")
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    work: Path = (args.dir or Path(tempfile.mkdtemp(prefix="amlpipe-bench-dag-"))).resolve()
    if work == REPO_ROOT or REPO_ROOT in work.parents:
        print(f"refusing to make an Airflow home inside the repository: {work}")
        return 2
    try:
        env = prepare(work)
        first = airflow(env, "dags", "test", "bench_steps")  # executes the ten steps (untimed)
        first_run = last_run(work, "bench_steps")
        print(f"first run of bench_steps (all ten execute): {first:.2f} s")
        walls: dict[str, list[float]] = {d: [] for d in DAGS}
        runs: dict[str, list[dict[str, Any]]] = {d: [] for d in DAGS}
        other: dict[str, list[float]] = {d: [] for d in DAGS}
        for rep in range(args.repeats):
            for dag_id in DAGS if rep % 2 == 0 else tuple(reversed(DAGS)):
                busy0, _ = host_cpu()
                walls[dag_id].append(airflow(env, "dags", "test", dag_id))
                busy1, _ = host_cpu()
                other[dag_id].append(busy1 - busy0)
                run = last_run(work, dag_id)
                if dag_id == "bench_steps":
                    not_reused = [t for t in run["task_s"] if not run["statuses"].get(t, {}).get("reused")]
                    if not_reused:
                        raise SystemExit(f"steps not reused in a rerun: {not_reused}")
                runs[dag_id].append(run)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    results: dict[str, Any] = {}
    for dag_id in DAGS:
        # The first task of each `dags test` run also pays the process's one-time start of the in-process
        # execution API (seconds): reported apart, not in the per-task figures.
        firsts = [run["task_s"][f"{PREFIX[dag_id]}0"] for run in runs[dag_id]]
        tasks = [d for run in runs[dag_id] for t, d in run["task_s"].items() if t != f"{PREFIX[dag_id]}0"]
        results[dag_id] = {
            "runs_task_s": [run["task_s"] for run in runs[dag_id]],
            "first_task_median_s": round(statistics.median(firsts), 3),
            "process_s": [round(x, 3) for x in walls[dag_id]],
            "process_median_s": round(statistics.median(walls[dag_id]), 3),
            "dag_run_median_s": round(statistics.median(r["dag_run_s"] for r in runs[dag_id]), 3),
            "task_median_s": round(statistics.median(tasks), 4) if tasks else None,
            "task_mean_s": round(statistics.fmean(tasks), 4) if tasks else None,
            "tasks_timed": len(tasks),
            "machine_cpu_s": [round(x, 1) for x in other[dag_id]],
        }
    steps, tasks, empty = (results[d] for d in DAGS)
    ratios = {
        "step_task_vs_task_median": round(steps["task_median_s"] / tasks["task_median_s"], 3),
        "step_task_vs_task_mean": round(steps["task_mean_s"] / tasks["task_mean_s"], 3),
        "steps_rerun_vs_empty_process": round(steps["process_median_s"] / empty["process_median_s"], 3),
        "steps_rerun_vs_tasks_process": round(steps["process_median_s"] / tasks["process_median_s"], 3),
        "steps_rerun_vs_empty_dag_run": round(steps["dag_run_median_s"] / empty["dag_run_median_s"], 3),
    }
    print(
        f"\n{'DAG (10 tasks)':<14}{'process s':>11}{'dag run s':>11}{'first task s':>14}"
        f"{'task median s':>15}{'task mean s':>13}"
    )
    for dag_id in DAGS:
        r = results[dag_id]
        task_median = "-" if r["task_median_s"] is None else f"{r['task_median_s']:.4f}"
        task_mean = "-" if r["task_mean_s"] is None else f"{r['task_mean_s']:.4f}"
        print(
            f"{dag_id:<14}{r['process_median_s']:>11.3f}{r['dag_run_median_s']:>11.3f}"
            f"{r['first_task_median_s']:>14.3f}{task_median:>15}{task_mean:>13}"
        )
    print()
    for name, value in ratios.items():
        print(f"{name:<34}{value:>8.3f}")
    now = datetime.now(timezone.utc)
    payload = {
        "benchmark": "dag-overhead",
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/bench_dag_overhead.py", *(sys.argv[1:] if argv is None else argv)]),
        "repeats": args.repeats,
        "machine": {"nproc": os.cpu_count(), "cpu_model": cpu_model(), "python": platform.python_version()},
        "first_run_s": round(first, 3),
        "first_run_task_s": first_run["task_s"],
        "results": results,
        "ratios": ratios,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"dag-overhead-{now.date().isoformat()}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
