"""C# expressions -> DuckDB SQL, with C# types and null semantics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.csformat import DEFAULT_TOSTRING, FormatError, to_strftime
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.types import UType

Typed = tuple[str, UType]


def q(name: str) -> str:
    """A quoted DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(s: str) -> str:
    """A DuckDB string literal."""
    return "'" + s.replace("'", "''") + "'"


@dataclass
class Scope:
    """Columns visible to an expression: ``(alias, column, type)``; alias None for unqualified output scopes."""

    columns: list[tuple[str | None, str, UType]] = field(default_factory=list)
    select_aliases: dict[str, Typed] = field(default_factory=dict)

    def aliases(self) -> set[str]:
        return {a for a, _, _ in self.columns if a is not None}

    def find(self, name: str, alias: str | None = None) -> list[tuple[str | None, str, UType]]:
        return [c for c in self.columns if c[1] == name and (alias is None or c[0] == alias)]


AGGREGATES = {
    "COUNT": "count", "SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max", "ANY_VALUE": "any_value",
    "ARRAY_AGG": "list", "MAP_AGG": "map", "STDEV": "stddev_samp", "STDEVP": "stddev_pop", "VAR": "var_samp",
    "VARP": "var_pop", "FIRST": "first", "LAST": "last",
}  # fmt: skip
WINDOW_ONLY = {
    "ROW_NUMBER": "row_number", "RANK": "rank", "DENSE_RANK": "dense_rank", "NTILE": "ntile", "LAG": "lag",
    "LEAD": "lead", "FIRST_VALUE": "first_value", "LAST_VALUE": "last_value", "CUME_DIST": "cume_dist",
    "PERCENT_RANK": "percent_rank",
}  # fmt: skip
_STATIC_CLASSES = {"Math", "string", "String", "Convert", "DateTime", "Int32", "Int64", "int", "long", "double",
                   "Double", "decimal", "Decimal", "bool", "Boolean", "Guid", "float", "short", "byte", "Char", "char",
                   "TimeSpan", "System", "SqlArray", "SqlMap"}  # fmt: skip
_PARSE_TARGET = {"Int32": "int", "int": "int", "Int64": "long", "long": "long", "Int16": "short", "short": "short",
                 "byte": "byte", "Byte": "byte", "double": "double", "Double": "double", "float": "float",
                 "Single": "float", "decimal": "decimal", "Decimal": "decimal", "bool": "bool", "Boolean": "bool",
                 "DateTime": "DateTime", "Guid": "Guid"}  # fmt: skip
_CONVERT = {"ToInt32": "int", "ToInt64": "long", "ToInt16": "short", "ToByte": "byte", "ToDouble": "double",
            "ToSingle": "float", "ToDecimal": "decimal", "ToBoolean": "bool", "ToDateTime": "DateTime",
            "ToString": "string"}  # fmt: skip


def cs_tostring(sql: str, typ: UType) -> str:
    """C# ``ToString()`` of a value (NULL stays NULL)."""
    if typ.name in ("string", "char"):
        return sql
    if typ.name == "bool":
        return f"CASE WHEN {sql} THEN 'True' WHEN NOT {sql} THEN 'False' END"
    if typ.name in ("double", "float"):
        return f"usql_fmt_real({sql})"
    if typ.name == "decimal":
        return f"usql_fmt_decimal({sql})"
    if typ.name == "DateTime":
        return f"strftime({sql}, {lit(DEFAULT_TOSTRING)})"
    return f"CAST({sql} AS VARCHAR)"


#: What C#'s ``int.Parse`` (``NumberStyles.Integer``) accepts: optional white space (U+0009..U+000D, space)
#: around an optional sign and ASCII digits. DuckDB's integer cast also takes ``2.5`` (rounding), ``1e3``,
#: ``1_000``, ``0x1F`` and ``0b11``, so an integral conversion checks the text against this pattern.
STRICT_INTEGER = "'[\\t-\\r ]*[+-]?[0-9]+[\\t-\\r ]*'"


def parse_string_as(sql: str, target: str, try_: bool = False) -> str:
    """C# ``T.Parse(s)`` (leading/trailing white space allowed) as DuckDB SQL."""
    cast = "TRY_CAST" if try_ else "CAST"
    if target == "DateTime":
        return f"usql_parse_datetime({sql})"
    if target == "bool":
        return f"{cast}(trim({sql}) AS BOOLEAN)"
    if target == "string":
        return sql
    if target in t.INTEGRAL:
        # the cast itself skips the surrounding white space the pattern allows
        duck = t.BUILTIN_TYPES[target]
        if try_:
            return f"TRY_CAST(CASE WHEN regexp_full_match({sql}, {STRICT_INTEGER}) THEN {sql} END AS {duck})"
        return f"CAST(usql_int_text({sql}, {lit(target)}) AS {duck})"
    return f"{cast}(trim({sql}) AS {t.BUILTIN_TYPES[target]})"


