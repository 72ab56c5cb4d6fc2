"""The example DAG dags/aml_data_transfer.py, on the machine's PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.dagtools import run_dag
from support.paths import REPO
from support.session import DAGS_FOLDER
from support.sqldbs import connection_env, mysql_database, pg_database  # noqa: F401 -- fixtures

from airflow_provider_amlpipe.transfer.sql import SqlDatabase

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_data_transfer_example_runs_then_reuses_everything(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_database: SqlDatabase,  # noqa: F811
    mysql_database: SqlDatabase,  # noqa: F811
) -> None:
    shutil.copy(REPO / "dags" / "aml_data_transfer.py", DAGS_FOLDER / "aml_data_transfer.py")
    shutil.copytree(
        REPO / "dags" / "scripts" / "data_transfer", DAGS_FOLDER / "scripts" / "data_transfer", dirs_exist_ok=True
    )
    store = tmp_path / "store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMLPIPE_DEFAULT", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(store)}})
    )
    samples = {"conn_type": "amlpipe_local", "extra": {"path": str(REPO / "dags" / "data")}}
    monkeypatch.setenv("AIRFLOW_CONN_AMLPIPE_SAMPLES", json.dumps(samples))
    for conn_id, db in (("amlpipe_transfer_pg", pg_database), ("amlpipe_transfer_mysql", mysql_database)):
        for key, value in connection_env(conn_id, db).items():
            monkeypatch.setenv(key, value)

    first = run_dag("aml_data_transfer")
    assert first.state == "success", first.task_states
    assert len(first.ran()) == 6
    source = (REPO / "dags" / "data" / "transfer" / "orders.csv").read_bytes()
    assert (store / "lake" / "landing" / "orders.csv").read_bytes() == source
    for db in (pg_database, mysql_database):
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*), count(amount), count(order_date) FROM orders").one() == (
                8,
                7,
                7,
            )
            assert conn.exec_driver_sql("SELECT customer FROM orders WHERE order_id = 1002").scalar() == "Bao Nguyễn"
    totals = pq.read_table(store / "exports" / "customer_totals.parquet").to_pylist()
    assert {r["customer"]: (r["orders"], str(r["total"])) for r in totals}["Ana Müller"] == (3, "137.39")
    exported = (store / "exports" / "orders_from_mariadb.csv").read_text(encoding="utf-8").splitlines()
    assert len(exported) == 9 and '"1007","Chloé Dubois","Tent, 2-person","249.00","2024-03-05"' in exported

    report = json.loads((store / first.xcom("reconcile", "report")["path"] / "reconciliation.json").read_text())
    assert report == {"customers": 4, "mismatched": [], "rows_exported": 8 + 4}
    assert first.statuses["reconcile"]["metrics"][0]["value"] == 0

    second = run_dag("aml_data_transfer")
    assert second.state == "success", second.task_states
    assert second.ran() == set()
