"""The DuckDB emitter: the intermediate form -> DuckDB SQL statements (views, COPY ... TO).

Rowset assignments become temporary views (U-SQL rowset variables are named, inlined query
expressions, like views); EXTRACT becomes ``read_csv`` with every field read as text and then
converted with C# parsing rules; OUTPUT becomes ``COPY (one formatted line per row) TO path``, so
DuckDB streams the files itself and the output bytes follow the outputter's documented format.

The dialect-neutral part is :class:`~.emitter.Emitter`; the catalog statements, EXTRACT, OUTPUT and the routines
(views, functions, procedures, script-bound objects) are mixins of :class:`DuckDbEmitter` (``catalog``,
``extract``, ``output``, ``routines``); the SQL prelude is ``prelude``, the emitted data types
``emit_model``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import ClassVar

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.catalog import DBO, MASTER, Catalog
from airflow_provider_amlpipe.usql.dialects.duckdb.catalog import CatalogStatements
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs import (
    ExprTranslator,
    Scope,
    lit,
    parse_string_as,
    q,
)
from airflow_provider_amlpipe.usql.dialects.duckdb.extract import ExtractInputs
from airflow_provider_amlpipe.usql.dialects.duckdb.output import OutputStatements
from airflow_provider_amlpipe.usql.dialects.duckdb.routines import Routines
from airflow_provider_amlpipe.usql.emit_model import EmittedStatement
from airflow_provider_amlpipe.usql.emitter import DATABASE_STATEMENTS, SCRIPT_STATEMENTS, Rowset
from airflow_provider_amlpipe.usql.jobinfo import JobInfo
from airflow_provider_amlpipe.usql.parser import INFERRED_TYPE
from airflow_provider_amlpipe.usql.types import UType

#: C#'s int.Parse format (as STRICT_INTEGER), for parameter values checked at compile time.
_CS_INTEGER = re.compile(r"[\t-\r ]*[+-]?[0-9]+[\t-\r ]*")


class DuckDbEmitter(CatalogStatements, ExtractInputs, OutputStatements, Routines):
    """Compiles a parsed script to DuckDB statements; one instance per script."""

    translator = ExprTranslator
    queries: ClassVar[dict[type, str]] = {
        n.RowsetRef: "rowset_query", n.TableRef: "table_query", n.TvfCall: "_call_function", n.Extract: "extract",
        n.ExtractFileProperties: "extract_file_properties", n.Select: "select", n.SetOp: "set_op",
        n.Ordered: "ordered", n.Sample: "sample", n.ByNameSetOp: "set_by_name",
    }  # fmt: skip

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
        super().__init__(source, params, base_dir, path_map=path_map, job_info=job_info)
        self.catalog = Catalog(catalog_dir or base_dir / ".usql-catalog")
        self.current_db = MASTER
        self.current_schema = DBO
        self.call_depth = 0  # nested view / function / procedure inlining (U-SQL allows 50 levels)
        self.attached: set[str] = set()
        self.out: list[EmittedStatement] = []
        self.copy_root: Path | None = None  # where the UTF-8 copies of inputs go (see InputCopy), made when needed

    # ------------------------------------------------------------ render hooks (overridden for Spark)
    @staticmethod
    def _values_table(rows: str, columns: str) -> str:
        """A ``VALUES`` table of the parenthesised, comma-separated ``rows``."""
        return f"(VALUES {rows}) AS usql_v({columns})"

    def emit(self, script: n.Script) -> list[EmittedStatement]:
        """The DuckDB statements of the script."""
        self.compile_statements(script)
        return self.out

    def ignored(self, st: n.Ignored) -> None:
        self.out.append(EmittedStatement("comment", f"-- ignored: {st.text}", st.pos.line, st.pos.column))

    def _note(self, pos: n.Pos, text: str) -> None:
        self.out.append(EmittedStatement("comment", f"-- note: {text}", pos.line, pos.column))

    def _new_rowset(self, name: str, sql: str, cols: list[tuple[str, UType]], pos: n.Pos) -> None:
        self.rowsets[name] = self._emit_view(name, sql, cols, pos)

    def _emit_view(self, name: str, sql: str, cols: list[tuple[str, UType]], pos: n.Pos) -> Rowset:
        view = self._view_name(name)
        self.out.append(EmittedStatement("view", f"CREATE OR REPLACE TEMP VIEW {q(view)} AS\n{sql};", pos.line,
                                         pos.column))  # fmt: skip
        return Rowset(view, tuple(cols))

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

    def _param_value(self, raw: str, typ: UType, d: n.Declare) -> str:
        if typ.is_integral:
            if not _CS_INTEGER.fullmatch(raw):
                raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a {typ}")
            return f"CAST({lit(raw)} AS {typ.duckdb()})"  # checked here: a constant, no runtime check
        return f"({parse_string_as(lit(raw), typ.name)})"

    def assign(self, a: n.Assign) -> None:
        self._check_rowset_name(a.name, a.pos)
        if isinstance(a.query, n.RowsetRef) and a.query.name in self.variables:  # @x = @scalar;
            self._declare_inferred(n.Declare(a.name, n.TypeRef(INFERRED_TYPE, False, a.pos),
                                             n.Variable(a.query.name, a.query.pos), False, False, a.pos))  # fmt: skip
            return
        sql, cols = self.query(a.query)
        self._new_rowset(a.name, sql, cols, a.pos)

    def table_query(self, qn: n.TableRef) -> tuple[str, list[tuple[str, UType]]]:
        rel, cols = self._relation(qn.table, qn.pos)
        return f"SELECT * FROM {rel} AS usql_rel", cols

    def extract_file_properties(self, qn: n.ExtractFileProperties) -> tuple[str, list[tuple[str, UType]]]:
        return self.extract_with_properties(qn.extract, dict(qn.properties))

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

    def _check_join_aliases(self, j: n.Join, left: Scope, right: Scope) -> None:
        self._check_case([(a, j.pos) for a in [*left.aliases(), *right.aliases()]], "JOIN", "rowset aliases")

    def join(self, j: n.Join) -> tuple[str, Scope]:
        left_sql, left = self.source_sql(j.left)
        if isinstance(j.right, n.Explode):
            return self.explode(left_sql, left, j.right)
        right_sql, right = self.source_sql(j.right)
        on = self.join_condition(j, left, right)
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
        sql, ty, scope = self.exploded(left, ex)
        join = "LEFT JOIN LATERAL" if ex.outer else "CROSS JOIN LATERAL"
        on = " ON TRUE" if ex.outer else ""
        if ty.name == "SqlMap":
            k, v = (q(c) for c in ex.columns)
            lateral = f"(SELECT unnest(map_keys({sql})) AS {k}, unnest(map_values({sql})) AS {v})"
        else:
            lateral = f"(SELECT unnest({sql}) AS {q(ex.columns[0])})"
        return f"{left_sql}\n{join} {lateral} AS {q(ex.alias)}{on}", scope


#: Statement -> the DuckDbEmitter method compiling it.
DuckDbEmitter.statements = {
    **SCRIPT_STATEMENTS,
    **DATABASE_STATEMENTS,
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
