"""Parsing of C# expressions (operators, calls, lambdas, LINQ queries, CASE, windows, literals) and of type names."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import jobinfo
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.lexer import Kind, Token
from airflow_provider_amlpipe.usql.parse_base import ParserBase
from airflow_provider_amlpipe.usql.parse_queries import _RESERVED
from airflow_provider_amlpipe.usql.types import canonical, collection

_GENERIC_AGGREGATES = ("ARRAY_AGG", "MAP_AGG", "AGG")


class Expressions(ParserBase):
    """The expression and type part of the Parser."""

    if TYPE_CHECKING:

        def sort_items(self) -> tuple[n.SortItem, ...]: ...

    # ------------------------------------------------------------ types
    def type_ref(self) -> n.TypeRef:
        t = self.ident("a type")
        name = t.value
        while self.tok.is_op(".") and self.peek().kind is Kind.IDENT:
            self.advance()
            name += "." + self.advance().value
        args: list[n.TypeRef] = []
        if self.tok.is_op("<"):
            self.advance()
            args.append(self.type_ref())
            while self.accept_op(","):
                args.append(self.type_ref())
            self.close_angle(f"closing {name}<")
        if self.tok.is_op("[") and self.peek().is_op("]"):
            self.advance()
            self.advance()
            name += "[]"
        nullable = bool(self.accept_op("?"))
        return n.TypeRef(name, nullable, self.pos(t), tuple(args))

    def close_angle(self, context: str) -> None:
        """Consume one ``>`` closing a type argument list; ``>>`` (``SqlMap<K,SqlArray<V>>``) closes two."""
        t = self.tok
        if t.is_op(">>"):
            self.toks[self.i] = replace(t, value=">", column=t.column + 1)
            return
        self.expect_op(">", context)

    # ------------------------------------------------------------ expressions
    def expr(self) -> n.Expr:
        return self.conditional()

    def conditional(self) -> n.Expr:
        cond = self.coalesce()
        if self.tok.is_op("?"):
            p = self.pos()
            self.advance()
            then = self.conditional()
            self.expect_op(":", "in the conditional operator ?:")
            other = self.conditional()
            return n.Conditional(cond, then, other, p)
        return cond

    def coalesce(self) -> n.Expr:
        left = self.or_expr()
        if self.tok.is_op("??"):
            p = self.pos()
            self.advance()
            return n.Binary("??", left, self.coalesce(), p)
        return left

    def or_expr(self) -> n.Expr:
        left = self.and_expr()
        while self.tok.is_op("||") or self.tok.is_kw("OR"):
            p = self.pos()
            self.advance()
            left = n.Binary("||", left, self.and_expr(), p)
        return left

    def and_expr(self) -> n.Expr:
        left = self.not_expr()
        while self.tok.is_op("&&") or self.tok.is_kw("AND"):
            p = self.pos()
            self.advance()
            left = n.Binary("&&", left, self.not_expr(), p)
        return left

    def not_expr(self) -> n.Expr:
        if self.tok.is_kw("NOT"):
            p = self.pos()
            self.advance()
            return n.Unary("!", self.not_expr(), p)
        return self.bitor()

    def bitor(self) -> n.Expr:
        left = self.bitxor()
        while self.tok.is_op("|"):
            p = self.pos()
            self.advance()
            left = n.Binary("|", left, self.bitxor(), p)
        return left

    def bitxor(self) -> n.Expr:
        left = self.bitand()
        while self.tok.is_op("^"):
            p = self.pos()
            self.advance()
            left = n.Binary("^", left, self.bitand(), p)
        return left

    def bitand(self) -> n.Expr:
        left = self.equality()
        while self.tok.is_op("&"):
            p = self.pos()
            self.advance()
            left = n.Binary("&", left, self.equality(), p)
        return left

    def equality(self) -> n.Expr:
        left = self.relational()
        while self.tok.is_op("==", "!="):
            p = self.pos()
            op = self.advance().value
            left = n.Binary(op, left, self.relational(), p)
        return left

    def relational(self) -> n.Expr:
        left = self.additive()
        while True:
            p = self.pos()
            if self.tok.is_op("<", ">", "<=", ">="):
                op = self.advance().value
                left = n.Binary(op, left, self.additive(), p)
                continue
            if self.tok.is_op("="):
                raise self.error("'=' is not a comparison in U-SQL expressions; use '=='", "expression")
            if self.tok.is_kw("is", "as") and self.peek().kind is Kind.IDENT:
                name = self.peek().value
                if canonical(name) or collection(name) or name in ("object", "var"):
                    word = self.tok.value
                    raise self.error(f"the C# '{word}' operator (x {word} {name}) is not supported; use a cast "
                                     f"({name}) x or a null test", f"'{word}'")  # fmt: skip
            negated = False
            if self.tok.is_kw("NOT") and self.peek().is_kw("IN", "LIKE", "BETWEEN"):
                self.advance()
                negated = True
            if self.accept_kw("IN"):
                self.expect_op("(", "after IN")
                if self.tok.is_kw("SELECT"):
                    raise self.error("IN (subquery) is not U-SQL; use SEMIJOIN", "IN")
                items = [self.expr()]
                while self.accept_op(","):
                    items.append(self.expr())
                self.expect_op(")", "closing IN (")
                left = n.InList(left, tuple(items), negated, p)
            elif self.accept_kw("LIKE"):
                left = n.Like(left, self.additive(), negated, p)
            elif self.accept_kw("BETWEEN"):
                low = self.additive()
                self.expect_kw("AND", "in BETWEEN")
                left = n.Between(left, low, self.additive(), negated, p)
            elif self.tok.is_kw("IS"):
                self.advance()
                neg = bool(self.accept_kw("NOT"))
                self.expect_kw("NULL", "after IS")
                left = n.IsNull(left, neg, p)
            else:
                return left

    def additive(self) -> n.Expr:
        left = self.multiplicative()
        while self.tok.is_op("+", "-"):
            p = self.pos()
            op = self.advance().value
            left = n.Binary(op, left, self.multiplicative(), p)
        return left

    def multiplicative(self) -> n.Expr:
        left = self.unary()
        while self.tok.is_op("*", "/", "%"):
            p = self.pos()
            op = self.advance().value
            left = n.Binary(op, left, self.unary(), p)
        return left

    def _looks_like_cast(self) -> bool:
        # (T) x, (T?) x, (Ns.T) x, (T[]) x, (SqlArray<T>) x — the operand must start right after ')'
        j = self.i + 1
        if self.toks[j].kind is not Kind.IDENT:
            return False
        j += 1
        while self.toks[j].is_op(".") and self.toks[j + 1].kind is Kind.IDENT:
            j += 2
        name = ".".join(tok.value for tok in self.toks[self.i + 1 : j] if tok.kind is Kind.IDENT)
        if self.toks[j].is_op("<"):
            if collection(name) is None:
                return False
            j = self._skip_type_args(j)
            if j < 0:
                return False
        if self.toks[j].is_op("[") and self.toks[j + 1].is_op("]"):
            j += 2
        nullable = False
        if self.toks[j].is_op("?"):
            j += 1
            nullable = True
        if not self.toks[j].is_op(")"):
            return False
        nxt = self.toks[j + 1]
        if nullable or canonical(name) is not None or collection(name) is not None:
            return nxt.kind in (Kind.IDENT, Kind.VAR, Kind.NUMBER, Kind.STRING, Kind.CHAR) or nxt.is_op("(", "!", "-")
        return False

    def _skip_type_args(self, j: int) -> int:
        """The token index after the ``<...>`` type argument list starting at ``j``, or -1 if it is not one."""
        depth = 0
        while True:
            tok = self.toks[j]
            if tok.is_op("<"):
                depth += 1
            elif tok.is_op(">", ">>"):
                depth -= len(tok.value)
                if depth <= 0:
                    return j + 1 if depth == 0 else -1
            elif not (tok.kind is Kind.IDENT or tok.is_op(",", ".", "?")):
                return -1
            j += 1

    def unary(self) -> n.Expr:
        t = self.tok
        p = self.pos()
        if t.is_op("!", "-", "+", "~"):
            self.advance()
            return n.Unary(t.value, self.unary(), p)
        if t.is_op("(") and self.peek().is_kw("Func", "Action", "Predicate") and self.peek(2).is_op("<"):
            end = self._skip_type_args(self.i + 2)
            if end > 0 and self.toks[end].is_op(")"):
                raise self.error("delegate casts ((Func<...>) lambda) and calls of inline delegates are not "
                                 "supported", "delegate")  # fmt: skip
        if t.is_op("(") and self._looks_like_cast():
            self.advance()
            typ = self.type_ref()
            self.expect_op(")")
            return n.Cast(typ, self.unary(), p)
        return self.postfix(self.primary())

    def postfix(self, e: n.Expr) -> n.Expr:
        while True:
            p = self.pos()
            if self.tok.is_op("."):
                self.advance()
                name = self.ident("a member name after '.'").value
                e = n.Member(e, name, p)
            elif self.tok.is_op("("):
                e = self.call(e)
            elif self.tok.is_op("["):
                self.advance()
                idx = self.expr()
                self.expect_op("]", "closing the indexer")
                e = n.Index(e, idx, p)
            else:
                return e

    def call(self, func: n.Expr) -> n.Call:
        p = self.pos()
        self.advance()
        args: list[n.Expr] = []
        distinct = star = False
        if self.tok.is_op("*"):
            self.advance()
            star = True
        elif not self.tok.is_op(")"):
            if self.accept_kw("DISTINCT"):
                distinct = True
            args.append(self.expr())
            while self.accept_op(","):
                args.append(self.expr())
        self.expect_op(")", "closing the argument list")
        within: tuple[n.SortItem, ...] = ()
        if self.tok.is_kw("WITHIN") and self.peek().is_kw("GROUP"):
            self.advance()
            self.advance()
            self.expect_op("(", "after WITHIN GROUP")
            self.expect_kw("ORDER", "in WITHIN GROUP (ORDER BY ...)")
            self.expect_kw("BY", "after ORDER")
            within = self.sort_items()
            self.expect_op(")", "closing WITHIN GROUP (")
        over = self.window() if self.tok.is_kw("OVER") else None
        return n.Call(func, tuple(args), p, distinct, star, over, within)

    def generic_aggregate(self) -> n.Call:
        """``ARRAY_AGG<T>(x)``, ``MAP_AGG<K,V>(k, v)``; ``AGG<MyAgg>(...)`` (user-defined) is refused."""
        t = self.advance()
        if t.value == "AGG":
            raise self.error("user-defined aggregators (AGG<T>(...)) are not supported", "AGG", t)
        self.expect_op("<")
        args = [self.type_ref()]
        while self.accept_op(","):
            args.append(self.type_ref())
        self.close_angle(f"closing {t.value}<")
        if not self.tok.is_op("("):
            raise self.error(f"expected '(' after {t.value}<...>, found {self.describe(self.tok)}")
        return replace(self.call(n.Name(t.value, self.pos(t))), type_args=tuple(args))

    def initializer(self, type_name: str) -> tuple[tuple[n.Expr, ...], ...]:
        """A collection initializer ``{a, b}`` or ``{{k, v}, ...}`` after ``new T``."""
        self.expect_op("{")
        items: list[tuple[n.Expr, ...]] = []
        while not self.tok.is_op("}"):
            if self.tok.is_kw("new") or (self.tok.kind is Kind.IDENT and self.peek().is_op("=")):
                raise self.error("object initializers are not supported", "new")
            if self.accept_op("{"):
                pair = [self.expr()]
                while self.accept_op(","):
                    pair.append(self.expr())
                self.expect_op("}", f"closing an entry of new {type_name}{{...}}")
                items.append(tuple(pair))
            else:
                items.append((self.expr(),))
            if not self.accept_op(","):
                break
        self.expect_op("}", f"closing new {type_name}{{...}}")
        return tuple(items)

    def window(self) -> n.Window:
        p = self.pos()
        self.advance()
        self.expect_op("(", "after OVER")
        part: tuple[n.Expr, ...] = ()
        order: tuple[n.SortItem, ...] = ()
        if self.accept_kw("PARTITION"):
            self.expect_kw("BY", "after PARTITION")
            ps = [self.expr()]
            while self.accept_op(","):
                ps.append(self.expr())
            part = tuple(ps)
        if self.accept_kw("ORDER"):
            self.expect_kw("BY", "after ORDER")
            order = self.sort_items()
        frame: list[str] = []
        if self.tok.is_kw("ROWS", "RANGE"):
            while not self.tok.is_op(")") and self.tok.kind is not Kind.EOF:
                tok = self.advance()
                if tok.kind is Kind.IDENT and tok.value not in (
                    "ROWS", "RANGE", "BETWEEN", "AND", "UNBOUNDED", "PRECEDING", "FOLLOWING", "CURRENT", "ROW",
                ):  # fmt: skip
                    raise self.error(f"unexpected {tok.value!r} in a window frame", "OVER", tok)
                if tok.kind is Kind.NUMBER and tok.suffix:
                    raise self.error("window frame offsets are plain integers", "OVER", tok)
                if tok.kind not in (Kind.IDENT, Kind.NUMBER):
                    raise self.error(f"unexpected {tok.value!r} in a window frame", "OVER", tok)
                frame.append(tok.value)
        self.expect_op(")", "closing OVER (")
        return n.Window(part, order, " ".join(frame), p)

    def case_expr(self) -> n.Case:
        """``CASE [input] WHEN w THEN r {WHEN w THEN r} [ELSE e] END`` (the simple and the searched form)."""
        p = self.pos()
        self.advance()
        operand = None if self.tok.is_kw("WHEN") else self.expr()
        whens: list[tuple[n.Expr, n.Expr]] = []
        while self.accept_kw("WHEN"):
            when = self.expr()
            self.expect_kw("THEN", "after CASE ... WHEN ...")
            whens.append((when, self.expr()))
        if not whens:
            raise self.error(f"expected WHEN in CASE, found {self.describe(self.tok)}")
        otherwise = self.expr() if self.accept_kw("ELSE") else None
        self.expect_kw("END", "closing CASE")
        return n.Case(operand, tuple(whens), otherwise, p)

    def _lambda_params_follow(self) -> bool:
        """True at a parenthesized lambda parameter list: ``(...)`` followed by ``=>``."""
        depth, j = 0, self.i
        while self.toks[j].kind is not Kind.EOF:
            if self.toks[j].is_op("("):
                depth += 1
            elif self.toks[j].is_op(")"):
                depth -= 1
                if depth == 0:
                    return self.toks[j + 1].is_op("=>")
            j += 1
        return False

    def lambda_params(self) -> tuple[tuple[str, ...], tuple[n.TypeRef, ...]]:
        """``(p, i)``, ``(string w)`` or ``()``: the parameter names and, for explicitly typed ones, their types."""
        start = self.advance()
        names: list[str] = []
        types: list[n.TypeRef] = []
        while not self.tok.is_op(")"):
            if not (self.tok.kind is Kind.IDENT and self.peek().is_op(",", ")")):
                types.append(self.type_ref())
            names.append(self.ident("a lambda parameter name").value)
            if not self.accept_op(","):
                break
        self.expect_op(")", "closing the lambda parameter list")
        if types and len(types) != len(names):
            raise self.error("lambda parameters must all have a type or all have none", "lambda", start)
        return tuple(names), tuple(types)

    def lambda_body(self, params: tuple[str, ...], p: n.Pos, types: tuple[n.TypeRef, ...] = ()) -> n.Lambda:
        """The body after ``params =>``; statement bodies ``{ ... }`` are refused."""
        self.expect_op("=>")
        if self.tok.is_op("{"):
            raise self.error("statement lambdas (p => { ... }) are not supported; use an expression body p => expr",
                             "lambda")  # fmt: skip
        return n.Lambda(params, self.expr(), p, types)

    def linq_query(self) -> n.Expr:
        """``from p in source [where cond]... select expr``: the same as ``source.Where(p => cond).Select(p => expr)``
        (C# query syntax); other query clauses are refused."""
        self.advance()
        name = self.ident("a range variable").value
        self.advance()  # in
        source = self.expr()
        while True:
            p = self.pos()
            if self.tok.is_kw("where", "select"):
                method = "Where" if self.advance().value == "where" else "Select"
                lam = n.Lambda((name,), self.expr(), p)
                source = n.Call(n.Member(source, method, p), (lam,), p)
                if method == "Select":
                    return source
            else:
                raise self.error(f"{self.describe(self.tok)} in a LINQ query is not supported (only from x in ... "
                                 "[where ...] select ...)", "LINQ query")  # fmt: skip

    def job_info(self) -> n.Variable:
        """``@@JobInfo.Property`` (``@@JobInfo.Submit.Alias``...): a variable named ``@@JobInfo.Submit.Alias``."""
        p = self.pos()
        self.advance()
        parts: list[str] = []
        while self.tok.is_op(".") and (not parts or parts[-1] in jobinfo.GROUPS):
            self.advance()
            parts.append(self.ident("a @@JobInfo property").value)
        name = "@@JobInfo." + ".".join(parts)
        if name not in jobinfo.PROPERTY_TYPES:
            raise self.error(f"{name if parts else '@@JobInfo'} is not a job property (known: "
                             f"{', '.join(jobinfo.PROPERTY_TYPES)})", "@@JobInfo", self.toks[self.i - 1])  # fmt: skip
        return n.Variable(name, p)

    def primary(self) -> n.Expr:
        t = self.tok
        p = self.pos()
        if t.kind is Kind.NUMBER:
            self.advance()
            return number_literal(t, p)
        if t.kind is Kind.STRING:
            self.advance()
            return n.Literal(t.value, "string", p)
        if t.kind is Kind.CHAR:
            self.advance()
            return n.Literal(t.value, "char", p)
        if t.kind is Kind.VAR:
            if t.value.lower() == "@@jobinfo":
                return self.job_info()
            if t.value.startswith("@@"):
                raise self.error(f"{t.value} was not substituted (system variables and @@name@@ placeholders are not "
                                 "values)", "variable")  # fmt: skip
            self.advance()
            return n.Variable(t.value, p)
        if t.is_op("(") and self._lambda_params_follow():
            names, types = self.lambda_params()
            return self.lambda_body(names, p, types)
        if t.is_op("("):
            self.advance()
            if self.tok.is_kw("SELECT"):
                raise self.error("scalar subqueries are not U-SQL; JOIN the rowset instead", "subquery")
            e = self.expr()
            self.expect_op(")", "closing the parenthesis")
            return e
        if t.kind is Kind.IDENT:
            if not t.quoted and t.value in _RESERVED:
                raise self.error(f"expected an expression, found the keyword {t.value}")
            if t.is_kw("true", "false") and not t.quoted:
                self.advance()
                return n.Literal(t.value == "true", "bool", p)
            if t.is_kw("null", "NULL"):  # U-SQL accepts its upper-case keyword spelling too (MovieLens samples)
                self.advance()
                return n.Literal(None, "null", p)
            if t.is_kw("new") and not t.quoted:
                self.advance()
                typ = self.type_ref()
                args: list[n.Expr] = []
                if not self.tok.is_op("{"):
                    self.expect_op("(", f"after new {typ.name}")
                    if not self.tok.is_op(")"):
                        args.append(self.expr())
                        while self.accept_op(","):
                            args.append(self.expr())
                    self.expect_op(")", f"closing new {typ.name}(")
                init = self.initializer(typ.name) if self.tok.is_op("{") else None
                return n.New(typ, tuple(args), p, init)
            if t.is_kw("CASE") and not t.quoted:
                return self.case_expr()
            if t.is_kw("delegate") and not t.quoted:
                raise self.error("anonymous methods (delegate { ... }) are not supported; use a lambda p => expr",
                                 "delegate")  # fmt: skip
            if self.peek().is_op("=>"):
                self.advance()
                return self.lambda_body((t.value,), p)
            if t.is_kw("from") and self.peek().kind is Kind.IDENT and self.peek(2).is_kw("in"):
                return self.linq_query()
            if t.is_kw(*_GENERIC_AGGREGATES) and self.peek().is_op("<"):
                return self.generic_aggregate()
            self.advance()
            return n.Name(t.value, p)
        raise self.error(f"expected an expression, found {self.describe(t)}")


def number_literal(t: Token, p: n.Pos) -> n.Literal:
    """The C#-typed literal of a NUMBER token (``1`` int, ``1L`` long, ``1.0`` double, ``1.0f`` float...)."""
    text, suf = t.value, t.suffix
    is_real = any(c in text for c in ".eE")
    if suf == "m":
        return n.Literal(text, "decimal", p)
    if suf in ("f", "d") or is_real:
        kind = "float" if suf == "f" else "double"
        return n.Literal(float(text), kind, p)
    value = int(text)
    if suf in ("l", "ul", "lu"):
        return n.Literal(value, "long", p)
    if suf == "u":
        return n.Literal(value, "long", p)
    return n.Literal(value, "int" if value <= 2**31 - 1 else "long", p)
