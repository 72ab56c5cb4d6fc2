"""C# expressions -> Spark SQL (3.5 / 4.x), with C# types and null semantics where Spark can express them.

A subclass of the DuckDB :class:`~.exprs.ExprTranslator`: name resolution, typing and the
dialect-neutral operators (``CASE``, ``IN``, ``LIKE``, ``BETWEEN``, ``IS NULL``, windows) are shared;
every method that writes dialect-specific SQL is overridden here. Whatever has no faithful Spark
form raises :class:`UsqlError` ("cannot be translated to Spark SQL: ...") instead of emitting SQL
that would compute something else; so does a C# member the DuckDB translator handles and this one does not
(:meth:`SparkExprTranslator._not_in_spark`), rather than passing DuckDB SQL on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.csformat import (
    FormatError,
)
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs import (
    _PARSE_TARGET,
    ExprTranslator,
    Scope,
    parse_composite_format,
)
from airflow_provider_amlpipe.usql.dialects.spark.values import (
    _WS,
    SPARK_TYPES,
    bq,
    cs_tostring,
    slit,
    spark_type,
    strict_parse,
    to_spark_pattern,
)
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.types import UType

Typed = tuple[str, UType]

NOT_SPARK = "cannot be translated to Spark SQL: "

SPARK_AGGREGATES = {
    "COUNT": "count", "SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max", "ANY_VALUE": "any_value",
    "ARRAY_AGG": "collect_list", "STDEV": "stddev_samp", "STDEVP": "stddev_pop", "VAR": "var_samp",
    "VARP": "var_pop", "FIRST": "first", "LAST": "last",
}  # fmt: skip

#: Static classes whose members the DuckDB translator writes as plain literals (enum values, flags).
_NEUTRAL_STATIC = ("StringSplitOptions", "DateTimeKind", "DayOfWeek")
_DOUBLE_CONSTANTS = ("NaN", "PositiveInfinity", "NegativeInfinity")
#: Value types of the DuckDB translator with no Spark translation yet: an expression of one of them is refused.
_NOT_TRANSLATED_TYPES = ("TimeSpan", "KeyValuePair")
#: Types whose values a double holds exactly (Spark's percentile_disc converts to double).
_EXACT_IN_DOUBLE = ("sbyte", "byte", "short", "ushort", "int", "uint", "float", "double")


def _converted(value: Typed, to: UType | None) -> str:
    """``value`` as SQL of type ``to`` (unchanged if it has that type already)."""
    sql, typ = value
    if to is None or typ.name == to.name:
        return sql
    return f"CAST({sql} AS {spark_type(to)})"


#: String members whose DuckDB translation is valid Spark SQL with the same meaning.
_SHARED_STRING_METHODS = frozenset(
    {"ToUpper", "ToUpperInvariant", "ToLower", "ToLowerInvariant", "Substring", "IndexOf", "LastIndexOf", "Remove",
     "Insert"}
)  # fmt: skip


class SparkExprTranslator(ExprTranslator):
    """Translates C# expressions within one scope to Spark SQL."""

    def __init__(self, source: str, variable: Callable[[n.Variable], Typed]) -> None:
        super().__init__(source, variable)

    def untranslatable(self, pos: n.Pos, construct: str, why: str) -> UsqlError:
        return UsqlError(self.source, pos.line, pos.column, construct, NOT_SPARK + why)

    def _not_in_spark(self, duckdb: Callable[[], object], pos: n.Pos, construct: str, what: str) -> UsqlError:
        """The error for a member this class does not translate. Running the DuckDB translator's branch (``duckdb``)
        raises its error when it does not support the member either; if it does, its SQL is DuckDB's, so the
        member is refused here rather than passed on."""
        duckdb()
        return self.untranslatable(pos, construct, f"{what} is translated for DuckDB only")

    # ------------------------------------------------------------ features refused as a whole
    def _linq(self, recv: Typed, e: n.Call, scope: Scope) -> Typed:
        name = e.func.name if isinstance(e.func, n.Member) else "LINQ"
        raise self.untranslatable(e.pos, name, f"LINQ methods ({name}) on SqlArray/SqlMap values")

    @staticmethod
    def _lambda_sql(params: list[str], body: str) -> str:
        """A Spark lambda function (``transform``, ``filter``, ...); Spark reads ``(x) -> ...`` as an expression."""
        return f"{params[0]} -> {body}" if len(params) == 1 else f"({', '.join(params)}) -> {body}"

    # ------------------------------------------------------------ dialect hooks
    MAKE_TIMESTAMP = "make_timestamp_ntz"

    @staticmethod
    def _ident(name: str) -> str:
        return bq(name)

    @staticmethod
    def _strlit(s: str) -> str:
        return slit(s)

    @staticmethod
    def _not_distinct(a: str, b: str, neg: bool) -> str:
        return f"(NOT ({a} <=> {b}))" if neg else f"({a} <=> {b})"

    @staticmethod
    def _element_at(s: str, key: str) -> str:
        return f"try_element_at({s}, {key})"

    @staticmethod
    def _concat_arg(s: str, typ: UType) -> str:
        return f"coalesce({cs_tostring(s, typ)}, '')"

    @staticmethod
    def _divide(a: str, b: str, typ: UType) -> str:
        if typ.is_integral:
            return f"CAST(({a} DIV {b}) AS {spark_type(typ)})"
        if typ.name in ("double", "float"):
            return f"(CAST({a} AS DOUBLE) / {b})"
        return f"({a} / {b})"

    @staticmethod
    def _bitwise(op: str, a: str, b: str) -> str:
        return f"({a} {op} {b})"

    @staticmethod
    def _trim_ws(s: str) -> str:
        return f"trim(BOTH {_WS} FROM {s})"

    @staticmethod
    def _array_join(arr: str, sep: str) -> str:
        return f"array_join({arr}, {sep}, '')"

    @staticmethod
    def _parse(s: str, target: str, what: str) -> str:
        return strict_parse(s, target, what)

    def tr(self, e: n.Expr, scope: Scope) -> Typed:
        method = getattr(self, "_" + type(e).__name__.lower(), None)
        if method is None:
            pos = getattr(e, "pos", n.Pos(1, 1))
            raise self.untranslatable(pos, type(e).__name__, f"expression {type(e).__name__} is not supported")
        result: Typed = method(e, scope)
        if result[1].name in _NOT_TRANSLATED_TYPES:
            pos = getattr(e, "pos", n.Pos(1, 1))
            raise self.untranslatable(pos, result[1].name, f"{result[1].name} values")
        return result

    # ------------------------------------------------------------ members
    def _static_member(self, cls: str, e: n.Member) -> Typed:
        name = e.name
        if cls == "Math" and name in ("PI", "E"):
            return ("pi()" if name == "PI" else "e()"), t.DOUBLE
        if cls == "DateTime":
            if name == "Now":
                return "localtimestamp()", t.DATETIME
            if name == "UtcNow":
                return "CAST(to_utc_timestamp(current_timestamp(), current_timezone()) AS TIMESTAMP_NTZ)", t.DATETIME
            if name == "Today":
                return "CAST(current_date() AS TIMESTAMP_NTZ)", t.DATETIME
            if name == "MinValue":
                return "TIMESTAMP_NTZ '0001-01-01 00:00:00'", t.DATETIME
            if name == "MaxValue":
                return "TIMESTAMP_NTZ '9999-12-31 23:59:59.999999'", t.DATETIME
        if cls in ("string", "String") and name == "Empty":
            return "''", t.STRING
        target = _PARSE_TARGET.get(cls)
        if target and name in ("MaxValue", "MinValue") and target in t.INTEGRAL:
            bits = {"int": 31, "long": 63, "short": 15}.get(target)
            if bits:
                v = 2**bits - 1 if name == "MaxValue" else -(2**bits)
                return f"CAST({v} AS {SPARK_TYPES[target]})", UType(target, False)
        if cls in _NEUTRAL_STATIC or (cls in ("double", "Double") and name in _DOUBLE_CONSTANTS):
            return super()._static_member(cls, e)  # a literal in SQL both dialects read the same
        raise self._not_in_spark(partial(super()._static_member, cls, e), e.pos, "member", f"{cls}.{name}")

    def _property(self, sql: str, typ: UType, e: n.Member) -> Typed:
        name = e.name
        if typ.name == "string" and name == "Length":
            return f"char_length({sql})", UType("int", False)
        if typ.name == "DateTime":
            parts = {"Year": "year", "Month": "month", "Day": "day", "Hour": "hour", "Minute": "minute",
                     "DayOfYear": "dayofyear"}  # fmt: skip
            if name in parts:
                return f"{parts[name]}({sql})", UType("int", typ.nullable)
            if name == "Second":
                return f"second({sql})", UType("int", typ.nullable)
            if name == "Millisecond":
                return f"CAST(date_format({sql}, 'SSS') AS INT)", UType("int", typ.nullable)
            if name == "Date":
                return f"CAST(CAST({sql} AS DATE) AS TIMESTAMP_NTZ)", typ
            if name == "DayOfWeek":  # Spark: 1 = Sunday; .NET: Sunday = 0
                return f"CAST(dayofweek({sql}) - 1 AS INT)", UType("DayOfWeek", typ.nullable)
            if name == "Ticks":
                raise self.untranslatable(e.pos, "DateTime.Ticks", "Ticks has no Spark equivalent")
        if typ.nullable and name == "HasValue":
            return f"({sql} IS NOT NULL)", t.BOOL
        if typ.nullable and name == "Value":
            return sql, typ.with_nullable(False)
        if typ.name == "SqlArray" and (name == "Count" or (name == "Length" and typ.array)):
            return f"size({sql})", t.INT
        if typ.name == "SqlMap":
            if name == "Count":
                return f"size({sql})", t.INT
            if name == "Keys":
                return f"map_keys({sql})", UType("SqlArray", True, typ.key or t.STRING)
            if name == "Values":
                return f"map_values({sql})", UType("SqlArray", True, typ.element or t.UNKNOWN)
        if typ.name == "unknown":
            return f"{sql}.{bq(name)}", t.UNKNOWN
        raise self._not_in_spark(partial(super()._property, sql, typ, e), e.pos, "member", f"{typ}.{name}")

    # ------------------------------------------------------------ calls
    def _sql_function(self, name: str, e: n.Call, scope: Scope) -> Typed:
        upper = name.upper() if name.isupper() else name
        if upper in ("PERCENTILE_CONT", "PERCENTILE_DISC"):
            return self._percentile_spark(upper, e, scope)
        if upper == "MAP_AGG" and e.over is not None:
            # map_from_entries(...) around the aggregate cannot take the OVER clause
            raise self.untranslatable(e.pos, "MAP_AGG", "MAP_AGG with OVER")
        return super()._sql_function(name, e, scope)

    def _percentile_spark(self, name: str, e: n.Call, scope: Scope) -> Typed:
        """``PERCENTILE_CONT/DISC(p) WITHIN GROUP (ORDER BY x [DESC]) OVER (...)``: Spark has both, with DESC."""
        _, typ = super()._sql_function(name, e, scope)  # the DuckDB translator's checks and result type
        (item,) = e.within_group
        x, xt = self.tr(item.expr, scope)
        p = float(e.args[0].value)  # type: ignore[union-attr, arg-type]  # a checked literal
        order = " DESC" if item.descending else ""
        if name == "PERCENTILE_CONT":
            sql = f"percentile_cont({p!r}) WITHIN GROUP (ORDER BY CAST({x} AS DOUBLE){order})"
            return self._over(sql, e, scope), typ
        if xt.name not in _EXACT_IN_DOUBLE:
            raise self.untranslatable(e.pos, name, f"of {xt} values: Spark's percentile_disc computes in double")
        sql = f"percentile_disc({p!r}) WITHIN GROUP (ORDER BY {x}{order})"
        return f"CAST({self._over(sql, e, scope)} AS {spark_type(typ)})", typ

    def _aggregate(self, name: str, e: n.Call, scope: Scope) -> Typed:
        saved = self.allow_aggregates
        self.allow_aggregates = False
        try:
            sql, typ, outer = self._aggregate_call(name, e, scope)
        finally:
            self.allow_aggregates = saved
        if e.over is not None:
            sql = self._over(sql, e, scope)  # on the aggregate itself: CAST(sum(x) OVER (...) AS BIGINT)
        return outer.format(sql), typ

    def _aggregate_call(self, name: str, e: n.Call, scope: Scope) -> tuple[str, UType, str]:
        """The aggregate (without OVER), its type, and the expression around it (``{}`` stands for it)."""
        if e.star:
            if name != "COUNT":
                raise self.err(e.pos, name, f"{name}(*) is not allowed; only COUNT(*)")
            return "count(*)", t.LONG, "{}"
        args = self._args(e, scope, (2,) if name == "MAP_AGG" else (1,), name)
        if name in ("ARRAY_AGG", "MAP_AGG"):
            return self._collection_aggregate(name, e, args)
        dist = "DISTINCT " if e.distinct else ""
        (x, at), *_ = args
        sql = f"{SPARK_AGGREGATES[name]}({dist}{x})"
        if name == "COUNT":
            return sql, t.LONG, "{}"
        if name == "SUM":
            if at.is_integral:
                return sql, UType("long", True), "CAST({} AS BIGINT)"
            if at.name == "decimal":
                return sql, UType("decimal", True), "CAST({} AS DECIMAL(38,10))"
            return sql, UType(at.name, True), "{}"
        if name == "AVG" and at.is_integral:
            return sql, UType("long", True), "CAST({} AS BIGINT)"  # a cast of a double drops the fraction in Spark
        if name in ("AVG", "STDEV", "STDEVP", "VAR", "VARP"):
            if at.name == "decimal":
                return sql, UType("decimal", True), ("CAST({} AS DECIMAL(38,10))" if name == "AVG" else "{}")
            return sql, UType("double", True), "{}"
        return sql, at.with_nullable(True), "{}"

    def _collection_aggregate(self, name: str, e: n.Call, args: list[Typed]) -> tuple[str, UType, str]:
        """``ARRAY_AGG[<T>](x)`` -> SqlArray, ``MAP_AGG[<K,V>](k, v)`` -> SqlMap; written types convert the values."""
        if getattr(e, "type_args", ()):
            _, typ = self._typed_collection_aggregate(name, e, args)  # the DuckDB translator's checks and type
        elif name == "ARRAY_AGG":
            typ = UType("SqlArray", True, args[0][1])
        else:
            typ = UType("SqlMap", True, args[1][1], args[0][1].with_nullable(False))
        if name == "ARRAY_AGG":
            # collect_list skips nulls; wrapped in a struct (never null) they stay, as in U-SQL
            dist = "DISTINCT " if e.distinct else ""
            sql = f"collect_list({dist}named_struct('v', {_converted(args[0], typ.element)}))"
            return sql, typ, "transform({}, usql_e -> usql_e.v)"
        if e.distinct:
            raise self.err(e.pos, name, "MAP_AGG(DISTINCT ...) is not supported")
        k, v = _converted(args[0], typ.key), _converted(args[1], typ.element)
        # a repeated key fails the query (spark.sql.mapKeyDedupPolicy=EXCEPTION), as in U-SQL
        return f"collect_list(struct({k}, {v}))", typ, "map_from_entries({})"

    def _math(self, name: str, e: n.Call, scope: Scope) -> Typed:
        simple = {"Abs": "abs", "Sqrt": "sqrt", "Exp": "exp", "Log10": "log10", "Sin": "sin", "Cos": "cos",
                  "Tan": "tan"}  # fmt: skip
        if name in simple:
            ((s, st),) = self._args(e, scope, (1,), f"Math.{name}")
            return f"{simple[name]}({s})", (st if name == "Abs" else t.DOUBLE)
        if name in ("Floor", "Ceiling", "Truncate"):
            ((s, st),) = self._args(e, scope, (1,), f"Math.{name}")
            if name == "Truncate":
                sql = f"CASE WHEN {s} >= 0 THEN floor({s}) ELSE ceil({s}) END"
            else:
                sql = f"{'floor' if name == 'Floor' else 'ceil'}({s})"
            return f"CAST({sql} AS {spark_type(st)})", st
        if name == "Sign":
            ((s, _),) = self._args(e, scope, (1,), "Math.Sign")
            return f"CAST(signum({s}) AS INT)", t.INT
        if name == "Round":
            args = self._args(e, scope, (1, 2), "Math.Round")
            if len(args) == 2 and not (isinstance(e.args[1], n.Literal) and isinstance(e.args[1].value, int)):
                raise self.untranslatable(e.pos, "Math.Round", "the number of digits must be a literal int")
            digits = args[1][0] if len(args) == 2 else "0"
            return f"bround({args[0][0]}, {digits})", args[0][1]
        if name in ("Max", "Min"):
            (a, at), (b, bt) = self._args(e, scope, (2,), f"Math.{name}")
            return f"{'greatest' if name == 'Max' else 'least'}({a}, {b})", t.promote(at, bt)
        if name == "Pow":
            (a, _), (b, _) = self._args(e, scope, (2,), "Math.Pow")
            return f"pow(CAST({a} AS DOUBLE), {b})", t.DOUBLE
        if name == "Log":
            args = self._args(e, scope, (1, 2), "Math.Log")
            if len(args) == 1:
                return f"ln({args[0][0]})", t.DOUBLE
            return f"(ln({args[0][0]}) / ln({args[1][0]}))", t.DOUBLE
        if name == "BigMul":
            return self._big_mul(e, scope), t.LONG  # CASTs and *: the same in Spark
        raise self._not_in_spark(partial(super()._math, name, e, scope), e.pos, f"Math.{name}", f"Math.{name}(...)")

    def _convert(self, s: str, st: UType, target: str, e: n.Call) -> Typed:
        out = UType(target, False)
        if target == "string":
            return f"coalesce({cs_tostring(s, st)}, '')", t.STRING
        if st.name == "string":
            return f"coalesce({strict_parse(s, target, 'Convert')}, {self._zero(target)})", out
        if target in t.INTEGRAL and st.name in ("double", "float", "decimal"):
            return f"CAST(bround({s}, 0) AS {SPARK_TYPES[target]})", out
        if target == "bool" and st.is_numeric:
            return f"({s} <> 0)", out
        if target == "DateTime" and st.name != "DateTime":
            raise self.untranslatable(e.pos, "Convert.ToDateTime", f"from {st}")
        return f"CAST({s} AS {SPARK_TYPES[target]})", out

    @staticmethod
    def _zero(target: str) -> str:
        if target == "bool":
            return "FALSE"
        if target == "DateTime":
            return "TIMESTAMP_NTZ '0001-01-01 00:00:00'"
        if target == "Guid":
            return "'00000000-0000-0000-0000-000000000000'"
        return f"CAST(0 AS {SPARK_TYPES[target]})"

    def _method(self, recv: Typed, name: str, args: list[Typed], e: n.Call) -> Typed:
        s, st = recv
        a = [x for x, _ in args]

        def need(*counts: int) -> None:
            if len(args) not in counts:
                want = " or ".join(str(c) for c in counts)
                raise self.err(e.pos, name, f"{st}.{name} takes {want} argument(s), got {len(args)}")

        if name == "ToString":
            need(0, 1)
            if not args:
                return cs_tostring(s, st), t.STRING
            if st.name == "DateTime":
                fmt = e.args[0]
                if not (isinstance(fmt, n.Literal) and isinstance(fmt.value, str)):
                    raise self.err(e.pos, "ToString", "DateTime.ToString(format) needs a literal format string")
                try:
                    return f"date_format({s}, {slit(to_spark_pattern(fmt.value))})", t.STRING
                except FormatError as ex:
                    raise self.err(fmt.pos, "ToString", str(ex)) from None
            duckdb = partial(super()._method, recv, name, args, e)
            raise self._not_in_spark(duckdb, e.pos, "ToString", f"{st}.ToString(format)")
        if name == "Equals":
            need(1)
            return f"({s} <=> {a[0]})", t.BOOL
        if name == "CompareTo" and st.name == "DateTime":
            need(1)
            return self._compare(s, st, a[0], args[0][1], e)
        if name == "GetValueOrDefault" and st.nullable:
            need(0, 1)
            default = a[0] if a else self._zero(st.name) if st.name in SPARK_TYPES else "NULL"
            return f"coalesce({s}, {default})", st.with_nullable(False)
        if st.name == "string":
            return self._string_method(s, name, a, args, e, need)
        if st.name == "DateTime":
            units = {"AddDays": "DAY", "AddHours": "HOUR", "AddMinutes": "MINUTE", "AddSeconds": "SECOND",
                     "AddMilliseconds": "MILLISECOND"}  # fmt: skip
            if name in units:
                need(1)
                if args[0][1].is_integral:
                    return f"timestampadd({units[name]}, {a[0]}, {s})", st
                micros = {"DAY": 86_400_000_000, "HOUR": 3_600_000_000, "MINUTE": 60_000_000, "SECOND": 1_000_000,
                          "MILLISECOND": 1000}[units[name]]  # fmt: skip
                return f"timestampadd(MICROSECOND, CAST(round({a[0]} * {micros}) AS BIGINT), {s})", st
            if name in ("AddMonths", "AddYears"):
                need(1)
                unit = "MONTH" if name == "AddMonths" else "YEAR"
                return f"timestampadd({unit}, {a[0]}, {s})", st
            if name == "ToShortDateString":
                need(0)
                return f"date_format({s}, 'M/d/yyyy')", t.STRING
        if st.name == "SqlArray" and name == "Contains":
            need(1)
            return f"array_contains({s}, {a[0]})", t.BOOL
        if st.name == "SqlArray" and name == "IndexOf":
            need(1)
            return f"CAST(coalesce(array_position({s}, {a[0]}), 0) - 1 AS INT)", t.INT
        if st.name == "SqlMap" and name == "ContainsKey":
            need(1)
            return f"map_contains_key({s}, {a[0]})", t.BOOL
        raise self._not_in_spark(partial(super()._method, recv, name, args, e), e.pos, name, f"{st}.{name}(...)")

    def _string_method(
        self, s: str, name: str, a: list[str], args: list[Typed], e: n.Call, need: Callable[..., None]
    ) -> Typed:
        if name in ("Trim", "TrimStart", "TrimEnd"):
            side = {"Trim": "BOTH", "TrimStart": "LEADING", "TrimEnd": "TRAILING"}[name]
            chars = "concat(" + ", ".join(a) + ")" if a else _WS
            return f"trim({side} {chars} FROM {s})", t.STRING
        if name in ("Contains", "StartsWith", "EndsWith"):
            need(1)
            fn = {"Contains": "contains", "StartsWith": "startswith", "EndsWith": "endswith"}[name]
            return f"{fn}({s}, {a[0]})", t.BOOL
        if name in _SHARED_STRING_METHODS:
            # the DuckDB translation uses only functions Spark has with the same meaning (upper, instr, substring...)
            return super()._string_method(s, name, a, args, e, need)
        if name == "Replace":
            need(2)
            return f"replace({s}, {a[0]}, {a[1]})", t.STRING
        if name == "Split":
            return self._split(s, args, e)
        if name in ("PadLeft", "PadRight"):
            need(1, 2)
            fn = "lpad" if name == "PadLeft" else "rpad"
            pad = a[1] if len(a) == 2 else "' '"
            width = f"CAST({a[0]} AS INT)"
            return f"CASE WHEN char_length({s}) >= {width} THEN {s} ELSE {fn}({s}, {width}, {pad}) END", t.STRING
        duckdb = partial(super()._string_method, s, name, a, args, e, need)
        raise self._not_in_spark(duckdb, e.pos, name, f"string.{name}(...)")

    # Spark's split() takes a regex: separators are quoted and, if several, alternatives in argument order;
    # limit -1 keeps trailing empty entries.
    @staticmethod
    def _split_on(s: str, sep: str) -> str:
        return f"split({s}, concat('\\\\Q', {sep}, '\\\\E'), -1)"

    def _split_on_literals(self, s: str, seps: list[str]) -> str:
        # re.escape escapes only non-alphanumerics, which Java's regex reads as literals too
        return f"split({s}, {slit('|'.join(re.escape(x) for x in seps))}, -1)"

    @staticmethod
    def _drop_empty(arr: str) -> str:
        return f"filter({arr}, usql_v -> usql_v <> '')"

    def _string_join(self, e: n.Call, scope: Scope) -> str:
        """``string.Join(sep, sequence)`` / ``string.Join(sep, v1, v2, ...)``: each value's ToString(), null as ""."""
        super()._string_join(e, scope)  # the DuckDB translator's checks (its SQL is DuckDB's)
        (sep, _), *values = [self.tr(a, scope) for a in e.args]
        sep = f"coalesce({sep}, '')"
        if len(values) == 1 and values[0][1].name == "SqlArray":
            arr, at = values[0]
            elem = at.element or t.UNKNOWN
            if elem.name not in ("string", "char", "unknown"):
                arr = f"transform({arr}, {self._lambda_sql(['usql_j'], cs_tostring('usql_j', elem))})"
            return self._array_join(arr, sep)
        parts = ", ".join(f"coalesce({self._concat_arg(x, ty)}, '')" for x, ty in values)
        return f"concat_ws({sep}, {parts})"

    def _compare(self, a: str, at: UType, b: str, bt: UType, e: n.Call) -> Typed:
        """``DateTime.Compare(a, b)`` / ``a.CompareTo(b)``: -1, 0 or 1 (NULL if either is null)."""
        super()._compare(a, at, b, bt, e)  # the DuckDB translator's checks (its SQL is DuckDB's)
        return f"CASE WHEN {a} < {b} THEN -1 WHEN {a} > {b} THEN 1 WHEN {a} = {b} THEN 0 END", t.INT

    def _string_format(self, e: n.Call, scope: Scope) -> str:
        """``String.Format("{0}:{1,5}:{2:yyyy-MM-dd}", a, b, c)``: a literal composite format; null is ""."""
        super()._string_format(e, scope)  # the DuckDB translator's checks (its SQL is DuckDB's)
        fmt = e.args[0]
        assert isinstance(fmt, n.Literal)
        args = [self.tr(a, scope) for a in e.args[1:]]
        parts = []
        for piece in parse_composite_format(str(fmt.value)):
            if isinstance(piece, str):
                parts.append(slit(piece))
                continue
            index, align, spec = piece
            s, st = args[index]
            value = f"coalesce({self._formatted(s, st, spec, fmt.pos) if spec else cs_tostring(s, st)}, '')"
            if align:
                fn = "lpad" if align > 0 else "rpad"
                width = abs(align)
                value = f"CASE WHEN char_length({value}) >= {width} THEN {value} ELSE {fn}({value}, {width}, ' ') END"
            parts.append(value)
        return "concat(" + ", ".join(parts or ["''"]) + ")"

    def _formatted(self, s: str, st: UType, spec: str, pos: n.Pos) -> str:
        """``value.ToString(spec)`` in a composite format: DateTime formats; numeric formats are not translated."""
        if st.name == "DateTime":
            try:
                return f"date_format({s}, {slit(to_spark_pattern(spec))})"
            except FormatError as ex:
                raise self.err(pos, "format", str(ex)) from None
        raise self._not_in_spark(partial(super()._formatted, s, st, spec, pos), pos, "format", f"{st} format {spec!r}")

    def _new(self, e: n.New, scope: Scope) -> Typed:
        name = e.type.name
        if name == "KeyValuePair":
            raise self.untranslatable(e.pos, "KeyValuePair", "KeyValuePair values (LINQ over SqlMap entries)")
        if name.endswith("[]") and getattr(e, "initializer", None) is not None and not e.args:  # new string[]{...}
            elem = t.resolve(n.TypeRef(name[:-2], False, e.type.pos))
            if elem is not None and elem.name not in ("byte[]", "SqlArray", "SqlMap"):
                et = spark_type(elem)
                items = ", ".join(f"CAST({self.tr(x, scope)[0]} AS {et})" for (x,) in e.initializer or ())
                return f"CAST(array({items}) AS ARRAY<{et}>)", t.array_of(elem)
        return super()._new(e, scope)

    # ------------------------------------------------------------ operators
    def _cast(self, e: n.Cast, scope: Scope) -> Typed:
        target = t.resolve(e.type)
        if target is None:
            raise self.err(e.type.pos, "type", f"unknown type {e.type.name!r}")
        s, st = self.tr(e.operand, scope)
        if st.name == "null":
            return f"CAST(NULL AS {spark_type(target)})", target.with_nullable(True)
        if st.name == target.name:
            return s, target
        if target.is_integral and st.name in ("double", "float", "decimal"):
            return f"CAST(CASE WHEN {s} >= 0 THEN floor({s}) ELSE ceil({s}) END AS {spark_type(target)})", target
        if target.name == "char" and st.is_integral:
            return (f"CASE WHEN {s} BETWEEN 0 AND 127 THEN chr({s}) ELSE raise_error("
                    f"'(char) of a code above 127 is not translated to Spark SQL') END"), target  # fmt: skip
        if target.is_integral and st.name == "char":
            return f"CAST(ascii({s}) AS {spark_type(target)})", target
        if st.name == "string" and target.name != "string":
            raise self.err(e.pos, "type", f"cannot cast string to {target}; use {target.name}.Parse")
        return f"CAST({s} AS {spark_type(target)})", target

    def _new_collection(self, e: n.New, args: list[Typed], scope: Scope) -> Typed:
        typ = t.resolve(e.type)
        name = typ.name if typ is not None else e.type.name  # SqlArray or SqlMap, however it is spelled
        elem = typ.element if typ is not None else None
        if typ is None or elem is None:
            want = "SqlMap<K,V>" if name == "SqlMap" else "SqlArray<T>"
            raise self.err(e.pos, name, f"new {want}(...) needs built-in type arguments")
        init: tuple[tuple[n.Expr, ...], ...] | None = getattr(e, "initializer", None)
        et = spark_type(elem)
        if name == "SqlMap":
            if args:
                if len(args) == 1 and args[0][1].name == "SqlMap" and init is None:
                    return args[0][0], typ
                raise self.err(
                    e.pos, "SqlMap", "new SqlMap<K,V>(...) takes another SqlMap or an initializer {{k, v}, ...}"
                )
            if not init:
                return f"CAST(map() AS {spark_type(typ)})", typ
            if any(len(item) != 2 for item in init):
                raise self.err(e.pos, "SqlMap", "each entry of new SqlMap<K,V>{...} is a pair {key, value}")
            kt = spark_type(typ.key or t.STRING)
            pairs = ", ".join(
                f"CAST({self.tr(k, scope)[0]} AS {kt}), CAST({self.tr(v, scope)[0]} AS {et})" for k, v in init
            )
            return f"map({pairs})", typ
        if init is not None:
            if args or any(len(item) != 1 for item in init):
                raise self.err(e.pos, "SqlArray", "new SqlArray<T>{a, b, ...} takes one value per element")
            items = ", ".join(f"CAST({self.tr(x, scope)[0]} AS {et})" for (x,) in init)
            return f"CAST(array({items}) AS ARRAY<{et}>)", typ
        if not args:
            return f"CAST(array() AS ARRAY<{et}>)", typ
        if len(args) == 1 and args[0][1].name == "SqlArray":
            return args[0][0], typ
        raise self.err(e.pos, "SqlArray", "new SqlArray<T>(x) needs an array such as s.Split(';')")
