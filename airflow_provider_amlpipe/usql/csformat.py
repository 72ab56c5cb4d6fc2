"""C# format strings, for every SQL dialect: DateTime formats as tokens that a dialect's
:class:`DatetimePatterns` writes as its pattern (strftime here; used by ``ToString(format)`` and ``dateTimeFormat``),
custom numeric formats, and .NET Framework's default text of doubles and floats."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

#: Standard (one-letter) DateTime formats as the custom formats they stand for (en-US, as on Azure Data Lake
#: Analytics).
STANDARD_DATETIME = {
    "O": "yyyy-MM-dd'T'HH:mm:ss.fffffff",
    "o": "yyyy-MM-dd'T'HH:mm:ss.fffffff",
    "s": "yyyy-MM-dd'T'HH:mm:ss",
    "u": "yyyy-MM-dd HH:mm:ss'Z'",
    "d": "M/d/yyyy",
    "D": "dddd, MMMM d, yyyy",
    "t": "h:mm tt",
    "T": "h:mm:ss tt",
    "g": "M/d/yyyy h:mm tt",
    "G": "M/d/yyyy h:mm:ss tt",
    "f": "dddd, MMMM d, yyyy h:mm tt",
    "F": "dddd, MMMM d, yyyy h:mm:ss tt",
}
#: The custom specifiers translated, longest first (a dialect's pattern maps each).
DATETIME_SPECIFIERS = ("fffffff", "ffffff", "fff", "yyyy", "MMMM", "dddd", "MMM", "ddd", "yy", "MM", "dd", "HH",
                       "hh", "mm", "ss", "tt", "M", "d", "H", "h", "m", "s")  # fmt: skip
#: ``DateTime.ToString()``'s format.
DEFAULT_DATETIME = "G"


class FormatError(ValueError):
    """A format string this translator does not handle."""


class DateToken(NamedTuple):
    """A piece of a C# DateTime format: a specifier (``kind`` "spec"), literal text (quoted, escaped or a letter:
    "text") or an unquoted other character ("plain")."""

    kind: str
    value: str


def datetime_tokens(fmt: str) -> list[DateToken]:
    """The pieces of a C# standard or custom DateTime format string; FormatError if one is not supported."""
    if len(fmt) == 1:
        if fmt not in STANDARD_DATETIME:
            raise FormatError(f"standard DateTime format {fmt!r} is not supported")
        fmt = STANDARD_DATETIME[fmt]
    out: list[DateToken] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c in "'\"":
            end = fmt.find(c, i + 1)
            if end < 0:
                raise FormatError(f"unterminated quoted text in DateTime format {fmt!r}")
            out.append(DateToken("text", fmt[i + 1 : end]))
            i = end + 1
            continue
        if c == "\\" and i + 1 < len(fmt):
            out.append(DateToken("text", fmt[i + 1]))
            i += 2
            continue
        if c == "%" and i + 1 < len(fmt):  # "%d" = the single custom specifier d
            i += 1
            continue
        spec = next((sp for sp in DATETIME_SPECIFIERS if fmt.startswith(sp, i)), None)
        if spec is not None:
            out.append(DateToken("spec", spec))
            i += len(spec)
            continue
        if c.isalpha() and c in "fFgKzyMdHhmst":
            raise FormatError(f"DateTime format specifier {c!r} in {fmt!r} is not supported")
        out.append(DateToken("text" if c.isalpha() else "plain", c))
        i += 1
    return out


@dataclass(frozen=True)
class DatetimePatterns:
    """How a SQL dialect writes a DateTime pattern (strftime, Java's DateTimeFormatter...): the pattern of each C#
    specifier in :data:`DATETIME_SPECIFIERS`, and how a run of literal text and a plain character are written."""

    specifiers: Mapping[str, str]
    text: Callable[[str], str]
    plain: Callable[[str], str]

    def render(self, fmt: str) -> str:
        """The dialect's pattern of a C# DateTime format string (FormatError if it has none)."""
        out: list[str] = []
        run: list[str] = []  # consecutive literal text, written as one run
        for kind, value in datetime_tokens(fmt):
            if kind == "text":
                run.append(value)
                continue
            if run:
                out.append(self.text("".join(run)))
                run.clear()
            out.append(self.specifiers[value] if kind == "spec" else self.plain(value))
        if run:
            out.append(self.text("".join(run)))
        return "".join(out)


