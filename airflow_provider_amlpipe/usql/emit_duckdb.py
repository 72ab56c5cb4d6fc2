"""The DuckDB emitter: the intermediate form -> DuckDB SQL statements (views, COPY ... TO).

Rowset assignments become temporary views (U-SQL rowset variables are named, inlined query
expressions, like views); EXTRACT becomes ``read_csv`` with every field read as text and then
converted with C# parsing rules; OUTPUT becomes ``COPY (one formatted line per row) TO path``, so
DuckDB streams the files itself and the output bytes follow the outputter's documented format.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.catalog import MASTER, Catalog, CatalogError, Database
from airflow_provider_amlpipe.usql.consts import NotConstant, fold
from airflow_provider_amlpipe.usql.csformat import FormatError, to_strftime
from airflow_provider_amlpipe.usql.duckdb_exprs import (
    STRICT_INTEGER,
    ExprTranslator,
    Scope,
    Typed,
    cs_tostring,
    lit,
    parse_string_as,
    q,
)
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.filesets import DATE_PARTS, FileSet, FileSetError, is_file_set, parse_file_set
from airflow_provider_amlpipe.usql.options import TextFormat, text_format
from airflow_provider_amlpipe.usql.types import UType

PRELUDE = (
    "CREATE OR REPLACE TEMP MACRO usql_fmt_real(x) AS CASE WHEN x IS NULL THEN NULL WHEN isnan(x) THEN 'NaN' "
    "WHEN isinf(x) THEN CASE WHEN x > 0 THEN 'Infinity' ELSE '-Infinity' END "
    "ELSE regexp_replace(CAST(x AS VARCHAR), '\\.0$', '') END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_fmt_decimal(x) AS CASE WHEN CAST(x AS VARCHAR) LIKE '%.%' "
    "THEN rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.') ELSE CAST(x AS VARCHAR) END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_parse_datetime(s) AS CASE WHEN s IS NULL THEN NULL ELSE coalesce("
    "try_cast(trim(s) AS TIMESTAMP), try_strptime(trim(s), ['%m/%d/%Y %I:%M:%S %p', '%m/%d/%Y %H:%M:%S', "
    "'%m/%d/%Y']), error('String was not recognized as a valid DateTime: ' || s)) END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_required(s, col) AS CASE WHEN s IS NULL OR trim(s) = '' THEN "
    "error('conversion error: null or empty value for the non-nullable column ' || col) ELSE s END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_int_text(s, what) AS CASE WHEN s IS NULL OR regexp_full_match(s, "
    + STRICT_INTEGER
    + ") THEN s ELSE error('conversion error: input string ''' || s || ''' is not in a correct format for ' "
    "|| what) END;"
)


#: C#'s int.Parse format (as STRICT_INTEGER), for parameter values checked at compile time.
_CS_INTEGER = re.compile(r"[\t-\r ]*[+-]?[0-9]+[\t-\r ]*")


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


@dataclass(frozen=True)
class Rowset:
    view: str
    columns: tuple[tuple[str, UType], ...]


class DuckDbEmitter:
    """Compiles a parsed script to DuckDB statements; one instance per script."""

    def __init__(
        self, source: str, params: Mapping[str, str], base_dir: Path, *, catalog_dir: Path | None = None
    ) -> None:
        self.source = source
        self.catalog = Catalog(catalog_dir or base_dir / ".usql-catalog")
        self.current_db = MASTER
        self.attached: set[str] = set()
        self.params = dict(params)
        self.base_dir = base_dir
        self.constants: dict[str, object] = {}
        self.variables: dict[str, Typed] = {}
        self.rowsets: dict[str, Rowset] = {}
        self.view_counter: dict[str, int] = {}
        self.x = ExprTranslator(source, self._variable)
        self.out: list[EmittedStatement] = []

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
            elif isinstance(st, n.Assign):
                self.assign(st)
            elif isinstance(st, n.Output):
                self.output(st)
            elif isinstance(st, n.UseDatabase):
                self.use_database(st)
            elif isinstance(st, n.CreateDatabase):
                self.create_database(st)
            elif isinstance(st, n.DropDatabase):
                self.drop_database(st)
            elif isinstance(st, n.CreateTable):
                self.create_table(st)
            elif isinstance(st, n.DropTable):
                self.drop_table(st)
            elif isinstance(st, n.Insert):
                self.insert(st)
            else:
                self.out.append(EmittedStatement("comment", f"-- ignored: {st.text}", st.pos.line, st.pos.column))
        return self.out

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

    def _table(self, tn: n.TableName, must_exist: bool = True) -> tuple[str, str, list[tuple[str, UType]] | None]:
        """(database, table, columns or None if it does not exist) of a table name."""
        if tn.schema not in (None, "dbo"):
            raise self.err(tn.pos, "schema", f"schema {tn.schema!r} is not supported; tables live in dbo")
        db_name = tn.database or self.current_db
        db = self._db(db_name, tn.pos)
        if db is None:
            raise self.err(tn.pos, "table", f"database {db_name!r} of table {tn} does not exist")
        cols = db.tables.get(tn.name)
        if cols is None and must_exist:
            known = ", ".join(sorted(db.tables)) or "none"
            raise self.err(tn.pos, "table", f"unknown table {db_name}.dbo.{tn.name} (tables in {db_name}: {known})")
        return db_name, tn.name, cols

    def _table_sql(self, db: str, table: str, pos: n.Pos) -> str:
        return f"{self._attach(db, pos)}.main.{q(table)}"

    def create_table(self, st: n.CreateTable) -> None:
        db_name, name, existing = self._table(st.table, must_exist=False)
        if existing is not None:
            if st.if_not_exists:
                self._note(st.pos, f"table {db_name}.dbo.{name} exists (IF NOT EXISTS)")
                return
            raise self.err(st.table.pos, "CREATE TABLE", f"table {db_name}.dbo.{name} already exists")
        if not Catalog.valid_name(name) or "." in name:
            raise self.err(st.table.pos, "CREATE TABLE", f"{name!r} is not a table name this catalog can store")
        for note in st.notes:
            self._note(st.pos, f"{note} has no effect locally (accepted and ignored)")
        if st.query is not None:
            sql, cols = self.query(st.query)
        else:
            sql = ""
            cols = []
            seen: set[str] = set()
            for cname, tr, pos in st.columns:
                ty = t.resolve(tr)
                if ty is None:
                    raise self.err(tr.pos, "type", f"unknown column type {tr.name!r}")
                if cname in seen:
                    raise self.err(pos, "CREATE TABLE", f"column {cname!r} is defined twice")
                seen.add(cname)
                cols.append((cname, ty))
        for cname, ty in cols:
            if ty.name in ("unknown", "null"):
                raise self.err(st.pos, "CREATE TABLE", f"column {cname!r} has no storable type ({ty})")
        target = self._table_sql(db_name, name, st.table.pos)
        defs = ", ".join(f"{q(c)} {ty.duckdb()}{'' if ty.nullable else ' NOT NULL'}" for c, ty in cols)
        stmts = [f"CREATE TABLE {target} ({defs});"]
        stmts += [f"COMMENT ON COLUMN {target}.{q(c)} IS {lit(str(ty))};" for c, ty in cols]
        if sql:
            stmts.append(f"INSERT INTO {target}\n{sql};")
        self.out.append(EmittedStatement("catalog", "\n".join(stmts), st.pos.line, st.pos.column))
        db = self.catalog.get(db_name)
        assert db is not None
        db.tables[name] = list(cols)

    def drop_table(self, st: n.DropTable) -> None:
        db_name, name, existing = self._table(st.table, must_exist=not st.if_exists)
        if existing is None:
            self._note(st.pos, f"table {db_name}.dbo.{name} does not exist (IF EXISTS)")
            return
        sql = f"DROP TABLE {self._table_sql(db_name, name, st.table.pos)};"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))
        db = self.catalog.get(db_name)
        assert db is not None
        del db.tables[name]

    def insert(self, st: n.Insert) -> None:
        db_name, name, existing = self._table(st.table)
        assert existing is not None
        types = dict(existing)
        targets = list(st.columns) if st.columns else [c for c, _ in existing]
        for c in targets:
            if c not in types:
                raise self.err(st.table.pos, "INSERT", f"table {db_name}.dbo.{name} has no column {c!r}")
            if targets.count(c) > 1:
                raise self.err(st.table.pos, "INSERT", f"column {c!r} is listed twice")
        for c, ty in existing:
            if c not in targets and not ty.nullable:
                raise self.err(st.table.pos, "INSERT", f"column {c!r} ({ty}) is not nullable and needs a value")
        sql, cols = self.query(st.query)
        if len(cols) != len(targets):
            raise self.err(st.pos, "INSERT", f"the query yields {len(cols)} column(s) but {len(targets)} are inserted "
                           f"into {db_name}.dbo.{name} ({', '.join(targets)})")  # fmt: skip
        exprs = []
        for (src, sty), dst in zip(cols, targets, strict=True):
            dty = types[dst]
            if not _assignable(sty, dty):
                raise self.err(st.pos, "INSERT", f"column {src!r} is {sty} but {name}.{dst} is {dty}")
            exprs.append(q(src) if sty.name == dty.name else f"CAST({q(src)} AS {dty.duckdb()})")
        target = self._table_sql(db_name, name, st.table.pos)
        col_list = ", ".join(q(c) for c in targets)
        body = f"INSERT INTO {target} ({col_list})\nSELECT {', '.join(exprs)} FROM (\n{sql}\n) AS usql_insert;"
        self.out.append(EmittedStatement("catalog", body, st.pos.line, st.pos.column))

    def _variable(self, v: n.Variable) -> Typed:
        if v.name in self.variables:
            return self.variables[v.name]
        if v.name in self.rowsets:
            raise self.err(v.pos, "variable", f"@{v.name} is a rowset, not a scalar value")
        raise self.err(v.pos, "variable", f"unknown variable @{v.name} (DECLARE it first)")

    def declare(self, d: n.Declare) -> None:
        typ = t.resolve(d.type)
        if typ is None or typ.name in ("SqlArray", "SqlMap", "byte[]"):
            raise self.err(d.type.pos, "DECLARE", f"type {d.type.name!r} is not supported for variables")
        if d.name in self.variables and not d.external:
            raise self.err(d.pos, "DECLARE", f"variable @{d.name} is already declared")
        if d.external and d.name in self.params:
            raw = self.params[d.name]
            self.variables[d.name] = self._param_sql(raw, typ, d)
            if typ.name == "string":
                self.constants[d.name] = raw
            return
        sql, vt = self.x.tr(d.value, Scope())
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
        k = self.view_counter.get(name, 0) + 1
        self.view_counter[name] = k
        return f"rs_{name}" if k == 1 else f"rs_{name}_{k}"

    def assign(self, a: n.Assign) -> None:
        if a.name in self.variables:
            raise self.err(a.pos, "variable", f"@{a.name} is a scalar variable and cannot name a rowset")
        sql, cols = self.query(a.query)
        view = self._view_name(a.name)
        self.rowsets[a.name] = Rowset(view, tuple(cols))
        stmt = f"CREATE OR REPLACE TEMP VIEW {q(view)} AS\n{sql};"
        self.out.append(EmittedStatement("view", stmt, a.pos.line, a.pos.column))

    def path(self, e: n.Expr, construct: str, allow_file_set: bool = False) -> Path:
        try:
            v = fold(e, self.constants)
        except NotConstant:
            raise self.err(e.pos, construct, "the path must be a constant string expression") from None
        if not isinstance(v, str) or not v:
            raise self.err(e.pos, construct, "the path must be a non-empty string")
        if "{" in v and not allow_file_set:
            raise self.err(e.pos, "file set", f"file set patterns ({v!r}) are not supported in {construct}")
        if "://" in v:
            raise self.err(e.pos, construct, f"remote paths ({v!r}) are not supported locally; use a local path")
        p = Path(v)
        return p if p.is_absolute() else self.base_dir / p

    # ------------------------------------------------------------ OUTPUT
    def output(self, o: n.Output) -> None:
        fmt = text_format(o.outputter, self.source, self.constants)
        target = self.path(o.path, "OUTPUT")
        sql, cols = self.query(o.source)
        scope = Scope([(None, c, ty) for c, ty in cols])
        parts = []
        for c, ty in cols:
            parts.append(self._format_value(q(c), ty, fmt, o))
        sep = " || " + lit(fmt.delimiter) + " || "
        line = sep.join(parts) if parts else "''"
        header = fmt.delimiter.join((f'"{c}"' if fmt.quoting else c) for c, _ in cols)
        body = f"SELECT {line} AS {q(header)}\nFROM (\n{sql}\n) AS usql_out"
        if o.order_by or o.offset is not None or o.fetch is not None:
            body += self._order_fetch(o.order_by, o.offset, o.fetch, scope)
        new_line = fmt.row_delimiter or "\r\n"
        nl = new_line.replace("\r", "\\r").replace("\n", "\\n")
        stmt = (f"COPY (\n{body}\n) TO {lit(str(target))} (FORMAT csv, HEADER {str(fmt.output_header).lower()}, "
                f"QUOTE '', ESCAPE '', NEW_LINE '{nl}');")  # fmt: skip
        self.out.append(EmittedStatement("output", stmt, o.pos.line, o.pos.column, target))

    def _format_value(self, col: str, ty: UType, fmt: TextFormat, o: n.Output) -> str:
        if ty.name in ("SqlArray", "SqlMap", "byte[]", "unknown"):
            raise self.err(o.pos, "OUTPUT", f"a column of type {ty} cannot be written by the built-in outputters")
        if ty.name == "string":
            v = f"""'"' || replace({col}, '"', '""') || '"'""" if fmt.quoting else col
        elif ty.name == "char":
            v = (
                (f"""'"' || replace({col}, '"', '""') || '"'""" if fmt.quoting else col)
                if (fmt.char_format == "string")
                else f"CAST(unicode({col}) AS VARCHAR)"
            )
        elif ty.name == "DateTime":
            try:
                v = f"strftime({col}, {lit(to_strftime(fmt.date_time_format))})"
            except FormatError as ex:
                raise self.err(o.outputter.pos, "dateTimeFormat", str(ex)) from None
        else:
            v = cs_tostring(col, ty)
        return f"coalesce({v}, {lit(fmt.null_escape or '')})"

    # ------------------------------------------------------------ queries
    def query(self, qn: n.Query) -> tuple[str, list[tuple[str, UType]]]:
        if isinstance(qn, n.RowsetRef):
            rs = self._rowset(qn)
            return f"SELECT * FROM {q(rs.view)}", list(rs.columns)
        if isinstance(qn, n.TableRef):
            db_name, name, cols = self._table(qn.table)
            assert cols is not None
            return f"SELECT * FROM {self._table_sql(db_name, name, qn.pos)}", list(cols)
        if isinstance(qn, n.Extract):
            return self.extract(qn)
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
        raise self.err(n.Pos(1, 1), "query", f"unsupported query {type(qn).__name__}")

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

    def _count(self, e: n.Expr) -> int:
        try:
            v = fold(e, self.constants)
        except NotConstant:
            v = None
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise self.err(e.pos, "FETCH", "row counts in OFFSET/FETCH must be non-negative constant integers")
        return v

    def _rowset(self, r: n.RowsetRef) -> Rowset:
        if r.name not in self.rowsets:
            what = "a scalar variable" if r.name in self.variables else "not defined (assign it before use)"
            raise self.err(r.pos, "rowset", f"unknown rowset @{r.name}: {what}")
        return self.rowsets[r.name]

    def extract(self, e: n.Extract) -> tuple[str, list[tuple[str, UType]]]:
        fmt = text_format(e.extractor, self.source, self.constants)
        paths = [self.path(p, "EXTRACT", allow_file_set=True) for p in e.paths]
        file_set: FileSet | None = None
        for p, pe in zip(paths, e.paths, strict=False):
            if is_file_set(str(p)):
                if len(paths) > 1:
                    raise self.err(pe.pos, "file set", "a file set pattern must be the only path of its EXTRACT")
                try:
                    file_set = parse_file_set(str(p))
                except FileSetError as ex:
                    raise self.err(pe.pos, "file set", str(ex)) from None
            elif not p.exists():
                raise self.err(pe.pos, "EXTRACT", f"input file {str(p)!r} does not exist")
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
        virtual = self._virtual_columns(file_set, dict(cols), e) if file_set is not None else {}
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
            reader = f"read_csv({files}, {', '.join(options)})"
            if helpers:
                # the fast paths (TRY_CAST of the raw text) as columns under the conversions: once per field
                reader = f"(SELECT *{extra}\nFROM {reader}) AS usql_src"
            return f"SELECT\n  {select}\nFROM {reader}", cols
        if next(glob.iglob(file_set.glob), None) is None:
            # An empty file set is an empty rowset (DuckDB's read_csv would fail on a glob that matches nothing).
            empty = ", ".join(f"CAST(NULL AS {ty.duckdb()}) AS {q(c)}" for c, ty in cols)
            return f"SELECT {empty}\nWHERE FALSE", cols
        groups = (
            "["
            + ", ".join(f"'g{i}'" for i in range(1, 1 + max((h.group for h in file_set.placeholders), default=0)))
            + "]"
        )
        rx = lit(file_set.regex)
        vc = f"regexp_extract(usql_file, {rx}, {groups}) AS usql_vc" if groups != "[]" else "NULL AS usql_vc"
        src = (
            f"(SELECT *, {vc}{extra}\nFROM read_csv({lit(file_set.glob)}, {', '.join(options)}, filename='usql_file')\n"
            f"WHERE regexp_full_match(usql_file, {rx})) AS usql_fs"
        )
        return f"SELECT\n  {select}\nFROM {src}", cols

    def _virtual_columns(self, fs: FileSet, types: dict[str, UType], e: n.Extract) -> dict[str, str]:
        """SQL of each virtual column bound by the file set pattern, from the capture groups ``usql_vc.gN``."""
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
                slots = ["1", "1", "1", "0", "0", "0"]
                for h in parts:
                    slots[DATE_PARTS[h.part or ""][1]] = f"CAST(usql_vc.g{h.group} AS BIGINT)"
                out[name] = f"make_timestamp({', '.join(slots)})"
                continue
            raw = f"usql_vc.g{holders[0].group}"
            if ty.name == "string":
                out[name] = raw
            elif ty.name == "DateTime":
                out[name] = f"usql_parse_datetime({raw})"
            elif ty.name == "char":
                out[name] = raw
            else:
                out[name] = parse_string_as(f"usql_required({raw}, {lit(name)})", ty.name)
        return out

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
        src = f"NULLIF(trim({v}), '')" if ty.nullable else f"usql_required({v}, {lit(name)})"
        if ty.name == "char":
            if fmt.char_format == "string":
                return (f"{v}" if ty.nullable else f"usql_required({v}, {lit(name)})"), None
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
        from_sql, scope = self.source_sql(s.source) if s.source is not None else ("", Scope())
        items: list[str] = []
        cols: list[tuple[str, UType]] = []
        for it in s.items:
            if isinstance(it.expr, n.Star):
                qual = it.expr.qualifier
                if qual is not None and qual not in scope.aliases():
                    raise self.err(it.pos, "SELECT", f"unknown rowset alias {qual!r} in {qual}.*")
                for alias, c, ty in scope.columns:
                    if qual is None or alias == qual:
                        items.append(f"{self._ident(alias)}.{self._ident(c)}" if alias else self._ident(c))
                        cols.append((c, ty))
                continue
            sql, ty = self.x.tr(it.expr, scope)
            name = it.alias
            if name is None:
                if isinstance(it.expr, n.Name) or (
                    isinstance(it.expr, n.Member)
                    and isinstance(it.expr.target, n.Name)
                    and (it.expr.target.name in scope.aliases())
                ):
                    name = it.expr.name
                else:
                    raise self.err(it.pos, "SELECT", "this select expression needs a column name: add AS name")
            if ty.name == "null":
                raise self.err(it.pos, "type", f"column {name!r} has no type: cast null, e.g. (string) null")
            items.append(f"{sql} AS {self._ident(name)}")
            cols.append((name, ty))
        names = [c for c, _ in cols]
        dup = next((c for c in names if names.count(c) > 1), None)
        if dup:
            raise self.err(s.pos, "SELECT", f"column {dup!r} appears twice in the result; rename one with AS")
        sql = "SELECT " + ("DISTINCT " if s.distinct else "") + ",\n  ".join(items)
        if from_sql:
            sql += "\nFROM " + from_sql
        self.x.allow_aggregates = False
        try:
            if s.where is not None:
                sql += "\nWHERE " + self.x.bool_sql(s.where, scope, "WHERE")
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
            db_name, name, tcols = self._table(src.table)
            assert tcols is not None
            alias = src.alias or name
            table_sql = self._table_sql(db_name, name, src.pos)
            return f"{table_sql} AS {q(alias)}", Scope([(alias, c, ty) for c, ty in tcols])
        if isinstance(src, n.Join):
            return self.join(src)
        raise self.err(src.pos, "FROM", "EXPLODE needs CROSS APPLY")

    def values(self, v: n.ValuesSource) -> tuple[str, Scope]:
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


def _helper_names(columns: list[str]) -> dict[str, str]:
    """A helper column name per column, ``usql_h<i>``, distinct from every column name."""
    prefix = "usql_h"
    while any(c.startswith(prefix) for c in columns):
        prefix += "_"
    return {c: f"{prefix}{i}" for i, c in enumerate(columns)}
