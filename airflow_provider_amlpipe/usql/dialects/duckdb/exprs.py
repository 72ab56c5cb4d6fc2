"""C# expressions -> DuckDB SQL, with C# types and null semantics."""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_datetime import (
    _CULTURE_COMPARE,
    _DAY_NAMES,
    TIMESPAN,
    DateTimeMembers,
)
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_format import Formatting, cs_tostring
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_format import custom_number_sql as custom_number_sql
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_format import parse_composite_format as parse_composite_format
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_linq import _SUM_TYPE, LINQ_METHODS, LinqCalls
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_new import Constructors
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_operators import Operators
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_regex import RegexCalls
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_regex import dotnet_regex_to_re2 as dotnet_regex_to_re2
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_regex import dotnet_replacement as dotnet_replacement
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_strings import StringMethods
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_windows import AGGREGATES as AGGREGATES
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_windows import WINDOW_ONLY as WINDOW_ONLY
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs_windows import SqlFunctions
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed, lit, q
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
_CONVERT = {"ToInt32": "int", "ToInt64": "long", "ToInt16": "short", "ToByte": "byte", "ToDouble": "double",
            "ToSingle": "float", "ToDecimal": "decimal", "ToBoolean": "bool", "ToDateTime": "DateTime",
            "ToString": "string"}  # fmt: skip


#: Types that expressions have but U-SQL columns cannot (C# values of .NET types that are not U-SQL types).
_EXPRESSION_ONLY = ("TimeSpan", "DayOfWeek", "DateTimeKind", "KeyValuePair", "StringSplitOptions")


def non_column_type(typ: UType) -> str | None:
    """The .NET type that keeps ``typ`` from being a column type (``TimeSpan``, ``SqlArray<TimeSpan>``), or None."""
    for part in (typ, typ.element, typ.key):
        if part is not None and part.name in _EXPRESSION_ONLY:
            return part.name
    return None


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


