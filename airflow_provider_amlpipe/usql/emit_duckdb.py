"""The DuckDB emitter: the intermediate form -> DuckDB SQL statements (views, COPY ... TO).

Rowset assignments become temporary views (U-SQL rowset variables are named, inlined query
expressions, like views); EXTRACT becomes ``read_csv`` with every field read as text and then
converted with C# parsing rules; OUTPUT becomes ``COPY (one formatted line per row) TO path``, so
DuckDB streams the files itself and the output bytes follow the outputter's documented format.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

from airflow_provider_amlpipe.usql import jobinfo, parquet
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.catalog import (
    DBO,
    MASTER,
    META,
    META_DDL,
    Catalog,
    CatalogError,
    CatalogObject,
    Database,
)
from airflow_provider_amlpipe.usql.consts import Encoding, NotConstant, fold, fold_datetime_parse
from airflow_provider_amlpipe.usql.csformat import DOUBLE_DIGITS, FLOAT_DIGITS, FormatError, to_strftime
from airflow_provider_amlpipe.usql.duckdb_exprs import (
    STRICT_INTEGER,
    ExprTranslator,
    Scope,
    Typed,
    cs_tostring,
    lit,
    non_column_type,
    parse_string_as,
    q,
)
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.filesets import (
    DATE_PARTS,
    FileSet,
    FileSetError,
    Placeholder,
    is_file_set,
    parse_file_set,
)
from airflow_provider_amlpipe.usql.jobinfo import JobInfo
from airflow_provider_amlpipe.usql.options import DUCKDB_ENCODINGS, TextFormat, text_format
from airflow_provider_amlpipe.usql.parser import INFERRED_TYPE
from airflow_provider_amlpipe.usql.paths import PathMap, is_remote
from airflow_provider_amlpipe.usql.types import UType


def _real_format_macros(name: str, digits: int) -> str:
    """The macro ``name(x)``: .NET Framework's ``ToString()`` of a double (``digits`` 15) or float (7), which is C's
    ``%G`` (see ``csformat.dotnet_real``), except that an exact tie (the exact binary value has ``digits + 1``
    significant digits, the last a 5; 41 digits show it) is moved one ulp away from zero first: .NET Framework
    rounds ties away from zero, C to even. -0.0 prints 0. (The LIKEs are a cheap first test: the last digit of a
    tie's shortest text, ``12.5``, ``125.0``, ``1.25e+20``, is its 5.)"""
    shortest = "CAST(v AS VARCHAR)"
    tie = (f"({shortest} LIKE '%5' OR {shortest} LIKE '%5.0' OR {shortest} LIKE '%5e%') "
           f"AND regexp_full_match(printf('%.40E', v), '-?[0-9]\\.[0-9]{{{digits - 1}}}50*E.*')")  # fmt: skip
    return (
        f"CREATE OR REPLACE TEMP MACRO {name}_v(v) AS CASE WHEN v IS NULL THEN NULL WHEN isnan(v) THEN 'NaN' "
        "WHEN isinf(v) THEN CASE WHEN v > 0 THEN 'Infinity' ELSE '-Infinity' END WHEN v = 0 THEN '0' "
        f"ELSE printf('%.{digits}G', CASE WHEN {tie} THEN nextafter(v, v * 2) ELSE v END) END;\n"
        f"CREATE OR REPLACE TEMP MACRO {name}(x) AS {name}_v(CAST(x AS DOUBLE));\n"
        # |x| rounded to `digits` significant digits (ties away from zero) in printf's E form, for custom formats
        f"CREATE OR REPLACE TEMP MACRO {name}_e_v(v) AS "
        f"printf('%.{digits - 1}E', abs(CASE WHEN {tie} THEN nextafter(v, v * 2) ELSE v END));\n"
        f"CREATE OR REPLACE TEMP MACRO {name}_e(x) AS {name}_e_v(CAST(x AS DOUBLE));\n"
    )


#: Custom numeric formats (``duckdb_exprs.custom_number_sql``, ``csformat.custom_number``):
#: usql_cfmt_n(m, k) is the digits of round(m * 10^k) half away from zero without leading zeros ('' for 0), m a
#: digit string of at most 38 digits; usql_cfmt_int/usql_cfmt_frac split such digits of |x| * 10^d into the
#: integer part (zero-padded to `forced` digits, optionally grouped by threes) and the fraction (trailing zeros
#: removed, padded to `mindec`).
_CUSTOM_FORMAT_MACROS = (
    "CREATE OR REPLACE TEMP MACRO usql_cfmt_n(m, k) AS ltrim(CASE WHEN k >= 0 THEN m || repeat('0', k) "
    "WHEN k < -38 THEN '' ELSE CAST((CAST(m AS HUGEINT) + CAST('5' || repeat('0', least(-k, 38) - 1) AS HUGEINT)) "
    "// CAST('1' || repeat('0', least(-k, 38)) AS HUGEINT) AS VARCHAR) END, '0');\n"
    "CREATE OR REPLACE TEMP MACRO usql_cfmt_group(i) AS reverse(array_to_string(list_transform("
    "range(0, length(i), 3), lambda j: substring(reverse(i), j + 1, 3)), ','));\n"
    "CREATE OR REPLACE TEMP MACRO usql_cfmt_pad(i, forced) AS "
    "lpad(i, CAST(greatest(forced, length(i)) AS INTEGER), '0');\n"
    "CREATE OR REPLACE TEMP MACRO usql_cfmt_i(s, d, forced) AS usql_cfmt_pad(CASE WHEN length(s) > d "
    "THEN left(s, length(s) - d) ELSE '' END, forced);\n"
    "CREATE OR REPLACE TEMP MACRO usql_cfmt_int(s, d, forced, grouped) AS CASE WHEN grouped "
    "THEN usql_cfmt_group(usql_cfmt_i(s, d, forced)) ELSE usql_cfmt_i(s, d, forced) END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_cfmt_frac(s, d, mindec) AS rpad(rtrim(right(repeat('0', d) || s, d), '0'), CAST("
    "greatest(mindec, length(rtrim(right(repeat('0', d) || s, d), '0'))) AS INTEGER), '0');\n"
)


PRELUDE = (
    _real_format_macros("usql_fmt_real", DOUBLE_DIGITS)
    + _real_format_macros("usql_fmt_float", FLOAT_DIGITS)
    + _CUSTOM_FORMAT_MACROS
    + "CREATE OR REPLACE TEMP MACRO usql_fmt_decimal(x) AS CASE WHEN CAST(x AS VARCHAR) LIKE '%.%' "
    "THEN rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.') ELSE CAST(x AS VARCHAR) END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_parse_datetime(s) AS CASE WHEN s IS NULL THEN NULL ELSE coalesce("
    "try_cast(trim(s) AS TIMESTAMP), try_strptime(trim(s), ['%m/%d/%Y %I:%M:%S %p', '%m/%d/%Y %H:%M:%S', "
    "'%m/%d/%Y']), error('String was not recognized as a valid DateTime: ' || s)) END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_not_quoted_empty(s, col) AS CASE WHEN s = '' THEN error('conversion error: "
    "a quoted empty field (two quotes) is not a value of the nullable column ' || col) ELSE s END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_required(s, col) AS CASE WHEN s IS NULL OR trim(s) = '' THEN "
    "error('conversion error: null or empty value for the non-nullable column ' || col) ELSE s END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_int_text(s, what) AS CASE WHEN s IS NULL OR regexp_full_match(s, "
    + STRICT_INTEGER
    + ") THEN s ELSE error('conversion error: input string ''' || s || ''' is not in a correct format for ' "
    "|| what) END;"
)


#: C#'s int.Parse format (as STRICT_INTEGER), for parameter values checked at compile time.
_CS_INTEGER = re.compile(r"[\t-\r ]*[+-]?[0-9]+[\t-\r ]*")
#: The same as a DuckDB regex whose group 1 is the signed digits.
_INTEGER_GROUP = "'^[\\t-\\r ]*([+-]?[0-9]+)[\\t-\\r ]*$'"


@dataclass(frozen=True)
class EmittedStatement:
    """One DuckDB statement and the U-SQL statement it came from."""

    kind: str  # "view", "output", "comment", "catalog"
    sql: str
    line: int
    column: int
    output_path: Path | None = None
    ensure_dir: Path | None = None  # create this folder before running the statement (the catalog folder)
    drop_file: Path | None = None  # delete this file after running the statement (DROP DATABASE)
    output_encoding: str | None = None  # Python codec the UTF-8 output is re-encoded to (None: keep UTF-8)
    output_row_delimiter: str = "\r\n"  # what ends each line of the output (to name the line of an encoding error)
    input_copy: InputCopy | None = None  # kind "input": make this UTF-8 copy of an input instead of running SQL


@dataclass(frozen=True)
class InputCopy:
    """An EXTRACT input in an encoding DuckDB cannot read, which the runner re-encodes to UTF-8 (in chunks) before
    the statement that reads it: each file ``f`` of ``source`` (a path, or a file set's glob whose names must
    fully match ``regex``) is copied to ``folder / f.relative_to(f.anchor)``. ``root`` holds all copies of a
    compiled script; the runner deletes it at the end of the run."""

    source: str
    codec: str
    folder: Path
    root: Path
    regex: str | None = None


@dataclass(frozen=True)
class QualifiedName:
    """``database.schema.name`` of a catalog object."""

    db: str
    schema: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def __str__(self) -> str:
        return f"{self.db}.{self.schema}.{self.name}"


#: An argument whose value is not known at compile time.
_NO_CONSTANT = object()


def _meta_key(nm: QualifiedName, name_column: str, prefix: str = "") -> str:
    """The SQL condition selecting ``nm``'s rows in a ``usql_meta`` table."""
    return f"{prefix}schema_name = {lit(nm.schema)} AND {prefix}{name_column} = {lit(nm.name)}"


def _sql_text(text: str) -> str:
    """``text`` inside a SQL string literal."""
    return text.replace("'", "''")


@dataclass(frozen=True)
class Rowset:
    view: str
    columns: tuple[tuple[str, UType], ...]


class ScriptName(QualifiedName):
    """The name of a script-bound object: shown as ``@name``; ``db``/``schema`` are its body's defaults (the
    context it was declared in)."""

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ScriptBound:
    """A ``DECLARE FUNCTION|PROCEDURE|VIEW @name`` object; a view's rowset is compiled where it is declared."""

    name: ScriptName
    obj: CatalogObject
    definition: n.CreateFunction | n.CreateProcedure | n.CreateView
    rowset: Rowset | None = None


class DuckDbEmitter:
    """Compiles a parsed script to DuckDB statements; one instance per script."""

    def __init__(
        self,
        source: str,
        params: Mapping[str, str],
        base_dir: Path,
        *,
        catalog_dir: Path | None = None,
        path_map: Mapping[str, str | Path] | None = None,
        job_info: JobInfo | None = None,
    ) -> None:
        self.source = source
        self.job_info = (job_info or JobInfo.local(source)).values()
        self.script_objects: dict[str, ScriptBound] = {}  # DECLARE FUNCTION|PROCEDURE|VIEW @name
        self.path_map = PathMap(path_map)
        self.catalog = Catalog(catalog_dir or base_dir / ".usql-catalog")
        self.current_db = MASTER
        self.current_schema = DBO
        self.call_depth = 0  # nested view / function / procedure inlining (U-SQL allows 50 levels)
        self.attached: set[str] = set()
        self.params = dict(params)
        self.base_dir = base_dir
        self.constants: dict[str, object] = self._system_constants()
        self.variables: dict[str, Typed] = {}
        self.rowsets: dict[str, Rowset] = {}
        self.view_counter: dict[str, int] = {}
        self.view_names: set[str] = set()  # lower case: DuckDB's and Spark's identifiers are case-insensitive
        self.x = ExprTranslator(source, self._variable)
        self.out: list[EmittedStatement] = []
        self.copy_root: Path | None = None  # where the UTF-8 copies of inputs go (see InputCopy), made when needed

    # ------------------------------------------------------------ dialect hooks (overridden for Spark)
    @staticmethod
    def _ident(name: str) -> str:
        """A quoted identifier."""
        return q(name)

    @staticmethod
    def _type_sql(ty: UType) -> str:
        """The SQL type of a U-SQL type."""
        return ty.duckdb()

    @staticmethod
    def _values_table(rows: str) -> str:
        """A ``VALUES`` table of the parenthesised, comma-separated ``rows``."""
        return f"(VALUES {rows})"

    def err(self, pos: n.Pos, construct: str, message: str) -> UsqlError:
        return UsqlError(self.source, pos.line, pos.column, construct, message)

    # ------------------------------------------------------------ statements
    def emit(self, script: n.Script) -> list[EmittedStatement]:
        externals = {s.name for s in script.statements if isinstance(s, n.Declare) and s.external}
        unknown = sorted(set(self.params) - externals)
        if unknown:
            raise UsqlError(self.source, 1, 1, "DECLARE EXTERNAL",
                            f"parameter(s) {', '.join(unknown)} match no DECLARE EXTERNAL in the script")  # fmt: skip
        declared_later = {s.name for s in script.statements if isinstance(s, n.Declare) and not s.external}
        for st in script.statements:
            if isinstance(st, n.Declare):
                if st.external and st.name in declared_later:
                    continue  # a later DECLARE overrides the EXTERNAL default (how AML passes parameters)
                self.declare(st)
            else:
                self.statement(st)
        return self.out

    def statement(self, st: n.Statement) -> None:
        """Compiles one statement (a script's, or one of a procedure's body)."""
        if isinstance(st, n.Declare):
            self.declare(st)
        elif isinstance(st, n.Assign):
            self.assign(st)
        elif isinstance(st, n.Output):
            self.output(st)
        elif type(st) in _CATALOG_HANDLERS:
            getattr(self, _CATALOG_HANDLERS[type(st)])(st)
        elif isinstance(st, n.Ignored):
            self.out.append(EmittedStatement("comment", f"-- ignored: {st.text}", st.pos.line, st.pos.column))
        else:
            raise self.err(st.pos, "statement", f"unsupported statement {type(st).__name__}")

    # ------------------------------------------------------------ catalog
    def _note(self, pos: n.Pos, text: str) -> None:
        self.out.append(EmittedStatement("comment", f"-- note: {text}", pos.line, pos.column))

    def _db(self, name: str, pos: n.Pos) -> Database | None:
        if not Catalog.valid_name(name):
            raise self.err(pos, "DATABASE", f"{name!r} is not a database name this catalog can store")
        try:
            return self.catalog.get(name)
        except CatalogError as e:
            raise self.err(pos, "catalog", str(e)) from None

    def _attach(self, db: str, pos: n.Pos) -> str:
        alias = self.catalog.alias(db)
        if db not in self.attached:
            self.attached.add(db)
            sql = f"ATTACH IF NOT EXISTS {lit(str(self.catalog.file(db)))} AS {q(alias)};"
            self.out.append(EmittedStatement("catalog", sql, pos.line, pos.column, ensure_dir=self.catalog.directory))
        return q(alias)

    def use_database(self, st: n.UseDatabase) -> None:
        if self._db(st.database, st.pos) is None:
            raise self.err(st.pos, "USE DATABASE", f"database {st.database!r} does not exist (CREATE DATABASE it)")
        self.current_db = st.database
        self.current_schema = DBO  # USE DATABASE also sets the schema context to the database's dbo
        self._note(st.pos, f"USE DATABASE {st.database}")

    def create_database(self, st: n.CreateDatabase) -> None:
        if self._db(st.name, st.pos) is not None:
            if st.if_not_exists:
                self._note(st.pos, f"database {st.name} exists (IF NOT EXISTS)")
                return
            raise self.err(st.pos, "CREATE DATABASE", f"database {st.name!r} already exists")
        self.catalog.create(st.name)
        self._attach(st.name, st.pos)

    def drop_database(self, st: n.DropDatabase) -> None:
        if st.name == MASTER:
            raise self.err(st.pos, "DROP DATABASE", "the master database cannot be dropped")
        if self._db(st.name, st.pos) is None:
            if st.if_exists:
                self._note(st.pos, f"database {st.name} does not exist (IF EXISTS)")
                return
            raise self.err(st.pos, "DROP DATABASE", f"database {st.name!r} does not exist")
        if st.name == self.current_db:
            raise self.err(st.pos, "DROP DATABASE", f"database {st.name!r} is in use (USE DATABASE master first)")
        self.catalog.drop(st.name)
        self.attached.discard(st.name)
        sql = f"DETACH DATABASE IF EXISTS {q(self.catalog.alias(st.name))};"
        self.out.append(
            EmittedStatement("catalog", sql, st.pos.line, st.pos.column, drop_file=self.catalog.file(st.name))
        )

    # ------------------------------------------------------------ catalog: names and schemas
    def _resolve(self, tn: n.TableName, what: str = "table") -> tuple[QualifiedName, Database]:
        """The full name of ``[db.][schema.]name`` (the current database and schema fill the gaps)."""
        db_name = tn.database or self.current_db
        schema = tn.schema or (self.current_schema if tn.database is None else DBO)
        db = self._db(db_name, tn.pos)
        if db is None:
            raise self.err(tn.pos, what, f"database {db_name!r} of {what} {tn} does not exist")
        if schema not in db.schemas:
            raise self.err(tn.pos, "schema", f"schema {schema!r} does not exist in database {db_name!r}")
        return QualifiedName(db_name, schema, tn.name), db

    def _table(self, tn: n.TableName, must_exist: bool = True) -> tuple[QualifiedName, list[tuple[str, UType]] | None]:
        """The full name and the columns (None if it does not exist) of a table."""
        nm, db = self._resolve(tn)
        cols = db.tables.get(nm.key)
        if cols is None and must_exist:
            kind = db.kind_of(*nm.key)
            if kind is not None:
                raise self.err(tn.pos, "table", f"{nm} is a {kind.lower()}, not a table")
            known = ", ".join(sorted(name for schema, name in db.tables if schema == nm.schema)) or "none"
            raise self.err(tn.pos, "table", f"unknown table {nm} (tables in {nm.db}.{nm.schema}: {known})")
        return nm, cols

    def _table_sql(self, nm: QualifiedName, pos: n.Pos) -> str:
        return f"{self._attach(nm.db, pos)}.{q(Catalog.schema_sql(nm.schema))}.{q(nm.name)}"

    def _meta(self, db: str, pos: n.Pos) -> str:
        """The attached database holding ``usql_meta``, after creating its tables if they are missing."""
        alias = self._attach(db, pos)
        self.out.append(EmittedStatement("catalog", META_DDL.format(db=alias), pos.line, pos.column))
        return alias

    def use_schema(self, st: n.UseSchema) -> None:
        db = self._db(self.current_db, st.pos)
        if db is None or st.name not in db.schemas:
            raise self.err(st.pos, "USE SCHEMA", f"schema {st.name!r} does not exist in database "
                           f"{self.current_db!r} (CREATE SCHEMA it)")  # fmt: skip
        self.current_schema = st.name
        self._note(st.pos, f"USE SCHEMA {st.name}")

    def create_schema(self, st: n.CreateSchema) -> None:
        db = self._db(self.current_db, st.pos)
        assert db is not None
        if st.name in db.schemas:
            if st.if_not_exists:
                self._note(st.pos, f"schema {st.name} exists (IF NOT EXISTS)")
                return
            raise self.err(st.pos, "CREATE SCHEMA", f"schema {st.name!r} already exists in {self.current_db!r}")
        if st.name in (META, "main") or not Catalog.valid_name(st.name.replace(" ", "_")):
            raise self.err(st.pos, "CREATE SCHEMA", f"{st.name!r} is not a schema name this catalog can store")
        db.schemas.add(st.name)
        sql = f"CREATE SCHEMA {self._attach(self.current_db, st.pos)}.{q(st.name)};"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))

    def _drop_schema(self, st: n.DropObject) -> None:
        db = self._db(self.current_db, st.pos)
        assert db is not None
        schema = st.name.name
        if schema == DBO:
            raise self.err(st.pos, "DROP SCHEMA", "the dbo schema cannot be dropped")
        if schema not in db.schemas:
            if st.if_exists:
                self._note(st.pos, f"schema {schema} does not exist (IF EXISTS)")
                return
            raise self.err(st.pos, "DROP SCHEMA", f"schema {schema!r} does not exist in {self.current_db!r}")
        if any(s == schema for s, _ in [*db.tables, *db.objects]):
            raise self.err(st.pos, "DROP SCHEMA", f"schema {schema!r} is not empty (drop its objects first)")
        if schema == self.current_schema:
            self.current_schema = DBO
        db.schemas.discard(schema)
        sql = f"DROP SCHEMA {self._attach(self.current_db, st.pos)}.{q(schema)};"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))

    # ------------------------------------------------------------ catalog: tables
    def create_table(self, st: n.CreateTable) -> None:
        nm, db = self._resolve(st.table)
        kind = db.kind_of(*nm.key)
        if kind is not None:
            if st.if_not_exists and kind == "TABLE":
                self._note(st.pos, f"table {nm} exists (IF NOT EXISTS)")
                return
            raise self.err(st.table.pos, "CREATE TABLE", f"{kind.lower()} {nm} already exists")
        if not Catalog.valid_name(nm.name) or "." in nm.name:
            raise self.err(st.table.pos, "CREATE TABLE", f"{nm.name!r} is not a table name this catalog can store")
        for note in st.notes:
            self._note(st.pos, f"{note} has no effect locally (accepted and ignored)")
        if st.query is not None:
            if st.partitioned_by:
                raise self.err(st.pos, "CREATE TABLE", "CREATE TABLE ... AS cannot create a partitioned table")
            sql, cols = self.query(st.query)
        else:
            sql = ""
            cols = self._column_types(st.columns, "CREATE TABLE")
        for cname, ty in cols:
            if ty.name in ("unknown", "null"):
                raise self.err(st.pos, "CREATE TABLE", f"column {cname!r} has no storable type ({ty})")
        types = dict(cols)
        for pc in st.partitioned_by:
            if pc not in types or types[pc].name in ("SqlArray", "SqlMap"):
                raise self.err(st.pos, "CREATE TABLE", f"PARTITIONED BY column {pc!r} is not a column of a simple type")
        target = self._table_sql(nm, st.table.pos)
        defs = ", ".join(f"{q(c)} {ty.duckdb()}{'' if ty.nullable else ' NOT NULL'}" for c, ty in cols)
        stmts = [f"CREATE TABLE {target} ({defs});"]
        stmts += [f"COMMENT ON COLUMN {target}.{q(c)} IS {lit(str(ty))};" for c, ty in cols]
        if st.partitioned_by:
            comment = "PARTITIONED BY (" + ",".join(st.partitioned_by) + ")"
            stmts.append(f"COMMENT ON TABLE {target} IS {lit(comment)};")
            db.partitioned[nm.key] = st.partitioned_by
        if sql:
            stmts.append(f"INSERT INTO {target}\n{sql};")
        self.out.append(EmittedStatement("catalog", "\n".join(stmts), st.pos.line, st.pos.column))
        db.tables[nm.key] = list(cols)

    def _column_types(
        self, columns: tuple[tuple[str, n.TypeRef, n.Pos], ...], construct: str
    ) -> list[tuple[str, UType]]:
        cols: list[tuple[str, UType]] = []
        for cname, tr, pos in columns:
            ty = t.resolve(tr)
            if ty is None:
                raise self.err(tr.pos, "type", f"unknown column type {tr.name!r}")
            if any(c == cname for c, _ in cols):
                raise self.err(pos, construct, f"column {cname!r} is defined twice")
            cols.append((cname, ty))
        return cols

    def drop_table(self, st: n.DropTable) -> None:
        nm, existing = self._table(st.table, must_exist=not st.if_exists)
        if existing is None:
            self._note(st.pos, f"table {nm} does not exist (IF EXISTS)")
            return
        db = self.catalog.get(nm.db)
        assert db is not None
        sql = f"DROP TABLE {self._table_sql(nm, st.table.pos)};"
        if db.partitioned.pop(nm.key, None) is not None:
            meta = self._meta(nm.db, st.pos)
            sql += f"\nDELETE FROM {meta}.{META}.partitions WHERE {_meta_key(nm, 'table_name')};"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))
        del db.tables[nm.key]

    def insert(self, st: n.Insert) -> None:
        nm, existing = self._table(st.table)
        assert existing is not None
        db = self.catalog.get(nm.db)
        assert db is not None
        partition_cols = db.partitioned.get(nm.key, ())
        self._check_partition_clause(st, nm, partition_cols)
        types = dict(existing)
        labelled = partition_cols if st.partition is not None else ()
        targets = list(st.columns) if st.columns else [c for c, _ in existing if c not in labelled]
        for c in targets:
            if c not in types:
                raise self.err(st.table.pos, "INSERT", f"table {nm} has no column {c!r}")
            if targets.count(c) > 1:
                raise self.err(st.table.pos, "INSERT", f"column {c!r} is listed twice")
            if c in labelled:
                raise self.err(st.table.pos, "INSERT", f"partition column {c!r} takes its value from PARTITION (...)")
        for c, ty in existing:
            if c not in targets and c not in labelled and not ty.nullable:
                raise self.err(st.table.pos, "INSERT", f"column {c!r} ({ty}) is not nullable and needs a value")
        sql, cols = self.query(st.query)
        if len(cols) != len(targets):
            raise self.err(st.pos, "INSERT", f"the query yields {len(cols)} column(s) but {len(targets)} are inserted "
                           f"into {nm} ({', '.join(targets)})")  # fmt: skip
        exprs = []
        for (src, sty), dst in zip(cols, targets, strict=True):
            dty = types[dst]
            if not _assignable(sty, dty):
                raise self.err(st.pos, "INSERT", f"column {src!r} is {sty} but {nm.name}.{dst} is {dty}")
            exprs.append(q(src) if sty.name == dty.name else f"CAST({q(src)} AS {dty.duckdb()})")
        select = ", ".join(f"{x} AS {q(c)}" for x, c in zip(exprs, targets, strict=True))
        body = f"SELECT {select} FROM (\n{sql}\n) AS usql_insert"
        target = self._table_sql(nm, st.table.pos)
        stmts: list[str] = []
        if partition_cols:
            body = self._partitioned_rows(st, nm, partition_cols, types, targets, body, stmts)
            targets = [*targets, *labelled] if st.partition is not None else targets
        col_list = ", ".join(q(c) for c in targets)
        stmts.append(f"INSERT INTO {target} ({col_list})\n{body};")
        self.out.append(EmittedStatement("catalog", "\n".join(stmts), st.pos.line, st.pos.column))

    # ------------------------------------------------------------ catalog: partitions
    def _check_partition_clause(self, st: n.Insert, nm: QualifiedName, partition_cols: tuple[str, ...]) -> None:
        if partition_cols and st.partition is None and st.on_violation is None:
            raise self.err(st.pos, "INSERT", f"{nm} is partitioned: INSERT needs PARTITION (...) or ON INTEGRITY "
                           "VIOLATION IGNORE | MOVE TO PARTITION (...)")  # fmt: skip
        if not partition_cols and (st.partition is not None or st.on_violation is not None):
            raise self.err(st.pos, "INSERT", f"{nm} is not a partitioned table (PARTITIONED BY (...))")

    def _label(
        self, values: tuple[n.Expr, ...], nm: QualifiedName, cols: tuple[str, ...], types: dict[str, UType]
    ) -> list[str]:
        """The SQL values of a ``PARTITION (v, ...)`` label, typed as the partition columns."""
        if len(values) != len(cols):
            raise self.err(values[0].pos, "PARTITION", f"{nm} is partitioned by ({', '.join(cols)}): "
                           f"PARTITION (...) needs {len(cols)} value(s)")  # fmt: skip
        out = []
        for e, c in zip(values, cols, strict=True):
            sql, ty = self.x.tr(e, Scope())
            dty = types[c]
            fits = _assignable(ty, dty.with_nullable(True)) or (ty.is_numeric and dty.is_numeric)
            if ty.name != "null" and not fits:
                raise self.err(e.pos, "PARTITION", f"the partition value is {ty} but column {c!r} is {dty}")
            out.append(f"CAST({sql} AS {dty.duckdb()})")
        return out

    @staticmethod
    def _label_text(values: list[str]) -> str:
        """The stored form of a partition label: its values as text (comparable, whatever their types)."""
        return "[" + ", ".join(f"CAST({v} AS VARCHAR)" for v in values) + "]"

    def _partition_exists(self, meta: str, nm: QualifiedName, label: str) -> str:
        key = _meta_key(nm, "table_name", "usql_p.")
        return (f"EXISTS (SELECT 1 FROM {meta}.{META}.partitions AS usql_p WHERE {key} "
                f"AND usql_p.label IS NOT DISTINCT FROM {label})")  # fmt: skip

    def _require_partition(self, meta: str, nm: QualifiedName, label: str, present: bool) -> str:
        """A statement failing at run time unless the partition exists (``present``) / does not exist."""
        cond = ("NOT " if present else "") + self._partition_exists(meta, nm, label)
        what = "does not exist (ALTER TABLE ... ADD PARTITION it first)" if present else "already exists"
        msg = f"'partition ' || CAST({label} AS VARCHAR) || ' of {_sql_text(str(nm))} {what}'"
        return f"SELECT CASE WHEN {cond} THEN error({msg}) END;"

    def _partitioned_rows(
        self,
        st: n.Insert,
        nm: QualifiedName,
        cols: tuple[str, ...],
        types: dict[str, UType],
        targets: list[str],
        body: str,
        stmts: list[str],
    ) -> str:
        """The rows an INSERT adds to a partitioned table, after the partition checks in ``stmts``."""
        meta = self._meta(nm.db, st.pos)
        if st.partition is not None:
            values = self._label(st.partition, nm, cols, types)
            stmts.append(self._require_partition(meta, nm, self._label_text(values), present=True))
            return f"SELECT *, {', '.join(f'{v} AS {q(c)}' for v, c in zip(values, cols, strict=True))} FROM ({body})"
        missing = [c for c in cols if c not in targets]
        if missing:
            raise self.err(st.pos, "INSERT", f"ON INTEGRITY VIOLATION needs the partition column(s) "
                           f"{', '.join(missing)} in the inserted columns")  # fmt: skip
        row_label = self._label_text([f"usql_rows.{q(c)}" for c in cols])
        fits = self._partition_exists(meta, nm, row_label)
        if st.on_violation == "IGNORE":
            return f"SELECT * FROM ({body}) AS usql_rows WHERE {fits}"
        assert st.move_to is not None
        values = self._label(st.move_to, nm, cols, types)
        stmts.append(self._require_partition(meta, nm, self._label_text(values), present=True))
        moved = dict(zip(cols, values, strict=True))
        select = ", ".join(
            f"CASE WHEN {fits} THEN usql_rows.{q(c)} ELSE {moved[c]} END AS {q(c)}"
            if c in moved
            else f"usql_rows.{q(c)}"
            for c in targets
        )
        return f"SELECT {select} FROM ({body}) AS usql_rows"

    def _partitioned_table(
        self, tn: n.TableName, construct: str
    ) -> tuple[QualifiedName, tuple[str, ...], dict[str, UType]]:
        nm, cols = self._table(tn)
        assert cols is not None
        db = self.catalog.get(nm.db)
        assert db is not None
        pcols = db.partitioned.get(nm.key, ())
        if not pcols:
            raise self.err(tn.pos, construct, f"{nm} is not a partitioned table (PARTITIONED BY (...))")
        return nm, pcols, dict(cols)

    def alter_partitions(self, st: n.AlterPartitions) -> None:
        construct = "ALTER TABLE " + ("ADD" if st.add else "DROP") + " PARTITION"
        nm, pcols, types = self._partitioned_table(st.table, construct)
        meta = self._meta(nm.db, st.pos)
        stmts = []
        for values in st.partitions:
            label = self._label_text(self._label(values, nm, pcols, types))
            if not st.if_flag:
                stmts.append(self._require_partition(meta, nm, label, present=not st.add))
            exists = self._partition_exists(meta, nm, label)
            if st.add:
                stmts.append(f"INSERT INTO {meta}.{META}.partitions SELECT {lit(nm.schema)}, {lit(nm.name)}, {label} "
                             f"WHERE NOT {exists};")  # fmt: skip
            else:
                row = self._label_text([q(c) for c in pcols])
                stmts.append(f"DELETE FROM {self._table_sql(nm, st.pos)} WHERE {row} IS NOT DISTINCT FROM {label};")
                stmts.append(f"DELETE FROM {meta}.{META}.partitions WHERE {_meta_key(nm, 'table_name')} "
                             f"AND label IS NOT DISTINCT FROM {label};")  # fmt: skip
        self.out.append(EmittedStatement("catalog", "\n".join(stmts), st.pos.line, st.pos.column))

    def truncate_table(self, st: n.TruncateTable) -> None:
        target = self._table_sql(self._table(st.table)[0], st.pos)
        if not st.partitions:
            self.out.append(EmittedStatement("catalog", f"DELETE FROM {target};", st.pos.line, st.pos.column))
            return
        nm, pcols, types = self._partitioned_table(st.table, "TRUNCATE TABLE")
        row = self._label_text([q(c) for c in pcols])
        labels = [self._label_text(self._label(v, nm, pcols, types)) for v in st.partitions]
        stmts = [f"DELETE FROM {target} WHERE {row} IS NOT DISTINCT FROM {label};" for label in labels]
        self.out.append(EmittedStatement("catalog", "\n".join(stmts), st.pos.line, st.pos.column))

    def table_note(self, st: n.TableNote) -> None:
        self._table(st.table)
        self._note(st.pos, f"{st.text} has no effect locally (accepted and ignored)")

    # ------------------------------------------------------------ catalog: views, functions, procedures
    def create_object(self, st: n.CreateView | n.CreateFunction | n.CreateProcedure) -> None:
        kind = {n.CreateView: "VIEW", n.CreateFunction: "FUNCTION", n.CreateProcedure: "PROCEDURE"}[type(st)]
        nm, db = self._resolve(st.name, kind.lower())
        existing = db.kind_of(*nm.key)
        if existing is not None:
            if st.if_not_exists and existing == kind:
                self._note(st.pos, f"{kind.lower()} {nm} exists (IF NOT EXISTS)")
                return
            raise self.err(st.name.pos, f"CREATE {kind}", f"{existing.lower()} {nm} already exists")
        if isinstance(st, n.CreateProcedure) and self.call_depth:
            raise self.err(st.pos, "CREATE PROCEDURE", "a procedure cannot create procedures or functions")
        obj = CatalogObject(kind, st.text, self.source, st.pos.line, st.pos.column)
        db.objects[nm.key] = obj
        meta = self._meta(nm.db, st.pos)
        row = ", ".join(lit(v) for v in (nm.schema, nm.name, kind, st.text, self.source))
        sql = f"INSERT INTO {meta}.{META}.objects VALUES ({row}, {st.pos.line}, {st.pos.column});"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))

    def drop_object(self, st: n.DropObject) -> None:
        if st.kind == "SCHEMA":
            self._drop_schema(st)
            return
        nm, db = self._resolve(st.name, st.kind.lower())
        existing = db.kind_of(*nm.key)
        if existing != st.kind:
            if existing is None and st.if_exists:
                self._note(st.pos, f"{st.kind.lower()} {nm} does not exist (IF EXISTS)")
                return
            what = f"is a {existing.lower()}" if existing else "does not exist"
            raise self.err(st.name.pos, f"DROP {st.kind}", f"{nm} {what}")
        del db.objects[nm.key]
        meta = self._meta(nm.db, st.pos)
        sql = f"DELETE FROM {meta}.{META}.objects WHERE {_meta_key(nm, 'name')};"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))

    def _object(self, tn: n.TableName, kind: str, construct: str) -> tuple[QualifiedName, CatalogObject]:
        nm, db = self._resolve(tn, kind.lower())
        obj = db.objects.get(nm.key)
        if obj is None or obj.kind != kind:
            found = db.kind_of(*nm.key)
            what = f"is a {found.lower()}, not a {kind.lower()}" if found else "does not exist"
            raise self.err(tn.pos, construct, f"{construct} {nm} {what}")
        return nm, obj

    @contextmanager
    def _inlined(self, nm: QualifiedName, obj: CatalogObject, pos: n.Pos) -> Iterator[None]:
        """The context of a view's, function's or procedure's body: its own variables and rowsets, its
        database and schema as the defaults; errors inside are reported at ``pos`` (the use)."""
        if self.call_depth >= 50:
            raise self.err(pos, obj.kind, f"more than 50 nested view/function/procedure uses at {nm}")
        saved = (self.variables, self.constants, self.rowsets, self.current_db, self.current_schema, self.source)
        self.variables, self.constants, self.rowsets = {}, self._system_constants(), {}
        self.current_db, self.current_schema = nm.db, nm.schema
        self.source = self.x.source = obj.source
        self.call_depth += 1
        try:
            yield
        except UsqlError as e:
            where = f"{e.file}:{e.line}:{e.column}"
            raise UsqlError(saved[5], pos.line, pos.column, e.construct,
                            f"{e.message} (in {obj.kind.lower()} {nm}, at {where})") from None  # fmt: skip
        finally:
            self.variables, self.constants, self.rowsets, self.current_db, self.current_schema, self.source = saved
            self.x.source = self.source
            self.call_depth -= 1

    def _view(self, nm: QualifiedName, obj: CatalogObject, pos: n.Pos) -> tuple[str, list[tuple[str, UType]]]:
        view = obj.statement()
        assert isinstance(view, n.CreateView)
        with self._inlined(nm, obj, pos):
            return self.query(view.query)

    def _arguments(
        self, params: tuple[n.Param, ...], args: tuple[n.Expr | None, ...], nm: QualifiedName, pos: n.Pos
    ) -> list[tuple[n.Param, Typed | None, object]]:
        """Each parameter with its argument, translated in the caller's context (None: the default)."""
        if len(args) > len(params):
            raise self.err(pos, "call", f"{nm} takes {len(params)} argument(s), {len(args)} given")
        out: list[tuple[n.Param, Typed | None, object]] = []
        for i, p in enumerate(params):
            arg = args[i] if i < len(args) else None
            if arg is None:
                if p.default is None:
                    raise self.err(pos, "call", f"parameter @{p.name} of {nm} has no default value: pass a value")
                out.append((p, None, _NO_CONSTANT))
                continue
            typ = t.resolve(p.type)
            if typ is None:
                raise self.err(p.type.pos, "type", f"unknown type {p.type.name!r} of parameter @{p.name} of {nm}")
            sql, vt = self.x.tr(arg, Scope())
            self._check_assignable(vt, typ, n.Declare(p.name, p.type, arg, False, False, arg.pos))
            typed = (f"CAST({sql} AS {typ.duckdb()})" if vt.name != typ.name else f"({sql})", typ)
            out.append((p, typed, self._constant(arg)))
        return out

    def _constant(self, e: n.Expr) -> object:
        try:
            return fold(e, self.constants)
        except NotConstant:
            return _NO_CONSTANT

    def _bind(self, bound: list[tuple[n.Param, Typed | None, object]]) -> None:
        """Declares the parameters in the body's context (defaults are translated there)."""
        for p, typed, value in bound:
            if typed is None:
                assert p.default is not None
                self.declare(n.Declare(p.name, p.type, p.default, False, False, p.pos))
                continue
            self.variables[p.name] = typed
            if value is not _NO_CONSTANT:
                self.constants[p.name] = value

    def _call_function(self, call: n.TvfCall) -> tuple[str, list[tuple[str, UType]]]:
        with self._function_body(call, 1) as fn:
            return self._function_result(fn, fn.result, fn.columns)

    def multi_assign(self, st: n.MultiAssign) -> None:
        """``(@a, @b) = f(args);``: one rowset per result of ``f``, in RETURNS order."""
        for i, name in enumerate(st.names):
            if name in st.names[:i]:
                raise self.err(st.pos, "rowset", f"@{name} is assigned twice in the same statement")
            self._check_rowset_name(name, st.pos)
        with self._function_body(st.call, len(st.names)) as fn:
            results = [self._function_result(fn, r, cols) for r, cols in _results(fn)]
        for name, (sql, cols) in zip(st.names, results, strict=True):
            self._new_rowset(name, sql, cols, st.pos)

    @contextmanager
    def _function_body(self, call: n.TvfCall, expected: int) -> Iterator[n.CreateFunction]:
        """Compiles the body of the called function with the arguments bound; inside the ``with`` block the
        body's rowsets are in scope. ``expected``: how many rowsets the caller takes."""
        nm, obj, fn = self._routine(call.function, call.script_bound, "FUNCTION", "table-valued function")
        assert isinstance(fn, n.CreateFunction)
        results = _results(fn)
        if len(results) != expected:
            names = ", ".join(f"@{r}" for r, _ in results)
            how = (f"{len(results)} rowsets; assign them all: ({names}) = {nm}(...);" if len(results) > 1 else
                   f"one rowset; assign it with @x = {nm}(...);")  # fmt: skip
            raise self.err(call.pos, "table-valued function", f"{nm} returns {how}")
        bound = self._arguments(fn.params, call.args, nm, call.pos)
        with self._inlined(nm, obj, call.pos):
            self._bind(bound)
            for st in self._each(fn.body):
                if not isinstance(st, _FUNCTION_STATEMENTS):
                    raise self.err(st.pos, "CREATE FUNCTION", f"{type(st).__name__} statements are not allowed in a "
                                   "table-valued function (only DECLARE, USE, IF and rowset assignments)")  # fmt: skip
                self.statement(st)
            yield fn

    def _function_result(
        self, fn: n.CreateFunction, result: str, columns: tuple[tuple[str, n.TypeRef, n.Pos], ...] | None
    ) -> tuple[str, list[tuple[str, UType]]]:
        """The query of the returned rowset ``@result``, checked against its declared ``columns`` (if any)."""
        if result not in self.rowsets:
            raise self.err(fn.pos, "CREATE FUNCTION", f"the function body never assigns its result @{result}")
        rs = self.rowsets[result]
        if columns is None:
            return f"SELECT * FROM {q(rs.view)}", list(rs.columns)
        declared = self._column_types(columns, "CREATE FUNCTION")
        if [c for c, _ in declared] != [c for c, _ in rs.columns]:
            got, want = ", ".join(c for c, _ in rs.columns), ", ".join(c for c, _ in declared)
            raise self.err(fn.pos, "CREATE FUNCTION", f"@{result} has the columns ({got}) but RETURNS declares "
                           f"({want})")  # fmt: skip
        exprs = []
        for (c, ty), (_, dty) in zip(rs.columns, declared, strict=True):
            if not _assignable(ty, dty):
                raise self.err(fn.pos, "CREATE FUNCTION", f"column {c!r} of @{result} is {ty} but RETURNS "
                               f"declares {dty}")  # fmt: skip
            exprs.append(q(c) if ty.name == dty.name else f"CAST({q(c)} AS {dty.duckdb()}) AS {q(c)}")
        return f"SELECT {', '.join(exprs)} FROM {q(rs.view)}", declared

    def call_procedure(self, st: n.CallProcedure) -> None:
        nm, obj, proc = self._routine(st.procedure, st.script_bound, "PROCEDURE", "procedure")
        assert isinstance(proc, n.CreateProcedure)
        bound = self._arguments(proc.params, st.args, nm, st.pos)
        with self._inlined(nm, obj, st.pos):
            self._bind(bound)
            for s in self._each(proc.body):
                if isinstance(s, (n.CreateFunction, n.CreateProcedure)):
                    raise self.err(s.pos, "CREATE PROCEDURE", "a procedure cannot create procedures or functions")
                self.statement(s)

    # ------------------------------------------------------------ script-bound objects, IF
    def declare_object(self, st: n.DeclareObject) -> None:
        """``DECLARE FUNCTION|PROCEDURE|VIEW @name``: visible from here to the end of the script; a view is
        compiled here (in its own context, like a catalog view) and read as the rowset ``@name``."""
        d = st.definition
        kind = _OBJECT_KINDS[type(d)]
        name = d.name.name
        if name in self.script_objects or name in self.variables or name in self.rowsets:
            raise self.err(d.name.pos, f"DECLARE {kind}", f"@{name} is already declared (script-bound objects, "
                           "variables and rowsets share one namespace)")  # fmt: skip
        nm = ScriptName(self.current_db, self.current_schema, f"@{name}")
        obj = CatalogObject(kind, d.text, self.source, d.pos.line, d.pos.column)
        rowset = None
        if isinstance(d, n.CreateView):
            with self._inlined(nm, obj, d.pos):
                sql, cols = self.query(d.query)
            rowset = self._emit_view(name, sql, cols, d.pos)
        self.script_objects[name] = ScriptBound(nm, obj, d, rowset)

    def _routine(
        self, tn: n.TableName, script_bound: bool, kind: str, construct: str
    ) -> tuple[QualifiedName, CatalogObject, n.Statement]:
        """A called function or procedure: its name, its catalog entry and its CREATE (or DECLARE) statement."""
        if script_bound:
            return self._script_bound(tn, kind, construct)
        nm, obj = self._object(tn, kind, construct)
        return nm, obj, obj.statement()

    def _script_bound(
        self, tn: n.TableName, kind: str, construct: str
    ) -> tuple[ScriptName, CatalogObject, n.CreateFunction | n.CreateProcedure | n.CreateView]:
        sb = self.script_objects.get(tn.name)
        if sb is None or sb.obj.kind != kind:
            if sb is not None:
                what = f"is a script-bound {sb.obj.kind.lower()}, not a {kind.lower()}"
            elif tn.name in self.rowsets or tn.name in self.variables:
                what = f"is a {'rowset' if tn.name in self.rowsets else 'scalar variable'}, not a {kind.lower()}"
            else:
                what = f"is not declared (DECLARE {kind} @{tn.name} ... before this statement)"
            raise self.err(tn.pos, construct, f"@{tn.name} {what}")
        return sb.name, sb.obj, sb.definition

    def _check_rowset_name(self, name: str, pos: n.Pos) -> None:
        """A rowset may be reassigned, but not named like a scalar variable or a script-bound object."""
        if name in self.variables:
            raise self.err(pos, "variable", f"@{name} is a scalar variable and cannot name a rowset")
        if name in self.script_objects:
            kind = self.script_objects[name].obj.kind.lower()
            raise self.err(pos, "variable", f"@{name} is a script-bound {kind} and cannot name a rowset")

    def _new_rowset(self, name: str, sql: str, cols: list[tuple[str, UType]], pos: n.Pos) -> None:
        self.rowsets[name] = self._emit_view(name, sql, cols, pos)

    def _emit_view(self, name: str, sql: str, cols: list[tuple[str, UType]], pos: n.Pos) -> Rowset:
        view = self._view_name(name)
        self.out.append(EmittedStatement("view", f"CREATE OR REPLACE TEMP VIEW {q(view)} AS\n{sql};", pos.line,
                                         pos.column))  # fmt: skip
        return Rowset(view, tuple(cols))

    def if_statement(self, st: n.If) -> None:
        for s in self._each((st,)):
            self.statement(s)

    def _each(self, statements: tuple[n.Statement, ...]) -> Iterator[n.Statement]:
        """The statements in order, each IF replaced by the statements of the branch it takes; a condition is
        evaluated when it is reached, after the statements before it were compiled (it may use their variables)."""
        for st in statements:
            if isinstance(st, n.If):
                yield from self._each(self._taken(st))
            else:
                yield st

    def _taken(self, st: n.If) -> tuple[n.Statement, ...]:
        for cond, body in st.branches:
            if self._condition(cond):
                self._note(cond.pos, f"IF: the condition at line {cond.pos.line} is true; its branch is compiled")
                return body
        self._note(st.pos, "IF: no condition is true; " + ("the ELSE branch is compiled" if st.otherwise else
                                                           "nothing is compiled"))  # fmt: skip
        return st.otherwise

    def _condition(self, cond: n.Expr) -> bool:
        """The value of an IF condition, which U-SQL folds at compile time."""
        _, ty = self.x.tr(cond, Scope())
        if ty.name != "bool":
            raise self.err(cond.pos, "IF", f"the IF condition must be a bool expression, not {ty}")
        try:
            value = fold(cond, self.constants)
        except NotConstant:
            raise self.err(cond.pos, "IF", "the IF condition must be constant-foldable at compile time (literals, "
                           "parameters, variables DECLAREd with constant values)") from None  # fmt: skip
        if not isinstance(value, bool):
            raise self.err(cond.pos, "IF", "the IF condition is null; it must be true or false")
        return value

    # ------------------------------------------------------------ @@JobInfo
    def _system_constants(self) -> dict[str, object]:
        """The ``@@JobInfo`` values constant folding can use (paths, IF): all but the DateTime one."""
        return {k: (str(v) if k == "@@JobInfo.Id" and v is not None else v) for k, v in self.job_info.items()
                if k != "@@JobInfo.Submit.Date"}  # fmt: skip

    def _job_info_sql(self, name: str) -> Typed:
        ty = jobinfo.PROPERTY_TYPES[name]
        value = self.job_info[name]
        if value is None:
            return f"CAST(NULL AS {self._type_sql(ty)})", ty
        if ty.name == "string":
            return lit(str(value)), ty
        if ty.name == "int":
            return f"CAST({int(str(value))} AS {self._type_sql(ty)})", ty
        return f"CAST({lit(str(value))} AS {self._type_sql(ty)})", ty

    def _relation(self, tn: n.TableName, pos: n.Pos) -> tuple[str, list[tuple[str, UType]]]:
        """A table or view read by name: SQL usable after FROM, and its columns."""
        nm, db = self._resolve(tn)
        obj = db.objects.get(nm.key)
        if obj is not None and obj.kind == "VIEW":
            sql, cols = self._view(nm, obj, pos)
            return f"(\n{sql}\n)", cols
        nm, tcols = self._table(tn)
        assert tcols is not None
        return self._table_sql(nm, pos), list(tcols)

    def _variable(self, v: n.Variable) -> Typed:
        if v.name in jobinfo.PROPERTY_TYPES:
            return self._job_info_sql(v.name)
        if v.name in self.variables:
            return self.variables[v.name]
        if v.name in self.rowsets:
            raise self.err(v.pos, "variable", f"@{v.name} is a rowset, not a scalar value")
        raise self.err(v.pos, "variable", f"unknown variable @{v.name} (DECLARE it first)")

    def declare(self, d: n.Declare) -> None:
        if d.type.name == INFERRED_TYPE:
            self._declare_inferred(d)
            return
        typ = t.resolve(d.type)
        if typ is None or typ.name in ("SqlArray", "SqlMap", "byte[]"):
            raise self.err(d.type.pos, "DECLARE", f"type {d.type.name!r} is not supported for variables")
        if (d.name in self.variables and not d.external) or d.name in self.script_objects:
            raise self.err(d.pos, "DECLARE", f"variable @{d.name} is already declared")
        if d.external and d.name in self.params:
            raw = self.params[d.name]
            self.variables[d.name] = self._param_sql(raw, typ, d)
            with contextlib.suppress(ValueError):  # IF conditions and paths fold parameters too
                self.constants[d.name] = _param_value(raw, typ)
            return
        sql, vt = self.x.tr(fold_datetime_parse(d.value), Scope())
        self._check_assignable(vt, typ, d)
        try:
            value = fold(d.value, self.constants)
            self.constants[d.name] = value
        except NotConstant:
            pass
        if vt.name != typ.name and vt.name != "null":
            sql = f"CAST({sql} AS {typ.duckdb()})"
        elif vt.name == "null":
            sql = f"CAST(NULL AS {typ.duckdb()})"
        self.variables[d.name] = (f"({sql})", typ)

    def _declare_inferred(self, d: n.Declare) -> None:
        """``DECLARE @x = expr;`` / ``@x = expr;``: the variable takes the value's type."""
        if d.name in self.variables or d.name in self.rowsets or d.name in self.script_objects:
            raise self.err(d.pos, "DECLARE", f"variable @{d.name} is already declared")
        if isinstance(encoding := self._constant_or_none(d.value), Encoding):
            self.constants[d.name] = encoding  # only an option value (encoding: @enc), never a column value
            return
        sql, vt = self.x.tr(fold_datetime_parse(d.value), Scope())
        if vt.name in ("null", "unknown"):
            raise self.err(d.value.pos, "type", f"the type of @{d.name} cannot be inferred from this value; "
                           "declare it with a type (DECLARE @x T = ...)")  # fmt: skip
        if d.external and d.name in self.params:
            self.variables[d.name] = self._param_sql(self.params[d.name], vt, d)
            with contextlib.suppress(ValueError):
                self.constants[d.name] = _param_value(self.params[d.name], vt)
            return
        with contextlib.suppress(NotConstant):
            self.constants[d.name] = fold(d.value, self.constants)
        self.variables[d.name] = (f"({sql})", vt)

    def _constant_or_none(self, e: n.Expr) -> object:
        try:
            return fold(e, self.constants)
        except NotConstant:
            return None

    def _param_sql(self, raw: str, typ: UType, d: n.Declare) -> Typed:
        if typ.name == "string":
            return lit(raw), typ
        if typ.name == "bool" and raw.strip().lower() not in ("true", "false"):
            raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a bool")
        if typ.is_numeric:
            try:
                float(raw)
            except ValueError:
                raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a {typ}") from None
            if typ.is_integral:
                if not _CS_INTEGER.fullmatch(raw):
                    raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a {typ}")
                return f"CAST({lit(raw)} AS {typ.duckdb()})", typ  # checked here: a constant, no runtime check
        return f"({parse_string_as(lit(raw), typ.name)})", typ

    def _check_assignable(self, vt: UType, typ: UType, d: n.Declare) -> None:
        if vt.name in ("null", "unknown"):
            if vt.name == "null" and not typ.nullable:
                raise self.err(d.value.pos, "type", f"cannot assign null to @{d.name} of type {typ}")
            return
        ok = vt.name == typ.name or (vt.is_numeric and typ.is_numeric) or (vt.name == "char" and typ.is_integral)
        if not ok:
            raise self.err(d.value.pos, "type", f"cannot assign a {vt} value to @{d.name} of type {typ}")

    def _view_name(self, name: str) -> str:
        """A new view name for rowset ``@name``, unlike all earlier ones also when case is ignored (``@a`` and ``@A``
        are two rowsets in U-SQL) and whatever the rowset names (``@a`` assigned twice and ``@a_2``)."""
        k = self.view_counter.get(name, 0)
        while True:
            k += 1
            view = f"rs_{name}" if k == 1 else f"rs_{name}_{k}"
            if view.lower() not in self.view_names:
                break
        self.view_counter[name] = k
        self.view_names.add(view.lower())
        return view

    def assign(self, a: n.Assign) -> None:
        self._check_rowset_name(a.name, a.pos)
        if isinstance(a.query, n.RowsetRef) and a.query.name in self.variables:  # @x = @scalar;
            self._declare_inferred(n.Declare(a.name, n.TypeRef(INFERRED_TYPE, False, a.pos),
                                             n.Variable(a.query.name, a.query.pos), False, False, a.pos))  # fmt: skip
            return
        sql, cols = self.query(a.query)
        self._new_rowset(a.name, sql, cols, a.pos)

    def path(self, e: n.Expr, construct: str, allow_file_set: bool = False) -> Path:
        try:
            v = fold(e, self.constants)
        except NotConstant:
            raise self.err(e.pos, construct, "the path must be a constant string expression") from None
        if not isinstance(v, str) or not v:
            raise self.err(e.pos, construct, "the path must be a non-empty string")
        v = unquote(v)  # paths are URIs: "a%20b.csv" names the file "a b.csv" (the reference's Input/Output Files)
        if "{" in v and not allow_file_set:
            raise self.err(e.pos, "file set", f"file set patterns ({v!r}) are not supported in {construct}")
        mapped = self.path_map.apply(v)
        if mapped is None and is_remote(v):
            raise self.err(e.pos, construct, f"remote paths ({v!r}) are not supported locally; map them to a local "
                           "folder with --map-path PREFIX=DIR (run_script(..., path_map={PREFIX: DIR}))")  # fmt: skip
        p = Path(mapped or v)
        return p if p.is_absolute() else self.base_dir / p

    # ------------------------------------------------------------ OUTPUT
    def output(self, o: n.Output) -> None:
        if o.outputter.name == "Parquet":
            self._output_parquet(o)
            return
        fmt = text_format(o.outputter, self.source, self.constants, escape_character=True)
        target = self.path(o.path, "OUTPUT")
        if o.expiration is not None:
            self._expiration(o.expiration, target)
        sql, cols = self.query(o.source)
        scope = Scope([(None, c, ty) for c, ty in cols])
        parts = []
        for c, ty in cols:
            parts.append(self._format_value(q(c), ty, fmt, o))
        sep = " || " + lit(fmt.delimiter) + " || "
        line = sep.join(parts) if parts else "''"
        names = [fmt.escape(c) for c, _ in cols]
        header = fmt.delimiter.join(('"' + c.replace('"', '""') + '"' if fmt.quoting else c) for c in names)
        body = f"SELECT {line} AS {q(header)}\nFROM (\n{sql}\n) AS usql_out"
        if o.order_by or o.offset is not None or o.fetch is not None:
            body += self._order_fetch(o.order_by, o.offset, o.fetch, scope)
        new_line = fmt.row_delimiter or "\r\n"
        # DuckDB reads the escapes \r and \n in NEW_LINE; any other character is written as is
        nl = new_line.replace("\r", "\\r").replace("\n", "\\n").replace("'", "''")
        stmt = (f"COPY (\n{body}\n) TO {lit(str(target))} (FORMAT csv, HEADER {str(fmt.output_header).lower()}, "
                f"QUOTE '', ESCAPE '', NEW_LINE '{nl}');")  # fmt: skip
        encoding = None if fmt.encoding == "utf-8" else fmt.encoding
        self.out.append(EmittedStatement("output", stmt, o.pos.line, o.pos.column, target, output_encoding=encoding,
                                         output_row_delimiter=new_line))  # fmt: skip

    def _output_parquet(self, o: n.Output) -> None:
        """``Outputters.Parquet(...)``: ``COPY ... (FORMAT parquet)`` with the columns in U-SQL's Parquet types."""
        pf = parquet.parquet_format(o.outputter, self.source, self.constants)
        target = self.path(o.path, "OUTPUT")
        if o.expiration is not None:
            self._expiration(o.expiration, target)
        sql, cols = self.query(o.source)
        construct = "Outputters.Parquet"
        for index in pf.columns:
            if index >= len(cols):
                raise self.err(o.outputter.pos, construct, f"columnOptions names column {index}, but the rowset has "
                               f"{len(cols)} columns (numbered from 0)")  # fmt: skip
        exprs = []
        for i, (c, ty) in enumerate(cols):
            fix = parquet.unsupported_type(ty) if ty.name != "unknown" else "a typed value"
            if fix is not None:
                raise self.err(o.pos, construct, f"column {c!r} of type {ty} cannot be written to Parquet (the "
                               f"reference: not supported); convert it to {fix}")  # fmt: skip
            try:
                exprs.append(f"{parquet.output_value(q(c), ty, pf.columns.get(i))} AS {q(c)}")
            except ValueError as ex:
                raise self.err(o.outputter.pos, construct, f"columnOptions for column {i} ({c!r}): {ex}") from None
        body = f"SELECT {', '.join(exprs)}\nFROM (\n{sql}\n) AS usql_out"
        if o.order_by or o.offset is not None or o.fetch is not None:
            body += self._order_fetch(o.order_by, o.offset, o.fetch, Scope([(None, c, ty) for c, ty in cols]))
        codec, notes = pf.codec(len(cols))
        rows, row_notes = pf.duckdb_row_group_rows()
        for note in [*notes, *row_notes]:
            self._note(o.pos, note)
        stmt = f"COPY (\n{body}\n) TO {lit(str(target))} (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {rows});"
        self.out.append(EmittedStatement("output", stmt, o.pos.line, o.pos.column, target))

    def _expiration(self, e: n.Expr, target: Path) -> None:
        """``EXPIRATION`` sets the file's expiry on ADLS; locally nothing expires, so it is only recorded."""
        _, ty = self.x.tr(e, Scope())
        if ty.name not in ("DateTime", "TimeSpan"):
            raise self.err(e.pos, "EXPIRATION", f"EXPIRATION takes a DateTime or a TimeSpan, not {ty}")
        self._note(e.pos, f"EXPIRATION of {target} is not applied locally (the file is kept)")

    def _format_value(self, col: str, ty: UType, fmt: TextFormat, o: n.Output) -> str:
        if ty.name in ("SqlArray", "SqlMap", "byte[]", "unknown"):
            raise self.err(o.pos, "OUTPUT", f"a column of type {ty} cannot be written by the built-in outputters")
        text_like = ty.name == "string" or (ty.name == "char" and fmt.char_format == "string")
        if text_like:
            v = col
        elif ty.name == "char":
            v = f"CAST(unicode({col}) AS VARCHAR)"
        elif ty.name == "DateTime":
            try:
                v = f"strftime({col}, {lit(to_strftime(fmt.date_time_format))})"
            except FormatError as ex:
                raise self.err(o.outputter.pos, "dateTimeFormat", str(ex)) from None
        else:
            v = cs_tostring(col, ty)
        # escapeCharacter applies whether or not quoting is on; the quote itself is doubled, never escaped
        chars = fmt.escaped_chars()
        for c in chars:
            v = f"replace({v}, {lit(c)}, {lit(chars[0] + c)})"
        if text_like and fmt.quoting:
            v = f"""'"' || replace({v}, '"', '""') || '"'"""
        return f"coalesce({v}, {lit(fmt.null_escape or '')})"

    # ------------------------------------------------------------ queries
    def query(self, qn: n.Query) -> tuple[str, list[tuple[str, UType]]]:
        if isinstance(qn, n.RowsetRef):
            rs = self._rowset(qn)
            return f"SELECT * FROM {q(rs.view)}", list(rs.columns)
        if isinstance(qn, n.TableRef):
            rel, cols = self._relation(qn.table, qn.pos)
            return f"SELECT * FROM {rel} AS usql_rel", cols
        if isinstance(qn, n.TvfCall):
            return self._call_function(qn)
        if isinstance(qn, n.Extract):
            return self.extract(qn)
        if isinstance(qn, n.ExtractFileProperties):
            return self.extract_with_properties(qn.extract, dict(qn.properties))
        if isinstance(qn, n.Select):
            return self.select(qn)
        if isinstance(qn, n.SetOp):
            ls, lc = self.query(qn.left)
            rs_, rc = self.query(qn.right)
            if len(lc) != len(rc):
                raise self.err(qn.pos, qn.op, f"{qn.op} needs the same number of columns on both sides "
                               f"({len(lc)} vs {len(rc)})")  # fmt: skip
            for (ln, lt), (_, rt) in zip(lc, rc, strict=False):
                if lt.name != rt.name and not (lt.is_numeric and rt.is_numeric):
                    raise self.err(qn.pos, qn.op, f"column {ln!r} is {lt} on the left but {rt} on the right")
            op = qn.op + (" ALL" if qn.quantifier == "ALL" else "")
            cols = [
                (ln, lt.with_nullable(lt.nullable or rt.nullable)) for (ln, lt), (_, rt) in zip(lc, rc, strict=False)
            ]
            return f"(\n{ls}\n) {op} (\n{rs_}\n)", cols
        if isinstance(qn, n.Ordered):
            inner, cols = self.query(qn.query)
            scope = Scope([(None, c, ty) for c, ty in cols])
            sql = f"SELECT * FROM (\n{inner}\n) AS usql_ordered" + self._order_fetch(
                qn.order_by, qn.offset, qn.fetch, scope
            )
            return sql, cols
        if isinstance(qn, n.Sample):
            return self.sample(qn)
        if isinstance(qn, n.ByNameSetOp):
            return self.set_by_name(qn)
        raise self.err(n.Pos(1, 1), "query", f"unsupported query {type(qn).__name__}")

    def set_by_name(self, s: n.ByNameSetOp) -> tuple[str, list[tuple[str, UType]]]:
        """Set operations ``BY NAME`` after the reference: the matched columns are those named on both sides
        (without ON: all of them, on both sides; ON lists them all unless it ends in ``*``), in the left order.
        OUTER UNION also keeps the unmatched columns (left ones, then right ones), filled with null or the .NET
        default value (0, false, DateTime.MinValue) on the rows of the other side."""
        ls, lc = self.query(s.left)
        rs_, rc = self.query(s.right)
        what = f"{'OUTER ' if s.outer else ''}{s.op} BY NAME"
        ltypes, rtypes = dict(lc), dict(rc)
        common = [c for c, _ in lc if c in rtypes]
        if s.on is None:
            odd = next((c for c in [*ltypes, *rtypes] if c not in common), None)
            if odd is not None:
                where = "left" if odd in ltypes else "right"
                raise self.err(s.pos, what, f"column {odd!r} is only on the {where}; without ON both sides need the "
                               "same column names")  # fmt: skip
        else:
            dup = next((c for c in s.on if s.on.count(c) > 1), None)
            missing = next((c for c in s.on if c not in common), None)
            extra = next((c for c in common if c not in s.on), None)
            if dup is not None:
                raise self.err(s.pos, what, f"column {dup!r} is listed twice in ON")
            if missing is not None:
                raise self.err(s.pos, what, f"ON column {missing!r} is not a column of both sides")
            if extra is not None and not s.star:
                raise self.err(s.pos, what, f"column {extra!r} is on both sides but not in ON; list it or add *")
        for c in common:
            lt, rt = ltypes[c], rtypes[c]
            if lt.name != rt.name and not (lt.is_numeric and rt.is_numeric):
                raise self.err(s.pos, what, f"column {c!r} is {lt} on the left but {rt} on the right")
        cols = [(c, ltypes[c].with_nullable(ltypes[c].nullable or rtypes[c].nullable)) for c in common]
        if s.outer:
            cols += [(c, ty) for c, ty in lc if c not in rtypes] + [(c, ty) for c, ty in rc if c not in ltypes]

        def side(sql: str, types: dict[str, UType]) -> str:
            items = [q(c) if c in types else f"{self._default_sql(ty, s.pos)} AS {q(c)}" for c, ty in cols]
            return f"SELECT {', '.join(items)} FROM (\n{sql}\n) AS usql_side"

        op = s.op + (" ALL" if s.quantifier == "ALL" else "")
        return f"(\n{side(ls, ltypes)}\n) {op} (\n{side(rs_, rtypes)}\n)", cols

    def _default_sql(self, ty: UType, pos: n.Pos) -> str:
        """The value of a missing OUTER UNION cell: null, or the .NET default of a non-nullable type."""
        if ty.nullable:
            return f"CAST(NULL AS {self._type_sql(ty)})"
        if ty.is_numeric:
            return f"CAST(0 AS {self._type_sql(ty)})"
        defaults = {"bool": "FALSE", "char": "chr(0)", "DateTime": "TIMESTAMP '0001-01-01 00:00:00'",
                    "Guid": "CAST('00000000-0000-0000-0000-000000000000' AS UUID)"}  # fmt: skip
        if ty.name not in defaults:
            raise self.err(pos, "OUTER UNION", f"no default value for a missing {ty} column")
        return defaults[ty.name]

    def sample(self, s: n.Sample) -> tuple[str, list[tuple[str, UType]]]:
        """``SAMPLE``: ANY (n) = the first n rows (the reference: "any" rows, not random); UNIFORM keeps each row
        with probability f; UNIVERSE keeps the rows whose ON values hash into a fraction f of the value space;
        DISTINCT keeps n rows per ON group and each further row with probability f."""
        inner, cols = self.query(s.query)
        names = [c for c, _ in cols]
        if s.method == "ANY":
            return f"SELECT * FROM (\n{inner}\n) AS usql_sample\nLIMIT {self._count(s.args[0], 'SAMPLE')}", cols
        frac = self._fraction(s.args[0])
        missing = [c for c in s.on if c not in names]
        if missing:
            raise self.err(s.pos, "SAMPLE", f"unknown column {missing[0]!r} in SAMPLE ON (columns: {', '.join(names)})")
        if s.weight is not None and s.weight in names:
            raise self.err(s.pos, "SAMPLE", f"the weight column {s.weight!r} is already a column of the rowset")
        select = ", ".join(q(c) for c in names)
        keys = ", ".join(q(c) for c in s.on)
        weight = f"CAST({1 / frac!r} AS DOUBLE)" if frac else "CAST('inf' AS DOUBLE)"
        if s.method == "UNIFORM":
            where = f"random() < {frac!r}"
        elif s.method == "UNIVERSE":
            # a fixed hash of the ON values: rows with equal values are kept or dropped together, on every input
            where = f"hash({keys}) < {frac!r} * 18446744073709551616.0"
        else:
            per_group = self._count(s.args[1], "SAMPLE")
            inner = f"SELECT *, row_number() OVER (PARTITION BY {keys}) AS usql_rn FROM (\n{inner}\n) AS usql_g"
            where = f"usql_rn <= {per_group} OR random() < {frac!r}"
            weight = f"CASE WHEN usql_rn <= {per_group} THEN CAST(1 AS DOUBLE) ELSE {weight} END"
        if s.weight is not None:
            select += f", {weight} AS {q(s.weight)}"
            cols = [*cols, (s.weight, t.DOUBLE)]
        return f"SELECT {select} FROM (\n{inner}\n) AS usql_sample\nWHERE {where}", cols

    def _fraction(self, e: n.Expr) -> float:
        try:
            v = fold(e, self.constants)
        except NotConstant:
            v = None
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
            raise self.err(e.pos, "SAMPLE", "the sample fraction must be a constant double between 0 and 1")
        return float(v)

    def _order_fetch(
        self, order: tuple[n.SortItem, ...], offset: n.Expr | None, fetch: n.Expr | None, scope: Scope
    ) -> str:
        sql = ""
        if order:
            self.x.allow_aggregates = False
            try:
                sql += "\nORDER BY " + self.x.sort_list(order, scope)
            finally:
                self.x.allow_aggregates = True
        if fetch is not None:
            sql += f"\nLIMIT {self._count(fetch)}"
        if offset is not None:
            sql += f"\nOFFSET {self._count(offset)}"
        return sql

    def _count(self, e: n.Expr, construct: str = "FETCH") -> int:
        try:
            v = fold(e, self.constants)
        except NotConstant:
            v = None
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            where = "OFFSET/FETCH" if construct == "FETCH" else construct
            raise self.err(e.pos, construct, f"row counts in {where} must be non-negative constant integers")
        return v

    def _rowset(self, r: n.RowsetRef) -> Rowset:
        view = self.script_objects.get(r.name)
        if r.name not in self.rowsets and view is not None and view.rowset is not None:  # DECLARE VIEW @v
            return view.rowset
        if r.name not in self.rowsets:
            what = "a scalar variable" if r.name in self.variables else "not defined (assign it before use)"
            raise self.err(r.pos, "rowset", f"unknown rowset @{r.name}: {what}")
        return self.rowsets[r.name]

    def extract(self, e: n.Extract) -> tuple[str, list[tuple[str, UType]]]:
        return self.extract_with_properties(e, {})

    def extract_with_properties(self, e: n.Extract, props: Mapping[str, str]) -> tuple[str, list[tuple[str, UType]]]:
        """SQL and columns of an EXTRACT; ``props`` maps file-property columns to their property (``URI`` ...)."""
        for hint in e.hints:
            self._note(e.pos, f"{hint} ignored (an optimizer hint; it does not change the result)")
        is_parquet = e.extractor.name == "Parquet"
        if is_parquet:
            parquet.parquet_format(e.extractor, self.source, self.constants)  # checks that there are no options
        fmt = TextFormat("Parquet") if is_parquet else text_format(e.extractor, self.source, self.constants)
        paths = [self.path(p, "EXTRACT", allow_file_set=True) for p in e.paths]
        file_set: FileSet | None = None
        for p, pe in zip(paths, e.paths, strict=False):
            if is_file_set(str(p)):
                if len(paths) > 1:
                    raise self.err(pe.pos, "file set", "a file set pattern must be the only path of its EXTRACT")
                try:
                    file_set = parse_file_set(str(p), repeated_parts=True)
                except FileSetError as ex:
                    raise self.err(pe.pos, "file set", str(ex)) from None
            elif not p.exists():
                raise self.err(pe.pos, "EXTRACT", f"input file {str(p)!r} does not exist")
        # checked on the original files: UTF-8 copies (below) are made at run time
        empty_set = file_set is not None and next(glob.iglob(file_set.glob), None) is None
        if is_parquet:
            return self._extract_parquet(e, props, paths, file_set, empty_set)
        if fmt.encoding not in DUCKDB_ENCODINGS and not empty_set:
            if props:  # the run reads copies: their properties are not the input's
                raise self.err(e.pos, "FILE.property()", f"file-property columns need an input encoding DuckDB "
                               f"reads directly, not {fmt.encoding}")  # fmt: skip
            paths, file_set = self._utf8_copies(paths, file_set, fmt.encoding, e.pos)
            fmt = replace(fmt, encoding="utf-8")
        cols = self._extract_columns(e)
        virtual = self._virtual_columns(file_set, dict(cols), e) if file_set is not None else {}
        virtual.update({c: f"usql_fp.usql_fp_{prop.lower()}" for c, prop in props.items()})
        files_join = self._file_properties_join(paths, file_set) if props and not empty_set else ""
        read_cols = [(c, ty) for c, ty in cols if c not in virtual]
        if not read_cols:
            raise self.err(e.pos, "EXTRACT", "EXTRACT needs at least one column read from the file(s)")
        options = [
            "columns={" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c, _ in read_cols) + "}",
            "auto_detect=false",
            "header=false",
            f"delim={lit(fmt.delimiter)}",
            "quote='\"', escape='\"'" if fmt.quoting else "quote='', escape=''",
            "allow_quoted_nulls=false",
            "strict_mode=true",
            f"skip={fmt.skip_first_n_rows}",
            f"encoding={lit(fmt.encoding)}",
        ]
        if fmt.silent:
            options.append("ignore_errors=true")
        if fmt.null_escape is not None:
            options.append(f"nullstr={lit(fmt.null_escape)}")
        if fmt.row_delimiter is not None:
            options.append("new_line=" + lit(fmt.row_delimiter.replace("\r", "\\r").replace("\n", "\\n")))
        helper_names = _helper_names([c for c, _ in cols])
        helpers: list[str] = []
        exprs: list[str] = []
        for c, ty in cols:
            if c in virtual:
                exprs.append(virtual[c])
                continue
            expr, helper = self._extract_field(q(c), c, ty, fmt, q(helper_names[c]))
            exprs.append(expr)
            if helper is not None:
                helpers.append(f"{helper} AS {q(helper_names[c])}")
        select = ",\n  ".join(f"{x} AS {q(c)}" for x, (c, _) in zip(exprs, cols, strict=True))
        extra = "".join(", " + h for h in helpers)
        if file_set is None:
            files = "[" + ", ".join(lit(str(p)) for p in paths) + "]"
            reader = f"read_csv({files}, {', '.join(options)}{', filename=' + lit('usql_file') if props else ''})"
            if helpers:
                # the fast paths (TRY_CAST of the raw text) as columns under the conversions: once per field
                reader = f"(SELECT *{extra}\nFROM {reader}) AS usql_src"
            return f"SELECT\n  {select}\nFROM {reader}{files_join}", cols
        if empty_set:
            # An empty file set is an empty rowset (DuckDB's read_csv would fail on a glob that matches nothing).
            empty = ", ".join(f"CAST(NULL AS {ty.duckdb()}) AS {q(c)}" for c, ty in cols)
            return f"SELECT {empty}\nWHERE FALSE", cols
        # Virtual columns and the file conditions are expressions of usql_file alone, which DuckDB can turn into
        # file filters: a later WHERE on virtual columns and constants skips the files it excludes unread.
        match = " AND ".join(
            [f"regexp_full_match(usql_file, {lit(file_set.regex)})", *self._file_checks(file_set, dict(cols))]
        )
        src = (
            f"(SELECT *{extra}\nFROM read_csv({lit(file_set.glob)}, {', '.join(options)}, filename='usql_file')\n"
            f"WHERE {match}) AS usql_fs"
        )
        return f"SELECT\n  {select}\nFROM {src}{files_join}", cols

    def _extract_columns(self, e: n.Extract) -> list[tuple[str, UType]]:
        cols: list[tuple[str, UType]] = []
        seen: set[str] = set()
        for name, tr, pos in e.columns:
            ty = t.resolve(tr)
            if ty is None or ty.name in ("SqlArray", "SqlMap"):
                raise self.err(tr.pos, "type", f"type {tr.name!r} cannot be extracted by the built-in extractors")
            if name in seen:
                raise self.err(pos, "EXTRACT", f"column {name!r} is defined twice")
            seen.add(name)
            cols.append((name, ty))
        return cols

    def _extract_parquet(
        self, e: n.Extract, props: Mapping[str, str], paths: list[Path], file_set: FileSet | None, empty_set: bool
    ) -> tuple[str, list[tuple[str, UType]]]:
        """``Extractors.Parquet()``: ``read_parquet`` with each column converted to its declared type. The file's
        schema (of a file set: its first file) is read at compile time, as EXTRACT's inputs must exist then: a
        missing column or a type the reference's table does not map to the declared one is a compile-time error."""
        cols = self._extract_columns(e)
        construct = "Extractors.Parquet"
        for (name, ty), (_, tr, _) in zip(cols, e.columns, strict=True):
            fix = parquet.unsupported_type(ty)
            if fix is not None:
                raise self.err(tr.pos, construct, f"column {name!r}: {ty} cannot be extracted from Parquet (the "
                               f"reference: not supported); extract a {fix} and convert it")  # fmt: skip
        virtual = self._virtual_columns(file_set, dict(cols), e) if file_set is not None else {}
        virtual.update({c: f"usql_fp.usql_fp_{prop.lower()}" for c, prop in props.items()})
        read_cols = [(c, ty) for c, ty in cols if c not in virtual]
        if not read_cols:
            raise self.err(e.pos, "EXTRACT", "EXTRACT needs at least one column read from the file(s)")
        if empty_set:
            empty = ", ".join(f"CAST(NULL AS {ty.duckdb()}) AS {q(c)}" for c, ty in cols)
            return f"SELECT {empty}\nWHERE FALSE", cols
        files = sorted(glob.glob(file_set.glob)) if file_set is not None else [str(p) for p in paths]
        if file_set is not None:  # the first file in the set (DuckDB reads the schema of the first file of a glob)
            files = [f for f in files if re.fullmatch(file_set.regex, f)] or files
        try:
            schema = parquet.file_schema(files[0])
        except OSError as ex:
            raise self.err(e.paths[0].pos, construct, f"cannot read {files[0]!r} as Parquet: {ex}") from None
        exprs = {}
        for (name, ty), (_, tr, pos) in zip(cols, e.columns, strict=True):
            if name in virtual:
                exprs[name] = virtual[name]
                continue
            if name not in schema:
                raise self.err(pos, construct, f"column {name!r} is not in the Parquet file {files[0]!r} (its "
                               f"columns: {', '.join(schema)})")  # fmt: skip
            v = parquet.extract_value(q(name), schema[name], ty)
            if v is None:
                raise self.err(tr.pos, construct, f"column {name!r} is {schema[name]} in {files[0]!r}, which "
                               f"does not extract into {ty} (see the Parquet type table in docs/usql.md)")  # fmt: skip
            if not ty.nullable:  # the reference fails on a nullable Parquet column; DuckDB marks most columns so
                message = lit(f"Extractors.Parquet: column {name!r} holds a null, but {ty} is not nullable")
                v = f"CASE WHEN {q(name)} IS NULL THEN error({message}) ELSE {v} END"
            exprs[name] = v
        select = ",\n  ".join(f"{exprs[c]} AS {q(c)}" for c, _ in cols)
        use_file = file_set is not None or bool(props)
        listing = lit(file_set.glob) if file_set is not None else "[" + ", ".join(lit(str(p)) for p in paths) + "]"
        reader = f"read_parquet({listing}{', filename=' + lit('usql_file') if use_file else ''})"
        if file_set is not None:
            match = " AND ".join(
                [f"regexp_full_match(usql_file, {lit(file_set.regex)})", *self._file_checks(file_set, dict(cols))]
            )
            reader = f"(SELECT * FROM {reader}\nWHERE {match}) AS usql_fs"
        files_join = self._file_properties_join(paths, file_set) if props else ""
        return f"SELECT\n  {select}\nFROM {reader}{files_join}", cols

    @staticmethod
    def _file_properties_join(paths: list[Path], file_set: FileSet | None) -> str:
        """A join of the rows' ``usql_file`` to the properties of the input files, read at compile time (as U-SQL's
        FILE functions are): URI (the ``file://`` URI of the local path), MODIFIED and CREATED (the file's mtime and
        ctime as UTC DateTimes) and LENGTH (bytes)."""
        files = sorted(glob.glob(file_set.glob)) if file_set is not None else [str(p) for p in paths]
        rows = []
        for f in dict.fromkeys(files):
            st = os.stat(f)
            stamps = [datetime.fromtimestamp(x, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
                      for x in (st.st_mtime, st.st_ctime)]  # fmt: skip
            uri = Path(f).absolute().as_uri()
            rows.append(f"({lit(f)}, {lit(uri)}, TIMESTAMP {lit(stamps[0])}, TIMESTAMP {lit(stamps[1])}, "
                        f"CAST({st.st_size} AS BIGINT))")  # fmt: skip
        values = ", ".join(rows)
        names = "usql_fp_path, usql_fp_uri, usql_fp_modified, usql_fp_created, usql_fp_length"
        return f"\nJOIN (VALUES {values}) AS usql_fp({names}) ON usql_fp.usql_fp_path = usql_file"

    def _utf8_copies(
        self, paths: list[Path], file_set: FileSet | None, codec: str, pos: n.Pos
    ) -> tuple[list[Path], FileSet | None]:
        """Inputs in an encoding DuckDB cannot read are read from UTF-8 copies, which the runner makes right before
        the statement (an ``input`` statement each, see :class:`InputCopy`). Returns the copies' paths and file set
        (the original pattern under the copies' folder, so the virtual columns come out the same)."""
        if self.copy_root is None:
            self.copy_root = Path(tempfile.gettempdir()) / f"usql-input-{uuid.uuid4().hex[:12]}"
        copies: list[Path] = []
        for p in paths:
            folder = self.copy_root / str(sum(st.kind == "input" for st in self.out) + 1)
            source, regex = (file_set.glob, file_set.regex) if file_set else (str(p), None)
            copy = InputCopy(source, codec, folder, self.copy_root, regex)
            copies.append(folder / p.relative_to(p.anchor))
            note = f"-- input: {p} is {codec}; the run reads a UTF-8 copy made in {folder}"
            self.out.append(EmittedStatement("input", note, pos.line, pos.column, input_copy=copy))
        return copies, (parse_file_set(str(copies[0]), repeated_parts=True) if file_set else None)

    @staticmethod
    def _file_group(fs: FileSet, group: int) -> str:
        """The text of a pattern's capture group in the file name."""
        return f"regexp_extract(usql_file, {lit(fs.regex)}, {group})"

    def _file_checks(self, fs: FileSet, types: dict[str, UType]) -> list[str]:
        """Conditions on the file name beyond the pattern: repeated date parts agree, date parts form a date
        (else the file is not in the set), ``{name}`` texts convert to their columns' types (else an error)."""
        checks = [
            f"TRY_CAST({self._file_group(fs, a.group)} AS INTEGER) = TRY_CAST({self._file_group(fs, b.group)} AS "
            "INTEGER)"
            for a, b in fs.repeated_parts
        ]
        for name, holders in fs.columns.items():
            ty = types[name]
            if any(h.part is not None for h in holders):
                checks.append(f"{self._date_from_parts(fs, holders)} IS NOT NULL")
            elif ty.name not in ("string", "char"):
                raw = self._file_group(fs, holders[0].group)
                bad = f"{self._virtual_value(raw, ty)} IS NULL" + ("" if not ty.nullable else f" AND trim({raw}) <> ''")
                message = lit(f"conversion error: a file name part of {{{name}}} is not a valid {ty}")
                checks.append(f"CASE WHEN {bad} THEN error({message}) ELSE true END")
        return checks

    def _date_from_parts(self, fs: FileSet, holders: list[Placeholder]) -> str:
        """The DateTime of a column's date parts (missing parts: month/day 1, time 0); NULL if no valid date.

        ``try_strptime`` of the parts' text rather than ``make_timestamp``, which DuckDB does not turn into
        a file filter (and which raises on 2024/02/30)."""
        slots = ["'1'", "'1'", "'1'", "'0'", "'0'", "'0'"]
        for h in reversed(holders):  # the first of repeated parts wins (they agree)
            if h.part is not None:
                slots[DATE_PARTS[h.part][1]] = self._file_group(fs, h.group)
        y, mo, d, hh, mi, ss = slots
        text = f"{y} || '-' || {mo} || '-' || {d} || ' ' || {hh} || ':' || {mi} || ':' || {ss}"
        return f"try_strptime({text}, '%Y-%m-%d %H:%M:%S')"

    def _virtual_columns(self, fs: FileSet, types: dict[str, UType], e: n.Extract) -> dict[str, str]:
        """SQL of each virtual column bound by the file set pattern, from the capture groups in ``usql_file``."""
        out: dict[str, str] = {}
        path_pos = e.paths[0].pos
        for name, holders in fs.columns.items():
            if name not in types:
                raise self.err(path_pos, "file set", f"the pattern binds {{{name}}} but {name!r} is not in the "
                               f"EXTRACT column list; declare it there (e.g. {name} string) or use {{*}}")  # fmt: skip
            ty = types[name]
            parts = [h for h in holders if h.part is not None]
            if parts:
                if ty.name != "DateTime":
                    raise self.err(path_pos, "file set", f"{{{name}:{parts[0].part}}} is a date part, so {name!r} "
                                   f"must be DateTime, not {ty}")  # fmt: skip
                out[name] = self._date_from_parts(fs, holders)
                continue
            out[name] = self._virtual_value(self._file_group(fs, holders[0].group), ty)
        return out

    @staticmethod
    def _virtual_value(raw: str, ty: UType) -> str:
        """The text of a ``{name}`` placeholder as the column's type, NULL if it does not convert.

        Never raises (the check in :meth:`_file_checks` does), so DuckDB can use it in file filters."""
        if ty.name in ("string", "char"):
            return raw
        if ty.name == "DateTime":
            formats = "['%m/%d/%Y %I:%M:%S %p', '%m/%d/%Y %H:%M:%S', '%m/%d/%Y']"
            return f"coalesce(TRY_CAST(trim({raw}) AS TIMESTAMP), try_strptime(trim({raw}), {formats}))"
        if ty.is_integral:
            # int.Parse's format without a CASE (a CASE keeps DuckDB from using the expression as a file filter)
            digits = f"nullif(regexp_extract({raw}, {_INTEGER_GROUP}, 1), '')"
            return f"TRY_CAST({digits} AS {ty.duckdb()})"
        return parse_string_as(raw, ty.name, try_=True)

    @staticmethod
    def _extract_field(v: str, name: str, ty: UType, fmt: TextFormat, helper: str) -> tuple[str, str | None]:
        """Text field -> typed value with the built-in extractors' rules (C# Parse; empty -> null if nullable).

        Returns the conversion and the SQL of a helper column (named ``helper``, computed below the conversion,
        so once per field) that it reads, or None. The helper is the fast path, ``TRY_CAST`` of the raw text:
        most fields are canonical (an ISO DateTime, a number; an integer that prints back as the same text), so
        only the other fields take the slow path (trims, empty-value checks, C#'s integer format, the en-US
        DateTime formats). The result is what the slow path alone gives: a raw text that casts also casts
        trimmed, to the same value.
        """
        if ty.name == "string":
            return v, None
        try_ = fmt.silent and ty.nullable
        cast = "TRY_CAST" if try_ else "CAST"
        checked = v
        if ty.nullable and fmt.null_escape is None and not try_:
            # only a quoted "" reads as '' here (an unquoted empty field is NULL): the reference's nullEscape table
            # makes it a conversion error for nullable non-string types ("a zero-length string with quotes will be
            # a zero-length string"); with a nullEscape DuckDB reads both as '' (see docs/usql.md)
            checked = f"usql_not_quoted_empty({v}, {lit(name)})"
        src = f"NULLIF(trim({checked}), '')" if ty.nullable else f"usql_required({v}, {lit(name)})"
        if ty.name == "char":
            if fmt.char_format == "string":
                return (checked if ty.nullable else f"usql_required({v}, {lit(name)})"), None
            return f"chr({cast}(trim({src}) AS INTEGER))", None
        if ty.name == "byte[]":
            return f"unhex({src})", None
        duck = ty.duckdb()
        fast = f"TRY_CAST({v} AS {duck})"
        if ty.is_integral:
            # C#'s int.Parse takes only [ws][sign]digits[ws]; DuckDB's cast alone would round "2.5", read "1e3"
            if try_:
                slow = f"TRY_CAST(CASE WHEN regexp_full_match({v}, {STRICT_INTEGER}) THEN {v} END AS {duck})"
            else:
                slow = f"CAST(usql_int_text({src}, {lit(f'{ty.name} (column {name})')}) AS {duck})"
            return f"CASE WHEN CAST({helper} AS VARCHAR) = {v} THEN {helper} ELSE {slow} END", fast
        if ty.name == "DateTime":
            if try_:
                slow = (
                    f"coalesce(TRY_CAST(trim({src}) AS TIMESTAMP), try_strptime(trim({src}), '%m/%d/%Y %I:%M:%S %p'))"
                )
            else:
                slow = f"usql_parse_datetime({src})"
        else:
            slow = f"{cast}(trim({src}) AS {duck})"
        # a CASE, not coalesce(): DuckDB's common-subexpression pass would hoist the slow path's trim()s out
        # of a coalesce() and run them on every row; it leaves CASE branches alone
        return f"CASE WHEN {helper} IS NOT NULL THEN {helper} ELSE {slow} END", fast

    # ------------------------------------------------------------ SELECT
    def select(self, s: n.Select) -> tuple[str, list[tuple[str, UType]]]:
        for hint in s.hints:
            self._note(s.pos, f"{hint} ignored (a query hint; it does not change the result)")
        from_sql, scope = self.source_sql(s.source) if s.source is not None else ("", Scope())
        items: list[str] = []
        cols: list[tuple[str, UType]] = []
        positions: list[n.Pos] = []  # of each column's select item
        for it in s.items:
            if isinstance(it.expr, n.Star):
                qual = it.expr.qualifier
                if qual is not None and qual not in scope.aliases():
                    raise self.err(it.pos, "SELECT", f"unknown rowset alias {qual!r} in {qual}.*")
                for alias, c, ty in scope.columns:
                    if qual is None or alias == qual:
                        items.append(f"{self._ident(alias)}.{self._ident(c)}" if alias else self._ident(c))
                        cols.append((c, ty))
                        positions.append(it.pos)
                continue
            sql, ty = self.x.tr(it.expr, scope)
            name = it.alias
            if name is None:
                # a column, or an expression ending in a property/field access (c1.ToString().Length -> Length)
                if isinstance(it.expr, (n.Name, n.Member)):
                    name = it.expr.name
                elif isinstance(it.expr, n.Variable) and it.expr.name in jobinfo.PROPERTY_TYPES:
                    name = it.expr.name.rsplit(".", 1)[1]  # @@JobInfo.Submit.Alias is the column Alias
                else:
                    raise self.err(it.pos, "SELECT", "this select expression needs a column name: add AS name")
            if ty.name == "null":
                raise self.err(it.pos, "type", f"column {name!r} has no type: cast null, e.g. (string) null")
            if non_column_type(ty):
                raise self.err(it.pos, "type", f"column {name!r} would be a {non_column_type(ty)}, which is not a "
                               "U-SQL column type: convert it (e.g. span.TotalDays, x.ToString())")  # fmt: skip
            items.append(f"{sql} AS {self._ident(name)}")
            cols.append((name, ty))
            positions.append(it.pos)
        names = [c for c, _ in cols]
        dup = next((c for c in names if names.count(c) > 1), None)
        if dup:
            raise self.err(s.pos, "SELECT", f"column {dup!r} appears twice in the result; rename one with AS")
        self._check_case(zip(names, positions, strict=True), "SELECT")
        sql = "SELECT " + ("DISTINCT " if s.distinct else "") + ",\n  ".join(items)
        if from_sql:
            sql += "\nFROM " + from_sql
        self.x.allow_aggregates = False
        try:
            if s.where is not None:
                # DateTime.Parse("...") as a constant, so that WHERE on a file set's virtual columns skips files
                sql += "\nWHERE " + self.x.bool_sql(fold_datetime_parse(s.where), scope, "WHERE")
            if s.group_by:
                sql += "\nGROUP BY " + ", ".join(self.x.tr(g, scope)[0] for g in s.group_by)
        finally:
            self.x.allow_aggregates = True
        if s.having is not None:
            having_scope = Scope(scope.columns, {c: (self._ident(c), ty) for c, ty in cols})
            sql += "\nHAVING " + self.x.bool_sql(s.having, having_scope, "HAVING")
        return sql, cols

    def source_sql(self, src: n.Source) -> tuple[str, Scope]:
        if isinstance(src, n.RowsetRef):
            rs = self._rowset(src)
            alias = src.alias or src.name
            return f"{q(rs.view)} AS {q(alias)}", Scope([(alias, c, ty) for c, ty in rs.columns])
        if isinstance(src, n.SubquerySource):
            sql, cols = self.query(src.query)
            return f"(\n{sql}\n) AS {q(src.alias)}", Scope([(src.alias, c, ty) for c, ty in cols])
        if isinstance(src, n.ValuesSource):
            return self.values(src)
        if isinstance(src, n.TableRef):
            table_sql, tcols = self._relation(src.table, src.pos)
            alias = src.alias or src.table.name
            return f"{table_sql} AS {q(alias)}", Scope([(alias, c, ty) for c, ty in tcols])
        if isinstance(src, n.TvfCall):
            sql, cols = self._call_function(src)
            alias = src.alias or src.function.name
            return f"(\n{sql}\n) AS {q(alias)}", Scope([(alias, c, ty) for c, ty in cols])
        if isinstance(src, n.Join):
            return self.join(src)
        if isinstance(src, n.Pivot):
            return self.pivot(src)
        if isinstance(src, n.Unpivot):
            return self.unpivot(src)
        raise self.err(src.pos, "FROM", "EXPLODE needs CROSS APPLY")

    def _check_case(self, names: Iterable[tuple[str, n.Pos]], construct: str, what: str = "columns") -> None:
        """Refuses names that differ only in case: U-SQL's identifiers are case-sensitive, DuckDB's are not, so
        ``[Sophia]`` and ``[SOPHIA]`` would silently name one column. The error is at the second name's position."""
        seen: dict[str, str] = {}
        for name, pos in names:
            first = seen.setdefault(name.lower(), name)
            if first != name:
                why = "the local engine (DuckDB: case-insensitive names) cannot keep apart; rename one"
                raise self.err(pos, construct, f"the {what} {first!r} and {name!r} differ only in case, which {why}")

    @staticmethod
    def _column_sql(alias: str | None, col: str) -> str:
        return f"{q(alias)}.{q(col)}" if alias else q(col)

    def pivot(self, pv: n.Pivot) -> tuple[str, Scope]:
        """PIVOT as SQL Server defines it: GROUP BY every input column that neither the aggregate nor the FOR
        column uses; one column per IN value, the aggregate over the group's rows whose FOR column ``==`` it
        (``AGG(col == v ? x : null)``, which is why the reference wants null-invariant aggregates)."""
        src_sql, scope = self.source_sql(pv.source)
        agg = pv.aggregate
        if agg.distinct or agg.over is not None or agg.within_group:
            raise self.err(agg.pos, "PIVOT", "the PIVOT aggregate cannot use DISTINCT, OVER or WITHIN GROUP")
        self.x.tr(pv.column, scope)  # the FOR column must exist
        used = {pv.column.name} | {c for a in agg.args for c in _column_names(a)}
        group = [(a, c, ty) for a, c, ty in scope.columns if c not in used]
        items = [f"{self._column_sql(a, c)} AS {q(c)}" for a, c, _ in group]
        cols: list[tuple[str, UType]] = [(c, ty) for _, c, ty in group]
        null = n.Literal(None, "null", agg.pos)
        counting = isinstance(agg.func, n.Name) and agg.func.name == "COUNT"
        for value, name in pv.values:
            match = n.Binary("==", pv.column, value, value.pos)
            args = agg.args or (n.Literal(1, "int", agg.pos),)  # COUNT(*): count the matching rows
            call = replace(agg, args=tuple(n.Conditional(match, a, null, a.pos) for a in args), star=False)
            sql, ty = self.x.tr(call, scope)
            items.append(f"{sql} AS {q(name)}")
            cols.append((name, ty if counting else ty.with_nullable(True)))
        names = [c for c, _ in cols]
        dup = next((c for c in names if names.count(c) > 1), None)
        if dup:
            raise self.err(pv.pos, "PIVOT", f"column {dup!r} appears twice in the PIVOT result; rename a value with AS")
        self._check_case([(c, pv.pos) for c in names], "PIVOT")
        sql = "SELECT " + ",\n  ".join(items) + "\nFROM " + src_sql
        if group:
            sql += "\nGROUP BY " + ", ".join(self._column_sql(a, c) for a, c, _ in group)
        return f"(\n{sql}\n) AS {q(pv.alias)}", Scope([(pv.alias, c, ty) for c, ty in cols])

    def unpivot(self, up: n.Unpivot) -> tuple[str, Scope]:
        """UNPIVOT: per input row, one row per IN column holding its name (string) and value; EXCLUDE NULLS
        (the default) drops the rows whose value is null. Columns: the other input columns, name, value."""
        src_sql, scope = self.source_sql(up.source)
        found = []
        for c in up.columns:
            matches = scope.find(c)
            if len(matches) != 1:
                what = "is ambiguous" if matches else "is not a column of the rowset"
                raise self.err(up.pos, "UNPIVOT", f"UNPIVOT column {c!r} {what}{self.x._known(scope)}")
            found.append(matches[0])
        first = found[0][2]
        for _, c, ty in found[1:]:
            if ty.name != first.name or str(ty.with_nullable(True)) != str(first.with_nullable(True)):
                raise self.err(up.pos, "UNPIVOT", f"UNPIVOT columns must have one type: {c!r} is {ty}, "
                               f"{found[0][1]!r} is {first}")  # fmt: skip
        rest = [(a, c, ty) for a, c, ty in scope.columns if c not in up.columns]
        for new in (up.name, up.value):
            if new in [c for _, c, _ in rest] or up.name == up.value:
                raise self.err(up.pos, "UNPIVOT", f"column {new!r} appears twice in the UNPIVOT result")
        vtype = first.with_nullable(any(ty.nullable for _, _, ty in found))
        keys = "[" + ", ".join(lit(c) for c in up.columns) + "]"
        values = "[" + ", ".join(self._column_sql(a, c) for a, c, _ in found) + "]"
        items = [f"{self._column_sql(a, c)} AS {q(c)}" for a, c, _ in rest]
        items += [f"unnest({keys}) AS {q(up.name)}", f"unnest({values}) AS {q(up.value)}"]
        sql = "SELECT " + ", ".join(items) + "\nFROM " + src_sql
        if not up.include_nulls:
            sql = f"SELECT * FROM (\n{sql}\n) AS usql_u\nWHERE {q(up.value)} IS NOT NULL"
        cols = [(c, ty) for _, c, ty in rest] + [(up.name, t.STRING), (up.value, vtype)]
        self._check_case([(c, up.pos) for c, _ in cols], "UNPIVOT")
        return f"(\n{sql}\n) AS {q(up.alias)}", Scope([(up.alias, c, ty) for c, ty in cols])

    def values(self, v: n.ValuesSource) -> tuple[str, Scope]:
        self._check_case([(c, v.pos) for c in v.columns], "VALUES")
        rows_sql = []
        types: list[UType | None] = [None] * len(v.columns)
        for row in v.rows:
            vals = []
            for i, e in enumerate(row):
                sql, ty = self.x.tr(e, Scope())
                prev = types[i]
                if prev is None or prev.name == "null":
                    types[i] = ty.with_nullable(ty.nullable or (prev is not None))
                elif ty.name == "null":
                    types[i] = prev.with_nullable(True)
                elif prev.name != ty.name:
                    raise self.err(e.pos, "VALUES", f"column {v.columns[i]!r} mixes {prev} and {ty} values")
                vals.append(sql)
            rows_sql.append("(" + ", ".join(vals) + ")")
        final: list[UType] = []
        for i, maybe in enumerate(types):
            if maybe is None or maybe.name == "null":
                raise self.err(v.pos, "VALUES", f"column {v.columns[i]!r} has only null values; cast one")
            final.append(maybe)
        cast_cols = ", ".join(
            f"CAST(c{i} AS {self._type_sql(ty)}) AS {self._ident(c)}"
            for i, (c, ty) in enumerate(zip(v.columns, final, strict=False))
        )
        raw_cols = ", ".join(f"c{i}" for i in range(len(v.columns)))
        table = self._values_table(", ".join(rows_sql))
        sql = f"(SELECT {cast_cols} FROM {table} AS usql_v({raw_cols})) AS {self._ident(v.alias)}"
        return sql, Scope([(v.alias, c, ty) for c, ty in zip(v.columns, final, strict=False)])

    def join(self, j: n.Join) -> tuple[str, Scope]:
        left_sql, left = self.source_sql(j.left)
        if isinstance(j.right, n.Explode):
            return self.explode(left_sql, left, j.right)
        right_sql, right = self.source_sql(j.right)
        dup = left.aliases() & right.aliases()
        if dup:
            raise self.err(j.pos, "JOIN", f"rowset alias {sorted(dup)[0]!r} is used twice; give each side an AS alias")
        self._check_case([(a, j.pos) for a in [*left.aliases(), *right.aliases()]], "JOIN", "rowset aliases")
        both = Scope(left.columns + right.columns)
        on = ""
        if j.on is not None:
            self.x.in_join_condition = True
            self.x.allow_aggregates = False
            try:
                on = " ON " + self.x.bool_sql(j.on, both, "the JOIN condition")
            finally:
                self.x.in_join_condition = False
                self.x.allow_aggregates = True
        kind = j.kind
        if kind.endswith("SEMIJOIN"):
            anti = "ANTI" in kind
            keyword = "ANTI JOIN" if anti else "SEMI JOIN"
            if kind.startswith("RIGHT"):
                return f"{right_sql}\n{keyword} {left_sql}{on}", right
            return f"{left_sql}\n{keyword} {right_sql}{on}", left
        keyword = {"INNER": "INNER JOIN", "LEFT": "LEFT OUTER JOIN", "RIGHT": "RIGHT OUTER JOIN",
                   "FULL": "FULL OUTER JOIN", "CROSS": "CROSS JOIN"}[kind]  # fmt: skip
        lcols = [(a, c, ty.with_nullable(True) if kind in ("RIGHT", "FULL") else ty) for a, c, ty in left.columns]
        rcols = [(a, c, ty.with_nullable(True) if kind in ("LEFT", "FULL") else ty) for a, c, ty in right.columns]
        return f"{left_sql}\n{keyword} {right_sql}{on}", Scope(lcols + rcols)

    def explode(self, left_sql: str, left: Scope, ex: n.Explode) -> tuple[str, Scope]:
        sql, ty = self.x.tr(ex.expr, left)
        join = "LEFT JOIN LATERAL" if ex.outer else "CROSS JOIN LATERAL"
        on = " ON TRUE" if ex.outer else ""
        if ty.name == "SqlMap":
            if len(ex.columns) != 2:
                raise self.err(ex.pos, "EXPLODE", "EXPLODE of a SqlMap yields two columns: AS T(key, value)")
            k, v = ex.columns
            kt = (ty.key or t.STRING).with_nullable(ex.outer)
            vt = (ty.element or t.UNKNOWN).with_nullable(True)
            lateral = f"(SELECT unnest(map_keys({sql})) AS {q(k)}, unnest(map_values({sql})) AS {q(v)})"
            return (f"{left_sql}\n{join} {lateral} AS {q(ex.alias)}{on}",
                    Scope([*left.columns, (ex.alias, k, kt), (ex.alias, v, vt)]))  # fmt: skip
        if ty.name != "SqlArray" or len(ex.columns) != 1:
            raise self.err(ex.pos, "EXPLODE", "EXPLODE takes a SqlArray (AS T(col)) or a SqlMap (AS T(key, value))")
        elem = ty.element or t.UNKNOWN
        col = q(ex.columns[0])
        return (f"{left_sql}\n{join} (SELECT unnest({sql}) AS {col}) AS {q(ex.alias)}{on}",
                Scope([*left.columns, (ex.alias, ex.columns[0], elem.with_nullable(True))]))  # fmt: skip


#: Catalog statement -> the DuckDbEmitter method compiling it.
_CATALOG_HANDLERS: dict[type, str] = {
    n.UseDatabase: "use_database",
    n.CreateDatabase: "create_database",
    n.DropDatabase: "drop_database",
    n.CreateTable: "create_table",
    n.DropTable: "drop_table",
    n.Insert: "insert",
    n.UseSchema: "use_schema",
    n.CreateSchema: "create_schema",
    n.CreateView: "create_object",
    n.CreateFunction: "create_object",
    n.CreateProcedure: "create_object",
    n.DropObject: "drop_object",
    n.CallProcedure: "call_procedure",
    n.TruncateTable: "truncate_table",
    n.AlterPartitions: "alter_partitions",
    n.TableNote: "table_note",
    n.If: "if_statement",
    n.DeclareObject: "declare_object",
    n.MultiAssign: "multi_assign",
}

#: The statements a table-valued function's body may hold (besides IF, which is replaced by its branch).
_FUNCTION_STATEMENTS = (n.Declare, n.Assign, n.MultiAssign, n.UseDatabase, n.UseSchema, n.Ignored)
_OBJECT_KINDS = {n.CreateView: "VIEW", n.CreateFunction: "FUNCTION", n.CreateProcedure: "PROCEDURE"}


def _param_value(raw: str, typ: UType) -> object:
    """The constant value of a parameter's text (already checked by ``_param_sql``); ValueError if it has none."""
    if typ.name == "string":
        return raw
    if typ.name == "bool":
        return raw.strip().lower() == "true"
    if typ.is_integral:
        return int(raw.strip())
    if typ.name in ("double", "float"):
        return float(raw)
    raise ValueError(typ.name)


def _results(fn: n.CreateFunction) -> tuple[tuple[str, tuple[tuple[str, n.TypeRef, n.Pos], ...] | None], ...]:
    """Every rowset a function returns, with its declared columns (None: not declared)."""
    return fn.results or ((fn.result, fn.columns),)


_WIDENING = {
    "sbyte": ("short", "int", "long", "float", "double", "decimal"),
    "byte": ("short", "ushort", "int", "uint", "long", "ulong", "float", "double", "decimal"),
    "short": ("int", "long", "float", "double", "decimal"),
    "ushort": ("int", "uint", "long", "ulong", "float", "double", "decimal"),
    "int": ("long", "float", "double", "decimal"),
    "uint": ("long", "ulong", "float", "double", "decimal"),
    "long": ("float", "double", "decimal"),
    "ulong": ("float", "double", "decimal"),
    "float": ("double",),
}


def _assignable(src: UType, dst: UType) -> bool:
    """C# implicit conversion of a column value into a table column (T -> T?, numeric widening)."""
    if src.nullable and not dst.nullable and src.name not in t.REFERENCE:
        return False
    if src.name == dst.name:
        return src.name not in ("SqlArray", "SqlMap") or str(src) == str(dst)
    return dst.name in _WIDENING.get(src.name, ())


def _column_names(e: object) -> set[str]:
    """The column names an expression reads (``x``, ``alias.x``, ``@rowset.x``); lambda parameters included."""
    if isinstance(e, n.Name):
        return {e.name}
    if isinstance(e, n.Member) and isinstance(e.target, (n.Name, n.Variable)):  # alias.x, @rowset.x
        return {e.name, e.target.name}
    if isinstance(e, tuple):
        return {c for item in e for c in _column_names(item)}
    if is_dataclass(e) and not isinstance(e, type):
        return {c for f in fields(e) for c in _column_names(getattr(e, f.name))}
    return set()


def _helper_names(columns: list[str]) -> dict[str, str]:
    """A helper column name per column, ``usql_h<i>``, distinct from every column name."""
    prefix = "usql_h"
    while any(c.startswith(prefix) for c in columns):
        prefix += "_"
    return {c: f"{prefix}{i}" for i, c in enumerate(columns)}
