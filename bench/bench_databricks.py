"""Databricks benchmarks: which U-SQL engine to choose when, and what the remote step base adds to a run.

Two parts, each side by side in one process run (``--part engines``, ``--part overhead``, default both):

- **engines** (information, no goal): the U-SQL benchmark query of ``bench_usql.py`` on the same generated
  ``--gb`` GB orders CSV, run the two ways a U-SQL step can run on one worker: compiled to DuckDB
  (``run_script``, in a fresh process), and translated to Spark SQL and run by the Databricks runner
  (``databricks/sql_script.py``) on PySpark in local mode, through the same local runner a
  ``compute="local"``, ``engine="spark"`` step uses (a fresh interpreter and JVM each time, as a step starts
  them). Both outputs are compared (rows, doubles to 1e-9 relative); reported: median seconds and the ratio
  Spark / DuckDB. Spark's fixed cost (a JVM, a session) dominates small inputs; its parallel scan helps on
  machines with many cores.
- **overhead**: on the local Databricks server (tests/support/databricks_server.py; each run really executes a
  notebook that writes one file through its ``abfss://`` output URI into Azurite), the same empty run through
  databricks-sdk directly (upload the notebook, ``runs/submit``, poll ``runs/get`` every ``--poll`` seconds,
  ``get-output``, read the output blob, delete the upload) versus a ``DatabricksStepOperator`` under
  ``dag.test()`` (decide, stage, upload, submit, wait on the worker, output, collect, commit, clean up; never
  reused: new ``step_params`` each run), whose time is its task instance's duration minus that of an
  ``EmptyOperator`` run alternately. Goal as for the other remote kinds: step <= 1.2 x raw + one poll interval.

Run: ``python bench/bench_databricks.py [--part engines|overhead] [--gb 1.0] [--runs 5] [--poll 0.5]``
(the overhead part needs ``npm ci`` for Azurite and uses a throw-away SQLite metadata database). Results go to
``bench/results/databricks-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(REPO))

EMPTY_NOTEBOOK = """# Databricks notebook source
dbutils.fs.put(dbutils.widgets.get("out") + "/done", "done", True)
"""


# -- engines ------------------------------------------------------------------------------------------


def spark_run(sql: Path, csv_path: Path, out_path: Path, workdir: Path) -> float:
    """The translated script through the local Databricks runner (a fresh interpreter and JVM); wall seconds."""
    from airflow_provider_amlpipe.databricks import sql_script

    spec = {
        "kind": "python",
        "path": sql_script.__file__,
        "args": ["--sql", str(sql), "--input", f"input={csv_path}", "--output", f"output={out_path}"],
        "workdir": str(workdir),
        "dbfs_root": str(workdir / "dbfs"),
        "env": {},
        "spark_conf": {},
        "timeout": None,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    spec_file = workdir / "spec.json"
    spec_file.write_text(json.dumps(spec))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_amlpipe.databricks.step", str(spec_file)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the Spark run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return elapsed


def engines(args: argparse.Namespace) -> dict[str, Any]:
    import bench_usql

    from airflow_provider_amlpipe.databricks.sql_script import marker
    from airflow_provider_amlpipe.usql import translate_to_spark

    workdir = Path(args.dir or tempfile.mkdtemp(prefix="amlpipe-bench-engines-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data = bench_usql.ensure_data(workdir, int(args.gb * bench_usql.GB))
    bench_usql.warm_page_cache(data.path)
    sql = workdir / "bench.sql"
    params = {"input": marker("input"), "output": marker("output")}
    sql.write_text(translate_to_spark(bench_usql.USQL_SCRIPT, source_name="bench.usql", params=params))
    duck_s, spark_s = [], []
    for n in range(args.runs):
        duck_out, spark_out = workdir / f"duck-{n}.csv", workdir / f"spark-{n}.csv"
        duck_s.append(bench_usql.run_child("compiled", data.path, duck_out, workdir).wall_s)
        spark_s.append(spark_run(sql, data.path, spark_out, workdir / f"spark-wd-{n}"))
        same = bench_usql.compare_outputs(duck_out, spark_out)
        if same.problems:
            sys.exit(f"Spark's output differs from DuckDB's: {same.problems[:5]}")
        duck_out.unlink()
        spark_out.unlink()
    duck, spark = statistics.median(duck_s), statistics.median(spark_s)
    return {
        "input_bytes": data.size_bytes,
        "rows": data.rows,
        "duckdb_s_median": round(duck, 3),
        "spark_local_s_median": round(spark, 3),
        "ratio_spark_to_duckdb": round(spark / duck, 3),
        "duckdb_s": [round(s, 3) for s in duck_s],
        "spark_local_s": [round(s, 3) for s in spark_s],
    }


# -- overhead -----------------------------------------------------------------------------------------


def raw_sdk_run(server: Any, notebook: Path, container: Any, poll: float, n: int) -> float:
    """One empty run through databricks-sdk directly; wall seconds."""
    import base64

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service import jobs
    from databricks.sdk.service.workspace import ImportFormat, Language

    started = time.perf_counter()
    client = WorkspaceClient(host=server.endpoint, token=server.token, auth_type="pat")
    folder = f"/Shared/raw/{n}"
    client.workspace.mkdirs(folder)
    client.workspace.import_(
        f"{folder}/empty", content=base64.b64encode(notebook.read_bytes()).decode(), format=ImportFormat.SOURCE,
        language=Language.PYTHON, overwrite=True,
    )  # fmt: skip
    out = f"abfss://{container.container_name}@devstoreaccount1.dfs.core.windows.net/raw/{n}"
    task = jobs.SubmitTask(
        task_key="t",
        existing_cluster_id="bench-cluster",
        notebook_task=jobs.NotebookTask(notebook_path=f"{folder}/empty", base_parameters={"out": out}),
    )
    run_id = client.jobs.submit(run_name="raw", tasks=[task], idempotency_token=f"raw-{n}-{os.getpid()}").run_id
    while (run := client.jobs.get_run(run_id)).state.life_cycle_state.value not in ("TERMINATED", "INTERNAL_ERROR"):
        time.sleep(poll)
    client.jobs.get_run_output(run.tasks[0].run_id)
    container.download_blob(f"raw/{n}/done").readall()
    client.workspace.delete(folder, recursive=True)
    return time.perf_counter() - started


def overhead(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="amlpipe-bench-databricks-") as tmp:
        work = Path(tmp)
        os.environ.update(
            {
                "AIRFLOW_HOME": str(work / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(work / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work / 'airflow.db'}",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                "AMLPIPE_STAT_CACHE": str(work / "statcache.sqlite"),
            }
        )
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
        from support.azurite_server import running_azurite
        from support.databricks_server import running_databricks_server

        with running_azurite() as azurite, running_databricks_server() as server:
            return measure_overhead(args, work, azurite, server)


def measure_overhead(args: argparse.Namespace, work: Path, azurite: str, server: Any) -> dict[str, Any]:
    from azure.storage.blob import BlobServiceClient
    from bench_remote import ti_seconds

    server.storage_accounts["devstoreaccount1"] = azurite
    server.clusters["bench-cluster"] = "RUNNING"
    container = BlobServiceClient.from_connection_string(azurite).create_container("bench")
    endpoint = next(p.split("=", 1)[1] for p in azurite.split(";") if p.startswith("BlobEndpoint="))
    os.environ["AIRFLOW_CONN_BENCH_STORE"] = json.dumps(
        {"conn_type": "amlpipe_azure_blob", "host": endpoint, "login": "devstoreaccount1",
         "password": azurite.split("AccountKey=")[1].split(";")[0], "extra": {"container": "bench"}}
    )  # fmt: skip
    os.environ["AIRFLOW_CONN_DBX"] = json.dumps(
        {"conn_type": "amlpipe_databricks", "host": server.endpoint, "password": server.token,
         "extra": {"allow_insecure_loopback": True, "cluster_id": "bench-cluster"}}
    )  # fmt: skip
    notebook = work / "empty.py"
    notebook.write_text(EMPTY_NOTEBOOK)
    dags = work / "dags"
    dags.mkdir()
    (dags / "bench_dbx.py").write_text(
        f"""
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow_provider_amlpipe import DatabricksStepOperator, Output
with DAG(dag_id="bench_dbx", schedule=None):
    DatabricksStepOperator(
        task_id="empty_run", notebook_path={str(notebook)!r}, outputs=[Output("out")],
        step_params={{"n": "{{{{ dag_run.conf['n'] }}}}"}}, compute="dbx", deferrable=False,
        poll_interval={args.poll}, datastore="bench_store",
    )