def _strftime_text(text: str) -> str:
    return text.replace("%", "%%")


#: DateTime patterns of strftime (DuckDB's ``strftime``).
STRFTIME = DatetimePatterns(
    {"fffffff": "%f0", "ffffff": "%f", "fff": "%g", "yyyy": "%Y", "MMMM": "%B", "dddd": "%A", "MMM": "%b",
     "ddd": "%a", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "hh": "%I", "mm": "%M", "ss": "%S", "tt": "%p",
     "M": "%-m", "d": "%-d", "H": "%-H", "h": "%-I", "m": "%-M", "s": "%-S"},
    _strftime_text,
    _strftime_text,
)  # fmt: skip


def to_strftime(fmt: str) -> str:
    """Translate a C# standard or custom DateTime format string to a strftime pattern."""
    return STRFTIME.render(fmt)


DEFAULT_TOSTRING = to_strftime(DEFAULT_DATETIME)


#: Significant digits of .NET Framework's ``ToString()`` ("G" format) of a double and of a float. ADLA ran on .NET
#: Framework 4.x; .NET Core 3.0+ prints the shortest round-trip text instead (``0.6666666666666666``).
DOUBLE_DIGITS = 15
FLOAT_DIGITS = 7


def dotnet_real(v: float, digits: int = DOUBLE_DIGITS) -> str:
    """.NET Framework's ``ToString()`` of a double (``digits`` 15) or float (7): the value rounded to ``digits``
    significant digits, trailing zeros removed, scientific (``1E+20``, ``1E-05``) when the exponent is below -4 or
    at least ``digits``; ``NaN``, ``Infinity``, ``-Infinity``; negative zero prints ``0``.

    These are C's ``%.<digits>G`` rules (the same thresholds, stripping and two-digit exponent; the DuckDB SQL uses
    ``printf``), except for exact ties, which .NET Framework rounds away from zero and C to even."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "0"
    if re.fullmatch(rf"-?[0-9]\.[0-9]{{{digits - 1}}}50*E.*", f"{v:.40E}"):
        v = math.nextafter(v, math.copysign(math.inf, v))
    return f"{v:.{digits}G}"


# ------------------------------------------------------------ custom numeric formats ("0.00", "#,##0", "0%")

#: A .NET standard numeric format (a letter and up to two digits); every other numeric format string is custom.
STANDARD_NUMBER_FORMAT = re.compile(r"[A-Za-z][0-9]{0,2}")


def split_sections(fmt: str) -> list[str]:
    """The ``;``-separated sections of a custom numeric format (quotes and ``\\`` escapes hide a ``;``)."""
    sections, start, i = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c in "'\"":
            end = fmt.find(c, i + 1)
            i = len(fmt) if end < 0 else end + 1
            continue
        if c == "\\":
            i += 2
            continue
        if c == ";":
            sections.append(fmt[start:i])
            start = i + 1
        i += 1
    return [*sections, fmt[start:]]


def find_section(sections: list[str], kind: int) -> int:
    """.NET's choice of section for a positive (0), negative (1) or zero (2) value: a missing or empty one is 0."""
    return kind if kind < len(sections) and sections[kind] != "" else 0


@dataclass(frozen=True)
class NumberSection:
    """One section of a custom numeric format, as .NET Framework reads it (``Number.NumberToStringFormat``).

    ``items`` are ``("text", s)``, ``("int", "")`` (an integer digit placeholder), ``("point", "")`` (the first
    ``.``) and ``("frac", "")``; ``forced`` integer digits and ``min_decimals`` come from the ``0`` placeholders,
    ``shift`` is the power of ten the value is multiplied by (``%`` +2, ``‰`` +3, a scaling ``,`` -3)."""

    items: tuple[tuple[str, str], ...]
    int_digits: int
    forced: int
    max_decimals: int
    min_decimals: int
    grouped: bool
    shift: int


