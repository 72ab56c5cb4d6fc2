"""Steps whose datastore is an Azure Blob container (Azurite), and secrets that must never leak."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from support.azurite_server import ACCOUNT_KEY, ACCOUNT_NAME
from support.dagtools import run_dag, write_dag

from airflow_provider_amlpipe.data.registry import DatasetRegistry
from airflow_provider_amlpipe.hooks.datastore import AmlDatastoreHook

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.azurite]

STEP = """\
import sys
from pathlib import Path
from airflow_provider_amlpipe import runtime
rows = runtime.input_path("raw").read_text().splitlines()
(runtime.output_path("upper") / "rows.txt").write_text("\\n".join(r.upper() for r in rows))
print("secret-looking but harmless:", len(rows))
"""


def test_pipeline_on_blob_reuses_and_never_leaks_the_account_key(
    azurite_connection_string: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    endpoint = next(p.split("=", 1)[1] for p in azurite_connection_string.split(";") if p.startswith("BlobEndpoint="))
    container = f"steps-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(azurite_connection_string)
    service.create_container(container)
    service.get_container_client(container).upload_blob("raw/input.txt", b"alpha\nbeta\ngamma\n")
    monkeypatch.setenv(
        "AIRFLOW_CONN_BLOB_STEPS",
        json.dumps(
            {
                "conn_type": "amlpipe_azure_blob",
                "host": endpoint,
                "login": ACCOUNT_NAME,
                "password": ACCOUNT_KEY,
                "extra": {"container": container},
            }
        ),
    )
    src = tmp_path / "src"
    src.mkdir()
    (src / "upper.py").write_text(STEP)
    dag_id = "t_blob_pipeline"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            PythonScriptStepOperator(
                task_id="upper", source_directory={str(src)!r}, script_name="upper.py",
                inputs={{"raw": DataPath(datastore="blob_steps", path="raw/input.txt")}},
                outputs=[Output("upper")], datastore="blob_steps",
            )
        """,
    )
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    assert first.ran() == {"upper"}
    ref = first.xcom("upper", "upper")
    assert ref["datastore"] == "blob_steps"

    store = AmlDatastoreHook("blob_steps").get_conn()
    assert store.read_bytes(ref["path"] + "/rows.txt") == b"ALPHA\nBETA\nGAMMA"
    assert DatasetRegistry(store).get(ref["name"]).version == 1

    second = run_dag(dag_id)
    assert second.ran() == set()

    # Changing the external input's bytes changes the fingerprint: the step runs again.
    service.get_container_client(container).upload_blob("raw/input.txt", b"delta\n", overwrite=True)
    third = run_dag(dag_id)
    assert third.ran() == {"upper"}
    assert third.statuses["upper"]["reason"] == "changed since the last record: inputs.raw"
    assert third.statuses["upper"]["versions"] == {"upper": 2}

    # The account key appears nowhere: not in XCom, the datastore (records, fingerprints,
    # registry), nor the logs.
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        xcoms = [json.dumps(x.value) for x in session.scalars(select(XComModel).where(XComModel.dag_id == dag_id))]
    assert xcoms
    blobs = [
        service.get_container_client(container).download_blob(b.name).readall().decode("utf-8", "replace")
        for b in service.get_container_client(container).list_blobs()
    ]
    assert any('"parts"' in b for b in blobs)  # the records with their fingerprint parts were read
    logs = capfd.readouterr()
    log_files = [p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log")]
    for haystack in [*xcoms, *blobs, logs.out, logs.err, *log_files]:
        assert ACCOUNT_KEY not in haystack
        assert ACCOUNT_KEY[:20] not in haystack
