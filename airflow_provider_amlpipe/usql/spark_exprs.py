"""C# expressions -> Spark SQL (3.5 / 4.x), with C# types and null semantics where Spark can express them.

A subclass of the DuckDB :class:`~.duckdb_exprs.ExprTranslator`: name resolution, typing and the
dialect-neutral operators (``CASE``, ``IN``, ``LIKE``, ``BETWEEN``, ``IS NULL``, windows) are shared;
every method that writes dialect-specific SQL is overridden here. Whatever has no faithful Spark
form raises :class:`UsqlError` ("cannot be translated to Spark SQL: ...") instead of emitting SQL
that would compute something else.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.duckdb_exprs import _PARSE_TARGET, ExprTranslator, Scope
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.types import UType

Typed = tuple[str, UType]

NOT_SPARK = "cannot be translated to Spark SQL: "

#: U-SQL (C#) type name -> Spark SQL type. Unsigned types widen to the next signed type.
SPARK_TYPES: dict[str, str] = {
    "int": "INT",
    "long": "BIGINT",
    "short": "SMALLINT",
    "byte": "SMALLINT",
    "sbyte": "TINYINT",
    "uint": "BIGINT",
    "ulong": "DECIMAL(20,0)",
    "ushort": "INT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "decimal": "DECIMAL(38,10)",
    "bool": "BOOLEAN",
    "string": "STRING",
    "char": "STRING",
    "DateTime": "TIMESTAMP_NTZ",
    "Guid": "STRING",
    "byte[]": "BINARY",
}

SPARK_AGGREGATES = {
    "COUNT": "count", "SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max", "ANY_VALUE": "any_value",
    "ARRAY_AGG": "collect_list", "STDEV": "stddev_samp", "STDEVP": "stddev_pop", "VAR": "var_samp",
    "VARP": "var_pop", "FIRST": "first", "LAST": "last",
}  # fmt: skip

_WS = "' \\t\\r\\n'"


def spark_type(typ: UType) -> str:
    """The Spark SQL type of a U-SQL type."""
    if typ.name == "SqlArray":
        return f"ARRAY<{spark_type(typ.element) if typ.element else 'STRING'}>"
    if typ.name == "SqlMap":
        key = spark_type(typ.key) if typ.key else "STRING"
        return f"MAP<{key}, {spark_type(typ.element) if typ.element else 'STRING'}>"
    return SPARK_TYPES.get(typ.name, "STRING")


def bq(name: str) -> str:
    """A quoted Spark identifier."""
    return "`" + name.replace("`", "``") + "`"


def slit(s: str) -> str:
    """A Spark SQL string literal (Spark unescapes backslashes in literals by default)."""
    out = s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return "'" + out + "'"


# ---------------------------------------------------------------- C# DateTime formats -> Spark patterns

_STANDARD = {
    "O": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSS",
    "o": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSS",
    "s": "yyyy-MM-dd'T'HH:mm:ss",
    "u": "yyyy-MM-dd HH:mm:ss'Z'",
    "d": "M/d/yyyy",
    "D": "EEEE, MMMM d, yyyy",
    "t": "h:mm a",
    "T": "h:mm:ss a",
    "g": "M/d/yyyy h:mm a",
    "G": "M/d/yyyy h:mm:ss a",
    "f": "EEEE, MMMM d, yyyy h:mm a",
    "F": "EEEE, MMMM d, yyyy h:mm:ss a",
}
_CUSTOM = [
    ("fffffff", "SSSSSSS"), ("ffffff", "SSSSSS"), ("fff", "SSS"), ("yyyy", "yyyy"), ("MMMM", "MMMM"),
    ("dddd", "EEEE"), ("MMM", "MMM"), ("ddd", "EEE"), ("yy", "yy"), ("MM", "MM"), ("dd", "dd"), ("HH", "HH"),
    ("hh", "hh"), ("mm", "mm"), ("ss", "ss"), ("tt", "a"), ("M", "M"), ("d", "d"), ("H", "H"), ("h", "h"),
    ("m", "m"), ("s", "s"),
]  # fmt: skip
DEFAULT_TOSTRING = _STANDARD["G"]


class PatternError(ValueError):
    """A C# format string with no Spark datetime pattern equivalent."""


def to_spark_pattern(fmt: str) -> str:
    """Translate a C# standard or custom DateTime format string to a Spark datetime pattern."""
    if len(fmt) == 1:
        if fmt in _STANDARD:
            return _STANDARD[fmt]
        raise PatternError(f"standard DateTime format {fmt!r} is not supported")
    out: list[str] = []
    text: list[str] = []

    def flush() -> None:
        if text:
            out.append("'" + "".join(text).replace("'", "''") + "'")
            text.clear()

    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c in "'\"":
            end = fmt.find(c, i + 1)
            if end < 0:
                raise PatternError(f"unterminated quoted text in DateTime format {fmt!r}")
            text.append(fmt[i + 1 : end])
            i = end + 1
            continue
        if c == "\\" and i + 1 < len(fmt):
            text.append(fmt[i + 1])
            i += 2
            continue
        if c == "%" and i + 1 < len(fmt):
            i += 1
            continue
        for spec, pat in _CUSTOM:
            if fmt.startswith(spec, i):
                flush()
                out.append(pat)
                i += len(spec)
                break
        else:
            if c.isalpha() and c in "fFgKzyMdHhmst":
                raise PatternError(f"DateTime format specifier {c!r} in {fmt!r} is not supported")
            if c.isalpha():
                text.append(c)
            else:
                flush()
                out.append("''" if c == "'" else c)
            i += 1
    flush()
    return "".join(out)