with DAG(dag_id="bench_empty", schedule=None):
    EmptyOperator(task_id="nothing")
"""
    )
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags))
    assert not bag.import_errors, bag.import_errors
    step_dag, empty_dag = bag.get_dag("bench_dbx"), bag.get_dag("bench_empty")
    step_dag.test(run_conf={"n": "warm-up"})
    raw_sdk_run(server, notebook, container, args.poll, 0)
    raws, steps = [], []
    for n in range(1, args.runs + 1):
        raws.append(raw_sdk_run(server, notebook, container, args.poll, n))
        run = step_dag.test(run_conf={"n": str(n)})
        if str(run.state) != "success":
            sys.exit(f"the step's run ended {run.state}")
        steps.append(ti_seconds(run, "empty_run") - ti_seconds(empty_dag.test(), "nothing"))
    raw, step = statistics.median(raws), statistics.median(steps)
    return {
        "poll_interval_s": args.poll,
        "raw_sdk_s_median": round(raw, 3),
        "step_s_median": round(step, 3),
        "overhead_s_median": round(step - raw, 3),
        "ratio_step_to_raw": round(step / raw, 3),
        "goal_s": round(1.2 * raw + args.poll, 3),
        "goal_met": step <= 1.2 * raw + args.poll,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("engines", "overhead", "both"), default="both")
    parser.add_argument("--gb", type=float, default=1.0, help="size of the U-SQL input (engines)")
    parser.add_argument("--dir", help="where the engines part keeps its generated input (reused if there)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    from _machine import cpu_model

    result: dict[str, Any] = {"date": date.today().isoformat(), "cpu": cpu_model(), "nproc": os.cpu_count()}
    if args.part in ("engines", "both"):
        result["engines"] = engines(args)
    if args.part in ("overhead", "both"):
        result["overhead"] = overhead(args)
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"databricks-{result['date']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
