"""SQL ends of a transfer: export rows to CSV / Parquet, import a file into a table, change markers.

PostgreSQL, MySQL / MariaDB and SQL Server / Azure SQL, through SQLAlchemy. Rows stream in batches
(a server-side cursor; on SQL Server the driver reads rows off the wire as they are fetched), so
memory stays flat whatever the row count; PostgreSQL CSV goes through ``COPY`` both ways.

CSV is written so that it reads back faithfully: a NULL is an empty unquoted field and every other
value is quoted (so an empty string is ``""``), dates and times are ISO 8601, decimals keep their
digits. An import runs in one transaction: it adds every row or none.

Change markers (what a SQL source is fingerprinted by; see docs/data-transfer.md):

- ``change_marker=`` given: the result of that query;
- else a table or query: a digest the database computes over the rows (PostgreSQL: MD5 of the
  sorted MD5s of each row's text; MySQL / MariaDB: the count and two 60-bit sums of each row's
  MD5; SQL Server: the count and two 56-bit sums of the MD5 of each row as JSON) -- the rows are
  read by the database, never sent here;
- a stored procedure without ``change_marker``: none (the transfer always runs).
"""

from __future__ import annotations

import csv
import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError
from airflow_provider_amlpipe.transfer.progress import TransferLog
from airflow_provider_amlpipe.transfer.refs import SqlDataReference, check_table_name

POSTGRES = "postgresql"
MYSQL = "mysql"
MSSQL = "mssql"
BATCH_ROWS = 20_000
_CSV_WRITE = pacsv.WriteOptions(quoting_style="all_valid")


@dataclass
class SqlDatabase:
    """A database named by a connection: its SQLAlchemy URL (with the password: never log it)."""

    connection: str
    url: URL

    def __post_init__(self) -> None:
        self._engine: Engine | None = None

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def server(self) -> str:
        """Where the database is, for records and fingerprints: no user name, no password."""
        port = f":{self.url.port}" if self.url.port else ""
        return f"{self.dialect}://{self.url.host}{port}/{self.url.database}"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.url, pool_pre_ping=True)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def quote_table(engine: Engine, name: str) -> str:
    """``schema.table`` quoted part by part in the dialect's way (``"s"."t"``, `` `s`.`t` ``, ``[s].[t]``).

    Always quoted, so a name that is a reserved word or holds a quote character stays one name.
    """
    prep = engine.dialect.identifier_preparer
    return ".".join(prep.quote_identifier(part) for part in check_table_name("sql_table", name))


def select_sql(db: SqlDatabase, ref: SqlDataReference) -> str:
    """The statement that yields the reference's rows."""
    if ref.sql_table is not None:
        return f"SELECT * FROM {quote_table(db.engine, ref.text)}"
    if ref.sql_query is not None:
        return ref.text.rstrip().rstrip(";").rstrip()
    name = quote_table(db.engine, ref.text)
    if db.dialect == POSTGRES:  # a set-returning function
        return f"SELECT * FROM {name}()"
    if db.dialect == MSSQL:
        return f"EXEC {name}"
    return f"CALL {name}()"


def table_columns(db: SqlDatabase, field: str, table: str) -> list[dict[str, Any]]:
    """The columns of an existing table; an error naming ``field`` when there is no such table."""
    parts = check_table_name(field, table)
    schema, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    try:
        inspector = sa.inspect(db.engine)
        if not inspector.has_table(name, schema=schema):
            raise ConfigurationError(
                field,
                f"table {table!r} does not exist in {db.server} (connection {db.connection!r})",
                "create the table first (a transfer appends to an existing table) or correct its name",
            )
        return [dict(c) for c in inspector.get_columns(name, schema=schema)]
    except sa.exc.OperationalError as exc:
        raise ConfigurationError(
            f"{field} (connection {db.connection!r})",
            f"cannot reach the database at {db.server}: {str(exc.orig).splitlines()[0][:200]}",
            "check the connection's host, port, database and credentials",
        ) from None


def marker(db: SqlDatabase, ref: SqlDataReference) -> str | None:
    """The source's change marker (see the module's docstring); ``None`` when it has none."""
    if ref.change_marker is None and ref.sql_stored_procedure is not None:
        return None  # nothing to ask the database
    with db.engine.connect() as conn:
        if ref.change_marker is not None:
            rows = conn.exec_driver_sql(ref.change_marker).fetchall()
            return "marker:" + json.dumps([[str(v) for v in row] for row in rows])
        select = select_sql(db, ref)
        columns: list[str] = []
        if db.dialect == MYSQL:
            columns = list(conn.exec_driver_sql(f"SELECT * FROM ({select}) AS t LIMIT 0").keys())
        values = conn.exec_driver_sql(digest_sql(db, select, columns)).fetchone()
        return "rows:" + ":".join(str(v) for v in (values or ()))


