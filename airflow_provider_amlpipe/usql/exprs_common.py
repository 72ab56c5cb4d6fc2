"""Shared basics of the expression translators: typed SQL, quoting and scopes."""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_amlpipe.usql.types import UType

Typed = tuple[str, UType]

#: The most digits after the point a decimal keeps here (its values are ``DECIMAL(38,10)``; C# keeps up to 28).
MAX_DECIMAL_SCALE = 10


class ScaledSql(str):
    """The SQL of a decimal value that also knows the SQL of its scale.

    A C# decimal carries its own scale per value (``2.50m`` prints ``2.50``, ``2.50m * 2`` prints ``5.00``),
    which a SQL ``DECIMAL(p,s)`` column cannot hold; so a decimal column is a pair (value, scale) and each
    expression computes its scale beside its value. The scale rides on the SQL text so that every
    translator method keeps its ``(sql, type)`` shape: a method that knows the scale of its result returns a
    ``ScaledSql``; one that builds new text from it returns a plain ``str``, whose scale is unknown and which
    prints with no trailing zeros (the shortest text of the value).
    """

    scale: str
    #: The decimal column (the pair) this is the value of, when it is a column read as it is.
    column: str | None

    def __new__(cls, sql: str, scale: str, column: str | None = None) -> ScaledSql:
        obj = super().__new__(cls, sql)
        obj.scale = scale
        obj.column = column
        return obj


def scale_of(sql: str) -> str | None:
    """The SQL of the scale of a decimal value's SQL, or None when unknown."""
    return sql.scale if isinstance(sql, ScaledSql) else None


def with_scale(sql: str, scale: str | None) -> str:
    """``sql`` carrying ``scale`` (unchanged when the scale is unknown)."""
    return sql if scale is None else ScaledSql(sql, scale)


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
