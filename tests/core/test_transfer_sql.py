"""SQL ends against the machine's PostgreSQL and MariaDB: export, import, change markers."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from support.sqldbs import database, mysql_database, pg_database  # noqa: F401 -- fixtures

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.transfer import sql
from airflow_provider_amlpipe.transfer.refs import SqlDataReference
from airflow_provider_amlpipe.transfer.sql import SqlDatabase

LOG = logging.getLogger("transfer-sql-test")
ROWS = [
    (1, "Zoë 🚀", Decimal("12.50"), dt.date(2024, 2, 29), dt.datetime(2024, 3, 1, 12, 30, 5)),
    (2, "", Decimal("-0.01"), None, None),
    (3, None, None, dt.date(1999, 12, 31), dt.datetime(2000, 1, 1, 0, 0, 0)),
    (4, 'quote " and, comma\nnewline', Decimal("99999999.99"), dt.date(2024, 1, 1), None),
]


def _create(db: SqlDatabase, table: str, rows: list[tuple[object, ...]] = ROWS) -> None:
    text_type = "TEXT" if db.dialect == "postgresql" else "VARCHAR(200)"
    ts_type = "TIMESTAMP" if db.dialect == "postgresql" else "DATETIME"
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {table} (id INTEGER NOT NULL PRIMARY KEY, name {text_type} NULL,"
            f" amount NUMERIC(10, 2) NULL, day DATE NULL, at {ts_type} NULL)"
        )
        if rows:
            conn.execute(
                sa.text(f"INSERT INTO {table} VALUES (:i, :n, :a, :d, :t)"),
                [dict(zip("inadt", r, strict=True)) for r in rows],
            )


def _rows(db: SqlDatabase, table: str) -> list[tuple[object, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT id, name, amount, day, at FROM {table} ORDER BY id")]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_then_import_round_trips_types(database: SqlDatabase, fmt: str, tmp_path: Path) -> None:  # noqa: F811
    _create(database, "orders")
    _create(database, "copy", rows=[])
    path = tmp_path / f"orders.{fmt}"
    ref = SqlDataReference(database.connection, sql_table="orders")
    assert sql.export(database, ref, path, fmt, LOG, threading.Event()) == len(ROWS)
    if fmt == "parquet":
        table = pq.read_table(path)
        assert table.column_names == ["id", "name", "amount", "day", "at"]
        assert table.column("amount").to_pylist()[0] == Decimal("12.50")
    else:
        text = path.read_text(encoding="utf-8")
        assert text.splitlines()[0].replace('"', "") == "id,name,amount,day,at"
        assert '""' in text  # the empty string, unlike NULL, is quoted
    assert sql.import_file(database, "copy", path, fmt, LOG, threading.Event()) == len(ROWS)
    assert _rows(database, "copy") == _rows(database, "orders") == ROWS


def test_query_export_and_empty_result(database: SqlDatabase, tmp_path: Path) -> None:  # noqa: F811
    _create(database, "orders")
    ref = SqlDataReference(database.connection, sql_query="SELECT id, name FROM orders WHERE id > 100;")
    path = tmp_path / "none.csv"
    assert sql.export(database, ref, path, "csv", LOG, threading.Event()) == 0
    assert path.read_text().replace('"', "").strip() == "id,name"


def test_import_refuses_mismatched_columns_and_rolls_back_failures(database: SqlDatabase, tmp_path: Path) -> None:  # noqa: F811
    _create(database, "orders")
    bad = tmp_path / "bad.csv"
    bad.write_text('"id","nme","amount"\n"9","x","1.00"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="'nme' are not columns of 'orders'") as err:
        sql.import_file(database, "orders", bad, "csv", LOG, threading.Event())
    assert "table columns: id, name, amount, day, at" in str(err.value)
    no_key = tmp_path / "nokey.csv"
    no_key.write_text('"name"\n"x"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="required column\\(s\\) 'id'"):
        sql.import_file(database, "orders", no_key, "csv", LOG, threading.Event())
    # The third row repeats a primary key: the two before it must not stay behind.
    clash = tmp_path / "clash.csv"
    clash.write_text('"id","name"\n"10","a"\n"11","b"\n"1","dup"\n', encoding="utf-8")
    with pytest.raises(sa.exc.IntegrityError if database.dialect != "postgresql" else Exception):
        sql.import_file(database, "orders", clash, "csv", LOG, threading.Event())
    assert len(_rows(database, "orders")) == len(ROWS)
    with pytest.raises(ConfigurationError, match="table 'missing' does not exist"):
        sql.import_file(database, "missing", clash, "csv", LOG, threading.Event())


def test_change_marker_follows_the_rows(database: SqlDatabase) -> None:  # noqa: F811
    _create(database, "orders")
    table = SqlDataReference(database.connection, sql_table="orders")
    query = SqlDataReference(database.connection, sql_query="SELECT id, amount FROM orders WHERE id < 3")
    before = (sql.marker(database, table), sql.marker(database, query))
    assert before == (sql.marker(database, table), sql.marker(database, query))  # stable
    with database.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE orders SET name = 'other' WHERE id = 4")
    after = (sql.marker(database, table), sql.marker(database, query))
    assert after[0] != before[0]
    assert after[1] == before[1]  # the query's rows did not change
    with database.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE orders SET amount = 1 WHERE id = 2")
    assert sql.marker(database, query) != before[1]
    custom = SqlDataReference(database.connection, sql_table="orders", change_marker="SELECT count(*) FROM orders")
    assert sql.marker(database, custom) == 'marker:[["4"]]'
    assert sql.marker(database, SqlDataReference(database.connection, sql_stored_procedure="p")) is None


def test_mariadb_stored_procedure_exports_its_rows(mysql_database: SqlDatabase, tmp_path: Path) -> None:  # noqa: F811
    _create(mysql_database, "orders")
    with mysql_database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE PROCEDURE big_orders() SELECT id, amount FROM orders WHERE amount > 10")
    ref = SqlDataReference(mysql_database.connection, sql_stored_procedure="big_orders")
    path = tmp_path / "big.csv"
    assert sql.export(mysql_database, ref, path, "csv", LOG, threading.Event()) == 2
    assert path.read_text().splitlines()[1:] == ['"1","12.50"', '"4","99999999.99"']


def test_postgres_function_exports_its_rows(pg_database: SqlDatabase, tmp_path: Path) -> None:  # noqa: F811
    _create(pg_database, "orders")
    with pg_database.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION big_orders() RETURNS TABLE(id int, amount numeric) LANGUAGE sql AS"
            " $$ SELECT id, amount FROM orders WHERE amount > 10 ORDER BY id $$"
        )
    ref = SqlDataReference(pg_database.connection, sql_stored_procedure="big_orders")
    path = tmp_path / "big.parquet"
    assert sql.export(pg_database, ref, path, "parquet", LOG, threading.Event()) == 2
    assert pq.read_table(path).column("id").to_pylist() == [1, 4]