def parse_section(text: str) -> NumberSection:
    """Read one section; raises FormatError for the exponent forms (``0.0E+00``), which are not translated."""
    items: list[tuple[str, str]] = []
    digit_count, decimal_pos, first_zero, last_zero = 0, -1, -1, 0
    thousand_pos, thousand_count, grouped, shift = -1, 0, False, 0
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if c in "#0":
            if c == "0" and first_zero < 0:
                first_zero = digit_count
            digit_count += 1
            last_zero = digit_count if c == "0" else last_zero
            items.append(("frac" if decimal_pos >= 0 else "int", ""))
        elif c == ".":
            if decimal_pos < 0:
                decimal_pos = digit_count
                items.append(("point", ""))
        elif c == ",":
            if digit_count > 0 and decimal_pos < 0:
                if thousand_pos == digit_count:
                    thousand_count += 1
                    continue
                grouped = grouped or thousand_pos >= 0
                thousand_pos, thousand_count = digit_count, 1
        elif c in "'\"":
            end = text.find(c, i)
            end = len(text) if end < 0 else end
            items.append(("text", text[i:end]))
            i = end + 1
        elif c == "\\":
            items.append(("text", text[i : i + 1]))
            i += 1
        elif c in "Ee" and re.match(r"[+-]?0", text[i:]):
            raise FormatError(f"exponent notation ({c}+0) in custom numeric formats is not supported")
        else:
            shift += {"%": 2, "\u2030": 3}.get(c, 0)
            items.append(("text", c))
    if decimal_pos < 0:
        decimal_pos = digit_count
    if thousand_pos >= 0:
        if thousand_pos == decimal_pos:
            shift -= 3 * thousand_count
        else:
            grouped = True
    return NumberSection(
        items=tuple(items),
        int_digits=decimal_pos,
        forced=decimal_pos - first_zero if 0 <= first_zero < decimal_pos else 0,
        max_decimals=digit_count - decimal_pos,
        min_decimals=max(last_zero - decimal_pos, 0),
        grouped=grouped,
        shift=shift,
    )


def number_digits(v: int | float | Decimal, digits: int = DOUBLE_DIGITS) -> tuple[str, int, bool]:
    """.NET's NUMBER of a value: (significant digits, scale, negative) with value = 0.digits * 10**scale; a double
    keeps ``digits`` (15; a float 7) significant digits, ties away from zero as in ``dotnet_real``."""
    if isinstance(v, float):
        if v != 0 and re.fullmatch(rf"-?[0-9]\.[0-9]{{{digits - 1}}}50*E.*", f"{v:.40E}"):
            v = math.nextafter(v, math.copysign(math.inf, v))
        mantissa, exp = f"{abs(v):.{digits - 1}E}".split("E")
        text, scale = mantissa.replace(".", ""), int(exp) + 1
    else:
        _, dec_digits, dec_exp = Decimal(v).as_tuple()
        text, scale = "".join(map(str, dec_digits)), len(dec_digits) + int(dec_exp)
    stripped = text.lstrip("0")
    scale -= len(text) - len(stripped)
    return stripped.rstrip("0"), scale, v < 0


def custom_number(v: int | float | Decimal, fmt: str, digits: int = DOUBLE_DIGITS) -> str:
    """``v.ToString(fmt)`` for a custom numeric format, invariant culture, as .NET Framework's
    ``Number.NumberToStringFormat`` (a port without the exponent forms; ``digits`` as in ``number_digits``)."""
    if isinstance(v, float) and not math.isfinite(v):
        return dotnet_real(v)
    dig, scale, negative = number_digits(v, digits)
    sections = split_sections(fmt)
    section = find_section(sections, 2 if not dig else 1 if negative else 0)
    while True:
        spec = parse_section(sections[section])
        if dig:
            scale += spec.shift
            dig, scale = _round_number(dig, scale, scale + spec.max_decimals)
            zero = find_section(sections, 2)
            if not dig and zero != section:
                section = zero
                continue
        if not dig:
            negative, scale = False, 0
        break
    sign = "-" if negative and section == 0 else ""
    return sign + _render(sections[section], dig, scale, spec)


