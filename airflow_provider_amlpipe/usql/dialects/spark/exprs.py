"""C# expressions -> Spark SQL (3.5 / 4.x), with C# types and null semantics where Spark can express them: Spark's
templates and render hooks of the dialect-neutral :class:`~airflow_provider_amlpipe.usql.translator.Translator`.

Whatever has no faithful Spark form (LINQ, Regex, TimeSpan and KeyValuePair values, numeric formats, ...) is
refused through :meth:`~airflow_provider_amlpipe.usql.translator.Translator.unsupported` ("cannot be translated to
Spark SQL: ...") instead of emitting SQL that would compute something else.
"""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.csformat import DOUBLE_DIGITS, FLOAT_DIGITS
from airflow_provider_amlpipe.usql.dialects.spark.values import (
    DECIMAL_TEXT,
    DEFAULT_TOSTRING,
    bq,
    decimal_text,
    dotnet_real,
    slit,
    spark_column_type,
    spark_type,
    strict_parse,
    to_spark_pattern,
)
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed
from airflow_provider_amlpipe.usql.translate_base import _DAY_NAMES
from airflow_provider_amlpipe.usql.translator import Translator
from airflow_provider_amlpipe.usql.types import UType

NOT_SPARK = "cannot be translated to Spark SQL: "

#: Value types with no Spark translation: an expression of one of them is refused.
_NOT_TRANSLATED_TYPES = ("TimeSpan", "KeyValuePair")
#: Types whose values a double holds exactly (Spark's percentile_disc converts to double).
_EXACT_IN_DOUBLE = ("sbyte", "byte", "short", "ushort", "int", "uint", "float", "double")
#: DateTime.AddX: Spark's unit and the microseconds of one (for fractional amounts).
_DATE_UNITS = {"Days": ("DAY", 86_400_000_000), "Hours": ("HOUR", 3_600_000_000), "Minutes": ("MINUTE", 60_000_000),
               "Seconds": ("SECOND", 1_000_000), "Milliseconds": ("MILLISECOND", 1000), "Months": ("MONTH", 0),
               "Years": ("YEAR", 0)}  # fmt: skip


