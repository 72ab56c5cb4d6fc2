"""U-SQL file set patterns (``/data/{date:yyyy}/{date:MM}/{name}.csv``): parsing, glob and regex (dialect-neutral).

A pattern is literal path text with ``{column}`` or ``{column:*}`` (binds a virtual column to the text it matches),
``{column:part}`` (a date part: ``yyyy MM dd HH mm ss``, also ``M d H m s``; all parts of one column build
one DateTime; a part may repeat, e.g. ``/{d:yyyy}/{d:MM}/data_{d:yyyy}{d:MM}.csv``, and must then agree) and
``{*}`` (matches anything, binds nothing). Every placeholder matches within one path segment (no ``/``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Date part -> (regex of its digits, position in (year, month, day, hour, minute, second)).
DATE_PARTS: dict[str, tuple[str, int]] = {
    "yyyy": (r"\d{4}", 0),
    "MM": (r"\d{2}", 1),
    "M": (r"\d{1,2}", 1),
    "dd": (r"\d{2}", 2),
    "d": (r"\d{1,2}", 2),
    "HH": (r"\d{2}", 3),
    "H": (r"\d{1,2}", 3),
    "mm": (r"\d{2}", 4),
    "m": (r"\d{1,2}", 4),
    "ss": (r"\d{2}", 5),
    "s": (r"\d{1,2}", 5),
}
_GLOB_SPECIAL = set("*?[]")


class FileSetError(ValueError):
    """A malformed pattern; ``offset`` is the character offset inside the pattern text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Placeholder:
    """One ``{...}``: ``column`` None for ``{*}``; ``part`` a date part or None."""

    column: str | None
    part: str | None
    group: int  # regex capture group number (1-based), 0 for {*}


@dataclass(frozen=True)
class FileSet:
    """A parsed pattern: a glob for the files, a full-match regex with one group per bound placeholder."""

    pattern: str
    glob: str
    regex: str
    placeholders: tuple[Placeholder, ...]

    @property
    def repeated_parts(self) -> list[tuple[Placeholder, Placeholder]]:
        """Pairs of placeholders giving the same date part of one column (``{d:MM}`` twice): a file is in
        the set only if they agree (U-SQL: "if a pattern is conflicting with another pattern then no path
        will be found")."""
        first: dict[tuple[str, int], Placeholder] = {}
        pairs: list[tuple[Placeholder, Placeholder]] = []
        for h in self.placeholders:
            if h.column is None or h.part is None:
                continue
            key = (h.column, DATE_PARTS[h.part][1])
            if key in first:
                pairs.append((first[key], h))
            else:
                first[key] = h
        return pairs

    @property
    def columns(self) -> dict[str, list[Placeholder]]:
        """Bound column name -> its placeholders, in pattern order."""
        out: dict[str, list[Placeholder]] = {}
        for p in self.placeholders:
            if p.column is not None:
                out.setdefault(p.column, []).append(p)
        return out


def is_file_set(path: str) -> bool:
    """True if ``path`` contains a ``{...}`` placeholder."""
    return "{" in path


def parse_file_set(pattern: str, *, repeated_parts: bool = False) -> FileSet:
    """Parse a file set pattern (absolute path text); raises :class:`FileSetError`.

    ``repeated_parts``: the caller checks :attr:`FileSet.repeated_parts` (otherwise a date part given
    twice for one column is refused)."""
    glob: list[str] = []
    regex: list[str] = ["^"]
    holders: list[Placeholder] = []
    seen_plain: set[str] = set()
    seen_parts: set[tuple[str, int]] = set()
    i = 0
    group = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "}":
            raise FileSetError("'}' without '{' in the file set pattern", i)
        if c != "{":
            if c in _GLOB_SPECIAL:
                raise FileSetError(f"the character {c!r} is not allowed in a file set pattern", i)
            glob.append(c)
            regex.append(re.escape(c))
            i += 1
            continue
        end = pattern.find("}", i)
        if end < 0:
            raise FileSetError("'{' without '}' in the file set pattern", i)
        body = pattern[i + 1 : end]
        if body == "*":
            holders.append(Placeholder(None, None, 0))
            regex.append("[^/]*")
        else:
            name, _, part = body.partition(":")
            part = "" if part == "*" else part  # {col:*} (in Microsoft's samples) is {col}
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise FileSetError(f"{{{body}}} is not a placeholder: use {{column}}, {{column:yyyy}} or {{*}}", i)
            if part:
                if part not in DATE_PARTS:
                    raise FileSetError(
                        f"unknown date part {part!r} in {{{body}}} (use {', '.join(DATE_PARTS)})",
                        i,
                    )
                slot = DATE_PARTS[part][1]
                if (name, slot) in seen_parts and not repeated_parts:
                    raise FileSetError(f"the date part of {{{body}}} appears twice for column {name!r}", i)
                seen_parts.add((name, slot))
                rx = DATE_PARTS[part][0]
            else:
                if name in seen_plain:
                    raise FileSetError(f"column {name!r} appears twice in the file set pattern", i)
                seen_plain.add(name)
                rx = "[^/]*?"
            group += 1
            holders.append(Placeholder(name, part or None, group))
            regex.append(f"({rx})")
        if not glob or glob[-1] != "*":
            glob.append("*")
        i = end + 1
    regex.append("$")
    for name in seen_plain:
        if any(n == name for n, _ in seen_parts):
            raise FileSetError(f"column {name!r} is used both as {{{name}}} and with date parts", 0)
    return FileSet(pattern, "".join(glob), "".join(regex), tuple(holders))
