"""C# expressions -> DuckDB SQL, with C# types and null semantics."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.csformat import (
    DEFAULT_TOSTRING,
    FLOAT_DIGITS,
    STANDARD_NUMBER_FORMAT,
    FormatError,
    NumberSection,
    custom_number,
    find_section,
    parse_section,
    split_sections,
    to_strftime,
)
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
    #: lambda parameters in scope (they shadow columns): C# name -> typed SQL
    locals: dict[str, Typed] = field(default_factory=dict)

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
#: Window functions computed over a window frame (ranking and offset functions ignore frames).
_FRAMED = frozenset(AGGREGATES) | {"FIRST_VALUE", "LAST_VALUE"}
_STATIC_CLASSES = {"Math", "string", "String", "Convert", "DateTime", "Int32", "Int64", "int", "long", "double",
                   "Int16", "UInt16", "UInt32", "UInt64", "SByte", "Byte", "Single", "sbyte", "ushort", "uint", "ulong",
                   "Double", "decimal", "Decimal", "bool", "Boolean", "Guid", "float", "short", "byte", "Char", "char",
                   "TimeSpan", "System", "SqlArray", "SqlMap", "StringSplitOptions", "DateTimeKind", "DayOfWeek",
                   "RegexOptions"}  # fmt: skip
#: TimeSpan is held as a BIGINT count of microseconds; the units of its parts and of TimeSpan.FromX.
_SPAN_US = {"Days": 86_400_000_000, "Hours": 3_600_000_000, "Minutes": 60_000_000, "Seconds": 1_000_000,
            "Milliseconds": 1000}  # fmt: skip
#: The modulus of each TimeSpan part (``Hours`` is 0..23, as in .NET).
_SPAN_MOD = {"Hours": 24, "Minutes": 60, "Seconds": 60, "Milliseconds": 1000}
_DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
TIMESPAN = UType("TimeSpan", False)
_PARSE_TARGET = {"Int32": "int", "int": "int", "Int64": "long", "long": "long", "Int16": "short", "short": "short",
                 "byte": "byte", "Byte": "byte", "double": "double", "Double": "double", "float": "float",
                 "Single": "float", "decimal": "decimal", "Decimal": "decimal", "bool": "bool", "Boolean": "bool",
                 "DateTime": "DateTime", "Guid": "Guid", "UInt16": "ushort", "ushort": "ushort", "UInt32": "uint",
                 "uint": "uint", "UInt64": "ulong", "ulong": "ulong", "SByte": "sbyte", "sbyte": "sbyte"}  # fmt: skip
_CONVERT = {"ToInt32": "int", "ToInt64": "long", "ToInt16": "short", "ToByte": "byte", "ToDouble": "double",
            "ToSingle": "float", "ToDecimal": "decimal", "ToBoolean": "bool", "ToDateTime": "DateTime",
            "ToString": "string"}  # fmt: skip
#: LINQ methods (System.Linq.Enumerable) on SqlArray / SqlMap values; see ``ExprTranslator._linq``.
LINQ_METHODS = frozenset({
    "Select", "Where", "SelectMany", "Any", "All", "Count", "LongCount", "First", "FirstOrDefault", "Last",
    "LastOrDefault", "Sum", "Min", "Max", "Average", "Distinct", "OrderBy", "OrderByDescending", "ToArray", "ToList",
    "AsEnumerable", "Skip", "Take", "Reverse",
})  # fmt: skip
#: The element type of ``Enumerable.Sum``/``Average`` over each numeric type (C# has overloads for int, long,
#: float, double, decimal; smaller integers convert to int).
_SUM_TYPE = {"sbyte": "int", "byte": "int", "short": "int", "ushort": "int", "int": "int", "long": "long",
             "float": "float", "double": "double", "decimal": "decimal"}  # fmt: skip
_NO_ELEMENTS = "Sequence contains no elements"
_CULTURE_COMPARE = ("string comparison with Compare/CompareTo is culture-sensitive in .NET (\"abc\" precedes \"ABC\", "
                    "ignorable characters) and is not supported; String.CompareOrdinal(a, b) compares ordinally "
                    "(by character code)")  # fmt: skip
#: One item of a .NET composite format string: ``{index[,alignment][:format]}``.
_FORMAT_ITEM = re.compile(r"\{(\d+)\s*(?:,\s*(-?\d+)\s*)?(?::([^{}]*))?\}")
#: .NET character class escapes that mean more (Unicode) than RE2's ASCII ones: (inside a class, outside a class).
_CLASS_ESCAPES = {
    "d": (r"\p{Nd}", r"\p{Nd}"), "D": (None, r"\P{Nd}"),
    "w": (r"\p{L}\p{Mn}\p{Nd}\p{Pc}", r"[\p{L}\p{Mn}\p{Nd}\p{Pc}]"), "W": (None, r"[^\p{L}\p{Mn}\p{Nd}\p{Pc}]"),
    "s": (r"\f\n\r\t\v\x{85}\p{Z}", r"[\f\n\r\t\v\x{85}\p{Z}]"), "S": (None, r"[^\f\n\r\t\v\x{85}\p{Z}]"),
}  # fmt: skip
#: ``(?...`` constructs of .NET regular expressions that RE2 lacks.
_RE_GROUPS = {"=": "lookahead (?=...)", "!": "negative lookahead (?!...)", "<=": "lookbehind (?<=...)",
              "<!": "negative lookbehind (?<!...)", "<": "named groups (?<name>...)", "'": "named groups (?'name'...)",
              ">": "atomic groups (?>...)", "(": "conditionals (?(...)...)", "#": "comments (?#...)",
              "P": "named groups (?P<name>...)"}  # fmt: skip
#: RegexOptions accepted, as RE2 inline flags (CultureInvariant and Compiled change nothing here).
_REGEX_OPTIONS = {"None": "", "IgnoreCase": "i", "Multiline": "m", "Singleline": "s", "CultureInvariant": "",
                  "Compiled": ""}  # fmt: skip
_REGEX = "System.Text.RegularExpressions."


def dotnet_regex_to_re2(pattern: str, multiline: bool = False) -> str:
    r"""A .NET regular expression as an RE2 one with the same meaning, or FormatError naming what RE2 lacks.

    ``\d \w \s`` become their Unicode classes (as in .NET); ``$`` (not multiline) also matches before a final
    newline, as in .NET. Lookarounds, backreferences, named/atomic groups, conditionals, Unicode blocks
    (``\p{IsX}``), ``\G \Z``, class subtraction and the inline options n and x are refused.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if not nxt:
                raise FormatError("the pattern ends with a single backslash")
            if nxt in "123456789k":
                raise FormatError("backreferences (\\1, \\k<name>) are not supported by RE2")
            if nxt in "GZ":
                raise FormatError(f"\\{nxt} is not supported by RE2")
            if nxt in "pP" and pattern[i + 2 : i + 5] == "{Is":
                raise FormatError("Unicode block classes (\\p{IsBlock}) are not supported by RE2")
            if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", pattern[i + 2 : i + 6]):
                out.append(f"\\x{{{pattern[i + 2 : i + 6]}}}")
                i += 6
                continue
            if nxt in _CLASS_ESCAPES:
                inside, outside = _CLASS_ESCAPES[nxt]
                if in_class and inside is None:
                    raise FormatError(f"\\{nxt} inside a character class is not supported")
                out.append(inside if in_class else outside)  # type: ignore[arg-type]
            else:
                out.append(c + nxt)
            i += 2
            continue
        if in_class:
            if c == "[":
                if pattern[i - 1 : i] == "-":
                    raise FormatError("character class subtraction ([a-z-[aeiou]]) is not supported by RE2")
                c = "\\["  # a literal '[' in .NET; RE2 would read [:alpha:]
            in_class = c != "]"
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            j = i + 1 + (pattern[i + 1 : i + 2] == "^")
            if pattern[j : j + 1] == "]":  # a leading ']' is literal
                j += 1
            out.append(pattern[i:j].replace("]", "\\]"))
            i = j
            continue
        if c == "(" and pattern[i + 1 : i + 2] == "?":
            rest = pattern[i + 2 :]
            for key, what in _RE_GROUPS.items():
                if rest.startswith(key):
                    raise FormatError(f"{what} are not supported by RE2")
            flags = re.match(r"[imsnx-]*", rest)
            if flags and set(flags.group(0)) & set("nx"):
                raise FormatError("the inline options n and x are not supported")
        if c == "$" and not multiline:
            c = "(?:\\n?\\z)"
        out.append(c)
        i += 1
    if in_class:
        raise FormatError("unterminated [] set")
    return "".join(out)


