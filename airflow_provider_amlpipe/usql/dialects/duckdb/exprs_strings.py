"""Methods of strings (Split, IndexOf, Trim, ...), string.Join and String.CompareOrdinal."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_datetime import _CULTURE_COMPARE
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_format import cs_tostring
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed
from airflow_provider_amlpipe.usql.types import UType

if TYPE_CHECKING:
    from airflow_provider_amlpipe.usql.errors import UsqlError


class StringMethods:
    """Methods of :class:`~.exprs.ExprTranslator`: string methods, string.Join and String.CompareOrdinal."""

    # provided by ExprTranslator
    _args: Callable[[n.Call, Scope, tuple[int, ...], str], list[Typed]]
    _array_join: Callable[[str, str], str]
    _concat_arg: Callable[[str, UType], str]
    _lambda_sql: Callable[[list[str], str], str]
    _strlit: Callable[[str], str]
    err: Callable[[n.Pos, str, str], UsqlError]
    tr: Callable[[n.Expr, Scope], Typed]

    def _string_method(
        self, s: str, name: str, a: list[str], args: list[Typed], e: n.Call, need: Callable[..., None]
    ) -> Typed:
        ws = "' \t\r\n'"
        if name in ("ToUpper", "ToUpperInvariant", "ToLower", "ToLowerInvariant"):
            need(0)
            return f"{'upper' if 'Upper' in name else 'lower'}({s})", t.STRING
        if name in ("Trim", "TrimStart", "TrimEnd"):
            fn = {"Trim": "trim", "TrimStart": "ltrim", "TrimEnd": "rtrim"}[name]
            chars = "concat(" + ", ".join(a) + ")" if a else ws
            return f"{fn}({s}, {chars})", t.STRING
        if name in ("Contains", "StartsWith", "EndsWith"):
            need(1)
            fn = {"Contains": "contains", "StartsWith": "starts_with", "EndsWith": "ends_with"}[name]
            return f"{fn}({s}, {a[0]})", t.BOOL
        if name == "Substring":
            need(1, 2)
            if len(a) == 1:
                return f"substring({s}, ({a[0]}) + 1)", t.STRING
            return f"substring({s}, ({a[0]}) + 1, {a[1]})", t.STRING
        if name == "IndexOf":
            need(1, 2, 3)
            if len(a) == 1:
                return f"CAST(instr({s}, {a[0]}) - 1 AS INTEGER)", t.INT
            # IndexOf(value, start[, count]): the search covers s.Substring(start[, count])
            part = f"substring({s}, {a[1]} + 1{f', {a[2]}' if len(a) == 3 else ''})"
            return f"CAST(CASE WHEN instr({part}, {a[0]}) = 0 THEN -1 ELSE instr({part}, {a[0]}) + {a[1]} - 1 END " \
                   "AS INTEGER)", t.INT  # fmt: skip
        if name == "LastIndexOf":
            need(1, 2)
            # LastIndexOf(value, start) searches backwards from start: in s.Substring(0, start + 1)
            start = a[1] if len(a) == 2 else f"(length({s}) - 1)"
            part = f"substring({s}, 1, {a[1]} + 1)" if len(a) == 2 else s
            found = (f"CASE WHEN instr({part}, {a[0]}) = 0 THEN -1 ELSE length({part}) - length({a[0]}) "
                     f"- instr(reverse({part}), reverse({a[0]})) + 1 END")  # fmt: skip
            # .NET Framework: the empty string is found at "the last index position" (start), 0 in ""
            return f"CAST(CASE WHEN {a[0]} = '' THEN greatest(least({start}, length({s}) - 1), 0) ELSE {found} END " \
                   "AS INTEGER)", t.INT  # fmt: skip
        if name == "Replace":
            need(2)
            return f"replace({s}, {a[0]}, {a[1]})", t.STRING
        if name == "Split":
            return self._split(s, args, e)
        if name in ("PadLeft", "PadRight"):
            need(1, 2)
            fn = "lpad" if name == "PadLeft" else "rpad"
            pad = a[1] if len(a) == 2 else "' '"
            width = f"CAST({a[0]} AS INTEGER)"  # lpad/rpad take an INTEGER width; s.Length + 5 is a BIGINT
            return f"CASE WHEN length({s}) >= {width} THEN {s} ELSE {fn}({s}, {width}, {pad}) END", t.STRING
        if name == "Remove":
            need(1, 2)
            if len(a) == 1:
                return f"substring({s}, 1, {a[0]})", t.STRING
            return f"(substring({s}, 1, {a[0]}) || substring({s}, {a[0]} + {a[1]} + 1))", t.STRING
        if name == "Insert":
            need(2)
            return f"(substring({s}, 1, {a[0]}) || {a[1]} || substring({s}, {a[0]} + 1))", t.STRING
        if name == "ToCharArray":
            need(0)
            chars = self._lambda_sql(["usql_c"], f"substring({s}, usql_c + 1, 1)")
            return f"list_transform(range(length({s})), {chars})", t.array_of(UType("char", False))
        if name == "CompareTo":
            raise self.err(e.pos, "CompareTo", _CULTURE_COMPARE)
        raise self.err(e.pos, name, f"method string.{name}(...) is not supported")

    def _split(self, s: str, args: list[Typed], e: n.Call) -> Typed:
        """``s.Split(sep)``, ``Split(c1, c2, ...)``, ``Split(new char[]{...} | new string[]{...}[, options])``.

        As in .NET, empty entries are kept unless ``StringSplitOptions.RemoveEmptyEntries``; with several
        separators the first one (in argument order) matching at a position wins, as in a regex alternation.
        """
        nodes = list(e.args)
        remove_empty = False
        if args and args[-1][1].name == "StringSplitOptions":
            remove_empty = args[-1][0] == "1"
            args, nodes = args[:-1], nodes[:-1]
        out = t.array_of(t.STRING)
        seps = self._literal_separators(nodes)
        if seps is None:
            if len(args) != 1 or args[0][1].name not in ("char", "string"):
                raise self.err(e.pos, "Split", "Split needs literal separators (or one char/string separator)")
            sql = self._split_on(s, args[0][0])
        elif not seps or "" in seps:
            raise self.err(e.pos, "Split", "Split with no or empty separators (white space splitting) is not supported")
        else:
            sql = self._split_on_literals(s, seps)
        return (self._drop_empty(sql) if remove_empty else sql), out

    @staticmethod
    def _split_on(s: str, sep: str) -> str:
        """Split ``s`` at each occurrence of the separator expression ``sep``, keeping empty entries."""
        return f"string_split({s}, {sep})"

    def _split_on_literals(self, s: str, seps: list[str]) -> str:
        """Split at any of the literal separators (the first matching at a position wins, as in .NET)."""
        if len(seps) == 1:
            return self._split_on(s, self._strlit(seps[0]))
        return f"regexp_split_to_array({s}, {self._strlit('|'.join(re.escape(x) for x in seps))})"

    @staticmethod
    def _drop_empty(arr: str) -> str:
        """``StringSplitOptions.RemoveEmptyEntries``."""
        return f"list_filter({arr}, lambda usql_v: usql_v <> '')"

    @staticmethod
    def _literal_separators(nodes: list[n.Expr]) -> list[str] | None:
        """The separators of a Split call when all are literals (``','``, ``new string[]{"::"}``), else None."""
        out: list[str] = []
        for node in nodes:
            if isinstance(node, n.New) and node.type.name in ("char[]", "string[]") and node.initializer:
                items = [x for (x,) in node.initializer]
            else:
                items = [node]
            for item in items:
                if not (isinstance(item, n.Literal) and item.kind in ("char", "string")):
                    return None
                out.append(str(item.value))
        return out

    def _string_join(self, e: n.Call, scope: Scope) -> str:
        """``string.Join(sep, sequence)`` or ``string.Join(sep, v1, v2, ...)``: each value's ToString(), null as "",
        a null separator as ""."""
        if len(e.args) < 2:
            raise self.err(e.pos, "string.Join", "string.Join takes a separator and values")
        (sep, _), *values = [self.tr(a, scope) for a in e.args]
        sep = f"coalesce({sep}, '')"
        if len(values) == 1 and values[0][1].name in ("SqlArray", "SqlMap"):
            arr, at = values[0]
            elem = at.element or t.UNKNOWN
            if at.name == "SqlMap" or elem.name in ("KeyValuePair", "SqlArray", "SqlMap"):
                raise self.err(e.pos, "string.Join", f"string.Join of {at} is not supported; Select strings first")
            if elem.name not in ("string", "char", "unknown"):
                arr = f"list_transform({arr}, {self._lambda_sql(['usql_j'], cs_tostring('usql_j', elem))})"
            return self._array_join(arr, sep)
        parts = ", ".join(f"coalesce({self._concat_arg(s, ty)}, '')" for s, ty in values)
        return f"concat_ws({sep}, {parts})"

    def _compare_ordinal(self, e: n.Call, scope: Scope) -> str:
        """``String.CompareOrdinal(a, b)`` / ``(a, ia, b, ib, length)``: the ordinal (code point) order as -1, 0 or 1
        (.NET documents only the sign); null precedes every string."""
        args = self._args(e, scope, (2, 5), "String.CompareOrdinal")
        if len(args) == 2:
            a, b = args[0][0], args[1][0]
        else:
            (x, _), (ia, _), (y, _), (ib, _), (count, _) = args
            a, b = f"substring({x}, {ia} + 1, {count})", f"substring({y}, {ib} + 1, {count})"
        return (f"CASE WHEN {a} IS NULL THEN CASE WHEN {b} IS NULL THEN 0 ELSE -1 END WHEN {b} IS NULL THEN 1 "
                f"WHEN {a} < {b} THEN -1 WHEN {a} > {b} THEN 1 ELSE 0 END")  # fmt: skip
