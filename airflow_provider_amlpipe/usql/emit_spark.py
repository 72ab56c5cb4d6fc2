"""The Spark SQL emitter: the intermediate form -> a Spark SQL script (Spark 3.5 / 4.x, e.g. Databricks).

Same front end as the DuckDB path (:func:`~.parser.parse` -> :mod:`.nodes`); only the dialect differs.
Rowset assignments become temporary views; EXTRACT becomes a raw ``USING csv`` view with every field
read as text, plus a typed view that converts the fields with C# parsing rules; OUTPUT becomes
``INSERT OVERWRITE DIRECTORY ... SELECT <one formatted line per row>``, so the bytes of each line
follow the outputter's documented format. Spark writes a directory of part files (here one part
file, ``COALESCE(1)``), not a single file. Anything without a faithful Spark translation raises
:class:`UsqlError` "cannot be translated to Spark SQL: ..." at its position. See ``docs/usql-spark.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.consts import NotConstant, fold
from airflow_provider_amlpipe.usql.duckdb_exprs import Scope, Typed
from airflow_provider_amlpipe.usql.emit_duckdb import DuckDbEmitter, Rowset
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.options import TextFormat, text_format
from airflow_provider_amlpipe.usql.parser import parse
from airflow_provider_amlpipe.usql.spark_exprs import (
    _WS,
    NOT_SPARK,
    PatternError,
    SparkExprTranslator,
    bq,
    cs_tostring,
    slit,
    spark_type,
    strict_parse,
    to_spark_pattern,
    try_parse,
)
from airflow_provider_amlpipe.usql.types import UType

__all__ = ["SparkEmitter", "SparkStatement", "translate_to_spark"]

#: What the csv reader returns for a quoted empty field (``""``), so that it stays an empty string: Spark
#: would otherwise read it as null, like an unquoted empty field (U-SQL: ``""`` is "", nothing is null).
#: U+FDD0 is a Unicode noncharacter, not expected in text data.
_EMPTY = "\\uFDD0"


@dataclass(frozen=True)
class SparkStatement:
    """One Spark SQL statement and the position of the U-SQL statement it came from."""

    sql: str
    line: int
    column: int


def _char_of_code(code: str) -> str:
    """A UTF-16 code (0..65535) -> the one-character string, as C# ``(char)n``; other codes fail the query."""
    return (f"CASE WHEN {code} IS NULL THEN NULL WHEN {code} BETWEEN 0 AND 65535 THEN "
            f"decode(unhex(lpad(hex({code}), 4, '0')), 'UTF-16BE') ELSE raise_error("
            f"concat('not a char code: ', CAST({code} AS STRING))) END")  # fmt: skip