class ExprTranslator:
    """Translates expressions within one scope. ``variable`` resolves ``@name`` to typed SQL."""

    def __init__(self, source: str, variable: Callable[[n.Variable], Typed]) -> None:
        self.source = source
        self.variable = variable
        self.allow_aggregates = True
        self.in_join_condition = False

    def err(self, pos: n.Pos, construct: str, message: str) -> UsqlError:
        return UsqlError(self.source, pos.line, pos.column, construct, message)

    # ------------------------------------------------------------ dialect hooks (overridden for Spark)
    #: The SQL function building a timestamp from (y, m, d, h, mi, s).
    MAKE_TIMESTAMP = "make_timestamp"

    @staticmethod
    def _ident(name: str) -> str:
        """A quoted identifier."""
        return q(name)

    @staticmethod
    def _strlit(s: str) -> str:
        """A string literal."""
        return lit(s)

    @staticmethod
    def _not_distinct(a: str, b: str, neg: bool) -> str:
        """Null-safe equality (``neg``: inequality) of two values."""
        return f"({a} IS {'' if neg else 'NOT '}DISTINCT FROM {b})"

    @staticmethod
    def _element_at(s: str, key: str) -> str:
        """The element of an array (1-based ``key``) or map; NULL when it is missing."""
        return f"{s}[{key}]"

    @staticmethod
    def _concat_arg(s: str, typ: UType) -> str:
        """A value as an argument of string concatenation (``+`` on strings, ``string.Concat``)."""
        return cs_tostring(s, typ)

    @staticmethod
    def _divide(a: str, b: str, typ: UType) -> str:
        """C# ``a / b`` in the promoted type ``typ`` (integer division for integral types)."""
        return f"({a} // {b})" if typ.is_integral else f"({a} / {b})"

    @staticmethod
    def _bitwise(op: str, a: str, b: str) -> str:
        """Integer ``&``, ``|`` or ``^``."""
        return f"xor({a}, {b})" if op == "^" else f"({a} {op} {b})"

    @staticmethod
    def _trim_ws(s: str) -> str:
        """``s`` with leading and trailing white space removed."""
        return f"trim({s}, ' \t\r\n')"

    @staticmethod
    def _array_join(arr: str, sep: str) -> str:
        """C# ``string.Join(sep, arr)``."""
        return f"array_to_string({arr}, {sep})"

    @staticmethod
    def _parse(s: str, target: str, what: str) -> str:
        """C# ``T.Parse(s)`` (``what`` names the call in run-time errors)."""
        return parse_string_as(s, target)

    # ------------------------------------------------------------ entry
    def tr(self, e: n.Expr, scope: Scope) -> Typed:
        method = getattr(self, "_" + type(e).__name__.lower())
        result: Typed = method(e, scope)
        return result

    def bool_sql(self, e: n.Expr, scope: Scope, what: str) -> str:
        sql, typ = self.tr(e, scope)
        if typ.name not in ("bool", "unknown", "null"):
            raise self.err(self._pos(e), "type", f"{what} must be a bool expression, not {typ}")
        return sql

    @staticmethod
    def _pos(e: n.Expr) -> n.Pos:
        return e.pos

    # ------------------------------------------------------------ leaves
    def _literal(self, e: n.Literal, scope: Scope) -> Typed:
        v = e.value
        if e.kind == "null":
            return "NULL", UType("null", True)
        if e.kind in ("string", "char"):
            assert isinstance(v, str)
            return self._strlit(v), UType(e.kind, e.kind == "string")
        if e.kind == "bool":
            return ("TRUE" if v else "FALSE"), t.BOOL
        if e.kind == "int":
            return str(v), t.INT
        if e.kind == "long":
            return f"CAST({v} AS BIGINT)", t.LONG
        if e.kind == "decimal":
            return f"CAST({self._strlit(str(v))} AS DECIMAL(38,10))", UType("decimal", False)
        if e.kind in ("double", "float"):
            return f"CAST({self._strlit(repr(v))} AS {t.BUILTIN_TYPES[e.kind]})", UType(e.kind, False)
        raise self.err(e.pos, "literal", f"unsupported literal {v!r}")

    def _name(self, e: n.Name, scope: Scope) -> Typed:
        found = scope.find(e.name)
        if len(found) == 1:
            alias, col, typ = found[0]
            return (f"{self._ident(alias)}.{self._ident(col)}" if alias else self._ident(col)), typ
        if len(found) > 1:
            raise self.err(e.pos, "column", f"column {e.name!r} is ambiguous; qualify it with a rowset alias")
        if e.name in scope.select_aliases:
            return scope.select_aliases[e.name]
        if e.name in scope.aliases():
            raise self.err(e.pos, "column", f"{e.name!r} is a rowset alias, not a column")
        raise self.err(e.pos, "column", f"unknown column {e.name!r}{self._known(scope)}")

    def _known(self, scope: Scope) -> str:
        names = sorted({c for _, c, _ in scope.columns})
        if not names:
            return ""
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        return f" (columns in scope: {shown})"

    def _variable(self, e: n.Variable, scope: Scope) -> Typed:
        return self.variable(e)

    def _star(self, e: n.Star, scope: Scope) -> Typed:
        raise self.err(e.pos, "SELECT", "'*' is only allowed as a select item or in COUNT(*)")

    # ------------------------------------------------------------ members
    def _member(self, e: n.Member, scope: Scope) -> Typed:
        target = e.target
        if isinstance(target, n.Name):
            if target.name in scope.aliases() and (scope.find(e.name, target.name) or not scope.find(target.name)):
                found = scope.find(e.name, target.name)
                if not found:
                    raise self.err(e.pos, "column", f"rowset {target.name!r} has no column {e.name!r}")
                return f"{self._ident(target.name)}.{self._ident(e.name)}", found[0][2]
            if not scope.find(target.name) and target.name not in scope.select_aliases:
                if target.name in _STATIC_CLASSES:
                    return self._static_member(target.name, e)
                if target.name[:1].isupper():
                    raise self.err(e.pos, "user code", f"{target.name}.{e.name} is not a built-in; user-defined "
                                   "code (code-behind, assemblies) is not supported")  # fmt: skip
        sql, typ = self.tr(target, scope)
        return self._property(sql, typ, e)

    def _static_member(self, cls: str, e: n.Member) -> Typed:
        name = e.name
        if cls == "Math" and name in ("PI", "E"):
            return ("pi()" if name == "PI" else "exp(1)"), t.DOUBLE
        if cls == "DateTime":
            if name == "Now":
                return "CAST(localtimestamp AS TIMESTAMP)", t.DATETIME
            if name == "UtcNow":
                return "CAST(now() AT TIME ZONE 'UTC' AS TIMESTAMP)", t.DATETIME
            if name == "Today":
                return "CAST(current_date AS TIMESTAMP)", t.DATETIME
            if name == "MinValue":
                return "TIMESTAMP '0001-01-01 00:00:00'", t.DATETIME
            if name == "MaxValue":
                return "TIMESTAMP '9999-12-31 23:59:59.999999'", t.DATETIME
        if cls in ("string", "String") and name == "Empty":
            return "''", t.STRING
        target = _PARSE_TARGET.get(cls)
        if target and name in ("MaxValue", "MinValue") and target in t.INTEGRAL:
            bits = {"int": 31, "long": 63, "short": 15}.get(target)
            if bits:
                v = 2**bits - 1 if name == "MaxValue" else -(2**bits)
                return f"CAST({v} AS {t.BUILTIN_TYPES[target]})", UType(target, False)
        raise self.err(e.pos, "member", f"{cls}.{name} is not supported")

    def _property(self, sql: str, typ: UType, e: n.Member) -> Typed:
        name = e.name
        if typ.name == "string" and name == "Length":
            return f"length({sql})", UType("int", False)
        if typ.name == "DateTime":
            parts = {"Year": "year", "Month": "month", "Day": "day", "Hour": "hour", "Minute": "minute",
                     "Second": "second", "DayOfYear": "dayofyear", "Millisecond": "millisecond"}  # fmt: skip
            if name in parts:
                extra = " % 1000" if name == "Millisecond" else ""
                return f"CAST({parts[name]}({sql}){extra} AS INTEGER)", UType("int", typ.nullable)
            if name == "Date":
                return f"date_trunc('day', {sql})", typ
            if name == "Ticks":
                return f"(epoch_us({sql}) * 10 + 621355968000000000)", UType("long", typ.nullable)
        if typ.nullable and name == "HasValue":
            return f"({sql} IS NOT NULL)", t.BOOL
        if typ.nullable and name == "Value":
            return sql, typ.with_nullable(False)
        if typ.name == "SqlArray" and name == "Count":
            return f"CAST(len({sql}) AS INTEGER)", t.INT
        if typ.name == "SqlMap":
            if name == "Count":
                return f"CAST(cardinality({sql}) AS INTEGER)", t.INT
            if name == "Keys":
                return f"map_keys({sql})", UType("SqlArray", True, typ.key or t.STRING)
            if name == "Values":
                return f"map_values({sql})", UType("SqlArray", True, typ.element or t.UNKNOWN)
        if typ.name == "unknown":
            return f"{sql}.{q(name)}", t.UNKNOWN
        raise self.err(e.pos, "member", f"{typ}.{name} is not supported")

    # ------------------------------------------------------------ calls
    def _call(self, e: n.Call, scope: Scope) -> Typed:
        f = e.func
        if isinstance(f, n.Name):
            return self._sql_function(f.name, e, scope)
        if e.over is not None:
            raise self.err(e.pos, "OVER", "OVER applies to aggregates and ranking functions only")
        if not isinstance(f, n.Member):
            raise self.err(e.pos, "call", "only functions and methods can be called")
        target = f.target
        if isinstance(target, n.Name) and not scope.find(target.name) and target.name not in scope.aliases():
            if target.name in _STATIC_CLASSES:
                return self._static_call(target.name, f.name, e, scope)
            raise self.err(e.pos, "user code", f"{target.name}.{f.name}(...) is not a built-in; user-defined "
                           "functions (code-behind, assemblies) are not supported")  # fmt: skip
        if isinstance(target, n.Member) and isinstance(target.target, n.Name):
            root = target.target.name
            if not scope.find(root) and root not in scope.aliases() and root not in _STATIC_CLASSES:
                raise self.err(e.pos, "user code", f"{root}.{target.name}.{f.name}(...) is not a built-in; "
                               "user-defined functions (code-behind, assemblies) are not supported")  # fmt: skip
        recv = self.tr(target, scope)
        args = [self.tr(a, scope) for a in e.args]
        return self._method(recv, f.name, args, e)

    def _args(self, e: n.Call, scope: Scope, count: tuple[int, ...], what: str) -> list[Typed]:
        if len(e.args) not in count:
            want = " or ".join(str(c) for c in count)
            raise self.err(e.pos, what, f"{what} takes {want} argument(s), got {len(e.args)}")
        return [self.tr(a, scope) for a in e.args]

    def _sql_function(self, name: str, e: n.Call, scope: Scope) -> Typed:
        upper = name.upper() if name.isupper() else name
        if upper in AGGREGATES:
            if not self.allow_aggregates and e.over is None:
                raise self.err(e.pos, name, f"aggregate {name} is not allowed here")
            return self._aggregate(upper, e, scope)
        if upper in WINDOW_ONLY:
            if e.over is None:
                raise self.err(e.pos, name, f"{name} needs an OVER (...) clause")
            args = [self.tr(a, scope) for a in e.args]
            typ = t.LONG
            if upper in ("LAG", "LEAD", "FIRST_VALUE", "LAST_VALUE") and args:
                typ = args[0][1].with_nullable(True)
            elif upper in ("CUME_DIST", "PERCENT_RANK"):
                typ = t.DOUBLE
            sql = f"{WINDOW_ONLY[upper]}({', '.join(a for a, _ in args)})"
            return self._over(sql, e, scope), typ
        if upper == "EXPLODE":
            raise self.err(e.pos, "EXPLODE", "EXPLODE is only allowed in CROSS APPLY EXPLODE(...) AS T(col)")
        raise self.err(e.pos, "user code", f"unknown function {name!r}; user-defined functions are not supported")

    def _aggregate(self, name: str, e: n.Call, scope: Scope) -> Typed:
        fn = AGGREGATES[name]
        saved = self.allow_aggregates
        self.allow_aggregates = False
        try:
            if e.star:
                if name != "COUNT":
                    raise self.err(e.pos, name, f"{name}(*) is not allowed; only COUNT(*)")
                sql, typ = "count(*)", t.LONG
            else:
                want = (2,) if name == "MAP_AGG" else (1,)
                args = self._args(e, scope, want, name)
                inner = ", ".join(a for a, _ in args)
                dist = "DISTINCT " if e.distinct else ""
                at = args[0][1]
                if name == "COUNT":
                    typ = t.LONG
                elif name in ("SUM",):
                    typ = UType("long" if at.is_integral else at.name, True)
                elif name in ("AVG", "STDEV", "STDEVP", "VAR", "VARP"):
                    typ = UType("decimal" if at.name == "decimal" else "double", True)
                elif name == "ARRAY_AGG":
                    typ = UType("SqlArray", True, at)
                elif name == "MAP_AGG":
                    typ = UType("SqlMap", True, args[1][1], at.with_nullable(False))
                else:
                    typ = at.with_nullable(True)
                sql = f"{fn}({dist}{inner})"
                if name == "MAP_AGG":
                    if e.distinct:
                        raise self.err(e.pos, name, "MAP_AGG(DISTINCT ...) is not supported")
                    # a map from the group's (key, value) pairs; a repeated key is an error, as in U-SQL
                    sql = f"map_from_entries(list(row({args[0][0]}, {args[1][0]})))"
                if name == "SUM" and at.is_integral:
                    sql = f"CAST({sql} AS BIGINT)"
        finally:
            self.allow_aggregates = saved
        if e.over is not None:
            sql = self._over(sql, e, scope)
        return sql, typ

    def _over(self, sql: str, e: n.Call, scope: Scope) -> str:
        w = e.over
        assert w is not None
        parts = []
        if w.partition_by:
            parts.append("PARTITION BY " + ", ".join(self.tr(p, scope)[0] for p in w.partition_by))
        if w.order_by:
            parts.append("ORDER BY " + self.sort_list(w.order_by, scope))
        if w.frame:
            parts.append(w.frame)
        return f"{sql} OVER ({' '.join(parts)})"

    def sort_list(self, items: tuple[n.SortItem, ...], scope: Scope) -> str:
        """ORDER BY items; C# orders null first ascending, like U-SQL."""
        out = []
        for it in items:
            sql, _ = self.tr(it.expr, scope)
            out.append(f"{sql} {'DESC NULLS LAST' if it.descending else 'ASC NULLS FIRST'}")
        return ", ".join(out)

    def _static_call(self, cls: str, name: str, e: n.Call, scope: Scope) -> Typed:
        if cls in ("string", "String"):
            if name in ("IsNullOrEmpty", "IsNullOrWhiteSpace"):
                ((s, _),) = self._args(e, scope, (1,), f"string.{name}")
                inner = self._trim_ws(s) if name == "IsNullOrWhiteSpace" else s
                return f"({s} IS NULL OR {inner} = '')", t.BOOL
            if name == "Concat":
                args = [self.tr(a, scope) for a in e.args]
                return "concat(" + ", ".join(self._concat_arg(s, ty) for s, ty in args) + ")", t.STRING
            if name == "Join":
                (sep, _), (arr, _at) = self._args(e, scope, (2,), "string.Join")
                return self._array_join(arr, sep), t.STRING
        if cls == "Math":
            return self._math(name, e, scope)
        if cls == "SqlArray" and name == "Create":
            ((s, st),) = self._args(e, scope, (1,), "SqlArray.Create")
            if st.name != "SqlArray":
                raise self.err(e.pos, "SqlArray", "SqlArray.Create(x) needs an array such as s.Split(';')")
            return s, st
        if cls == "Convert" and name in _CONVERT:
            ((s, st),) = self._args(e, scope, (1,), f"Convert.{name}")
            return self._convert(s, st, _CONVERT[name], e)
        target = _PARSE_TARGET.get(cls)
        if target and name in ("Parse", "TryParse"):
            if name == "TryParse":
                raise self.err(e.pos, f"{cls}.TryParse", "out parameters are not supported; use Parse")
            ((s, st),) = self._args(e, scope, (1,), f"{cls}.Parse")
            return self._parse(s, target, f"{cls}.Parse"), UType(target, st.nullable and target != "DateTime")
        raise self.err(e.pos, f"{cls}.{name}", f"{cls}.{name}(...) is not supported")

    def _math(self, name: str, e: n.Call, scope: Scope) -> Typed:
        simple = {"Abs": "abs", "Floor": "floor", "Ceiling": "ceil", "Sqrt": "sqrt", "Exp": "exp", "Log10": "log10",
                  "Sign": "sign", "Truncate": "trunc", "Sin": "sin", "Cos": "cos", "Tan": "tan"}  # fmt: skip
        if name in simple:
            ((s, st),) = self._args(e, scope, (1,), f"Math.{name}")
            typ = st if name in ("Abs", "Floor", "Ceiling", "Truncate") else t.DOUBLE
            if name == "Sign":
                return f"CAST(sign({s}) AS INTEGER)", t.INT
            if name in ("Sqrt", "Exp", "Log10"):
                s = f"CAST({s} AS DOUBLE)"
            return f"{simple[name]}({s})", typ
        if name == "Round":
            args = self._args(e, scope, (1, 2), "Math.Round")
            digits = args[1][0] if len(args) == 2 else "0"
            return f"round_even({args[0][0]}, {digits})", args[0][1]
        if name in ("Max", "Min"):
            (a, at), (b, bt) = self._args(e, scope, (2,), f"Math.{name}")
            return f"{'greatest' if name == 'Max' else 'least'}({a}, {b})", t.promote(at, bt)
        if name == "Pow":
            (a, _), (b, _) = self._args(e, scope, (2,), "Math.Pow")
            return f"pow(CAST({a} AS DOUBLE), {b})", t.DOUBLE
        if name == "Log":
            args = self._args(e, scope, (1, 2), "Math.Log")
            if len(args) == 1:
                return f"ln({args[0][0]})", t.DOUBLE
            return f"(ln({args[0][0]}) / ln({args[1][0]}))", t.DOUBLE
        raise self.err(e.pos, f"Math.{name}", f"Math.{name}(...) is not supported")

    def _convert(self, s: str, st: UType, target: str, e: n.Call) -> Typed:
        out = UType(target, False)
        if target == "string":
            return f"coalesce({cs_tostring(s, st)}, '')", t.STRING
        if st.name == "string":
            return f"coalesce({parse_string_as(s, target)}, {self._zero(target)})", out
        if target in t.INTEGRAL and st.name in ("double", "float", "decimal"):
            return f"CAST(round_even({s}, 0) AS {t.BUILTIN_TYPES[target]})", out
        if target == "bool" and st.is_numeric:
            return f"({s} <> 0)", out
        return f"CAST({s} AS {t.BUILTIN_TYPES[target]})", out

    @staticmethod
    def _zero(target: str) -> str:
        if target == "bool":
            return "FALSE"
        if target == "DateTime":
            return "TIMESTAMP '0001-01-01 00:00:00'"
        if target == "Guid":
            return "'00000000-0000-0000-0000-000000000000'::UUID"
        return f"CAST(0 AS {t.BUILTIN_TYPES[target]})"

    def _method(self, recv: Typed, name: str, args: list[Typed], e: n.Call) -> Typed:
        s, st = recv
        a = [x for x, _ in args]

        def need(*counts: int) -> None:
            if len(args) not in counts:
                want = " or ".join(str(c) for c in counts)
                raise self.err(e.pos, name, f"{st}.{name} takes {want} argument(s), got {len(args)}")

        if name == "ToString":
            need(0, 1)
            if not args:
                return cs_tostring(s, st), t.STRING
            if st.name == "DateTime":
                fmt = e.args[0]
                if not (isinstance(fmt, n.Literal) and isinstance(fmt.value, str)):
                    raise self.err(e.pos, "ToString", "DateTime.ToString(format) needs a literal format string")
                try:
                    return f"strftime({s}, {lit(to_strftime(fmt.value))})", t.STRING
                except FormatError as ex:
                    raise self.err(fmt.pos, "ToString", str(ex)) from None
            raise self.err(e.pos, "ToString", f"{st}.ToString(format) is not supported")
        if name == "Equals":
            need(1)
            return f"({s} IS NOT DISTINCT FROM {a[0]})", t.BOOL
        if name == "GetValueOrDefault" and st.nullable:
            need(0, 1)
            default = a[0] if a else self._zero(st.name) if st.name in t.BUILTIN_TYPES else "NULL"
            return f"coalesce({s}, {default})", st.with_nullable(False)
        if st.name == "string":
            return self._string_method(s, name, a, args, e, need)
        if st.name == "DateTime":
            units = {"AddDays": 86400_000_000, "AddHours": 3600_000_000, "AddMinutes": 60_000_000,
                     "AddSeconds": 1_000_000, "AddMilliseconds": 1000}  # fmt: skip
            if name in units:
                need(1)
                return f"({s} + to_microseconds(CAST(round({a[0]} * {units[name]}) AS BIGINT)))", st
            if name in ("AddMonths", "AddYears"):
                need(1)
                return f"({s} + {'to_months' if name == 'AddMonths' else 'to_years'}(CAST({a[0]} AS INTEGER)))", st
            if name == "ToShortDateString":
                need(0)
                return f"strftime({s}, '%-m/%-d/%Y')", t.STRING
        if st.name == "SqlArray" and name == "Contains":
            need(1)
            return f"list_contains({s}, {a[0]})", t.BOOL
        if st.name == "SqlArray" and name == "IndexOf":
            need(1)
            return f"CAST(coalesce(list_position({s}, {a[0]}), 0) - 1 AS INTEGER)", t.INT
        if st.name == "SqlMap" and name == "ContainsKey":
            need(1)
            return f"map_contains({s}, {a[0]})", t.BOOL
        raise self.err(e.pos, name, f"method {st}.{name}(...) is not supported")

    def _string_method(
        self, s: str, name: str, a: list[str], args: list[Typed], e: n.Call, need: Callable[..., None]
    ) -> Typed:
        ws = "' \t\r\n'"
        if name in ("ToUpper", "ToUpperInvariant", "ToLower", "ToLowerInvariant"):
            need(0)
            return f"{'upper' if 'Upper' in name else 'lower'}({s})", t.STRING
        if name in ("Trim", "TrimStart", "TrimEnd"):
            fn = {"Trim": "trim", "TrimStart": "ltrim", "TrimEnd": "rtrim"}[name]
            chars = "concat(" + ", ".join(a) + ")" if a else ws
            return f"{fn}({s}, {chars})", t.STRING
        if name in ("Contains", "StartsWith", "EndsWith"):
            need(1)
            fn = {"Contains": "contains", "StartsWith": "starts_with", "EndsWith": "ends_with"}[name]
            return f"{fn}({s}, {a[0]})", t.BOOL
        if name == "Substring":
            need(1, 2)
            if len(a) == 1:
                return f"substring({s}, ({a[0]}) + 1)", t.STRING
            return f"substring({s}, ({a[0]}) + 1, {a[1]})", t.STRING
        if name in ("IndexOf", "LastIndexOf"):
            need(1)
            if name == "IndexOf":
                return f"CAST(instr({s}, {a[0]}) - 1 AS INTEGER)", t.INT
            return (f"CAST(CASE WHEN instr({s}, {a[0]}) = 0 THEN -1 ELSE length({s}) - length({a[0]}) "
                    f"- instr(reverse({s}), reverse({a[0]})) + 1 END AS INTEGER)"), t.INT  # fmt: skip
        if name == "Replace":
            need(2)
            return f"replace({s}, {a[0]}, {a[1]})", t.STRING
        if name == "Split":
            if not a:
                raise self.err(e.pos, "Split", "Split() needs separator arguments")
            if len(a) == 1 and args[0][1].name in ("char", "string"):
                return f"string_split({s}, {a[0]})", UType("SqlArray", True, t.STRING)
            raise self.err(e.pos, "Split", "Split with several separators or options is not supported")
        if name in ("PadLeft", "PadRight"):
            need(1, 2)
            fn = "lpad" if name == "PadLeft" else "rpad"
            pad = a[1] if len(a) == 2 else "' '"
            return f"CASE WHEN length({s}) >= {a[0]} THEN {s} ELSE {fn}({s}, {a[0]}, {pad}) END", t.STRING
        raise self.err(e.pos, name, f"method string.{name}(...) is not supported")

    # ------------------------------------------------------------ operators
    def _unary(self, e: n.Unary, scope: Scope) -> Typed:
        s, typ = self.tr(e.operand, scope)
        if e.op == "!":
            return f"(NOT {s})", typ
        if e.op == "-":
            return f"(-{s})", typ
        if e.op == "~":
            return f"(~{s})", typ
        return s, typ

    def _binary(self, e: n.Binary, scope: Scope) -> Typed:
        a, at = self.tr(e.left, scope)
        b, bt = self.tr(e.right, scope)
        op = e.op
        if op == "+" and ("string" in (at.name, bt.name)):
            return f"concat({self._concat_arg(a, at)}, {self._concat_arg(b, bt)})", t.STRING
        if op in ("+", "-") and at.name == "DateTime":
            raise self.err(e.pos, "DateTime", "DateTime arithmetic with + / - is not supported; use AddDays etc.")
        if op in ("+", "-", "*", "%"):
            return f"({a} {op} {b})", t.promote(at, bt)
        if op == "/":
            typ = t.promote(at, bt)
            return self._divide(a, b, typ), typ
        if op in ("==", "!="):
            return self._equality(op, a, at, b, bt, e), t.BOOL
        if op in ("<", ">", "<=", ">="):
            sql = f"({a} {op} {b})"
            if at.nullable or bt.nullable:
                sql = f"coalesce({sql}, FALSE)"
            return sql, t.BOOL
        if op in ("&&", "||"):
            return f"({a} {'AND' if op == '&&' else 'OR'} {b})", t.BOOL
        if op in ("&", "|", "^"):
            if at.name == "bool":
                if op == "^":
                    return f"({a} <> {b})", at
                return f"({a} {'AND' if op == '&' else 'OR'} {b})", at
            return self._bitwise(op, a, b), t.promote(at, bt)
        if op == "??":
            typ = bt if at.name == "null" else at.with_nullable(bt.nullable)
            return f"coalesce({a}, {b})", typ
        raise self.err(e.pos, "operator", f"operator {op} is not supported")

    def _equality(self, op: str, a: str, at: UType, b: str, bt: UType, e: n.Binary) -> str:
        neg = op == "!="
        if at.name == "null" or bt.name == "null":
            other = b if at.name == "null" else a
            return f"({other} IS {'NOT ' if neg else ''}NULL)"
        if self.in_join_condition or not (at.nullable or bt.nullable):
            return f"({a} {'<>' if neg else '='} {b})"
        return self._not_distinct(a, b, neg)

    def _conditional(self, e: n.Conditional, scope: Scope) -> Typed:
        c = self.bool_sql(e.cond, scope, "the condition of ?:")
        a, at = self.tr(e.then, scope)
        b, bt = self.tr(e.otherwise, scope)
        typ = at if at.name != "null" else bt.with_nullable(True)
        if at.name != "null" and bt.name != "null" and at.is_numeric and bt.is_numeric:
            typ = t.promote(at, bt)
        elif bt.name == "null":
            typ = at.with_nullable(True)
        return f"CASE WHEN {c} THEN {a} ELSE {b} END", typ

    def _cast(self, e: n.Cast, scope: Scope) -> Typed:
        target = t.resolve(e.type)
        if target is None:
            raise self.err(e.type.pos, "type", f"unknown type {e.type.name!r}")
        s, st = self.tr(e.operand, scope)
        if st.name == "null":
            return f"CAST(NULL AS {target.duckdb()})", target.with_nullable(True)
        if st.name == target.name:
            return s, target
        if target.is_integral and st.name in ("double", "float", "decimal"):
            return f"CAST(trunc({s}) AS {target.duckdb()})", target
        if target.name == "char" and st.is_integral:
            return f"chr({s})", target
        if target.is_integral and st.name == "char":
            return f"CAST(unicode({s}) AS {target.duckdb()})", target
        return f"CAST({s} AS {target.duckdb()})", target

    def _nullsafe(self, sql: str, types: list[UType]) -> str:
        return f"coalesce({sql}, FALSE)" if any(x.nullable for x in types) else sql

    def _inlist(self, e: n.InList, scope: Scope) -> Typed:
        s, st = self.tr(e.operand, scope)
        items = [self.tr(i, scope) for i in e.items]
        sql = f"({s} {'NOT ' if e.negated else ''}IN ({', '.join(x for x, _ in items)}))"
        return self._nullsafe(sql, [st, *(x for _, x in items)]), t.BOOL

    def _like(self, e: n.Like, scope: Scope) -> Typed:
        s, st = self.tr(e.operand, scope)
        p, pt = self.tr(e.pattern, scope)
        return self._nullsafe(f"({s} {'NOT ' if e.negated else ''}LIKE {p})", [st, pt]), t.BOOL

    def _between(self, e: n.Between, scope: Scope) -> Typed:
        s, st = self.tr(e.operand, scope)
        lo, lt = self.tr(e.low, scope)
        hi, ht = self.tr(e.high, scope)
        sql = f"({s} {'NOT ' if e.negated else ''}BETWEEN {lo} AND {hi})"
        return self._nullsafe(sql, [st, lt, ht]), t.BOOL

    def _isnull(self, e: n.IsNull, scope: Scope) -> Typed:
        s, _ = self.tr(e.operand, scope)
        return f"({s} IS {'NOT ' if e.negated else ''}NULL)", t.BOOL

    def _index(self, e: n.Index, scope: Scope) -> Typed:
        s, st = self.tr(e.target, scope)
        i, _ = self.tr(e.index, scope)
        if st.name == "SqlArray":
            return self._element_at(s, f"({i}) + 1"), (st.element or t.UNKNOWN).with_nullable(True)
        if st.name == "SqlMap":
            return self._element_at(s, i), (st.element or t.UNKNOWN).with_nullable(True)
        if st.name == "string":
            return f"substring({s}, ({i}) + 1, 1)", UType("char", False)
        raise self.err(e.pos, "indexer", f"{st} cannot be indexed")

    def _new(self, e: n.New, scope: Scope) -> Typed:
        name = e.type.name
        args = [self.tr(a, scope) for a in e.args]
        if name in ("DateTime", "System.DateTime"):
            if len(args) not in (3, 6):
                raise self.err(e.pos, "new DateTime", "new DateTime(y, m, d[, h, mi, s]) takes 3 or 6 arguments")
            vals = [x for x, _ in args] + ["0", "0", "0"][: 6 - len(args)]
            return f"{self.MAKE_TIMESTAMP}({', '.join(vals)})", t.DATETIME
        if name in ("SqlArray", "SqlMap"):
            return self._new_collection(e, args, scope)
        raise self.err(e.pos, f"new {name}", f"new {name}(...) is not supported")

    def _new_collection(self, e: n.New, args: list[Typed], scope: Scope) -> Typed:
        name = e.type.name
        typ = t.resolve(e.type)
        elem = typ.element if typ is not None else None
        if typ is None or elem is None:
            want = "SqlMap<K,V>" if name == "SqlMap" else "SqlArray<T>"
            raise self.err(e.pos, name, f"new {want}(...) needs built-in type arguments")
        init = e.initializer
        if name == "SqlMap":
            if args:
                if len(args) == 1 and args[0][1].name == "SqlMap" and init is None:
                    return args[0][0], typ
                raise self.err(
                    e.pos, "SqlMap", "new SqlMap<K,V>(...) takes another SqlMap or an initializer {{k, v}, ...}"
                )
            if not init:
                return f"CAST(MAP() AS {typ.duckdb()})", typ
            if any(len(item) != 2 for item in init):
                raise self.err(e.pos, "SqlMap", "each entry of new SqlMap<K,V>{...} is a pair {key, value}")
            key = typ.key or t.STRING
            keys = ", ".join(f"CAST({self.tr(k, scope)[0]} AS {key.duckdb()})" for k, _ in init)
            vals = ", ".join(f"CAST({self.tr(v, scope)[0]} AS {elem.duckdb()})" for _, v in init)
            return f"MAP([{keys}], [{vals}])", typ
        if init is not None:
            if args or any(len(item) != 1 for item in init):
                raise self.err(e.pos, "SqlArray", "new SqlArray<T>{a, b, ...} takes one value per element")
            items = ", ".join(f"CAST({self.tr(x, scope)[0]} AS {elem.duckdb()})" for (x,) in init)
            return f"CAST([{items}] AS {elem.duckdb()}[])", typ
        if not args:
            return f"CAST([] AS {elem.duckdb()}[])", typ
        if len(args) == 1 and args[0][1].name == "SqlArray":
            return args[0][0], typ
        raise self.err(e.pos, "SqlArray", "new SqlArray<T>(x) needs an array such as s.Split(';')")
