"""The DuckDB emitter: the intermediate form -> DuckDB SQL statements (views, COPY ... TO).

Rowset assignments become temporary views (U-SQL rowset variables are named, inlined query
expressions, like views); EXTRACT becomes ``read_csv`` with every field read as text and then
converted with C# parsing rules; OUTPUT becomes ``COPY (one formatted line per row) TO path``, so
DuckDB streams the files itself and the output bytes follow the outputter's documented format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.consts import NotConstant, fold
from airflow_provider_amlpipe.usql.csformat import FormatError, to_strftime
from airflow_provider_amlpipe.usql.duckdb_exprs import (
    ExprTranslator,
    Scope,
    Typed,
    cs_tostring,
    lit,
    parse_string_as,
    q,
)
from airflow_provider_amlpipe.usql.errors import UsqlError
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
    "error('conversion error: null or empty value for the non-nullable column ' || col) ELSE s END;"
)


@dataclass(frozen=True)
class EmittedStatement:
    """One DuckDB statement and the U-SQL statement it came from."""

    kind: str  # "view", "output", "comment"
    sql: str
    line: int
    column: int
    output_path: Path | None = None


@dataclass(frozen=True)
class Rowset:
    view: str
    columns: tuple[tuple[str, UType], ...]


class DuckDbEmitter:
    """Compiles a parsed script to DuckDB statements; one instance per script."""

    def __init__(self, source: str, params: Mapping[str, str], base_dir: Path) -> None:
        self.source = source
        self.params = dict(params)
        self.base_dir = base_dir
        self.constants: dict[str, object] = {}
        self.variables: dict[str, Typed] = {}
        self.rowsets: dict[str, Rowset] = {}
        self.view_counter: dict[str, int] = {}
        self.x = ExprTranslator(source, self._variable)
        self.out: list[EmittedStatement] = []

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
            else:
                self.out.append(EmittedStatement("comment", f"-- ignored: {st.text}", st.pos.line, st.pos.column))
        return self.out

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

    def path(self, e: n.Expr, construct: str) -> Path:
        try:
            v = fold(e, self.constants)
        except NotConstant:
            raise self.err(e.pos, construct, "the path must be a constant string expression") from None
        if not isinstance(v, str) or not v:
            raise self.err(e.pos, construct, "the path must be a non-empty string")
        if "{" in v:
            raise self.err(e.pos, "file set", f"file set patterns ({v!r}) are not supported yet")
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
        paths = [self.path(p, "EXTRACT") for p in e.paths]
        for p, pe in zip(paths, e.paths, strict=False):
            if not p.exists():
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
        options = [
            "columns={" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c, _ in cols) + "}",
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
        files = "[" + ", ".join(lit(str(p)) for p in paths) + "]"
        select = ",\n  ".join(f"{self._convert_field(q(c), c, ty, fmt)} AS {q(c)}" for c, ty in cols)
        return f"SELECT\n  {select}\nFROM read_csv({files}, {', '.join(options)})", cols

    @staticmethod
    def _convert_field(v: str, name: str, ty: UType, fmt: TextFormat) -> str:
        """Text field -> typed value with the built-in extractors' rules (C# Parse; empty -> null if nullable)."""
        if ty.name == "string":
            return v
        cast = "TRY_CAST" if fmt.silent and ty.nullable else "CAST"
        src = f"NULLIF(trim({v}), '')" if ty.nullable else f"usql_required({v}, {lit(name)})"
        if ty.name == "char":
            if fmt.char_format == "string":
                return f"{v}" if ty.nullable else f"usql_required({v}, {lit(name)})"
            return f"chr({cast}(trim({src}) AS INTEGER))"
        if ty.name == "DateTime":
            if cast == "TRY_CAST":
                return (
                    f"coalesce(TRY_CAST(trim({src}) AS TIMESTAMP), try_strptime(trim({src}), '%m/%d/%Y %I:%M:%S %p'))"
                )
            return f"usql_parse_datetime({src})"
        if ty.name == "byte[]":
            return f"unhex({src})"
        return f"{cast}(trim({src}) AS {ty.duckdb()})"

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
                        items.append(f"{q(alias)}.{q(c)}" if alias else q(c))
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
            items.append(f"{sql} AS {q(name)}")
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
            having_scope = Scope(scope.columns, {c: (q(c), ty) for c, ty in cols})
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
            f"CAST(c{i} AS {ty.duckdb()}) AS {q(c)}" for i, (c, ty) in enumerate(zip(v.columns, final, strict=False))
        )
        raw_cols = ", ".join(f"c{i}" for i in range(len(v.columns)))
        sql = f"(SELECT {cast_cols} FROM (VALUES {', '.join(rows_sql)}) AS usql_v({raw_cols})) AS {q(v.alias)}"
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
        if ty.name != "SqlArray" or len(ex.columns) != 1:
            raise self.err(ex.pos, "EXPLODE", "EXPLODE takes a SqlArray and yields one column: AS T(col)")
        elem = ty.element or t.UNKNOWN
        join = "LEFT JOIN LATERAL" if ex.outer else "CROSS JOIN LATERAL"
        on = " ON TRUE" if ex.outer else ""
        col = q(ex.columns[0])
        return (f"{left_sql}\n{join} (SELECT unnest({sql}) AS {col}) AS {q(ex.alias)}{on}",
                Scope([*left.columns, (ex.alias, ex.columns[0], elem.with_nullable(True))]))  # fmt: skip
