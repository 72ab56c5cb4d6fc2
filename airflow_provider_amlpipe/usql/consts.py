"""Constant folding of the expressions that must be known at compile time (paths, options, DECLARE)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from datetime import datetime
from typing import Any

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.csformat import STANDARD_NUMBER_FORMAT, FormatError, custom_number, dotnet_real


class NotConstant(Exception):
    """The expression cannot be folded to a constant."""


def fold(e: n.Expr, variables: Mapping[str, object]) -> object:
    """The Python value of a constant expression (literals, constant variables, operators, ``Encoding.X``, a few
    string methods); :class:`NotConstant` otherwise."""
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
    if isinstance(e, n.Member) and _is_encoding_class(e.target):
        return Encoding(e.name)
    if (
        isinstance(e, n.Call)
        and isinstance(e.func, n.Member)
        and e.func.name == "GetEncoding"
        and _is_encoding_class(e.func.target)
        and len(e.args) == 1
    ):
        arg = fold(e.args[0], variables)
        if isinstance(arg, (int, str)) and not isinstance(arg, bool):
            return Encoding(f"GetEncoding({arg})")
        raise NotConstant("GetEncoding")
    if (
        isinstance(e, n.Member)
        and isinstance(e.target, n.Name)
        and e.target.name in ("string", "String")
        and e.name == "Empty"
    ):
        return ""
    return _fold_more(e, variables)


def _fold_more(e: n.Expr, variables: Mapping[str, object]) -> object:
    """Comparisons, logic, ``? :``, integer ``- *`` and the string methods U-SQL folds (IF conditions, paths)."""
    if isinstance(e, n.Binary) and e.op in _COMPARE:
        return _compare(e.op, fold(e.left, variables), fold(e.right, variables))
    if isinstance(e, n.Binary) and e.op in ("&&", "AND", "||", "OR"):
        left = _bool(fold(e.left, variables))
        if left is (e.op in ("||", "OR")):  # short-circuit, as C# does
            return left
        return _bool(fold(e.right, variables))
    if isinstance(e, n.Binary) and e.op in ("-", "*"):
        a, b = fold(e.left, variables), fold(e.right, variables)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and _is_number(a) and _is_number(b):
            return a - b if e.op == "-" else a * b
    if isinstance(e, n.Unary) and e.op in ("!", "NOT"):
        return not _bool(fold(e.operand, variables))
    if isinstance(e, n.Conditional):
        return fold(e.then if _bool(fold(e.cond, variables)) else e.otherwise, variables)
    if isinstance(e, n.Member) and e.name == "Length":
        v = fold(e.target, variables)
        if isinstance(v, str):
            return len(v)
    if isinstance(e, n.Call) and isinstance(e.func, n.Member) and not e.type_args and e.over is None:
        target = fold(e.func.target, variables)
        return _method(target, e.func.name, [fold(a, variables) for a in e.args])
    raise NotConstant(type(e).__name__)


_COMPARE = ("==", "!=", "<", ">", "<=", ">=")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bool(v: object) -> bool:
    if not isinstance(v, bool):
        raise NotConstant("not a bool")
    return v


def _compare(op: str, a: object, b: object) -> bool:
    """C# comparison of two constants; a null operand makes ``< > <= >=`` false (lifted operators)."""
    if op in ("==", "!="):
        if not (a is None or b is None or (_is_number(a) and _is_number(b)) or type(a) is type(b)):
            raise NotConstant(op)
        return (a == b) == (op == "==")
    if a is None or b is None:
        return False
    if not (isinstance(a, (int, float)) and isinstance(b, (int, float))) or isinstance(a, bool) or isinstance(b, bool):
        raise NotConstant(op)
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def _method(v: object, name: str, args: list[object]) -> object:
    """``v.name(args)`` for the methods folded at compile time; other calls are not constant."""
    if name == "ToString" and not args and isinstance(v, (bool, int, str)):
        return _cs_str(v)
    if name == "ToString" and len(args) == 1 and isinstance(v, int) and not isinstance(v, bool):
        return _integer_format(v, args[0])
    if isinstance(v, str):
        return _string_method(v, name, args)
    raise NotConstant(name)


def _integer_format(v: int, fmt: object) -> str:
    """``n.ToString("D")`` / ``("D5")``: decimal digits, zero-padded to the precision; custom formats
    (``"#,##0"``) as ``csformat.custom_number`` (an unsupported one is left to the translator's error)."""
    if isinstance(fmt, str) and fmt and not STANDARD_NUMBER_FORMAT.fullmatch(fmt):
        try:
            return custom_number(v, fmt)
        except FormatError:
            raise NotConstant("ToString") from None
    if not isinstance(fmt, str) or fmt[:1] not in ("D", "d") or not (fmt[1:].isdigit() or fmt[1:] == ""):
        raise NotConstant("ToString")
    digits = str(abs(v)).zfill(int(fmt[1:] or 0))
    return "-" + digits if v < 0 else digits