def _round_number(dig: str, scale: int, pos: int) -> tuple[str, int]:
    """.NET's ``RoundNumber``: keep ``pos`` digits, half away from zero (zero has scale 0)."""
    if 0 <= pos < len(dig) and dig[pos] >= "5":
        head = str(int(dig[:pos] or "0") + 1) if pos else "1"
        if len(head) > pos:
            scale += 1
        dig = head
    else:
        dig = dig[: max(pos, 0)]
    dig = dig.rstrip("0")
    return (dig, scale) if dig else ("", 0)


def _render(text: str, dig: str, scale: int, spec: NumberSection) -> str:
    """.NET's output loop for a rounded NUMBER (the sign is added by the caller)."""
    decimal_pos = spec.int_digits
    first_digit, last_digit = spec.forced, -spec.min_decimals
    dig_pos, adjust = max(scale, decimal_pos), scale - decimal_pos
    seps: list[int] = []
    if spec.grouped:
        total = max(first_digit, dig_pos + min(adjust, 0))
        seps = list(range(3, total, 3))
    out: list[str] = []
    cur = 0

    def put(ch: str) -> None:
        """A digit at position ``dig_pos``, then a group separator when one follows it."""
        out.append(ch)
        if seps and dig_pos > 1 and dig_pos == seps[-1] + 1:
            out.append(",")
            seps.pop()

    point_written = False
    i = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == ";":
            break
        if adjust > 0 and ch in "#0.":
            while adjust > 0:
                put(dig[cur] if cur < len(dig) else "0")
                cur += 1
                dig_pos -= 1
                adjust -= 1
        if ch in "#0":
            if adjust < 0:
                adjust += 1
                digit = "0" if dig_pos <= first_digit else ""
            elif cur < len(dig):
                digit = dig[cur]
                cur += 1
            else:
                digit = "0" if dig_pos > last_digit else ""
            if digit:
                put(digit)
            dig_pos -= 1
        elif ch == ".":
            if dig_pos == 0 and not point_written and (last_digit < 0 or (spec.max_decimals and cur < len(dig))):
                out.append(".")
                point_written = True
        elif ch in "'\"":
            end = text.find(ch, i)
            end = len(text) if end < 0 else end
            out.append(text[i:end])
            i = end + 1
        elif ch == "\\":
            out.append(text[i : i + 1])
            i += 1
        elif ch != ",":
            out.append(ch)
    return "".join(out)


#: One item of a .NET composite format string: ``{index[,alignment][:format]}``.
_FORMAT_ITEM = re.compile(r"\{(\d+)\s*(?:,\s*(-?\d+)\s*)?(?::([^{}]*))?\}")


def parse_composite_format(fmt: str) -> list[str | tuple[int, int | None, str | None]]:
    """The pieces of a .NET composite format string: literal text and (index, alignment, format) items.

    ``{{`` and ``}}`` are escaped braces. Raises FormatError for a malformed string (.NET: FormatException).
    """
    pieces: list[str | tuple[int, int | None, str | None]] = []
    text: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c in "{}" and fmt[i + 1 : i + 2] == c:
            text.append(c)
            i += 2
            continue
        if c == "}":
            raise FormatError("a '}' in a format string must be written '}}'")
        if c == "{":
            m = _FORMAT_ITEM.match(fmt, i)
            if m is None:
                raise FormatError(f"malformed format item at {fmt[i:]!r} (use {{index[,alignment][:format]}})")
            pieces.append("".join(text))
            text = []
            align = int(m.group(2)) if m.group(2) is not None else None
            pieces.append((int(m.group(1)), align, m.group(3)))
            i = m.end()
            continue
        text.append(c)
        i += 1
    pieces.append("".join(text))
    return [x for x in pieces if x != ""]
