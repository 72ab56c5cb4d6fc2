"""Parsing of the catalog statements: CREATE / DROP / ALTER / TRUNCATE / INSERT, USE, STATISTICS and indexes, functions
and procedures (their definitions and calls), views and schemas."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.lexer import Kind, Token
from airflow_provider_amlpipe.usql.parse_base import ParserBase


class CatalogStatements(ParserBase):
    """The catalog (DDL, INSERT) and routine-call part of the Parser."""

    if TYPE_CHECKING:

        def statement(self) -> n.Statement: ...
        def query_with_fetch(self) -> n.Query: ...
        def value_rows(self) -> list[tuple[n.Expr, ...]]: ...
        def expr(self) -> n.Expr: ...
        def type_ref(self) -> n.TypeRef: ...

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
            rows = self.value_rows()
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


#: ``PARTITIONED [BY] (cols)`` (vertical partitions); ``PARTITIONED BY HASH (...)`` is a distribution.
_VERTICAL = re.compile(r"PARTITIONED (?:BY )?\(([^()]*)\)")


def _vertical_partitioning(notes: list[str]) -> tuple[str, ...]:
    """The partition columns of a CREATE TABLE's clauses (``INDEX ... PARTITIONED BY (a, b) ...``)."""
    for note in notes:
        m = _VERTICAL.search(note)
        if m:
            return tuple(c.strip().strip("[]") for c in m.group(1).split(","))
    return ()
