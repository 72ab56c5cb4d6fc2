"""Spark SQL values of C# semantics for the Spark dialect: its types and literals, .NET's text of doubles (the
``ToString()`` templates of ``exprs.py`` use it), ``Parse`` of each type, and C# DateTime formats as Spark datetime
patterns."""

from __future__ import annotations

from airflow_provider_amlpipe.usql.csformat import DEFAULT_DATETIME, DatetimePatterns
from airflow_provider_amlpipe.usql.exprs_common import MAX_DECIMAL_SCALE
from airflow_provider_amlpipe.usql.types import UType

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

_WS = "' \\t\\r\\n'"
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
#: The largest value of each unsigned type (Spark has no unsigned types: byte is SMALLINT, ...).
_UNSIGNED_MAX = {"byte": 255, "ushort": 65535, "uint": 4294967295, "ulong": 18446744073709551615}


def spark_type(typ: UType) -> str:
    """The Spark SQL type of a U-SQL type."""
    if typ.name == "SqlArray":
        return f"ARRAY<{spark_type(typ.element) if typ.element else 'STRING'}>"
    if typ.name == "SqlMap":
        key = spark_type(typ.key) if typ.key else "STRING"
        return f"MAP<{key}, {spark_type(typ.element) if typ.element else 'STRING'}>"
    return SPARK_TYPES.get(typ.name, "STRING")


def spark_column_type(typ: UType) -> str:
    """The Spark SQL type of a column of type ``typ``: a decimal column holds (value, scale) pairs."""
    return "STRUCT<v: DECIMAL(38,10), s: INT>" if typ.name == "decimal" else spark_type(typ)


def decimal_text(value: str, scale: str) -> str:
    """A decimal's text with its scale: the shortest text, padded with zeros to the scale (never cut)."""
    text = DECIMAL_TEXT.format(value)
    dot = f"instr({text}, '.')"
    digits = f"CASE WHEN {dot} = 0 THEN 0 ELSE char_length({text}) - {dot} END"
    wanted = f"CASE WHEN {scale} > {MAX_DECIMAL_SCALE} THEN {MAX_DECIMAL_SCALE} ELSE {scale} END"
    return (f"CASE WHEN {scale} IS NULL OR {wanted} <= {digits} THEN {text} "
            f"WHEN {dot} = 0 THEN concat({text}, '.', repeat('0', {wanted})) "
            f"ELSE concat({text}, repeat('0', {wanted} - {digits})) END")  # fmt: skip


#: A decimal's shortest text (no trailing zeros); ``{0}`` is the value.
DECIMAL_TEXT = "regexp_replace(CAST({0} AS STRING), '(\\\\.[0-9]*[1-9])0+$|\\\\.0+$', '$1')"


def bq(name: str) -> str:
    """A quoted Spark identifier."""
    return "`" + name.replace("`", "``") + "`"


def slit(s: str) -> str:
    """A Spark SQL string literal (Spark unescapes backslashes in literals by default)."""
    out = s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return "'" + out + "'"


