"""Shared basics of the expression translators: typed SQL, quoting and scopes."""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_amlpipe.usql.types import UType

Typed = tuple[str, UType]


def q(name: str) -> str:
    """A quoted identifier (standard SQL, as DuckDB writes it)."""
    return '"' + name.replace('"', '""') + '"'


def lit(s: str) -> str:
    """A string literal (standard SQL, as DuckDB writes it)."""
    return "'" + s.replace("'", "''") + "'"


@dataclass
class Scope:
    """Columns visible to an expression: ``(alias, column, type)``; alias None for unqualified output scopes."""

    columns: list[tuple[str | None, str, UType]] = field(default_factory=list)
    select_aliases: dict[str, Typed] = field(default_factory=dict)
    #: lambda parameters in scope (they shadow columns): C# name -> typed SQL
    locals: dict[str, Typed] = field(default_factory=dict)

    def aliases(self) -> set[str]:
        return {a for a, _, _ in self.columns if a is not None}

    def find(self, name: str, alias: str | None = None) -> list[tuple[str | None, str, UType]]:
        return [c for c in self.columns if c[1] == name and (alias is None or c[0] == alias)]
