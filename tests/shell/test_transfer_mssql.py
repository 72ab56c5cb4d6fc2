"""SQL Server / Azure SQL ends, tested without a server (none runs on this machine).

What is checked here is everything that does not need one: the Airflow connection turned into a
SQLAlchemy URL and a real pymssql engine, identifier quoting, the SQL text a transfer sends
(table / query / ``EXEC`` procedure, the change-marker digest), the mapping of the values pymssql
returns for SQL Server types to CSV and Parquet and back, and the refusals. Whether SQL Server runs
that SQL as intended has NOT been checked against a live server (see docs/data-transfer.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.sql_database import sql_database
from airflow_provider_amlpipe.transfer import sql
from airflow_provider_amlpipe.transfer.refs import SqlDataReference, check_table_name
from airflow_provider_amlpipe.transfer.sql import SqlDatabase

LOG = logging.getLogger("transfer-mssql-test")
SECRET = "Sup3r-secret;pw"
GUID = uuid.UUID("6a18b428-6230-4c13-972e-62cc713e5816")
#: Values as pymssql returns them for int, nvarchar, decimal(38,10), datetime2, uniqueidentifier,
#: date, bit and a NULL in each column.
NAMES = ["id", "name", "amount", "at", "guid", "day", "flag"]
ROWS = [
    (
        1,
        "Zoë 🚀 — 東京",
        Decimal("1234567890123456789012345678.1234567890"),
        dt.datetime(2024, 3, 1, 12, 30, 5, 123456),
        GUID,
        dt.date(2024, 2, 29),
        True,
    ),
    (2, "", Decimal("-0.0000000001"), dt.datetime(1900, 1, 1), uuid.UUID(int=0), dt.date(1, 1, 1), False),
    (3, None, None, None, None, None, None),
]


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    connection = {"conn_type": "mssql", "host": "myserver.database.windows.net", "schema": "sales", **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))


def _database(monkeypatch: pytest.MonkeyPatch) -> SqlDatabase:
    _connection(monkeypatch, "xfer_azsql", login="loader", password=SECRET)
    return sql_database("xfer_azsql", "source_data_reference.connection")


def test_an_mssql_connection_builds_a_pymssql_engine_without_exposing_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = _database(monkeypatch)
    url = db.url
    assert (url.drivername, url.host, url.port, url.database, url.username) == (
        "mssql+pymssql",
        "myserver.database.windows.net",
        1433,
        "sales",
        "loader",
    )
    assert url.password == SECRET and dict(url.query) == {"charset": "utf8"}
    engine = db.engine  # a real engine: the pymssql driver is loaded, nothing is connected yet
    assert (engine.dialect.name, engine.dialect.driver) == ("mssql", "pymssql")
    _, kwargs = engine.dialect.create_connect_args(url)
    assert kwargs["host"] == "myserver.database.windows.net:1433" and kwargs["password"] == SECRET
    assert db.server == "mssql://myserver.database.windows.net:1433/sales"
    assert SECRET not in db.server and SECRET not in repr(url)
    db.dispose()


def test_pyodbc_is_chosen_by_the_connections_sqlalchemy_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, "xfer_odbc", port=14333, extra={"sqlalchemy_scheme": "mssql+pyodbc"})
    url = sql_database("xfer_odbc", "f").url
    assert (url.drivername, url.port, dict(url.query)) == (
        "mssql+pyodbc",
        14333,
        {"driver": "ODBC Driver 18 for SQL Server"},
    )
    driver = "ODBC Driver 17 for SQL Server"
    _connection(monkeypatch, "xfer_odbc17", extra={"sqlalchemy_scheme": "mssql+pyodbc", "driver": driver})
    assert dict(sql_database("xfer_odbc17", "f").url.query) == {"driver": driver}


def test_bad_mssql_connections_are_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, "xfer_jdbc", extra={"sqlalchemy_scheme": "mssql+jdbc"})
    with pytest.raises(ConfigurationError, match="'mssql\\+jdbc' is not a SQL Server driver") as caught:
        sql_database("xfer_jdbc", "destination_data_reference.connection")
    assert (
        caught.value.field == "destination_data_reference.connection (connection 'xfer_jdbc').extra.sqlalchemy_scheme"
    )
    _connection(monkeypatch, "xfer_nodb", schema=None)
    with pytest.raises(ConfigurationError, match="no host or no database"):
        sql_database("xfer_nodb", "f")
    monkeypatch.setenv("AIRFLOW_CONN_XFER_ORACLE", json.dumps({"conn_type": "oracle", "host": "h", "schema": "s"}))
    with pytest.raises(ConfigurationError, match="'oracle' is not a database") as caught:
        sql_database("xfer_oracle", "f")
    assert "postgres, mysql, mssql" in caught.value.fix
    # A server that is not there (a closed loopback port): the real driver's refusal, as a clear error.
    _connection(monkeypatch, "xfer_closed", host="127.0.0.1", port=1, login="sa", password=SECRET)
    with pytest.raises(
        ConfigurationError, match=r"cannot reach the database at mssql://127\.0\.0\.1:1/sales"
    ) as caught:
        sql.table_columns(sql_database("xfer_closed", "f"), "destination_data_reference.sql_table", "dbo.orders")
    assert SECRET not in str(caught.value)
    # Brackets are the transfer's to add: a pre-quoted name would be quoted twice.
    with pytest.raises(ConfigurationError, match="without quotes or brackets"):
        check_table_name("sql_table", "[dbo].[orders]")


def test_the_sql_sent_to_sql_server(monkeypatch: pytest.MonkeyPatch) -> None:
    db = _database(monkeypatch)
    table = SqlDataReference(db.connection, sql_table="dbo.Order_Lines")
    assert sql.select_sql(db, table) == "SELECT * FROM [dbo].[Order_Lines]"
    assert sql.quote_table(db.engine, "select") == "[select]"  # a reserved word stays a name
    procedure = SqlDataReference(db.connection, sql_stored_procedure="reports.monthly_totals")
    assert sql.select_sql(db, procedure) == "EXEC [reports].[monthly_totals]"
    query = SqlDataReference(db.connection, sql_query="SELECT TOP 10 id FROM dbo.orders ;")
    assert sql.select_sql(db, query) == "SELECT TOP 10 id FROM dbo.orders"
    digest = sql.digest_sql(db, sql.select_sql(db, table), [])
    assert digest == (
        "SELECT COUNT_BIG(*),"
        " SUM(CONVERT(DECIMAL(38, 0), CONVERT(BIGINT, SUBSTRING(h, 1, 7)))),"
        " SUM(CONVERT(DECIMAL(38, 0), CONVERT(BIGINT, SUBSTRING(h, 9, 7))))"
        " FROM (SELECT HASHBYTES('MD5', (SELECT t.* FOR JSON PATH, INCLUDE_NULL_VALUES, WITHOUT_ARRAY_WRAPPER))"
        " AS h FROM (SELECT * FROM [dbo].[Order_Lines]) AS t) AS d"
    )
    # A stored procedure's result cannot be digested without running it: no marker, no database call.
    assert sql.marker(SqlDatabase("unused", sa.make_url("mssql+pymssql://nobody@127.0.0.1:1/x")), procedure) is None


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_sql_server_values_export_faithfully_and_read_back_as_sql_server_takes_them(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"orders.{fmt}"
    assert sql.write_rows(NAMES, [ROWS[:2], ROWS[2:]], path, fmt, LOG, threading.Event()) == 3
    back = [row for batch in sql._file_batches(path, fmt, NAMES) for row in batch.to_pylist()]
    if fmt == "parquet":
        schema = pq.read_schema(path)
        assert [str(schema.field(n).type) for n in NAMES] == [
            "int64",
            "string",
            "decimal128(38, 10)",
            "timestamp[us]",
            "string",
            "date32[day]",
            "bool",
        ]
        assert [tuple(r[n] for n in NAMES) for r in back] == [
            tuple(str(v) if isinstance(v, uuid.UUID) else v for v in row) for row in ROWS
        ]
    else:
        # The text every value is written as: what SQL Server converts back to the column's type.
        assert back[0] == {
            "id": "1",
            "name": "Zoë 🚀 — 東京",
            "amount": "1234567890123456789012345678.1234567890",
            "at": "2024-03-01 12:30:05.123456",
            "guid": "6a18b428-6230-4c13-972e-62cc713e5816",
            "day": "2024-02-29",
            "flag": "true",
        }
        assert back[1]["name"] == "" and back[1]["amount"] == "-0.0000000001" and back[1]["day"] == "0001-01-01"
        assert back[2] == {"id": "3", **dict.fromkeys(NAMES[1:])}  # NULL, not the empty string
    # The import sends them through the SQL Server dialect unchanged: a CSV file's text as text (which
    # the server converts to each column's type), a Parquet file's values through the column types'
    # bind processors (a uniqueidentifier as its text: a dialect expecting uuid objects would fail here).
    db = _database(monkeypatch)
    if fmt == "csv":
        statement = sql.text_insert("orders", "dbo", NAMES).compile(dialect=db.engine.dialect)
        assert str(statement) == (
            "INSERT INTO dbo.orders (id, name, amount, at, guid, day, flag)"
            " VALUES (%(id)s, %(name)s, %(amount)s, %(at)s, %(guid)s, %(day)s, %(flag)s)"
        )
        # Untyped parameters: nothing converts the text on its way.
        assert all(isinstance(bind.type, sa.types.NullType) for bind in statement.binds.values())
        return
    table = sa.Table(
        "orders",
        sa.MetaData(),
        sa.Column("id", mssql.INTEGER),
        sa.Column("name", mssql.NVARCHAR(200)),
        sa.Column("amount", mssql.DECIMAL(38, 10)),
        sa.Column("at", mssql.DATETIME2(7)),
        sa.Column("guid", mssql.UNIQUEIDENTIFIER()),
        sa.Column("day", mssql.DATE),
        sa.Column("flag", mssql.BIT),
    )
    for column in table.columns:
        process = column.type.dialect_impl(db.engine.dialect).bind_processor(db.engine.dialect)
        for row in back:
            value = row[column.name]
            sent = process(value) if process else value
            # The dialect sends a date as midnight of that day (a lossless conversion for a DATE column).
            assert sent == (dt.datetime.combine(value, dt.time()) if type(value) is dt.date else value), column
