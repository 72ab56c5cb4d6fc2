"""The query-level parts of the dialect-neutral :class:`~.emitter.Emitter` (a mixin of it): the query dispatch of
a dialect's ``queries`` table, set operations and their checks, ORDER BY/FETCH over a query, join conditions,
EXPLODE, EXTRACT columns and the file set's virtual columns, table column lists and the DROP DATABASE checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.exprs_common import Scope
from airflow_provider_amlpipe.usql.types import UType

if TYPE_CHECKING:
    from airflow_provider_amlpipe.usql.emitter import Rowset
    from airflow_provider_amlpipe.usql.errors import UsqlError
    from airflow_provider_amlpipe.usql.filesets import FileSet
    from airflow_provider_amlpipe.usql.translator import Translator


class QueryParts:
    """Query-level methods of :class:`~.emitter.Emitter`."""

    #: The query node types the dialect translates and the method of each (``query`` dispatches on it; any other
    #: query is ``unsupported``).
    queries: ClassVar[Mapping[type, str]] = {}

    # provided by Emitter
    x: Translator
    _ident: Callable[[str], str]
    _note: Callable[[n.Pos, str], None]
    _order_fetch: Callable[[tuple[n.SortItem, ...], n.Expr | None, n.Expr | None, Scope], str]
    _rowset: Callable[[n.RowsetRef], Rowset]
    err: Callable[[n.Pos, str, str], UsqlError]
    unsupported: Callable[[str, object], UsqlError]

    def _column_types(
        self, columns: tuple[tuple[str, n.TypeRef, n.Pos], ...], construct: str
    ) -> list[tuple[str, UType]]:
        """The typed columns of a CREATE TABLE / CREATE FUNCTION: known types, each name once."""
        cols: list[tuple[str, UType]] = []
        for cname, tr, pos in columns:
            ty = t.resolve(tr)
            if ty is None:
                raise self.err(tr.pos, "type", f"unknown column type {tr.name!r}")
            if any(c == cname for c, _ in cols):
                raise self.err(pos, construct, f"column {cname!r} is defined twice")
            cols.append((cname, ty))
        return cols

    # ------------------------------------------------------------ queries
    def query(self, qn: n.Query) -> tuple[str, list[tuple[str, UType]]]:
        """The SQL of a query and its columns, by the dialect's :attr:`queries` table."""
        handler = self.queries.get(type(qn))
        if handler is None:
            raise self.unsupported("query", qn)
        result: tuple[str, list[tuple[str, UType]]] = getattr(self, handler)(qn)
        return result

    def rowset_query(self, qn: n.RowsetRef) -> tuple[str, list[tuple[str, UType]]]:
        """All rows of a rowset variable."""
        rs = self._rowset(qn)
        return f"SELECT * FROM {self._ident(rs.view)}", list(rs.columns)

    def set_op(self, qn: n.SetOp) -> tuple[str, list[tuple[str, UType]]]:
        """UNION / INTERSECT / EXCEPT [ALL] of two queries with matching columns (``set_columns``)."""
        ls, lc = self.query(qn.left)
        rs_, rc = self.query(qn.right)
        cols = self.set_columns(qn, lc, rc)
        return self._set_op_sql(qn, ls, rs_), cols

    def _set_op_sql(self, qn: n.SetOp, left: str, right: str) -> str:
        """The SQL of a checked set operation."""
        return f"(\n{left}\n) {qn.op + (' ALL' if qn.quantifier == 'ALL' else '')} (\n{right}\n)"

    def join_condition(self, j: n.Join, left: Scope, right: Scope) -> str:
        """`` ON <condition>`` of a join ("" without ON), after the checks of the two sides' aliases; in the condition,
        C# ``==`` is SQL ``=`` (rows with null keys do not join)."""
        dup = left.aliases() & right.aliases()
        if dup:
            raise self.err(j.pos, "JOIN", f"rowset alias {sorted(dup)[0]!r} is used twice; give each side an AS alias")
        self._check_join_aliases(j, left, right)
        if j.on is None:
            return ""
        self.x.in_join_condition = True
        self.x.allow_aggregates = False
        try:
            return " ON " + self.x.bool_sql(j.on, Scope(left.columns + right.columns), "the JOIN condition")
        finally:
            self.x.in_join_condition = False
            self.x.allow_aggregates = True

    def _check_join_aliases(self, j: n.Join, left: Scope, right: Scope) -> None:
        """The dialect's further checks of a join's rowset aliases."""

    def extract_columns(self, e: n.Extract) -> list[tuple[str, UType]]:
        """The columns of an EXTRACT: built-in scalar types, each named once."""
        cols: list[tuple[str, UType]] = []
        seen: set[str] = set()
        for name, tr, pos in e.columns:
            ty = t.resolve(tr)
            if ty is None or ty.name in ("SqlArray", "SqlMap"):
                raise self.err(tr.pos, "type", f"type {tr.name!r} cannot be extracted by the built-in extractors")
            if name in seen:
                raise self.err(pos, "EXTRACT", f"column {name!r} is defined twice")
            seen.add(name)
            cols.append((name, ty))
        return cols

    def drop_database_checked(self, st: n.DropDatabase, exists: bool, current_db: str) -> bool:
        """The checks of DROP DATABASE of a database that ``exists`` (or not): False when there is nothing to drop
        (IF EXISTS)."""
        if not exists:
            if st.if_exists:
                self._note(st.pos, f"database {st.name} does not exist (IF EXISTS)")
                return False
            raise self.err(st.pos, "DROP DATABASE", f"database {st.name!r} does not exist")
        if st.name == current_db:
            raise self.err(st.pos, "DROP DATABASE", f"database {st.name!r} is in use (USE DATABASE master first)")
        return True

    def exploded(self, left: Scope, ex: n.Explode) -> tuple[str, UType, Scope]:
        """CROSS/OUTER APPLY EXPLODE: the exploded value's SQL and type, and the scope with its columns (a SqlArray's
        element, or a SqlMap's key and value)."""
        sql, ty = self.x.tr(ex.expr, left)
        sql = self.x.decimal_elements_as_columns(sql, ty)
        if ty.name == "SqlMap":
            if len(ex.columns) != 2:
                raise self.err(ex.pos, "EXPLODE", "EXPLODE of a SqlMap yields two columns: AS T(key, value)")
            k, v = ex.columns
            kt = (ty.key or t.STRING).with_nullable(ex.outer)
            vt = (ty.element or t.UNKNOWN).with_nullable(True)
            return sql, ty, Scope([*left.columns, (ex.alias, k, kt), (ex.alias, v, vt)])
        if ty.name != "SqlArray" or len(ex.columns) != 1:
            raise self.err(ex.pos, "EXPLODE", "EXPLODE takes a SqlArray (AS T(col)) or a SqlMap (AS T(key, value))")
        elem = (ty.element or t.UNKNOWN).with_nullable(True)
        return sql, ty, Scope([*left.columns, (ex.alias, ex.columns[0], elem)])

    def ordered(self, qn: n.Ordered) -> tuple[str, list[tuple[str, UType]]]:
        """A query with ORDER BY ... OFFSET/FETCH."""
        inner, cols = self.query(qn.query)
        scope = Scope([(None, c, ty) for c, ty in cols])
        sql = f"SELECT * FROM (\n{inner}\n) AS usql_ordered" + self._order_fetch(
            qn.order_by, qn.offset, qn.fetch, scope
        )
        return sql, cols

    def _check_virtual_columns(self, fs: FileSet, types: dict[str, UType], e: n.Extract) -> None:
        """Each placeholder of a file set pattern names an EXTRACT column, a DateTime one if it is a date part."""
        path_pos = e.paths[0].pos
        for name, holders in fs.columns.items():
            if name not in types:
                raise self.err(path_pos, "file set", f"the pattern binds {{{name}}} but {name!r} is not in the "
                               f"EXTRACT column list; declare it there (e.g. {name} string) or use {{*}}")  # fmt: skip
            parts = [h for h in holders if h.part is not None]
            if parts and types[name].name != "DateTime":
                raise self.err(path_pos, "file set", f"{{{name}:{parts[0].part}}} is a date part, so {name!r} "
                               f"must be DateTime, not {types[name]}")  # fmt: skip

    def set_columns(
        self, qn: n.SetOp, lc: list[tuple[str, UType]], rc: list[tuple[str, UType]]
    ) -> list[tuple[str, UType]]:
        """The columns of ``left UNION|EXCEPT|INTERSECT right``: as many on both sides, of compatible types."""
        if len(lc) != len(rc):
            raise self.err(qn.pos, qn.op, f"{qn.op} needs the same number of columns on both sides "
                           f"({len(lc)} vs {len(rc)})")  # fmt: skip
        for (ln, lt), (_, rt) in zip(lc, rc, strict=False):
            if lt.name != rt.name and not (lt.is_numeric and rt.is_numeric):
                raise self.err(qn.pos, qn.op, f"column {ln!r} is {lt} on the left but {rt} on the right")
        return [(ln, lt.with_nullable(lt.nullable or rt.nullable)) for (ln, lt), (_, rt) in zip(lc, rc, strict=False)]
