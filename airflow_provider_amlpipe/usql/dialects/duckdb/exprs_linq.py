"""LINQ methods and lambdas over SqlArray and SqlMap values, as DuckDB list functions."""

from __future__ import annotations

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed, lit
from airflow_provider_amlpipe.usql.translator import Translator
from airflow_provider_amlpipe.usql.types import UType

#: The element type of ``Enumerable.Sum``/``Average`` over each numeric type (C# has overloads for int, long,
#: float, double, decimal; smaller integers convert to int).
_SUM_TYPE = {"sbyte": "int", "byte": "int", "short": "int", "ushort": "int", "int": "int", "long": "long",
             "float": "float", "double": "double", "decimal": "decimal"}  # fmt: skip
_NO_ELEMENTS = "Sequence contains no elements"


class LinqCalls(Translator):
    """DuckDB's LINQ methods and lambdas over SqlArray and SqlMap values (list functions)."""

    @staticmethod
    def _lambda_sql(params: list[str], body: str) -> str:
        """A list lambda with the given parameters."""
        return f"lambda {', '.join(params)}: {body}"

    @staticmethod
    def _field(s: str, name: str) -> str:
        """Field ``name`` of a struct."""
        return f"struct_extract({s}, {lit(name)})"

    def _lambda_parts(
        self, e: n.Call, elem: UType, scope: Scope, indexed: bool = False
    ) -> tuple[list[str], str, UType]:
        """The one lambda argument of LINQ call ``e`` over elements ``elem``: (SQL parameters, SQL body, body type).

        ``(p, i) => ...`` (with ``indexed``) gets the 0-based index. The parameters shadow columns in the body.
        """
        method = e.func.name if isinstance(e.func, n.Member) else "LINQ"
        lam = e.args[0] if len(e.args) == 1 else None
        if not isinstance(lam, n.Lambda):
            raise self.err(e.pos, method, f"{method} takes one lambda argument (p => ...)")
        if len(lam.params) != 1 and not (indexed and len(lam.params) == 2):
            want = "(p) or (p, index)" if indexed else "one parameter"
            raise self.err(lam.pos, "lambda", f"the lambda of {method} takes {want}")
        for declared, actual in zip(lam.param_types, (elem, t.INT), strict=False):
            typ = t.resolve(declared)
            if typ is None or typ.name != actual.name:
                raise self.err(declared.pos, "lambda", f"the lambda parameter is declared {declared.name} but {method} "
                               f"passes {actual} values")  # fmt: skip
        base = f"usql_lp{len(scope.locals)}"
        params = [base]
        local = dict(scope.locals)
        local[lam.params[0]] = (base, elem)
        if len(lam.params) == 2:
            params.append(base + "_i")
            local[lam.params[1]] = (f"CAST({base}_i - 1 AS INTEGER)", t.INT)
        body, bt = self.tr(lam.body, Scope(scope.columns, scope.select_aliases, local))
        return params, body, bt

    def _predicate(self, e: n.Call, elem: UType, scope: Scope, indexed: bool = False) -> tuple[list[str], str]:
        """A lambda argument that must return bool: (SQL parameters, SQL condition)."""
        params, body, bt = self._lambda_parts(e, elem, scope, indexed)
        if bt.name not in ("bool", "unknown"):
            raise self.err(e.args[0].pos, "lambda", f"the lambda must return bool, not {bt}")
        return params, body

    def _filtered(self, src: str, e: n.Call, elem: UType, scope: Scope) -> str:
        """``src`` filtered by the optional predicate argument of ``e`` (``Count(p => ...)``, ``First(p => ...)``)."""
        if not e.args:
            return src
        params, cond = self._predicate(e, elem, scope)
        return f"list_filter({src}, {self._lambda_sql(params, cond)})"

    def _raise_if_empty(self, seq: str, value: str) -> str:
        """``value``, or the C# InvalidOperationException when ``seq`` is empty."""
        return f"CASE WHEN len({seq}) = 0 THEN error({lit(_NO_ELEMENTS)}) ELSE {value} END"

    def _linq(self, recv: Typed, e: n.Call, scope: Scope) -> Typed:
        """A LINQ method on a SqlArray (its elements) or a SqlMap (its entries, ``KeyValuePair<K,V>``: ``p.Key``,
        ``p.Value``), as DuckDB list functions and lambdas. Results that are sequences are SqlArrays; a null
        collection gives null (C# throws).
        """
        assert isinstance(e.func, n.Member)
        name = e.func.name
        src, st = recv
        if st.name == "SqlMap":
            src, elem = f"map_entries({src})", UType("KeyValuePair", False, st.element, st.key)
        else:
            elem = st.element or t.UNKNOWN
        seq = UType("SqlArray", True, elem)
        if name in ("Select", "SelectMany"):
            params, body, bt = self._lambda_parts(e, elem, scope, indexed=name == "Select")
            sql = f"list_transform({src}, {self._lambda_sql(params, body)})"
            if name == "Select":
                return sql, UType("SqlArray", True, bt)
            if bt.name != "SqlArray":
                raise self.err(e.pos, name, f"the lambda of SelectMany must return a SqlArray, not {bt}")
            return f"flatten({sql})", bt
        if name == "Where":
            params, cond = self._predicate(e, elem, scope, indexed=True)
            return f"list_filter({src}, {self._lambda_sql(params, cond)})", seq
        if name in ("Any", "Count", "LongCount"):
            self._linq_args(e, (0, 1))
            length = f"len({self._filtered(src, e, elem, scope)})"
            if name == "Any":
                return f"({length} > 0)", t.BOOL
            if name == "LongCount":
                return f"CAST({length} AS BIGINT)", t.LONG
            return f"CAST({length} AS INTEGER)", t.INT
        if name == "All":
            params, cond = self._predicate(e, elem, scope)
            failing = f"list_filter({src}, {self._lambda_sql(params, f'NOT coalesce({cond}, FALSE)')})"
            return f"(len({failing}) = 0)", t.BOOL
        if name in ("First", "FirstOrDefault", "Last", "LastOrDefault"):
            self._linq_args(e, (0, 1))
            items = self._filtered(src, e, elem, scope)
            item = self._element_at(items, "1" if name.startswith("First") else "-1")
            if not name.endswith("OrDefault"):
                return self._raise_if_empty(items, item), elem
            if elem.name in t.BUILTIN_TYPES and not elem.nullable:  # default(T) of a value type
                return f"coalesce({item}, {self._zero(elem.name)})", elem
            return item, elem.with_nullable(True)
        if name in ("Sum", "Min", "Max", "Average"):
            return self._linq_aggregate(name, src, elem, e, scope)
        if name in ("ToArray", "ToList", "AsEnumerable", "Distinct", "Reverse"):
            self._linq_args(e, (0,))
            if name == "Distinct":  # first occurrences, in order (list_distinct neither keeps order nor nulls)
                v = f"usql_d{len(scope.locals)}"
                return f"list_filter({src}, lambda {v}, {v}_i: list_position({src}, {v}) = {v}_i)", seq
            return (f"list_reverse({src})" if name == "Reverse" else src), seq
        if name in ("Skip", "Take"):
            ((count, ct),) = self._linq_args(e, (1,), scope)
            if not ct.is_integral:
                raise self.err(e.pos, name, f"{name} takes an int count, not {ct}")
            if name == "Skip":
                return f"list_slice({src}, greatest({count}, 0) + 1, len({src}))", seq
            return f"list_slice({src}, 1, greatest({count}, 0))", seq
        if name in ("OrderBy", "OrderByDescending"):
            return self._order_by(src, elem, e, scope, name == "OrderByDescending"), seq
        raise self.err(e.pos, name, f"{name}(...) on {st} is not supported")

    def _linq_args(self, e: n.Call, counts: tuple[int, ...], scope: Scope | None = None) -> list[Typed]:
        """Checks the argument count of a LINQ call; translates the arguments when ``scope`` is given."""
        method = e.func.name if isinstance(e.func, n.Member) else "LINQ"
        if len(e.args) not in counts:
            want = " or ".join(str(c) for c in counts)
            raise self.err(e.pos, method, f"{method} takes {want} argument(s), got {len(e.args)}")
        return [self.tr(a, scope) for a in e.args] if scope is not None else []

    def _comparable(self, typ: UType, e: n.Call, what: str) -> None:
        """Refuses ordering values that DuckDB would not order as .NET's default comparer does."""
        if typ.name == "string":
            raise self.err(e.pos, what, f"{what} on strings is not supported: .NET compares strings culture-"
                           "sensitively (not ordinally); order by another key or use ORDER BY")  # fmt: skip
        if not (typ.is_numeric or typ.name in ("DateTime", "char", "bool", "unknown")):
            raise self.err(e.pos, what, f"{what} cannot compare {typ} values")

    def _linq_aggregate(self, name: str, src: str, elem: UType, e: n.Call, scope: Scope) -> Typed:
        """``Sum/Min/Max/Average([p => value])``: nulls are skipped; Sum of nothing is 0; Min/Max/Average of no
        non-nullable values throw (of nullable values: null), as in .NET."""
        self._linq_args(e, (0, 1))
        vals, vt = src, elem
        if e.args:
            params, body, vt = self._lambda_parts(e, elem, scope)
            vals = f"list_transform({src}, {self._lambda_sql(params, body)})"
        if name in ("Min", "Max"):
            self._comparable(vt, e, name)
            sql = f"list_{name.lower()}({vals})"
            return (sql if vt.nullable else self._raise_if_empty(vals, sql)), vt
        if vt.name not in _SUM_TYPE:
            raise self.err(e.pos, name, f"{name} needs numeric values, not {vt}")
        if name == "Sum":
            out = UType(_SUM_TYPE[vt.name], vt.nullable)
            return f"CAST(coalesce(list_sum({vals}), 0) AS {out.duckdb()})", out
        out = UType(vt.name if vt.name in ("float", "decimal") else "double", vt.nullable)
        sql = f"CAST(list_avg({vals}) AS {out.duckdb()})"
        return (sql if vt.nullable else self._raise_if_empty(vals, sql)), out

    def _order_by(self, src: str, elem: UType, e: n.Call, scope: Scope, descending: bool) -> str:
        """``OrderBy(p => key)`` / ``OrderByDescending``: a stable sort, null keys first ascending (last
        descending), as .NET's. Each element is sorted as a struct (key present, key, position, element)."""
        method = "OrderByDescending" if descending else "OrderBy"
        params, key, kt = self._lambda_parts(e, elem, scope, indexed=False)
        self._comparable(kt, e, method)
        v = params[0]
        pos = f"-{v}_i" if descending else f"{v}_i"  # equal keys keep their order in both directions
        entry = f"struct_pack(n := ({key}) IS NOT NULL, k := {key}, i := {pos}, v := {v})"
        entries = f"list_transform({src}, {self._lambda_sql([v, v + '_i'], entry)})"
        sorted_ = f"list_sort({entries}, {lit('DESC' if descending else 'ASC')})"
        s = f"usql_s{len(scope.locals)}"
        return f"list_transform({sorted_}, {self._lambda_sql([s], self._field(s, 'v'))})"
