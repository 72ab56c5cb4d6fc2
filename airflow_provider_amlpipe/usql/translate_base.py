"""The core of the dialect-neutral expression translator (:mod:`.translator`): name resolution, literals, members
and properties, and the render hooks with the standard SQL a dialect inherits.

"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.decimal_scale import written_scale
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.exprs_common import (
    MAX_DECIMAL_SCALE,
    ScaledSql,
    Scope,
    Typed,
    lit,
    q,
    scale_of,
    with_scale,
)
from airflow_provider_amlpipe.usql.types import UType

_STATIC_CLASSES = {"Math", "string", "String", "Convert", "DateTime", "Int32", "Int64", "int", "long", "double",
                   "Int16", "UInt16", "UInt32", "UInt64", "SByte", "Byte", "Single", "sbyte", "ushort", "uint", "ulong",
                   "Double", "decimal", "Decimal", "bool", "Boolean", "Guid", "float", "short", "byte", "Char", "char",
                   "TimeSpan", "System", "SqlArray", "SqlMap", "StringSplitOptions", "DateTimeKind", "DayOfWeek",
                   "RegexOptions"}  # fmt: skip
_PARSE_TARGET = {"Int32": "int", "int": "int", "Int64": "long", "long": "long", "Int16": "short", "short": "short",
                 "byte": "byte", "Byte": "byte", "double": "double", "Double": "double", "float": "float",
                 "Single": "float", "decimal": "decimal", "Decimal": "decimal", "bool": "bool", "Boolean": "bool",
                 "DateTime": "DateTime", "Guid": "Guid", "UInt16": "ushort", "ushort": "ushort", "UInt32": "uint",
                 "uint": "uint", "UInt64": "ulong", "ulong": "ulong", "SByte": "sbyte", "sbyte": "sbyte"}  # fmt: skip
_DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
TIMESPAN = UType("TimeSpan", False)
#: Types that expressions have but U-SQL columns cannot (C# values of .NET types that are not U-SQL types).
_EXPRESSION_ONLY = ("TimeSpan", "DayOfWeek", "DateTimeKind", "KeyValuePair", "StringSplitOptions")
_REGEX = "System.Text.RegularExpressions."


def non_column_type(typ: UType) -> str | None:
    """The .NET type that keeps ``typ`` from being a column type (``TimeSpan``, ``SqlArray<TimeSpan>``), or None."""
    for part in (typ, typ.element, typ.key):
        if part is not None and part.name in _EXPRESSION_ONLY:
            return part.name
    return None


class TranslatorBase:
    """The core of :class:`~.translator.Translator`: leaves, members, the render hooks and their defaults."""

    #: The start of this dialect's refusals (:meth:`unsupported`).
    NOT_TRANSLATED: ClassVar[str] = "cannot be translated to this SQL dialect: "
    #: The dialect's SQL of C# members, keyed ``"Type.Member"`` (``{0}`` the receiver or first argument, ``{1}``...
    #: the others). A member the base dispatches to a key this table lacks is :meth:`unsupported`.
    TEMPLATES: ClassVar[Mapping[str, str]] = {}
    #: The SQL function of each Math method computed by one function call (``Math.Ceiling`` -> ``ceil``).
    MATH_FUNCTIONS: ClassVar[Mapping[str, str]] = {}
    #: The SQL function building a timestamp from (y, m, d, h, mi, s).
    MAKE_TIMESTAMP: ClassVar[str] = "make_timestamp"

    def __init__(self, source: str, variable: Callable[[n.Variable], Typed]) -> None:
        self.source = source
        self.variable = variable
        self.allow_aggregates = True
        self.in_join_condition = False

    def err(self, pos: n.Pos, construct: str, message: str) -> UsqlError:
        return UsqlError(self.source, pos.line, pos.column, construct, message)

    def unsupported(self, pos: n.Pos, construct: str, what: str) -> UsqlError:
        """The error for C# this dialect has no SQL for (``what``: the member or construct, for the message)."""
        return UsqlError(self.source, pos.line, pos.column, construct, self.NOT_TRANSLATED + what)

    def render(self, key: str, pos: n.Pos, *args: str, construct: str | None = None) -> str:
        """The dialect's template ``key`` (:attr:`TEMPLATES`) filled with ``args``, or :meth:`unsupported`."""
        template = self.TEMPLATES.get(key)
        if template is None:
            raise self.unsupported(pos, construct or key, f"{key} has no translation")
        return template.format(*args)

    # ------------------------------------------------------------ render hooks (standard SQL; dialects override)
    @staticmethod
    def _ident(name: str) -> str:
        """A quoted identifier."""
        return q(name)

    @staticmethod
    def _strlit(s: str) -> str:
        """A string literal."""
        return lit(s)

    @staticmethod
    def _type_sql(typ: UType) -> str:
        """The SQL type of a U-SQL type."""
        return typ.duckdb()

    @staticmethod
    def _length(s: str) -> str:
        """The number of characters of a string."""
        return f"length({s})"

    @staticmethod
    def _position(s: str, sub: str) -> str:
        """The 1-based position of ``sub`` in ``s``, 0 if absent."""
        return f"strpos({s}, {sub})"

    @staticmethod
    def _not_distinct(a: str, b: str, neg: bool) -> str:
        """Null-safe equality (``neg``: inequality) of two values."""
        return f"({a} IS {'' if neg else 'NOT '}DISTINCT FROM {b})"

    @staticmethod
    def _element_at(s: str, key: str) -> str:
        """The element of an array (1-based ``key``) or map; NULL when it is missing."""
        return f"{s}[{key}]"

    @staticmethod
    def _divide(a: str, b: str, typ: UType) -> str:
        """C# ``a / b`` in the promoted type ``typ`` (integer division for integral types)."""
        return f"({a} / {b})"

    @staticmethod
    def _bitwise(op: str, a: str, b: str) -> str:
        """Integer ``&``, ``|`` or ``^``."""
        return f"({a} {op} {b})"

    @staticmethod
    def _trim_ws(s: str) -> str:
        """``s`` with leading and trailing white space removed."""
        return f"trim({s})"

    @staticmethod
    def _lambda_sql(params: list[str], body: str) -> str:
        """A lambda function (array transforms and filters); ``(x) -> ...`` would read as an expression in Spark."""
        return f"{params[0]} -> {body}" if len(params) == 1 else f"({', '.join(params)}) -> {body}"

    @staticmethod
    def _struct_field(s: str, field: str) -> str:
        """Field ``field`` of a struct value."""
        return f"struct_extract({s}, {lit(field)})"

    @staticmethod
    def _decimal_pair(value: str, scale: str) -> str:
        """A decimal column's value: the struct (v: the number as ``DECIMAL(38,10)``, s: its scale, NULL if
        unknown)."""
        return f"struct_pack(v := CAST({value} AS DECIMAL(38,10)), s := CAST({scale} AS INTEGER))"

    @classmethod
    def column_type_sql(cls, typ: UType) -> str:
        """The SQL type of a column of type ``typ`` (a decimal column holds (value, scale) pairs)."""
        if typ.name == "decimal":
            return "STRUCT(v DECIMAL(38,10), s INTEGER)"
        return cls._type_sql(typ)

    # ------------------------------------------------------------ decimal columns: (value, scale) pairs
    def column_value(self, sql: str, typ: UType) -> str:
        """A column read in an expression: a decimal column is its pair's value, carrying the pair's scale."""
        if typ.name == "decimal":
            return ScaledSql(self._struct_field(sql, "v"), self._struct_field(sql, "s"), column=sql)
        return sql

    def column_sql(self, sql: str, typ: UType) -> str:
        """An expression's value stored as a column (the inverse of :meth:`column_value`)."""
        if typ.name != "decimal":
            return sql
        if isinstance(sql, ScaledSql) and sql.column is not None:  # a column passed through keeps its pair
            return sql.column
        return self._decimal_pair(sql, scale_of(sql) or "NULL")

    def extracted_column(self, value: str, text: str, typ: UType) -> str:
        """A column ``value`` read from the field ``text`` by an extractor: a decimal keeps the digits written, as
        ``decimal.Parse`` does."""
        if typ.name != "decimal":
            return value
        return self._decimal_pair(value, self.decimal_scale_text(text))

    def converted_column(self, col: str, st: UType, target: UType) -> str:
        """Column ``col`` of type ``st`` stored in a column of type ``target`` (INSERT, a function's RETURNS)."""
        if st.name == target.name:
            return col
        value = self.column_value(col, st)
        cast = f"CAST({value} AS {self._type_sql(target)})"
        if target.name == "decimal":
            return self._decimal_pair(cast, "0" if st.is_integral else "NULL")
        return cast

    def group_keys(self, sql: str, typ: UType) -> list[str]:
        """The GROUP BY keys of a grouping expression: a decimal groups by value and scale, so that the select
        item storing it (:meth:`column_sql`) is built from grouped expressions; a decimal column groups by its pair."""
        if typ.name != "decimal":
            return [sql]
        if isinstance(sql, ScaledSql) and sql.column is not None:
            return [sql.column]
        scale = scale_of(sql)
        return [sql] if scale is None else [sql, scale]

    def decimal_elements_as_columns(self, sql: str, typ: UType) -> str:
        """A SqlArray or SqlMap about to become rows (EXPLODE) with its decimal elements as column values (pairs of
        unknown scale: a collection holds bare values)."""
        if typ.element is None or typ.element.name != "decimal":
            return sql
        pair = self._decimal_pair("usql_x", "NULL")
        if typ.name == "SqlMap":
            entry = f"struct_pack(key := usql_x.key, value := {self._decimal_pair('usql_x.value', 'NULL')})"
            return f"map_from_entries(list_transform(map_entries({sql}), {self._lambda_sql(['usql_x'], entry)}))"
        return f"list_transform({sql}, {self._lambda_sql(['usql_x'], pair)})"

    @classmethod
    def decimal_scale_text(cls, text: str) -> str:
        """The scale C#'s ``decimal.Parse`` gives the number written ``text``: its digits after the point."""
        trimmed = f"trim({text})"
        dot = cls._position(trimmed, "'.'")
        digits = f"CASE WHEN {dot} = 0 THEN 0 ELSE {cls._length(trimmed)} - {dot} END"
        return f"CASE WHEN {digits} > {MAX_DECIMAL_SCALE} THEN {MAX_DECIMAL_SCALE} ELSE {digits} END"

    #: Types whose values are their text already (``ToString()`` is the value).
    TEXT_TYPES: ClassVar[tuple[str, ...]] = ("string", "char")

    @classmethod
    def tostring(cls, s: str, typ: UType) -> str:
        """C#'s ``value.ToString()`` (null stays null): the dialect's ``"<type>.ToString"`` template, else a cast."""
        if typ.name in cls.TEXT_TYPES:
            return s
        if typ.name == "bool":
            return f"CASE WHEN {s} THEN 'True' WHEN NOT {s} THEN 'False' END"
        scale = scale_of(s) if typ.name == "decimal" else None
        if scale is not None:
            return cls.TEMPLATES["decimal.ToStringScaled"].format(s, scale)
        template = cls.TEMPLATES.get(f"{typ.name}.ToString")
        return template.format(s) if template else f"CAST({s} AS {cls._type_sql(t.STRING)})"

    def _tostring(self, s: str, typ: UType) -> str:
        """C#'s ``value.ToString()`` (null stays null)."""
        return self.tostring(s, typ)

    def _concat_arg(self, s: str, typ: UType) -> str:
        """A value as an argument of string concatenation (``+`` on strings, ``string.Concat``)."""
        return self._tostring(s, typ)

    def _array_join(self, arr: str, sep: str, pos: n.Pos) -> str:
        """C# ``string.Join(sep, arr)`` of a string array (a null element is an empty string)."""
        raise self.unsupported(pos, "string.Join", "string.Join of an array")

    def _parse(self, s: str, target: str, what: str, pos: n.Pos) -> str:
        """C# ``T.Parse(s)`` (``what`` names the call in run-time errors); null fails as C#'s ArgumentNullException."""
        raise self.unsupported(pos, what, what)

    def _convert(self, s: str, st: UType, target: str, e: n.Call) -> Typed:
        """``Convert.ToX(value)`` (null is the type's default value; reals round to even)."""
        out = UType(target, False)
        if target == "string":
            return f"coalesce({self._tostring(s, st)}, '')", t.STRING
        if st.name == "string":
            sql = f"coalesce({self._parse_text(s, target)}, {self._zero(target)})"
            if target == "decimal":
                sql = ScaledSql(sql, f"coalesce({self.decimal_scale_text(s)}, 0)")
            return sql, out
        if target == "decimal" and st.name == "decimal":
            return s, out
        if target == "decimal" and st.is_integral:
            return ScaledSql(self._convert_cast(s, st, out, e), "0"), out
        if target in t.INTEGRAL and st.name in ("double", "float", "decimal"):
            return f"CAST({self.render('Math.Round', e.pos, s, '0')} AS {self._type_sql(out)})", out
        if target == "bool" and st.is_numeric:
            return f"({s} <> 0)", out
        return self._convert_cast(s, st, out, e), out

    def _parse_text(self, s: str, target: str) -> str:
        """``Convert.ToX(text)``: the text parsed as ``target`` (null stays null)."""
        return self._parse(s, target, "Convert", n.Pos(1, 1))

    def _convert_cast(self, s: str, st: UType, out: UType, e: n.Call) -> str:
        """``Convert.ToX(value)`` of a value of another type, when neither text nor a real rounded to an integer."""
        return f"CAST({s} AS {self._type_sql(out)})"

    def _zero(self, target: str) -> str:
        """The default value of a built-in type (``GetValueOrDefault()``)."""
        if target == "bool":
            return "FALSE"
        return self.TEMPLATES.get(f"{target}.default") or f"CAST(0 AS {self._type_sql(UType(target, False))})"

    def _cast_sql(self, s: str, st: UType, target: UType, e: n.Cast) -> str:
        """C#'s ``(T) value`` of a value of another type."""
        return f"CAST({s} AS {self._type_sql(target)})"

    # ------------------------------------------------------------ entry
    def tr(self, e: n.Expr, scope: Scope) -> Typed:
        method = getattr(self, "_" + type(e).__name__.lower(), None)
        if method is None:
            pos = getattr(e, "pos", n.Pos(1, 1))
            raise self.unsupported(pos, type(e).__name__, f"expression {type(e).__name__} is not supported")
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
            value = f"CAST({self._strlit(str(v))} AS DECIMAL(38,10))"
            return with_scale(value, written_scale(str(v))), UType("decimal", False)
        if e.kind in ("double", "float"):
            return f"CAST({self._strlit(repr(v))} AS {t.BUILTIN_TYPES[e.kind]})", UType(e.kind, False)
        raise self.err(e.pos, "literal", f"unsupported literal {v!r}")

    def _name(self, e: n.Name, scope: Scope) -> Typed:
        if e.name in scope.locals:
            return scope.locals[e.name]
        found = scope.find(e.name)
        if len(found) == 1:
            alias, col, typ = found[0]
            return self.column_value(
                f"{self._ident(alias)}.{self._ident(col)}" if alias else self._ident(col), typ
            ), typ
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

    def _lambda(self, e: n.Lambda, scope: Scope) -> Typed:
        raise self.err(e.pos, "lambda", "a lambda is only supported as the argument of a LINQ method (Select, "
                       "Where, Any, ...) on a SqlArray or SqlMap")  # fmt: skip

    def _args(self, e: n.Call, scope: Scope, count: tuple[int, ...], what: str) -> list[Typed]:
        if len(e.args) not in count:
            want = " or ".join(str(c) for c in count)
            raise self.err(e.pos, what, f"{what} takes {want} argument(s), got {len(e.args)}")
        return [self.tr(a, scope) for a in e.args]

    # ------------------------------------------------------------ members
    @staticmethod
    def _system_class(target: n.Expr, scope: Scope) -> str | None:
        """``X`` for a ``System.X`` static class reference (``System.DateTime``, ``System.Int32``), else None."""
        if (
            isinstance(target, n.Member)
            and isinstance(target.target, n.Name)
            and target.target.name == "System"
            and not scope.find("System")
            and "System" not in scope.locals
            and "System" not in scope.aliases()
            and target.name in _STATIC_CLASSES
        ):
            return target.name
        return None

    def _member(self, e: n.Member, scope: Scope) -> Typed:
        target = e.target
        match = self._regex_match_member(e, scope)
        if match is not None:
            return match
        system_class = self._system_class(target, scope)
        if system_class is not None:
            return self._static_member(system_class, e)
        rowset = self._rowset_qualifier(target, scope)
        if rowset is not None:
            return self._qualified_column(rowset, e, scope)
        if isinstance(target, n.Name) and target.name not in scope.locals:
            if target.name in scope.aliases() and (scope.find(e.name, target.name) or not scope.find(target.name)):
                return self._qualified_column(target.name, e, scope)
            if not scope.find(target.name) and target.name not in scope.select_aliases:
                if target.name in _STATIC_CLASSES:
                    return self._static_member(target.name, e)
                if target.name[:1].isupper():
                    raise self.err(e.pos, "name", f"unknown name {target.name!r} in {target.name}.{e.name}: not a "
                                   f"column, rowset alias or supported .NET class{self._known(scope)}; user-defined "
                                   "code (code-behind, assemblies) is not supported")  # fmt: skip
        sql, typ = self.tr(target, scope)
        return self._property(sql, typ, e)

    def _qualified_column(self, alias: str, e: n.Member, scope: Scope) -> Typed:
        """Column ``e.name`` of the FROM item called ``alias``."""
        found = scope.find(e.name, alias)
        if not found:
            raise self.err(e.pos, "column", f"rowset {alias!r} has no column {e.name!r}")
        typ = found[0][2]
        return self.column_value(f"{self._ident(alias)}.{self._ident(e.name)}", typ), typ

    def _rowset_qualifier(self, target: n.Expr, scope: Scope) -> str | None:
        """``v`` when ``target`` is the rowset variable ``@v`` qualifying a column (``@v.col``, as the SELECT
        reference allows): a rowset read in this FROM clause without AS, so that its name is its alias. None for
        other targets and scalar variables (``@s.Length``)."""
        if not isinstance(target, n.Variable):
            return None
        try:
            self.variable(target)
        except UsqlError as ex:
            if target.name in scope.aliases():
                return target.name
            raise self.err(target.pos, ex.construct, f"{ex.message}; a column is qualified as @{target.name}.column "
                           f"only where rowset @{target.name} is read in the FROM clause without AS (with an alias, "
                           "or when it is read twice, qualify the column with its alias)") from None  # fmt: skip
        return None

    def _static_member(self, cls: str, e: n.Member) -> Typed:
        name = e.name
        if cls == "Math" and name in ("PI", "E"):
            return self.render(f"Math.{name}", e.pos, construct="member"), t.DOUBLE
        if cls == "DateTime" and name in ("Now", "UtcNow", "Today", "MinValue", "MaxValue"):
            return self.render(f"DateTime.{name}", e.pos, construct="member"), t.DATETIME
        if cls in ("string", "String") and name == "Empty":
            return "''", t.STRING
        if cls == "DateTimeKind" and name in ("Utc", "Local", "Unspecified"):
            return lit(name), UType("DateTimeKind", False)
        if cls == "DayOfWeek" and name in _DAY_NAMES:
            return str(_DAY_NAMES.index(name)), UType("DayOfWeek", False)
        if cls == "TimeSpan" and name == "Zero":
            return self.render("TimeSpan.Zero", e.pos, construct="member"), TIMESPAN
        if cls in ("double", "Double") and name in ("NaN", "PositiveInfinity", "NegativeInfinity"):
            value = {"NaN": "NaN", "PositiveInfinity": "Infinity", "NegativeInfinity": "-Infinity"}[name]
            return f"CAST({lit(value)} AS DOUBLE)", t.DOUBLE
        if cls == "StringSplitOptions" and name in ("None", "RemoveEmptyEntries"):
            return ("1" if name == "RemoveEmptyEntries" else "0"), UType("StringSplitOptions", False)
        target = _PARSE_TARGET.get(cls)
        if target and name in ("MaxValue", "MinValue") and target in t.INTEGRAL:
            bits = {"int": 31, "long": 63, "short": 15}.get(target)
            if bits:
                v = 2**bits - 1 if name == "MaxValue" else -(2**bits)
                return f"CAST({v} AS {self._type_sql(UType(target, False))})", UType(target, False)
        raise self.err(e.pos, "member", f"{cls}.{name} is not supported")

    def _property(self, sql: str, typ: UType, e: n.Member) -> Typed:
        name = e.name
        if typ.name == "string" and name == "Length":
            return self._length(sql), UType("int", False)
        if typ.name == "DateTime":
            if name in ("Year", "Month", "Day", "Hour", "Minute", "Second", "DayOfYear", "Millisecond"):
                return self.render(f"DateTime.{name}", e.pos, sql, construct="member"), UType("int", typ.nullable)
            if name == "Date":
                return self.render("DateTime.Date", e.pos, sql, construct="member"), typ
            if name == "Ticks":
                return self.render("DateTime.Ticks", e.pos, sql), UType("long", typ.nullable)
            if name == "DayOfWeek":
                return self.render("DateTime.DayOfWeek", e.pos, sql), UType("DayOfWeek", typ.nullable)
            if name == "TimeOfDay":
                return self.render("DateTime.TimeOfDay", e.pos, sql), TIMESPAN.with_nullable(typ.nullable)
        if typ.name == "TimeSpan":
            return self._timespan_property(sql, typ, e)
        if typ.name == "KeyValuePair" and name in ("Key", "Value"):
            part = typ.key if name == "Key" else typ.element
            return self.render(f"KeyValuePair.{name}", e.pos, sql), part or t.UNKNOWN
        if typ.nullable and name == "HasValue":
            return f"({sql} IS NOT NULL)", t.BOOL
        if typ.nullable and name == "Value":
            return sql, typ.with_nullable(False)
        if typ.name == "SqlArray" and (name == "Count" or (name == "Length" and typ.array)):
            return self.render("SqlArray.Count", e.pos, sql), t.INT
        if typ.name == "SqlMap":
            if name == "Count":
                return self.render("SqlMap.Count", e.pos, sql), t.INT
            if name == "Keys":
                return f"map_keys({sql})", UType("SqlArray", True, typ.key or t.STRING)
            if name == "Values":
                return f"map_values({sql})", UType("SqlArray", True, typ.element or t.UNKNOWN)
        if typ.name == "unknown":
            return f"{sql}.{self._ident(name)}", t.UNKNOWN
        raise self.err(e.pos, "member", f"{typ}.{name} is not supported")

    def _timespan_property(self, sql: str, typ: UType, e: n.Member) -> Typed:
        """``TotalDays``... (double), ``Days``, ``Hours``... (int parts), ``Ticks`` of a TimeSpan."""
        raise self.unsupported(e.pos, "TimeSpan", "TimeSpan values")

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

    # ------------------------------------------------------------ Regex (rendered by dialects that have it)
    @staticmethod
    def _dotted(e: n.Expr) -> str | None:
        """``A.B.C`` for a chain of names, else None."""
        if isinstance(e, n.Name):
            return e.name
        if isinstance(e, n.Member):
            head = TranslatorBase._dotted(e.target)
            return f"{head}.{e.name}" if head else None
        return None

    def _is_regex_class(self, e: n.Expr, scope: Scope) -> bool:
        """``Regex`` or ``System.Text.RegularExpressions.Regex`` (not a column or lambda parameter)."""
        name = self._dotted(e)
        root = name.split(".")[0] if name else ""
        shadowed = bool(scope.find(root)) or root in scope.locals or root in scope.aliases()
        return name in ("Regex", _REGEX + "Regex") and not shadowed

    def _regex_call(self, e: n.Expr, scope: Scope, method: str) -> n.Call | None:
        """``e`` if it is the call ``Regex.<method>(...)``."""
        if isinstance(e, n.Call) and isinstance(e.func, n.Member) and e.func.name == method:
            return e if self._is_regex_class(e.func.target, scope) else None
        return None

    def _regex(self, name: str, e: n.Call, scope: Scope) -> Typed:
        """``Regex.IsMatch/Replace/Split``."""
        raise self.unsupported(e.pos, f"Regex.{name}", "Regex methods")

    def _regex_match_member(self, e: n.Member, scope: Scope) -> Typed | None:
        """``Regex.Match(s, p).Value`` / ``.Success`` / ``.Groups[n].Value``; None for other members."""
        target = e.target
        if isinstance(target, n.Index) and isinstance(target.target, n.Member) and target.target.name == "Groups":
            target = target.target.target
        if e.name in ("Value", "Success") and self._regex_call(target, scope, "Match") is not None:
            raise self.unsupported(e.pos, "Regex.Match", "Regex methods")
        return None

    # ------------------------------------------------------------ LINQ (rendered by dialects that have it)
    def _linq(self, recv: Typed, e: n.Call, scope: Scope) -> Typed:
        name = e.func.name if isinstance(e.func, n.Member) else "LINQ"
        raise self.unsupported(e.pos, name, f"LINQ methods ({name}) on SqlArray/SqlMap values")