def _string_method(v: str, name: str, args: list[object]) -> object:
    ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    if name in ("ToUpper", "ToLower") and not args and v.isascii():  # culture rules differ outside ASCII
        return v.upper() if name == "ToUpper" else v.lower()
    if name == "IndexOf" and len(args) == 1 and isinstance(args[0], str):
        return v.find(args[0])
    if name == "Substring" and 1 <= len(args) <= 2 and len(ints) == len(args):
        start = ints[0]
        length = ints[1] if len(ints) == 2 else len(v) - start
        if 0 <= start <= len(v) and 0 <= length <= len(v) - start:  # else C# throws: not a constant
            return v[start : start + length]
    raise NotConstant(name)


def _is_encoding_class(e: n.Expr) -> bool:
    """``Encoding`` or ``System.Text.Encoding``."""
    if isinstance(e, n.Name):
        return e.name == "Encoding"
    return (
        isinstance(e, n.Member)
        and e.name == "Encoding"
        and isinstance(e.target, n.Member)
        and e.target.name == "Text"
        and isinstance(e.target.target, n.Name)
        and e.target.target.name == "System"
    )


def _cs_str(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return dotnet_real(v)
    return str(v)


#: The ``DateTime.Parse`` texts folded at compile time: ISO-like ``yyyy-M-d`` / ``yyyy/M/d`` and en-US ``M/d/yyyy``
#: dates, each with an optional ``H:mm[:ss]`` time (``T`` or a space before it; ``AM``/``PM`` after it).
_PARSE_DATE = re.compile(
    r"\s*(?:(?P<y>\d{4})(?P<sep>[-/])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})|(?P<m2>\d{1,2})/(?P<d2>\d{1,2})/(?P<y2>\d{4}))"
    r"(?:[T ](?P<hh>\d{1,2}):(?P<mi>\d{2})(?::(?P<ss>\d{2}))?(?:\s*(?P<ampm>[AaPp][Mm]))?)?\s*"
)


def fold_datetime_parse(e: n.Expr) -> n.Expr:
    """``e`` with every ``DateTime.Parse("<constant text>")`` replaced by the equal ``new DateTime(y, M, d, h, m, s)``.

    The value is the same, but a constructor of literals is a constant the SQL engine can fold, so a predicate such
    as ``date >= DateTime.Parse("2014-09-16")`` on a file set's virtual column can skip files unread (partition
    elimination); a parse that could fail at run time cannot be folded by the engine. Texts outside the simple forms
    of ``_PARSE_DATE`` (and ones that name no valid date) stay calls."""
    folded = _datetime_parse_literal(e)
    if folded is not None:
        return folded
    if not is_dataclass(e):
        return e
    changes: dict[str, Any] = {}
    for f in fields(e):
        v = getattr(e, f.name)
        new = _fold_field(v)
        if new is not v:
            changes[f.name] = new
    return replace(e, **changes) if changes else e


def _fold_field(v: object) -> object:
    if isinstance(v, tuple):
        items = tuple(_fold_field(x) for x in v)
        return items if any(a is not b for a, b in zip(items, v, strict=True)) else v
    if is_dataclass(v) and not isinstance(v, (n.Pos, n.TypeRef, type)):
        return fold_datetime_parse(v)  # type: ignore[arg-type]
    return v


def _datetime_parse_literal(e: n.Expr) -> n.New | None:
    if not (
        isinstance(e, n.Call)
        and isinstance(e.func, n.Member)
        and e.func.name == "Parse"
        and _is_datetime_class(e.func.target)
        and len(e.args) == 1
        and isinstance(e.args[0], n.Literal)
        and isinstance(e.args[0].value, str)
    ):
        return None
    m = _PARSE_DATE.fullmatch(e.args[0].value)
    if m is None:
        return None
    g = m.groupdict()
    hour = int(g["hh"] or 0)
    if g["ampm"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if g["ampm"].lower() == "pm" else 0)
    parts = (int(g["y"] or g["y2"]), int(g["m"] or g["m2"]), int(g["d"] or g["d2"]), hour, int(g["mi"] or 0),
             int(g["ss"] or 0))  # fmt: skip
    try:
        datetime(*parts)
    except ValueError:
        return None  # not a date: DateTime.Parse raises at run time, as before
    args = tuple(n.Literal(v, "int", e.pos) for v in parts)
    return n.New(n.TypeRef("DateTime", False, e.pos), args, e.pos)


def _is_datetime_class(e: n.Expr) -> bool:
    """``DateTime`` or ``System.DateTime``."""
    if isinstance(e, n.Name):
        return e.name == "DateTime"
    return (
        isinstance(e, n.Member) and e.name == "DateTime" and isinstance(e.target, n.Name) and e.target.name == "System"
    )


class Encoding(str):
    """The value of ``Encoding.X`` (its member name) or of ``Encoding.GetEncoding(arg)`` (``GetEncoding(arg)``)."""
