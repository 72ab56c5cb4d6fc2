"""SQL functions called by name: aggregates, window functions (OVER), percentiles, COALESCE/ISNULL/NULLIF."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed
from airflow_provider_amlpipe.usql.types import UType

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_amlpipe.usql.errors import UsqlError


AGGREGATES = {
    "COUNT": "count", "SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max", "ANY_VALUE": "any_value",
    "ARRAY_AGG": "list", "MAP_AGG": "map", "STDEV": "stddev_samp", "STDEVP": "stddev_pop", "VAR": "var_samp",
    "VARP": "var_pop", "FIRST": "first", "LAST": "last",
}  # fmt: skip
WINDOW_ONLY = {
    "ROW_NUMBER": "row_number", "RANK": "rank", "DENSE_RANK": "dense_rank", "NTILE": "ntile", "LAG": "lag",
    "LEAD": "lead", "FIRST_VALUE": "first_value", "LAST_VALUE": "last_value", "CUME_DIST": "cume_dist",
    "PERCENT_RANK": "percent_rank",
}  # fmt: skip
#: Window functions computed over a window frame (ranking and offset functions ignore frames).
_FRAMED = frozenset(AGGREGATES) | {"FIRST_VALUE", "LAST_VALUE"}


class SqlFunctions:
    """Methods of :class:`~.exprs.ExprTranslator`: aggregates, windows, percentiles."""

    # provided by ExprTranslator
    _args: Callable[[n.Call, Scope, tuple[int, ...], str], list[Typed]]
    _equality: Callable[[str, str, UType, str, UType, n.Binary], str]
    allow_aggregates: bool
    err: Callable[[n.Pos, str, str], UsqlError]
    tr: Callable[[n.Expr, Scope], Typed]

    def _sql_function(self, name: str, e: n.Call, scope: Scope) -> Typed:
        upper = name.upper() if name.isupper() else name
        if upper in ("PERCENTILE_CONT", "PERCENTILE_DISC"):
            return self._percentile(upper, e, scope)
        if e.within_group:
            raise self.err(
                e.pos, "WITHIN GROUP", f"WITHIN GROUP only follows PERCENTILE_CONT/PERCENTILE_DISC, not {name}"
            )
        if e.type_args and upper not in ("ARRAY_AGG", "MAP_AGG"):
            raise self.err(e.pos, name, f"{name}<...> takes no type arguments")
        if upper in AGGREGATES:
            if not self.allow_aggregates and e.over is None:
                raise self.err(e.pos, name, f"aggregate {name} is not allowed here")
            if upper == "ANY_VALUE" and e.over is not None:
                raise self.err(e.pos, name, "ANY_VALUE cannot be used in a windowing expression (OVER); use "
                               "FIRST_VALUE(x) OVER (...)")  # fmt: skip
            return self._aggregate(upper, e, scope)
        if upper in WINDOW_ONLY:
            if e.over is None:
                raise self.err(e.pos, name, f"{name} needs an OVER (...) clause")
            args = [self.tr(a, scope) for a in e.args]
            typ = t.LONG
            if upper in ("LAG", "LEAD", "FIRST_VALUE", "LAST_VALUE") and args:
                typ = args[0][1].with_nullable(True)
            elif upper in ("CUME_DIST", "PERCENT_RANK"):
                typ = t.DOUBLE
            sql = f"{WINDOW_ONLY[upper]}({', '.join(a for a, _ in args)})"
            return self._over(sql, e, scope), typ
        if upper == "EXPLODE":
            raise self.err(e.pos, "EXPLODE", "EXPLODE is only allowed in CROSS APPLY EXPLODE(...) AS T(col)")
        if name == "Equals" and e.over is None:
            return self._object_equals(e, scope)
        if upper in ("COALESCE", "ISNULL", "NULLIF") and e.over is None:
            return self._null_function(upper, e, scope)
        raise self.err(e.pos, "user code", f"unknown function {name!r}; user-defined functions are not supported")

    def _null_function(self, name: str, e: n.Call, scope: Scope) -> Typed:
        """T-SQL ``COALESCE(a, b, ...)`` (first non-null), ``ISNULL(a, b)`` (``a ?? b``) and ``NULLIF(a, b)``
        (``a == b ? null : a``, C# equality) with C# typing: one common type (numeric promotion), nullable for
        COALESCE/ISNULL only if the last argument is, always nullable for NULLIF."""
        arity_ok = len(e.args) >= 2 if name == "COALESCE" else len(e.args) == 2
        if e.distinct or e.star or not arity_ok:
            raise self.err(e.pos, name, f"{name} takes {'two or more' if name == 'COALESCE' else 'two'} arguments")
        args = [self.tr(a, scope) for a in e.args]
        if name == "NULLIF":
            (a, at), (b, bt) = args
            if at.name == "null":
                raise self.err(e.args[0].pos, name, "the first NULLIF argument has no type: cast it, e.g. (int?) null")
            cond = self._equality("==", a, at, b, bt, n.Binary("==", e.args[0], e.args[1], e.pos))
            return f"CASE WHEN {cond} THEN NULL ELSE {a} END", at.with_nullable(True)
        typ = self._common_type(name, list(zip(e.args, (ty for _, ty in args), strict=True)))
        return f"coalesce({', '.join(a for a, _ in args)})", typ.with_nullable(args[-1][1].nullable)

    def _common_type(self, name: str, typed: list[tuple[n.Expr, UType]]) -> UType:
        """The one type of ``name``'s arguments (null literals adapt; numeric types promote as in C#)."""
        known = [(x, ty) for x, ty in typed if ty.name != "null"]
        if not known:
            raise self.err(typed[0][0].pos, name, f"no {name} argument has a type: cast one, e.g. (string) null")
        common = known[0][1]
        for x, ty in known[1:]:
            if common.is_numeric and ty.is_numeric:
                common = t.promote(common, ty)
            elif ty.name != common.name:
                raise self.err(x.pos, name, f"{name} arguments must have one type: this one is {ty}, the first is "
                               f"{known[0][1]}")  # fmt: skip
        return common

    def _object_equals(self, e: n.Call, scope: Scope) -> Typed:
        """C# ``Equals(a, b)`` (``object.Equals``): both null, or equal values of the same type; a boxed int never
        equals a boxed long."""
        (a, at), (b, bt) = self._args(e, scope, (2,), "Equals")
        if "null" not in (at.name, bt.name) and at.name != bt.name:
            return "FALSE", t.BOOL
        return self._equality("==", a, at, b, bt, n.Binary("==", e.args[0], e.args[1], e.pos)), t.BOOL

    def _percentile(self, name: str, e: n.Call, scope: Scope) -> Typed:
        """``PERCENTILE_CONT/DISC(p) WITHIN GROUP (ORDER BY x [DESC]) OVER ([PARTITION BY ...])``.

        As documented: p is a double literal in [0, 1], one ORDER BY item, OVER holds PARTITION BY only;
        CONT interpolates linearly (double?), DISC returns the first value whose CUME_DIST >= p (x's type).
        Nulls are ignored, as in SQL Server.
        """
        arg = e.args[0] if len(e.args) == 1 else None
        if not (isinstance(arg, n.Literal) and arg.kind in ("double", "int") and 0 <= float(arg.value) <= 1):  # type: ignore[arg-type]
            raise self.err(e.pos, name, f"{name} takes one double literal between 0.0 and 1.0")
        if len(e.within_group) != 1:
            raise self.err(e.pos, name, f"{name}(p) needs WITHIN GROUP (ORDER BY one expression)")
        w = e.over
        if w is None or w.order_by or w.frame:
            raise self.err(e.pos, name, f"{name} needs OVER ([PARTITION BY ...]) without ORDER BY or ROWS")
        item = e.within_group[0]
        x, xt = self.tr(item.expr, scope)
        frac = float(arg.value)  # type: ignore[arg-type]
        if name == "PERCENTILE_CONT":
            if not xt.is_numeric:
                raise self.err(item.expr.pos, name, f"{name} needs a numeric ORDER BY expression, not {xt}")
            # descending order mirrors the interpolation: the p-th value descending is the (1-p)-th ascending
            sql = self._quantile("cont", f"CAST({x} AS DOUBLE)", 1 - frac if item.descending else frac)
            return self._over(sql, e, scope), UType("double", True)
        if item.descending:
            if not xt.is_numeric:
                raise self.err(item.expr.pos, name, f"{name} with ORDER BY ... DESC needs a numeric expression")
            # negated in a type wide enough to hold -x (also for unsigned and minimum values)
            wide = {"double": "DOUBLE", "float": "DOUBLE", "decimal": "DECIMAL(38,10)"}.get(xt.name, "HUGEINT")
            inner = self._over(self._quantile("disc", f"(-CAST({x} AS {wide}))", frac), e, scope)
            return f"CAST(-({inner}) AS {xt.duckdb()})", xt.with_nullable(True)
        return self._over(self._quantile("disc", x, frac), e, scope), xt.with_nullable(True)

    @staticmethod
    def _quantile(kind: str, x: str, frac: float) -> str:
        """The continuous (``cont``) or discrete (``disc``) quantile aggregate of ``x``, nulls ignored."""
        return f"quantile_{kind}({x}, {frac!r})"

    def _aggregate(self, name: str, e: n.Call, scope: Scope) -> Typed:
        fn = AGGREGATES[name]
        outer = "{}"  # the expression around the aggregate (``{}`` stands for it, with its OVER clause)
        saved = self.allow_aggregates
        self.allow_aggregates = False
        try:
            if e.star:
                if name != "COUNT":
                    raise self.err(e.pos, name, f"{name}(*) is not allowed; only COUNT(*)")
                sql, typ = "count(*)", t.LONG
            else:
                want = (2,) if name == "MAP_AGG" else (1,)
                args = self._args(e, scope, want, name)
                inner = ", ".join(a for a, _ in args)
                dist = "DISTINCT " if e.distinct else ""
                at = args[0][1]
                if name == "COUNT":
                    typ = t.LONG
                elif name in ("SUM",):
                    typ = UType("long" if at.is_integral else at.name, True)
                elif name == "AVG" and at.is_integral:
                    typ = t.LONG.with_nullable(True)  # the reference: long?, "to be aligned with SQL semantics"
                elif name in ("AVG", "STDEV", "STDEVP", "VAR", "VARP"):
                    typ = UType("decimal" if at.name == "decimal" else "double", True)
                elif name == "ARRAY_AGG":
                    typ = UType("SqlArray", True, at)
                elif name == "MAP_AGG":
                    typ = UType("SqlMap", True, args[1][1], at.with_nullable(False))
                else:
                    typ = at.with_nullable(True)
                sql = f"{fn}({dist}{inner})"
                if name == "MAP_AGG":
                    if e.distinct:
                        raise self.err(e.pos, name, "MAP_AGG(DISTINCT ...) is not supported")
                    # a map from the group's (key, value) pairs; a repeated key is an error, as in U-SQL
                    sql, outer = f"list(row({args[0][0]}, {args[1][0]}))", "map_from_entries({})"
                if name == "SUM" and at.is_integral:
                    outer = "CAST({} AS BIGINT)"
                if name == "AVG" and at.is_integral:
                    outer = "CAST(trunc({}) AS BIGINT)"  # SQL Server's integer average drops the fraction
                if e.type_args:
                    sql, typ = self._typed_collection_aggregate(name, e, args)
        finally:
            self.allow_aggregates = saved
        if e.over is not None:
            sql = self._over(sql, e, scope)  # OVER follows the aggregate itself, inside any cast or conversion
        return outer.format(sql), typ

    def _typed_collection_aggregate(self, name: str, e: n.Call, args: list[Typed]) -> Typed:
        """``ARRAY_AGG<T>(x)`` / ``MAP_AGG<K,V>(k, v)``: the written types, the values converted to them (for MAP_AGG
        the aggregate of the entries; ``_aggregate`` makes the map of it, after any OVER clause)."""
        want = 2 if name == "MAP_AGG" else 1
        types = [t.resolve(a) for a in e.type_args]
        if len(types) != want or any(x is None or x.name in ("SqlArray", "SqlMap") for x in types):
            spelled = "MAP_AGG<K,V>" if want == 2 else "ARRAY_AGG<T>"
            raise self.err(e.pos, name, f"{spelled} needs {want} built-in type argument(s)")
        vals = []
        for (s, st), ty in zip(args, types, strict=True):
            assert ty is not None
            if st.name != ty.name and not (st.is_numeric and ty.is_numeric) and st.name != "null":
                raise self.err(e.pos, name, f"{name}<{', '.join(map(str, types))}> got a {st} value")
            vals.append(s if st.name == ty.name else f"CAST({s} AS {ty.duckdb()})")
        dist = "DISTINCT " if e.distinct else ""
        if name == "ARRAY_AGG":
            elem = types[0]
            assert elem is not None
            return f"list({dist}{vals[0]})", UType("SqlArray", True, elem)
        key, value = types
        assert key is not None and value is not None
        return f"list(row({vals[0]}, {vals[1]}))", UType("SqlMap", True, value, key)

    def _over(self, sql: str, e: n.Call, scope: Scope) -> str:
        w = e.over
        assert w is not None
        parts = []
        if w.partition_by:
            parts.append("PARTITION BY " + ", ".join(self.tr(p, scope)[0] for p in w.partition_by))
        if w.order_by:
            parts.append("ORDER BY " + self.sort_list(w.order_by, scope))
        if w.frame:
            parts.append(w.frame)
        elif w.order_by and isinstance(e.func, n.Name) and e.func.name.upper() in _FRAMED:
            # the OVER reference: with ORDER BY and no ROWS clause the frame is ROWS BETWEEN UNBOUNDED PRECEDING
            # AND CURRENT ROW (SQL's default, RANGE, would also include the current row's peers)
            parts.append("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW")
        return f"{sql} OVER ({' '.join(parts)})"

    def sort_list(self, items: tuple[n.SortItem, ...], scope: Scope) -> str:
        """ORDER BY items: "U-SQL always orders null values last, regardless of the sort direction" (the ORDER BY
        reference); OVER (ORDER BY ...) sorts with the same rule (CUME_DIST's reference: nulls rank highest)."""
        out = []
        for it in items:
            sql, _ = self.tr(it.expr, scope)
            out.append(f"{sql} {'DESC' if it.descending else 'ASC'} NULLS LAST")
        return ", ".join(out)
