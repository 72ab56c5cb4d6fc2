"""U-SQL moved to Spark: ``AdlaStepOperator(engine="spark")`` runs the script's Spark SQL translation on local
PySpark, and ``compute=<amlpipe_databricks connection>`` submits it as a Databricks run (the local Databricks
server, Azurite data as ``abfss://`` URIs). Both give DuckDB's rows; a construct the translation refuses fails
the step before anything is submitted, naming it and its line.

Tests that start Spark (a JVM) are ``slow``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.dagtools import run_dag, write_dag
from support.databricks_server import DatabricksTestServer, running_databricks_server
from support.paths import REPO, SAMPLES
from support.session import DAGS_FOLDER
from support.stores import BlobContainer

from airflow_provider_amlpipe.data.datastore import LocalDatastore

pytestmark = pytest.mark.usefixtures("airflow_db")

SALES_OUTPUTS = ("daily_tags", "best_tags")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalDatastore:
    root = tmp_path / "store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMLPIPE_DEFAULT", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    return LocalDatastore("amlpipe_default", root)


@pytest.fixture
def server(azurite_connection_string: str) -> Iterator[DatabricksTestServer]:
    with running_databricks_server() as state:
        state.storage_accounts["devstoreaccount1"] = azurite_connection_string
        state.clusters["0101-cluster"] = "RUNNING"
        yield state


def databricks_connection(monkeypatch: pytest.MonkeyPatch, server: DatabricksTestServer, staging: str) -> None:
    connection = {
        "conn_type": "amlpipe_databricks",
        "host": server.endpoint,
        "password": server.token,
        "extra": {"allow_insecure_loopback": True, "cluster_id": "0101-cluster", "staging_datastore": staging},
    }
    monkeypatch.setenv("AIRFLOW_CONN_DBX_USQL", json.dumps(connection))


def copy_examples(*dag_files: str) -> None:
    for name in dag_files:
        shutil.copy(REPO / "dags" / name, DAGS_FOLDER / name)
    shutil.copytree(REPO / "dags" / "scripts", DAGS_FOLDER / "scripts", dirs_exist_ok=True)
    (DAGS_FOLDER / ".airflowignore").write_text("scripts/\ndata/\n")


def output_lines(store: LocalDatastore, run: object, name: str) -> list[str]:
    ref = run.xcom("daily_tags", name)  # type: ignore[attr-defined]
    return store.read_bytes(f"{ref['path']}/{name}").decode("utf-8").split("\r\n")


def assert_same_rows(got: list[str], want: list[str]) -> None:
    """The same header and the same rows, in any order (Spark may order rows without ORDER BY differently)."""
    assert got[0] == want[0]
    assert sorted(got[1:]) == sorted(want[1:])


@pytest.mark.slow
def test_the_sales_example_on_local_spark_gives_duckdbs_rows_and_is_reused(store: LocalDatastore) -> None:
    copy_examples("aml_usql_sales.py", "aml_usql_sales_databricks.py")
    duck = run_dag("aml_usql_sales")
    spark = run_dag("aml_usql_sales_databricks")
    assert duck.state == "success" and spark.state == "success", (duck.task_states, spark.task_states)
    for name in SALES_OUTPUTS:
        assert_same_rows(output_lines(store, spark, name), output_lines(store, duck, name))
    # The engine is part of the fingerprint: the Spark step did not reuse DuckDB's outputs, and reruns reused.
    assert spark.statuses["daily_tags"]["fingerprint"] != duck.statuses["daily_tags"]["fingerprint"]
    assert run_dag("aml_usql_sales_databricks").ran() == set()


@pytest.mark.slow
@pytest.mark.azurite
def test_usql_on_a_databricks_workspace_runs_the_translation_and_gives_duckdbs_rows(
    server: DatabricksTestServer,
    store: LocalDatastore,
    azurite_connection_string: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = BlobContainer(azurite_connection_string, "usql_blob", monkeypatch, "usql")
    for path in sorted(p for p in (SAMPLES / "sales").rglob("*") if p.is_file()):
        blob.client.upload_blob(f"sales/{path.relative_to(SAMPLES / 'sales').as_posix()}", path.read_bytes())
    blob.client.upload_blob("products.csv", (SAMPLES / "products.csv").read_bytes())
    databricks_connection(monkeypatch, server, blob.conn_id)
    copy_examples("aml_usql_sales.py")
    write_dag(
        "t_usql_dbx",
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output
        with DAG(dag_id="t_usql_dbx", schedule=None):
            AdlaStepOperator(
                task_id="daily_tags", source_directory={str(REPO / "dags" / "scripts" / "usql_sales")!r},
                script_name="daily_tags.usql",
                inputs={{"orders": DataPath(datastore={blob.conn_id!r}, path="sales"),
                         "products": DataPath(datastore={blob.conn_id!r}, path="products.csv")}},
                outputs=[Output("daily_tags"), Output("best_tags")], step_params={{"min_revenue": "50"}},
                compute="dbx_usql", deferrable=True, poll_interval=0.5,
            )
        """,
    )
    remote = run_dag("t_usql_dbx")
    duck = run_dag("aml_usql_sales")
    assert remote.state == "success", remote.task_states
    for name in SALES_OUTPUTS:
        assert_same_rows(output_lines(store, remote, name), output_lines(store, duck, name))
    task = server.run(server.runs_created[0])["tasks"][0]
    assert task["existing_cluster_id"] == "0101-cluster"
    assert task["spark_python_task"]["python_file"].endswith("/code/sql_script.py")
    parameters = task["spark_python_task"]["parameters"]
    assert parameters[0] == "--input" and parameters[1].startswith(f"orders=abfss://{blob.name}@devstoreaccount1.")
    assert blob.keys("amlpipe-staging/") == []
    assert run_dag("t_usql_dbx").ran() == set() and server.submissions == 1


