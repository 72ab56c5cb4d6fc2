"""C# DateTime format strings -> strftime patterns (used by ``ToString(format)`` and ``dateTimeFormat``), and
.NET Framework's default text of doubles and floats."""

from __future__ import annotations

import math
import re

#: Standard (one-letter) formats, en-US culture as on Azure Data Lake Analytics.
_STANDARD = {
    "O": "%Y-%m-%dT%H:%M:%S.%f0",
    "o": "%Y-%m-%dT%H:%M:%S.%f0",
    "s": "%Y-%m-%dT%H:%M:%S",
    "u": "%Y-%m-%d %H:%M:%SZ",
    "d": "%-m/%-d/%Y",
    "D": "%A, %B %-d, %Y",
    "t": "%-I:%M %p",
    "T": "%-I:%M:%S %p",
    "g": "%-m/%-d/%Y %-I:%M %p",
    "G": "%-m/%-d/%Y %-I:%M:%S %p",
    "f": "%A, %B %-d, %Y %-I:%M %p",
    "F": "%A, %B %-d, %Y %-I:%M:%S %p",
}

#: Custom specifiers, longest first.
_CUSTOM = [
    ("fffffff", "%f0"), ("ffffff", "%f"), ("fff", "%g"), ("yyyy", "%Y"), ("MMMM", "%B"), ("dddd", "%A"),
    ("MMM", "%b"), ("ddd", "%a"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("hh", "%I"),
    ("mm", "%M"), ("ss", "%S"), ("tt", "%p"), ("M", "%-m"), ("d", "%-d"), ("H", "%-H"), ("h", "%-I"),
    ("m", "%-M"), ("s", "%-S"),
]  # fmt: skip

DEFAULT_TOSTRING = _STANDARD["G"]


class FormatError(ValueError):
    """A format string this translator does not handle."""


def to_strftime(fmt: str) -> str:
    """Translate a C# standard or custom DateTime format string to a strftime pattern."""
    if len(fmt) == 1:
        if fmt in _STANDARD:
            return _STANDARD[fmt]
        raise FormatError(f"standard DateTime format {fmt!r} is not supported")
    out: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c in "'\"":
            end = fmt.find(c, i + 1)
            if end < 0:
                raise FormatError(f"unterminated quoted text in DateTime format {fmt!r}")
            out.append(fmt[i + 1 : end].replace("%", "%%"))
            i = end + 1
            continue
        if c == "\\" and i + 1 < len(fmt):
            out.append(fmt[i + 1].replace("%", "%%"))
            i += 2
            continue
        if c == "%" and i + 1 < len(fmt):  # "%d" = the single custom specifier d
            i += 1
            continue
        for spec, pat in _CUSTOM:
            if fmt.startswith(spec, i):
                out.append(pat)
                i += len(spec)
                break
        else:
            if c.isalpha() and c in "fFgKzyMdHhmst":
                raise FormatError(f"DateTime format specifier {c!r} in {fmt!r} is not supported")
            out.append("%%" if c == "%" else c)
            i += 1
    return "".join(out)


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