def dotnet_replacement(repl: str) -> str:
    """A .NET Regex.Replace replacement (``$1``, ``$0``, ``$&``, ``$$``) in RE2 syntax (``\\1``, ``\\0``)."""
    out: list[str] = []
    i = 0
    while i < len(repl):
        c = repl[i]
        if c == "\\":
            out.append("\\\\")
        elif c == "$":
            m = re.match(r"\$(\d)|\$(\$)|\$(&)", repl[i:])
            if m is None:
                if re.match(r"\$[{`'+_]", repl[i:]):
                    raise FormatError(f"the substitution {repl[i : i + 2]!r} is not supported (use $0-$9, $&, $$)")
                out.append("$")
            elif m.group(1) is not None:
                out.append("\\" + m.group(1))
            else:
                out.append("$" if m.group(2) else "\\0")
            i += len(m.group(0)) if m else 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


#: The numeric standard formats supported: D (integral), X/x (integral), F and N; with an optional precision.
_NUMBER_FORMAT = re.compile(r"([DdXxFfNn])(\d{0,2})")
#: Two's complement offsets for X formats of negative values narrower than 64 bits.
_HEX_WRAP = {"sbyte": 2**8, "short": 2**16, "int": 2**32}


def parse_composite_format(fmt: str) -> list[str | tuple[int, int | None, str | None]]:
    """The pieces of a .NET composite format string: literal text and (index, alignment, format) items.

    ``{{`` and ``}}`` are escaped braces. Raises FormatError for a malformed string (.NET: FormatException).
    """
    pieces: list[str | tuple[int, int | None, str | None]] = []
    text: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c in "{}" and fmt[i + 1 : i + 2] == c:
            text.append(c)
            i += 2
            continue
        if c == "}":
            raise FormatError("a '}' in a format string must be written '}}'")
        if c == "{":
            m = _FORMAT_ITEM.match(fmt, i)
            if m is None:
                raise FormatError(f"malformed format item at {fmt[i:]!r} (use {{index[,alignment][:format]}})")
            pieces.append("".join(text))
            text = []
            align = int(m.group(2)) if m.group(2) is not None else None
            pieces.append((int(m.group(1)), align, m.group(3)))
            i = m.end()
            continue
        text.append(c)
        i += 1
    pieces.append("".join(text))
    return [x for x in pieces if x != ""]


def custom_number_sql(s: str, st: UType, fmt: str) -> str:
    """``x.ToString(fmt)`` for a custom numeric format (``0.00``, ``#,##0``, ``0%``, ``0;(0);-``) as DuckDB SQL;
    ``csformat.custom_number`` is the reference. A value that rounds to zero in its section prints the zero
    section (or section 0) with no sign; NaN and infinities print as in ``ToString()``."""
    sections = split_sections(fmt)
    for section in sections[:3]:
        parse_section(section)  # refuses the exponent forms of every section
    zero = lit(custom_number(0, fmt))
    negative = find_section(sections, 1)
    pos = _custom_section_sql(s, st, parse_section(sections[0]), zero, "")
    neg = _custom_section_sql(s, st, parse_section(sections[negative]), zero, "'-', " if negative == 0 else "")
    sql = f"CASE WHEN {s} IS NULL THEN NULL WHEN {s} < 0 THEN {neg} ELSE {pos} END"
    if st.name in ("double", "float"):
        real = f"usql_fmt_{'real' if st.name == 'double' else 'float'}"
        return f"CASE WHEN NOT isfinite({s}) THEN {real}({s}) ELSE {sql} END"
    return f"({sql})"


def _let(value: str, name: str, body: str) -> str:
    """``body`` with ``name`` bound to ``value``, computed once (macros would repeat the expression)."""
    return f"list_transform([{value}], lambda {name}: {body})[1]"


def _custom_digits_sql(s: str, st: UType, shift: int) -> str:
    """The digits of round(|s| * 10^shift) (half away from zero, a double first rounded to 15 significant digits,
    a float to 7), without leading zeros: '' when that is 0."""
    if st.is_integral:
        return f"usql_cfmt_n(CAST(abs(CAST({s} AS HUGEINT)) AS VARCHAR), {shift})"
    if st.name == "decimal":
        body = f"usql_cfmt_n(replace(usql_t, '.', ''), {shift} - length(split_part(usql_t, '.', 2)))"
        return _let(f"CAST(abs({s}) AS VARCHAR)", "usql_t", body)
    digits = FLOAT_DIGITS if st.name == "float" else 15
    body = (f"usql_cfmt_n(replace(split_part(usql_t, 'E', 1), '.', ''), "
            f"{shift - digits + 1} + CAST(split_part(usql_t, 'E', 2) AS INTEGER))")  # fmt: skip
    return _let(f"usql_fmt_{'real' if st.name == 'double' else 'float'}_e({s})", "usql_t", body)