class SparkEmitter(DuckDbEmitter):
    """Translates a parsed script to Spark SQL statements; one instance per script.

    Inherits the dialect-neutral bookkeeping of the DuckDB emitter (variables, rowsets, view names,
    DECLARE checks, ORDER BY/FETCH); every method that writes SQL is overridden.
    """

    def __init__(self, source: str, params: Mapping[str, str]) -> None:
        super().__init__(source, params, Path("."))
        self.x = SparkExprTranslator(source, self._variable)
        self.spark: list[SparkStatement] = []
        self.raw_counter = 0

    def untranslatable(self, pos: n.Pos, construct: str, why: str) -> UsqlError:
        return UsqlError(self.source, pos.line, pos.column, construct, NOT_SPARK + why)

    # ------------------------------------------------------------ dialect hooks
    @staticmethod
    def _ident(name: str) -> str:
        return bq(name)

    @staticmethod
    def _type_sql(ty: UType) -> str:
        return spark_type(ty)

    @staticmethod
    def _values_table(rows: str) -> str:
        return f"VALUES {rows}"

    def _unknown(self, node: object, what: str) -> UsqlError:
        pos = getattr(node, "pos", None)
        if not isinstance(pos, n.Pos):
            pos = n.Pos(1, 1)
        name = type(node).__name__
        return self.untranslatable(pos, name, f"{what} {name} is not supported by the Spark emitter")

    def add(self, sql: str, pos: n.Pos) -> None:
        self.spark.append(SparkStatement(sql, pos.line, pos.column))

    # ------------------------------------------------------------ statements
    def translate(self, script: n.Script) -> list[SparkStatement]:
        externals = {s.name for s in script.statements if isinstance(s, n.Declare) and s.external}
        unknown = sorted(set(self.params) - externals)
        if unknown:
            raise UsqlError(self.source, 1, 1, "DECLARE EXTERNAL",
                            f"parameter(s) {', '.join(unknown)} match no DECLARE EXTERNAL in the script")  # fmt: skip
        declared_later = {s.name for s in script.statements if isinstance(s, n.Declare) and not s.external}
        for st in script.statements:
            if isinstance(st, n.Declare):
                if st.external and st.name in declared_later:
                    continue
                self.declare(st)
            elif isinstance(st, n.Assign):
                self.assign(st)
            elif isinstance(st, n.Output):
                self.output(st)
            elif isinstance(st, n.Ignored):
                db = getattr(st, "database", "master")
                if db != "master":
                    raise self.untranslatable(st.pos, "USE DATABASE", "U-SQL databases and tables are not translated")
                self.add(f"-- ignored: {' '.join(st.text.split())}", st.pos)
            else:
                raise self._unknown(st, "statement")
        return self.spark

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
        with contextlib.suppress(NotConstant):
            self.constants[d.name] = fold(d.value, self.constants)
        if vt.name == "null":
            sql = f"CAST(NULL AS {spark_type(typ)})"
        elif vt.name != typ.name:
            sql = f"CAST({sql} AS {spark_type(typ)})"
        self.variables[d.name] = (f"({sql})", typ)

    def _param_sql(self, raw: str, typ: UType, d: n.Declare) -> Typed:
        if typ.name == "string":
            return slit(raw), typ
        if typ.name == "bool" and raw.strip().lower() not in ("true", "false"):
            raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a bool")
        if typ.is_numeric:
            try:
                float(raw)
            except ValueError:
                raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a {typ}") from None
        return f"({strict_parse(slit(raw), typ.name, f'@{d.name}')})", typ

    def assign(self, a: n.Assign) -> None:
        if a.name in self.variables:
            raise self.err(a.pos, "variable", f"@{a.name} is a scalar variable and cannot name a rowset")
        sql, cols = self.query(a.query)
        view = self._view_name(a.name)
        self.rowsets[a.name] = Rowset(view, tuple(cols))
        self.add(f"CREATE OR REPLACE TEMPORARY VIEW {bq(view)} AS\n{sql};", a.pos)

    def spark_path(self, e: n.Expr, construct: str) -> str:
        """A constant path, kept as written (Spark resolves it against its default file system)."""
        try:
            v = fold(e, self.constants)
        except NotConstant:
            raise self.err(e.pos, construct, "the path must be a constant string expression") from None
        if not isinstance(v, str) or not v:
            raise self.err(e.pos, construct, "the path must be a non-empty string")
        if "{" in v:
            raise self.untranslatable(e.pos, "file set", f"file set patterns ({v!r}) are not supported yet")
        return v

    # ------------------------------------------------------------ OUTPUT
    def output(self, o: n.Output) -> None:
        fmt = text_format(o.outputter, self.source, self.constants)
        if fmt.encoding != "utf-8":
            raise self.untranslatable(o.outputter.pos, "encoding", "outputters write UTF-8 only")
        target = self.spark_path(o.path, "OUTPUT")
        sql, cols = self.query(o.source)
        scope = Scope([(None, c, ty) for c, ty in cols])
        parts = [self._format_value(bq(c), ty, fmt, o) for c, ty in cols]
        sep = ", " + slit(fmt.delimiter) + ", "
        line = f"concat({sep.join(parts)})" if parts else "''"
        body = f"SELECT {line} AS usql_line\nFROM (\n{sql}\n) AS usql_out"
        if o.order_by or o.offset is not None or o.fetch is not None:
            body += self._order_fetch(o.order_by, o.offset, o.fetch, scope)
        new_line = slit(fmt.row_delimiter or "\r\n")
        if fmt.output_header:
            header = fmt.delimiter.join((f'"{c}"' if fmt.quoting else c) for c, _ in cols)
            # The csv writer adds the header line; quoting is switched off (quote \u0000, separator \u0001)
            # because each value already is one formatted line. Lines the csv writer would still quote fail.
            options = ("header 'true', sep '\\u0001', quote '\\u0000', escapeQuotes 'false', "
                       "ignoreLeadingWhiteSpace 'false', ignoreTrailingWhiteSpace 'false', emptyValue '', "
                       f"nullValue '', encoding 'UTF-8', lineSep {new_line}")  # fmt: skip
            guard = (
                "CASE WHEN usql_line RLIKE '[\\\\x00\\\\x01\\\\r\\\\n]' THEN raise_error("
                "'cannot be written by the Spark csv writer with a header: a line holds a line break or "
                "\\\\u0000/\\\\u0001') ELSE usql_line END"
            )
            select = f"SELECT /*+ COALESCE(1) */ {guard} AS {bq(header)}"
            using = f"USING csv OPTIONS ({options})"
        else:
            select = "SELECT /*+ COALESCE(1) */ usql_line AS value"
            using = f"USING text OPTIONS (lineSep {new_line}, encoding 'UTF-8')"
        stmt = f"INSERT OVERWRITE DIRECTORY {slit(target)}\n{using}\n{select}\nFROM (\n{body}\n) AS usql_lines;"
        self.add(stmt, o.pos)

    def _format_value(self, col: str, ty: UType, fmt: TextFormat, o: n.Output) -> str:
        if ty.name in ("SqlArray", "SqlMap", "byte[]", "unknown"):
            raise self.err(o.pos, "OUTPUT", f"a column of type {ty} cannot be written by the built-in outputters")
        quoted = f"""concat('"', replace({col}, '"', '""'), '"')"""
        if ty.name == "string":
            v = quoted if fmt.quoting else col
        elif ty.name == "char":
            as_text = quoted if fmt.quoting else col
            v = as_text if fmt.char_format == "string" else f"CAST(ascii({col}) AS STRING)"
        elif ty.name == "DateTime":
            try:
                v = f"date_format({col}, {slit(to_spark_pattern(fmt.date_time_format))})"
            except PatternError as ex:
                raise self.err(o.outputter.pos, "dateTimeFormat", str(ex)) from None
        else:
            v = cs_tostring(col, ty)
        return f"coalesce({v}, {slit(fmt.null_escape or '')})"

    # ------------------------------------------------------------ queries
    def query(self, qn: n.Query) -> tuple[str, list[tuple[str, UType]]]:
        if isinstance(qn, n.RowsetRef):
            rs = self._rowset(qn)
            return f"SELECT * FROM {bq(rs.view)}", list(rs.columns)
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
            op = qn.op + (" ALL" if qn.quantifier == "ALL" else " DISTINCT")
            cols = [
                (ln, lt.with_nullable(lt.nullable or rt.nullable)) for (ln, lt), (_, rt) in zip(lc, rc, strict=False)
            ]
            return f"SELECT * FROM (\n{ls}\n) AS usql_l\n{op}\nSELECT * FROM (\n{rs_}\n) AS usql_r", cols
        if isinstance(qn, n.Ordered):
            inner, cols = self.query(qn.query)
            scope = Scope([(None, c, ty) for c, ty in cols])
            sql = f"SELECT * FROM (\n{inner}\n) AS usql_ordered" + self._order_fetch(
                qn.order_by, qn.offset, qn.fetch, scope
            )
            return sql, cols
        raise self._unknown(qn, "query")

    def extract(self, e: n.Extract) -> tuple[str, list[tuple[str, UType]]]:
        fmt = text_format(e.extractor, self.source, self.constants)
        paths = [self.spark_path(p, "EXTRACT") for p in e.paths]
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
        if fmt.skip_first_n_rows > 1:
            raise self.untranslatable(e.extractor.pos, "skipFirstNRows",
                                      "Spark's csv reader can skip one header line per file, not more")  # fmt: skip
        if fmt.encoding != "utf-8":
            raise self.untranslatable(e.extractor.pos, "encoding", "only UTF-8/ASCII input is translated")
        options = [
            "header " + ("'true'" if fmt.skip_first_n_rows == 1 else "'false'"),
            f"sep {slit(fmt.delimiter)}",
            "quote '\"', escape '\"'" if fmt.quoting else "quote '', escape ''",
            f"nullValue {slit(fmt.null_escape or '')}",
            f"emptyValue '{_EMPTY}'",
            "mode " + ("'DROPMALFORMED'" if fmt.silent else "'FAILFAST'"),
            "multiLine 'true'",
            "ignoreLeadingWhiteSpace 'false'",
            "ignoreTrailingWhiteSpace 'false'",
            "encoding 'UTF-8'",
        ]
        if fmt.row_delimiter in ("\n", "\r"):
            options.append(f"lineSep {slit(fmt.row_delimiter)}")
        schema = ", ".join(f"{bq(c)} STRING" for c, _ in cols)
        raws = []
        for path in paths:
            self.raw_counter += 1
            raw = f"usql_raw_{self.raw_counter}"
            raws.append(raw)
            opts = ", ".join([f"path {slit(path)}", *options])
            self.add(f"CREATE OR REPLACE TEMPORARY VIEW {bq(raw)} ({schema})\nUSING csv OPTIONS ({opts});", e.pos)
        fields = ", ".join(f"CASE WHEN {bq(c)} = '{_EMPTY}' THEN '' ELSE {bq(c)} END AS {bq(c)}" for c, _ in cols)
        src = "\nUNION ALL\n".join(f"SELECT {fields} FROM {bq(r)}" for r in raws)
        select = ",\n  ".join(f"{self._convert_field(bq(c), c, ty, fmt)} AS {bq(c)}" for c, ty in cols)
        return f"SELECT\n  {select}\nFROM (\n{src}\n) AS usql_fields", cols

    @staticmethod
    def _convert_field(v: str, name: str, ty: UType, fmt: TextFormat) -> str:
        """Text field -> typed value with the built-in extractors' rules (C# Parse; empty -> null if nullable)."""
        if ty.name == "string":
            return v
        what = f"conversion error in column {name}"
        empty = f"({v} IS NULL OR trim(BOTH {_WS} FROM {v}) = '')"
        required = slit(f"conversion error: null or empty value for the non-nullable column {name}")
        if ty.name == "char" and fmt.char_format == "string":
            return v if ty.nullable else f"CASE WHEN {v} IS NULL THEN raise_error({required}) ELSE {v} END"
        target = "int" if ty.name == "char" else ty.name
        if ty.name == "byte[]":
            conv = f"coalesce(try_to_binary(trim({v}), 'hex'), raise_error(concat({slit(what + ': ')}, {v})))"
        elif fmt.silent and ty.nullable:
            conv = try_parse(v, target)
        else:
            conv = strict_parse(v, target, what)
        if ty.name == "char":
            conv = _char_of_code(conv)
        if ty.nullable:
            return f"CASE WHEN {empty} THEN NULL ELSE {conv} END"
        return f"CASE WHEN {empty} THEN raise_error({required}) ELSE {conv} END"

    # ------------------------------------------------------------ SELECT
    def source_sql(self, src: n.Source) -> tuple[str, Scope]:
        sql, scope, _ = self._source(src)
        return sql, scope

    def _source(self, src: n.Source) -> tuple[str, Scope, bool]:
        """FROM-clause SQL, its scope, and whether it ends in LATERAL VIEW (nothing may be joined after it)."""
        if isinstance(src, n.RowsetRef):
            rs = self._rowset(src)
            alias = src.alias or src.name
            return f"{bq(rs.view)} AS {bq(alias)}", Scope([(alias, c, ty) for c, ty in rs.columns]), False
        if isinstance(src, n.SubquerySource):
            sql, cols = self.query(src.query)
            return f"(\n{sql}\n) AS {bq(src.alias)}", Scope([(src.alias, c, ty) for c, ty in cols]), False
        if isinstance(src, n.ValuesSource):
            vsql, vscope = self.values(src)
            return vsql, vscope, False
        if isinstance(src, n.Join):
            return self.spark_join(src)
        if isinstance(src, n.Explode):
            raise self.err(src.pos, "FROM", "EXPLODE needs CROSS APPLY")
        raise self._unknown(src, "FROM source")

    def spark_join(self, j: n.Join) -> tuple[str, Scope, bool]:
        left_sql, left, left_lateral = self._source(j.left)
        if isinstance(j.right, n.Explode):
            return self.explode(left_sql, left, j.right)
        if left_lateral:
            raise self.untranslatable(j.pos, "JOIN", "a JOIN after CROSS/OUTER APPLY EXPLODE (Spark's LATERAL VIEW "
                                      "must follow all joins); move the APPLY into a rowset of its own")  # fmt: skip
        right_sql, right, _ = self._source(j.right)
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
            keyword = "LEFT ANTI JOIN" if "ANTI" in kind else "LEFT SEMI JOIN"
            if kind.startswith("RIGHT"):
                return f"{right_sql}\n{keyword} {left_sql}{on}", right, False
            return f"{left_sql}\n{keyword} {right_sql}{on}", left, False
        keywords = {"INNER": "INNER JOIN", "LEFT": "LEFT OUTER JOIN", "RIGHT": "RIGHT OUTER JOIN",
                    "FULL": "FULL OUTER JOIN", "CROSS": "CROSS JOIN"}  # fmt: skip
        if kind not in keywords:
            raise self.untranslatable(j.pos, "JOIN", f"join kind {kind!r}")
        lcols = [(a, c, ty.with_nullable(True) if kind in ("RIGHT", "FULL") else ty) for a, c, ty in left.columns]
        rcols = [(a, c, ty.with_nullable(True) if kind in ("LEFT", "FULL") else ty) for a, c, ty in right.columns]
        return f"{left_sql}\n{keywords[kind]} {right_sql}{on}", Scope(lcols + rcols), False

    def explode(self, left_sql: str, left: Scope, ex: n.Explode) -> tuple[str, Scope, bool]:  # type: ignore[override]
        sql, ty = self.x.tr(ex.expr, left)
        outer = "OUTER " if ex.outer else ""
        if ty.name == "SqlMap":
            if len(ex.columns) != 2:
                raise self.err(ex.pos, "EXPLODE", "EXPLODE of a SqlMap yields two columns: AS T(key, value)")
            k, v = ex.columns
            kt = (ty.key or t.STRING).with_nullable(ex.outer)
            vt = (ty.element or t.UNKNOWN).with_nullable(True)
            return (f"{left_sql}\nLATERAL VIEW {outer}explode({sql}) {bq(ex.alias)} AS {bq(k)}, {bq(v)}",
                    Scope([*left.columns, (ex.alias, k, kt), (ex.alias, v, vt)]), True)  # fmt: skip
        if ty.name != "SqlArray" or len(ex.columns) != 1:
            raise self.err(ex.pos, "EXPLODE", "EXPLODE takes a SqlArray (AS T(col)) or a SqlMap (AS T(key, value))")
        elem = ty.element or t.UNKNOWN
        return (f"{left_sql}\nLATERAL VIEW {outer}explode({sql}) {bq(ex.alias)} AS {bq(ex.columns[0])}",
                Scope([*left.columns, (ex.alias, ex.columns[0], elem.with_nullable(True))]), True)  # fmt: skip


def translate_to_spark(text: str, *, source_name: str = "script.usql", params: dict[str, str] | None = None) -> str:
    """Translate a U-SQL script to a Spark SQL script (Spark 3.5 / 4.x).

    The same front end as :func:`~.compiler.compile_script` (``@@name@@`` placeholders must already be
    substituted); ``params`` override ``DECLARE EXTERNAL`` defaults. Raises :class:`UsqlError` for any
    problem in the script and for constructs with no faithful Spark translation.
    """
    script = parse(text, source_name)
    statements = SparkEmitter(source_name, params or {}).translate(script)
    header = f"-- Spark SQL (3.5+/4.x) translated from {source_name} by airflow_provider_amlpipe.usql"
    body = "\n\n".join(f"-- {source_name}:{s.line}\n{s.sql}" for s in statements)
    return f"{header}\n\n{body}\n"
