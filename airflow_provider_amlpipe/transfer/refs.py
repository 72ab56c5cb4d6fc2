"""What a data transfer's ends are: ``SqlDataReference`` and the rules for file / directory ends.

A ``DataPath`` (a file or folder in a datastore) or a :class:`SqlDataReference` (a table, query or
stored procedure behind a database connection) can be either end of a transfer. Everything here
is checked without I/O, so a DAG file with a bad reference fails when it is parsed.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_amlpipe.data.refs import DataPath, is_template
from airflow_provider_amlpipe.errors import ConfigurationError

#: Files copied at once by a transfer (parallel requests; memory is bounded by the chunk size times this).
DEFAULT_WORKERS = 8

FILE = "file"
DIRECTORY = "directory"
REFERENCE_TYPES = (FILE, DIRECTORY)
#: File formats a SQL end exports to or imports from, by the file's extension.
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_SQL_KINDS = ("sql_table", "sql_query", "sql_stored_procedure")


class SqlDataReference:
    """A table, a query or a stored procedure of the database named by an Airflow connection.

    AML's ``SqlDataReference``: give exactly one of ``sql_table``, ``sql_query`` and
    ``sql_stored_procedure``. As a source each exports its rows; as a destination only a table can
    receive rows (appended, in one transaction).

    :param connection: Airflow connection id of a PostgreSQL (``postgres``), MySQL / MariaDB
        (``mysql``) or SQL Server / Azure SQL (``mssql``) database.
    :param change_marker: an optional query whose result changes whenever the source's rows do
        (such as ``SELECT max(updated_at), count(*) FROM orders``): the transfer is then reused while
        its result is unchanged, without the database reading the rows. Without it a table or query is
        fingerprinted by a digest the database computes over its rows; a stored procedure, whose
        result cannot be digested without running it, is never reused.
    """

    template_fields = ("sql_table", "sql_query", "sql_stored_procedure", "change_marker")

    def __init__(
        self,
        connection: str,
        *,
        sql_table: str | None = None,
        sql_query: str | None = None,
        sql_stored_procedure: str | None = None,
        change_marker: str | None = None,
    ) -> None:
        self.connection = connection
        self.sql_table = sql_table
        self.sql_query = sql_query
        self.sql_stored_procedure = sql_stored_procedure
        self.change_marker = change_marker

    @property
    def kind(self) -> str:
        """Which of ``sql_table`` / ``sql_query`` / ``sql_stored_procedure`` is set (call :meth:`validate` first)."""
        return next(k for k in _SQL_KINDS if getattr(self, k) is not None)

    @property
    def text(self) -> str:
        """The table name, query or procedure name."""
        return str(getattr(self, self.kind)).strip()

    def validate(self, field: str, *, rendered: bool = True) -> None:
        """Exactly one of table / query / procedure, each a non-empty string (templates are left for later)."""
        if not isinstance(self.connection, str) or not self.connection.strip():
            raise ConfigurationError(
                f"{field}.connection",
                f"expected an Airflow connection id, got {self.connection!r}",
                "pass SqlDataReference('<conn id>', sql_table='...')",
            )
        given = [k for k in _SQL_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            problem = "none of" if not given else f"{len(given)} of ({', '.join(given)})"
            raise ConfigurationError(
                field,
                f"{problem} sql_table, sql_query and sql_stored_procedure given; a reference is exactly one",
                "pass exactly one, such as SqlDataReference('my_db', sql_table='orders')",
            )
        for name in (*given, "change_marker"):
            value = getattr(self, name)
            if value is None or (not rendered and is_template(value)):
                continue
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"{field}.{name}", f"expected non-empty SQL text, got {value!r}", "fix it")
        if self.sql_table is not None and isinstance(self.sql_table, str) and not is_template(self.sql_table):
            check_table_name(f"{field}.sql_table", self.sql_table)

    def describe(self) -> str:
        """A short description for logs and records (never the connection's secrets)."""
        return f"{self.connection}:{self.kind}={self.text[:200]!r}"

    def __repr__(self) -> str:
        return f"SqlDataReference({self.connection!r}, {self.kind}={getattr(self, self.kind)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SqlDataReference) and _identity(self) == _identity(other)

    def __hash__(self) -> int:
        return hash(_identity(self))


def _identity(ref: SqlDataReference) -> tuple[Any, ...]:
    return (ref.connection, ref.sql_table, ref.sql_query, ref.sql_stored_procedure, ref.change_marker)


def check_table_name(field: str, name: str) -> list[str]:
    """A table name as its parts (``schema.table`` or ``table``); quoting is the dialect's business."""
    parts = name.strip().split(".")
    if len(parts) > 2 or any(not p or any(c in p for c in " ;\"'`()[]\n\t") for p in parts):
        raise ConfigurationError(
            field,
            f"{name!r} is not a table name",
            "give a table as 'table' or 'schema.table' without quotes or brackets (letters, digits, '_'; the"
            " transfer quotes each part; a query goes in sql_query)",
        )
    return parts


def check_reference_type(field: str, value: object) -> str | None:
    """``None`` (decided from the data, AML's rule), ``'file'`` or ``'directory'``."""
    if value is None or value in REFERENCE_TYPES:
        return value
    raise ConfigurationError(field, f"unknown reference type {value!r}", "use 'file', 'directory' or leave it out")


def check_end(field: str, value: object) -> DataPath | SqlDataReference:
    """A transfer end: a ``DataPath`` or a ``SqlDataReference``, validated as far as it is rendered."""
    if isinstance(value, SqlDataReference):
        value.validate(field, rendered=False)
        return value
    if isinstance(value, DataPath):
        value.validate(field, rendered=False)
        return value
    raise ConfigurationError(
        field,
        f"expected a DataPath or a SqlDataReference, got {type(value).__name__} ({str(value)[:60]!r})",
        "pass DataPath('<datastore conn id>', 'path') or SqlDataReference('<db conn id>', sql_table='...')",
    )


def file_format(field: str, path: str) -> str:
    """The format a SQL end reads or writes at ``path``: ``csv`` or ``parquet``, by its extension."""
    lower = path.lower()
    for ext, fmt in FORMATS.items():
        if lower.endswith(ext):
            return fmt
    raise ConfigurationError(
        field,
        f"{path!r} has no extension telling the file format of the SQL rows",
        f"name the file with one of {', '.join(FORMATS)}, such as 'exports/orders.csv'",
    )


def check_pair(
    source: DataPath | SqlDataReference,
    destination: DataPath | SqlDataReference,
    source_type: str | None,
    destination_type: str | None,
) -> None:
    """Refuse end pairs no transfer can do, from what is known without I/O."""
    if isinstance(destination, SqlDataReference):
        if destination.sql_table is None:
            raise ConfigurationError(
                "destination_data_reference",
                f"rows can only be written into a table, not a {destination.kind.removeprefix('sql_')}",
                "pass SqlDataReference('<conn id>', sql_table='<existing table>')",
            )
        if isinstance(source, SqlDataReference):
            raise ConfigurationError(
                "destination_data_reference",
                "a SQL to SQL transfer is not supported",
                "export to a file first (one transfer step), then import it (a second one)",
            )
        if source_type == DIRECTORY:
            raise ConfigurationError(
                "source_reference_type",
                "a directory cannot be imported into a SQL table",
                "point the source at one CSV or Parquet file and use source_reference_type='file'",
            )
    if isinstance(source, SqlDataReference):
        if source_type is not None and source_type != FILE:
            raise ConfigurationError("source_reference_type", "a SQL source is rows, not a directory", "leave it out")
        if isinstance(destination, DataPath):
            if destination_type == DIRECTORY:
                raise ConfigurationError(
                    "destination_reference_type",
                    "SQL rows are exported to one file",
                    "use destination_reference_type='file' with a path such as 'exports/orders.csv'",
                )
            if not is_template(destination.path):
                file_format("destination_data_reference.path", destination.path)
    if isinstance(source, DataPath) and isinstance(destination, SqlDataReference) and not is_template(source.path):
        file_format("source_data_reference.path", source.path)
    if source == destination or (
        isinstance(source, DataPath)
        and isinstance(destination, DataPath)
        and source.datastore == destination.datastore
        and not is_template(source.path)
        and not is_template(destination.path)
        and _overlap(source.path.strip("/"), destination.path.strip("/"))
    ):
        raise ConfigurationError(
            "destination_data_reference",
            f"the destination {destination!r} is the source or lies inside it (or around it)",
            "write to another path or datastore",
        )


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")