@pytest.mark.azurite
def test_a_construct_spark_cannot_run_fails_before_anything_is_submitted(
    server: DatabricksTestServer,
    store: LocalDatastore,
    azurite_connection_string: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    blob = BlobContainer(azurite_connection_string, "usql_bad", monkeypatch, "usql")
    blob.client.upload_blob("in.csv", b"a\n1\n2\n")
    databricks_connection(monkeypatch, server, blob.conn_id)
    src = tmp_path / "usql"
    src.mkdir()
    (src / "skip.usql").write_text(
        '@rs = EXTRACT a int FROM "@@data@@" USING Extractors.Csv(skipFirstNRows: 2);\n'
        'OUTPUT @rs TO "@@out@@" USING Outputters.Csv();\n'
    )
    for compute, engine in (("dbx_usql", None), ("local", "spark")):
        dag_id = f"t_usql_refused_{compute}"
        write_dag(
            dag_id,
            f"""
            from airflow.sdk import DAG
            from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output
            with DAG(dag_id={dag_id!r}, schedule=None):
                AdlaStepOperator(
                    task_id="skip", source_directory={str(src)!r}, script_name="skip.usql",
                    inputs={{"data": DataPath(datastore={blob.conn_id!r}, path="in.csv")}}, outputs=[Output("out")],
                    compute={compute!r}, engine={engine!r},
                )
            """,
        )
        result = run_dag(dag_id)
        logs = capfd.readouterr()
        assert result.task_states["skip"] == "failed"
        assert "script_name: the U-SQL script cannot run on Spark: skip.usql:1:" in logs.out + logs.err
        assert "skipFirstNRows: cannot be translated to Spark SQL" in logs.out + logs.err
    assert server.submit_requests == 0 and server.requests == []
    assert blob.keys("amlpipe-staging/") == []


def test_an_engine_the_connection_cannot_run_is_refused(
    server: DatabricksTestServer, store: LocalDatastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_amlpipe import AdlaStepOperator
    from airflow_provider_amlpipe.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="engine: 'pandas' is not an engine"):
        AdlaStepOperator(task_id="t", script_name="x.usql", engine="pandas")
    databricks_connection(monkeypatch, server, "amlpipe_default")
    op = AdlaStepOperator(task_id="t", script_name="x.usql", engine="duckdb", compute="dbx_usql")
    with pytest.raises(ConfigurationError, match="engine='duckdb' cannot run on connection 'dbx_usql'"):
        op.step_definition()
