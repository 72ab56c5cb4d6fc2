"""AdlaStepOperator with compute=<ADLA connection>: a real client, a local server speaking the ADLA
job REST protocol (which really runs the U-SQL), deferral through dag.test(), reuse, failures."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from adla_server import AdlaTestServer, running_adla_server
from dagtools import run_dag, write_dag

from airflow_provider_amlpipe.data.datastore import LocalDatastore

pytestmark = pytest.mark.usefixtures("airflow_db")

SCRIPT = """\
@rs = EXTRACT id int, name string, dept int FROM "@@data@@" USING Extractors.Csv();
OUTPUT (SELECT name.Trim() AS name, dept FROM @rs WHERE id >= @@min_id@@) TO "@@out@@" USING Outputters.Csv();
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[AdlaTestServer]:
    token = secrets.token_urlsafe(24)
    with running_adla_server(token) as state:
        connection = {
            "conn_type": "amlpipe_adla",
            "host": state.endpoint,
            "extra": {"static_token": token, "allow_insecure_loopback": True},
        }
        monkeypatch.setenv("AIRFLOW_CONN_ADLA_TEST", json.dumps(connection))
        yield state


def adla_dag(dag_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, deferrable: bool) -> LocalDatastore:
    src = tmp_path / "usql"
    src.mkdir()
    (src / "filter.usql").write_text(SCRIPT)
    root = tmp_path / "store"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_STORE_{dag_id.upper()}", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output
        with DAG(dag_id={dag_id!r}, schedule=None):
            AdlaStepOperator(
                task_id="filter", source_directory={str(src)!r}, script_name="filter.usql",
                inputs={{"data": DataPath("amlpipe_samples", "sample_input.csv")}}, outputs=[Output("out")],
                step_params={{"min_id": 4}}, compute="adla_test", deferrable={deferrable},
                degree_of_parallelism=3, priority=50, poll_interval=0.2, datastore="store_{dag_id}",
            )
        """,
    )
    return LocalDatastore("s", root)


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "inline"])
def test_job_runs_on_the_service_once_and_its_output_is_committed(
    server: AdlaTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    dag_id = f"t_adla_remote_{'deferred' if deferrable else 'inline'}"
    store = adla_dag(dag_id, tmp_path, monkeypatch, deferrable=deferrable)
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    ref = first.xcom("filter", "out")
    assert store.read_bytes(f"{ref['path']}/out") == b'"Emma",100\r\n"Jacob",100\r\n"Jennie",100\r\n'
    assert sum(server.executions.values()) == 1
    [created] = [r for r in server.requests if r.method == "PUT"]
    body = created.body
    assert (body["degreeOfParallelism"], body["priority"], body["type"]) == (3, 50, "USql")
    assert "@@" not in body["properties"]["script"]

    second = run_dag(dag_id)
    assert second.ran() == set()
    assert sum(server.executions.values()) == 1  # reused: no second job
    # The lease was released, and no work folder is left behind.
    assert not any(p.is_dir() and any(p.iterdir()) for p in (store.root / "staging").glob("*"))


def test_failed_job_fails_the_task_with_its_errors_and_commits_nothing(
    server: AdlaTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    dag_id = "t_adla_remote_fail"
    store = adla_dag(dag_id, tmp_path, monkeypatch, deferrable=True)
    (tmp_path / "usql" / "filter.usql").write_text(SCRIPT.replace("FROM @rs", "FROM @missing"))
    result = run_dag(dag_id)
    logs = capfd.readouterr()
    assert result.task_states["filter"] == "failed"
    assert "ended with result Failed" in logs.out + logs.err
    assert "@missing" in logs.out + logs.err
    assert list(store.list("reuse/records")) == []
    token = json.loads(os.environ["AIRFLOW_CONN_ADLA_TEST"])["extra"]["static_token"]
    assert token not in logs.out + logs.err