class ExprTranslator(
    LinqCalls, RegexCalls, Formatting, DateTimeMembers, SqlFunctions, StringMethods, Operators, Constructors
):
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
        """C# ``string.Join(sep, arr)`` of a string array (a null element is an empty string)."""
        return f"array_to_string(list_transform({arr}, lambda usql_j: coalesce(usql_j, '')), {sep})"

    @staticmethod
    def _parse(s: str, target: str, what: str) -> str:
        """C# ``T.Parse(s)`` (``what`` names the call in run-time errors); null fails as C#'s ArgumentNullException."""
        fail = f"error({lit(what + ': the value is null (ArgumentNullException)')})"
        return f"CASE WHEN {s} IS NULL THEN {fail} ELSE {parse_string_as(s, target)} END"

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
        if e.name in scope.locals:
            return scope.locals[e.name]
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
        return f"{self._ident(alias)}.{self._ident(e.name)}", found[0][2]

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
        if cls == "DateTimeKind" and name in ("Utc", "Local", "Unspecified"):
            return lit(name), UType("DateTimeKind", False)
        if cls == "DayOfWeek" and name in _DAY_NAMES:
            return str(_DAY_NAMES.index(name)), UType("DayOfWeek", False)
        if cls == "TimeSpan" and name == "Zero":
            return "CAST(0 AS BIGINT)", TIMESPAN
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
            if name == "DayOfWeek":
                return f"CAST(dayofweek({sql}) AS INTEGER)", UType("DayOfWeek", typ.nullable)
            if name == "TimeOfDay":
                return f"(epoch_us({sql}) - epoch_us(date_trunc('day', {sql})))", TIMESPAN.with_nullable(typ.nullable)
        if typ.name == "TimeSpan":
            return self._timespan_property(sql, typ, e)
        if typ.name == "KeyValuePair" and name in ("Key", "Value"):
            part = typ.key if name == "Key" else typ.element
            return self._field(sql, name.lower()), part or t.UNKNOWN
        if typ.nullable and name == "HasValue":
            return f"({sql} IS NOT NULL)", t.BOOL
        if typ.nullable and name == "Value":
            return sql, typ.with_nullable(False)
        if typ.name == "SqlArray" and (name == "Count" or (name == "Length" and typ.array)):
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
        if self._is_regex_class(target, scope):
            return self._regex(f.name, e, scope)
        if (
            isinstance(target, n.Name)
            and not scope.find(target.name)
            and target.name not in scope.aliases()
            and target.name not in scope.locals
        ):
            if target.name in _STATIC_CLASSES:
                return self._static_call(target.name, f.name, e, scope)
            raise self.err(e.pos, "user code", f"{target.name}.{f.name}(...) is not a built-in; user-defined "
                           "functions (code-behind, assemblies) are not supported")  # fmt: skip
        system_class = self._system_class(target, scope)
        if system_class is not None:
            return self._static_call(system_class, f.name, e, scope)
        if isinstance(target, n.Member) and isinstance(target.target, n.Name):
            root = target.target.name
            known = root in scope.aliases() or root in scope.locals or root in _STATIC_CLASSES
            if not scope.find(root) and not known:
                raise self.err(e.pos, "user code", f"{root}.{target.name}.{f.name}(...) is not a built-in; "
                               "user-defined functions (code-behind, assemblies) are not supported")  # fmt: skip
        recv = self.tr(target, scope)
        if f.name in LINQ_METHODS and recv[1].name in ("SqlArray", "SqlMap"):
            return self._linq(recv, e, scope)
        args = [self.tr(a, scope) for a in e.args]
        return self._method(recv, f.name, args, e)

    def _args(self, e: n.Call, scope: Scope, count: tuple[int, ...], what: str) -> list[Typed]:
        if len(e.args) not in count:
            want = " or ".join(str(c) for c in count)
            raise self.err(e.pos, what, f"{what} takes {want} argument(s), got {len(e.args)}")
        return [self.tr(a, scope) for a in e.args]

    def _static_call(self, cls: str, name: str, e: n.Call, scope: Scope) -> Typed:
        if cls in ("string", "String"):
            if name in ("IsNullOrEmpty", "IsNullOrWhiteSpace"):
                ((s, _),) = self._args(e, scope, (1,), f"string.{name}")
                inner = self._trim_ws(s) if name == "IsNullOrWhiteSpace" else s
                return f"({s} IS NULL OR {inner} = '')", t.BOOL
            if name == "Concat":
                args = [self.tr(a, scope) for a in e.args]
                if len(args) == 1 and args[0][1].name in ("SqlArray", "SqlMap"):  # Concat(IEnumerable<T>)
                    joined = n.Call(e.func, (n.Literal("", "string", e.pos), e.args[0]), e.pos)
                    return self._string_join(joined, scope), t.STRING
                return "concat(" + ", ".join(self._concat_arg(s, ty) for s, ty in args) + ")", t.STRING
            if name == "CompareOrdinal":
                return self._compare_ordinal(e, scope), t.INT
            if name == "Compare":
                raise self.err(e.pos, "String.Compare", _CULTURE_COMPARE)
            if name == "Join":
                return self._string_join(e, scope), t.STRING
            if name == "Format":
                return self._string_format(e, scope), t.STRING
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
        if cls in ("DateTime", "TimeSpan"):
            dated = self._date_static_call(cls, name, e, scope)
            if dated is not None:
                return dated
        if cls == "Guid" and name == "NewGuid":
            raise self.err(e.pos, "Guid.NewGuid", "Guid.NewGuid() is not supported: a random value would differ on "
                           "every run (and between the places a rowset is read)")  # fmt: skip
        target = _PARSE_TARGET.get(cls)
        if target and name in ("Parse", "TryParse"):
            if name == "TryParse":
                raise self.err(e.pos, f"{cls}.TryParse", "out parameters are not supported; use Parse")
            ((s, st),) = self._args(e, scope, (1,), f"{cls}.Parse")
            return self._parse(s, target, f"{cls}.Parse"), UType(target, False)
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
        if name == "BigMul":
            return self._big_mul(e, scope), t.LONG
        raise self.err(e.pos, f"Math.{name}", f"Math.{name}(...) is not supported")

    def _big_mul(self, e: n.Call, scope: Scope) -> str:
        """``Math.BigMul(int a, int b)``: the full product as a long (it cannot overflow)."""
        (a, at), (b, bt) = self._args(e, scope, (2,), "Math.BigMul")
        if not all(x.name in _SUM_TYPE and _SUM_TYPE[x.name] == "int" for x in (at, bt)):
            raise self.err(e.pos, "Math.BigMul", f"Math.BigMul takes two int values, not {at} and {bt}")
        return f"(CAST({a} AS BIGINT) * CAST({b} AS BIGINT))"

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
            if st.name == "DateTime" or st.is_numeric:
                fmt = e.args[0]
                if not (isinstance(fmt, n.Literal) and isinstance(fmt.value, str)):
                    raise self.err(e.pos, "ToString", f"{st.name}.ToString(format) needs a literal format string")
                return self._formatted(s, st, fmt.value, fmt.pos), t.STRING
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
            if name in ("Add", "Subtract"):
                need(1)
                op = "+" if name == "Add" else "-"
                return self._date_arithmetic(op, s, st, a[0], args[0][1], e.pos)
        if st.name in ("DateTime", "TimeSpan") and name == "CompareTo":
            need(1)
            return self._compare(s, st, a[0], args[0][1], e)
        if st.name == "TimeSpan" and name in ("Add", "Subtract", "Negate", "Duration"):
            need(0 if name in ("Negate", "Duration") else 1)
            if name in ("Negate", "Duration"):
                return (f"(-{s})" if name == "Negate" else f"abs({s})"), st
            op = "+" if name == "Add" else "-"
            return self._date_arithmetic(op, s, st, a[0], args[0][1], e.pos)
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
