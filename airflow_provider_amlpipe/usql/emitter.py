"""The dialect-neutral part of every emitter (:class:`Emitter`): the script's bookkeeping and checks, whatever SQL
dialect is written.

It owns the statement and query dispatch (each dialect lists the statements and queries it translates, as data:
:attr:`Emitter.statements`, :attr:`Emitter.queries`), binding (variables, constants, rowsets, ``@@JobInfo``), the
typing of SELECT and VALUES, DECLARE (and EXTERNAL parameters), IF (folded at compile time), set operations and
their checks, join conditions, EXTRACT columns, paths, ORDER BY/FETCH, the text of OUTPUT values and the name checks.
A dialect subclasses it, supplies its expression translator (:attr:`Emitter.translator`, whose identifiers, types and
value texts the emitter uses too) and the render hooks (``_values_table``, ``_note``, ``_param_sql``,
``source_sql``, ...), and reports what it cannot translate through :meth:`Emitter.unsupported`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote

from airflow_provider_amlpipe.usql import decimal_scale as ds
from airflow_provider_amlpipe.usql import jobinfo
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.catalog import CatalogObject
from airflow_provider_amlpipe.usql.consts import Encoding, NotConstant, fold, fold_datetime_parse
from airflow_provider_amlpipe.usql.csformat import FormatError
from airflow_provider_amlpipe.usql.emit_model import QualifiedName
from airflow_provider_amlpipe.usql.emit_queries import QueryParts
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed, scale_of, with_scale
from airflow_provider_amlpipe.usql.jobinfo import JobInfo
from airflow_provider_amlpipe.usql.options import TextFormat
from airflow_provider_amlpipe.usql.parser import INFERRED_TYPE
from airflow_provider_amlpipe.usql.paths import PathMap, is_remote
from airflow_provider_amlpipe.usql.translator import Translator, non_column_type
from airflow_provider_amlpipe.usql.types import UType

#: An argument whose value is not known at compile time.
NO_CONSTANT = object()


@dataclass(frozen=True)
class Rowset:
    view: str
    columns: tuple[tuple[str, UType], ...]


class ScriptName(QualifiedName):
    """The name of a script-bound object: shown as ``@name``; ``db``/``schema`` are its body's defaults (the
    context it was declared in)."""

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ScriptBound:
    """A ``DECLARE FUNCTION|PROCEDURE|VIEW @name`` object; a view's rowset is compiled where it is declared."""

    name: ScriptName
    obj: CatalogObject
    definition: n.CreateFunction | n.CreateProcedure | n.CreateView
    rowset: Rowset | None = None


#: The statements of every script and the Emitter methods compiling them (a dialect's ``statements`` start here).
SCRIPT_STATEMENTS: dict[type, str] = {
    n.Declare: "declare", n.Assign: "assign", n.Output: "output", n.Ignored: "ignored",
}  # fmt: skip
#: Database and table statements and the (dialect's) methods compiling them.
DATABASE_STATEMENTS: dict[type, str] = {
    n.UseDatabase: "use_database", n.CreateDatabase: "create_database", n.DropDatabase: "drop_database",
    n.CreateTable: "create_table", n.DropTable: "drop_table", n.Insert: "insert",
}  # fmt: skip


