"""C# expressions -> DuckDB SQL, with C# types and null semantics: DuckDB's templates and render hooks of the
dialect-neutral :class:`~airflow_provider_amlpipe.usql.translator.Translator`, with LINQ, Regex, TimeSpan values and
numeric formats, which only this dialect translates (``exprs_linq``, ``exprs_regex``, ``exprs_datetime``,
``exprs_format``)."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.csformat import DEFAULT_TOSTRING
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_datetime import TIMESPAN_TEXT, DateTimeMembers
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_format import Formatting
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_format import custom_number_sql as custom_number_sql
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_linq import LinqCalls
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_regex import RegexCalls
from airflow_provider_amlpipe.usql.exprs_common import Scope as Scope
from airflow_provider_amlpipe.usql.exprs_common import Typed as Typed
from airflow_provider_amlpipe.usql.exprs_common import lit
from airflow_provider_amlpipe.usql.exprs_common import q as q
from airflow_provider_amlpipe.usql.translate_base import _DAY_NAMES
from airflow_provider_amlpipe.usql.types import UType

#: What C#'s ``int.Parse`` (``NumberStyles.Integer``) accepts: optional white space (U+0009..U+000D, space)
#: around an optional sign and ASCII digits. DuckDB's integer cast also takes ``2.5`` (rounding), ``1e3``,
#: ``1_000``, ``0x1F`` and ``0b11``, so an integral conversion checks the text against this pattern.
STRICT_INTEGER = "'[\\t-\\r ]*[+-]?[0-9]+[\\t-\\r ]*'"
_WHITE_SPACE = lit(" \t\r\n")
#: The wide type of ``-x`` in a descending PERCENTILE_DISC (also for unsigned and minimum values).
_NEGATABLE = {"double": "DOUBLE", "float": "DOUBLE", "decimal": "DECIMAL(38,10)"}


def parse_string_as(sql: str, target: str, try_: bool = False) -> str:
    """C# ``T.Parse(s)`` (leading/trailing white space allowed) as DuckDB SQL."""
    cast = "TRY_CAST" if try_ else "CAST"
    if target == "DateTime":
        return f"usql_parse_datetime({sql})"
    if target == "bool":
        return f"{cast}(trim({sql}) AS BOOLEAN)"
    if target == "string":
        return sql
    if target in t.INTEGRAL:
        # the cast itself skips the surrounding white space the pattern allows
        duck = t.BUILTIN_TYPES[target]
        if try_:
            return f"TRY_CAST(CASE WHEN regexp_full_match({sql}, {STRICT_INTEGER}) THEN {sql} END AS {duck})"
        return f"CAST(usql_int_text({sql}, {lit(target)}) AS {duck})"
    return f"{cast}(trim({sql}) AS {t.BUILTIN_TYPES[target]})"


