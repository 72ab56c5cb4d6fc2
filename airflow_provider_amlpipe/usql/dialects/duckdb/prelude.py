"""The SQL prelude of the DuckDB emitter: the ``usql_*`` macros (C#-compatible number formatting, parsing and
conversion checks) that every compiled script runs first."""

from __future__ import annotations

from airflow_provider_amlpipe.usql.csformat import DOUBLE_DIGITS, FLOAT_DIGITS
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs import STRICT_INTEGER
from airflow_provider_amlpipe.usql.exprs_common import MAX_DECIMAL_SCALE


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


#: Custom numeric formats (``exprs.custom_number_sql``, ``csformat.custom_number``):
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
    # a decimal with its scale: the shortest text, padded with zeros to the scale (never cut: see decimal_scale)
    "CREATE OR REPLACE TEMP MACRO usql_decimals(t) AS CASE WHEN strpos(t, '.') = 0 THEN 0 "
    "ELSE length(t) - strpos(t, '.') END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_pad_decimal(t, s) AS CASE WHEN s IS NULL OR s <= usql_decimals(t) THEN t "
    "WHEN strpos(t, '.') = 0 THEN t || '.' || repeat('0', s) ELSE t || repeat('0', s - usql_decimals(t)) END;\n"
    "CREATE OR REPLACE TEMP MACRO usql_fmt_decimal_scaled(x, s) AS usql_pad_decimal(usql_fmt_decimal(x), "
    f"CASE WHEN s > {MAX_DECIMAL_SCALE} THEN {MAX_DECIMAL_SCALE} ELSE s END);\n"
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
