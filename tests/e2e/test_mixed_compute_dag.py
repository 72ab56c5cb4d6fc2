"""One DAG, three computes: a local Python step, an Azure Batch step and a Python step on an Azure
VM, run by `airflow dags test` against the local Batch and ARM servers (which really run the work)
with staging through Azurite; the rerun is fully reused, and the pool the Batch step created is
deleted as asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from support.arm_compute_server import running_arm_compute_server
from support.azurite_server import ACCOUNT_KEY, ACCOUNT_NAME
from support.batch_server import running_batch_server
from support.dagtools import write_dag

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.registry import DatasetRegistry

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.azurite, pytest.mark.slow]

TOKEN = "mixed-token-" + uuid.uuid4().hex[:8]
PREP = """\
import sys
from pathlib import Path
Path(sys.argv[1], "rows.csv").write_text("id,name\\n1,ada\\n2,grace\\n3,edsger\\n")
"""
COPY = """\
#!/bin/sh
set -e
echo "batch copies $1"
cp -R "$1"/. "$2/"
"""
COUNT = """\
import sys
from pathlib import Path
rows = (Path(sys.argv[1]) / "rows.csv").read_text().splitlines()[1:]
print(f"the VM counted {len(rows)} rows")
Path(sys.argv[2], "count.txt").write_text(str(len(rows)))
"""


def test_local_batch_and_vm_steps_run_under_airflow_dags_test_then_rerun_reused(
    tmp_path: Path, azurite_connection_string: str
) -> None:
    dag_id = "t_mixed_compute"
    src = tmp_path / "src"
    src.mkdir()
    for name, text in (("prep.py", PREP), ("copy.sh", COPY), ("count.py", COUNT)):
        (src / name).write_text(text)
    (src / "copy.sh").chmod(0o755)
    store_root = tmp_path / "store"
    container = f"mixed-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite_connection_string).create_container(container)
    blob_endpoint = next(
        p.split("=", 1)[1] for p in azurite_connection_string.split(";") if p.startswith("BlobEndpoint=")
    )
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import AzureBatchStepOperator, Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            prep = PythonScriptStepOperator(
                task_id="prep", source_directory={str(src)!r}, script_name="prep.py",
                arguments=["{{outputs.rows}}"], outputs=[Output("rows")], datastore="mixed_store",
            )
            copy = AzureBatchStepOperator(
                task_id="copy", executable="copy.sh", source_directory={str(src)!r},
                arguments=["{{inputs.rows}}", "{{outputs.copied}}"], inputs={{"rows": prep.output}},
                outputs=[Output("copied")], compute="mixed_batch", pool_id="mixed-pool", create_pool=True,
                vm_size="standard_d2s_v3", vm_image_urn="canonical:0001-com-ubuntu-server-jammy:22_04-lts",
                delete_batch_pool_after_finish=True, deferrable=True, poll_interval=0.2, datastore="mixed_store",
            )
            PythonScriptStepOperator(
                task_id="count", source_directory={str(src)!r}, script_name="count.py",
                arguments=["{{inputs.copied}}", "{{outputs.count}}"], inputs={{"copied": copy.output}},
                outputs=[Output("count")], compute="mixed_vm", vm_name="worker-vm", deferrable=True,
                poll_interval=0.2, datastore="mixed_store",
            )
        """,
    )
    with running_batch_server() as batch, running_arm_compute_server(token=TOKEN) as arm:
        arm.operation_seconds = 0.1
        arm.add_vm("rg-mixed", "worker-vm")
        env = {
            **os.environ,
            "AIRFLOW_CONN_MIXED_STORE": json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(store_root)}}),
            "AIRFLOW_CONN_MIXED_STAGING": json.dumps(
                {
                    "conn_type": "amlpipe_azure_blob",
                    "host": blob_endpoint,
                    "login": ACCOUNT_NAME,
                    "password": ACCOUNT_KEY,
                    "extra": {"container": container},
                }
            ),
            "AIRFLOW_CONN_MIXED_BATCH": json.dumps(
                {
                    "conn_type": "amlpipe_azure_batch",
                    "host": batch.endpoint,
                    "login": batch.account_name,
                    "password": batch.account_key,
                    "extra": {"allow_insecure_loopback": True, "staging_datastore": "mixed_staging"},
                }
            ),
            "AIRFLOW_CONN_MIXED_VM": json.dumps(
                {
                    "conn_type": "amlpipe_azure_vm",
                    "host": arm.endpoint,
                    "extra": {
                        "subscription_id": arm.subscription_id,
                        "resource_group": "rg-mixed",
                        "static_token": TOKEN,
                        "allow_insecure_loopback": True,
                        "staging_datastore": "mixed_staging",
                    },
                }
            ),
        }

        def dags_test(day: int) -> str:
            command = [sys.executable, "-m", "airflow", "dags", "test", dag_id, f"2026-03-{day:02d}T00:00:00+00:00"]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
            output = done.stdout + done.stderr
            assert done.returncode == 0 and "state=success" in output, output[-5000:]
            return output

        first = dags_test(1)
        assert first.count("RUNNING: fingerprint") == 3
        assert "batch copies inputs/rows" in first and "the VM counted 3 rows" in first
        store = LocalDatastore("mixed_store", store_root)
        [count] = DatasetRegistry(store).list_versions(f"{dag_id}.count.count")
        assert store.read_bytes(f"{objects.data_prefix(count['digest'])}/count.txt") == b"3"
        assert batch.pools_created["mixed-pool"] == 1
        deadline = time.monotonic() + 30
        while batch.pools or batch.jobs:  # the pool the step created, and its job, are deleted
            assert time.monotonic() < deadline, (list(batch.pools), list(batch.jobs))
            time.sleep(0.1)
        jobs, runs = sum(batch.jobs_created.values()), len(arm.run_commands)

        second = dags_test(2)
        assert second.count("REUSED: fingerprint") == 3 and "RUNNING: fingerprint" not in second
        assert sum(batch.jobs_created.values()) == jobs and len(arm.run_commands) == runs
    staged = BlobServiceClient.from_connection_string(azurite_connection_string).get_container_client(container)
    assert list(staged.list_blobs()) == []  # every job's staging folder was deleted