class Emitter(QueryParts):
    """Compiles a parsed script to one SQL dialect's statements; one instance per script."""

    #: The expression translator of the dialect.
    translator: ClassVar[type[Translator]]
    #: Statement node type -> the name of the method that compiles it; any other statement is :meth:`unsupported`.
    statements: ClassVar[Mapping[type, str]]

    def __init__(
        self,
        source: str,
        params: Mapping[str, str],
        base_dir: Path,
        *,
        path_map: Mapping[str, str | Path] | None = None,
        job_info: JobInfo | None = None,
    ) -> None:
        self.source = source
        self.job_info = (job_info or JobInfo.local(source)).values()
        self.path_map = PathMap(path_map)
        self.params = dict(params)
        self.base_dir = base_dir
        self.constants: dict[str, object] = self._system_constants()
        self.variables: dict[str, Typed] = {}
        self.rowsets: dict[str, Rowset] = {}
        self.script_objects: dict[str, ScriptBound] = {}  # DECLARE FUNCTION|PROCEDURE|VIEW @name
        self.view_counter: dict[str, int] = {}
        self.view_names: set[str] = set()  # lower case: DuckDB's and Spark's identifiers are case-insensitive
        self.x = self.translator(source, self._variable)

    # ------------------------------------------------------------ render hooks
    def _ident(self, name: str) -> str:
        """A quoted identifier (the translator's)."""
        return self.x._ident(name)

    def _type_sql(self, ty: UType) -> str:
        """The SQL type of a U-SQL type (the translator's)."""
        return self.x._type_sql(ty)

    @staticmethod
    def _values_table(rows: str, columns: str) -> str:
        """A FROM item ``usql_v`` whose columns ``columns`` (``c0, c1, ...``) hold the parenthesised,
        comma-separated ``rows``."""
        raise NotImplementedError

    def _note(self, pos: n.Pos, text: str) -> None:
        """Records what the compiler accepted without a local effect (a comment among the statements)."""
        raise NotImplementedError

    def _param_sql(self, raw: str, typ: UType, d: n.Declare) -> Typed:
        """The value of the ``DECLARE EXTERNAL`` parameter ``d`` passed as the text ``raw``, checked here."""
        if typ.name == "string":
            return self.x._strlit(raw), typ
        if typ.name == "bool" and raw.strip().lower() not in ("true", "false"):
            raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a bool")
        if typ.is_numeric:
            try:
                float(raw)
            except ValueError:
                raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a {typ}") from None
        sql = self._param_value(raw, typ, d)
        if typ.name == "decimal":
            scale = ds.written_scale(raw)
            if scale is None:  # float() took NaN or infinity, which a decimal cannot be
                raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a {typ}")
            sql = with_scale(sql, scale)
        return sql, typ

    def _param_value(self, raw: str, typ: UType, d: n.Declare) -> str:
        """The SQL of a checked parameter value of a type other than string."""
        return f"({self.x._parse(self.x._strlit(raw), typ.name, f'@{d.name}', d.pos)})"

    def source_sql(self, src: n.Source) -> tuple[str, Scope]:
        """FROM-clause SQL and the columns it brings into scope."""
        raise NotImplementedError

    def _char_code_text(self, col: str) -> str:
        """A char as its UTF-16 code (charFormat "uint16")."""
        raise NotImplementedError

    def _datetime_text(self, col: str, fmt: TextFormat, o: n.Output) -> str:
        """A DateTime in the outputter's dateTimeFormat."""
        try:
            return self.x._format_datetime(col, fmt.date_time_format, o.outputter.pos)
        except FormatError as ex:
            raise self.err(o.outputter.pos, "dateTimeFormat", str(ex)) from None

    def _value_text(self, col: str, ty: UType) -> str:
        """Any other value as C#'s ToString() writes it."""
        return self.x._tostring(self.x.column_value(col, ty), ty)

    def _quoted_text(self, v: str) -> str:
        """A text value in double quotes, inner quotes doubled (null stays null)."""
        raise NotImplementedError

    def unsupported(self, construct: str, node: object) -> UsqlError:
        """The error for a node this dialect does not translate (``construct``: "statement", "query", ...)."""
        return self.err(_pos(node), construct, f"unsupported {construct} {type(node).__name__}")

    # ------------------------------------------------------------ statements
    def compile_statements(self, script: n.Script) -> None:
        """Compiles every statement of the script, after checking that each parameter names a DECLARE EXTERNAL."""
        externals = {s.name for s in script.statements if isinstance(s, n.Declare) and s.external}
        unknown = sorted(set(self.params) - externals)
        if unknown:
            raise UsqlError(self.source, 1, 1, "DECLARE EXTERNAL",
                            f"parameter(s) {', '.join(unknown)} match no DECLARE EXTERNAL in the script")  # fmt: skip
        declared_later = {s.name for s in script.statements if isinstance(s, n.Declare) and not s.external}
        for st in script.statements:
            if isinstance(st, n.Declare) and st.external and st.name in declared_later:
                continue  # a later DECLARE overrides the EXTERNAL default (how AML passes parameters)
            self.statement(st)

    def statement(self, st: n.Statement) -> None:
        """Compiles one statement (a script's, or one of a procedure's body)."""
        handler = self.statements.get(type(st))
        if handler is None:
            raise self.unsupported("statement", st)
        getattr(self, handler)(st)

    def err(self, pos: n.Pos, construct: str, message: str) -> UsqlError:
        return UsqlError(self.source, pos.line, pos.column, construct, message)

    def _constant(self, e: n.Expr) -> object:
        try:
            return fold(e, self.constants)
        except NotConstant:
            return NO_CONSTANT

    def _constant_or_none(self, e: n.Expr) -> object:
        try:
            return fold(e, self.constants)
        except NotConstant:
            return None

    def _check_rowset_name(self, name: str, pos: n.Pos) -> None:
        """A rowset may be reassigned, but not named like a scalar variable or a script-bound object."""
        if name in self.variables:
            raise self.err(pos, "variable", f"@{name} is a scalar variable and cannot name a rowset")
        if name in self.script_objects:
            kind = self.script_objects[name].obj.kind.lower()
            raise self.err(pos, "variable", f"@{name} is a script-bound {kind} and cannot name a rowset")

    def if_statement(self, st: n.If) -> None:
        for s in self._each((st,)):
            self.statement(s)

    def _each(self, statements: tuple[n.Statement, ...]) -> Iterator[n.Statement]:
        """The statements in order, each IF replaced by the statements of the branch it takes; a condition is
        evaluated when it is reached, after the statements before it were compiled (it may use their variables)."""
        for st in statements:
            if isinstance(st, n.If):
                yield from self._each(self._taken(st))
            else:
                yield st

    def _taken(self, st: n.If) -> tuple[n.Statement, ...]:
        for cond, body in st.branches:
            if self._condition(cond):
                self._note(cond.pos, f"IF: the condition at line {cond.pos.line} is true; its branch is compiled")
                return body
        self._note(st.pos, "IF: no condition is true; " + ("the ELSE branch is compiled" if st.otherwise else
                                                           "nothing is compiled"))  # fmt: skip
        return st.otherwise

    def _condition(self, cond: n.Expr) -> bool:
        """The value of an IF condition, which U-SQL folds at compile time."""
        _, ty = self.x.tr(cond, Scope())
        if ty.name != "bool":
            raise self.err(cond.pos, "IF", f"the IF condition must be a bool expression, not {ty}")
        try:
            value = fold(cond, self.constants)
        except NotConstant:
            raise self.err(cond.pos, "IF", "the IF condition must be constant-foldable at compile time (literals, "
                           "parameters, variables DECLAREd with constant values)") from None  # fmt: skip
        if not isinstance(value, bool):
            raise self.err(cond.pos, "IF", "the IF condition is null; it must be true or false")
        return value

    def _system_constants(self) -> dict[str, object]:
        """The ``@@JobInfo`` values constant folding can use (paths, IF): all but the DateTime one."""
        return {k: (str(v) if k == "@@JobInfo.Id" and v is not None else v) for k, v in self.job_info.items()
                if k != "@@JobInfo.Submit.Date"}  # fmt: skip

    def _job_info_sql(self, name: str) -> Typed:
        ty = jobinfo.PROPERTY_TYPES[name]
        value = self.job_info[name]
        if value is None:
            return f"CAST(NULL AS {self._type_sql(ty)})", ty
        if ty.name == "string":
            return self.x._strlit(str(value)), ty
        if ty.name == "int":
            return f"CAST({int(str(value))} AS {self._type_sql(ty)})", ty
        return f"CAST({self.x._strlit(str(value))} AS {self._type_sql(ty)})", ty

    def _variable(self, v: n.Variable) -> Typed:
        if v.name in jobinfo.PROPERTY_TYPES:
            return self._job_info_sql(v.name)
        if v.name in self.variables:
            return self.variables[v.name]
        if v.name in self.rowsets:
            raise self.err(v.pos, "variable", f"@{v.name} is a rowset, not a scalar value")
        raise self.err(v.pos, "variable", f"unknown variable @{v.name} (DECLARE it first)")

    def declare(self, d: n.Declare) -> None:
        if d.type.name == INFERRED_TYPE:
            self._declare_inferred(d)
            return
        typ = t.resolve(d.type)
        if typ is None or typ.name in ("SqlArray", "SqlMap", "byte[]"):
            raise self.err(d.type.pos, "DECLARE", f"type {d.type.name!r} is not supported for variables")
        if (d.name in self.variables and not d.external) or d.name in self.script_objects:
            raise self.err(d.pos, "DECLARE", f"variable @{d.name} is already declared")
        if d.external and d.name in self.params:
            raw = self.params[d.name]
            self.variables[d.name] = self._param_sql(raw, typ, d)
            with contextlib.suppress(ValueError):  # IF conditions and paths fold parameters too
                self.constants[d.name] = _param_value(raw, typ)
            return
        sql, vt = self.x.tr(fold_datetime_parse(d.value), Scope())
        self._check_assignable(vt, typ, d)
        try:
            value = fold(d.value, self.constants)
            self.constants[d.name] = value
        except NotConstant:
            pass
        scale = ds.operand_scale(sql, vt) if typ.name == "decimal" else None
        if vt.name != typ.name and vt.name != "null":
            sql = f"CAST({sql} AS {self._type_sql(typ)})"
        elif vt.name == "null":
            sql = f"CAST(NULL AS {self._type_sql(typ)})"
        self.variables[d.name] = (with_scale(f"({sql})", scale), typ)

    def _declare_inferred(self, d: n.Declare) -> None:
        """``DECLARE @x = expr;`` / ``@x = expr;``: the variable takes the value's type."""
        if d.name in self.variables or d.name in self.rowsets or d.name in self.script_objects:
            raise self.err(d.pos, "DECLARE", f"variable @{d.name} is already declared")
        if isinstance(encoding := self._constant_or_none(d.value), Encoding):
            self.constants[d.name] = encoding  # only an option value (encoding: @enc), never a column value
            return
        sql, vt = self.x.tr(fold_datetime_parse(d.value), Scope())
        if vt.name in ("null", "unknown"):
            raise self.err(d.value.pos, "type", f"the type of @{d.name} cannot be inferred from this value; "
                           "declare it with a type (DECLARE @x T = ...)")  # fmt: skip
        if d.external and d.name in self.params:
            self.variables[d.name] = self._param_sql(self.params[d.name], vt, d)
            with contextlib.suppress(ValueError):
                self.constants[d.name] = _param_value(self.params[d.name], vt)
            return
        with contextlib.suppress(NotConstant):
            self.constants[d.name] = fold(d.value, self.constants)
        self.variables[d.name] = (with_scale(f"({sql})", scale_of(sql)), vt)

    def _check_assignable(self, vt: UType, typ: UType, d: n.Declare) -> None:
        if vt.name in ("null", "unknown"):
            if vt.name == "null" and not typ.nullable:
                raise self.err(d.value.pos, "type", f"cannot assign null to @{d.name} of type {typ}")
            return
        ok = vt.name == typ.name or (vt.is_numeric and typ.is_numeric) or (vt.name == "char" and typ.is_integral)
        if not ok:
            raise self.err(d.value.pos, "type", f"cannot assign a {vt} value to @{d.name} of type {typ}")

    def _view_name(self, name: str) -> str:
        """A new view name for rowset ``@name``, unlike all earlier ones also when case is ignored (``@a`` and ``@A``
        are two rowsets in U-SQL) and whatever the rowset names (``@a`` assigned twice and ``@a_2``)."""
        k = self.view_counter.get(name, 0)
        while True:
            k += 1
            view = f"rs_{name}" if k == 1 else f"rs_{name}_{k}"
            if view.lower() not in self.view_names:
                break
        self.view_counter[name] = k
        self.view_names.add(view.lower())
        return view

    def constant_path(self, e: n.Expr, construct: str) -> str:
        """A path as written: a constant, non-empty string expression."""
        try:
            v = fold(e, self.constants)
        except NotConstant:
            raise self.err(e.pos, construct, "the path must be a constant string expression") from None
        if not isinstance(v, str) or not v:
            raise self.err(e.pos, construct, "the path must be a non-empty string")
        return v

    def path(self, e: n.Expr, construct: str, allow_file_set: bool = False) -> Path:
        v = unquote(
            self.constant_path(e, construct)
        )  # paths are URIs: "a%20b.csv" names the file "a b.csv" (the reference's Input/Output Files)
        if "{" in v and not allow_file_set:
            raise self.err(e.pos, "file set", f"file set patterns ({v!r}) are not supported in {construct}")
        mapped = self.path_map.apply(v)
        if mapped is None and is_remote(v):
            raise self.err(e.pos, construct, f"remote paths ({v!r}) are not supported locally; map them to a local "
                           "folder with --map-path PREFIX=DIR (run_script(..., path_map={PREFIX: DIR}))")  # fmt: skip
        p = Path(mapped or v)
        return p if p.is_absolute() else self.base_dir / p

    def _fraction(self, e: n.Expr) -> float:
        try:
            v = fold(e, self.constants)
        except NotConstant:
            v = None
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
            raise self.err(e.pos, "SAMPLE", "the sample fraction must be a constant double between 0 and 1")
        return float(v)

    def _order_fetch(
        self, order: tuple[n.SortItem, ...], offset: n.Expr | None, fetch: n.Expr | None, scope: Scope
    ) -> str:
        sql = ""
        if order:
            self.x.allow_aggregates = False
            try:
                sql += "\nORDER BY " + self.x.sort_list(order, scope)
            finally:
                self.x.allow_aggregates = True
        if fetch is not None:
            sql += f"\nLIMIT {self._count(fetch)}"
        if offset is not None:
            sql += f"\nOFFSET {self._count(offset)}"
        return sql

    def _count(self, e: n.Expr, construct: str = "FETCH") -> int:
        try:
            v = fold(e, self.constants)
        except NotConstant:
            v = None
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            where = "OFFSET/FETCH" if construct == "FETCH" else construct
            raise self.err(e.pos, construct, f"row counts in {where} must be non-negative constant integers")
        return v

    def _rowset(self, r: n.RowsetRef) -> Rowset:
        view = self.script_objects.get(r.name)
        if r.name not in self.rowsets and view is not None and view.rowset is not None:  # DECLARE VIEW @v
            return view.rowset
        if r.name not in self.rowsets:
            what = "a scalar variable" if r.name in self.variables else "not defined (assign it before use)"
            raise self.err(r.pos, "rowset", f"unknown rowset @{r.name}: {what}")
        return self.rowsets[r.name]

    def select(self, s: n.Select) -> tuple[str, list[tuple[str, UType]]]:
        for hint in s.hints:
            self._note(s.pos, f"{hint} ignored (a query hint; it does not change the result)")
        from_sql, scope = self.source_sql(s.source) if s.source is not None else ("", Scope())
        items: list[str] = []
        cols: list[tuple[str, UType]] = []
        positions: list[n.Pos] = []  # of each column's select item
        for it in s.items:
            if isinstance(it.expr, n.Star):
                qual = it.expr.qualifier
                if qual is not None and qual not in scope.aliases():
                    raise self.err(it.pos, "SELECT", f"unknown rowset alias {qual!r} in {qual}.*")
                for alias, c, ty in scope.columns:
                    if qual is None or alias == qual:
                        items.append(f"{self._ident(alias)}.{self._ident(c)}" if alias else self._ident(c))
                        cols.append((c, ty))
                        positions.append(it.pos)
                continue
            sql, ty = self.x.tr(it.expr, scope)
            name = it.alias
            if name is None:
                # a column, or an expression ending in a property/field access (c1.ToString().Length -> Length)
                if isinstance(it.expr, (n.Name, n.Member)):
                    name = it.expr.name
                elif isinstance(it.expr, n.Variable) and it.expr.name in jobinfo.PROPERTY_TYPES:
                    name = it.expr.name.rsplit(".", 1)[1]  # @@JobInfo.Submit.Alias is the column Alias
                else:
                    raise self.err(it.pos, "SELECT", "this select expression needs a column name: add AS name")
            if ty.name == "null":
                raise self.err(it.pos, "type", f"column {name!r} has no type: cast null, e.g. (string) null")
            if non_column_type(ty):
                raise self.err(it.pos, "type", f"column {name!r} would be a {non_column_type(ty)}, which is not a "
                               "U-SQL column type: convert it (e.g. span.TotalDays, x.ToString())")  # fmt: skip
            items.append(f"{self.x.column_sql(sql, ty)} AS {self._ident(name)}")
            cols.append((name, ty))
            positions.append(it.pos)
        names = [c for c, _ in cols]
        dup = next((c for c in names if names.count(c) > 1), None)
        if dup:
            raise self.err(s.pos, "SELECT", f"column {dup!r} appears twice in the result; rename one with AS")
        self._check_case(zip(names, positions, strict=True), "SELECT")
        sql = "SELECT " + ("DISTINCT " if s.distinct else "") + ",\n  ".join(items)
        if from_sql:
            sql += "\nFROM " + from_sql
        self.x.allow_aggregates = False
        try:
            if s.where is not None:
                # DateTime.Parse("...") as a constant, so that WHERE on a file set's virtual columns skips files
                sql += "\nWHERE " + self.x.bool_sql(fold_datetime_parse(s.where), scope, "WHERE")
            if s.group_by:
                keys = [k for g in s.group_by for k in self.x.group_keys(*self.x.tr(g, scope))]
                sql += "\nGROUP BY " + ", ".join(keys)
        finally:
            self.x.allow_aggregates = True
        if s.having is not None:
            having_scope = Scope(scope.columns, {c: (self.x.column_value(self._ident(c), ty), ty) for c, ty in cols})
            sql += "\nHAVING " + self.x.bool_sql(s.having, having_scope, "HAVING")
        return sql, cols

    def _check_case(self, names: Iterable[tuple[str, n.Pos]], construct: str, what: str = "columns") -> None:
        """Refuses names that differ only in case: U-SQL's identifiers are case-sensitive, DuckDB's are not, so
        ``[Sophia]`` and ``[SOPHIA]`` would silently name one column. The error is at the second name's position."""
        seen: dict[str, str] = {}
        for name, pos in names:
            first = seen.setdefault(name.lower(), name)
            if first != name:
                why = "the local engine (DuckDB: case-insensitive names) cannot keep apart; rename one"
                raise self.err(pos, construct, f"the {what} {first!r} and {name!r} differ only in case, which {why}")

    def values(self, v: n.ValuesSource) -> tuple[str, Scope]:
        self._check_case([(c, v.pos) for c in v.columns], "VALUES")
        rows_sql = []
        types: list[UType | None] = [None] * len(v.columns)
        for row in v.rows:
            vals = []
            for i, e in enumerate(row):
                sql, ty = self.x.tr(e, Scope())
                prev = types[i]
                if prev is None or prev.name == "null":
                    types[i] = ty.with_nullable(ty.nullable or (prev is not None))
                elif ty.name == "null":
                    types[i] = prev.with_nullable(True)
                elif prev.name != ty.name:
                    raise self.err(e.pos, "VALUES", f"column {v.columns[i]!r} mixes {prev} and {ty} values")
                vals.append(self.x.column_sql(sql, ty))
            rows_sql.append("(" + ", ".join(vals) + ")")
        final: list[UType] = []
        for i, maybe in enumerate(types):
            if maybe is None or maybe.name == "null":
                raise self.err(v.pos, "VALUES", f"column {v.columns[i]!r} has only null values; cast one")
            final.append(maybe)
        cast_cols = ", ".join(
            f"CAST(c{i} AS {self.x.column_type_sql(ty)}) AS {self._ident(c)}"
            for i, (c, ty) in enumerate(zip(v.columns, final, strict=False))
        )
        raw_cols = ", ".join(f"c{i}" for i in range(len(v.columns)))
        table = self._values_table(", ".join(rows_sql), raw_cols)
        sql = f"(SELECT {cast_cols} FROM {table}) AS {self._ident(v.alias)}"
        return sql, Scope([(v.alias, c, ty) for c, ty in zip(v.columns, final, strict=False)])

    # ------------------------------------------------------------ OUTPUT, EXTRACT
    def _format_value(self, col: str, ty: UType, fmt: TextFormat, o: n.Output) -> str:
        """One column of an output line, as the built-in outputters write it (the SQL pieces are the dialect's)."""
        if ty.name in ("SqlArray", "SqlMap", "byte[]", "unknown"):
            raise self.err(o.pos, "OUTPUT", f"a column of type {ty} cannot be written by the built-in outputters")
        text_like = ty.name == "string" or (ty.name == "char" and fmt.char_format == "string")
        if text_like:
            v = col
        elif ty.name == "char":
            v = self._char_code_text(col)
        elif ty.name == "DateTime":
            v = self._datetime_text(col, fmt, o)
        else:
            v = self._value_text(col, ty)
        strlit = self.x._strlit
        # escapeCharacter applies whether or not quoting is on; the quote itself is doubled, never escaped
        chars = fmt.escaped_chars()
        for c in chars:
            v = f"replace({v}, {strlit(c)}, {strlit(chars[0] + c)})"
        if text_like and fmt.quoting:
            v = self._quoted_text(v)
        return f"coalesce({v}, {strlit(fmt.null_escape or '')})"


def _pos(node: object) -> n.Pos:
    pos = getattr(node, "pos", None)
    return pos if isinstance(pos, n.Pos) else n.Pos(1, 1)


def _param_value(raw: str, typ: UType) -> object:
    """The constant value of a parameter's text (already checked by ``_param_sql``); ValueError if it has none."""
    if typ.name == "string":
        return raw
    if typ.name == "bool":
        return raw.strip().lower() == "true"
    if typ.is_integral:
        return int(raw.strip())
    if typ.name in ("double", "float"):
        return float(raw)
    raise ValueError(typ.name)
