"""Views, table-valued functions, procedures and script-bound objects (``DECLARE FUNCTION|PROCEDURE|VIEW @name``)
of :class:`~.emitter.DuckDbEmitter` (a mixin of it): each use is inlined, compiled in the context of its body."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from airflow_provider_amlpipe.usql import decimal_scale as ds
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.catalog import Catalog, CatalogObject, Database
from airflow_provider_amlpipe.usql.emit_model import QualifiedName
from airflow_provider_amlpipe.usql.emitter import NO_CONSTANT, Emitter, Rowset, ScriptBound, ScriptName
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed, q, with_scale
from airflow_provider_amlpipe.usql.types import UType


class Routines(Emitter):
    """Routines of :class:`~.emitter.DuckDbEmitter`."""

    catalog: Catalog
    current_db: str
    current_schema: str
    call_depth: int
    _resolve: Callable[..., tuple[QualifiedName, Database]]
    _emit_view: Callable[[str, str, list[tuple[str, UType]], n.Pos], Rowset]
    _new_rowset: Callable[[str, str, list[tuple[str, UType]], n.Pos], None]

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
                out.append((p, None, NO_CONSTANT))
                continue
            typ = t.resolve(p.type)
            if typ is None:
                raise self.err(p.type.pos, "type", f"unknown type {p.type.name!r} of parameter @{p.name} of {nm}")
            sql, vt = self.x.tr(arg, Scope())
            self._check_assignable(vt, typ, n.Declare(p.name, p.type, arg, False, False, arg.pos))
            value = f"CAST({sql} AS {typ.duckdb()})" if vt.name != typ.name else f"({sql})"
            typed = (with_scale(value, ds.operand_scale(sql, vt)) if typ.name == "decimal" else value, typ)
            out.append((p, typed, self._constant(arg)))
        return out

    def _bind(self, bound: list[tuple[n.Param, Typed | None, object]]) -> None:
        """Declares the parameters in the body's context (defaults are translated there)."""
        for p, typed, value in bound:
            if typed is None:
                assert p.default is not None
                self.declare(n.Declare(p.name, p.type, p.default, False, False, p.pos))
                continue
            self.variables[p.name] = typed
            if value is not NO_CONSTANT:
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
            if not t.assignable(ty, dty):
                raise self.err(fn.pos, "CREATE FUNCTION", f"column {c!r} of @{result} is {ty} but RETURNS "
                               f"declares {dty}")  # fmt: skip
            exprs.append(f"{self.x.converted_column(q(c), ty, dty)} AS {q(c)}")
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


#: The statements a table-valued function's body may hold (besides IF, which is replaced by its branch).
_FUNCTION_STATEMENTS = (n.Declare, n.Assign, n.MultiAssign, n.UseDatabase, n.UseSchema, n.Ignored)
_OBJECT_KINDS = {n.CreateView: "VIEW", n.CreateFunction: "FUNCTION", n.CreateProcedure: "PROCEDURE"}


def _results(fn: n.CreateFunction) -> tuple[tuple[str, tuple[tuple[str, n.TypeRef, n.Pos], ...] | None], ...]:
    """Every rowset a function returns, with its declared columns (None: not declared)."""
    return fn.results or ((fn.result, fn.columns),)