class ExprTranslator(LinqCalls, RegexCalls, Formatting, DateTimeMembers):
    """Translates expressions within one scope to DuckDB SQL."""

    NOT_TRANSLATED = "cannot be translated to DuckDB SQL: "
    TEMPLATES: ClassVar[dict[str, str]] = {
        "Math.PI": "pi()",
        "Math.E": "exp(1)",
        "Math.Round": "round_even({0}, {1})",
        "double.ToString": "usql_fmt_real({0})",
        "float.ToString": "usql_fmt_float({0})",
        "decimal.ToString": "usql_fmt_decimal({0})",
        "decimal.ToStringScaled": "usql_fmt_decimal_scaled({0}, {1})",
        "DateTime.ToString": f"strftime({{0}}, {lit(DEFAULT_TOSTRING)})",
        "DayOfWeek.ToString": f"[{', '.join(lit(d) for d in _DAY_NAMES)}][{{0}} + 1]",
        "TimeSpan.ToString": TIMESPAN_TEXT,
        "DateTime.Now": "CAST(localtimestamp AS TIMESTAMP)",
        "DateTime.UtcNow": "CAST(now() AT TIME ZONE 'UTC' AS TIMESTAMP)",
        "DateTime.Today": "CAST(current_date AS TIMESTAMP)",
        "DateTime.MinValue": "TIMESTAMP '0001-01-01 00:00:00'",
        "DateTime.MaxValue": "TIMESTAMP '9999-12-31 23:59:59.999999'",
        "DateTime.default": "TIMESTAMP '0001-01-01 00:00:00'",
        "Guid.default": "'00000000-0000-0000-0000-000000000000'::UUID",
        "TimeSpan.Zero": "CAST(0 AS BIGINT)",
        **{f"DateTime.{p}": f"CAST({p.lower()}({{0}}) AS INTEGER)"
           for p in ("Year", "Month", "Day", "Hour", "Minute", "Second", "DayOfYear")},
        "DateTime.Millisecond": "CAST(millisecond({0}) % 1000 AS INTEGER)",
        "DateTime.Date": "date_trunc('day', {0})",
        "DateTime.Ticks": "(epoch_us({0}) * 10 + 621355968000000000)",
        "DateTime.DayOfWeek": "CAST(dayofweek({0}) AS INTEGER)",
        "DateTime.TimeOfDay": "(epoch_us({0}) - epoch_us(date_trunc('day', {0})))",
        "DateTime.ToShortDateString": "strftime({0}, '%-m/%-d/%Y')",
        "KeyValuePair.Key": "struct_extract({0}, 'key')",
        "KeyValuePair.Value": "struct_extract({0}, 'value')",
        "string.Contains": "contains({0}, {1})",
        "string.StartsWith": "starts_with({0}, {1})",
        "string.EndsWith": "ends_with({0}, {1})",
        "string.Split": "string_split({0}, {1})",
        "string.SplitRegex": "regexp_split_to_array({0}, {1})",
        "string.ToCharArray": "list_transform(range(length({0})), {1})",
        "SqlArray.Count": "CAST(len({0}) AS INTEGER)",
        "SqlArray.Contains": "list_contains({0}, {1})",
        "SqlArray.IndexOf": "CAST(coalesce(list_position({0}, {1}), 0) - 1 AS INTEGER)",
        "SqlArray.Select": "list_transform({0}, {1})",
        "SqlArray.Where": "list_filter({0}, {1})",
        "SqlArray.literal": "CAST([{0}] AS {1})",
        "SqlMap.Count": "CAST(cardinality({0}) AS INTEGER)",
        "SqlMap.ContainsKey": "map_contains({0}, {1})",
        "SqlMap.empty": "CAST(MAP() AS {0})",
        "SqlMap.FromPairs": "CAST(map_from_entries({0}) AS {1})",
    }  # fmt: skip
    MATH_FUNCTIONS: ClassVar[dict[str, str]] = {
        "Abs": "abs", "Floor": "floor", "Ceiling": "ceil", "Sqrt": "sqrt", "Exp": "exp", "Log10": "log10",
        "Sign": "sign", "Truncate": "trunc", "Sin": "sin", "Cos": "cos", "Tan": "tan",
    }  # fmt: skip

    # ------------------------------------------------------------ render hooks
    @staticmethod
    def _divide(a: str, b: str, typ: UType) -> str:
        return f"({a} // {b})" if typ.is_integral else f"({a} / {b})"

    @staticmethod
    def _bitwise(op: str, a: str, b: str) -> str:
        return f"xor({a}, {b})" if op == "^" else f"({a} {op} {b})"

    def _array_join(self, arr: str, sep: str, pos: n.Pos) -> str:
        return f"array_to_string(list_transform({arr}, lambda usql_j: coalesce(usql_j, '')), {sep})"

    def _parse(self, s: str, target: str, what: str, pos: n.Pos) -> str:
        fail = f"error({lit(what + ': the value is null (ArgumentNullException)')})"
        return f"CASE WHEN {s} IS NULL THEN {fail} ELSE {parse_string_as(s, target)} END"

    def _trim(self, s: str, name: str, chars: list[str]) -> str:
        fn = {"Trim": "trim", "TrimStart": "ltrim", "TrimEnd": "rtrim"}[name]
        what = "concat(" + ", ".join(chars) + ")" if chars else _WHITE_SPACE
        return f"{fn}({s}, {what})"

    def _split_on_literals(self, s: str, seps: list[str], pos: n.Pos) -> str:
        if len(seps) == 1:
            return f"string_split({s}, {self._strlit(seps[0])})"
        return super()._split_on_literals(s, seps, pos)

    def _math_call(self, name: str, s: str, st: UType) -> str:
        if name == "Sign":
            return f"CAST(sign({s}) AS INTEGER)"
        if name in ("Sqrt", "Exp", "Log10"):
            s = f"CAST({s} AS DOUBLE)"
        return f"{self.MATH_FUNCTIONS[name]}({s})"

    def _cast_sql(self, s: str, st: UType, target: UType, e: n.Cast) -> str:
        if target.is_integral and st.name in ("double", "float", "decimal"):
            return f"CAST(trunc({s}) AS {target.duckdb()})"
        if target.name == "char" and st.is_integral:
            return f"chr({s})"
        if target.is_integral and st.name == "char":
            return f"CAST(unicode({s}) AS {target.duckdb()})"
        return f"CAST({s} AS {target.duckdb()})"

    def _new_pair(self, e: n.New, args: list[Typed]) -> Typed:
        """``new KeyValuePair<K,V>(k, v)``: a struct (key, value); a SqlMap can be built from a sequence of them."""
        types = [t.resolve(a) for a in e.type.args]
        if len(types) != 2 or len(args) != 2 or any(x is None or x.name in ("SqlArray", "SqlMap") for x in types):
            raise self.err(e.pos, "KeyValuePair", "new KeyValuePair<K,V>(key, value) needs built-in types K, V")
        key, value = types
        assert key is not None and value is not None
        k, v = f"CAST({args[0][0]} AS {key.duckdb()})", f"CAST({args[1][0]} AS {value.duckdb()})"
        return f"struct_pack(key := {k}, value := {v})", UType("KeyValuePair", False, value, key)

    @staticmethod
    def _map_literal(pairs: list[tuple[str, str]]) -> str:
        return f"MAP([{', '.join(k for k, _ in pairs)}], [{', '.join(v for _, v in pairs)}])"

    # ------------------------------------------------------------ aggregates and percentiles
    def _aggregate_outer(self, name: str, at: UType) -> str:
        if name == "AVG" and at.is_integral:
            return "CAST(trunc({}) AS BIGINT)"  # SQL Server's integer average drops the fraction
        return super()._aggregate_outer(name, at)

    def _collection_aggregate_sql(self, name: str, e: n.Call, args: list[Typed], typ: UType) -> tuple[str, str]:
        if name == "ARRAY_AGG":
            return f"list({'DISTINCT ' if e.distinct else ''}{self._converted(args[0], typ.element)})", "{}"
        # a map from the group's (key, value) pairs; a repeated key is an error, as in U-SQL
        k, v = self._converted(args[0], typ.key), self._converted(args[1], typ.element)
        return f"list(row({k}, {v}))", "map_from_entries({})"

    def _percentile_sql(self, name: str, e: n.Call, scope: Scope, x: Typed, frac: float, typ: UType) -> str:
        s, xt = x
        descending = e.within_group[0].descending
        if name == "PERCENTILE_CONT":
            # descending order mirrors the interpolation: the p-th value descending is the (1-p)-th ascending
            return self._over(f"quantile_cont(CAST({s} AS DOUBLE), {(1 - frac if descending else frac)!r})", e, scope)
        if descending:
            # negated in a type wide enough to hold -x (also for unsigned and minimum values)
            wide = _NEGATABLE.get(xt.name, "HUGEINT")
            inner = self._over(f"quantile_disc((-CAST({s} AS {wide})), {frac!r})", e, scope)
            return f"CAST(-({inner}) AS {xt.duckdb()})"
        return self._over(f"quantile_disc({s}, {frac!r})", e, scope)

    # ------------------------------------------------------------ conversions
    def _parse_text(self, s: str, target: str) -> str:
        return parse_string_as(s, target)


def cs_tostring(sql: str, typ: UType) -> str:
    """C# ``ToString()`` of a value as DuckDB SQL (NULL stays NULL)."""
    return ExprTranslator.tostring(sql, typ)