def _custom_section_sql(s: str, st: UType, spec: NumberSection, zero: str, sign: str) -> str:
    """The text of a value in one section: ``zero`` if it rounds to zero, else ``sign`` (a SQL string and a comma,
    or "") and the section's text: literal text in place, the integer digits at the integer placeholders (those
    beyond the placeholders at the first), the fraction digits at the fraction placeholders."""
    d = spec.max_decimals
    whole = f"usql_cfmt_int(usql_d, {d}, {spec.forced}, {'true' if spec.grouped else 'false'})"
    frac = f"usql_cfmt_frac(usql_d, {d}, {spec.min_decimals})"
    runs: list[tuple[str, int]] = []  # ("text", index in texts) | ("int"/"frac"/"point", run length)
    texts: list[str] = []
    for kind, text in spec.items:
        if kind == "text":
            texts.append(text)
            runs.append(("text", len(texts) - 1))
        elif kind != "point" and runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + 1)
        else:
            runs.append((kind, 1))
    if spec.grouped and sum(kind == "int" for kind, _ in runs) > 1:
        raise FormatError("digit grouping (,) with text between the integer digit placeholders is not supported")
    parts: list[str] = []
    high, low_frac = spec.int_digits, 1  # the digit position (from the right) of the next integer placeholder
    for kind, count in runs:
        if kind == "text":
            parts.append(lit(texts[count]))
        elif kind == "int":
            low = high - count + 1
            if high == spec.int_digits:  # the first placeholders also take the digits beyond them
                parts.append(f"left(usql_w, greatest(length(usql_w) - {low - 1}, 0))")
            else:
                start = f"greatest(length(usql_w) - {high - 1}, 1)"
                parts.append(f"substring(usql_w, {start}, greatest(least({high}, length(usql_w)) - {low - 1}, 0))")
            high = low - 1
        elif kind == "point":
            if spec.int_digits == 0:  # no integer placeholder: the integer digits come before the point
                parts.append("usql_w")
            if d:
                parts.append("'.'" if spec.min_decimals else "CASE WHEN usql_f = '' THEN '' ELSE '.' END")
        else:
            parts.append(f"substring(usql_f, {low_frac}, {count})")
            low_frac += count
    text = _let(whole, "usql_w", _let(frac, "usql_f", f"concat({sign}{', '.join(parts or ['NULL'])})"))
    digits = _custom_digits_sql(s, st, spec.shift + d)
    return _let(digits, "usql_d", f"CASE WHEN usql_d = '' THEN {zero} ELSE {text} END")


#: Types that expressions have but U-SQL columns cannot (C# values of .NET types that are not U-SQL types).
_EXPRESSION_ONLY = ("TimeSpan", "DayOfWeek", "DateTimeKind", "KeyValuePair", "StringSplitOptions")


def non_column_type(typ: UType) -> str | None:
    """The .NET type that keeps ``typ`` from being a column type (``TimeSpan``, ``SqlArray<TimeSpan>``), or None."""
    for part in (typ, typ.element, typ.key):
        if part is not None and part.name in _EXPRESSION_ONLY:
            return part.name
    return None


