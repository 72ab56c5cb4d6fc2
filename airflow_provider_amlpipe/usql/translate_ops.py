"""C# operators, SQL predicates and SQL functions called by name (aggregates, windows, percentiles, COALESCE/ISNULL/
NULLIF): their typing and checks, the same in every dialect, with the SQL they share; a dialect renders casts,
aggregates and percentiles (``_cast_sql``, ``AGGREGATE_FUNCTIONS``, ``_aggregate_outer``,
``_collection_aggregate_sql``, ``_percentile_sql``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from airflow_provider_amlpipe.usql import decimal_scale as ds
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed, scale_of, with_scale
from airflow_provider_amlpipe.usql.translate_base import TIMESPAN, TranslatorBase
from airflow_provider_amlpipe.usql.types import UType

#: The aggregates of U-SQL (the SQL functions are each dialect's ``AGGREGATE_FUNCTIONS``).
AGGREGATES = ("COUNT", "SUM", "AVG", "MIN", "MAX", "ANY_VALUE", "ARRAY_AGG", "MAP_AGG", "STDEV", "STDEVP", "VAR",
              "VARP", "FIRST", "LAST")  # fmt: skip
WINDOW_ONLY = {
    "ROW_NUMBER": "row_number", "RANK": "rank", "DENSE_RANK": "dense_rank", "NTILE": "ntile", "LAG": "lag",
    "LEAD": "lead", "FIRST_VALUE": "first_value", "LAST_VALUE": "last_value", "CUME_DIST": "cume_dist",
    "PERCENT_RANK": "percent_rank",
}  # fmt: skip
#: Window functions computed over a window frame (ranking and offset functions ignore frames).
_FRAMED = frozenset(AGGREGATES) | {"FIRST_VALUE", "LAST_VALUE"}


def aggregate_type(name: str, at: UType) -> UType:
    """The C# type of aggregate ``name`` (not ARRAY_AGG/MAP_AGG) of values of type ``at``."""
    if name == "COUNT":
        return t.LONG
    if name == "SUM":
        return UType("long" if at.is_integral else at.name, True)
    if name == "AVG" and at.is_integral:
        return t.LONG.with_nullable(True)  # the reference: long?, "to be aligned with SQL semantics"
    if name in ("AVG", "STDEV", "STDEVP", "VAR", "VARP"):
        return UType("decimal" if at.name == "decimal" else "double", True)
    return at.with_nullable(True)


