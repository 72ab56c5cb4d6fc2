"""Parsing of queries: SELECT, EXTRACT, FROM sources and joins, set operations, PIVOT / UNPIVOT, SAMPLE, VALUES,
ORDER BY ... FETCH."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.lexer import Kind, Token
from airflow_provider_amlpipe.usql.parse_base import ParserBase

_UNSUPPORTED_QUERIES = {
    "PROCESS": "PROCESS (user-defined processor)",
    "REDUCE": "REDUCE (user-defined reducer)",
    "COMBINE": "COMBINE (user-defined combiner)",
}
#: EXTRACT file-property columns (``name = FILE.URI()``) and their C# types.
_FILE_PROPERTIES = {"URI": "string", "MODIFIED": "DateTime", "CREATED": "DateTime", "LENGTH": "long"}
_JOIN_START = ("JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "SEMIJOIN", "ANTISEMIJOIN", "OUTER")
_CLAUSE_END = (
    "WHERE", "GROUP", "HAVING", "ORDER", "UNION", "EXCEPT", "INTERSECT", "OFFSET", "FETCH", "TO", "USING", "ON",
    "OPTION", "FROM", *_JOIN_START,
)  # fmt: skip
_RESERVED = {
    *_CLAUSE_END,
    "SELECT",
    "EXTRACT",
    "OUTPUT",
    "DECLARE",
    "AS",
    "BY",
    "AND",
    "OR",
    "IN",
    "LIKE",
    "BETWEEN",
    "DISTINCT",
    "ALL",
    "ASC",
    "DESC",
    "ROWS",
    "OVER",
    "PARTITION",
    "APPLY",
    "VALUES",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
}


class QueryClauses(ParserBase):
    """The query part of the Parser."""

    if TYPE_CHECKING:

        def expr(self) -> n.Expr: ...
        def type_ref(self) -> n.TypeRef: ...
        def table_name(self) -> n.TableName: ...
        def _at_call(self) -> bool: ...
        def tvf_call(self) -> n.TvfCall: ...
        def call_args(self) -> tuple[n.Expr | None, ...]: ...
        def udo(self, family: str, using: Token) -> n.Udo: ...

    def query_with_fetch(self) -> n.Query:
        p = self.pos()
        q = self.query_expr()
        if self.tok.is_kw("ORDER", "OFFSET", "FETCH"):
            order, offset, fetch = self.order_fetch(require_fetch=True)
            return n.Ordered(q, order, offset, fetch, p)
        return q

    def order_fetch(self, require_fetch: bool) -> tuple[tuple[n.SortItem, ...], n.Expr | None, n.Expr | None]:
        order: tuple[n.SortItem, ...] = ()
        offset = fetch = None
        start = self.tok
        if self.accept_kw("ORDER"):
            self.expect_kw("BY", "after ORDER")
            order = self.sort_items()
        if self.accept_kw("OFFSET"):
            offset = self.expr()
            if not self.accept_kw("ROWS", "ROW"):
                raise self.error("expected ROWS after OFFSET n")
        if self.accept_kw("FETCH"):
            self.accept_kw("FIRST", "NEXT")
            fetch = self.expr()
            self.accept_kw("ROWS", "ROW")  # optional in U-SQL: FETCH 10
            self.accept_kw("ONLY")
        if require_fetch and order and offset is None and fetch is None:
            raise self.error("ORDER BY in a query needs FETCH [FIRST] n ROWS (order rows in OUTPUT instead)",
                             "ORDER BY", start)  # fmt: skip
        return order, offset, fetch

    def sort_items(self) -> tuple[n.SortItem, ...]:
        items = []
        while True:
            e = self.expr()
            desc = False
            if self.accept_kw("DESC"):
                desc = True
            else:
                self.accept_kw("ASC")
            items.append(n.SortItem(e, desc))
            if not self.accept_op(","):
                return tuple(items)

    def query_expr(self) -> n.Query:
        left = self.sampled(self.query_term())
        while self.tok.is_kw("UNION", "EXCEPT", "INTERSECT") or (
            self.tok.is_kw("OUTER") and self.peek().is_kw("UNION")
        ):
            p = self.pos()
            outer = bool(self.accept_kw("OUTER"))
            op = self.advance().value
            quant = "ALL" if outer else "DISTINCT"  # OUTER UNION defaults to ALL
            if self.accept_kw("ALL"):
                quant = "ALL"
            elif self.tok.is_kw("DISTINCT"):
                if outer:
                    raise self.error("OUTER UNION does not support DISTINCT (it is always ALL)", "OUTER UNION")
                self.advance()
            by_name = self.by_name(outer, op)
            if self.tok.is_kw("WITH") and self.peek().is_kw("DISJOINT"):
                self.disjoint_hint()
            right = self.sampled(self.query_term())
            if by_name is None:
                left = n.SetOp(op, quant, left, right, p)
            else:
                left = n.ByNameSetOp(op, quant, left, right, by_name[0], by_name[1], outer, p)
        return left

    def by_name(self, outer: bool, op: str) -> tuple[tuple[str, ...] | None, bool] | None:
        """``BY NAME [ON (c, ... [, *] | *)]`` as (ON columns or None, star); None without BY NAME."""
        if not self.accept_kw("BY"):
            if outer:
                raise self.error("OUTER UNION needs BY NAME ON (columns)", "OUTER UNION")
            return None
        self.expect_kw("NAME", f"after {op} ... BY")
        if not self.accept_kw("ON"):
            if outer:
                raise self.error("OUTER UNION needs BY NAME ON (columns)", "OUTER UNION")
            return None, False
        self.expect_op("(", "after BY NAME ON")
        cols: list[str] = []
        star = False
        while True:
            if self.accept_op("*"):
                star = True
                break
            cols.append(self.ident("a column name or *").value)
            if not self.accept_op(","):
                break
        self.expect_op(")", "closing BY NAME ON (; '*' may only come last")
        return tuple(cols), star

    def disjoint_hint(self) -> None:
        """``WITH DISJOINT (cols)``: an optimizer hint; it does not change the result."""
        self.advance()
        self.advance()
        self.expect_op("(", "after WITH DISJOINT")
        self.ident("a column name")
        while self.accept_op(","):
            self.ident("a column name")
        self.expect_op(")", "closing WITH DISJOINT (")

    def sampled(self, q: n.Query) -> n.Query:
        """``q SAMPLE ANY (n)`` / ``q SAMPLE UNIFORM (fraction)``, or ``q`` when no SAMPLE follows."""
        if not self.tok.is_kw("SAMPLE"):
            return q
        p = self.pos()
        self.advance()
        method = self.tok
        if not method.is_kw("ANY", "UNIFORM"):
            raise self.error(f"expected ANY (n) or UNIFORM (fraction) after SAMPLE, found {self.describe(method)}")
        self.advance()
        return n.Sample(q, method.value, self.sample_args(method.value, 1), (), None, p)

    def sample_args(self, method: str, count: int) -> tuple[n.Expr, ...]:
        self.expect_op("(", f"after {method}")
        args = [self.expr()]
        while len(args) < count:
            self.expect_op(",", f"in {method} (fraction, min_row_count)")
            args.append(self.expr())
        self.expect_op(")", f"closing {method} (")
        return tuple(args)

    def sample_expr(self) -> n.Sample:
        """``SAMPLE rowset [ON c, ...] UNIFORM (f) | UNIVERSE (f) | DISTINCT (f, n) [WITH WEIGHT AS w]``."""
        p = self.pos()
        self.advance()
        src = self.primary_source()
        query = n.Select((n.SelectItem(n.Star(None, p), None, p),), src, None, (), None, False, p)
        on: list[str] = []
        if self.accept_kw("ON"):
            on.append(self.ident("a column name").value)
            while self.accept_op(","):
                on.append(self.ident("a column name").value)
        method = self.tok
        wanted = ("UNIVERSE", "DISTINCT") if on else ("UNIFORM",)
        if not method.is_kw(*wanted):
            forms = "UNIVERSE (f) or DISTINCT (f, n)" if on else "UNIFORM (f), or ON columns"
            raise self.error(f"expected {forms} in SAMPLE, found {self.describe(method)}")
        self.advance()
        args = self.sample_args(method.value, 2 if method.value == "DISTINCT" else 1)
        weight = None
        if self.accept_kw("WITH"):
            self.expect_kw("WEIGHT", "after SAMPLE ... WITH")
            self.expect_kw("AS", "after WITH WEIGHT")
            weight = self.ident("a weight column name").value
        return n.Sample(query, method.value, args, tuple(on), weight, p)

    def query_term(self) -> n.Query:
        t = self.tok
        if t.is_kw("SELECT"):
            return self.select()
        if t.is_kw("EXTRACT"):
            return self.extract()
        if t.is_op("("):
            self.advance()
            q = self.query_with_fetch()
            self.expect_op(")", "closing the parenthesised query")
            return q
        if t.kind is Kind.VAR and self.peek().is_op("("):
            return self.tvf_call()
        if t.kind is Kind.VAR:
            self.advance()
            return n.RowsetRef(t.value, None, self.pos(t))
        if t.is_kw("SAMPLE"):
            return self.sample_expr()
        if t.kind is Kind.IDENT and t.value in _UNSUPPORTED_QUERIES:
            name = _UNSUPPORTED_QUERIES[t.value]
            raise self.error(f"{name} is not supported by the local U-SQL compiler", name)
        if t.kind is Kind.IDENT and self._at_call():
            return self.tvf_call()
        raise self.error(f"expected SELECT, EXTRACT or a rowset, found {self.describe(t)}")

    def extract(self) -> n.Extract | n.ExtractFileProperties:
        p = self.pos()
        self.advance()
        cols: list[tuple[str, n.TypeRef, n.Pos]] = []
        props: list[tuple[str, str]] = []
        while True:
            if self.tok.kind is Kind.IDENT and self.peek().is_op("."):  # type1.*, db.dbo.type2.*
                raise self.error("EXTRACT of table types (type.*) is not supported (nor CREATE TYPE); list the "
                                 "columns", "EXTRACT type.*")  # fmt: skip
            ct = self.ident("a column name")
            if self.accept_op("="):
                prop, typ = self.file_property()
                props.append((ct.value, prop))
                cols.append((ct.value, typ, self.pos(ct)))
            else:
                cols.append((ct.value, self.type_ref(), self.pos(ct)))
            comma = self.accept_op(",")
            if comma and self.tok.is_kw("FROM"):
                # a compile error on ADLA too (Azure/usql Training/Debugging: "incorrect syntax")
                raise self.error("remove the trailing comma before FROM", "EXTRACT", comma)
            if not comma:
                break
        self.expect_kw("FROM", "after the EXTRACT column list")
        paths = [self.expr()]
        while self.accept_op(","):
            paths.append(self.expr())
        hints: list[str] = []
        while self.tok.is_kw("REQUIRED") or (self.tok.is_kw("SORTED") and self.peek().is_kw("BY")):
            hints.append(self.extract_hint())
        using = self.expect_kw("USING", "in EXTRACT")
        udo = self.udo("Extractors", using)
        extract = n.Extract(tuple(cols), tuple(paths), udo, p, tuple(hints))
        return n.ExtractFileProperties(extract, tuple(props), p) if props else extract

    def file_property(self) -> tuple[str, n.TypeRef]:
        """``FILE.URI()`` / ``FILE.MODIFIED()`` / ``FILE.CREATED()`` / ``FILE.LENGTH()`` after ``column =`` in
        EXTRACT (U-SQL Winter 2017/18): the property name and its column type."""
        start = self.tok
        if not (start.is_kw("FILE") and self.peek().is_op(".")):
            raise self.error(f"expected FILE.URI(), FILE.MODIFIED(), FILE.CREATED() or FILE.LENGTH() after '=', "
                             f"found {self.describe(start)}", "EXTRACT column = FILE.property()")  # fmt: skip
        self.advance()
        self.advance()
        prop = self.ident("a file property")
        if prop.value not in _FILE_PROPERTIES:
            raise self.error(f"unknown file property FILE.{prop.value}(); use URI, MODIFIED, CREATED or LENGTH",
                             f"FILE.{prop.value}", prop)  # fmt: skip
        self.expect_op("(", f"after FILE.{prop.value}")
        self.expect_op(")", f"(FILE.{prop.value}() takes no arguments)")
        return prop.value, n.TypeRef(_FILE_PROPERTIES[prop.value], False, self.pos(start))

    def extract_hint(self) -> str:
        """``REQUIRED c, ...`` / ``SORTED BY c [ASC|DESC], ...``: hints to user-defined extractors."""
        words = [self.advance().value]
        if words[0] == "SORTED":
            words.append(self.advance().value)
        cols = []
        while True:
            col = self.ident("a column name").value
            direction = self.accept_kw("ASC", "DESC")
            cols.append(col + (f" {direction.value}" if direction else ""))
            if not self.accept_op(","):
                return f"{' '.join(words)} {', '.join(cols)}"

    def select(self) -> n.Select:
        p = self.pos()
        self.advance()
        distinct = bool(self.accept_kw("DISTINCT"))
        if not distinct:
            self.accept_kw("ALL")
        if self.tok.is_kw("TOP"):
            raise self.error("TOP is not U-SQL; use ORDER BY ... FETCH n ROWS", "TOP")
        items = []
        while True:
            ip = self.pos()
            if self.tok.is_op("*"):
                self.advance()
                items.append(n.SelectItem(n.Star(None, ip), None, ip))
            elif self.tok.kind in (Kind.IDENT, Kind.VAR) and self.peek().is_op(".") and self.peek(2).is_op("*"):
                q = self.advance().value  # alias.* or @rowset.* (the rowset's name is its alias)
                self.advance()
                self.advance()
                items.append(n.SelectItem(n.Star(q, ip), None, ip))
            else:
                e = self.expr()
                alias = None
                if self.accept_kw("AS"):
                    alias = self.ident("a column alias after AS").value
                items.append(n.SelectItem(e, alias, ip))
            if not self.accept_op(","):
                break
        source = None
        if self.accept_kw("FROM"):
            source = self.from_clause()
        where = self.expr() if self.accept_kw("WHERE") else None
        group: tuple[n.Expr, ...] = ()
        if self.accept_kw("GROUP"):
            self.expect_kw("BY", "after GROUP")
            g = [self.expr()]
            while self.accept_op(","):
                g.append(self.expr())
            group = tuple(g)
        having = self.expr() if self.accept_kw("HAVING") else None
        hints = (self.option_hints(),) if self.tok.is_kw("OPTION") and self.peek().is_op("(") else ()
        return n.Select(tuple(items), source, where, group, having, distinct, p, hints)

    def option_hints(self) -> str:
        """``OPTION (hint, ...)`` (query hints such as ROWCOUNT = n: no effect on the result), as its text."""
        start = self.advance()
        depth = 0
        while self.tok.kind is not Kind.EOF:
            t = self.advance()
            depth += 1 if t.is_op("(") else -1 if t.is_op(")") else 0
            if depth == 0:
                break
        return self.source_text(start)

    def from_clause(self) -> n.Source:
        left = self.primary_source()
        while True:
            t = self.tok
            p = self.pos()
            kind = None
            if t.is_kw("CROSS") and self.peek().is_kw("APPLY"):
                left = self.apply(left, outer=False)
                continue
            if t.is_kw("OUTER") and self.peek().is_kw("APPLY"):
                left = self.apply(left, outer=True)
                continue
            if t.is_kw("JOIN"):
                kind = "INNER"
            elif t.is_kw("INNER"):
                self.advance()
                kind = "INNER"
            elif t.is_kw("LEFT", "RIGHT", "FULL"):
                side = self.advance().value
                if self.tok.is_kw("SEMIJOIN", "ANTISEMIJOIN"):
                    kind = f"{side} {self.tok.value}"
                    self.advance()
                    right = self.primary_source()
                    on = self.join_on()
                    left = n.Join(kind, left, right, on, p)
                    continue
                self.accept_kw("OUTER")
                kind = side
            elif t.is_kw("CROSS"):
                self.advance()
                kind = "CROSS"
            elif t.is_kw("SEMIJOIN", "ANTISEMIJOIN"):
                kind = f"LEFT {self.advance().value}"
                right = self.primary_source()
                left = n.Join(kind, left, right, self.join_on(), p)
                continue
            elif t.is_op(","):
                raise self.error("comma joins are not U-SQL; use CROSS JOIN", "FROM")
            else:
                return left
            self.expect_kw("JOIN", f"after {kind}")
            right = self.primary_source()
            cond: n.Expr | None = None if kind == "CROSS" else self.join_on()
            left = n.Join(kind, left, right, cond, p)

    def join_on(self) -> n.Expr:
        self.expect_kw("ON", "in JOIN")
        return self.expr()

    def apply(self, left: n.Source, outer: bool) -> n.Source:
        p = self.pos()
        self.advance()
        self.advance()
        t = self.tok
        if not t.is_kw("EXPLODE"):
            raise self.error("only CROSS APPLY EXPLODE(...) is supported (user-defined appliers are not)", "APPLY")
        self.advance()
        self.expect_op("(", "after EXPLODE")
        e = self.expr()
        self.expect_op(")", "closing EXPLODE(")
        self.expect_kw("AS", "after EXPLODE(...)")
        alias = self.ident("an alias").value
        self.expect_op("(", f"after AS {alias} (EXPLODE needs column names)")
        cols = [self.ident("a column name").value]
        while self.accept_op(","):
            cols.append(self.ident("a column name").value)
        self.expect_op(")")
        return n.Join("APPLY", left, n.Explode(e, alias, tuple(cols), outer, p), None, p)

    def primary_source(self) -> n.Source:
        """A rowset source, with the PIVOT / UNPIVOT operators that follow it."""
        src = self.rowset_source()
        while self.tok.is_kw("PIVOT", "UNPIVOT"):
            p = self.pos()
            src = self.pivot(src, p) if self.advance().value == "PIVOT" else self.unpivot(src, p)
        return src

    def pivot(self, src: n.Source, p: n.Pos) -> n.Pivot:
        self.expect_op("(", "after PIVOT")
        agg = self.expr()
        if not (isinstance(agg, n.Call) and isinstance(agg.func, n.Name)):
            raise self.error("PIVOT needs an aggregate call such as AVG(x) before FOR", "PIVOT")
        self.expect_kw("FOR", "after the PIVOT aggregate")
        col = self.column_identifier()
        self.expect_kw("IN", "in PIVOT (... FOR column IN (...))")
        self.expect_op("(", "after PIVOT ... IN")
        values: list[tuple[n.Expr, str]] = []
        while True:
            v = self.expr()
            self.expect_kw("AS", "after a PIVOT value (value AS column)")
            values.append((v, self.ident("a column name").value))
            if not self.accept_op(","):
                break
        self.expect_op(")", "closing PIVOT ... IN (")
        self.expect_op(")", "closing PIVOT (")
        return n.Pivot(src, agg, col, tuple(values), self.pivot_alias("PIVOT"), p)

    def unpivot(self, src: n.Source, p: n.Pos) -> n.Unpivot:
        include = False
        if self.tok.is_kw("INCLUDE", "EXCLUDE"):
            include = self.advance().value == "INCLUDE"
            self.expect_kw("NULLS", "after INCLUDE/EXCLUDE")
        self.expect_op("(", "after UNPIVOT")
        value = self.ident("the value column name").value
        self.expect_kw("FOR", "after the UNPIVOT value column")
        name = self.ident("the name column name").value
        self.expect_kw("IN", "in UNPIVOT (... FOR column IN (...))")
        self.expect_op("(", "after UNPIVOT ... IN")
        cols = [self.column_identifier().name]
        while self.accept_op(","):
            cols.append(self.column_identifier().name)
        self.expect_op(")", "closing UNPIVOT ... IN (")
        self.expect_op(")", "closing UNPIVOT (")
        return n.Unpivot(src, value, name, tuple(cols), include, self.pivot_alias("UNPIVOT"), p)

    def pivot_alias(self, kw: str) -> str:
        if not self.tok.is_kw("AS"):
            raise self.error(f"a {kw} needs an alias: {kw} (...) AS name, found {self.describe(self.tok)}", kw)
        self.advance()
        return self.ident("an alias").value

    def column_identifier(self) -> n.Name | n.Member:
        """``col``, ``alias.col`` or ``@rowset.col`` (a column named in PIVOT / UNPIVOT)."""
        t = self.tok
        if t.kind is Kind.VAR or (t.kind is Kind.IDENT and self.peek().is_op(".")):
            self.advance()
            self.expect_op(".")
            col = self.ident("a column name")
            return n.Member(n.Name(t.value, self.pos(t)), col.value, self.pos(col))
        return n.Name(self.ident("a column name").value, self.pos(t))

    def rowset_source(self) -> n.Source:
        t = self.tok
        p = self.pos()
        if t.kind is Kind.VAR and self.peek().is_op("("):
            call = self.tvf_call()
            return replace(call, alias=self.alias_opt())
        if t.kind is Kind.VAR:
            self.advance()
            alias = self.alias_opt()
            return n.RowsetRef(t.value, alias, p)
        if t.is_op("("):
            self.advance()
            if self.tok.is_kw("VALUES"):
                return self.values(p)
            q = self.query_with_fetch()
            self.expect_op(")", "closing the subquery")
            alias = self.alias_opt()
            if alias is None:
                raise self.error("a subquery in FROM needs an alias (AS name)", "FROM")
            return n.SubquerySource(q, alias, p)
        if t.is_kw("EXTRACT"):
            raise self.error("EXTRACT must be assigned to a rowset variable first", "EXTRACT")
        if t.is_kw("EXTERNAL") and self.peek().kind is Kind.IDENT:
            raise self.error("federated queries (FROM EXTERNAL data_source) are not supported by the local U-SQL "
                             "compiler", "FROM EXTERNAL")  # fmt: skip
        if t.kind is Kind.IDENT and not (t.value in _RESERVED and not t.quoted):
            tn = self.table_name()
            if self.tok.is_op("("):
                return n.TvfCall(tn, self.call_args(), self.alias_opt(), p)
            return n.TableRef(tn, self.alias_opt(), p)
        raise self.error(f"expected a rowset (@name) or (subquery) after FROM, found {self.describe(t)}")

    def value_rows(self) -> list[tuple[n.Expr, ...]]:
        """``(v, ...), (v, ...)`` after VALUES (a table constructor, or INSERT ... VALUES)."""
        rows = []
        while True:
            self.expect_op("(", "starting a VALUES row")
            row = [self.expr()]
            while self.accept_op(","):
                row.append(self.expr())
            self.expect_op(")", "closing a VALUES row")
            rows.append(tuple(row))
            if not self.accept_op(","):
                return rows

    def values(self, p: n.Pos) -> n.ValuesSource:
        self.advance()
        rows = self.value_rows()
        self.expect_op(")", "closing (VALUES ...")
        self.expect_kw("AS", "after (VALUES ...)")
        alias = self.ident("an alias").value
        self.expect_op("(", "VALUES needs column names: AS T(a, b)")
        cols = [self.ident("a column name").value]
        while self.accept_op(","):
            cols.append(self.ident("a column name").value)
        self.expect_op(")")
        for r in rows:
            if len(r) != len(cols):
                raise self.error(f"a VALUES row has {len(r)} values but {len(cols)} columns are named", "VALUES")
        return n.ValuesSource(tuple(rows), alias, tuple(cols), p)

    def alias_opt(self) -> str | None:
        if self.accept_kw("AS"):
            return self.ident("an alias").value
        tok = self.tok
        if tok.kind is Kind.IDENT and (tok.quoted or (tok.value not in _CLAUSE_END and not tok.value.isupper())):
            return self.advance().value
        return None
