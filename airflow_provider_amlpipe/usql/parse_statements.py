"""Parsing of the script statements: DECLARE (variables and script-bound objects), IF, rowset and scalar assignments,
OUTPUT and the built-in extractors / outputters (USING ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.lexer import Kind, Token
from airflow_provider_amlpipe.usql.parse_base import ParserBase
from airflow_provider_amlpipe.usql.parse_queries import _CLAUSE_END
from airflow_provider_amlpipe.usql.types import canonical

#: ``DECLARE <kind> @name``: script-bound objects; the ones that are refused, with why.
_SCRIPT_BOUND = ("FUNCTION", "PROCEDURE", "VIEW", "TYPE", "ASSEMBLY")
_SCRIPT_BOUND_UNSUPPORTED = {"TYPE": "table types", "ASSEMBLY": "user code assemblies"}
#: The type name of ``DECLARE @x = expr;`` and ``@x = expr;`` (no type written: it is the value's type).
INFERRED_TYPE = "var"
#: Words that start a scalar expression (never a query) after ``@x =``.
_SCALAR_STARTS = (
    "new", "true", "false", "null", "NULL", "Math", "Convert", "DateTime", "String", "string", "Guid", "System",
)  # fmt: skip


class ScriptStatements(ParserBase):
    """The statement part of the Parser (everything but the catalog statements)."""

    if TYPE_CHECKING:

        def statement(self) -> n.Statement: ...
        def query_with_fetch(self) -> n.Query: ...
        def order_fetch(self, require_fetch: bool) -> tuple[tuple[n.SortItem, ...], n.Expr | None, n.Expr | None]: ...
        def expr(self) -> n.Expr: ...
        def type_ref(self) -> n.TypeRef: ...
        def _looks_like_cast(self) -> bool: ...
        def table_name(self) -> n.TableName: ...
        def _at_call(self) -> bool: ...
        def tvf_call(self) -> n.TvfCall: ...
        def params(self) -> tuple[n.Param, ...]: ...
        def routine_body(self, construct: str) -> tuple[n.Statement, ...]: ...
        def function_definition(
            self, start: Token, p: n.Pos, name: n.TableName, ine: bool, construct: str
        ) -> n.CreateFunction: ...

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