# ---------------------------------------------------------------- value conversions


def cs_tostring(sql: str, typ: UType) -> str:
    """C# ``ToString()`` of a value as Spark SQL (NULL stays NULL)."""
    if typ.name in ("string", "char", "Guid"):
        return sql
    if typ.name == "bool":
        return f"CASE WHEN {sql} THEN 'True' WHEN NOT {sql} THEN 'False' END"
    if typ.name in ("double", "float"):
        return f"regexp_replace(CAST({sql} AS STRING), '\\\\.0$', '')"
    if typ.name == "decimal":
        return f"regexp_replace(CAST({sql} AS STRING), '(\\\\.[0-9]*[1-9])0+$|\\\\.0+$', '$1')"
    if typ.name == "DateTime":
        return f"date_format({sql}, {slit(DEFAULT_TOSTRING)})"
    return f"CAST({sql} AS STRING)"


def parse_datetime(sql: str) -> str:
    """C# ``DateTime.Parse``: ISO forms and en-US ``M/d/yyyy [h:mm:ss tt]``; NULL if none matches."""
    s = f"trim({sql})"
    return (
        f"coalesce(try_cast({s} AS TIMESTAMP_NTZ), "
        f"CAST(try_to_timestamp({s}, 'M/d/yyyy h:mm:ss a') AS TIMESTAMP_NTZ), "
        f"CAST(try_to_timestamp({s}, 'M/d/yyyy H:mm:ss') AS TIMESTAMP_NTZ), "
        f"CAST(try_to_timestamp({s}, 'M/d/yyyy') AS TIMESTAMP_NTZ))"
    )


def try_parse(sql: str, target: str) -> str:
    """C# ``T.Parse(s)`` as Spark SQL that yields NULL when the text does not convert."""
    if target == "string":
        return sql
    if target == "DateTime":
        return parse_datetime(sql)
    if target == "bool":
        return f"CASE lower(trim({sql})) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
    if target == "Guid":
        return (
            f"CASE WHEN trim({sql}) RLIKE '^[0-9a-fA-F]{{8}}-([0-9a-fA-F]{{4}}-){{3}}[0-9a-fA-F]{{12}}$' "
            f"THEN lower(trim({sql})) END"
        )
    return f"try_cast(trim({sql}) AS {SPARK_TYPES[target]})"


def strict_parse(sql: str, target: str, what: str) -> str:
    """C# ``T.Parse(s)``: NULL stays NULL, text that does not convert fails the query."""
    if target == "string":
        return sql
    message = slit(f"{what}: the value does not convert to {target}: ")
    fail = f"raise_error(concat({message}, {sql}))"
    return f"CASE WHEN {sql} IS NULL THEN NULL ELSE coalesce({try_parse(sql, target)}, {fail}) END"