def cs_tostring(sql: str, typ: UType) -> str:
    """C# ``ToString()`` of a value (NULL stays NULL)."""
    if typ.name in ("string", "char"):
        return sql
    if typ.name == "bool":
        return f"CASE WHEN {sql} THEN 'True' WHEN NOT {sql} THEN 'False' END"
    if typ.name in ("double", "float"):
        return f"usql_fmt_{'real' if typ.name == 'double' else 'float'}({sql})"
    if typ.name == "decimal":
        return f"usql_fmt_decimal({sql})"
    if typ.name == "DateTime":
        return f"strftime({sql}, {lit(DEFAULT_TOSTRING)})"
    if typ.name == "DayOfWeek":
        return f"[{', '.join(lit(d) for d in _DAY_NAMES)}][{sql} + 1]"
    if typ.name == "TimeSpan":  # [-][d.]hh:mm:ss[.fffffff]
        a = f"abs({sql})"
        return (f"CASE WHEN {sql} IS NOT NULL THEN printf('%s%s%02d:%02d:%02d%s', CASE WHEN {sql} < 0 THEN '-' "
                f"ELSE '' END, CASE WHEN {a} >= 86400000000 THEN CAST({a} // 86400000000 AS VARCHAR) || '.' ELSE '' "
                f"END, {a} // 3600000000 % 24, {a} // 60000000 % 60, {a} // 1000000 % 60, CASE WHEN {a} % 1000000 "
                f"<> 0 THEN '.' || lpad(CAST({a} % 1000000 * 10 AS VARCHAR), 7, '0') ELSE '' END) END")  # fmt: skip
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

    def _timespan_property(self, sql: str, typ: UType, e: n.Member) -> Typed:
        """``TotalDays``... (double), ``Days``, ``Hours``... (int parts, truncated as in .NET), ``Ticks``."""
        name = e.name
        total = name.removeprefix("Total")
        if name.startswith("Total") and total in _SPAN_US:
            return f"({sql} / {_SPAN_US[total]}.0)", UType("double", typ.nullable)
        if name in _SPAN_US:
            part = f"({sql} // {_SPAN_US[name]})"
            if name in _SPAN_MOD:
                part = f"({part} % {_SPAN_MOD[name]})"
            return f"CAST({part} AS INTEGER)", UType("int", typ.nullable)
        if name == "Ticks":
            return f"({sql} * 10)", UType("long", typ.nullable)
        raise self.err(e.pos, "member", f"TimeSpan.{name} is not supported")

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

    @staticmethod
    def _dotted(e: n.Expr) -> str | None:
        """``A.B.C`` for a chain of names, else None."""
        if isinstance(e, n.Name):
            return e.name
        if isinstance(e, n.Member):
            head = ExprTranslator._dotted(e.target)
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

    def _regex_args(self, e: n.Call, scope: Scope, fixed: int) -> tuple[list[Typed], str]:
        """The string arguments of a static Regex call and its RE2 pattern literal (argument 1, options after
        the ``fixed`` arguments)."""
        name = e.func.name if isinstance(e.func, n.Member) else "Regex"
        what = f"Regex.{name}"
        if len(e.args) not in (fixed, fixed + 1):
            raise self.err(e.pos, what, f"{what} takes {fixed} arguments and optional RegexOptions")
        pattern = e.args[1]
        if not (isinstance(pattern, n.Literal) and pattern.kind == "string"):
            raise self.err(e.pos, what, f"{what} needs a literal pattern (it is translated to RE2 at compile time)")
        flags = self._regex_options(e.args[fixed], what) if len(e.args) > fixed else ""
        try:
            re2 = dotnet_regex_to_re2(str(pattern.value), multiline="m" in flags)
        except FormatError as ex:
            raise self.err(pattern.pos, what, f"pattern {pattern.value!r}: {ex}") from None
        nodes = [a for i, a in enumerate(e.args[:fixed]) if i != 1]
        args = [self.tr(a, scope) for a in nodes]
        for (_, typ), node in zip(args, nodes, strict=True):
            if typ.name not in ("string", "null", "unknown"):
                raise self.err(node.pos, what, f"{what} takes strings, not {typ}")
        return args, self._strlit(f"(?{flags})" + re2 if flags else re2)

    def _regex_options(self, e: n.Expr, what: str) -> str:
        """RE2 inline flags for ``RegexOptions.X [| RegexOptions.Y]``."""
        if isinstance(e, n.Binary) and e.op == "|":
            return self._regex_options(e.left, what) + self._regex_options(e.right, what)
        name = (self._dotted(e) or "").removeprefix(_REGEX)
        option = name.removeprefix("RegexOptions.")
        if option == name or option not in _REGEX_OPTIONS:
            raise self.err(e.pos, what, f"{name or 'this option'} is not supported (RegexOptions: "
                           f"{', '.join(_REGEX_OPTIONS)})")  # fmt: skip
        return _REGEX_OPTIONS[option]

    def _regex(self, name: str, e: n.Call, scope: Scope) -> Typed:
        """``Regex.IsMatch/Replace/Split`` (``Match`` only with ``.Value``, ``.Success``, ``.Groups[n].Value``)."""
        if name == "IsMatch":
            ((s, _),), pattern = self._regex_args(e, scope, 2)
            return f"regexp_matches({s}, {pattern})", t.BOOL
        if name == "Replace":
            repl = e.args[2] if len(e.args) > 2 else None
            if not (isinstance(repl, n.Literal) and repl.kind == "string"):
                raise self.err(e.pos, "Regex.Replace", "Regex.Replace needs a literal replacement string")
            ((s, _), _), pattern = self._regex_args(e, scope, 3)
            try:
                rewrite = dotnet_replacement(str(repl.value))
            except FormatError as ex:
                raise self.err(repl.pos, "Regex.Replace", str(ex)) from None
            return f"regexp_replace({s}, {pattern}, {self._strlit(rewrite)}, 'g')", t.STRING
        if name == "Split":
            ((s, _),), pattern = self._regex_args(e, scope, 2)
            if re.search(r"(?<!\\)\((?!\?)", str(e.args[1].value)):  # type: ignore[union-attr]
                raise self.err(e.pos, "Regex.Split", "Regex.Split with capturing groups (which .NET includes in "
                               "the result) is not supported; use (?:...)")  # fmt: skip
            return f"regexp_split_to_array({s}, {pattern})", UType("SqlArray", True, t.STRING)
        if name == "Match":
            raise self.err(e.pos, "Regex.Match", "Regex.Match(...) is supported with .Value, .Success or "
                           ".Groups[n].Value")  # fmt: skip
        raise self.err(e.pos, f"Regex.{name}", f"Regex.{name}(...) is not supported")

    def _regex_match_member(self, e: n.Member, scope: Scope) -> Typed | None:
        """``Regex.Match(s, p).Value`` / ``.Success`` / ``.Groups[n].Value`` ("" when there is no match)."""
        target, group = e.target, 0
        if (
            e.name == "Value"
            and isinstance(target, n.Index)
            and isinstance(target.target, n.Member)
            and target.target.name == "Groups"
            and self._regex_call(target.target.target, scope, "Match")
        ):
            index = target.index
            if not (isinstance(index, n.Literal) and isinstance(index.value, int)):
                raise self.err(index.pos, "Regex.Match", "Groups[n] needs a literal group number")
            target, group = target.target.target, index.value
        call = self._regex_call(target, scope, "Match")
        if call is None or e.name not in ("Value", "Success"):
            return None
        ((s, _),), pattern = self._regex_args(call, scope, 2)
        if e.name == "Success":
            return f"regexp_matches({s}, {pattern})", t.BOOL
        return f"regexp_extract({s}, {pattern}, {group})", t.STRING

    def _args(self, e: n.Call, scope: Scope, count: tuple[int, ...], what: str) -> list[Typed]:
        if len(e.args) not in count:
            want = " or ".join(str(c) for c in count)
            raise self.err(e.pos, what, f"{what} takes {want} argument(s), got {len(e.args)}")
        return [self.tr(a, scope) for a in e.args]

    def _sql_function(self, name: str, e: n.Call, scope: Scope) -> Typed:
        upper = name.upper() if name.isupper() else name
        if upper in ("PERCENTILE_CONT", "PERCENTILE_DISC"):
            return self._percentile(upper, e, scope)
        if e.within_group:
            raise self.err(
                e.pos, "WITHIN GROUP", f"WITHIN GROUP only follows PERCENTILE_CONT/PERCENTILE_DISC, not {name}"
            )
        if e.type_args and upper not in ("ARRAY_AGG", "MAP_AGG"):
            raise self.err(e.pos, name, f"{name}<...> takes no type arguments")
        if upper in AGGREGATES:
            if not self.allow_aggregates and e.over is None:
                raise self.err(e.pos, name, f"aggregate {name} is not allowed here")
            if upper == "ANY_VALUE" and e.over is not None:
                raise self.err(e.pos, name, "ANY_VALUE cannot be used in a windowing expression (OVER); use "
                               "FIRST_VALUE(x) OVER (...)")  # fmt: skip
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
        if name == "Equals" and e.over is None:
            return self._object_equals(e, scope)
        if upper in ("COALESCE", "ISNULL", "NULLIF") and e.over is None:
            return self._null_function(upper, e, scope)
        raise self.err(e.pos, "user code", f"unknown function {name!r}; user-defined functions are not supported")

    def _null_function(self, name: str, e: n.Call, scope: Scope) -> Typed:
        """T-SQL ``COALESCE(a, b, ...)`` (first non-null), ``ISNULL(a, b)`` (``a ?? b``) and ``NULLIF(a, b)``
        (``a == b ? null : a``, C# equality) with C# typing: one common type (numeric promotion), nullable for
        COALESCE/ISNULL only if the last argument is, always nullable for NULLIF."""
        arity_ok = len(e.args) >= 2 if name == "COALESCE" else len(e.args) == 2
        if e.distinct or e.star or not arity_ok:
            raise self.err(e.pos, name, f"{name} takes {'two or more' if name == 'COALESCE' else 'two'} arguments")
        args = [self.tr(a, scope) for a in e.args]
        if name == "NULLIF":
            (a, at), (b, bt) = args
            if at.name == "null":
                raise self.err(e.args[0].pos, name, "the first NULLIF argument has no type: cast it, e.g. (int?) null")
            cond = self._equality("==", a, at, b, bt, n.Binary("==", e.args[0], e.args[1], e.pos))
            return f"CASE WHEN {cond} THEN NULL ELSE {a} END", at.with_nullable(True)
        typ = self._common_type(name, list(zip(e.args, (ty for _, ty in args), strict=True)))
        return f"coalesce({', '.join(a for a, _ in args)})", typ.with_nullable(args[-1][1].nullable)

    def _common_type(self, name: str, typed: list[tuple[n.Expr, UType]]) -> UType:
        """The one type of ``name``'s arguments (null literals adapt; numeric types promote as in C#)."""
        known = [(x, ty) for x, ty in typed if ty.name != "null"]
        if not known:
            raise self.err(typed[0][0].pos, name, f"no {name} argument has a type: cast one, e.g. (string) null")
        common = known[0][1]
        for x, ty in known[1:]:
            if common.is_numeric and ty.is_numeric:
                common = t.promote(common, ty)
            elif ty.name != common.name:
                raise self.err(x.pos, name, f"{name} arguments must have one type: this one is {ty}, the first is "
                               f"{known[0][1]}")  # fmt: skip
        return common

    def _object_equals(self, e: n.Call, scope: Scope) -> Typed:
        """C# ``Equals(a, b)`` (``object.Equals``): both null, or equal values of the same type; a boxed int never
        equals a boxed long."""
        (a, at), (b, bt) = self._args(e, scope, (2,), "Equals")
        if "null" not in (at.name, bt.name) and at.name != bt.name:
            return "FALSE", t.BOOL
        return self._equality("==", a, at, b, bt, n.Binary("==", e.args[0], e.args[1], e.pos)), t.BOOL

    def _percentile(self, name: str, e: n.Call, scope: Scope) -> Typed:
        """``PERCENTILE_CONT/DISC(p) WITHIN GROUP (ORDER BY x [DESC]) OVER ([PARTITION BY ...])``.

        As documented: p is a double literal in [0, 1], one ORDER BY item, OVER holds PARTITION BY only;
        CONT interpolates linearly (double?), DISC returns the first value whose CUME_DIST >= p (x's type).
        Nulls are ignored, as in SQL Server.
        """
        arg = e.args[0] if len(e.args) == 1 else None
        if not (isinstance(arg, n.Literal) and arg.kind in ("double", "int") and 0 <= float(arg.value) <= 1):  # type: ignore[arg-type]
            raise self.err(e.pos, name, f"{name} takes one double literal between 0.0 and 1.0")
        if len(e.within_group) != 1:
            raise self.err(e.pos, name, f"{name}(p) needs WITHIN GROUP (ORDER BY one expression)")
        w = e.over
        if w is None or w.order_by or w.frame:
            raise self.err(e.pos, name, f"{name} needs OVER ([PARTITION BY ...]) without ORDER BY or ROWS")
        item = e.within_group[0]
        x, xt = self.tr(item.expr, scope)
        frac = float(arg.value)  # type: ignore[arg-type]
        if name == "PERCENTILE_CONT":
            if not xt.is_numeric:
                raise self.err(item.expr.pos, name, f"{name} needs a numeric ORDER BY expression, not {xt}")
            # descending order mirrors the interpolation: the p-th value descending is the (1-p)-th ascending
            sql = self._quantile("cont", f"CAST({x} AS DOUBLE)", 1 - frac if item.descending else frac)
            return self._over(sql, e, scope), UType("double", True)
        if item.descending:
            if not xt.is_numeric:
                raise self.err(item.expr.pos, name, f"{name} with ORDER BY ... DESC needs a numeric expression")
            # negated in a type wide enough to hold -x (also for unsigned and minimum values)
            wide = {"double": "DOUBLE", "float": "DOUBLE", "decimal": "DECIMAL(38,10)"}.get(xt.name, "HUGEINT")
            inner = self._over(self._quantile("disc", f"(-CAST({x} AS {wide}))", frac), e, scope)
            return f"CAST(-({inner}) AS {xt.duckdb()})", xt.with_nullable(True)
        return self._over(self._quantile("disc", x, frac), e, scope), xt.with_nullable(True)

    @staticmethod
    def _quantile(kind: str, x: str, frac: float) -> str:
        """The continuous (``cont``) or discrete (``disc``) quantile aggregate of ``x``, nulls ignored."""
        return f"quantile_{kind}({x}, {frac!r})"

    def _aggregate(self, name: str, e: n.Call, scope: Scope) -> Typed:
        fn = AGGREGATES[name]
        outer = "{}"  # the expression around the aggregate (``{}`` stands for it, with its OVER clause)
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
                    sql, outer = f"list(row({args[0][0]}, {args[1][0]}))", "map_from_entries({})"
                if name == "SUM" and at.is_integral:
                    outer = "CAST({} AS BIGINT)"
                if e.type_args:
                    sql, typ = self._typed_collection_aggregate(name, e, args)
        finally:
            self.allow_aggregates = saved
        if e.over is not None:
            sql = self._over(sql, e, scope)  # OVER follows the aggregate itself, inside any cast or conversion
        return outer.format(sql), typ

    def _typed_collection_aggregate(self, name: str, e: n.Call, args: list[Typed]) -> Typed:
        """``ARRAY_AGG<T>(x)`` / ``MAP_AGG<K,V>(k, v)``: the written types, the values converted to them (for MAP_AGG
        the aggregate of the entries; ``_aggregate`` makes the map of it, after any OVER clause)."""
        want = 2 if name == "MAP_AGG" else 1
        types = [t.resolve(a) for a in e.type_args]
        if len(types) != want or any(x is None or x.name in ("SqlArray", "SqlMap") for x in types):
            spelled = "MAP_AGG<K,V>" if want == 2 else "ARRAY_AGG<T>"
            raise self.err(e.pos, name, f"{spelled} needs {want} built-in type argument(s)")
        vals = []
        for (s, st), ty in zip(args, types, strict=True):
            assert ty is not None
            if st.name != ty.name and not (st.is_numeric and ty.is_numeric) and st.name != "null":
                raise self.err(e.pos, name, f"{name}<{', '.join(map(str, types))}> got a {st} value")
            vals.append(s if st.name == ty.name else f"CAST({s} AS {ty.duckdb()})")
        dist = "DISTINCT " if e.distinct else ""
        if name == "ARRAY_AGG":
            elem = types[0]
            assert elem is not None
            return f"list({dist}{vals[0]})", UType("SqlArray", True, elem)
        key, value = types
        assert key is not None and value is not None
        return f"list(row({vals[0]}, {vals[1]}))", UType("SqlMap", True, value, key)

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
        elif w.order_by and isinstance(e.func, n.Name) and e.func.name.upper() in _FRAMED:
            # the OVER reference: with ORDER BY and no ROWS clause the frame is ROWS BETWEEN UNBOUNDED PRECEDING
            # AND CURRENT ROW (SQL's default, RANGE, would also include the current row's peers)
            parts.append("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW")
        return f"{sql} OVER ({' '.join(parts)})"

    def sort_list(self, items: tuple[n.SortItem, ...], scope: Scope) -> str:
        """ORDER BY items: "U-SQL always orders null values last, regardless of the sort direction" (the ORDER BY
        reference); OVER (ORDER BY ...) sorts with the same rule (CUME_DIST's reference: nulls rank highest)."""
        out = []
        for it in items:
            sql, _ = self.tr(it.expr, scope)
            out.append(f"{sql} {'DESC' if it.descending else 'ASC'} NULLS LAST")
        return ", ".join(out)

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

    def _string_join(self, e: n.Call, scope: Scope) -> str:
        """``string.Join(sep, sequence)`` or ``string.Join(sep, v1, v2, ...)``: each value's ToString(), null as "",
        a null separator as ""."""
        if len(e.args) < 2:
            raise self.err(e.pos, "string.Join", "string.Join takes a separator and values")
        (sep, _), *values = [self.tr(a, scope) for a in e.args]
        sep = f"coalesce({sep}, '')"
        if len(values) == 1 and values[0][1].name in ("SqlArray", "SqlMap"):
            arr, at = values[0]
            elem = at.element or t.UNKNOWN
            if at.name == "SqlMap" or elem.name in ("KeyValuePair", "SqlArray", "SqlMap"):
                raise self.err(e.pos, "string.Join", f"string.Join of {at} is not supported; Select strings first")
            if elem.name not in ("string", "char", "unknown"):
                arr = f"list_transform({arr}, {self._lambda_sql(['usql_j'], cs_tostring('usql_j', elem))})"
            return self._array_join(arr, sep)
        parts = ", ".join(f"coalesce({self._concat_arg(s, ty)}, '')" for s, ty in values)
        return f"concat_ws({sep}, {parts})"

    def _date_static_call(self, cls: str, name: str, e: n.Call, scope: Scope) -> Typed | None:
        """``DateTime.SpecifyKind/Compare``, ``TimeSpan.FromDays/.../FromTicks``; None for other methods."""
        unit = name.removeprefix("From")
        if cls == "TimeSpan" and unit in _SPAN_US:
            ((x, _),) = self._args(e, scope, (1,), f"TimeSpan.{name}")
            # .NET Framework rounds to whole milliseconds (half away from zero)
            ms = f"trunc(CAST({x} AS DOUBLE) * {_SPAN_US[unit] // 1000} + CASE WHEN {x} >= 0 THEN 0.5 ELSE -0.5 END)"
            return f"(CAST({ms} AS BIGINT) * 1000)", TIMESPAN
        if cls == "TimeSpan" and name == "FromTicks":
            ((x, _),) = self._args(e, scope, (1,), "TimeSpan.FromTicks")
            return f"(CAST({x} AS BIGINT) // 10)", TIMESPAN
        if cls == "DateTime" and name == "SpecifyKind":
            (d, dt), (_, kt) = self._args(e, scope, (2,), "DateTime.SpecifyKind")
            if dt.name != "DateTime" or kt.name != "DateTimeKind":
                raise self.err(e.pos, "DateTime.SpecifyKind", "SpecifyKind takes a DateTime and a DateTimeKind")
            return d, dt  # the kind does not change the value
        if name == "Compare":
            (a, at), (b, bt) = self._args(e, scope, (2,), f"{cls}.Compare")
            return self._compare(a, at, b, bt, e)
        if cls == "DateTime" and name == "DaysInMonth":
            (y, _), (m, _) = self._args(e, scope, (2,), "DateTime.DaysInMonth")
            return f"CAST(day(last_day(make_date(CAST({y} AS INTEGER), CAST({m} AS INTEGER), 1))) AS INTEGER)", t.INT
        if cls == "DateTime" and name == "IsLeapYear":
            ((y, _),) = self._args(e, scope, (1,), "DateTime.IsLeapYear")
            return f"(({y}) % 4 = 0 AND (({y}) % 100 <> 0 OR ({y}) % 400 = 0))", t.BOOL
        return None

    def _compare(self, a: str, at: UType, b: str, bt: UType, e: n.Call) -> Typed:
        """``Compare(a, b)`` / ``a.CompareTo(b)`` of DateTimes or TimeSpans: -1, 0 or 1."""
        if at.name == bt.name == "string":
            raise self.err(e.pos, "Compare", _CULTURE_COMPARE)
        if at.name != bt.name or at.name not in ("DateTime", "TimeSpan"):
            raise self.err(e.pos, "Compare", f"Compare of {at} and {bt} is not supported")
        if at.name == "DateTime":
            a, b = f"epoch_us({a})", f"epoch_us({b})"
        return f"CAST(sign({a} - {b}) AS INTEGER)", t.INT

    def _string_format(self, e: n.Call, scope: Scope) -> str:
        """``String.Format("{0}:{1,5}:{2:F2}", a, b, c)``: a literal composite format; a null argument is ""."""
        fmt = e.args[0] if e.args else None
        if not (isinstance(fmt, n.Literal) and fmt.kind == "string"):
            raise self.err(e.pos, "String.Format", "String.Format needs a literal format string")
        args = [self.tr(a, scope) for a in e.args[1:]]
        try:
            pieces = parse_composite_format(str(fmt.value))
        except FormatError as ex:
            raise self.err(fmt.pos, "String.Format", str(ex)) from None
        parts = []
        for piece in pieces:
            if isinstance(piece, str):
                parts.append(self._strlit(piece))
                continue
            index, align, spec = piece
            if index >= len(args):
                raise self.err(fmt.pos, "String.Format", f"format item {{{index}}} has no argument "
                               f"({len(args)} given)")  # fmt: skip
            s, st = args[index]
            value = f"coalesce({self._formatted(s, st, spec, fmt.pos) if spec else cs_tostring(s, st)}, '')"
            if align:
                fn = "lpad" if align > 0 else "rpad"
                width = abs(align)
                value = f"CASE WHEN length({value}) >= {width} THEN {value} ELSE {fn}({value}, {width}, ' ') END"
            parts.append(value)
        return "concat(" + ", ".join(parts or ["''"]) + ")"

    def _formatted(self, s: str, st: UType, spec: str, pos: n.Pos) -> str:
        """``value.ToString(spec)``: DateTime custom/standard formats, numeric D, X, F, N (en-US)."""
        try:
            if st.name == "DateTime":
                return f"strftime({s}, {lit(to_strftime(spec))})"
            if st.is_numeric:
                return self._number_format(s, st, spec)
        except FormatError as ex:
            raise self.err(pos, "format", str(ex)) from None
        raise self.err(pos, "format", f"format strings for {st} values are not supported")

    @staticmethod
    def _number_format(s: str, st: UType, spec: str) -> str:
        """.NET standard numeric formats D[n], X[n], F[n], N[n] (en-US; F/N default to 2 decimals, round half
        away from zero; a double is first rounded to 15 significant digits, a float to 7, as .NET Framework) and
        custom formats (``custom_number_sql``)."""
        if spec == "":  # .NET: an empty format is the default ("G")
            return cs_tostring(s, st)
        if not STANDARD_NUMBER_FORMAT.fullmatch(spec):
            return custom_number_sql(s, st, spec)
        m = _NUMBER_FORMAT.fullmatch(spec)
        if m is None:
            raise FormatError(f"numeric format {spec!r} is not supported (supported: D, X, F, N with a precision, "
                              "custom formats such as 0.00 or #,##0)")  # fmt: skip
        kind, digits = m.group(1).upper(), m.group(2)
        if kind in ("D", "X") and not st.is_integral:
            raise FormatError(f"format {spec!r} is only for integral types, not {st}")
        if kind == "D":
            text = f"CAST(abs(CAST({s} AS HUGEINT)) AS VARCHAR)"
            width = int(digits or 0)
            padded = f"lpad({text}, CAST(greatest({width}, length({text})) AS INTEGER), '0')" if width else text
            return f"(CASE WHEN {s} < 0 THEN '-' ELSE '' END || {padded})"
        if kind == "X":
            wrap = _HEX_WRAP.get(st.name)
            v = f"CASE WHEN {s} < 0 THEN CAST({s} AS BIGINT) + {wrap} ELSE {s} END" if wrap else s
            return f"printf('%0{int(digits or 0)}{m.group(1)}', {v})"
        decimals = int(digits) if digits else 2
        point = f" || '.{'0' * decimals}'" if decimals else ""
        if st.is_integral:
            return f"(format('{{:,}}', {s}){point})" if kind == "N" else f"(CAST({s} AS VARCHAR){point})"
        if st.name == "decimal":
            rounded = f"round({s}, {decimals})"
        else:
            sig = 14 if st.name == "double" else 6
            rounded = f"round(CAST(printf('%.{sig}e', {s}) AS DECIMAL(38,18)), {decimals})"
        text = f"format('{{:{',' if kind == 'N' else ''}.{decimals}f}}', CAST({rounded} AS DOUBLE))"
        if st.name == "decimal":
            return text
        return f"CASE WHEN isfinite({s}) THEN {text} ELSE usql_fmt_real({s}) END"

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

    def _compare_ordinal(self, e: n.Call, scope: Scope) -> str:
        """``String.CompareOrdinal(a, b)`` / ``(a, ia, b, ib, length)``: the ordinal (code point) order as -1, 0 or 1
        (.NET documents only the sign); null precedes every string."""
        args = self._args(e, scope, (2, 5), "String.CompareOrdinal")
        if len(args) == 2:
            a, b = args[0][0], args[1][0]
        else:
            (x, _), (ia, _), (y, _), (ib, _), (count, _) = args
            a, b = f"substring({x}, {ia} + 1, {count})", f"substring({y}, {ib} + 1, {count})"
        return (f"CASE WHEN {a} IS NULL THEN CASE WHEN {b} IS NULL THEN 0 ELSE -1 END WHEN {b} IS NULL THEN 1 "
                f"WHEN {a} < {b} THEN -1 WHEN {a} > {b} THEN 1 ELSE 0 END")  # fmt: skip

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
        if name == "IndexOf":
            need(1, 2, 3)
            if len(a) == 1:
                return f"CAST(instr({s}, {a[0]}) - 1 AS INTEGER)", t.INT
            # IndexOf(value, start[, count]): the search covers s.Substring(start[, count])
            part = f"substring({s}, {a[1]} + 1{f', {a[2]}' if len(a) == 3 else ''})"
            return f"CAST(CASE WHEN instr({part}, {a[0]}) = 0 THEN -1 ELSE instr({part}, {a[0]}) + {a[1]} - 1 END " \
                   "AS INTEGER)", t.INT  # fmt: skip
        if name == "LastIndexOf":
            need(1, 2)
            # LastIndexOf(value, start) searches backwards from start: in s.Substring(0, start + 1)
            start = a[1] if len(a) == 2 else f"(length({s}) - 1)"
            part = f"substring({s}, 1, {a[1]} + 1)" if len(a) == 2 else s
            found = (f"CASE WHEN instr({part}, {a[0]}) = 0 THEN -1 ELSE length({part}) - length({a[0]}) "
                     f"- instr(reverse({part}), reverse({a[0]})) + 1 END")  # fmt: skip
            # .NET Framework: the empty string is found at "the last index position" (start), 0 in ""
            return f"CAST(CASE WHEN {a[0]} = '' THEN greatest(least({start}, length({s}) - 1), 0) ELSE {found} END " \
                   "AS INTEGER)", t.INT  # fmt: skip
        if name == "Replace":
            need(2)
            return f"replace({s}, {a[0]}, {a[1]})", t.STRING
        if name == "Split":
            return self._split(s, args, e)
        if name in ("PadLeft", "PadRight"):
            need(1, 2)
            fn = "lpad" if name == "PadLeft" else "rpad"
            pad = a[1] if len(a) == 2 else "' '"
            width = f"CAST({a[0]} AS INTEGER)"  # lpad/rpad take an INTEGER width; s.Length + 5 is a BIGINT
            return f"CASE WHEN length({s}) >= {width} THEN {s} ELSE {fn}({s}, {width}, {pad}) END", t.STRING
        if name == "Remove":
            need(1, 2)
            if len(a) == 1:
                return f"substring({s}, 1, {a[0]})", t.STRING
            return f"(substring({s}, 1, {a[0]}) || substring({s}, {a[0]} + {a[1]} + 1))", t.STRING
        if name == "Insert":
            need(2)
            return f"(substring({s}, 1, {a[0]}) || {a[1]} || substring({s}, {a[0]} + 1))", t.STRING
        if name == "ToCharArray":
            need(0)
            chars = self._lambda_sql(["usql_c"], f"substring({s}, usql_c + 1, 1)")
            return f"list_transform(range(length({s})), {chars})", UType("SqlArray", True, UType("char", False))
        if name == "CompareTo":
            raise self.err(e.pos, "CompareTo", _CULTURE_COMPARE)
        raise self.err(e.pos, name, f"method string.{name}(...) is not supported")

    def _split(self, s: str, args: list[Typed], e: n.Call) -> Typed:
        """``s.Split(sep)``, ``Split(c1, c2, ...)``, ``Split(new char[]{...} | new string[]{...}[, options])``.

        As in .NET, empty entries are kept unless ``StringSplitOptions.RemoveEmptyEntries``; with several
        separators the first one (in argument order) matching at a position wins, as in a regex alternation.
        """
        nodes = list(e.args)
        remove_empty = False
        if args and args[-1][1].name == "StringSplitOptions":
            remove_empty = args[-1][0] == "1"
            args, nodes = args[:-1], nodes[:-1]
        out = UType("SqlArray", True, t.STRING)
        seps = self._literal_separators(nodes)
        if seps is None:
            if len(args) != 1 or args[0][1].name not in ("char", "string"):
                raise self.err(e.pos, "Split", "Split needs literal separators (or one char/string separator)")
            sql = self._split_on(s, args[0][0])
        elif not seps or "" in seps:
            raise self.err(e.pos, "Split", "Split with no or empty separators (white space splitting) is not supported")
        else:
            sql = self._split_on_literals(s, seps)
        return (self._drop_empty(sql) if remove_empty else sql), out

    @staticmethod
    def _split_on(s: str, sep: str) -> str:
        """Split ``s`` at each occurrence of the separator expression ``sep``, keeping empty entries."""
        return f"string_split({s}, {sep})"

    def _split_on_literals(self, s: str, seps: list[str]) -> str:
        """Split at any of the literal separators (the first matching at a position wins, as in .NET)."""
        if len(seps) == 1:
            return self._split_on(s, self._strlit(seps[0]))
        return f"regexp_split_to_array({s}, {self._strlit('|'.join(re.escape(x) for x in seps))})"

    @staticmethod
    def _drop_empty(arr: str) -> str:
        """``StringSplitOptions.RemoveEmptyEntries``."""
        return f"list_filter({arr}, lambda usql_v: usql_v <> '')"

    @staticmethod
    def _literal_separators(nodes: list[n.Expr]) -> list[str] | None:
        """The separators of a Split call when all are literals (``','``, ``new string[]{"::"}``), else None."""
        out: list[str] = []
        for node in nodes:
            if isinstance(node, n.New) and node.type.name in ("char[]", "string[]") and node.initializer:
                items = [x for (x,) in node.initializer]
            else:
                items = [node]
            for item in items:
                if not (isinstance(item, n.Literal) and item.kind in ("char", "string")):
                    return None
                out.append(str(item.value))
        return out

    # ------------------------------------------------------------ LINQ and lambdas
    def _lambda(self, e: n.Lambda, scope: Scope) -> Typed:
        raise self.err(e.pos, "lambda", "a lambda is only supported as the argument of a LINQ method (Select, "
                       "Where, Any, ...) on a SqlArray or SqlMap")  # fmt: skip

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
        if (op in ("+", "-") and "TimeSpan" in (at.name, bt.name)) or (op == "-" and at.name == bt.name == "DateTime"):
            return self._date_arithmetic(op, a, at, b, bt, e.pos)
        if op in ("+", "-") and at.name == "DateTime":
            raise self.err(e.pos, "DateTime", f"DateTime {op} {bt} is not defined; use AddDays etc.")
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

    def _date_arithmetic(self, op: str, a: str, at: UType, b: str, bt: UType, pos: n.Pos) -> Typed:
        """DateTime - DateTime = TimeSpan; DateTime +/- TimeSpan; TimeSpan +/- TimeSpan (microseconds)."""
        nullable = at.nullable or bt.nullable
        if at.name == bt.name == "DateTime":
            return f"(epoch_us({a}) - epoch_us({b}))", TIMESPAN.with_nullable(nullable)
        if at.name == "DateTime" and bt.name == "TimeSpan":
            return f"({a} {op} to_microseconds({b}))", t.DATETIME.with_nullable(nullable)
        if at.name == bt.name == "TimeSpan":
            return f"({a} {op} {b})", TIMESPAN.with_nullable(nullable)
        raise self.err(pos, "operator", f"{at} {op} {bt} is not defined")

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

    def _case(self, e: n.Case, scope: Scope) -> Typed:
        """``CASE``: the result of the first WHEN that matches (lexical order), else ELSE, else null.

        As the U-SQL reference says, the WHEN values of the simple form have the input's type and compare with
        C# ``==`` (null equals null); all results have one type; without ELSE that type must be nullable.
        """
        if e.operand is None:
            conds = [self.bool_sql(w, scope, "a CASE WHEN condition") for w, _ in e.whens]
        else:
            x, xt = self.tr(e.operand, scope)
            conds = []
            for w, _ in e.whens:
                v, vt = self.tr(w, scope)
                if vt.name not in ("null", xt.name):
                    raise self.err(w.pos, "CASE", f"the WHEN value is {vt} but the CASE input is {xt}; they must "
                                   "have the same type")  # fmt: skip
                conds.append(self._equality("==", x, xt, v, vt, n.Binary("==", e.operand, w, w.pos)))
        results = [r for _, r in e.whens] + ([e.otherwise] if e.otherwise is not None else [])
        typed = [(r, *self.tr(r, scope)) for r in results]
        known = [(r, ty) for r, _, ty in typed if ty.name != "null"]
        if not known:
            raise self.err(e.pos, "CASE", "no CASE result has a type: cast one, e.g. (string) null")
        first = known[0][1]
        for r, ty in known[1:]:
            if str(ty.with_nullable(first.nullable)) != str(first):
                raise self.err(r.pos, "CASE", f"CASE results must have one type: this one is {ty}, the first is "
                               f"{first}")  # fmt: skip
        typ = first.with_nullable(any(ty.nullable for _, ty in known))
        if (e.otherwise is None or len(known) < len(typed)) and not typ.nullable:
            raise self.err(e.pos, "CASE", f"this CASE can return null (no ELSE, or a null result) but its result type "
                           f"{typ} is not nullable: add ELSE or cast a result to {typ}?")  # fmt: skip
        arms = " ".join(f"WHEN {c} THEN {sql}" for c, (_, sql, _) in zip(conds, typed, strict=False))
        other = f" ELSE {typed[-1][1]}" if e.otherwise is not None else ""
        return f"CASE {arms}{other} END", typ

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
            if args and args[-1][1].name == "DateTimeKind":  # the kind does not change the value
                args = args[:-1]
            if len(args) not in (3, 6, 7):
                raise self.err(e.pos, "new DateTime", "new DateTime(y, m, d[, h, mi, s[, ms]][, DateTimeKind.X]) "
                               "takes 3, 6 or 7 numbers")  # fmt: skip
            vals = [x for x, _ in args] + ["0", "0", "0"][: max(0, 6 - len(args))]
            if len(args) == 7:
                vals = [*vals[:5], f"({vals[5]} + {vals[6]} / 1000.0)"]
            return f"{self.MAKE_TIMESTAMP}({', '.join(vals)})", t.DATETIME
        if name in ("TimeSpan", "System.TimeSpan"):
            return self._new_timespan(e, args)
        if t.collection(name) is not None:
            return self._new_collection(e, args, scope)
        if name == "KeyValuePair":
            return self._new_pair(e, args)
        if name.endswith("[]") and e.initializer is not None and not args:  # new string[]{"a", "b"}
            elem = t.resolve(n.TypeRef(name[:-2], False, e.type.pos))
            if elem is not None and elem.name not in ("byte[]", "SqlArray", "SqlMap"):
                items = ", ".join(f"CAST({self.tr(x, scope)[0]} AS {elem.duckdb()})" for (x,) in e.initializer)
                return f"CAST([{items}] AS {elem.duckdb()}[])", UType("SqlArray", True, elem)
        raise self.err(e.pos, f"new {name}", f"new {name}(...) is not supported")

    def _new_timespan(self, e: n.New, args: list[Typed]) -> Typed:
        """``new TimeSpan(ticks)``, ``(h, m, s)``, ``(d, h, m, s[, ms])`` as microseconds."""
        vals = [f"CAST({x} AS BIGINT)" for x, _ in args]
        if len(args) == 1:
            return f"({vals[0]} // 10)", TIMESPAN
        units = {3: ["Hours", "Minutes", "Seconds"], 4: ["Days", "Hours", "Minutes", "Seconds"],
                 5: ["Days", "Hours", "Minutes", "Seconds", "Milliseconds"]}.get(len(args))  # fmt: skip
        if units is None:
            raise self.err(e.pos, "new TimeSpan", "new TimeSpan takes (ticks), (h, m, s), (d, h, m, s[, ms])")
        return "(" + " + ".join(f"{v} * {_SPAN_US[u]}" for v, u in zip(vals, units, strict=True)) + ")", TIMESPAN

    def _new_pair(self, e: n.New, args: list[Typed]) -> Typed:
        """``new KeyValuePair<K,V>(k, v)``: a struct (key, value); a SqlMap can be built from a sequence of them."""
        types = [t.resolve(a) for a in e.type.args]
        if len(types) != 2 or len(args) != 2 or any(x is None or x.name in ("SqlArray", "SqlMap") for x in types):
            raise self.err(e.pos, "KeyValuePair", "new KeyValuePair<K,V>(key, value) needs built-in types K, V")
        key, value = types
        assert key is not None and value is not None
        k, v = f"CAST({args[0][0]} AS {key.duckdb()})", f"CAST({args[1][0]} AS {value.duckdb()})"
        return f"struct_pack(key := {k}, value := {v})", UType("KeyValuePair", False, value, key)

    def _new_collection(self, e: n.New, args: list[Typed], scope: Scope) -> Typed:
        name = t.collection(e.type.name) or e.type.name
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
                arg_elem = args[0][1].element if len(args) == 1 and args[0][1].name == "SqlArray" else None
                if arg_elem is not None and arg_elem.name == "KeyValuePair" and init is None:
                    # a repeated or null key is a run-time error, as in .NET's dictionary
                    return f"CAST(map_from_entries({args[0][0]}) AS {typ.duckdb()})", typ
                raise self.err(e.pos, "SqlMap", "new SqlMap<K,V>(...) takes another SqlMap, a sequence of "
                               "KeyValuePair<K,V> (x.Select(p => new KeyValuePair<K,V>(k, v))) or an initializer "
                               "{{k, v}, ...}")  # fmt: skip
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
            arg_elem = args[0][1].element
            if arg_elem is None or arg_elem.name in (elem.name, "unknown"):
                return args[0][0], typ
            return f"CAST({args[0][0]} AS {typ.duckdb()})", typ
        raise self.err(e.pos, "SqlArray", "new SqlArray<T>(x) needs an array such as s.Split(';')")
