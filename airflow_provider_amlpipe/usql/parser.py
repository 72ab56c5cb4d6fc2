"""Recursive-descent parser: tokens -> :mod:`nodes`. Grammar after the U-SQL language reference."""

from __future__ import annotations

import re
from dataclasses import replace

from airflow_provider_amlpipe.usql import jobinfo
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.lexer import Kind, Lexer, Token
from airflow_provider_amlpipe.usql.types import canonical, collection

#: Statements of the language that this compiler recognises but does not support.
_UNSUPPORTED_STATEMENTS = {
    "REFERENCE": "REFERENCE ASSEMBLY (user code assemblies)",
    "CREATE": "CREATE",
    "DROP": "DROP",
    "ALTER": "ALTER",
    "INSERT": "INSERT",
    "TRUNCATE": "TRUNCATE",
    "DEPLOY": "DEPLOY RESOURCE",
    "IMPORT": "IMPORT PACKAGE",
    "EXPORT": "EXPORT",
    "GRANT": "GRANT",
    "RAISE": "RAISE ERROR/WARNING",
    "REVOKE": "REVOKE",
}
#: ``DECLARE <kind> @name``: script-bound objects; the ones that are refused, with why.
_SCRIPT_BOUND = ("FUNCTION", "PROCEDURE", "VIEW", "TYPE", "ASSEMBLY")
_SCRIPT_BOUND_UNSUPPORTED = {"TYPE": "table types", "ASSEMBLY": "user code assemblies"}
#: Catalog objects of CREATE / DROP statements this compiler supports.
_CREATABLE = ("DATABASE", "TABLE", "VIEW", "FUNCTION", "PROCEDURE", "SCHEMA")
_UNSUPPORTED_QUERIES = {
    "PROCESS": "PROCESS (user-defined processor)",
    "REDUCE": "REDUCE (user-defined reducer)",
    "COMBINE": "COMBINE (user-defined combiner)",
}
#: The type name of ``DECLARE @x = expr;`` and ``@x = expr;`` (no type written: it is the value's type).
INFERRED_TYPE = "var"
_GENERIC_AGGREGATES = ("ARRAY_AGG", "MAP_AGG", "AGG")
#: Words that start a scalar expression (never a query) after ``@x =``.
_SCALAR_STARTS = (
    "new", "true", "false", "null", "NULL", "Math", "Convert", "DateTime", "String", "string", "Guid", "System",
)  # fmt: skip
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


