"""Recursive-descent parser: tokens -> :mod:`nodes`. Grammar after the U-SQL language reference.

The :class:`Parser` holds the token helpers and the entry points; the grammar is in its mixins:
:mod:`.parse_catalog`, :mod:`.parse_statements`, :mod:`.parse_queries` and :mod:`.parse_exprs`.
"""

from __future__ import annotations

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.lexer import Kind, Lexer, Token
from airflow_provider_amlpipe.usql.parse_catalog import CatalogStatements
from airflow_provider_amlpipe.usql.parse_exprs import Expressions
from airflow_provider_amlpipe.usql.parse_queries import QueryClauses
from airflow_provider_amlpipe.usql.parse_statements import INFERRED_TYPE as INFERRED_TYPE
from airflow_provider_amlpipe.usql.parse_statements import ScriptStatements

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
#: Catalog objects of CREATE / DROP statements this compiler supports.
_CREATABLE = ("DATABASE", "TABLE", "VIEW", "FUNCTION", "PROCEDURE", "SCHEMA")


class Parser(CatalogStatements, ScriptStatements, QueryClauses, Expressions):
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


def parse(text: str, source_name: str = "script.usql") -> n.Script:
    """Parse a whole script; raises :class:`UsqlError` at the first problem."""
    return Parser(text, source_name).script()
