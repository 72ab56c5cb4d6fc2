"""Constant folding of the expressions that must be known at compile time (paths, options, DECLARE)."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_provider_amlpipe.usql import nodes as n


class NotConstant(Exception):
    """The expression cannot be folded to a constant."""


def fold(e: n.Expr, variables: Mapping[str, object]) -> object:
    """The Python value of a constant expression (literals, constant variables, ``+``, unary ``-``, ``Encoding.X``)."""
    if isinstance(e, n.Literal):
        return e.value
    if isinstance(e, n.Variable):
        if e.name in variables:
            return variables[e.name]
        raise NotConstant(e.name)
    if isinstance(e, n.Binary) and e.op == "+":
        a, b = fold(e.left, variables), fold(e.right, variables)
        if isinstance(a, str) or isinstance(b, str):
            return _cs_str(a) + _cs_str(b)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return a + b
        raise NotConstant("+")
    if isinstance(e, n.Unary) and e.op == "-":
        v = fold(e.operand, variables)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v
        if isinstance(v, str):  # decimal literal text
            return "-" + v
    if isinstance(e, n.Member) and isinstance(e.target, n.Name) and e.target.name == "Encoding":
        return Encoding(e.name)
    if (
        isinstance(e, n.Member)
        and isinstance(e.target, n.Name)
        and e.target.name in ("string", "String")
        and e.name == "Empty"
    ):
        return ""
    raise NotConstant(type(e).__name__)


def _cs_str(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class Encoding(str):
    """The value of ``Encoding.X`` (its member name)."""
