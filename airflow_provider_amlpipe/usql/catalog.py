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

from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.types import UType

MASTER = "master"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
#: DuckDB type -> U-SQL type, for tables written by something other than this compiler (no comments).
_FROM_DUCKDB = {v: k for k, v in t.BUILTIN_TYPES.items() if k not in ("char",)}


class CatalogError(Exception):
    """A catalog file that cannot be read."""


@dataclass
class Database:
    """What the compiler knows about one database: ``table name -> [(column, type)]`` (schema dbo)."""

    name: str
    tables: dict[str, list[tuple[str, UType]]] = field(default_factory=dict)


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
        d = Database(db)
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as e:
            raise CatalogError(f"cannot read the catalog file {str(path)!r}: {str(e).splitlines()[0]}") from None
        try:
            rows = con.execute(
                "SELECT table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns() "
                "WHERE schema_name = 'main' AND NOT internal ORDER BY table_name, column_index"
            ).fetchall()
        finally:
            con.close()
        for table, column, data_type, nullable, comment in rows:
            typ = parse_type(comment) if comment else None
            if typ is None:
                name = _FROM_DUCKDB.get(str(data_type))
                if name is None:
                    raise CatalogError(f"column {column!r} of table {db}.dbo.{table} has the type {data_type}, "
                                       "which has no U-SQL equivalent")  # fmt: skip
                typ = UType(name, bool(nullable) or name in t.REFERENCE)
            d.tables.setdefault(str(table), []).append((str(column), typ))
        return d
