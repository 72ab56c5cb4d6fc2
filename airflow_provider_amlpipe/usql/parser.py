"""Recursive-descent parser: tokens -> :mod:`nodes`. Grammar after the U-SQL language reference."""

from __future__ import annotations

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.lexer import Kind, Lexer, Token

#: Statements of the language that this compiler recognises but does not support.
_UNSUPPORTED_STATEMENTS = {
    "REFERENCE": "REFERENCE ASSEMBLY (user code assemblies)",
    "CREATE": "CREATE",
    "DROP": "DROP",
    "ALTER": "ALTER",
    "INSERT": "INSERT",
    "TRUNCATE": "TRUNCATE",
    "IF": "IF statement",
    "DEPLOY": "DEPLOY RESOURCE",
    "IMPORT": "IMPORT PACKAGE",
    "EXPORT": "EXPORT",
    "GRANT": "GRANT",
    "REVOKE": "REVOKE",
}
_UNSUPPORTED_QUERIES = {
    "PROCESS": "PROCESS (user-defined processor)",
    "REDUCE": "REDUCE (user-defined reducer)",
    "COMBINE": "COMBINE (user-defined combiner)",
}
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
}


class Parser:
    """Parses one script. Use :func:`parse`."""

    def __init__(self, text: str, source_name: str) -> None:
        self.source = source_name
        self.toks = Lexer(text, source_name).tokens()
        self.i = 0

    # ------------------------------------------------------------ helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def pos(self, t: Token | None = None) -> n.Pos:
        t = t or self.tok
        return n.Pos(t.line, t.column)

    def error(self, message: str, construct: str = "syntax", t: Token | None = None) -> UsqlError:
        t = t or self.tok
        return UsqlError(self.source, t.line, t.column, construct, message)

    def describe(self, t: Token) -> str:
        return "end of script" if t.kind is Kind.EOF else repr(t.value)

    def advance(self) -> Token:
        t = self.tok
        if t.kind is not Kind.EOF:
            self.i += 1
        return t

    def accept_kw(self, *words: str) -> Token | None:
        if self.tok.is_kw(*words):
            return self.advance()
        return None

    def accept_op(self, *ops: str) -> Token | None:
        if self.tok.is_op(*ops):
            return self.advance()
        return None

    def expect_kw(self, word: str, context: str = "") -> Token:
        if not self.tok.is_kw(word):
            where = f" {context}" if context else ""
            raise self.error(f"expected {word}{where}, found {self.describe(self.tok)}")
        return self.advance()

    def expect_op(self, op: str, context: str = "") -> Token:
        if not self.tok.is_op(op):
            where = f" {context}" if context else ""
            raise self.error(f"expected '{op}'{where}, found {self.describe(self.tok)}")
        return self.advance()

    def ident(self, what: str = "an identifier") -> Token:
        if self.tok.kind is not Kind.IDENT:
            raise self.error(f"expected {what}, found {self.describe(self.tok)}")
        return self.advance()

    # ------------------------------------------------------------ statements
    def script(self) -> n.Script:
        out = n.Script()
        while self.tok.kind is not Kind.EOF:
            if self.accept_op(";"):
                continue
            out.statements.append(self.statement())
        return out

    def statement(self) -> n.Statement:
        t = self.tok
        if t.is_kw("DECLARE"):
            return self.declare()
        if t.kind is Kind.VAR and not t.value.startswith("@@"):
            return self.assign()
        if t.is_kw("OUTPUT"):
            return self.output()
        if t.is_kw("SET") and self.peek().kind is Kind.VAR and self.peek().value.startswith("@@"):
            return self.ignored("SET")
        if t.is_kw("USE"):
            if self.peek().is_kw("DATABASE"):
                p = self.pos()
                self.advance()
                self.advance()
                name = self.ident("a database name").value
                self.expect_op(";", "after USE DATABASE name")
                return n.UseDatabase(f"USE DATABASE {name}", p, name)
            if self.peek().is_kw("SCHEMA") and self.peek(2).value == "dbo":
                return self.ignored("USE SCHEMA dbo")
            raise self.error("schemas other than dbo (USE SCHEMA) are not supported", "USE SCHEMA")
        if t.is_kw("CREATE") and self.peek().is_kw("DATABASE", "TABLE"):
            return self.create()
        if t.is_kw("DROP") and self.peek().is_kw("DATABASE", "TABLE"):
            return self.drop()
        if t.is_kw("INSERT"):
            return self.insert()
        if t.kind is Kind.IDENT and t.value in _UNSUPPORTED_STATEMENTS:
            name = _UNSUPPORTED_STATEMENTS[t.value]
            if t.value == "CREATE" and self.peek().kind is Kind.IDENT:
                name = f"CREATE {self.peek().value}"
            raise self.error(f"{name} is not supported by the local U-SQL compiler", name)
        raise self.error(f"expected a statement (DECLARE, @rowset = ..., OUTPUT), found {self.describe(t)}")

    # ------------------------------------------------------------ catalog (DDL, INSERT)
    def if_exists(self, negated: bool) -> bool:
        if not self.tok.is_kw("IF"):
            return False
        self.advance()
        if negated:
            self.expect_kw("NOT", "in IF NOT EXISTS")
        self.expect_kw("EXISTS", "in IF [NOT] EXISTS")
        return True

    def table_name(self) -> n.TableName:
        p = self.pos()
        parts = [self.ident("a table name").value]
        while self.tok.is_op(".") and len(parts) < 3:
            self.advance()
            parts.append(self.ident("a name after '.'").value)
        db, schema = (None, None)
        if len(parts) == 3:
            db, schema = parts[0], parts[1]
        elif len(parts) == 2:
            schema = parts[0]
        return n.TableName(db, schema, parts[-1], p)

    def create(self) -> n.Statement:
        p = self.pos()
        self.advance()
        if self.accept_kw("DATABASE"):
            ine = self.if_exists(negated=True)
            name = self.ident("a database name").value
            self.expect_op(";", "at the end of CREATE DATABASE")
            return n.CreateDatabase(name, ine, p)
        self.expect_kw("TABLE")
        ine = self.if_exists(negated=True)
        table = self.table_name()
        cols: list[tuple[str, n.TypeRef, n.Pos]] = []
        notes: list[str] = []
        if self.accept_op("("):
            while True:
                if self.tok.is_kw("INDEX", "PARTITIONED", "DISTRIBUTED", "CLUSTERED", "PRIMARY"):
                    notes.append(self.table_clause())
                else:
                    ct = self.ident("a column name or INDEX")
                    cols.append((ct.value, self.type_ref(), self.pos(ct)))
                if not self.accept_op(","):
                    break
            self.expect_op(")", "closing the CREATE TABLE column list")
        while self.tok.is_kw("INDEX", "PARTITIONED", "DISTRIBUTED"):  # clauses after the list, also accepted
            notes.append(self.table_clause())
        query: n.Query | None = None
        if self.accept_kw("AS"):
            if cols:
                raise self.error("CREATE TABLE ... AS takes no column definitions (the query defines them)",
                                 "CREATE TABLE", self.toks[self.i - 1])  # fmt: skip
            query = self.query_with_fetch()
        elif not cols:
            raise self.error("CREATE TABLE needs column definitions or AS query", "CREATE TABLE")
        self.expect_op(";", "at the end of CREATE TABLE")
        return n.CreateTable(table, ine, tuple(cols), query, tuple(notes), p)

    def table_clause(self) -> str:
        """INDEX ... CLUSTERED (...), PARTITIONED BY (...), DISTRIBUTED BY ...: skipped, returned as text."""
        words: list[str] = []
        depth = 0
        while self.tok.kind is not Kind.EOF:
            if depth == 0 and (self.tok.is_op(",", ";", ")") or self.tok.is_kw("AS")):
                break
            if self.tok.is_op("("):
                depth += 1
            elif self.tok.is_op(")"):
                depth -= 1
            words.append(self.advance().value)
        return " ".join(words).replace("( ", "(").replace(" )", ")").replace(" ,", ",")

    def drop(self) -> n.Statement:
        p = self.pos()
        self.advance()
        if self.accept_kw("DATABASE"):
            ie = self.if_exists(negated=False)
            name = self.ident("a database name").value
            self.expect_op(";", "at the end of DROP DATABASE")
            return n.DropDatabase(name, ie, p)
        self.expect_kw("TABLE")
        ie = self.if_exists(negated=False)
        table = self.table_name()
        self.expect_op(";", "at the end of DROP TABLE")
        return n.DropTable(table, ie, p)

    def insert(self) -> n.Insert:
        p = self.pos()
        self.advance()
        self.expect_kw("INTO", "after INSERT")
        table = self.table_name()
        cols: list[str] = []
        if self.tok.is_op("(") and self.peek().kind is Kind.IDENT and not self.peek().is_kw("SELECT", "VALUES"):
            self.advance()
            cols.append(self.ident("a column name").value)
            while self.accept_op(","):
                cols.append(self.ident("a column name").value)
            self.expect_op(")", "closing the INSERT column list")
        if self.tok.is_kw("PARTITION"):
            raise self.error("INSERT into table partitions is not supported", "INSERT PARTITION")
        if self.tok.is_kw("VALUES"):
            vp = self.pos()
            self.advance()
            rows = []
            while True:
                self.expect_op("(", "starting a VALUES row")
                row = [self.expr()]
                while self.accept_op(","):
                    row.append(self.expr())
                self.expect_op(")", "closing a VALUES row")
                rows.append(tuple(row))
                if not self.accept_op(","):
                    break
            width = len(rows[0])
            if any(len(r) != width for r in rows):
                raise self.error("all VALUES rows need the same number of values", "VALUES", self.toks[self.i - 1])
            names = tuple(f"c{i + 1}" for i in range(width))
            src = n.ValuesSource(tuple(rows), "usql_values", names, vp)
            query: n.Query = n.Select((n.SelectItem(n.Star(None, vp), None, vp),), src, None, (), None, False, vp)
        else:
            query = self.query_with_fetch()
        self.expect_op(";", "at the end of INSERT")
        return n.Insert(table, tuple(cols), query, p)

    def ignored(self, text: str) -> n.Ignored:
        p = self.pos()
        while not self.tok.is_op(";") and self.tok.kind is not Kind.EOF:
            self.advance()
        self.expect_op(";", f"after {text}")
        return n.Ignored(text, p)

    def declare(self) -> n.Declare:
        p = self.pos()
        self.advance()
        external = bool(self.accept_kw("EXTERNAL"))
        const = bool(self.accept_kw("CONST"))
        if self.tok.kind is not Kind.VAR or self.tok.value.startswith("@@"):
            raise self.error(f"expected a variable name (@name) after DECLARE, found {self.describe(self.tok)}")
        name = self.advance().value
        if self.tok.is_op("="):
            raise self.error(f"DECLARE @{name} needs a type before '='", "DECLARE")
        typ = self.type_ref()
        self.expect_op("=", f"after DECLARE @{name} {typ.name}")
        value = self.expr()
        self.expect_op(";", "at the end of DECLARE")
        return n.Declare(name, typ, value, external, const, p)

    def assign(self) -> n.Assign:
        p = self.pos()
        name = self.advance().value
        self.expect_op("=", f"after @{name}")
        q = self.query_with_fetch()
        self.expect_op(";", f"at the end of the statement assigning @{name}")
        return n.Assign(name, q, p)

    def output(self) -> n.Output:
        p = self.pos()
        self.advance()
        if self.tok.kind is Kind.VAR:
            vt = self.advance()
            src: n.Query = n.RowsetRef(vt.value, None, self.pos(vt))
        elif self.tok.is_op("("):
            self.advance()
            src = self.query_with_fetch()
            self.expect_op(")", "closing the OUTPUT query")
        elif self.tok.kind is Kind.IDENT and not self.tok.is_kw("TO"):
            tn = self.table_name()
            src = n.TableRef(tn, None, tn.pos)
        else:
            raise self.error(f"expected a rowset (@name) or (query) after OUTPUT, found {self.describe(self.tok)}")
        self.expect_kw("TO", "in OUTPUT")
        path = self.expr()
        order, offset, fetch = self.order_fetch(require_fetch=False)
        using = self.expect_kw("USING", "in OUTPUT")
        udo = self.udo("Outputters", using)
        self.expect_op(";", "at the end of OUTPUT")
        return n.Output(src, path, order, offset, fetch, udo, p)

    def udo(self, family: str, using: Token) -> n.Udo:
        p = self.pos()
        if self.tok.is_kw("new"):
            raise self.error(
                f"user-defined {family[:-1].lower()}s (USING new ...) are not supported", "user-defined UDO"
            )
        fam = self.ident(f"{family}.Csv/Tsv/Text")
        if fam.value != family:
            raise self.error(
                f"user-defined {family[:-1].lower()} {fam.value!r} is not supported; use {family}.Csv/Tsv/Text",
                "user-defined UDO",
                fam,
            )
        self.expect_op(".")
        kind = self.ident(f"{family}.Csv/Tsv/Text")
        if kind.value not in ("Csv", "Tsv", "Text"):
            raise self.error(f"{family}.{kind.value} is not supported; use Csv, Tsv or Text", f"{family}.{kind.value}")
        self.expect_op("(", f"after {family}.{kind.value}")
        options: list[tuple[str, n.Expr, n.Pos]] = []
        seen: set[str] = set()
        while not self.tok.is_op(")"):
            nt = self.ident("an option name")
            if self.tok.is_op(":"):
                self.advance()
            else:
                raise self.error(f"expected ':' after option name {nt.value!r} (options are name: value)")
            if nt.value in seen:
                raise self.error(f"option {nt.value!r} given twice", f"{family}.{kind.value}", nt)
            seen.add(nt.value)
            options.append((nt.value, self.expr(), self.pos(nt)))
            if not self.accept_op(","):
                break
        self.expect_op(")", f"closing {family}.{kind.value}(")
        return n.Udo(family, kind.value, tuple(options), p)

    # ------------------------------------------------------------ queries
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
            if not self.accept_kw("ROWS", "ROW"):
                raise self.error("expected ROWS after FETCH [FIRST] n")
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
        left = self.query_term()
        while self.tok.is_kw("UNION", "EXCEPT", "INTERSECT"):
            p = self.pos()
            op = self.advance().value
            quant = "DISTINCT"
            if self.accept_kw("ALL"):
                quant = "ALL"
            else:
                self.accept_kw("DISTINCT")
            if self.tok.is_kw("BY"):
                raise self.error(f"{op} BY NAME is not supported", f"{op} BY NAME")
            right = self.query_term()
            left = n.SetOp(op, quant, left, right, p)
        return left

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
        if t.kind is Kind.VAR:
            self.advance()
            return n.RowsetRef(t.value, None, self.pos(t))
        if t.kind is Kind.IDENT and t.value in _UNSUPPORTED_QUERIES:
            name = _UNSUPPORTED_QUERIES[t.value]
            raise self.error(f"{name} is not supported by the local U-SQL compiler", name)
        raise self.error(f"expected SELECT, EXTRACT or a rowset, found {self.describe(t)}")

    def extract(self) -> n.Extract:
        p = self.pos()
        self.advance()
        cols: list[tuple[str, n.TypeRef, n.Pos]] = []
        while True:
            ct = self.ident("a column name")
            cols.append((ct.value, self.type_ref(), self.pos(ct)))
            if not self.accept_op(","):
                break
        self.expect_kw("FROM", "after the EXTRACT column list")
        paths = [self.expr()]
        while self.accept_op(","):
            paths.append(self.expr())
        using = self.expect_kw("USING", "in EXTRACT")
        udo = self.udo("Extractors", using)
        return n.Extract(tuple(cols), tuple(paths), udo, p)

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
            elif self.tok.kind is Kind.IDENT and self.peek().is_op(".") and self.peek(2).is_op("*"):
                q = self.advance().value
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
        if self.tok.is_kw("OPTION"):
            raise self.error("OPTION hints are not supported", "OPTION")
        return n.Select(tuple(items), source, where, group, having, distinct, p)

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
        t = self.tok
        p = self.pos()
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
        if t.kind is Kind.IDENT and not (t.value in _RESERVED and not t.quoted):
            tn = self.table_name()
            if self.tok.is_op("("):
                raise self.error(f"table-valued functions ({tn}) are not supported", "table-valued function", t)
            return n.TableRef(tn, self.alias_opt(), p)
        raise self.error(f"expected a rowset (@name) or (subquery) after FROM, found {self.describe(t)}")

    def values(self, p: n.Pos) -> n.ValuesSource:
        self.advance()
        rows = []
        while True:
            self.expect_op("(", "starting a VALUES row")
            row = [self.expr()]
            while self.accept_op(","):
                row.append(self.expr())
            self.expect_op(")", "closing a VALUES row")
            rows.append(tuple(row))
            if not self.accept_op(","):
                break
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
            self.expect_op(">", f"closing {name}<")
        if self.tok.is_op("[") and self.peek().is_op("]"):
            self.advance()
            self.advance()
            name += "[]"
        nullable = bool(self.accept_op("?"))
        return n.TypeRef(name, nullable, self.pos(t), tuple(args))

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
        # (T) x, (T?) x, (Ns.T) x, (T[]) x — the operand must start right after ')'
        j = self.i + 1
        if self.toks[j].kind is not Kind.IDENT:
            return False
        j += 1
        while self.toks[j].is_op(".") and self.toks[j + 1].kind is Kind.IDENT:
            j += 2
        if self.toks[j].is_op("<"):
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
        name = self.toks[self.i + 1].value
        from airflow_provider_amlpipe.usql.types import BUILTIN_TYPES

        if nullable or name in BUILTIN_TYPES or name in ("String", "Int32", "Int64", "Double", "Boolean"):
            return nxt.kind in (Kind.IDENT, Kind.VAR, Kind.NUMBER, Kind.STRING, Kind.CHAR) or nxt.is_op("(", "!", "-")
        return False

    def unary(self) -> n.Expr:
        t = self.tok
        p = self.pos()
        if t.is_op("!", "-", "+", "~"):
            self.advance()
            return n.Unary(t.value, self.unary(), p)
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
        over = self.window() if self.tok.is_kw("OVER") else None
        return n.Call(func, tuple(args), p, distinct, star, over)

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
            if t.value.startswith("@@"):
                raise self.error(f"{t.value} was not substituted (system variables and @@name@@ placeholders are not "
                                 "values)", "variable")  # fmt: skip
            self.advance()
            return n.Variable(t.value, p)
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
            if t.is_kw("null") and not t.quoted:
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
                raise self.error("CASE is not U-SQL; use the C# conditional operator cond ? a : b", "CASE")
            if t.is_kw("delegate") or self.peek().is_op("=>"):
                raise self.error("lambda expressions (inline C#) are not supported", "lambda")
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


def parse(text: str, source_name: str = "script.usql") -> n.Script:
    """Parse a whole script; raises :class:`UsqlError` at the first problem."""
    return Parser(text, source_name).script()
