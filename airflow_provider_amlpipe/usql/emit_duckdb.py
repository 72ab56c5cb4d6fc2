"""The DuckDB emitter: the intermediate form -> DuckDB SQL statements (views, COPY ... TO).

Rowset assignments become temporary views (U-SQL rowset variables are named, inlined query
expressions, like views); EXTRACT becomes ``read_csv`` with every field read as text and then
converted with C# parsing rules; OUTPUT becomes ``COPY (one formatted line per row) TO path``, so
DuckDB streams the files itself and the output bytes follow the outputter's documented format.

The catalog statements, EXTRACT and OUTPUT are mixins of :class:`DuckDbEmitter` (``emit_catalog``,
``emit_extract``, ``emit_output``); the SQL prelude is ``emit_prelude``, the emitted data types ``emit_model``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from urllib.parse import unquote

from airflow_provider_amlpipe.usql import jobinfo
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.catalog import DBO, MASTER, Catalog, CatalogObject
from airflow_provider_amlpipe.usql.consts import Encoding, NotConstant, fold, fold_datetime_parse
from airflow_provider_amlpipe.usql.duckdb_exprs import (
    ExprTranslator,
    Scope,
    Typed,
    lit,
    non_column_type,
    parse_string_as,
    q,
)
from airflow_provider_amlpipe.usql.emit_catalog import CatalogStatements, _assignable
from airflow_provider_amlpipe.usql.emit_extract import ExtractInputs
from airflow_provider_amlpipe.usql.emit_model import EmittedStatement, QualifiedName
from airflow_provider_amlpipe.usql.emit_output import OutputStatements
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.jobinfo import JobInfo
from airflow_provider_amlpipe.usql.parser import INFERRED_TYPE
from airflow_provider_amlpipe.usql.paths import PathMap, is_remote
from airflow_provider_amlpipe.usql.types import UType

#: C#'s int.Parse format (as STRICT_INTEGER), for parameter values checked at compile time.
_CS_INTEGER = re.compile(r"[\t-\r ]*[+-]?[0-9]+[\t-\r ]*")


#: An argument whose value is not known at compile time.
_NO_CONSTANT = object()


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


class DuckDbEmitter(CatalogStatements, ExtractInputs, OutputStatements):
    """Compiles a parsed script to DuckDB statements; one instance per script."""

    def __init__(
        self,
        source: str,
        params: Mapping[str, str],
        base_dir: Path,
        *,
        catalog_dir: Path | None = None,
        path_map: Mapping[str, str | Path] | None = None,
        job_info: JobInfo | None = None,
    ) -> None:
        self.source = source
        self.job_info = (job_info or JobInfo.local(source)).values()
        self.script_objects: dict[str, ScriptBound] = {}  # DECLARE FUNCTION|PROCEDURE|VIEW @name
        self.path_map = PathMap(path_map)
        self.catalog = Catalog(catalog_dir or base_dir / ".usql-catalog")
        self.current_db = MASTER
        self.current_schema = DBO
        self.call_depth = 0  # nested view / function / procedure inlining (U-SQL allows 50 levels)
        self.attached: set[str] = set()
        self.params = dict(params)
        self.base_dir = base_dir
        self.constants: dict[str, object] = self._system_constants()
        self.variables: dict[str, Typed] = {}
        self.rowsets: dict[str, Rowset] = {}
        self.view_counter: dict[str, int] = {}
        self.view_names: set[str] = set()  # lower case: DuckDB's and Spark's identifiers are case-insensitive
        self.x = ExprTranslator(source, self._variable)
        self.out: list[EmittedStatement] = []
        self.copy_root: Path | None = None  # where the UTF-8 copies of inputs go (see InputCopy), made when needed

    # ------------------------------------------------------------ dialect hooks (overridden for Spark)
    @staticmethod
    def _ident(name: str) -> str:
        """A quoted identifier."""
        return q(name)

    @staticmethod
    def _type_sql(ty: UType) -> str:
        """The SQL type of a U-SQL type."""
        return ty.duckdb()

    @staticmethod
    def _values_table(rows: str) -> str:
        """A ``VALUES`` table of the parenthesised, comma-separated ``rows``."""
        return f"(VALUES {rows})"

    def err(self, pos: n.Pos, construct: str, message: str) -> UsqlError:
        return UsqlError(self.source, pos.line, pos.column, construct, message)

    # ------------------------------------------------------------ statements
    def emit(self, script: n.Script) -> list[EmittedStatement]:
        externals = {s.name for s in script.statements if isinstance(s, n.Declare) and s.external}
        unknown = sorted(set(self.params) - externals)
        if unknown:
            raise UsqlError(self.source, 1, 1, "DECLARE EXTERNAL",
                            f"parameter(s) {', '.join(unknown)} match no DECLARE EXTERNAL in the script")  # fmt: skip
        declared_later = {s.name for s in script.statements if isinstance(s, n.Declare) and not s.external}
        for st in script.statements:
            if isinstance(st, n.Declare):
                if st.external and st.name in declared_later:
                    continue  # a later DECLARE overrides the EXTERNAL default (how AML passes parameters)
                self.declare(st)
            else:
                self.statement(st)
        return self.out

    def statement(self, st: n.Statement) -> None:
        """Compiles one statement (a script's, or one of a procedure's body)."""
        if isinstance(st, n.Declare):
            self.declare(st)
        elif isinstance(st, n.Assign):
            self.assign(st)
        elif isinstance(st, n.Output):
            self.output(st)
        elif type(st) in _CATALOG_HANDLERS:
            getattr(self, _CATALOG_HANDLERS[type(st)])(st)
        elif isinstance(st, n.Ignored):
            self.out.append(EmittedStatement("comment", f"-- ignored: {st.text}", st.pos.line, st.pos.column))
        else:
            raise self.err(st.pos, "statement", f"unsupported statement {type(st).__name__}")

    # ------------------------------------------------------------ catalog
    def _note(self, pos: n.Pos, text: str) -> None:
        self.out.append(EmittedStatement("comment", f"-- note: {text}", pos.line, pos.column))

    def _object(self, tn: n.TableName, kind: str, construct: str) -> tuple[QualifiedName, CatalogObject]:
        nm, db = self._resolve(tn, kind.lower())
        obj = db.objects.get(nm.key)
        if obj is None or obj.kind != kind:
            found = db.kind_of(*nm.key)
            what = f"is a {found.lower()}, not a {kind.lower()}" if found else "does not exist"
            raise self.err(tn.pos, construct, f"{construct} {nm} {what}")
        return nm, obj

    @contextmanager
    def _inlined(self, nm: QualifiedName, obj: CatalogObject, pos: n.Pos) -> Iterator[None]:
        """The context of a view's, function's or procedure's body: its own variables and rowsets, its
        database and schema as the defaults; errors inside are reported at ``pos`` (the use)."""
        if self.call_depth >= 50:
            raise self.err(pos, obj.kind, f"more than 50 nested view/function/procedure uses at {nm}")
        saved = (self.variables, self.constants, self.rowsets, self.current_db, self.current_schema, self.source)
        self.variables, self.constants, self.rowsets = {}, self._system_constants(), {}
        self.current_db, self.current_schema = nm.db, nm.schema
        self.source = self.x.source = obj.source
        self.call_depth += 1
        try:
            yield
        except UsqlError as e:
            where = f"{e.file}:{e.line}:{e.column}"
            raise UsqlError(saved[5], pos.line, pos.column, e.construct,
                            f"{e.message} (in {obj.kind.lower()} {nm}, at {where})") from None  # fmt: skip
        finally:
            self.variables, self.constants, self.rowsets, self.current_db, self.current_schema, self.source = saved
            self.x.source = self.source
            self.call_depth -= 1

    def _view(self, nm: QualifiedName, obj: CatalogObject, pos: n.Pos) -> tuple[str, list[tuple[str, UType]]]:
        view = obj.statement()
        assert isinstance(view, n.CreateView)
        with self._inlined(nm, obj, pos):
            return self.query(view.query)

    def _arguments(
        self, params: tuple[n.Param, ...], args: tuple[n.Expr | None, ...], nm: QualifiedName, pos: n.Pos
    ) -> list[tuple[n.Param, Typed | None, object]]:
        """Each parameter with its argument, translated in the caller's context (None: the default)."""
        if len(args) > len(params):
            raise self.err(pos, "call", f"{nm} takes {len(params)} argument(s), {len(args)} given")
        out: list[tuple[n.Param, Typed | None, object]] = []
        for i, p in enumerate(params):
            arg = args[i] if i < len(args) else None
            if arg is None:
                if p.default is None:
                    raise self.err(pos, "call", f"parameter @{p.name} of {nm} has no default value: pass a value")
                out.append((p, None, _NO_CONSTANT))
                continue
            typ = t.resolve(p.type)
            if typ is None:
                raise self.err(p.type.pos, "type", f"unknown type {p.type.name!r} of parameter @{p.name} of {nm}")
            sql, vt = self.x.tr(arg, Scope())
            self._check_assignable(vt, typ, n.Declare(p.name, p.type, arg, False, False, arg.pos))
            typed = (f"CAST({sql} AS {typ.duckdb()})" if vt.name != typ.name else f"({sql})", typ)
            out.append((p, typed, self._constant(arg)))
        return out

    def _constant(self, e: n.Expr) -> object:
        try:
            return fold(e, self.constants)
        except NotConstant:
            return _NO_CONSTANT

    def _bind(self, bound: list[tuple[n.Param, Typed | None, object]]) -> None:
        """Declares the parameters in the body's context (defaults are translated there)."""
        for p, typed, value in bound:
            if typed is None:
                assert p.default is not None
                self.declare(n.Declare(p.name, p.type, p.default, False, False, p.pos))
                continue
            self.variables[p.name] = typed
            if value is not _NO_CONSTANT:
                self.constants[p.name] = value

    def _call_function(self, call: n.TvfCall) -> tuple[str, list[tuple[str, UType]]]:
        with self._function_body(call, 1) as fn:
            return self._function_result(fn, fn.result, fn.columns)

    def multi_assign(self, st: n.MultiAssign) -> None:
        """``(@a, @b) = f(args);``: one rowset per result of ``f``, in RETURNS order."""
        for i, name in enumerate(st.names):
            if name in st.names[:i]:
                raise self.err(st.pos, "rowset", f"@{name} is assigned twice in the same statement")
            self._check_rowset_name(name, st.pos)
        with self._function_body(st.call, len(st.names)) as fn:
            results = [self._function_result(fn, r, cols) for r, cols in _results(fn)]
        for name, (sql, cols) in zip(st.names, results, strict=True):
            self._new_rowset(name, sql, cols, st.pos)

    @contextmanager
    def _function_body(self, call: n.TvfCall, expected: int) -> Iterator[n.CreateFunction]:
        """Compiles the body of the called function with the arguments bound; inside the ``with`` block the
        body's rowsets are in scope. ``expected``: how many rowsets the caller takes."""
        nm, obj, fn = self._routine(call.function, call.script_bound, "FUNCTION", "table-valued function")
        assert isinstance(fn, n.CreateFunction)
        results = _results(fn)
        if len(results) != expected:
            names = ", ".join(f"@{r}" for r, _ in results)
            how = (f"{len(results)} rowsets; assign them all: ({names}) = {nm}(...);" if len(results) > 1 else
                   f"one rowset; assign it with @x = {nm}(...);")  # fmt: skip
            raise self.err(call.pos, "table-valued function", f"{nm} returns {how}")
        bound = self._arguments(fn.params, call.args, nm, call.pos)
        with self._inlined(nm, obj, call.pos):
            self._bind(bound)
            for st in self._each(fn.body):
                if not isinstance(st, _FUNCTION_STATEMENTS):
                    raise self.err(st.pos, "CREATE FUNCTION", f"{type(st).__name__} statements are not allowed in a "
                                   "table-valued function (only DECLARE, USE, IF and rowset assignments)")  # fmt: skip
                self.statement(st)
            yield fn

    def _function_result(
        self, fn: n.CreateFunction, result: str, columns: tuple[tuple[str, n.TypeRef, n.Pos], ...] | None
    ) -> tuple[str, list[tuple[str, UType]]]:
        """The query of the returned rowset ``@result``, checked against its declared ``columns`` (if any)."""
        if result not in self.rowsets:
            raise self.err(fn.pos, "CREATE FUNCTION", f"the function body never assigns its result @{result}")
        rs = self.rowsets[result]
        if columns is None:
            return f"SELECT * FROM {q(rs.view)}", list(rs.columns)
        declared = self._column_types(columns, "CREATE FUNCTION")
        if [c for c, _ in declared] != [c for c, _ in rs.columns]:
            got, want = ", ".join(c for c, _ in rs.columns), ", ".join(c for c, _ in declared)
            raise self.err(fn.pos, "CREATE FUNCTION", f"@{result} has the columns ({got}) but RETURNS declares "
                           f"({want})")  # fmt: skip
        exprs = []
        for (c, ty), (_, dty) in zip(rs.columns, declared, strict=True):
            if not _assignable(ty, dty):
                raise self.err(fn.pos, "CREATE FUNCTION", f"column {c!r} of @{result} is {ty} but RETURNS "
                               f"declares {dty}")  # fmt: skip
            exprs.append(q(c) if ty.name == dty.name else f"CAST({q(c)} AS {dty.duckdb()}) AS {q(c)}")
        return f"SELECT {', '.join(exprs)} FROM {q(rs.view)}", declared

    def call_procedure(self, st: n.CallProcedure) -> None:
        nm, obj, proc = self._routine(st.procedure, st.script_bound, "PROCEDURE", "procedure")
        assert isinstance(proc, n.CreateProcedure)
        bound = self._arguments(proc.params, st.args, nm, st.pos)
        with self._inlined(nm, obj, st.pos):
            self._bind(bound)
            for s in self._each(proc.body):
                if isinstance(s, (n.CreateFunction, n.CreateProcedure)):
                    raise self.err(s.pos, "CREATE PROCEDURE", "a procedure cannot create procedures or functions")
                self.statement(s)

    # ------------------------------------------------------------ script-bound objects, IF
    def declare_object(self, st: n.DeclareObject) -> None:
        """``DECLARE FUNCTION|PROCEDURE|VIEW @name``: visible from here to the end of the script; a view is
        compiled here (in its own context, like a catalog view) and read as the rowset ``@name``."""
        d = st.definition
        kind = _OBJECT_KINDS[type(d)]
        name = d.name.name
        if name in self.script_objects or name in self.variables or name in self.rowsets:
            raise self.err(d.name.pos, f"DECLARE {kind}", f"@{name} is already declared (script-bound objects, "
                           "variables and rowsets share one namespace)")  # fmt: skip
        nm = ScriptName(self.current_db, self.current_schema, f"@{name}")
        obj = CatalogObject(kind, d.text, self.source, d.pos.line, d.pos.column)
        rowset = None
        if isinstance(d, n.CreateView):
            with self._inlined(nm, obj, d.pos):
                sql, cols = self.query(d.query)
            rowset = self._emit_view(name, sql, cols, d.pos)
        self.script_objects[name] = ScriptBound(nm, obj, d, rowset)

    def _routine(
        self, tn: n.TableName, script_bound: bool, kind: str, construct: str
    ) -> tuple[QualifiedName, CatalogObject, n.Statement]:
        """A called function or procedure: its name, its catalog entry and its CREATE (or DECLARE) statement."""
        if script_bound:
            return self._script_bound(tn, kind, construct)
        nm, obj = self._object(tn, kind, construct)
        return nm, obj, obj.statement()

    def _script_bound(
        self, tn: n.TableName, kind: str, construct: str
    ) -> tuple[ScriptName, CatalogObject, n.CreateFunction | n.CreateProcedure | n.CreateView]:
        sb = self.script_objects.get(tn.name)
        if sb is None or sb.obj.kind != kind:
            if sb is not None:
                what = f"is a script-bound {sb.obj.kind.lower()}, not a {kind.lower()}"
            elif tn.name in self.rowsets or tn.name in self.variables:
                what = f"is a {'rowset' if tn.name in self.rowsets else 'scalar variable'}, not a {kind.lower()}"
            else:
                what = f"is not declared (DECLARE {kind} @{tn.name} ... before this statement)"
            raise self.err(tn.pos, construct, f"@{tn.name} {what}")
        return sb.name, sb.obj, sb.definition

    def _check_rowset_name(self, name: str, pos: n.Pos) -> None:
        """A rowset may be reassigned, but not named like a scalar variable or a script-bound object."""
        if name in self.variables:
            raise self.err(pos, "variable", f"@{name} is a scalar variable and cannot name a rowset")
        if name in self.script_objects:
            kind = self.script_objects[name].obj.kind.lower()
            raise self.err(pos, "variable", f"@{name} is a script-bound {kind} and cannot name a rowset")

    def _new_rowset(self, name: str, sql: str, cols: list[tuple[str, UType]], pos: n.Pos) -> None:
        self.rowsets[name] = self._emit_view(name, sql, cols, pos)

    def _emit_view(self, name: str, sql: str, cols: list[tuple[str, UType]], pos: n.Pos) -> Rowset:
        view = self._view_name(name)
        self.out.append(EmittedStatement("view", f"CREATE OR REPLACE TEMP VIEW {q(view)} AS\n{sql};", pos.line,
                                         pos.column))  # fmt: skip
        return Rowset(view, tuple(cols))

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

    # ------------------------------------------------------------ @@JobInfo
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
            return lit(str(value)), ty
        if ty.name == "int":
            return f"CAST({int(str(value))} AS {self._type_sql(ty)})", ty
        return f"CAST({lit(str(value))} AS {self._type_sql(ty)})", ty

    def _relation(self, tn: n.TableName, pos: n.Pos) -> tuple[str, list[tuple[str, UType]]]:
        """A table or view read by name: SQL usable after FROM, and its columns."""
        nm, db = self._resolve(tn)
        obj = db.objects.get(nm.key)
        if obj is not None and obj.kind == "VIEW":
            sql, cols = self._view(nm, obj, pos)
            return f"(\n{sql}\n)", cols
        nm, tcols = self._table(tn)
        assert tcols is not None
        return self._table_sql(nm, pos), list(tcols)

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
        if vt.name != typ.name and vt.name != "null":
            sql = f"CAST({sql} AS {typ.duckdb()})"
        elif vt.name == "null":
            sql = f"CAST(NULL AS {typ.duckdb()})"
        self.variables[d.name] = (f"({sql})", typ)

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
        self.variables[d.name] = (f"({sql})", vt)

    def _constant_or_none(self, e: n.Expr) -> object:
        try:
            return fold(e, self.constants)
        except NotConstant:
            return None

    def _param_sql(self, raw: str, typ: UType, d: n.Declare) -> Typed:
        if typ.name == "string":
            return lit(raw), typ
        if typ.name == "bool" and raw.strip().lower() not in ("true", "false"):
            raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a bool")
        if typ.is_numeric:
            try:
                float(raw)
            except ValueError:
                raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a {typ}") from None
            if typ.is_integral:
                if not _CS_INTEGER.fullmatch(raw):
                    raise self.err(d.pos, "DECLARE EXTERNAL", f"parameter @{d.name}={raw!r} is not a {typ}")
                return f"CAST({lit(raw)} AS {typ.duckdb()})", typ  # checked here: a constant, no runtime check
        return f"({parse_string_as(lit(raw), typ.name)})", typ

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

    def assign(self, a: n.Assign) -> None:
        self._check_rowset_name(a.name, a.pos)
        if isinstance(a.query, n.RowsetRef) and a.query.name in self.variables:  # @x = @scalar;
            self._declare_inferred(n.Declare(a.name, n.TypeRef(INFERRED_TYPE, False, a.pos),
                                             n.Variable(a.query.name, a.query.pos), False, False, a.pos))  # fmt: skip
            return
        sql, cols = self.query(a.query)
        self._new_rowset(a.name, sql, cols, a.pos)

    def path(self, e: n.Expr, construct: str, allow_file_set: bool = False) -> Path:
        try:
            v = fold(e, self.constants)
        except NotConstant:
            raise self.err(e.pos, construct, "the path must be a constant string expression") from None
        if not isinstance(v, str) or not v:
            raise self.err(e.pos, construct, "the path must be a non-empty string")
        v = unquote(v)  # paths are URIs: "a%20b.csv" names the file "a b.csv" (the reference's Input/Output Files)
        if "{" in v and not allow_file_set:
            raise self.err(e.pos, "file set", f"file set patterns ({v!r}) are not supported in {construct}")
        mapped = self.path_map.apply(v)
        if mapped is None and is_remote(v):
            raise self.err(e.pos, construct, f"remote paths ({v!r}) are not supported locally; map them to a local "
                           "folder with --map-path PREFIX=DIR (run_script(..., path_map={PREFIX: DIR}))")  # fmt: skip
        p = Path(mapped or v)
        return p if p.is_absolute() else self.base_dir / p

    # ------------------------------------------------------------ queries
    def query(self, qn: n.Query) -> tuple[str, list[tuple[str, UType]]]:
        if isinstance(qn, n.RowsetRef):
            rs = self._rowset(qn)
            return f"SELECT * FROM {q(rs.view)}", list(rs.columns)
        if isinstance(qn, n.TableRef):
            rel, cols = self._relation(qn.table, qn.pos)
            return f"SELECT * FROM {rel} AS usql_rel", cols
        if isinstance(qn, n.TvfCall):
            return self._call_function(qn)
        if isinstance(qn, n.Extract):
            return self.extract(qn)
        if isinstance(qn, n.ExtractFileProperties):
            return self.extract_with_properties(qn.extract, dict(qn.properties))
        if isinstance(qn, n.Select):
            return self.select(qn)
        if isinstance(qn, n.SetOp):
            ls, lc = self.query(qn.left)
            rs_, rc = self.query(qn.right)
            if len(lc) != len(rc):
                raise self.err(qn.pos, qn.op, f"{qn.op} needs the same number of columns on both sides "
                               f"({len(lc)} vs {len(rc)})")  # fmt: skip
            for (ln, lt), (_, rt) in zip(lc, rc, strict=False):
                if lt.name != rt.name and not (lt.is_numeric and rt.is_numeric):
                    raise self.err(qn.pos, qn.op, f"column {ln!r} is {lt} on the left but {rt} on the right")
            op = qn.op + (" ALL" if qn.quantifier == "ALL" else "")
            cols = [
                (ln, lt.with_nullable(lt.nullable or rt.nullable)) for (ln, lt), (_, rt) in zip(lc, rc, strict=False)
            ]
            return f"(\n{ls}\n) {op} (\n{rs_}\n)", cols
        if isinstance(qn, n.Ordered):
            inner, cols = self.query(qn.query)
            scope = Scope([(None, c, ty) for c, ty in cols])
            sql = f"SELECT * FROM (\n{inner}\n) AS usql_ordered" + self._order_fetch(
                qn.order_by, qn.offset, qn.fetch, scope
            )
            return sql, cols
        if isinstance(qn, n.Sample):
            return self.sample(qn)
        if isinstance(qn, n.ByNameSetOp):
            return self.set_by_name(qn)
        raise self.err(n.Pos(1, 1), "query", f"unsupported query {type(qn).__name__}")

    def set_by_name(self, s: n.ByNameSetOp) -> tuple[str, list[tuple[str, UType]]]:
        """Set operations ``BY NAME`` after the reference: the matched columns are those named on both sides
        (without ON: all of them, on both sides; ON lists them all unless it ends in ``*``), in the left order.
        OUTER UNION also keeps the unmatched columns (left ones, then right ones), filled with null or the .NET
        default value (0, false, DateTime.MinValue) on the rows of the other side."""
        ls, lc = self.query(s.left)
        rs_, rc = self.query(s.right)
        what = f"{'OUTER ' if s.outer else ''}{s.op} BY NAME"
        ltypes, rtypes = dict(lc), dict(rc)
        common = [c for c, _ in lc if c in rtypes]
        if s.on is None:
            odd = next((c for c in [*ltypes, *rtypes] if c not in common), None)
            if odd is not None:
                where = "left" if odd in ltypes else "right"
                raise self.err(s.pos, what, f"column {odd!r} is only on the {where}; without ON both sides need the "
                               "same column names")  # fmt: skip
        else:
            dup = next((c for c in s.on if s.on.count(c) > 1), None)
            missing = next((c for c in s.on if c not in common), None)
            extra = next((c for c in common if c not in s.on), None)
            if dup is not None:
                raise self.err(s.pos, what, f"column {dup!r} is listed twice in ON")
            if missing is not None:
                raise self.err(s.pos, what, f"ON column {missing!r} is not a column of both sides")
            if extra is not None and not s.star:
                raise self.err(s.pos, what, f"column {extra!r} is on both sides but not in ON; list it or add *")
        for c in common:
            lt, rt = ltypes[c], rtypes[c]
            if lt.name != rt.name and not (lt.is_numeric and rt.is_numeric):
                raise self.err(s.pos, what, f"column {c!r} is {lt} on the left but {rt} on the right")
        cols = [(c, ltypes[c].with_nullable(ltypes[c].nullable or rtypes[c].nullable)) for c in common]
        if s.outer:
            cols += [(c, ty) for c, ty in lc if c not in rtypes] + [(c, ty) for c, ty in rc if c not in ltypes]

        def side(sql: str, types: dict[str, UType]) -> str:
            items = [q(c) if c in types else f"{self._default_sql(ty, s.pos)} AS {q(c)}" for c, ty in cols]
            return f"SELECT {', '.join(items)} FROM (\n{sql}\n) AS usql_side"

        op = s.op + (" ALL" if s.quantifier == "ALL" else "")
        return f"(\n{side(ls, ltypes)}\n) {op} (\n{side(rs_, rtypes)}\n)", cols

    def _default_sql(self, ty: UType, pos: n.Pos) -> str:
        """The value of a missing OUTER UNION cell: null, or the .NET default of a non-nullable type."""
        if ty.nullable:
            return f"CAST(NULL AS {self._type_sql(ty)})"
        if ty.is_numeric:
            return f"CAST(0 AS {self._type_sql(ty)})"
        defaults = {"bool": "FALSE", "char": "chr(0)", "DateTime": "TIMESTAMP '0001-01-01 00:00:00'",
                    "Guid": "CAST('00000000-0000-0000-0000-000000000000' AS UUID)"}  # fmt: skip
        if ty.name not in defaults:
            raise self.err(pos, "OUTER UNION", f"no default value for a missing {ty} column")
        return defaults[ty.name]

    def sample(self, s: n.Sample) -> tuple[str, list[tuple[str, UType]]]:
        """``SAMPLE``: ANY (n) = the first n rows (the reference: "any" rows, not random); UNIFORM keeps each row
        with probability f; UNIVERSE keeps the rows whose ON values hash into a fraction f of the value space;
        DISTINCT keeps n rows per ON group and each further row with probability f."""
        inner, cols = self.query(s.query)
        names = [c for c, _ in cols]
        if s.method == "ANY":
            return f"SELECT * FROM (\n{inner}\n) AS usql_sample\nLIMIT {self._count(s.args[0], 'SAMPLE')}", cols
        frac = self._fraction(s.args[0])
        missing = [c for c in s.on if c not in names]
        if missing:
            raise self.err(s.pos, "SAMPLE", f"unknown column {missing[0]!r} in SAMPLE ON (columns: {', '.join(names)})")
        if s.weight is not None and s.weight in names:
            raise self.err(s.pos, "SAMPLE", f"the weight column {s.weight!r} is already a column of the rowset")
        select = ", ".join(q(c) for c in names)
        keys = ", ".join(q(c) for c in s.on)
        weight = f"CAST({1 / frac!r} AS DOUBLE)" if frac else "CAST('inf' AS DOUBLE)"
        if s.method == "UNIFORM":
            where = f"random() < {frac!r}"
        elif s.method == "UNIVERSE":
            # a fixed hash of the ON values: rows with equal values are kept or dropped together, on every input
            where = f"hash({keys}) < {frac!r} * 18446744073709551616.0"
        else:
            per_group = self._count(s.args[1], "SAMPLE")
            inner = f"SELECT *, row_number() OVER (PARTITION BY {keys}) AS usql_rn FROM (\n{inner}\n) AS usql_g"
            where = f"usql_rn <= {per_group} OR random() < {frac!r}"
            weight = f"CASE WHEN usql_rn <= {per_group} THEN CAST(1 AS DOUBLE) ELSE {weight} END"
        if s.weight is not None:
            select += f", {weight} AS {q(s.weight)}"
            cols = [*cols, (s.weight, t.DOUBLE)]
        return f"SELECT {select} FROM (\n{inner}\n) AS usql_sample\nWHERE {where}", cols

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

    # ------------------------------------------------------------ SELECT
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
            items.append(f"{sql} AS {self._ident(name)}")
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
                sql += "\nGROUP BY " + ", ".join(self.x.tr(g, scope)[0] for g in s.group_by)
        finally:
            self.x.allow_aggregates = True
        if s.having is not None:
            having_scope = Scope(scope.columns, {c: (self._ident(c), ty) for c, ty in cols})
            sql += "\nHAVING " + self.x.bool_sql(s.having, having_scope, "HAVING")
        return sql, cols

    def source_sql(self, src: n.Source) -> tuple[str, Scope]:
        if isinstance(src, n.RowsetRef):
            rs = self._rowset(src)
            alias = src.alias or src.name
            return f"{q(rs.view)} AS {q(alias)}", Scope([(alias, c, ty) for c, ty in rs.columns])
        if isinstance(src, n.SubquerySource):
            sql, cols = self.query(src.query)
            return f"(\n{sql}\n) AS {q(src.alias)}", Scope([(src.alias, c, ty) for c, ty in cols])
        if isinstance(src, n.ValuesSource):
            return self.values(src)
        if isinstance(src, n.TableRef):
            table_sql, tcols = self._relation(src.table, src.pos)
            alias = src.alias or src.table.name
            return f"{table_sql} AS {q(alias)}", Scope([(alias, c, ty) for c, ty in tcols])
        if isinstance(src, n.TvfCall):
            sql, cols = self._call_function(src)
            alias = src.alias or src.function.name
            return f"(\n{sql}\n) AS {q(alias)}", Scope([(alias, c, ty) for c, ty in cols])
        if isinstance(src, n.Join):
            return self.join(src)
        if isinstance(src, n.Pivot):
            return self.pivot(src)
        if isinstance(src, n.Unpivot):
            return self.unpivot(src)
        raise self.err(src.pos, "FROM", "EXPLODE needs CROSS APPLY")

    def _check_case(self, names: Iterable[tuple[str, n.Pos]], construct: str, what: str = "columns") -> None:
        """Refuses names that differ only in case: U-SQL's identifiers are case-sensitive, DuckDB's are not, so
        ``[Sophia]`` and ``[SOPHIA]`` would silently name one column. The error is at the second name's position."""
        seen: dict[str, str] = {}
        for name, pos in names:
            first = seen.setdefault(name.lower(), name)
            if first != name:
                why = "the local engine (DuckDB: case-insensitive names) cannot keep apart; rename one"
                raise self.err(pos, construct, f"the {what} {first!r} and {name!r} differ only in case, which {why}")

    @staticmethod
    def _column_sql(alias: str | None, col: str) -> str:
        return f"{q(alias)}.{q(col)}" if alias else q(col)

    def pivot(self, pv: n.Pivot) -> tuple[str, Scope]:
        """PIVOT as SQL Server defines it: GROUP BY every input column that neither the aggregate nor the FOR
        column uses; one column per IN value, the aggregate over the group's rows whose FOR column ``==`` it
        (``AGG(col == v ? x : null)``, which is why the reference wants null-invariant aggregates)."""
        src_sql, scope = self.source_sql(pv.source)
        agg = pv.aggregate
        if agg.distinct or agg.over is not None or agg.within_group:
            raise self.err(agg.pos, "PIVOT", "the PIVOT aggregate cannot use DISTINCT, OVER or WITHIN GROUP")
        self.x.tr(pv.column, scope)  # the FOR column must exist
        used = {pv.column.name} | {c for a in agg.args for c in _column_names(a)}
        group = [(a, c, ty) for a, c, ty in scope.columns if c not in used]
        items = [f"{self._column_sql(a, c)} AS {q(c)}" for a, c, _ in group]
        cols: list[tuple[str, UType]] = [(c, ty) for _, c, ty in group]
        null = n.Literal(None, "null", agg.pos)
        counting = isinstance(agg.func, n.Name) and agg.func.name == "COUNT"
        for value, name in pv.values:
            match = n.Binary("==", pv.column, value, value.pos)
            args = agg.args or (n.Literal(1, "int", agg.pos),)  # COUNT(*): count the matching rows
            call = replace(agg, args=tuple(n.Conditional(match, a, null, a.pos) for a in args), star=False)
            sql, ty = self.x.tr(call, scope)
            items.append(f"{sql} AS {q(name)}")
            cols.append((name, ty if counting else ty.with_nullable(True)))
        names = [c for c, _ in cols]
        dup = next((c for c in names if names.count(c) > 1), None)
        if dup:
            raise self.err(pv.pos, "PIVOT", f"column {dup!r} appears twice in the PIVOT result; rename a value with AS")
        self._check_case([(c, pv.pos) for c in names], "PIVOT")
        sql = "SELECT " + ",\n  ".join(items) + "\nFROM " + src_sql
        if group:
            sql += "\nGROUP BY " + ", ".join(self._column_sql(a, c) for a, c, _ in group)
        return f"(\n{sql}\n) AS {q(pv.alias)}", Scope([(pv.alias, c, ty) for c, ty in cols])

    def unpivot(self, up: n.Unpivot) -> tuple[str, Scope]:
        """UNPIVOT: per input row, one row per IN column holding its name (string) and value; EXCLUDE NULLS
        (the default) drops the rows whose value is null. Columns: the other input columns, name, value."""
        src_sql, scope = self.source_sql(up.source)
        found = []
        for c in up.columns:
            matches = scope.find(c)
            if len(matches) != 1:
                what = "is ambiguous" if matches else "is not a column of the rowset"
                raise self.err(up.pos, "UNPIVOT", f"UNPIVOT column {c!r} {what}{self.x._known(scope)}")
            found.append(matches[0])
        first = found[0][2]
        for _, c, ty in found[1:]:
            if ty.name != first.name or str(ty.with_nullable(True)) != str(first.with_nullable(True)):
                raise self.err(up.pos, "UNPIVOT", f"UNPIVOT columns must have one type: {c!r} is {ty}, "
                               f"{found[0][1]!r} is {first}")  # fmt: skip
        rest = [(a, c, ty) for a, c, ty in scope.columns if c not in up.columns]
        for new in (up.name, up.value):
            if new in [c for _, c, _ in rest] or up.name == up.value:
                raise self.err(up.pos, "UNPIVOT", f"column {new!r} appears twice in the UNPIVOT result")
        vtype = first.with_nullable(any(ty.nullable for _, _, ty in found))
        keys = "[" + ", ".join(lit(c) for c in up.columns) + "]"
        values = "[" + ", ".join(self._column_sql(a, c) for a, c, _ in found) + "]"
        items = [f"{self._column_sql(a, c)} AS {q(c)}" for a, c, _ in rest]
        items += [f"unnest({keys}) AS {q(up.name)}", f"unnest({values}) AS {q(up.value)}"]
        sql = "SELECT " + ", ".join(items) + "\nFROM " + src_sql
        if not up.include_nulls:
            sql = f"SELECT * FROM (\n{sql}\n) AS usql_u\nWHERE {q(up.value)} IS NOT NULL"
        cols = [(c, ty) for _, c, ty in rest] + [(up.name, t.STRING), (up.value, vtype)]
        self._check_case([(c, up.pos) for c, _ in cols], "UNPIVOT")
        return f"(\n{sql}\n) AS {q(up.alias)}", Scope([(up.alias, c, ty) for c, ty in cols])

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
                vals.append(sql)
            rows_sql.append("(" + ", ".join(vals) + ")")
        final: list[UType] = []
        for i, maybe in enumerate(types):
            if maybe is None or maybe.name == "null":
                raise self.err(v.pos, "VALUES", f"column {v.columns[i]!r} has only null values; cast one")
            final.append(maybe)
        cast_cols = ", ".join(
            f"CAST(c{i} AS {self._type_sql(ty)}) AS {self._ident(c)}"
            for i, (c, ty) in enumerate(zip(v.columns, final, strict=False))
        )
        raw_cols = ", ".join(f"c{i}" for i in range(len(v.columns)))
        table = self._values_table(", ".join(rows_sql))
        sql = f"(SELECT {cast_cols} FROM {table} AS usql_v({raw_cols})) AS {self._ident(v.alias)}"
        return sql, Scope([(v.alias, c, ty) for c, ty in zip(v.columns, final, strict=False)])

    def join(self, j: n.Join) -> tuple[str, Scope]:
        left_sql, left = self.source_sql(j.left)
        if isinstance(j.right, n.Explode):
            return self.explode(left_sql, left, j.right)
        right_sql, right = self.source_sql(j.right)
        dup = left.aliases() & right.aliases()
        if dup:
            raise self.err(j.pos, "JOIN", f"rowset alias {sorted(dup)[0]!r} is used twice; give each side an AS alias")
        self._check_case([(a, j.pos) for a in [*left.aliases(), *right.aliases()]], "JOIN", "rowset aliases")
        both = Scope(left.columns + right.columns)
        on = ""
        if j.on is not None:
            self.x.in_join_condition = True
            self.x.allow_aggregates = False
            try:
                on = " ON " + self.x.bool_sql(j.on, both, "the JOIN condition")
            finally:
                self.x.in_join_condition = False
                self.x.allow_aggregates = True
        kind = j.kind
        if kind.endswith("SEMIJOIN"):
            anti = "ANTI" in kind
            keyword = "ANTI JOIN" if anti else "SEMI JOIN"
            if kind.startswith("RIGHT"):
                return f"{right_sql}\n{keyword} {left_sql}{on}", right
            return f"{left_sql}\n{keyword} {right_sql}{on}", left
        keyword = {"INNER": "INNER JOIN", "LEFT": "LEFT OUTER JOIN", "RIGHT": "RIGHT OUTER JOIN",
                   "FULL": "FULL OUTER JOIN", "CROSS": "CROSS JOIN"}[kind]  # fmt: skip
        lcols = [(a, c, ty.with_nullable(True) if kind in ("RIGHT", "FULL") else ty) for a, c, ty in left.columns]
        rcols = [(a, c, ty.with_nullable(True) if kind in ("LEFT", "FULL") else ty) for a, c, ty in right.columns]
        return f"{left_sql}\n{keyword} {right_sql}{on}", Scope(lcols + rcols)

    def explode(self, left_sql: str, left: Scope, ex: n.Explode) -> tuple[str, Scope]:
        sql, ty = self.x.tr(ex.expr, left)
        join = "LEFT JOIN LATERAL" if ex.outer else "CROSS JOIN LATERAL"
        on = " ON TRUE" if ex.outer else ""
        if ty.name == "SqlMap":
            if len(ex.columns) != 2:
                raise self.err(ex.pos, "EXPLODE", "EXPLODE of a SqlMap yields two columns: AS T(key, value)")
            k, v = ex.columns
            kt = (ty.key or t.STRING).with_nullable(ex.outer)
            vt = (ty.element or t.UNKNOWN).with_nullable(True)
            lateral = f"(SELECT unnest(map_keys({sql})) AS {q(k)}, unnest(map_values({sql})) AS {q(v)})"
            return (f"{left_sql}\n{join} {lateral} AS {q(ex.alias)}{on}",
                    Scope([*left.columns, (ex.alias, k, kt), (ex.alias, v, vt)]))  # fmt: skip
        if ty.name != "SqlArray" or len(ex.columns) != 1:
            raise self.err(ex.pos, "EXPLODE", "EXPLODE takes a SqlArray (AS T(col)) or a SqlMap (AS T(key, value))")
        elem = ty.element or t.UNKNOWN
        col = q(ex.columns[0])
        return (f"{left_sql}\n{join} (SELECT unnest({sql}) AS {col}) AS {q(ex.alias)}{on}",
                Scope([*left.columns, (ex.alias, ex.columns[0], elem.with_nullable(True))]))  # fmt: skip


