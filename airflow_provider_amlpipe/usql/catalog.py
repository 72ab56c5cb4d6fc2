"""The local U-SQL catalog: one DuckDB database file per U-SQL database in a catalog folder.

``<catalog_dir>/<database>.duckdb`` holds the database's managed tables (schema ``dbo`` is DuckDB's
``main``). Each column's U-SQL type (``int?``, ``SqlArray<string>``...) is kept as the column's
comment, so nullability and ``char`` vs ``string`` survive the round trip. At compile time the catalog
is read (read-only, only the databases a script uses) and then tracked in memory as the script's
DDL statements change it; at run time the script ATTACHes the files and DuckDB does the work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.types import UType

MASTER = "master"
DBO = "dbo"
#: The DuckDB schema of each database file holding what DuckDB tables cannot: views, functions,
#: procedures (``objects``) and the partitions added to partitioned tables (``partitions``).
META = "usql_meta"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
#: DuckDB type -> U-SQL type, for tables written by something other than this compiler (no comments).
_FROM_DUCKDB = {v: k for k, v in t.BUILTIN_TYPES.items() if k not in ("char",)}


class CatalogError(Exception):
    """A catalog file that cannot be read."""


@dataclass
class CatalogObject:
    """A view, table-valued function or procedure, kept as the U-SQL text of its CREATE statement.

    The text is re-parsed where the object is used (views and functions are inlined, procedures run
    their body), so a catalog written by an older compiler stays readable. ``line``/``column`` locate
    the statement in ``source``, the script that created it, so errors in the body point there.
    """

    kind: str  # VIEW, FUNCTION, PROCEDURE
    text: str
    source: str
    line: int
    column: int

    def statement(self) -> n.Statement:
        """The parsed CREATE statement (a ``CreateView`` / ``CreateFunction`` / ``CreateProcedure``)."""
        from airflow_provider_amlpipe.usql.parser import Parser

        padded = "\n" * (self.line - 1) + " " * (self.column - 1) + self.text
        return Parser(padded, self.source).statement()


@dataclass
class Database:
    """What the compiler knows about one database; tables and objects are keyed by ``(schema, name)``.

    ``partitioned`` maps a vertically partitioned table to its partition columns (``PARTITIONED BY``).
    """

    name: str
    tables: dict[tuple[str, str], list[tuple[str, UType]]] = field(default_factory=dict)
    objects: dict[tuple[str, str], CatalogObject] = field(default_factory=dict)
    schemas: set[str] = field(default_factory=lambda: {DBO})
    partitioned: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def kind_of(self, schema: str, name: str) -> str | None:
        """TABLE, VIEW, FUNCTION, PROCEDURE, or None: all share one namespace per schema."""
        if (schema, name) in self.tables:
            return "TABLE"
        obj = self.objects.get((schema, name))
        return obj.kind if obj else None


def parse_type(text: str) -> UType | None:
    """The UType of a stored type string such as ``int?`` or ``SqlMap<string,int?>``."""
    from airflow_provider_amlpipe.usql.parser import Parser

    try:
        p = Parser(text, "catalog")
        tr = p.type_ref()
        if p.tok.value:
            return None
    except UsqlError:
        return None
    return t.resolve(tr)


class Catalog:
    """Compile-time view of the catalog folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._dbs: dict[str, Database | None] = {}

    @staticmethod
    def valid_name(name: str) -> bool:
        return bool(_NAME.fullmatch(name)) and name not in (".", "..")

    def file(self, db: str) -> Path:
        return self.directory / f"{db}.duckdb"

    def alias(self, db: str) -> str:
        """The name the database is ATTACHed as at run time."""
        return f"usql_db_{db}"

    def get(self, db: str) -> Database | None:
        """The database, or None if it does not exist (``master`` always exists)."""
        if db not in self._dbs:
            self._dbs[db] = self._load(db)
        return self._dbs[db]

    def create(self, db: str) -> Database:
        d = Database(db)
        self._dbs[db] = d
        return d

    def drop(self, db: str) -> None:
        self._dbs[db] = None

    def _load(self, db: str) -> Database | None:
        path = self.file(db)
        if not path.exists():
            return Database(db) if db == MASTER else None
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as e:
            raise CatalogError(f"cannot read the catalog file {str(path)!r}: {str(e).splitlines()[0]}") from None
        try:
            return _read_database(con, db)
        finally:
            con.close()

    @staticmethod
    def schema_sql(schema: str) -> str:
        """The DuckDB schema of a U-SQL schema (``dbo`` is ``main``)."""
        return "main" if schema == DBO else schema


def _read_database(con: duckdb.DuckDBPyConnection, db: str) -> Database:
    d = Database(db)
    schemas = con.execute(
        "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database() AND NOT internal"
    ).fetchall()
    d.schemas |= {str(s) for (s,) in schemas if s != META}
    rows = con.execute(
        "SELECT schema_name, table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name <> ? AND NOT internal "
        "ORDER BY schema_name, table_name, column_index",
        [META],
    ).fetchall()
    for schema_name, table, column, data_type, nullable, comment in rows:
        schema = DBO if schema_name == "main" else str(schema_name)
        typ = parse_type(comment) if comment else None
        if typ is None:
            name = _FROM_DUCKDB.get(str(data_type))
            if name is None:
                raise CatalogError(f"column {column!r} of table {db}.{schema}.{table} has the type {data_type}, "
                                   "which has no U-SQL equivalent")  # fmt: skip
            typ = UType(name, bool(nullable) or name in t.REFERENCE)
        d.tables.setdefault((schema, str(table)), []).append((str(column), typ))
    for schema_name, table, comment in con.execute(
        "SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = current_database() "
        "AND comment LIKE 'PARTITIONED BY (%)'"
    ).fetchall():
        schema = DBO if schema_name == "main" else str(schema_name)
        cols = str(comment)[len("PARTITIONED BY (") : -1]
        d.partitioned[(schema, str(table))] = tuple(c for c in cols.split(",") if c)
    if (META,) in schemas:
        for schema, name, kind, text, source, line, column in con.execute(
            f"SELECT schema_name, name, kind, definition, source, line, col FROM {META}.objects"
        ).fetchall():
            d.objects[(str(schema), str(name))] = CatalogObject(str(kind), str(text), str(source), line, column)
    return d


#: Created in a database file the first time it stores a view, function, procedure or partition.
META_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {{db}}.{META};\n"
    f"CREATE TABLE IF NOT EXISTS {{db}}.{META}.objects (schema_name VARCHAR, name VARCHAR, kind VARCHAR, "
    "definition VARCHAR, source VARCHAR, line INTEGER, col INTEGER);\n"
    f"CREATE TABLE IF NOT EXISTS {{db}}.{META}.partitions (schema_name VARCHAR, table_name VARCHAR, "
    "label VARCHAR[]);"
)
