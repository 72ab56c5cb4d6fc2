"""``@@name@@`` placeholders, replaced by input/output paths and parameter values before compiling."""

from __future__ import annotations

import re
from collections.abc import Mapping

from airflow_provider_amlpipe.usql.errors import UsqlError

_PLACEHOLDER = re.compile(r"@@([A-Za-z_][A-Za-z0-9_]*)@@")


def placeholders(text: str) -> list[str]:
    """The distinct placeholder names in ``text``, in order of first use."""
    return list(dict.fromkeys(m.group(1) for m in _PLACEHOLDER.finditer(text)))


def substitute(text: str, values: Mapping[str, str], *, source_name: str = "script.usql") -> str:
    """Replace every ``@@name@@`` by ``values[name]``; an unknown name raises :class:`UsqlError` at its position."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            line = text.count("\n", 0, m.start()) + 1
            col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
            known = ", ".join(sorted(values)) or "none"
            raise UsqlError(source_name, line, col, "@@placeholder@@", f"no value for @@{name}@@ (known: {known})")
        return values[name]

    return _PLACEHOLDER.sub(repl, text)