class SparkExprTranslator(Translator):
    """Translates C# expressions within one scope to Spark SQL."""

    NOT_TRANSLATED = NOT_SPARK
    TEXT_TYPES = ("string", "char", "Guid")
    MAKE_TIMESTAMP = "make_timestamp_ntz"
    TEMPLATES: ClassVar[dict[str, str]] = {
        "Math.PI": "pi()",
        "Math.E": "e()",
        "Math.Round": "bround({0}, {1})",
        "double.ToString": dotnet_real("{0}", DOUBLE_DIGITS),
        "float.ToString": dotnet_real("{0}", FLOAT_DIGITS),
        "decimal.ToString": DECIMAL_TEXT,
        "decimal.ToStringScaled": decimal_text("{0}", "{1}"),
        "DateTime.ToString": f"date_format({{0}}, {slit(DEFAULT_TOSTRING)})",
        "DayOfWeek.ToString": f"element_at(array({', '.join(slit(d) for d in _DAY_NAMES)}), {{0}} + 1)",
        "DateTime.Now": "localtimestamp()",
        "DateTime.UtcNow": "CAST(to_utc_timestamp(current_timestamp(), current_timezone()) AS TIMESTAMP_NTZ)",
        "DateTime.Today": "CAST(current_date() AS TIMESTAMP_NTZ)",
        "DateTime.MinValue": "TIMESTAMP_NTZ '0001-01-01 00:00:00'",
        "DateTime.MaxValue": "TIMESTAMP_NTZ '9999-12-31 23:59:59.999999'",
        "DateTime.default": "TIMESTAMP_NTZ '0001-01-01 00:00:00'",
        "Guid.default": "'00000000-0000-0000-0000-000000000000'",
        **{f"DateTime.{p}": f"{p.lower()}({{0}})"
           for p in ("Year", "Month", "Day", "Hour", "Minute", "Second", "DayOfYear")},
        "DateTime.Millisecond": "CAST(date_format({0}, 'SSS') AS INT)",
        "DateTime.Date": "CAST(CAST({0} AS DATE) AS TIMESTAMP_NTZ)",
        "DateTime.DayOfWeek": "CAST(dayofweek({0}) - 1 AS INT)",  # Spark: 1 = Sunday; .NET: Sunday = 0
        "DateTime.ToShortDateString": "date_format({0}, 'M/d/yyyy')",
        "string.Contains": "contains({0}, {1})",
        "string.StartsWith": "startswith({0}, {1})",
        "string.EndsWith": "endswith({0}, {1})",
        # Spark's split() takes a regex: a separator is quoted; limit -1 keeps trailing empty entries
        "string.Split": "split({0}, concat('\\\\Q', {1}, '\\\\E'), -1)",
        "string.SplitRegex": "split({0}, {1}, -1)",
        "SqlArray.Count": "size({0})",
        "SqlArray.Contains": "array_contains({0}, {1})",
        "SqlArray.IndexOf": "CAST(coalesce(array_position({0}, {1}), 0) - 1 AS INT)",
        "SqlArray.Select": "transform({0}, {1})",
        "SqlArray.Where": "filter({0}, {1})",
        "SqlArray.literal": "CAST(array({0}) AS {1})",
        "SqlMap.Count": "size({0})",
        "SqlMap.ContainsKey": "map_contains_key({0}, {1})",
        "SqlMap.empty": "CAST(map() AS {0})",
    }  # fmt: skip
    MATH_FUNCTIONS: ClassVar[dict[str, str]] = {
        "Abs": "abs", "Sqrt": "sqrt", "Exp": "exp", "Log10": "log10", "Sin": "sin", "Cos": "cos", "Tan": "tan",
    }  # fmt: skip

    def tr(self, e: n.Expr, scope: Scope) -> Typed:
        result = super().tr(e, scope)
        if result[1].name in _NOT_TRANSLATED_TYPES:
            pos = getattr(e, "pos", n.Pos(1, 1))
            raise self.unsupported(pos, result[1].name, f"{result[1].name} values")
        return result

    # ------------------------------------------------------------ render hooks
    @staticmethod
    def _ident(name: str) -> str:
        return bq(name)

    @staticmethod
    def _strlit(s: str) -> str:
        return slit(s)

    @staticmethod
    def _type_sql(typ: UType) -> str:
        return spark_type(typ)

    @staticmethod
    def _length(s: str) -> str:
        return f"char_length({s})"

    @staticmethod
    def _struct_field(s: str, field: str) -> str:
        return f"{s}.{field}"

    @staticmethod
    def _decimal_pair(value: str, scale: str) -> str:
        return f"named_struct('v', CAST({value} AS DECIMAL(38,10)), 's', CAST({scale} AS INT))"

    @classmethod
    def column_type_sql(cls, typ: UType) -> str:
        return spark_column_type(typ)

    @staticmethod
    def _position(s: str, sub: str) -> str:
        return f"instr({s}, {sub})"

    @staticmethod
    def _arg_extreme(name: str, arg: str, value: str) -> str:
        return f"{'min_by' if name == 'MIN' else 'max_by'}({arg}, {value})"

    def decimal_elements_as_columns(self, sql: str, typ: UType) -> str:
        if typ.element is None or typ.element.name != "decimal":
            return sql
        if typ.name == "SqlMap":
            return f"transform_values({sql}, (usql_k, usql_x) -> {self._decimal_pair('usql_x', 'NULL')})"
        return f"transform({sql}, usql_x -> {self._decimal_pair('usql_x', 'NULL')})"

    @staticmethod
    def _not_distinct(a: str, b: str, neg: bool) -> str:
        return f"(NOT ({a} <=> {b}))" if neg else f"({a} <=> {b})"

    @staticmethod
    def _element_at(s: str, key: str) -> str:
        return f"try_element_at({s}, {key})"

    @staticmethod
    def _divide(a: str, b: str, typ: UType) -> str:
        if typ.is_integral:
            return f"CAST(({a} DIV {b}) AS {spark_type(typ)})"
        if typ.name in ("double", "float"):
            return f"(CAST({a} AS DOUBLE) / {b})"
        return f"({a} / {b})"

    def _concat_arg(self, s: str, typ: UType) -> str:
        return f"coalesce({self._tostring(s, typ)}, '')"

    def _array_join(self, arr: str, sep: str, pos: n.Pos) -> str:
        return f"array_join({arr}, {sep}, '')"

    def _parse(self, s: str, target: str, what: str, pos: n.Pos) -> str:
        return strict_parse(s, target, what)

    def _math_call(self, name: str, s: str, st: UType) -> str:
        if name == "Truncate":
            return f"CAST(CASE WHEN {s} >= 0 THEN floor({s}) ELSE ceil({s}) END AS {spark_type(st)})"
        if name in ("Floor", "Ceiling"):
            return f"CAST({'floor' if name == 'Floor' else 'ceil'}({s}) AS {spark_type(st)})"
        if name == "Sign":
            return f"CAST(signum({s}) AS INT)"
        return super()._math_call(name, s, st)

    def _round(self, args: list[Typed], e: n.Call) -> str:
        if len(args) == 2 and not (isinstance(e.args[1], n.Literal) and isinstance(e.args[1].value, int)):
            raise self.unsupported(e.pos, "Math.Round", "the number of digits must be a literal int")
        return super()._round(args, e)

    def _date_add(self, unit: str, s: str, value: Typed, pos: n.Pos) -> str:
        spark_unit, micros = _DATE_UNITS[unit]
        if not micros or value[1].is_integral:
            return f"timestampadd({spark_unit}, {value[0]}, {s})"
        return f"timestampadd(MICROSECOND, CAST(round({value[0]} * {micros}) AS BIGINT), {s})"

    def _format_datetime(self, s: str, spec: str, pos: n.Pos) -> str:
        return f"date_format({s}, {slit(to_spark_pattern(spec))})"

    def _cast_sql(self, s: str, st: UType, target: UType, e: n.Cast) -> str:
        if target.is_integral and st.name in ("double", "float", "decimal"):
            return f"CAST(CASE WHEN {s} >= 0 THEN floor({s}) ELSE ceil({s}) END AS {spark_type(target)})"
        if target.name == "char" and st.is_integral:
            return (f"CASE WHEN {s} BETWEEN 0 AND 127 THEN chr({s}) ELSE raise_error("
                    f"'(char) of a code above 127 is not translated to Spark SQL') END")  # fmt: skip
        if target.is_integral and st.name == "char":
            return f"CAST(ascii({s}) AS {spark_type(target)})"
        if st.name == "string" and target.name != "string":
            raise self.err(e.pos, "type", f"cannot cast string to {target}; use {target.name}.Parse")
        return f"CAST({s} AS {spark_type(target)})"

    # ------------------------------------------------------------ aggregates and percentiles
    def _sql_function(self, name: str, e: n.Call, scope: Scope) -> Typed:
        if (name.upper() if name.isupper() else name) == "MAP_AGG" and e.over is not None:
            # map_from_entries(...) around the aggregate cannot take the OVER clause
            raise self.unsupported(e.pos, "MAP_AGG", "MAP_AGG with OVER")
        return super()._sql_function(name, e, scope)

    def _aggregate_outer(self, name: str, at: UType) -> str:
        if name in ("SUM", "AVG") and at.name == "decimal":
            return "CAST({} AS DECIMAL(38,10))"
        return super()._aggregate_outer(name, at)  # a cast of a double drops the fraction in Spark

    def _collection_aggregate_sql(self, name: str, e: n.Call, args: list[Typed], typ: UType) -> tuple[str, str]:
        if name == "ARRAY_AGG":
            # collect_list skips nulls; wrapped in a struct (never null) they stay, as in U-SQL
            dist = "DISTINCT " if e.distinct else ""
            sql = f"collect_list({dist}named_struct('v', {self._converted(args[0], typ.element)}))"
            return sql, "transform({}, usql_e -> usql_e.v)"
        k, v = self._converted(args[0], typ.key), self._converted(args[1], typ.element)
        # a repeated key fails the query (spark.sql.mapKeyDedupPolicy=EXCEPTION), as in U-SQL
        return f"collect_list(struct({k}, {v}))", "map_from_entries({})"

    def _percentile_sql(self, name: str, e: n.Call, scope: Scope, x: Typed, frac: float, typ: UType) -> str:
        """Spark has PERCENTILE_CONT/DISC ... WITHIN GROUP, with DESC."""
        s, xt = x
        order = " DESC" if e.within_group[0].descending else ""
        if name == "PERCENTILE_CONT":
            return self._over(f"percentile_cont({frac!r}) WITHIN GROUP (ORDER BY CAST({s} AS DOUBLE){order})", e, scope)
        if xt.name not in _EXACT_IN_DOUBLE:
            raise self.unsupported(e.pos, name, f"of {xt} values: Spark's percentile_disc computes in double")
        sql = f"percentile_disc({frac!r}) WITHIN GROUP (ORDER BY {s}{order})"
        return f"CAST({self._over(sql, e, scope)} AS {spark_type(typ)})"

    # ------------------------------------------------------------ conversions
    def _parse_text(self, s: str, target: str) -> str:
        return strict_parse(s, target, "Convert")

    def _convert_cast(self, s: str, st: UType, out: UType, e: n.Call) -> str:
        if out.name == "DateTime" and st.name != "DateTime":
            raise self.unsupported(e.pos, "Convert.ToDateTime", f"from {st}")
        return super()._convert_cast(s, st, out, e)


def cs_tostring(sql: str, typ: UType) -> str:
    """C# ``ToString()`` of a value as Spark SQL (NULL stays NULL)."""
    return SparkExprTranslator.tostring(sql, typ)
