"""The scale (digits after the point) of C# decimal results, as SQL beside each value's SQL.

.NET keeps a scale per decimal value and each operation derives its result's scale from its operands':
``+``, ``-`` and ``%`` take the larger scale (``2.50m + 1m`` is ``3.50``), ``*`` adds them (``2.50m * 2`` is
``5.00``), ``/`` keeps the dividend's less the divisor's and adds digits only as the quotient needs them
(``10.00m / 4`` is ``2.50``, ``1m / 4`` is ``0.25``), ``Math.Round(x, n)`` keeps at most ``n``, an integer
converted to decimal has scale 0 and ``decimal.Parse`` keeps the digits written. Here a value has at most
:data:`~.exprs_common.MAX_DECIMAL_SCALE` digits after the point, and the text of a value never drops a
non-zero digit: a scale only adds trailing zeros, so a quotient prints its digits beyond the scale rule.

Each function returns the SQL of a scale, or None when it is unknown (the value then prints with no
trailing zeros). Constant scales are folded, so ``2.50m * 2`` carries the scale ``2``, not ``(2 + 0)``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from airflow_provider_amlpipe.usql.exprs_common import MAX_DECIMAL_SCALE, scale_of
from airflow_provider_amlpipe.usql.types import UType


def written_scale(text: str) -> str | None:
    """The scale of a decimal written ``text`` (a literal, a parameter's value): its digits after the point, as
    ``decimal.Parse`` keeps them (``1.5e3`` has none); None for a text that is no finite number."""
    try:
        exponent = Decimal(text.strip()).as_tuple().exponent
    except InvalidOperation:
        return None
    if not isinstance(exponent, int):  # NaN, Infinity
        return None
    return str(min(max(0, -exponent), MAX_DECIMAL_SCALE))


def operand_scale(sql: str, typ: UType) -> str | None:
    """The scale of an operand of decimal arithmetic: an integer's is 0, a null literal's NULL."""
    if typ.name == "decimal":
        return scale_of(sql)
    if typ.is_integral:
        return "0"
    if typ.name == "null":
        return "NULL"
    return None


def larger(a: str, b: str) -> str:
    """The larger of two scales; NULL (unknown) if either is."""
    if a.isdigit() and b.isdigit():
        return str(max(int(a), int(b)))
    # not greatest(): it skips NULLs, and an unknown scale must stay unknown
    return f"CASE WHEN {a} >= {b} THEN {a} WHEN {b} > {a} THEN {b} END"


def arithmetic(op: str, sa: str | None, sb: str | None) -> str | None:
    """The scale of ``a op b`` for decimal ``+ - * / %``."""
    if sa is None or sb is None:
        return None
    if op in ("+", "-", "%"):
        return larger(sa, sb)
    if op == "*":
        total = str(int(sa) + int(sb)) if sa.isdigit() and sb.isdigit() else f"({sa} + {sb})"
        return _least(total, str(MAX_DECIMAL_SCALE))
    if op == "/":
        diff = f"({sa} - {sb})"
        if sa.isdigit() and sb.isdigit():
            return str(max(int(sa) - int(sb), 0))
        return f"CASE WHEN {diff} > 0 THEN {diff} ELSE 0 END"
    return None


def _least(a: str, b: str) -> str:
    if a.isdigit() and b.isdigit():
        return str(min(int(a), int(b)))
    return f"CASE WHEN {a} <= {b} THEN {a} WHEN {b} < {a} THEN {b} END"


def rounded(scale: str | None, digits: str) -> str | None:
    """The scale of ``Math.Round(x, digits)``: at most ``digits`` (a value with fewer keeps its own)."""
    if scale is None:
        return None
    return _least(scale, digits)


def chosen(condition: str, then: str | None, otherwise: str | None) -> str | None:
    """The scale of ``condition ? then : otherwise``: the chosen value's."""
    if then is None or otherwise is None:
        return None
    if then == otherwise:
        return then
    return f"CASE WHEN {condition} THEN {then} ELSE {otherwise} END"


def first_not_null(values: list[tuple[str, str | None]]) -> str | None:
    """The scale of ``a ?? b`` / ``COALESCE(a, b, ...)``: that of the first value that is not null."""
    if any(s is None for _, s in values):
        return None
    arms = " ".join(f"WHEN {v} IS NOT NULL THEN {s}" for v, s in values[:-1])
    return f"CASE {arms} ELSE {values[-1][1]} END"
