"""C# DateTime format strings -> strftime patterns (used by ``ToString(format)`` and ``dateTimeFormat``)."""

from __future__ import annotations

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