class Operators(TranslatorBase):
    """Methods of :class:`~.translator.Translator`: operators, ?:, CASE, casts and the SQL predicates."""

    def _unary(self, e: n.Unary, scope: Scope) -> Typed:
        s, typ = self.tr(e.operand, scope)
        if e.op == "!":
            return f"(NOT {s})", typ
        if e.op == "-":
            return with_scale(f"(-{s})", scale_of(s)), typ
        if e.op == "~":
            return f"(~{s})", typ
        return s, typ

    def _binary(self, e: n.Binary, scope: Scope) -> Typed:
        a, at = self.tr(e.left, scope)
        b, bt = self.tr(e.right, scope)
        op = e.op
        if op == "+" and ("string" in (at.name, bt.name)):
            return f"concat({self._concat_arg(a, at)}, {self._concat_arg(b, bt)})", t.STRING
        if (op in ("+", "-") and "TimeSpan" in (at.name, bt.name)) or (op == "-" and at.name == bt.name == "DateTime"):
            return self._date_arithmetic(op, a, at, b, bt, e.pos)
        if op in ("+", "-") and at.name == "DateTime":
            raise self.err(e.pos, "DateTime", f"DateTime {op} {bt} is not defined; use AddDays etc.")
        if op in ("+", "-", "*", "%", "/"):
            typ = t.promote(at, bt)
            sql = self._divide(a, b, typ) if op == "/" else f"({a} {op} {b})"
            if typ.name == "decimal":
                sql = with_scale(sql, ds.arithmetic(op, ds.operand_scale(a, at), ds.operand_scale(b, bt)))
            return sql, typ
        if op in ("==", "!="):
            return self._equality(op, a, at, b, bt, e), t.BOOL
        if op in ("<", ">", "<=", ">="):
            sql = f"({a} {op} {b})"
            if at.nullable or bt.nullable:
                sql = f"coalesce({sql}, FALSE)"
            return sql, t.BOOL
        if op in ("&&", "||"):
            return f"({a} {'AND' if op == '&&' else 'OR'} {b})", t.BOOL
        if op in ("&", "|", "^"):
            if at.name == "bool":
                if op == "^":
                    return f"({a} <> {b})", at
                return f"({a} {'AND' if op == '&' else 'OR'} {b})", at
            return self._bitwise(op, a, b), t.promote(at, bt)
        if op == "??":
            typ = bt if at.name == "null" else at.with_nullable(bt.nullable)
            return self._coalesce([(a, at), (b, bt)], typ), typ
        raise self.err(e.pos, "operator", f"operator {op} is not supported")

    def _equality(self, op: str, a: str, at: UType, b: str, bt: UType, e: n.Binary) -> str:
        neg = op == "!="
        if at.name == "null" or bt.name == "null":
            other = b if at.name == "null" else a
            return f"({other} IS {'NOT ' if neg else ''}NULL)"
        if self.in_join_condition or not (at.nullable or bt.nullable):
            return f"({a} {'<>' if neg else '='} {b})"
        return self._not_distinct(a, b, neg)

    def _conditional(self, e: n.Conditional, scope: Scope) -> Typed:
        c = self.bool_sql(e.cond, scope, "the condition of ?:")
        a, at = self.tr(e.then, scope)
        b, bt = self.tr(e.otherwise, scope)
        typ = at if at.name != "null" else bt.with_nullable(True)
        if at.name != "null" and bt.name != "null" and at.is_numeric and bt.is_numeric:
            typ = t.promote(at, bt)
        elif bt.name == "null":
            typ = at.with_nullable(True)
        sql = f"CASE WHEN {c} THEN {a} ELSE {b} END"
        if typ.name == "decimal":
            sql = with_scale(sql, ds.chosen(c, ds.operand_scale(a, at), ds.operand_scale(b, bt)))
        return sql, typ

    def _coalesce(self, args: list[Typed], typ: UType) -> str:
        """The first of ``args`` that is not null (``??``, ``COALESCE``, ``ISNULL``), with its scale."""
        sql = f"coalesce({', '.join(a for a, _ in args)})"
        if typ.name != "decimal":
            return sql
        return with_scale(sql, ds.first_not_null([(a, ds.operand_scale(a, at)) for a, at in args]))

    def _case(self, e: n.Case, scope: Scope) -> Typed:
        """``CASE``: the result of the first WHEN that matches (lexical order), else ELSE, else null.

        As the U-SQL reference says, the WHEN values of the simple form have the input's type and compare with
        C# ``==`` (null equals null); all results have one type; without ELSE that type must be nullable.
        """
        if e.operand is None:
            conds = [self.bool_sql(w, scope, "a CASE WHEN condition") for w, _ in e.whens]
        else:
            x, xt = self.tr(e.operand, scope)
            conds = []
            for w, _ in e.whens:
                v, vt = self.tr(w, scope)
                if vt.name not in ("null", xt.name):
                    raise self.err(w.pos, "CASE", f"the WHEN value is {vt} but the CASE input is {xt}; they must "
                                   "have the same type")  # fmt: skip
                conds.append(self._equality("==", x, xt, v, vt, n.Binary("==", e.operand, w, w.pos)))
        results = [r for _, r in e.whens] + ([e.otherwise] if e.otherwise is not None else [])
        typed = [(r, *self.tr(r, scope)) for r in results]
        known = [(r, ty) for r, _, ty in typed if ty.name != "null"]
        if not known:
            raise self.err(e.pos, "CASE", "no CASE result has a type: cast one, e.g. (string) null")
        first = known[0][1]
        for r, ty in known[1:]:
            if str(ty.with_nullable(first.nullable)) != str(first):
                raise self.err(r.pos, "CASE", f"CASE results must have one type: this one is {ty}, the first is "
                               f"{first}")  # fmt: skip
        typ = first.with_nullable(any(ty.nullable for _, ty in known))
        if (e.otherwise is None or len(known) < len(typed)) and not typ.nullable:
            raise self.err(e.pos, "CASE", f"this CASE can return null (no ELSE, or a null result) but its result type "
                           f"{typ} is not nullable: add ELSE or cast a result to {typ}?")  # fmt: skip
        arms = " ".join(f"WHEN {c} THEN {sql}" for c, (_, sql, _) in zip(conds, typed, strict=False))
        other = f" ELSE {typed[-1][1]}" if e.otherwise is not None else ""
        sql = f"CASE {arms}{other} END"
        scales = [ds.operand_scale(x, ty) for _, x, ty in typed]
        if typ.name == "decimal" and None not in scales:
            scale_arms = " ".join(f"WHEN {c} THEN {x}" for c, x in zip(conds, scales, strict=False))
            sql = with_scale(sql, f"CASE {scale_arms}{f' ELSE {scales[-1]}' if e.otherwise is not None else ''} END")
        return sql, typ

    def _date_arithmetic(self, op: str, a: str, at: UType, b: str, bt: UType, pos: n.Pos) -> Typed:
        """DateTime - DateTime = TimeSpan; DateTime +/- TimeSpan; TimeSpan +/- TimeSpan."""
        nullable = at.nullable or bt.nullable
        if at.name == bt.name == "DateTime":
            typ = TIMESPAN
        elif at.name == "DateTime" and bt.name == "TimeSpan":
            typ = t.DATETIME
        elif at.name == bt.name == "TimeSpan":
            typ = TIMESPAN
        else:
            raise self.err(pos, "operator", f"{at} {op} {bt} is not defined")
        return self._date_arithmetic_sql(op, a, at, b, bt, pos), typ.with_nullable(nullable)

    def _date_arithmetic_sql(self, op: str, a: str, at: UType, b: str, bt: UType, pos: n.Pos) -> str:
        """The SQL of a checked DateTime/TimeSpan ``a op b``."""
        raise self.unsupported(pos, "TimeSpan", "TimeSpan values")

    def _cast(self, e: n.Cast, scope: Scope) -> Typed:
        target = t.resolve(e.type)
        if target is None:
            raise self.err(e.type.pos, "type", f"unknown type {e.type.name!r}")
        s, st = self.tr(e.operand, scope)
        if st.name == "null":
            return f"CAST(NULL AS {self._type_sql(target)})", target.with_nullable(True)
        if st.name == target.name:
            return s, target
        sql = self._cast_sql(s, st, target, e)
        if target.name == "decimal" and st.is_integral:
            sql = with_scale(sql, "0")
        return sql, target

    def _nullsafe(self, sql: str, types: list[UType]) -> str:
        return f"coalesce({sql}, FALSE)" if any(x.nullable for x in types) else sql

    def _inlist(self, e: n.InList, scope: Scope) -> Typed:
        s, st = self.tr(e.operand, scope)
        items = [self.tr(i, scope) for i in e.items]
        sql = f"({s} {'NOT ' if e.negated else ''}IN ({', '.join(x for x, _ in items)}))"
        return self._nullsafe(sql, [st, *(x for _, x in items)]), t.BOOL

    def _like(self, e: n.Like, scope: Scope) -> Typed:
        s, st = self.tr(e.operand, scope)
        p, pt = self.tr(e.pattern, scope)
        return self._nullsafe(f"({s} {'NOT ' if e.negated else ''}LIKE {p})", [st, pt]), t.BOOL

    def _between(self, e: n.Between, scope: Scope) -> Typed:
        s, st = self.tr(e.operand, scope)
        lo, lt = self.tr(e.low, scope)
        hi, ht = self.tr(e.high, scope)
        sql = f"({s} {'NOT ' if e.negated else ''}BETWEEN {lo} AND {hi})"
        return self._nullsafe(sql, [st, lt, ht]), t.BOOL

    def _isnull(self, e: n.IsNull, scope: Scope) -> Typed:
        s, _ = self.tr(e.operand, scope)
        return f"({s} IS {'NOT ' if e.negated else ''}NULL)", t.BOOL