def digest_sql(db: SqlDatabase, select: str, columns: list[str]) -> str:
    """The query with which the database digests the rows of ``select`` (``columns``: its column names,
    needed on MySQL / MariaDB only). Order-insensitive; duplicate rows count."""
    if db.dialect == POSTGRES:
        return (
            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '')"
            f" FROM ({select}) AS t"
        )
    if db.dialect == MSSQL:
        # Each row as JSON (every type rendered in full, NULLs included), hashed; two 56-bit slices of
        # each hash summed as DECIMAL(38, 0), which no row count overflows. FOR JSON: SQL Server 2016+.
        row = "(SELECT t.* FOR JSON PATH, INCLUDE_NULL_VALUES, WITHOUT_ARRAY_WRAPPER)"
        slices = [f"SUM(CONVERT(DECIMAL(38, 0), CONVERT(BIGINT, SUBSTRING(h, {i}, 7))))" for i in (1, 9)]
        return (
            f"SELECT COUNT_BIG(*), {', '.join(slices)}"
            f" FROM (SELECT HASHBYTES('MD5', {row}) AS h FROM ({select}) AS t) AS d"
        )
    prep = db.engine.dialect.identifier_preparer
    row = ", ".join(f"IFNULL(CAST(t.{prep.quote_identifier(c)} AS CHAR), 0x00)" for c in columns)
    digest = f"MD5(CONCAT_WS(0x1f, {row}))"
    return (
        f"SELECT COUNT(*), SUM(CONV(LEFT({digest}, 15), 16, 10)), SUM(CONV(RIGHT({digest}, 15), 16, 10))"
        f" FROM ({select}) AS t"
    )


# -- export ----------------------------------------------------------------------------------------


def export(
    db: SqlDatabase, ref: SqlDataReference, path: Path, fmt: str, log: TransferLog, cancel: threading.Event
) -> int:
    """Write the reference's rows to ``path`` as ``fmt`` (``csv`` / ``parquet``); the row count."""
    select = select_sql(db, ref)
    if fmt == "csv" and db.dialect == POSTGRES:
        return _pg_copy_out(db, select, path)
    with db.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=BATCH_ROWS).exec_driver_sql(select)
        return write_rows(list(result.keys()), result.partitions(BATCH_ROWS), path, fmt, log, cancel)


def write_rows(
    names: list[str], batches: Iterable[Sequence[Any]], path: Path, fmt: str, log: TransferLog, cancel: threading.Event
) -> int:
    """Write batches of rows (tuples of the driver's Python values) to ``path`` as ``fmt``; the row count.

    Each column takes the Arrow type of its values in the first batch (see docs/data-transfer.md).
    """
    rows = 0
    writer: Any = None
    schema: pa.Schema | None = None

    def open_writer(schema: pa.Schema) -> Any:
        if fmt == "parquet":
            return pq.ParquetWriter(path, schema)
        return pacsv.CSVWriter(path, schema, write_options=_CSV_WRITE)

    try:
        for batch in batches:
            if cancel.is_set():
                raise StepFailedError("the transfer was cancelled")
            table = _arrow_batch(names, batch, schema)
            if fmt == "csv":
                table = _plain_decimals(table)
            if writer is None:
                schema = table.schema
                writer = open_writer(schema)
            writer.write_table(table)
            rows += len(batch)
            log.info("export: %d rows written", rows)
        if writer is None:  # no rows: a file with the header (CSV) or the empty schema (Parquet)
            writer = open_writer(pa.schema([(n, pa.string()) for n in names]))
    finally:
        if writer is not None:
            writer.close()
    return rows


def _pg_copy_out(db: SqlDatabase, select: str, path: Path) -> int:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        with open(path, "w", encoding="utf-8", newline="") as handle:
            cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER, FORCE_QUOTE *)", handle)
        rows = int(cursor.rowcount)
        raw.commit()
        return rows
    finally:
        raw.close()


def _plain_decimals(table: pa.Table) -> pa.Table:
    """Decimal columns as their digits (``0.0000000001``): Arrow writes small ones in scientific notation
    (``1E-10``), which SQL Server does not read back into a decimal column."""
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            text = [None if v is None else format(v, "f") for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(text, type=pa.string()))
    return table