# ---------------------------------------------------------------- C# DateTime formats -> Spark patterns


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: DateTime patterns of Spark (Java's DateTimeFormatter): letters of literal text are quoted.
SPARK_DATETIME = DatetimePatterns(
    {"fffffff": "SSSSSSS", "ffffff": "SSSSSS", "fff": "SSS", "yyyy": "yyyy", "MMMM": "MMMM", "dddd": "EEEE",
     "MMM": "MMM", "ddd": "EEE", "yy": "yy", "MM": "MM", "dd": "dd", "HH": "HH", "hh": "hh", "mm": "mm", "ss": "ss",
     "tt": "a", "M": "M", "d": "d", "H": "H", "h": "h", "m": "m", "s": "s"},
    _quoted,
    str,
)  # fmt: skip
DEFAULT_TOSTRING = SPARK_DATETIME.render(DEFAULT_DATETIME)


def to_spark_pattern(fmt: str) -> str:
    """Translate a C# standard or custom DateTime format string to a Spark datetime pattern."""
    return SPARK_DATETIME.render(fmt)


# ---------------------------------------------------------------- value conversions


def dotnet_real(sql: str, digits: int) -> str:
    """.NET Framework's ``ToString()`` of a double/float (see ``csformat.dotnet_real``) as Spark SQL.

    Java's ``%G`` rounds the shortest round-trip text half up (``5774.785714285715`` -> ``...572``, where the exact
    binary value gives ``...571``), so the digits come from ``format_number``'s DecimalFormat, which rounds the
    exact value (half to even): first in scientific form (``digits`` significant digits; its exponent decides the
    notation as in .NET), then, for fixed notation, with the decimals that leave ``digits`` significant digits.
    An exact tie (see :func:`_exact_tie`) is first moved away from zero (by one or two ulps), as .NET Framework
    rounds ties away from zero. The lambdas evaluate each intermediate value once."""
    sci = f"format_number(usql_n, '0.{'#' * (digits - 1)}E0')"
    e = "CAST(substring_index(usql_s, 'E', -1) AS INT)"
    decimals = f"CASE WHEN {e} < {digits - 1} THEN concat('.', repeat('#', {digits - 1} - {e})) ELSE '' END"
    # at least two exponent digits (lpad would cut 308 to 30)
    exponent = (
        f"concat(CASE WHEN {e} < 0 THEN '-' ELSE '+' END, CASE WHEN abs({e}) < 10 THEN '0' ELSE '' END, abs({e}))"
    )
    text = (
        f"transform(array({sci}), usql_s -> CASE WHEN {e} BETWEEN -4 AND {digits - 1} "
        f"THEN format_number(usql_n, concat('0', {decimals})) "
        f"ELSE concat(substring_index(usql_s, 'E', 1), 'E', {exponent}) END)[0]"
    )
    nudged = f"CASE WHEN {_exact_tie('usql_r', digits)} THEN usql_r * 1.0000000000000002D ELSE usql_r END"
    return (
        f"transform(array(CAST({sql} AS DOUBLE)), usql_r -> CASE WHEN usql_r IS NULL THEN NULL "
        "WHEN isnan(usql_r) THEN 'NaN' WHEN usql_r = CAST('Infinity' AS DOUBLE) THEN 'Infinity' "
        f"WHEN usql_r = CAST('-Infinity' AS DOUBLE) THEN '-Infinity' WHEN usql_r = 0 THEN '0' "
        f"ELSE transform(array({nudged}), usql_n -> {text})[0] END)[0]"
    )


def _exact_tie(x: str, digits: int) -> str:
    """Whether the exact value of the double ``x`` has ``digits + 1`` significant digits, the last a 5.

    Such a value's shortest round-trip text T (DecimalFormat with up to 17 digits) has those digits t, with
    T = t * 10^k; T is the exact binary value iff it is representable: for k >= 0 the odd t * 5^k < 2^53, for
    k = -n < 0 5^n divides t and t / 5^n < 2^53 (t < 10^17 < 5^25, so n <= 22 keeps 5^n exact in a double)."""
    t = "CAST(usql_g AS BIGINT)"
    k = f"(CAST(substring_index(usql_h, 'E', -1) AS INT) - {digits})"
    five = f"CAST(pow(5, -{k}) AS BIGINT)"
    exact = (
        f"CASE WHEN {k} >= 0 THEN CAST({t} AS DOUBLE) * pow(5, {k}) < 9007199254740992D "
        f"ELSE -{k} <= 22 AND pmod({t}, {five}) = 0 AND {t} div {five} < 9007199254740992 END"
    )
    check = f"length(usql_g) = {digits + 1} AND usql_g LIKE '%5' AND {exact}"
    digits_of = "regexp_replace(substring_index(usql_h, 'E', 1), '[-.]', '')"
    return (
        f"transform(array(format_number({x}, '0.{'#' * 16}E0')), usql_h -> "
        f"transform(array({digits_of}), usql_g -> {check})[0])[0]"
    )


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
    if target in _UNSIGNED_MAX:
        # Spark holds these in wider signed types, whose casts would accept -1 or 300 for a byte; DECIMAL's cast
        # would also round "1.5", so only C#'s integer form is cast
        text = f"trim(BOTH {_WS} FROM {sql})"
        value = f"try_cast(CASE WHEN {text} RLIKE '^[+-]?[0-9]+$' THEN {text} END AS DECIMAL(38,0))"
        in_range = f"{value} BETWEEN 0 AND {_UNSIGNED_MAX[target]}"
        return f"CASE WHEN {in_range} THEN CAST({value} AS {SPARK_TYPES[target]}) END"
    return f"try_cast(trim({sql}) AS {SPARK_TYPES[target]})"


def strict_parse(sql: str, target: str, what: str) -> str:
    """C# ``T.Parse(s)``: NULL stays NULL, text that does not convert fails the query."""
    if target == "string":
        return sql
    message = slit(f"{what}: the value does not convert to {target}: ")
    fail = f"raise_error(concat({message}, {sql}))"
    return f"CASE WHEN {sql} IS NULL THEN NULL ELSE coalesce({try_parse(sql, target)}, {fail}) END"
