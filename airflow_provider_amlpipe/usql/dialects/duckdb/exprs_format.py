"""C# ToString() and formatting: ToString(format), String.Format, standard and custom numeric formats."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.csformat import (
    FLOAT_DIGITS,
    STANDARD_NUMBER_FORMAT,
    FormatError,
    NumberSection,
    custom_number,
    find_section,
    parse_section,
    split_sections,
    to_strftime,
)
from airflow_provider_amlpipe.usql.exprs_common import lit
from airflow_provider_amlpipe.usql.translator import Translator
from airflow_provider_amlpipe.usql.types import UType

if TYPE_CHECKING:
    pass


#: The numeric standard formats supported: D (integral), X/x (integral), F and N; with an optional precision.
_NUMBER_FORMAT = re.compile(r"([DdXxFfNn])(\d{0,2})")
#: Two's complement offsets for X formats of negative values narrower than 64 bits.
_HEX_WRAP = {"sbyte": 2**8, "short": 2**16, "int": 2**32}


def custom_number_sql(s: str, st: UType, fmt: str) -> str:
    """``x.ToString(fmt)`` for a custom numeric format (``0.00``, ``#,##0``, ``0%``, ``0;(0);-``) as DuckDB SQL;
    ``csformat.custom_number`` is the reference. A value that rounds to zero in its section prints the zero
    section (or section 0) with no sign; NaN and infinities print as in ``ToString()``."""
    sections = split_sections(fmt)
    for section in sections[:3]:
        parse_section(section)  # refuses the exponent forms of every section
    zero = lit(custom_number(0, fmt))
    negative = find_section(sections, 1)
    pos = _custom_section_sql(s, st, parse_section(sections[0]), zero, "")
    neg = _custom_section_sql(s, st, parse_section(sections[negative]), zero, "'-', " if negative == 0 else "")
    sql = f"CASE WHEN {s} IS NULL THEN NULL WHEN {s} < 0 THEN {neg} ELSE {pos} END"
    if st.name in ("double", "float"):
        real = f"usql_fmt_{'real' if st.name == 'double' else 'float'}"
        return f"CASE WHEN NOT isfinite({s}) THEN {real}({s}) ELSE {sql} END"
    return f"({sql})"


def _let(value: str, name: str, body: str) -> str:
    """``body`` with ``name`` bound to ``value``, computed once (macros would repeat the expression)."""
    return f"list_transform([{value}], lambda {name}: {body})[1]"


def _custom_digits_sql(s: str, st: UType, shift: int) -> str:
    """The digits of round(|s| * 10^shift) (half away from zero, a double first rounded to 15 significant digits,
    a float to 7), without leading zeros: '' when that is 0."""
    if st.is_integral:
        return f"usql_cfmt_n(CAST(abs(CAST({s} AS HUGEINT)) AS VARCHAR), {shift})"
    if st.name == "decimal":
        body = f"usql_cfmt_n(replace(usql_t, '.', ''), {shift} - length(split_part(usql_t, '.', 2)))"
        return _let(f"CAST(abs({s}) AS VARCHAR)", "usql_t", body)
    digits = FLOAT_DIGITS if st.name == "float" else 15
    body = (f"usql_cfmt_n(replace(split_part(usql_t, 'E', 1), '.', ''), "
            f"{shift - digits + 1} + CAST(split_part(usql_t, 'E', 2) AS INTEGER))")  # fmt: skip
    return _let(f"usql_fmt_{'real' if st.name == 'double' else 'float'}_e({s})", "usql_t", body)


def _custom_section_sql(s: str, st: UType, spec: NumberSection, zero: str, sign: str) -> str:
    """The text of a value in one section: ``zero`` if it rounds to zero, else ``sign`` (a SQL string and a comma,
    or "") and the section's text: literal text in place, the integer digits at the integer placeholders (those
    beyond the placeholders at the first), the fraction digits at the fraction placeholders."""
    d = spec.max_decimals
    whole = f"usql_cfmt_int(usql_d, {d}, {spec.forced}, {'true' if spec.grouped else 'false'})"
    frac = f"usql_cfmt_frac(usql_d, {d}, {spec.min_decimals})"
    runs: list[tuple[str, int]] = []  # ("text", index in texts) | ("int"/"frac"/"point", run length)
    texts: list[str] = []
    for kind, text in spec.items:
        if kind == "text":
            texts.append(text)
            runs.append(("text", len(texts) - 1))
        elif kind != "point" and runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + 1)
        else:
            runs.append((kind, 1))
    if spec.grouped and sum(kind == "int" for kind, _ in runs) > 1:
        raise FormatError("digit grouping (,) with text between the integer digit placeholders is not supported")
    parts: list[str] = []
    high, low_frac = spec.int_digits, 1  # the digit position (from the right) of the next integer placeholder
    for kind, count in runs:
        if kind == "text":
            parts.append(lit(texts[count]))
        elif kind == "int":
            low = high - count + 1
            if high == spec.int_digits:  # the first placeholders also take the digits beyond them
                parts.append(f"left(usql_w, greatest(length(usql_w) - {low - 1}, 0))")
            else:
                start = f"greatest(length(usql_w) - {high - 1}, 1)"
                parts.append(f"substring(usql_w, {start}, greatest(least({high}, length(usql_w)) - {low - 1}, 0))")
            high = low - 1
        elif kind == "point":
            if spec.int_digits == 0:  # no integer placeholder: the integer digits come before the point
                parts.append("usql_w")
            if d:
                parts.append("'.'" if spec.min_decimals else "CASE WHEN usql_f = '' THEN '' ELSE '.' END")
        else:
            parts.append(f"substring(usql_f, {low_frac}, {count})")
            low_frac += count
    text = _let(whole, "usql_w", _let(frac, "usql_f", f"concat({sign}{', '.join(parts or ['NULL'])})"))
    digits = _custom_digits_sql(s, st, spec.shift + d)
    return _let(digits, "usql_d", f"CASE WHEN usql_d = '' THEN {zero} ELSE {text} END")


class Formatting(Translator):
    """DuckDB's ToString(format): DateTime formats as strftime patterns, numeric formats."""

    def _format_datetime(self, s: str, spec: str, pos: n.Pos) -> str:
        return f"strftime({s}, {lit(to_strftime(spec))})"

    def _format_number(self, s: str, st: UType, spec: str, pos: n.Pos) -> str:
        return self._number_format(s, st, spec)

    def _number_format(self, s: str, st: UType, spec: str) -> str:
        """.NET standard numeric formats D[n], X[n], F[n], N[n] (en-US; F/N default to 2 decimals, round half
        away from zero; a double is first rounded to 15 significant digits, a float to 7, as .NET Framework) and
        custom formats (``custom_number_sql``)."""
        if spec == "":  # .NET: an empty format is the default ("G")
            return self._tostring(s, st)
        if not STANDARD_NUMBER_FORMAT.fullmatch(spec):
            return custom_number_sql(s, st, spec)
        m = _NUMBER_FORMAT.fullmatch(spec)
        if m is None:
            raise FormatError(f"numeric format {spec!r} is not supported (supported: D, X, F, N with a precision, "
                              "custom formats such as 0.00 or #,##0)")  # fmt: skip
        kind, digits = m.group(1).upper(), m.group(2)
        if kind in ("D", "X") and not st.is_integral:
            raise FormatError(f"format {spec!r} is only for integral types, not {st}")
        if kind == "D":
            text = f"CAST(abs(CAST({s} AS HUGEINT)) AS VARCHAR)"
            width = int(digits or 0)
            padded = f"lpad({text}, CAST(greatest({width}, length({text})) AS INTEGER), '0')" if width else text
            return f"(CASE WHEN {s} < 0 THEN '-' ELSE '' END || {padded})"
        if kind == "X":
            wrap = _HEX_WRAP.get(st.name)
            v = f"CASE WHEN {s} < 0 THEN CAST({s} AS BIGINT) + {wrap} ELSE {s} END" if wrap else s
            return f"printf('%0{int(digits or 0)}{m.group(1)}', {v})"
        decimals = int(digits) if digits else 2
        point = f" || '.{'0' * decimals}'" if decimals else ""
        if st.is_integral:
            return f"(format('{{:,}}', {s}){point})" if kind == "N" else f"(CAST({s} AS VARCHAR){point})"
        if st.name == "decimal":
            rounded = f"round({s}, {decimals})"
        else:
            sig = 14 if st.name == "double" else 6
            rounded = f"round(CAST(printf('%.{sig}e', {s}) AS DECIMAL(38,18)), {decimals})"
        text = f"format('{{:{',' if kind == 'N' else ''}.{decimals}f}}', CAST({rounded} AS DOUBLE))"
        if st.name == "decimal":
            return text
        return f"CASE WHEN isfinite({s}) THEN {text} ELSE usql_fmt_real({s}) END"