def _column(values: list[Any], kind: pa.DataType | None) -> pa.Array:
    if isinstance(next((v for v in values if v is not None), None), uuid.UUID):
        # A uniqueidentifier (SQL Server) or uuid: its canonical text, which CSV can hold and every
        # database reads back (Arrow's own UUID type is not writable as CSV).
        values = [None if v is None else str(v) for v in values]
    if kind is not None and not pa.types.is_null(kind):
        try:
            return pa.array(values, type=kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            pass  # a value the first batch's type cannot hold: written as text, like an unknown type
        return (
            pa.array([None if v is None else str(v) for v in values], type=kind)
            if pa.types.is_string(kind)
            else (pa.array([None if v is None else str(v) for v in values]).cast(kind))
        )
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    if pa.types.is_null(array.type):
        return array.cast(pa.string())
    if pa.types.is_decimal(array.type):  # the widest precision, so later batches fit
        return array.cast(pa.decimal128(38, array.type.scale))
    if pa.types.is_struct(array.type) or pa.types.is_list(array.type):
        return pa.array([None if v is None else json.dumps(v, default=str) for v in values], type=pa.string())
    return array


def _arrow_batch(names: list[str], rows: Any, schema: pa.Schema | None) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = [_column(list(col), None if schema is None else schema.field(i).type) for i, col in enumerate(columns)]
    return pa.Table.from_arrays(arrays, names=names)


# -- import ----------------------------------------------------------------------------------------


def file_header(path: Path, fmt: str) -> list[str]:
    """The column names a CSV (its header row) or Parquet file carries."""
    if fmt == "parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    with open(path, encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle), [])


def check_columns(field: str, header: list[str], columns: list[dict[str, Any]], table: str) -> None:
    """Every header name must be a column, and every column without a default must be in the header."""
    names = [str(c["name"]) for c in columns]
    unknown = [h for h in header if h not in names]
    missing = [
        str(c["name"])
        for c in columns
        if c["name"] not in header
        and not c.get("nullable", True)
        and c.get("default") is None
        and c.get("autoincrement") is not True
    ]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if unknown or missing or duplicated or not header:
        problems = []
        if not header:
            problems.append("the file has no header row")
        if unknown:
            problems.append(f"file column(s) {', '.join(map(repr, unknown))} are not columns of {table!r}")
        if missing:
            problems.append(f"required column(s) {', '.join(map(repr, missing))} of {table!r} are not in the file")
        if duplicated:
            problems.append(f"column(s) {', '.join(map(repr, duplicated))} appear twice in the header")
        raise ConfigurationError(
            field,
            "; ".join(problems) + f" (table columns: {', '.join(names)})",
            "make the file's header row name the table's columns",
        )


def import_file(db: SqlDatabase, table: str, path: Path, fmt: str, log: TransferLog, cancel: threading.Event) -> int:
    """Append the rows of ``path`` to ``table`` in one transaction; the row count."""
    field = "destination_data_reference.sql_table"
    columns = table_columns(db, field, table)
    header = file_header(path, fmt)
    check_columns("source_data_reference", header, columns, table)
    if fmt == "csv" and db.dialect == POSTGRES:
        return _pg_copy_in(db, table, header, path)
    parts = check_table_name(field, table)
    schema, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    rows = 0
    with db.engine.begin() as conn:
        statement = (
            text_insert(name, schema, header)
            if fmt == "csv"
            else sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema).insert()
        )
        for batch in _file_batches(path, fmt, header):
            if cancel.is_set():
                raise StepFailedError("the transfer was cancelled; the import was rolled back")
            records = batch.to_pylist()
            if records:
                conn.execute(statement, records)
            rows += len(records)
            log.info("import: %d rows sent (committed together at the end)", rows)
    return rows


def text_insert(name: str, schema: str | None, header: list[str]) -> sa.Insert:
    """The INSERT of a CSV file's rows: its fields go to the database as the text they are, which the
    database converts to each column's type as ``COPY`` does (a SQL Server BIT column takes ``true``,
    which SQLAlchemy's Boolean type would refuse as a Python value)."""
    return sa.table(name, *(sa.column(h) for h in header), schema=schema).insert()


def _file_batches(path: Path, fmt: str, header: list[str]) -> Any:
    if fmt == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)
        return
    convert = pacsv.ConvertOptions(
        column_types={h: pa.string() for h in header}, strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    with pacsv.open_csv(path, convert_options=convert) as reader:
        yield from reader


def _pg_copy_in(db: SqlDatabase, table: str, header: list[str], path: Path) -> int:
    prep = db.engine.dialect.identifier_preparer
    columns = ", ".join(prep.quote_identifier(h) for h in header)
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        with open(path, encoding="utf-8", newline="") as handle:
            cursor.copy_expert(
                f"COPY {quote_table(db.engine, table)} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER)", handle
            )
        rows = int(cursor.rowcount)
        raw.commit()
        return rows
    except Exception:
        raw.rollback()
        raise
    finally:
        raw.close()