class SqlFunctions(Operators):
    """Methods of :class:`~.translator.Translator`: aggregates, windows, percentiles."""

    #: The SQL aggregate function of each U-SQL aggregate but ARRAY_AGG and MAP_AGG (``STDEV`` -> ``stddev_samp``).
    AGGREGATE_FUNCTIONS: ClassVar[Mapping[str, str]] = {
        "COUNT": "count", "SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max", "ANY_VALUE": "any_value",
        "STDEV": "stddev_samp", "STDEVP": "stddev_pop", "VAR": "var_samp", "VARP": "var_pop", "FIRST": "first",
        "LAST": "last",
    }  # fmt: skip

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
            sql = self._over(f"{WINDOW_ONLY[upper]}({', '.join(a for a, _ in args)})", e, scope)
            scale = scale_of(args[0][0]) if typ.name == "decimal" and len(args) <= 2 else None
            if scale is not None:  # the same function over the same window reads the same row's scale
                rest = "".join(f", {a}" for a, _ in args[1:])
                sql = with_scale(sql, self._over(f"{WINDOW_ONLY[upper]}({scale}{rest})", e, scope))
            return sql, typ
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
            return with_scale(f"CASE WHEN {cond} THEN NULL ELSE {a} END", scale_of(a)), at.with_nullable(True)
        typ = self._common_type(name, list(zip(e.args, (ty for _, ty in args), strict=True)))
        return self._coalesce(args, typ), typ.with_nullable(args[-1][1].nullable)

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
        if name == "PERCENTILE_CONT" and not xt.is_numeric:
            raise self.err(item.expr.pos, name, f"{name} needs a numeric ORDER BY expression, not {xt}")
        if name == "PERCENTILE_DISC" and item.descending and not xt.is_numeric:
            raise self.err(item.expr.pos, name, f"{name} with ORDER BY ... DESC needs a numeric expression")
        typ = UType("double", True) if name == "PERCENTILE_CONT" else xt.with_nullable(True)
        return self._percentile_sql(name, e, scope, (x, xt), float(arg.value), typ), typ  # type: ignore[arg-type]

    def _percentile_sql(self, name: str, e: n.Call, scope: Scope, x: Typed, frac: float, typ: UType) -> str:
        """The checked percentile of ``x`` (ordered as ``e.within_group[0]`` says), with its OVER clause."""
        raise self.unsupported(e.pos, name, name)

    def _aggregate(self, name: str, e: n.Call, scope: Scope) -> Typed:
        saved = self.allow_aggregates
        self.allow_aggregates = False
        try:
            if e.star:
                if name != "COUNT":
                    raise self.err(e.pos, name, f"{name}(*) is not allowed; only COUNT(*)")
                sql, typ, outer, scale = "count(*)", t.LONG, "{}", None
            else:
                args = self._args(e, scope, (2,) if name == "MAP_AGG" else (1,), name)
                if name in ("ARRAY_AGG", "MAP_AGG"):
                    if name == "MAP_AGG" and e.distinct:
                        raise self.err(e.pos, name, "MAP_AGG(DISTINCT ...) is not supported")
                    typ = self._collection_type(name, e, args)
                    sql, outer = self._collection_aggregate_sql(name, e, args, typ)
                    scale = None
                else:
                    at = args[0][1]
                    typ = aggregate_type(name, at)
                    sql = f"{self.AGGREGATE_FUNCTIONS[name]}({'DISTINCT ' if e.distinct else ''}{args[0][0]})"
                    outer = self._aggregate_outer(name, at)
                    scale = self._aggregate_scale(name, args[0][0]) if typ.name == "decimal" else None
        finally:
            self.allow_aggregates = saved
        if e.over is not None:
            sql = self._over(sql, e, scope)  # OVER follows the aggregate itself, inside any cast or conversion
            scale = None if scale is None else self._over(scale, e, scope)
        return with_scale(outer.format(sql), scale), typ

    def _aggregate_scale(self, name: str, value: str) -> str | None:
        """The scale of a decimal aggregate: a sum's (and an average's) is its largest term's; MIN and MAX keep
        the chosen value's."""
        scale = scale_of(value)
        if scale is None:
            return None
        if name in ("SUM", "AVG"):
            return f"max({scale})"
        if name in ("MIN", "MAX"):
            return self._arg_extreme(name, scale, value)
        return None

    @staticmethod
    def _arg_extreme(name: str, arg: str, value: str) -> str:
        """``arg`` of the row with the smallest (``MIN``) or largest (``MAX``) ``value``."""
        return f"{'arg_min' if name == 'MIN' else 'arg_max'}({arg}, {value})"

    def _aggregate_outer(self, name: str, at: UType) -> str:
        """The expression around aggregate ``name`` of ``at`` values (``{}`` stands for it, with its OVER clause)."""
        if name in ("SUM", "AVG") and at.is_integral:
            return "CAST({} AS BIGINT)"
        return "{}"

    def _collection_type(self, name: str, e: n.Call, args: list[Typed]) -> UType:
        """``ARRAY_AGG[<T>](x)`` -> SqlArray, ``MAP_AGG[<K,V>](k, v)`` -> SqlMap; written types are checked."""
        if not e.type_args:
            if name == "ARRAY_AGG":
                return UType("SqlArray", True, args[0][1])
            return UType("SqlMap", True, args[1][1], args[0][1].with_nullable(False))
        want = 2 if name == "MAP_AGG" else 1
        types = [t.resolve(a) for a in e.type_args]
        if len(types) != want or any(x is None or x.name in ("SqlArray", "SqlMap") for x in types):
            spelled = "MAP_AGG<K,V>" if want == 2 else "ARRAY_AGG<T>"
            raise self.err(e.pos, name, f"{spelled} needs {want} built-in type argument(s)")
        for (_, st), ty in zip(args, types, strict=True):
            assert ty is not None
            if st.name != ty.name and not (st.is_numeric and ty.is_numeric) and st.name != "null":
                raise self.err(e.pos, name, f"{name}<{', '.join(map(str, types))}> got a {st} value")
        if name == "ARRAY_AGG":
            assert types[0] is not None
            return UType("SqlArray", True, types[0])
        key, value = types
        assert key is not None and value is not None
        return UType("SqlMap", True, value, key)

    def _converted(self, value: Typed, to: UType | None) -> str:
        """``value`` as SQL of type ``to`` (unchanged if it has that type already)."""
        sql, typ = value
        if to is None or typ.name == to.name:
            return sql
        return f"CAST({sql} AS {self._type_sql(to)})"

    def _collection_aggregate_sql(self, name: str, e: n.Call, args: list[Typed], typ: UType) -> tuple[str, str]:
        """ARRAY_AGG / MAP_AGG of the values converted to ``typ``'s: the aggregate and the expression around it."""
        raise self.unsupported(e.pos, name, name)

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
