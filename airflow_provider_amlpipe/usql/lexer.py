"""Tokens of U-SQL: SQL keywords (upper case, case-sensitive), C# literals and operators, comments."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from airflow_provider_amlpipe.usql.errors import UsqlError


class Kind(Enum):
    """Token kinds."""

    IDENT = "identifier"
    VAR = "variable"
    STRING = "string literal"
    CHAR = "char literal"
    NUMBER = "number"
    OP = "operator"
    EOF = "end of script"


@dataclass(frozen=True)
class Token:
    """One token; ``value`` is the decoded literal for strings/chars, the text otherwise."""

    kind: Kind
    value: str
    line: int
    column: int
    quoted: bool = False  # identifier written as [name]
    suffix: str = ""  # numeric literal suffix (L, f, d, m, UL) lower-cased

    def is_kw(self, *words: str) -> bool:
        """True if this is an unquoted identifier spelled exactly as one of ``words``."""
        return self.kind is Kind.IDENT and not self.quoted and self.value in words

    def is_op(self, *ops: str) -> bool:
        """True if this is one of the operators ``ops``."""
        return self.kind is Kind.OP and self.value in ops


_OPERATORS = sorted(
    [
        "==", "!=", "<=", ">=", "&&", "||", "??", "=>", "<<", ">>",
        "(", ")", "[", "]", "{", "}", ",", ";", ".", ":", "?", "+", "-", "*", "/", "%",
        "<", ">", "=", "!", "&", "|", "^", "~",
    ],
    key=len,
    reverse=True,
)  # fmt: skip

#: Keywords after which a ``[`` starts a quoted identifier (``SELECT [a b]``, ``AS [x]``), not an indexer.
_NAME_BEFORE = frozenset((
    "SELECT", "EXTRACT", "AS", "BY", "ON", "WHERE", "AND", "OR", "NOT", "DISTINCT", "ALL", "FROM", "HAVING", "JOIN",
    "SEMIJOIN", "ANTISEMIJOIN", "APPLY", "IN", "TO", "INTO", "RETURN", "RETURNS", "TABLE", "DATABASE", "INDEX",
    "CLUSTERED", "SCHEMA", "VIEW", "FUNCTION", "PROCEDURE", "TYPE", "EXISTS", "USE", "CREATE", "DROP", "ALTER",
    "TRUNCATE", "INSERT", "ASSEMBLY", "PACKAGE", "REFERENCE", "SYSTEM", "DEPLOY", "RESOURCE", "IMPORT", "EXPORT",
    "OUTPUT", "DECLARE", "CONST", "EXTERNAL", "GROUP", "ORDER", "PARTITION", "OVER", "UNION", "EXCEPT", "INTERSECT",
    "WHEN", "THEN", "ELSE", "CASE", "WITH", "USING", "DISTRIBUTED", "HASH", "RANGE", "ROWS", "OUTER", "CROSS",
))  # fmt: skip

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b",
            "f": "\f", "v": "\v"}  # fmt: skip


class Lexer:
    """Splits a script into tokens, skipping whitespace and ``//`` / ``/* */`` comments."""

    def __init__(self, text: str, source_name: str) -> None:
        self.text = text
        self.source = source_name
        self.pos = 0
        self.line = 1
        self.col = 1
        self._after_operand = False

    def error(self, message: str, line: int | None = None, col: int | None = None) -> UsqlError:
        return UsqlError(self.source, line or self.line, col or self.col, "syntax", message)

    def _advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.pos < len(self.text):
                if self.text[self.pos] == "\n":
                    self.line += 1
                    self.col = 1
                else:
                    self.col += 1
                self.pos += 1

    def _peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.text[i] if i < len(self.text) else ""

    def tokens(self) -> list[Token]:
        """All tokens, ending with one EOF token."""
        out: list[Token] = []
        while True:
            self._skip_trivia()
            if self.pos >= len(self.text):
                out.append(Token(Kind.EOF, "", self.line, self.col))
                return out
            prev = out[-1] if out else None
            self._after_operand = prev is not None and (
                (prev.kind is Kind.IDENT and not prev.is_kw(*_NAME_BEFORE))
                or prev.kind in (Kind.VAR, Kind.STRING)
                or prev.is_op(")", "]", "}")
            )
            out.append(self._next())

    def _skip_trivia(self) -> None:
        while self.pos < len(self.text):
            c = self._peek()
            if c in " \t\r\n\ufeff":
                self._advance()
            elif c == "/" and self._peek(1) == "/":
                while self.pos < len(self.text) and self._peek() != "\n":
                    self._advance()
            elif c == "/" and self._peek(1) == "*":
                line, col = self.line, self.col
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment", line, col)
                self._advance(end + 2 - self.pos)
            else:
                return

    def _next(self) -> Token:
        c = self._peek()
        line, col = self.line, self.col
        if c == "@" and self._peek(1) == '"':
            self._advance(2)
            return Token(Kind.STRING, self._verbatim(line, col), line, col)
        if c == "@" and self._peek(1) == "@":
            self._advance(2)
            name = self._ident_chars()
            return Token(Kind.VAR, "@@" + name, line, col)
        if c == "@":
            self._advance()
            name = self._ident_chars()
            if not name:
                raise self.error("expected a variable name after '@'", line, col)
            return Token(Kind.VAR, name, line, col)
        if c == '"':
            self._advance()
            return Token(Kind.STRING, self._regular('"', line, col), line, col)
        if c == "'":
            self._advance()
            value = self._regular("'", line, col)
            if len(value) != 1:
                raise self.error("a char literal holds exactly one character", line, col)
            return Token(Kind.CHAR, value, line, col)
        if c == "[" and not self._after_operand:
            # not after an operand, '[' cannot index: it quotes an identifier ([tweet count], [name,last], [0])
            end = self.text.find("]", self.pos)
            inner = self.text[self.pos + 1 : end] if end > 0 else ""
            if inner and "\n" not in inner and "[" not in inner:
                self._advance(end + 1 - self.pos)
                return Token(Kind.IDENT, inner, line, col, quoted=True)
        if c.isdigit() or (c == "." and self._peek(1).isdigit()):
            return self._number(line, col)
        if c.isalpha() or c == "_":
            return Token(Kind.IDENT, self._ident_chars(), line, col)
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                self._advance(len(op))
                return Token(Kind.OP, op, line, col)
        raise self.error(f"unexpected character {c!r}", line, col)

    def _ident_chars(self) -> str:
        start = self.pos
        while self._peek() and (self._peek().isalnum() or self._peek() == "_"):
            self._advance()
        return self.text[start : self.pos]

    def _verbatim(self, line: int, col: int) -> str:
        parts: list[str] = []
        while True:
            c = self._peek()
            if not c:
                raise self.error("unterminated verbatim string literal", line, col)
            if c == '"':
                if self._peek(1) == '"':
                    parts.append('"')
                    self._advance(2)
                    continue
                self._advance()
                return "".join(parts)
            parts.append(c)
            self._advance()

    def _regular(self, quote: str, line: int, col: int) -> str:
        parts: list[str] = []
        while True:
            c = self._peek()
            if not c or c == "\n":
                raise self.error("unterminated string literal", line, col)
            if c == quote:
                self._advance()
                return "".join(parts)
            if c == "\\":
                e = self._peek(1)
                if e in _ESCAPES:
                    parts.append(_ESCAPES[e])
                    self._advance(2)
                elif e in "ux":
                    self._advance(2)
                    digits = ""
                    limit = 4
                    while len(digits) < limit and self._peek() and self._peek() in "0123456789abcdefABCDEF":
                        digits += self._peek()
                        self._advance()
                    if not digits or (e == "u" and len(digits) != 4):
                        raise self.error(f"bad \\{e} escape in string literal")
                    parts.append(chr(int(digits, 16)))
                else:
                    raise self.error(f"unknown escape sequence \\{e}")
                continue
            parts.append(c)
            self._advance()

    def _number(self, line: int, col: int) -> Token:
        start = self.pos
        if self._peek() == "0" and self._peek(1) in "xX":
            self._advance(2)
            while self._peek() and self._peek() in "0123456789abcdefABCDEF":
                self._advance()
            text = str(int(self.text[start + 2 : self.pos], 16))
        else:
            while self._peek().isdigit():
                self._advance()
            if self._peek() == "." and self._peek(1).isdigit():
                self._advance()
                while self._peek().isdigit():
                    self._advance()
            if self._peek() in "eE" and (self._peek(1).isdigit() or self._peek(1) in "+-"):
                self._advance(2)
                while self._peek().isdigit():
                    self._advance()
            text = self.text[start : self.pos]
        suffix = ""
        for s in ("UL", "ul", "uL", "Ul", "LU", "lu", "L", "l", "U", "u", "F", "f", "D", "d", "M", "m"):
            if self.text.startswith(s, self.pos):
                suffix = s.lower()
                self._advance(len(s))
                break
        if self._peek().isalnum() or self._peek() == "_":
            raise self.error(f"malformed number {self.text[start : self.pos + 1]!r}", line, col)
        return Token(Kind.NUMBER, text, line, col, suffix=suffix)