class SparkExprTranslator(ExprTranslator):
    """Translates C# expressions within one scope to Spark SQL."""

    def __init__(self, source: str, variable: Callable[[n.Variable], Typed]) -> None:
        super().__init__(source, variable)

    def untranslatable(self, pos: n.Pos, construct: str, why: str) -> UsqlError:
        return UsqlError(self.source, pos.line, pos.column, construct, NOT_SPARK + why)

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
        raise self.err(e.pos, "member", f"{cls}.{name} is not supported")

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
            if name == "Ticks":
                raise self.untranslatable(e.pos, "DateTime.Ticks", "Ticks has no Spark equivalent")
        if typ.nullable and name == "HasValue":
            return f"({sql} IS NOT NULL)", t.BOOL
        if typ.nullable and name == "Value":
            return sql, typ.with_nullable(False)
        if typ.name == "SqlArray" and name == "Count":
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
        raise self.err(e.pos, "member", f"{typ}.{name} is not supported")

    # ------------------------------------------------------------ calls
    def _sql_function(self, name: str, e: n.Call, scope: Scope) -> Typed:
        upper = name.upper() if name.isupper() else name
        if upper == "MAP_AGG":
            if e.over is not None:
                raise self.untranslatable(e.pos, "MAP_AGG", "MAP_AGG with OVER")
            if not self.allow_aggregates:
                raise self.err(e.pos, name, f"aggregate {name} is not allowed here")
            self.allow_aggregates = False
            try:
                kv = self._args(e, scope, (2,), "MAP_AGG")
            finally:
                self.allow_aggregates = True
            (k, kt), (v, vt) = kv
            if e.distinct:
                raise self.err(e.pos, name, "MAP_AGG(DISTINCT ...) is not supported")
            # a repeated key fails the query (spark.sql.mapKeyDedupPolicy=EXCEPTION), as in U-SQL
            sql = f"map_from_entries(collect_list(struct({k}, {v})))"
            return sql, UType("SqlMap", True, vt, kt.with_nullable(False))
        return super()._sql_function(name, e, scope)

    def _aggregate(self, name: str, e: n.Call, scope: Scope) -> Typed:
        fn = SPARK_AGGREGATES[name]
        saved = self.allow_aggregates
        self.allow_aggregates = False
        try:
            if e.star:
                if name != "COUNT":
                    raise self.err(e.pos, name, f"{name}(*) is not allowed; only COUNT(*)")
                sql, typ = "count(*)", t.LONG
            else:
                args = self._args(e, scope, (1,), name)
                inner = ", ".join(a for a, _ in args)
                dist = "DISTINCT " if e.distinct else ""
                at = args[0][1]
                if name == "COUNT":
                    typ = t.LONG
                elif name == "SUM":
                    typ = UType("long" if at.is_integral else at.name, True)
                elif name in ("AVG", "STDEV", "STDEVP", "VAR", "VARP"):
                    typ = UType("decimal" if at.name == "decimal" else "double", True)
                elif name == "ARRAY_AGG":
                    typ = UType("SqlArray", True, at)
                else:
                    typ = at.with_nullable(True)
                sql = f"{fn}({dist}{inner})"
                if name == "SUM" and at.is_integral:
                    sql = f"CAST({sql} AS BIGINT)"
                elif name in ("AVG", "SUM") and at.name == "decimal":
                    sql = f"CAST({sql} AS DECIMAL(38,10))"
        finally:
            self.allow_aggregates = saved
        if e.over is not None:
            sql = self._over(sql, e, scope)
        return sql, typ

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
        raise self.err(e.pos, f"Math.{name}", f"Math.{name}(...) is not supported")

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
                except PatternError as ex:
                    raise self.err(fmt.pos, "ToString", str(ex)) from None
            raise self.err(e.pos, "ToString", f"{st}.ToString(format) is not supported")
        if name == "Equals":
            need(1)
            return f"({s} <=> {a[0]})", t.BOOL
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
        raise self.err(e.pos, name, f"method {st}.{name}(...) is not supported")

    def _string_method(
        self, s: str, name: str, a: list[str], args: list[Typed], e: n.Call, need: Callable[..., None]
    ) -> Typed:
        if name in ("ToUpper", "ToUpperInvariant", "ToLower", "ToLowerInvariant"):
            need(0)
            return f"{'upper' if 'Upper' in name else 'lower'}({s})", t.STRING
        if name in ("Trim", "TrimStart", "TrimEnd"):
            side = {"Trim": "BOTH", "TrimStart": "LEADING", "TrimEnd": "TRAILING"}[name]
            chars = "concat(" + ", ".join(a) + ")" if a else _WS
            return f"trim({side} {chars} FROM {s})", t.STRING
        if name in ("Contains", "StartsWith", "EndsWith"):
            need(1)
            fn = {"Contains": "contains", "StartsWith": "startswith", "EndsWith": "endswith"}[name]
            return f"{fn}({s}, {a[0]})", t.BOOL
        if name == "Substring":
            need(1, 2)
            if len(a) == 1:
                return f"substring({s}, ({a[0]}) + 1)", t.STRING
            return f"substring({s}, ({a[0]}) + 1, {a[1]})", t.STRING
        if name in ("IndexOf", "LastIndexOf"):
            need(1)
            if name == "IndexOf":
                return f"(instr({s}, {a[0]}) - 1)", t.INT
            return (f"CASE WHEN instr({s}, {a[0]}) = 0 THEN -1 ELSE char_length({s}) - char_length({a[0]}) "
                    f"- instr(reverse({s}), reverse({a[0]})) + 1 END"), t.INT  # fmt: skip
        if name == "Replace":
            need(2)
            return f"replace({s}, {a[0]}, {a[1]})", t.STRING
        if name == "Split":
            if len(a) == 1 and args[0][1].name in ("char", "string"):
                # split() takes a regex; quote the separator so it is matched literally, keep empty trailing parts.
                return f"split({s}, concat('\\\\Q', {a[0]}, '\\\\E'), -1)", UType("SqlArray", True, t.STRING)
            raise self.err(e.pos, "Split", "Split with several separators or options is not supported")
        if name in ("PadLeft", "PadRight"):
            need(1, 2)
            fn = "lpad" if name == "PadLeft" else "rpad"
            pad = a[1] if len(a) == 2 else "' '"
            return f"CASE WHEN char_length({s}) >= {a[0]} THEN {s} ELSE {fn}({s}, {a[0]}, {pad}) END", t.STRING
        raise self.err(e.pos, name, f"method string.{name}(...) is not supported")

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
        name = e.type.name
        typ = t.resolve(e.type)
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
