"""C# operators and SQL predicates: unary/binary operators, ?:, CASE, casts, IN, LIKE, BETWEEN, IS NULL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed
from airflow_provider_amlpipe.usql.types import UType

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_amlpipe.usql.errors import UsqlError


class Operators:
    """Methods of :class:`~.exprs.ExprTranslator`: operators, ?:, CASE, casts and the SQL predicates."""

    # provided by ExprTranslator
    _bitwise: Callable[[str, str, str], str]
    _concat_arg: Callable[[str, UType], str]
    _date_arithmetic: Callable[[str, str, UType, str, UType, n.Pos], Typed]
    _divide: Callable[[str, str, UType], str]
    _not_distinct: Callable[[str, str, bool], str]
    bool_sql: Callable[[n.Expr, Scope, str], str]
    err: Callable[[n.Pos, str, str], UsqlError]
    in_join_condition: bool
    tr: Callable[[n.Expr, Scope], Typed]

    def _unary(self, e: n.Unary, scope: Scope) -> Typed:
        s, typ = self.tr(e.operand, scope)
        if e.op == "!":
            return f"(NOT {s})", typ
        if e.op == "-":
            return f"(-{s})", typ
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
        if op in ("+", "-", "*", "%"):
            return f"({a} {op} {b})", t.promote(at, bt)
        if op == "/":
            typ = t.promote(at, bt)
            return self._divide(a, b, typ), typ
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
            return f"coalesce({a}, {b})", typ
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
        return f"CASE WHEN {c} THEN {a} ELSE {b} END", typ

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
        return f"CASE {arms}{other} END", typ

    def _cast(self, e: n.Cast, scope: Scope) -> Typed:
        target = t.resolve(e.type)
        if target is None:
            raise self.err(e.type.pos, "type", f"unknown type {e.type.name!r}")
        s, st = self.tr(e.operand, scope)
        if st.name == "null":
            return f"CAST(NULL AS {target.duckdb()})", target.with_nullable(True)
        if st.name == target.name:
            return s, target
        if target.is_integral and st.name in ("double", "float", "decimal"):
            return f"CAST(trunc({s}) AS {target.duckdb()})", target
        if target.name == "char" and st.is_integral:
            return f"chr({s})", target
        if target.is_integral and st.name == "char":
            return f"CAST(unicode({s}) AS {target.duckdb()})", target
        return f"CAST({s} AS {target.duckdb()})", target

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