#: Catalog statement -> the DuckDbEmitter method compiling it.
_CATALOG_HANDLERS: dict[type, str] = {
    n.UseDatabase: "use_database",
    n.CreateDatabase: "create_database",
    n.DropDatabase: "drop_database",
    n.CreateTable: "create_table",
    n.DropTable: "drop_table",
    n.Insert: "insert",
    n.UseSchema: "use_schema",
    n.CreateSchema: "create_schema",
    n.CreateView: "create_object",
    n.CreateFunction: "create_object",
    n.CreateProcedure: "create_object",
    n.DropObject: "drop_object",
    n.CallProcedure: "call_procedure",
    n.TruncateTable: "truncate_table",
    n.AlterPartitions: "alter_partitions",
    n.TableNote: "table_note",
    n.If: "if_statement",
    n.DeclareObject: "declare_object",
    n.MultiAssign: "multi_assign",
}

#: The statements a table-valued function's body may hold (besides IF, which is replaced by its branch).
_FUNCTION_STATEMENTS = (n.Declare, n.Assign, n.MultiAssign, n.UseDatabase, n.UseSchema, n.Ignored)
_OBJECT_KINDS = {n.CreateView: "VIEW", n.CreateFunction: "FUNCTION", n.CreateProcedure: "PROCEDURE"}


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


def _results(fn: n.CreateFunction) -> tuple[tuple[str, tuple[tuple[str, n.TypeRef, n.Pos], ...] | None], ...]:
    """Every rowset a function returns, with its declared columns (None: not declared)."""
    return fn.results or ((fn.result, fn.columns),)


def _column_names(e: object) -> set[str]:
    """The column names an expression reads (``x``, ``alias.x``, ``@rowset.x``); lambda parameters included."""
    if isinstance(e, n.Name):
        return {e.name}
    if isinstance(e, n.Member) and isinstance(e.target, (n.Name, n.Variable)):  # alias.x, @rowset.x
        return {e.name, e.target.name}
    if isinstance(e, tuple):
        return {c for item in e for c in _column_names(item)}
    if is_dataclass(e) and not isinstance(e, type):
        return {c for f in fields(e) for c in _column_names(getattr(e, f.name))}
    return set()
