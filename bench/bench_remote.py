"""Remote step overhead: what the remote step base adds over its Batch job's own duration.

Side by side in one process, on the local Batch server (tests/support/batch_server.py, which really runs
each task) with Azurite for Blob, for the same *empty* job (the task only creates its output file):

- **raw SDK**: azure-batch 15 calls a careful script would make: create the job and its task,
  poll ``get_task`` every ``--poll`` seconds until it completes, download the output blob,
  delete the job;
- **step**: an ``AzureBatchStepOperator`` (same command, same poll interval) under ``dag.test()``:
  decide, stage, submit, defer (or poll on the worker), fetch logs, collect, commit, clean up.
  Each run gets new ``step_params`` so it is never reused. Its time is its task instance's
  duration (start to end, deferral included) minus that of an ``EmptyOperator`` task run
  alternately in the same process (Airflow's own cost of running one task).

Reported: medians in seconds, the overhead (step - raw) and the ratio step / raw; the issue's goal
is step <= 1.2 x raw + one poll interval. Run: ``python bench/bench_remote.py [--runs 8] [--poll 0.5]``
(needs ``npm ci`` for Azurite; uses a throw-away SQLite metadata database).
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

POOL = "bench-pool"


def raw_sdk_run(
    endpoint: str, account: str, key: str, container_url: str, signer: Any, poll: float, n: int
) -> tuple[float, float]:
    """One empty job through the SDK directly: its wall time, and the task's own run time on the node."""
    from azure.batch import BatchClient
    from azure.batch import models as bm
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.storage.blob import ContainerClient

    started = time.perf_counter()
    client = BatchClient(endpoint, AzureNamedKeyCredential(account, key))
    job_id = f"raw-{n}-{os.getpid()}"
    client.create_job(bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=POOL)))
    output = bm.OutputFile(
        file_pattern="outputs/out/**/*",
        destination=bm.OutputFileDestination(
            container=bm.OutputFileBlobContainerDestination(container_url=signer.container_url(write=True), path=job_id)
        ),
        upload_options=bm.OutputFileUploadConfiguration(upload_condition="tasksuccess"),
    )
    client.create_task(
        job_id,
        bm.BatchTaskCreateOptions(
            id="step",
            command_line="/bin/sh -c 'mkdir -p outputs/out && exec touch outputs/out/done'",
            output_files=[output],
        ),
    )
    while (task := client.get_task(job_id, "step")).state != "completed":
        time.sleep(poll)
    container = ContainerClient.from_container_url(container_url)
    for blob in container.list_blobs(name_starts_with=f"{job_id}/"):
        container.download_blob(blob.name).readall()
    client.begin_delete_job(job_id, polling_interval=5)
    client.close()
    info = task.execution_info
    return time.perf_counter() - started, (info.end_time - info.start_time).total_seconds()


def ti_seconds(run: Any, task_id: str) -> float:
    """The task instance's own duration (start to end) as the metadata database recorded it."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id, TaskInstance.task_id == task_id
            )
        ).one()
        return (ti.end_date - ti.start_date).total_seconds()


def write_dags(dags: Path, poll: float, deferrable: bool) -> None:
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "bench_remote.py").write_text(
        f"""
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow_provider_amlpipe import AzureBatchStepOperator, Output
with DAG(dag_id="bench_remote", schedule=None):
    AzureBatchStepOperator(
        task_id="empty_job", executable="touch", arguments=["{{outputs.out}}/done"], outputs=[Output("out")],
        step_params={{"n": "{{{{ dag_run.conf['n'] }}}}"}}, compute="batch", pool_id={POOL!r},
        deferrable={deferrable}, poll_interval={poll}, datastore="bench_store",
    )
with DAG(dag_id="bench_empty", schedule=None):
    EmptyOperator(task_id="nothing")
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="amlpipe-bench-remote-") as tmp:
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
        from support.batch_server import running_batch_server

        with running_azurite() as azurite, running_batch_server() as server:
            result = measure(args, work, azurite, server)
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"remote-{result['date']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


def measure(args: argparse.Namespace, work: Path, azurite: str, server: Any) -> dict[str, Any]:
    from _machine import cpu_model
    from azure.batch import BatchClient
    from azure.batch import models as bm
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.storage.blob import BlobServiceClient

    from airflow_provider_amlpipe.data.blob_sas import ContainerSigner

    service = BlobServiceClient.from_connection_string(azurite)
    container = service.create_container("bench")
    signer = ContainerSigner(container)
    endpoint = next(p.split("=", 1)[1] for p in azurite.split(";") if p.startswith("BlobEndpoint="))
    os.environ["AIRFLOW_CONN_BENCH_STORE"] = json.dumps(
        {"conn_type": "amlpipe_azure_blob", "host": endpoint, "login": "devstoreaccount1",
         "password": azurite.split("AccountKey=")[1].split(";")[0], "extra": {"container": "bench"}}
    )  # fmt: skip
    os.environ["AIRFLOW_CONN_BATCH"] = json.dumps(
        {"conn_type": "amlpipe_azure_batch", "host": server.endpoint, "login": server.account_name,
         "password": server.account_key, "extra": {"allow_insecure_loopback": True}}
    )  # fmt: skip
    with BatchClient(server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key)) as client:
        image = bm.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts")
        client.create_pool(
            bm.BatchPoolCreateOptions(
                id=POOL,
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=bm.VirtualMachineConfiguration(
                    image_reference=image, node_agent_sku_id="batch.node.ubuntu 22.04"
                ),
                target_dedicated_nodes=1,
                task_slots_per_node=4,
            )
        )
    sas_url = signer.container_url(read=True, list=True)
    from airflow.dag_processing.dagbag import DagBag

    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "runs": args.runs,
        "poll_interval_s": args.poll,
    }
    n = 0
    for mode, deferrable in (("deferred", True), ("inline", False)):
        write_dags(work / "dags", args.poll, deferrable)
        bag = DagBag(dag_folder=str(work / "dags"))
        assert not bag.import_errors, bag.import_errors
        step_dag, empty_dag = bag.get_dag("bench_remote"), bag.get_dag("bench_empty")
        step_dag.test(run_conf={"n": "warm-up"})
        raws, jobs, steps = [], [], []
        for _ in range(args.runs):
            n += 1
            raw_s, job_s = raw_sdk_run(
                server.endpoint, server.account_name, server.account_key, sas_url, signer, args.poll, n
            )
            raws.append(raw_s)
            jobs.append(job_s)
            run = step_dag.test(run_conf={"n": f"{mode}-{n}"})
            if str(run.state) != "success":
                sys.exit(f"the step's run ended {run.state}")
            steps.append(ti_seconds(run, "empty_job") - ti_seconds(empty_dag.test(), "nothing"))
        raw, step = statistics.median(raws), statistics.median(steps)
        result[mode] = {
            "job_on_node_s_median": round(statistics.median(jobs), 3),
            "raw_sdk_s_median": round(raw, 3),
            "step_s_median": round(step, 3),
            "overhead_s_median": round(step - raw, 3),
            "ratio_step_to_raw": round(step / raw, 3),
            "goal_s": round(1.2 * raw + args.poll, 3),
            "goal_met": step <= 1.2 * raw + args.poll,
        }
    return result


if __name__ == "__main__":
    main()
