"""Constructors (``new DateTime(...)``, ``new SqlArray<T>{...}``, ``new SqlMap<K,V>{...}``, ``new KeyValuePair``,
``new T[]{...}``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed
from airflow_provider_amlpipe.usql.types import UType

if TYPE_CHECKING:
    from airflow_provider_amlpipe.usql.errors import UsqlError


class Constructors:
    """Methods of :class:`~.exprs.ExprTranslator`: ``new`` expressions."""

    # provided by ExprTranslator
    MAKE_TIMESTAMP: str
    _new_timespan: Callable[[n.New, list[Typed]], Typed]
    err: Callable[[n.Pos, str, str], UsqlError]
    tr: Callable[[n.Expr, Scope], Typed]

    def _new(self, e: n.New, scope: Scope) -> Typed:
        name = e.type.name
        args = [self.tr(a, scope) for a in e.args]
        if name in ("DateTime", "System.DateTime"):
            if args and args[-1][1].name == "DateTimeKind":  # the kind does not change the value
                args = args[:-1]
            if len(args) not in (3, 6, 7):
                raise self.err(e.pos, "new DateTime", "new DateTime(y, m, d[, h, mi, s[, ms]][, DateTimeKind.X]) "
                               "takes 3, 6 or 7 numbers")  # fmt: skip
            vals = [x for x, _ in args] + ["0", "0", "0"][: max(0, 6 - len(args))]
            if len(args) == 7:
                vals = [*vals[:5], f"({vals[5]} + {vals[6]} / 1000.0)"]
            return f"{self.MAKE_TIMESTAMP}({', '.join(vals)})", t.DATETIME
        if name in ("TimeSpan", "System.TimeSpan"):
            return self._new_timespan(e, args)
        if t.collection(name) is not None:
            return self._new_collection(e, args, scope)
        if name == "KeyValuePair":
            return self._new_pair(e, args)
        if name.endswith("[]") and e.initializer is not None and not args:  # new string[]{"a", "b"}
            elem = t.resolve(n.TypeRef(name[:-2], False, e.type.pos))
            if elem is not None and elem.name not in ("byte[]", "SqlArray", "SqlMap"):
                items = ", ".join(f"CAST({self.tr(x, scope)[0]} AS {elem.duckdb()})" for (x,) in e.initializer)
                return f"CAST([{items}] AS {elem.duckdb()}[])", t.array_of(elem)
        raise self.err(e.pos, f"new {name}", f"new {name}(...) is not supported")

    def _new_pair(self, e: n.New, args: list[Typed]) -> Typed:
        """``new KeyValuePair<K,V>(k, v)``: a struct (key, value); a SqlMap can be built from a sequence of them."""
        types = [t.resolve(a) for a in e.type.args]
        if len(types) != 2 or len(args) != 2 or any(x is None or x.name in ("SqlArray", "SqlMap") for x in types):
            raise self.err(e.pos, "KeyValuePair", "new KeyValuePair<K,V>(key, value) needs built-in types K, V")
        key, value = types
        assert key is not None and value is not None
        k, v = f"CAST({args[0][0]} AS {key.duckdb()})", f"CAST({args[1][0]} AS {value.duckdb()})"
        return f"struct_pack(key := {k}, value := {v})", UType("KeyValuePair", False, value, key)

    def _new_collection(self, e: n.New, args: list[Typed], scope: Scope) -> Typed:
        name = t.collection(e.type.name) or e.type.name
        typ = t.resolve(e.type)
        elem = typ.element if typ is not None else None
        if typ is None or elem is None:
            want = "SqlMap<K,V>" if name == "SqlMap" else "SqlArray<T>"
            raise self.err(e.pos, name, f"new {want}(...) needs built-in type arguments")
        init = e.initializer
        if name == "SqlMap":
            if args:
                if len(args) == 1 and args[0][1].name == "SqlMap" and init is None:
                    return args[0][0], typ
                arg_elem = args[0][1].element if len(args) == 1 and args[0][1].name == "SqlArray" else None
                if arg_elem is not None and arg_elem.name == "KeyValuePair" and init is None:
                    # a repeated or null key is a run-time error, as in .NET's dictionary
                    return f"CAST(map_from_entries({args[0][0]}) AS {typ.duckdb()})", typ
                raise self.err(e.pos, "SqlMap", "new SqlMap<K,V>(...) takes another SqlMap, a sequence of "
                               "KeyValuePair<K,V> (x.Select(p => new KeyValuePair<K,V>(k, v))) or an initializer "
                               "{{k, v}, ...}")  # fmt: skip
            if not init:
                return f"CAST(MAP() AS {typ.duckdb()})", typ
            if any(len(item) != 2 for item in init):
                raise self.err(e.pos, "SqlMap", "each entry of new SqlMap<K,V>{...} is a pair {key, value}")
            key = typ.key or t.STRING
            keys = ", ".join(f"CAST({self.tr(k, scope)[0]} AS {key.duckdb()})" for k, _ in init)
            vals = ", ".join(f"CAST({self.tr(v, scope)[0]} AS {elem.duckdb()})" for _, v in init)
            return f"MAP([{keys}], [{vals}])", typ
        if init is not None:
            if args or any(len(item) != 1 for item in init):
                raise self.err(e.pos, "SqlArray", "new SqlArray<T>{a, b, ...} takes one value per element")
            items = ", ".join(f"CAST({self.tr(x, scope)[0]} AS {elem.duckdb()})" for (x,) in init)
            return f"CAST([{items}] AS {elem.duckdb()}[])", typ
        if not args:
            return f"CAST([] AS {elem.duckdb()}[])", typ
        if len(args) == 1 and args[0][1].name == "SqlArray":
            arg_elem = args[0][1].element
            if arg_elem is None or arg_elem.name in (elem.name, "unknown"):
                return args[0][0], typ
            return f"CAST({args[0][0]} AS {typ.duckdb()})", typ
        raise self.err(e.pos, "SqlArray", "new SqlArray<T>(x) needs an array such as s.Split(';')")
