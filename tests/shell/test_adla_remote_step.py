"""AdlaStepOperator with compute=<ADLA connection>: a real client, a local server speaking the ADLA
job REST protocol (which really runs the U-SQL, reading and writing only its linked Blob storage,
Azurite), deferral through dag.test(), staging of inputs and outputs, reuse, failures."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.adla_server import AdlaTestServer, running_adla_server
from support.azurite_server import ACCOUNT_KEY
from support.dagtools import RunResult, logs_of, run_dag, write_dag
from support.paths import SAMPLES
from support.stores import BlobContainer

from airflow_provider_amlpipe.data.datastore import LocalDatastore

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.azurite]

SCRIPT = """\
@rs = EXTRACT id int, name string, dept int FROM "@@data@@" USING Extractors.Csv();
OUTPUT (SELECT name.Trim() AS name, dept FROM @rs WHERE id >= @@min_id@@) TO "@@out@@" USING Outputters.Csv();
"""
# Reads what SCRIPT wrote (an upstream ADLA step's output: a folder holding one file).
SECOND = """\
@rs = EXTRACT name string, dept int FROM "@@names@@" USING Extractors.Csv();
OUTPUT (SELECT name.ToUpper() AS name FROM @rs) TO "@@upper@@" USING Outputters.Csv();
"""
FILTERED = b'"Emma",100\r\n"Jacob",100\r\n"Jennie",100\r\n'
TOKEN = secrets.token_urlsafe(24)


@pytest.fixture
def server(azurite_connection_string: str) -> Iterator[AdlaTestServer]:
    with running_adla_server(TOKEN, azurite_connection_string) as state:
        yield state


@pytest.fixture
def blob(azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> BlobContainer:
    """A container for staging (or for the step's datastore)."""
    return BlobContainer(azurite_connection_string, "blob_adla", monkeypatch, "adla")


def adla_connection(monkeypatch: pytest.MonkeyPatch, server: AdlaTestServer, **extra: Any) -> None:
    connection = {
        "conn_type": "amlpipe_adla",
        "host": server.endpoint,
        "extra": {"static_token": TOKEN, "allow_insecure_loopback": True, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ADLA_TEST", json.dumps(connection))


def local_store(dag_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, LocalDatastore]:
    root = tmp_path / "store"
    conn_id = f"store_{dag_id}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    return conn_id, LocalDatastore(conn_id, root)


def adla_dag(
    dag_id: str,
    tmp_path: Path,
    *,
    datastore: str,
    deferrable: bool = True,
    data: str = 'DataPath("amlpipe_samples", "sample_input.csv")',
    script: str = SCRIPT,
    outputs: str = '[Output("out")]',
    second_step: bool = False,
) -> None:
    src = tmp_path / "usql"
    src.mkdir(exist_ok=True)
    (src / "filter.usql").write_text(script)
    (src / "upper.usql").write_text(SECOND)
    second = f"""
            AdlaStepOperator(
                task_id="upper", source_directory={str(src)!r}, script_name="upper.usql",
                inputs={{"names": first.output["out"]}}, outputs=[Output("upper")],
                compute="adla_test", deferrable={deferrable}, poll_interval=0.2, datastore={datastore!r},
            )"""
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output
        with DAG(dag_id={dag_id!r}, schedule=None):
            first = AdlaStepOperator(
                task_id="filter", source_directory={str(src)!r}, script_name="filter.usql",
                inputs={{"data": {data}}}, outputs={outputs},
                step_params={{"min_id": 4}}, compute="adla_test", deferrable={deferrable},
                degree_of_parallelism=3, priority=50, poll_interval=0.2, datastore={datastore!r},
            ){second if second_step else ""}
        """,
    )


def assert_no_secrets(text: str) -> None:
    assert TOKEN not in text
    assert ACCOUNT_KEY not in text and ACCOUNT_KEY[:20] not in text


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "inline"])
def test_local_datastore_inputs_are_uploaded_to_the_staging_datastore_and_outputs_committed(
    server: AdlaTestServer, blob: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    dag_id = f"t_adla_remote_{'deferred' if deferrable else 'inline'}"
    adla_connection(monkeypatch, server, staging_datastore=blob.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    adla_dag(dag_id, tmp_path, datastore=datastore, deferrable=deferrable)
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    ref = first.xcom("filter", "out")
    assert store.read_bytes(f"{ref['path']}/out") == FILTERED
    assert sum(server.executions.values()) == 1
    [created] = [r for r in server.requests if r.method == "PUT"]
    body = created.body
    assert (body["degreeOfParallelism"], body["priority"], body["type"]) == (3, 50, "USql")
    script = body["properties"]["script"]
    assert "@@" not in script and str(tmp_path) not in script and str(SAMPLES) not in script
    job_prefix = f"amlpipe-staging/{created.path.rsplit('/', 1)[-1]}"
    # The input was uploaded (a folder holding one file stands for the file); the output came back.
    assert server.reads == [blob.uri(f"{job_prefix}/inputs/data/sample_input.csv")]
    assert server.writes == [blob.uri(f"{job_prefix}/outputs/out/out")]
    assert blob.uri(f"{job_prefix}/outputs/out/out") in script
    assert blob.keys() == []  # the job's staging folder was deleted

    second = run_dag(dag_id)
    assert second.ran() == set()
    assert sum(server.executions.values()) == 1  # reused: no second job
    # The lease was released, and no work folder is left behind.
    assert not any(p.is_dir() and any(p.iterdir()) for p in (store.root / "staging").glob("*"))


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "inline"])
def test_blob_datastore_inputs_are_read_in_place_without_a_staging_datastore(
    server: AdlaTestServer, blob: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    dag_id = f"t_adla_in_place_{'deferred' if deferrable else 'inline'}"
    adla_connection(monkeypatch, server, staging_prefix="/jobs/tmp")  # no staging_datastore
    blob.client.upload_blob("raw/people.csv", (SAMPLES / "sample_input.csv").read_bytes())
    adla_dag(
        dag_id,
        tmp_path,
        datastore=blob.conn_id,
        deferrable=deferrable,
        data=f'DataPath("{blob.conn_id}", "raw/people.csv")',
        second_step=True,
    )
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    assert first.ran() == {"filter", "upper"}
    out, upper = first.xcom("filter", "out"), first.xcom("upper", "upper")
    assert blob.read(f"{out['path']}/out") == FILTERED
    assert blob.read(f"{upper['path']}/upper") == b'"EMMA"\r\n"JACOB"\r\n"JENNIE"\r\n'
    # Both inputs were read where they are: the external blob, and the upstream step's committed
    # object (its one file). Nothing was copied under an inputs/ folder.
    assert server.reads == [blob.uri("raw/people.csv"), blob.uri(f"{out['path']}/out")]
    assert not [uri for uri in server.reads + server.writes if "/inputs/" in uri]
    assert all(uri.startswith(blob.uri("jobs/tmp/")) for uri in server.writes) and len(server.writes) == 2
    assert blob.keys("jobs/") == []

    second = run_dag(dag_id)
    assert second.ran() == set()
    assert sum(server.executions.values()) == 2


def test_blob_inputs_outside_the_staging_container_are_copied_into_it(
    server: AdlaTestServer,
    blob: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    azurite_connection_string: str,
) -> None:
    dag_id = "t_adla_other_container"
    steps = BlobContainer(azurite_connection_string, "blob_steps", monkeypatch, "adla")  # the step's datastore
    adla_connection(monkeypatch, server, staging_datastore=blob.conn_id)
    steps.client.upload_blob("raw/people.csv", (SAMPLES / "sample_input.csv").read_bytes())
    adla_dag(
        dag_id, tmp_path, datastore=steps.conn_id, data='DataPath("blob_steps", "raw/people.csv")', second_step=True
    )
    result = run_dag(dag_id)
    assert result.state == "success", result.task_states
    assert steps.read(f"{result.xcom('upper', 'upper')['path']}/upper") == b'"EMMA"\r\n"JACOB"\r\n"JENNIE"\r\n'
    jobs = [r.path.rsplit("/", 1)[-1] for r in server.requests if r.method == "PUT"]
    assert server.reads == [
        blob.uri(f"amlpipe-staging/{jobs[0]}/inputs/data/people.csv"),
        blob.uri(f"amlpipe-staging/{jobs[1]}/inputs/names/out"),  # the upstream output's one file
    ]
    assert blob.keys() == []  # staging cleaned; the step's own container holds its outputs
    assert steps.keys("amlpipe-staging/") == []


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "inline"])
def test_failed_job_fails_the_task_with_its_errors_commits_nothing_and_cleans_staging(
    server: AdlaTestServer,
    blob: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    dag_id = f"t_adla_remote_fail_{'deferred' if deferrable else 'inline'}"
    adla_connection(monkeypatch, server, staging_datastore=blob.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    adla_dag(dag_id, tmp_path, datastore=datastore, deferrable=deferrable, script=SCRIPT.replace("FROM @rs", "FROM @x"))
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["filter"] == "failed"
    assert "ended with result Failed" in logs
    assert "@x" in logs
    assert server.reads  # the input had been uploaded before the job ran
    assert blob.keys() == []  # ... and the staging folder was deleted after it failed
    assert list(store.list("reuse/records")) == []
    assert_no_secrets(logs)


def test_an_output_the_job_did_not_write_fails_the_step_naming_it(
    server: AdlaTestServer,
    blob: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dag_id = "t_adla_remote_missing_output"
    adla_connection(monkeypatch, server, staging_datastore=blob.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    adla_dag(dag_id, tmp_path, datastore=datastore, outputs='[Output("out"), Output("extra")]')
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["filter"] == "failed"
    assert "output 'extra': the ADLA job wrote nothing to" in logs
    assert blob.keys() == []
    assert list(store.list("reuse/records")) == []


def test_a_local_datastore_without_staging_datastore_fails_before_any_request(
    server: AdlaTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    dag_id = "t_adla_remote_no_staging"
    adla_connection(monkeypatch, server)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    adla_dag(dag_id, tmp_path, datastore=datastore)
    result: RunResult = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["filter"] == "failed"
    assert "ConfigurationError" in logs
    assert "compute (connection 'adla_test') extra.staging_datastore: not set" in logs
    assert "Fix: set extra.staging_datastore on the ADLA connection" in logs
    assert server.requests == [] and server.jobs == {}  # nothing reached the job service
    assert list(store.list("reuse/records")) == []