class Parser:
    """Parses one script. Use :func:`parse`."""

    def __init__(self, text: str, source_name: str) -> None:
        self.source = source_name
        self.text = text
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
        if t.kind is Kind.VAR and not t.value.startswith("@@") and self.peek().is_op("("):
            return self.call_procedure()
        if t.kind is Kind.VAR and not t.value.startswith("@@"):
            return self.assign()
        if t.is_op("(") and self.peek().kind is Kind.VAR:
            return self.multi_assign()
        if t.is_kw("IF"):
            return self.if_statement()
        if t.is_kw("RENAME"):
            what = f"RENAME {self.peek().value}" if self.peek().kind is Kind.IDENT else "RENAME"
            raise self.error(f"{what} is not in the U-SQL language reference (it was an internal preview behind "
                             "SET @@InternalDebug) and is not supported by the local U-SQL compiler; create the new "
                             "table AS SELECT from the old one, then DROP the old one", what)  # fmt: skip
        if t.is_kw("OUTPUT"):
            return self.output()
        if t.is_kw("SET") and self.peek().kind is Kind.VAR and self.peek().value.startswith("@@"):
            return self.ignored("SET")
        if t.is_kw("USE"):
            return self.use()
        if t.is_kw("CREATE") and self.peek().is_kw(*_CREATABLE):
            return self.create()
        if t.is_kw("CREATE") and self.peek().is_kw("CLUSTERED") and self.peek(2).is_kw("INDEX"):
            return self.create_index()
        if t.is_kw("CREATE", "UPDATE", "DROP") and self.peek().is_kw("STATISTICS"):
            return self.statistics()
        if t.is_kw("DROP") and self.peek().is_kw(*_CREATABLE):
            return self.drop()
        if t.is_kw("INSERT"):
            return self.insert()
        if t.is_kw("TRUNCATE") and self.peek().is_kw("TABLE"):
            return self.truncate()
        if t.is_kw("ALTER") and self.peek().is_kw("TABLE"):
            return self.alter_table()
        if t.kind is Kind.IDENT and t.value in _UNSUPPORTED_STATEMENTS:
            name = _UNSUPPORTED_STATEMENTS[t.value]
            if t.value in ("CREATE", "DROP", "ALTER") and self.peek().kind is Kind.IDENT:
                name = f"{t.value} {self.peek().value}"
                if self.peek().is_kw("DATA", "EXTERNAL") and self.peek(2).kind is Kind.IDENT:
                    name += f" {self.peek(2).value}"  # DATA SOURCE, EXTERNAL TABLE
            raise self.error(f"{name} is not supported by the local U-SQL compiler", name)
        if t.kind is Kind.IDENT and self._at_call():
            return self.call_procedure()
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

    def catalog_ident(self, what: str) -> str:
        """An identifier naming a catalog object; also ``[quoted name]`` right after a keyword, which the
        lexer reads as an indexer (``CREATE SCHEMA [My Schema]``)."""
        if self.tok.is_op("["):
            start = self.advance()
            while not self.tok.is_op("]"):
                if self.tok.kind is Kind.EOF or self.tok.line != start.line:
                    raise self.error(f"expected ']' closing the quoted {what}")
                self.advance()
            name = self.text[self._offset(start) + 1 : self._offset(self.tok)]
            self.advance()
            return name
        return self.ident(what).value

    def table_name(self) -> n.TableName:
        p = self.pos()
        parts = [self.catalog_ident("a table name")]
        while self.tok.is_op(".") and len(parts) < 3:
            self.advance()
            if len(parts) == 1 and self.tok.is_op("."):  # db..name: the database's dbo schema
                parts.append("dbo")
                continue
            parts.append(self.ident("a name after '.'").value)
        db, schema = (None, None)
        if len(parts) == 3:
            db, schema = parts[0], parts[1]
        elif len(parts) == 2:
            schema = parts[0]
        return n.TableName(db, schema, parts[-1], p)

    def use(self) -> n.Statement:
        """``USE [DATABASE] db`` (the keyword is optional) or ``USE SCHEMA s``."""
        p = self.pos()
        self.advance()
        if self.accept_kw("SCHEMA"):
            schema = self.catalog_ident("a schema name")
            self.expect_op(";", "after USE SCHEMA name")
            return n.UseSchema(schema, p)
        self.accept_kw("DATABASE")
        name = self.ident("a database name").value
        self.expect_op(";", "after USE DATABASE name")
        return n.UseDatabase(f"USE DATABASE {name}", p, name)

    def create(self) -> n.Statement:
        p = self.pos()
        start = self.advance()
        if self.accept_kw("DATABASE"):
            ine = self.if_exists(negated=True)
            name = self.ident("a database name").value
            self.expect_op(";", "at the end of CREATE DATABASE")
            return n.CreateDatabase(name, ine, p)
        if self.accept_kw("SCHEMA"):
            ine = self.if_exists(negated=True)
            schema = self.catalog_ident("a schema name")
            self.expect_op(";", "at the end of CREATE SCHEMA")
            return n.CreateSchema(schema, ine, p)
        if self.accept_kw("VIEW"):
            ine = self.if_exists(negated=True)
            view = self.table_name()
            self.expect_kw("AS", f"after CREATE VIEW {view}")
            vquery = self.query_with_fetch()
            self.expect_op(";", "at the end of CREATE VIEW")
            return n.CreateView(view, ine, vquery, self.source_text(start), p)
        if self.accept_kw("FUNCTION"):
            return self.create_function(start, p)
        if self.accept_kw("PROCEDURE"):
            ine = self.if_exists(negated=True)
            proc = self.table_name()
            params = self.params()
            body = self.routine_body("CREATE PROCEDURE")
            return n.CreateProcedure(proc, ine, params, body, self.source_text(start), p)
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
        partitioned_by = _vertical_partitioning(notes)
        query: n.Query | None = None
        if self.accept_kw("AS"):
            if cols:
                raise self.error("CREATE TABLE ... AS takes no column definitions (the query defines them)",
                                 "CREATE TABLE", self.toks[self.i - 1])  # fmt: skip
            query = self.query_with_fetch()
        elif not cols:
            raise self.error("CREATE TABLE needs column definitions or AS query", "CREATE TABLE")
        self.expect_op(";", "at the end of CREATE TABLE")
        notes = [x for x in notes if not _VERTICAL.fullmatch(x)]
        return n.CreateTable(table, ine, tuple(cols), query, tuple(notes), p, partitioned_by)

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
        kind = self.tok.value
        if self.accept_kw("VIEW", "FUNCTION", "PROCEDURE", "SCHEMA"):
            ie = self.if_exists(negated=False)
            if kind == "SCHEMA":
                st = self.tok
                target = n.TableName(None, None, self.catalog_ident("a schema name"), self.pos(st))
            else:
                target = self.table_name()
            self.expect_op(";", f"at the end of DROP {kind}")
            return n.DropObject(kind, target, ie, p)
        self.expect_kw("TABLE")
        ie = self.if_exists(negated=False)
        table = self.table_name()
        self.expect_op(";", "at the end of DROP TABLE")
        return n.DropTable(table, ie, p)

    def create_function(self, start: Token, p: n.Pos) -> n.CreateFunction:
        ine = self.if_exists(negated=True)
        return self.function_definition(start, p, self.table_name(), ine, "CREATE FUNCTION")

    def function_definition(
        self, start: Token, p: n.Pos, name: n.TableName, ine: bool, construct: str
    ) -> n.CreateFunction:
        """The rest of ``CREATE FUNCTION name`` / ``DECLARE FUNCTION @name``: parameters, RETURNS, body."""
        shown = f"@{name.name}" if construct.startswith("DECLARE") else str(name)
        params = self.params()
        self.expect_kw("RETURNS", f"after the parameters of {shown}")
        if self.accept_op("("):  # RETURNS (@a [TABLE(...)], @b ...): several rowsets
            results = [self.return_rowset(start, shown, construct)]
            while self.accept_op(","):
                results.append(self.return_rowset(start, shown, construct))
            self.expect_op(")", "closing the RETURNS list")
        else:
            results = [self.return_rowset(start, shown, construct)]
            if self.tok.is_op(","):
                raise self.error("several returned rowsets are written in parentheses: RETURNS (@a TABLE(...), "
                                 "@b TABLE(...))", construct)  # fmt: skip
        body = self.routine_body(construct)
        result, columns = results[0]
        several = tuple(results) if len(results) > 1 else ()
        return n.CreateFunction(name, ine, params, result, columns, body, self.source_text(start), p, several)

    def return_rowset(
        self, start: Token, shown: str, construct: str
    ) -> tuple[str, tuple[tuple[str, n.TypeRef, n.Pos], ...] | None]:
        """``@result [TABLE(c T, ...)]`` of RETURNS (the columns are None when not declared)."""
        if self.tok.kind is not Kind.VAR or self.tok.value.startswith("@@"):
            raise self.error(f"scalar functions ({shown} RETURNS {self.describe(self.tok)}) are not supported; "
                             "table-valued functions return rowsets: RETURNS @result [TABLE(...)]", construct,
                             start)  # fmt: skip
        result = self.advance().value
        if self.accept_kw("TABLE"):
            self.expect_op("(", f"after RETURNS @{result} TABLE")
            cols = []
            while True:
                ct = self.ident("a column name")
                cols.append((ct.value, self.type_ref(), self.pos(ct)))
                if not self.accept_op(","):
                    break
            self.expect_op(")", "closing the RETURNS TABLE column list")
            return result, tuple(cols)
        if self.tok.kind is Kind.IDENT and not self.tok.is_kw("AS", "BEGIN"):
            raise self.error("named table types (RETURNS @r TypeName) are not supported; use TABLE(...)", construct)
        return result, None

    def params(self) -> tuple[n.Param, ...]:
        """``(@p Type [= default], ...)`` of a function or procedure."""
        self.expect_op("(", "starting the parameter list")
        out: list[n.Param] = []
        while not self.tok.is_op(")"):
            pt = self.tok
            if pt.kind is not Kind.VAR or pt.value.startswith("@@"):
                raise self.error(f"expected a parameter (@name Type), found {self.describe(pt)}")
            self.advance()
            if self.tok.is_kw("TABLE"):
                raise self.error(f"table-typed parameters (@{pt.value} TABLE(...)) are not supported; pass the "
                                 "rowset's file or values as scalar parameters instead", "table parameter")  # fmt: skip
            typ = self.type_ref()
            default = self.expr() if self.accept_op("=") else None
            out.append(n.Param(pt.value, typ, default, self.pos(pt)))
            if not self.accept_op(","):
                break
        self.expect_op(")", "closing the parameter list")
        return tuple(out)

    def routine_body(self, construct: str) -> tuple[n.Statement, ...]:
        """``[AS] BEGIN statements END [;]`` of a function or procedure (``RETURN;`` is accepted)."""
        self.accept_kw("AS")
        self.expect_kw("BEGIN", f"starting the {construct} body")
        body: list[n.Statement] = []
        while not self.tok.is_kw("END"):
            if self.tok.kind is Kind.EOF:
                raise self.error(f"expected END closing the {construct} body, found end of script")
            if self.accept_op(";"):
                continue
            if self.tok.is_kw("RETURN") and self.peek().is_op(";"):
                self.advance()
                continue
            body.append(self.statement())
        self.advance()
        self.accept_op(";")
        return tuple(body)

    def source_text(self, start: Token) -> str:
        """The script text from ``start`` to the end of the last token read."""
        return self.text[self._offset(start) : self._offset(self.tok)].rstrip()

    def _offset(self, t: Token) -> int:
        if t.kind is Kind.EOF:
            return len(self.text)
        if not hasattr(self, "_line_starts"):
            starts = [0]
            for i, ch in enumerate(self.text):
                if ch == "\n":
                    starts.append(i + 1)
            self._line_starts = starts
        return self._line_starts[t.line - 1] + t.column - 1

    def _at_call(self) -> bool:
        """True at ``name(``, ``schema.name(`` or ``db.schema.name(``: a function or procedure call."""
        k = 0
        while True:
            if self.peek(k).kind is not Kind.IDENT:
                return False
            if self.peek(k + 1).is_op("("):
                return True
            if not self.peek(k + 1).is_op(".") or k >= 4:
                return False
            k += 2

    def call_args(self) -> tuple[n.Expr | None, ...]:
        """``(arg | DEFAULT, ...)`` of a function or procedure call (None for DEFAULT)."""
        self.expect_op("(")
        args: list[n.Expr | None] = []
        while not self.tok.is_op(")"):
            if self.tok.is_kw("DEFAULT"):
                self.advance()
                args.append(None)
            else:
                args.append(self.expr())
            if not self.accept_op(","):
                break
        self.expect_op(")", "closing the argument list")
        return tuple(args)

    def tvf_call(self) -> n.TvfCall:
        p = self.pos()
        name, script_bound = self.routine_name()
        args = self.call_args()
        return n.TvfCall(name, args, None, p, script_bound)

    def call_procedure(self) -> n.CallProcedure:
        p = self.pos()
        name, script_bound = self.routine_name()
        args = self.call_args()
        shown = f"@{name.name}" if script_bound else str(name)
        self.expect_op(";", f"at the end of the call of {shown}")
        return n.CallProcedure(name, args, p, script_bound)

    def routine_name(self) -> tuple[n.TableName, bool]:
        """The name of a called function or procedure: a catalog name, or ``@name`` of a script-bound one (True)."""
        if self.tok.kind is Kind.VAR and not self.tok.value.startswith("@@"):
            t = self.advance()
            return n.TableName(None, None, t.value, self.pos(t)), True
        return self.table_name(), False

    def create_index(self) -> n.TableNote:
        """``CREATE CLUSTERED INDEX i ON t (cols) [PARTITIONED BY ...] [DISTRIBUTED BY ...]``: no local effect."""
        p = self.pos()
        self.advance()
        self.advance()
        self.advance()
        index = self.ident("an index name").value
        self.expect_kw("ON", f"after CREATE CLUSTERED INDEX {index}")
        table = self.table_name()
        self.ignored("CREATE CLUSTERED INDEX")
        return n.TableNote(table, f"CREATE CLUSTERED INDEX {index} ON {table}", p)

    def statistics(self) -> n.TableNote:
        """``CREATE STATISTICS [IF NOT EXISTS] s ON t (c, ...) WITH FULLSCAN | SAMPLE n PERCENT``, ``UPDATE
        STATISTICS [IF EXISTS] s ON t [WITH ...]``, ``DROP STATISTICS [IF EXISTS] s ON t``: optimizer metadata, no
        local effect (the table must exist)."""
        p = self.pos()
        verb = self.advance().value.upper()
        self.advance()
        self.if_exists(negated=verb == "CREATE")
        name = self.catalog_ident("a statistics name")
        self.expect_kw("ON", f"after {verb} STATISTICS {name}")
        table = self.table_name()
        self.ignored(f"{verb} STATISTICS")
        return n.TableNote(table, f"{verb} STATISTICS {name} ON {table}", p)

    def partition_labels(self) -> tuple[tuple[n.Expr, ...], ...]:
        """``PARTITION (v, ...) [, PARTITION (v, ...)]...``."""
        labels = [self.partition_label()]
        while self.tok.is_op(",") and self.peek().is_kw("PARTITION"):
            self.advance()
            labels.append(self.partition_label())
        return tuple(labels)

    def partition_label(self) -> tuple[n.Expr, ...]:
        self.expect_kw("PARTITION")
        self.expect_op("(", "after PARTITION")
        values = [self.expr()]
        while self.accept_op(","):
            values.append(self.expr())
        self.expect_op(")", "closing PARTITION (")
        return tuple(values)

    def truncate(self) -> n.TruncateTable:
        p = self.pos()
        self.advance()
        self.advance()
        table = self.table_name()
        labels = self.partition_labels() if self.tok.is_kw("PARTITION") else ()
        self.expect_op(";", "at the end of TRUNCATE TABLE")
        return n.TruncateTable(table, labels, p)

    def alter_table(self) -> n.Statement:
        p = self.pos()
        self.advance()
        self.advance()
        table = self.table_name()
        if self.tok.is_kw("REBUILD"):
            self.ignored("ALTER TABLE REBUILD")
            return n.TableNote(table, f"ALTER TABLE {table} REBUILD", p)
        add = self.tok.is_kw("ADD")
        if not (add or self.tok.is_kw("DROP")) or not self.peek().is_kw("PARTITION", "IF"):
            raise self.error("only ALTER TABLE ... ADD/DROP PARTITION and REBUILD are supported", "ALTER TABLE")
        self.advance()
        flag = self.if_exists(negated=add)
        labels = self.partition_labels()
        self.expect_op(";", "at the end of ALTER TABLE")
        return n.AlterPartitions(table, add, flag, labels, p)

    def insert(self) -> n.Insert:
        p = self.pos()
        self.advance()
        self.accept_kw("INTO")
        table = self.table_name()
        cols: list[str] = []
        if self.tok.is_op("(") and self.peek().kind is Kind.IDENT and not self.peek().is_kw("SELECT", "VALUES"):
            self.advance()
            cols.append(self.ident("a column name").value)
            while self.accept_op(","):
                cols.append(self.ident("a column name").value)
            self.expect_op(")", "closing the INSERT column list")
        partition = move_to = None
        on_violation = None
        if self.tok.is_kw("PARTITION"):
            partition = self.partition_label()
        elif self.tok.is_kw("ON") and self.peek().is_kw("INTEGRITY"):
            self.advance()
            self.advance()
            self.expect_kw("VIOLATION", "after ON INTEGRITY")
            if self.accept_kw("IGNORE"):
                on_violation = "IGNORE"
            else:
                self.expect_kw("MOVE", "or IGNORE after ON INTEGRITY VIOLATION")
                self.expect_kw("TO", "after MOVE")
                on_violation = "MOVE"
                move_to = self.partition_label()
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
        return n.Insert(table, tuple(cols), query, p, partition, on_violation, move_to)

    def ignored(self, text: str) -> n.Ignored:
        p = self.pos()
        while not self.tok.is_op(";") and self.tok.kind is not Kind.EOF:
            self.advance()
        self.expect_op(";", f"after {text}")
        return n.Ignored(text, p)

    def declare(self) -> n.Declare | n.DeclareObject:
        p = self.pos()
        start = self.advance()
        if self.tok.is_kw(*_SCRIPT_BOUND) and self.peek().kind is Kind.VAR:
            return self.declare_object(start, p)
        external = bool(self.accept_kw("EXTERNAL"))
        const = bool(self.accept_kw("CONST"))
        if self.tok.kind is not Kind.VAR or self.tok.value.startswith("@@"):
            raise self.error(f"expected a variable name (@name) after DECLARE, found {self.describe(self.tok)}")
        name = self.advance().value
        # DECLARE @x = expr: typed by the value
        typ = n.TypeRef(INFERRED_TYPE, False, self.pos()) if self.tok.is_op("=") else self.type_ref()
        self.expect_op("=", f"after DECLARE @{name} {typ.name}")
        value = self.expr()
        self.expect_op(";", "at the end of DECLARE")
        return n.Declare(name, typ, value, external, const, p)

    def declare_object(self, start: Token, p: n.Pos) -> n.DeclareObject:
        """``DECLARE FUNCTION|PROCEDURE|VIEW @name ...``: a script-bound object, defined as by its CREATE statement."""
        kind = self.advance().value
        construct = f"DECLARE {kind}"
        if kind in _SCRIPT_BOUND_UNSUPPORTED:
            raise self.error(f"{construct} ({_SCRIPT_BOUND_UNSUPPORTED[kind]}) is not supported by the local U-SQL "
                             "compiler", construct, start)  # fmt: skip
        vt = self.advance()
        if vt.value.startswith("@@"):
            raise self.error(f"expected a user variable name (@name) after {construct}, found {vt.value}", t=vt)
        name = n.TableName(None, None, vt.value, self.pos(vt))
        definition: n.CreateFunction | n.CreateProcedure | n.CreateView
        if kind == "VIEW":
            self.expect_kw("AS", f"after DECLARE VIEW @{name.name}")
            query = self.query_with_fetch()
            self.expect_op(";", "at the end of DECLARE VIEW")
            definition = n.CreateView(name, False, query, self.source_text(start), p)
        elif kind == "PROCEDURE":
            params = self.params()
            body = self.routine_body(construct)
            definition = n.CreateProcedure(name, False, params, body, self.source_text(start), p)
        else:
            definition = self.function_definition(start, p, name, False, construct)
        return n.DeclareObject(definition, p)

    def if_statement(self) -> n.If:
        """``IF cond THEN stmts {ELSEIF cond THEN stmts} [ELSE stmts] END;`` (cond is folded at compile time)."""
        p = self.pos()
        self.advance()
        branches: list[tuple[n.Expr, tuple[n.Statement, ...]]] = []
        while True:
            cond = self.expr()
            self.expect_kw("THEN", "after the IF condition")
            branches.append((cond, self.if_branch()))
            if not self.accept_kw("ELSEIF"):
                break
        otherwise = self.if_branch() if self.accept_kw("ELSE") else ()
        self.expect_kw("END", "closing IF")
        self.expect_op(";", "after IF ... END")
        return n.If(tuple(branches), otherwise, p)

    def if_branch(self) -> tuple[n.Statement, ...]:
        """The statements of one IF branch, up to ELSEIF, ELSE or END."""
        body: list[n.Statement] = []
        while not self.tok.is_kw("ELSEIF", "ELSE", "END"):
            if self.tok.kind is Kind.EOF:
                raise self.error("expected END closing IF, found end of script")
            if not self.accept_op(";"):
                body.append(self.statement())
        return tuple(body)

    def multi_assign(self) -> n.MultiAssign:
        """``(@a, @b, ...) = f(args);``: the rowsets of a function that RETURNS several."""
        p = self.pos()
        self.advance()
        names: list[str] = []
        while True:
            t = self.tok
            if t.kind is not Kind.VAR or t.value.startswith("@@"):
                raise self.error(f"expected a rowset variable (@name), found {self.describe(t)}")
            names.append(self.advance().value)
            if not self.accept_op(","):
                break
        self.expect_op(")", "closing the list of rowset variables")
        self.expect_op("=", "after the list of rowset variables")
        if not (self._at_call() or (self.tok.kind is Kind.VAR and self.peek().is_op("("))):
            raise self.error(f"expected a table-valued function call after ({', '.join('@' + x for x in names)}) =, "
                             f"found {self.describe(self.tok)}")  # fmt: skip
        call = self.tvf_call()
        self.expect_op(";", "at the end of the statement assigning several rowsets")
        return n.MultiAssign(tuple(names), call, p)

    def assign(self) -> n.Assign | n.Declare:
        p = self.pos()
        name = self.advance().value
        self.expect_op("=", f"after @{name}")
        if self._scalar_value_follows():
            value = self.expr()
            self.expect_op(";", f"at the end of the statement assigning @{name}")
            return n.Declare(name, n.TypeRef(INFERRED_TYPE, False, self.pos(self.toks[self.i - 1])), value,
                             external=False, const=False, pos=p)  # fmt: skip
        q = self.query_with_fetch()
        self.expect_op(";", f"at the end of the statement assigning @{name}")
        return n.Assign(name, q, p)

    def _scalar_value_follows(self) -> bool:
        """True if ``@x = `` is followed by a scalar expression (``@n = 3;``) rather than a query.

        ``@x = @y;`` stays a rowset assignment here: only the emitter knows whether ``@y`` is a scalar.
        """
        t = self.tok
        if t.kind in (Kind.NUMBER, Kind.STRING, Kind.CHAR) or t.is_op("-", "+", "!"):
            return True
        if t.kind is Kind.VAR:
            return not (self.peek().is_op(";", "(") or self.peek().is_kw(*_CLAUSE_END))
        if t.is_op("("):
            return self._looks_like_cast()
        if t.kind is Kind.IDENT and not t.quoted:
            return t.value in _SCALAR_STARTS or canonical(t.value) is not None
        return False

    def output(self) -> n.Output:
        p = self.pos()
        self.advance()
        if self.tok.kind is Kind.VAR and self.peek().is_op("("):
            src: n.Query = self.tvf_call()
        elif self.tok.kind is Kind.VAR:
            vt = self.advance()
            src = n.RowsetRef(vt.value, None, self.pos(vt))
        elif self.tok.is_op("("):
            self.advance()
            src = self.query_with_fetch()
            self.expect_op(")", "closing the OUTPUT query")
        elif self.tok.kind is Kind.IDENT and not self.tok.is_kw("TO") and self._at_call():
            src = self.tvf_call()
        elif self.tok.kind is Kind.IDENT and not self.tok.is_kw("TO"):
            tn = self.table_name()
            src = n.TableRef(tn, None, tn.pos)
        else:
            raise self.error(f"expected a rowset (@name) or (query) after OUTPUT, found {self.describe(self.tok)}")
        self.expect_kw("TO", "in OUTPUT")
        path = self.expr()
        expiration = self.expr() if self.accept_kw("EXPIRATION") else None
        order, offset, fetch = self.order_fetch(require_fetch=False)
        if expiration is None and self.accept_kw("EXPIRATION"):
            expiration = self.expr()
        using = self.expect_kw("USING", "in OUTPUT")
        udo = self.udo("Outputters", using)
        self.expect_op(";", "at the end of OUTPUT")
        return n.Output(src, path, order, offset, fetch, udo, p, expiration)

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
        if kind.value not in ("Csv", "Tsv", "Text", "Parquet"):
            raise self.error(f"{family}.{kind.value} is not supported; use Csv, Tsv, Text or Parquet",
                             f"{family}.{kind.value}")  # fmt: skip
        self.expect_op("(", f"after {family}.{kind.value}")
        options: list[tuple[str, n.Expr, n.Pos]] = []
        seen: set[str] = set()
        while not self.tok.is_op(")"):
            if not (self.tok.kind is Kind.IDENT and self.peek().is_op(":")):
                self.positional_udo_argument(f"{family}.{kind.value}")
            nt = self.advance()
            self.advance()
            if nt.value in seen:
                raise self.error(f"option {nt.value!r} given twice", f"{family}.{kind.value}", nt)
            seen.add(nt.value)
            options.append((nt.value, self.expr(), self.pos(nt)))
            if not self.accept_op(","):
                break
        self.expect_op(")", f"closing {family}.{kind.value}(")
        return n.Udo(family, kind.value, tuple(options), p)

    def positional_udo_argument(self, construct: str) -> None:
        """Refuse ``Extractors.Tsv(Encoding.Unicode)``: the reference documents the built-in UDOs' parameters by
        name only (no constructor order), so a positional argument's parameter is unknown."""
        start = self.tok
        self.expr()
        arg = self.source_text(start)
        name = "encoding" if arg.removeprefix("System.Text.").startswith("Encoding.") else "<parameter>"
        raise self.error(f"positional arguments are not supported: the reference names the built-in "
                         f"{construct.split('.')[0].lower()}' parameters, not their order; pass it by name: "
                         f"{name}: {arg}", construct, start)  # fmt: skip

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


#: ``PARTITIONED [BY] (cols)`` (vertical partitions); ``PARTITIONED BY HASH (...)`` is a distribution.
_VERTICAL = re.compile(r"PARTITIONED (?:BY )?\(([^()]*)\)")


def _vertical_partitioning(notes: list[str]) -> tuple[str, ...]:
    """The partition columns of a CREATE TABLE's clauses (``INDEX ... PARTITIONED BY (a, b) ...``)."""
    for note in notes:
        m = _VERTICAL.search(note)
        if m:
            return tuple(c.strip().strip("[]") for c in m.group(1).split(","))
    return ()


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
