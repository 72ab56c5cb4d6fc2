"""C# calls and constructors: which static classes, methods and ``new`` expressions exist, their arguments and result
types, checked the same in every dialect; the SQL is the dialect's (templates and render hooks of
:class:`~.translator.Translator`) where it is not standard SQL."""

from __future__ import annotations

import re
from collections.abc import Callable

from airflow_provider_amlpipe.usql import decimal_scale as ds
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.csformat import FormatError, parse_composite_format
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed, scale_of, with_scale
from airflow_provider_amlpipe.usql.translate_base import _PARSE_TARGET, _STATIC_CLASSES, TIMESPAN
from airflow_provider_amlpipe.usql.translate_ops import SqlFunctions
from airflow_provider_amlpipe.usql.types import UType

_CONVERT = {"ToInt32": "int", "ToInt64": "long", "ToInt16": "short", "ToByte": "byte", "ToDouble": "double",
            "ToSingle": "float", "ToDecimal": "decimal", "ToBoolean": "bool", "ToDateTime": "DateTime",
            "ToString": "string"}  # fmt: skip
#: Math methods whose decimal result is a whole number (scale 0).
_WHOLE = ("Floor", "Ceiling", "Truncate")
#: The Math methods computed by one SQL function of one argument, and the type of their result (None: the argument's).
_MATH_UNARY = {"Abs": None, "Floor": None, "Ceiling": None, "Truncate": None, "Sqrt": t.DOUBLE, "Exp": t.DOUBLE,
               "Log10": t.DOUBLE, "Sign": t.INT, "Sin": t.DOUBLE, "Cos": t.DOUBLE, "Tan": t.DOUBLE}  # fmt: skip
#: DateTime.AddX: the unit of each.
_DATE_ADD = {"AddDays": "Days", "AddHours": "Hours", "AddMinutes": "Minutes", "AddSeconds": "Seconds",
             "AddMilliseconds": "Milliseconds", "AddMonths": "Months", "AddYears": "Years"}  # fmt: skip
#: LINQ methods (System.Linq.Enumerable) on SqlArray / SqlMap values (``Translator._linq``).
LINQ_METHODS = frozenset({
    "Select", "Where", "SelectMany", "Any", "All", "Count", "LongCount", "First", "FirstOrDefault", "Last",
    "LastOrDefault", "Sum", "Min", "Max", "Average", "Distinct", "OrderBy", "OrderByDescending", "ToArray", "ToList",
    "AsEnumerable", "Skip", "Take", "Reverse",
})  # fmt: skip
#: Types whose SqlMap/SqlArray values string.Join cannot print.
_NOT_JOINED = ("KeyValuePair", "SqlArray", "SqlMap")
_CULTURE_COMPARE = ("string comparison with Compare/CompareTo is culture-sensitive in .NET (\"abc\" precedes \"ABC\", "
                    "ignorable characters) and is not supported; String.CompareOrdinal(a, b) compares ordinally "
                    "(by character code)")  # fmt: skip
#: The methods on strings whose SQL is standard (the same in every dialect).
_STANDARD_STRING_METHODS = ("ToUpper", "ToUpperInvariant", "ToLower", "ToLowerInvariant", "Substring", "IndexOf",
                            "LastIndexOf", "Remove", "Insert", "Replace")  # fmt: skip


class Calls(SqlFunctions):
    """Methods of :class:`~.translator.Translator`: calls, methods and constructors."""

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

    def _static_call(self, cls: str, name: str, e: n.Call, scope: Scope) -> Typed:
        if cls in ("string", "String"):
            if name in ("IsNullOrEmpty", "IsNullOrWhiteSpace"):
                ((s, _),) = self._args(e, scope, (1,), f"string.{name}")
                inner = self._trim(s, "Trim", []) if name == "IsNullOrWhiteSpace" else s
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
            parsed = self._parse(s, target, f"{cls}.Parse", e.pos)
            if target == "decimal":
                parsed = with_scale(parsed, self.decimal_scale_text(s))
            return parsed, UType(target, False)
        raise self.err(e.pos, f"{cls}.{name}", f"{cls}.{name}(...) is not supported")

    def _math(self, name: str, e: n.Call, scope: Scope) -> Typed:
        if name in _MATH_UNARY:
            ((s, st),) = self._args(e, scope, (1,), f"Math.{name}")
            typ = _MATH_UNARY[name] or st
            sql = self._math_call(name, s, st)
            if typ.name == "decimal":
                sql = with_scale(sql, scale_of(s) if name == "Abs" else "0" if name in _WHOLE else None)
            return sql, typ
        if name == "Round":
            args = self._args(e, scope, (1, 2), "Math.Round")
            sql = self._round(args, e)
            if args[0][1].name == "decimal":
                sql = with_scale(sql, ds.rounded(scale_of(args[0][0]), args[1][0] if len(args) == 2 else "0"))
            return sql, args[0][1]
        if name in ("Max", "Min"):
            (a, at), (b, bt) = self._args(e, scope, (2,), f"Math.{name}")
            typ = t.promote(at, bt)
            sql = f"{'greatest' if name == 'Max' else 'least'}({a}, {b})"
            if typ.name == "decimal":
                first = f"({a} {'>=' if name == 'Max' else '<='} {b})"
                sql = with_scale(sql, ds.chosen(first, ds.operand_scale(a, at), ds.operand_scale(b, bt)))
            return sql, typ
        if name == "Pow":
            (a, _), (b, _) = self._args(e, scope, (2,), "Math.Pow")
            return f"pow(CAST({a} AS DOUBLE), {b})", t.DOUBLE
        if name == "Log":
            args = self._args(e, scope, (1, 2), "Math.Log")
            if len(args) == 1:
                return f"ln({args[0][0]})", t.DOUBLE
            return f"(ln({args[0][0]}) / ln({args[1][0]}))", t.DOUBLE
        if name == "BigMul":  # Math.BigMul(int a, int b): the full product as a long (it cannot overflow)
            (a, at), (b, bt) = self._args(e, scope, (2,), "Math.BigMul")
            if not all(x.name in ("sbyte", "byte", "short", "ushort", "int") for x in (at, bt)):
                raise self.err(e.pos, "Math.BigMul", f"Math.BigMul takes two int values, not {at} and {bt}")
            return f"(CAST({a} AS BIGINT) * CAST({b} AS BIGINT))", t.LONG
        raise self.err(e.pos, f"Math.{name}", f"Math.{name}(...) is not supported")

    def _math_call(self, name: str, s: str, st: UType) -> str:
        """``Math.<name>(s)`` of one argument, by the dialect's :attr:`~.translator.Translator.MATH_FUNCTIONS`."""
        return f"{self.MATH_FUNCTIONS[name]}({s})"

    def _round(self, args: list[Typed], e: n.Call) -> str:
        """``Math.Round(x[, digits])``: to even, as .NET's default MidpointRounding."""
        return self.render("Math.Round", e.pos, args[0][0], args[1][0] if len(args) == 2 else "0")

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
                return self._tostring(s, st), t.STRING
            if st.name == "DateTime" or st.is_numeric:
                fmt = e.args[0]
                if not (isinstance(fmt, n.Literal) and isinstance(fmt.value, str)):
                    raise self.err(e.pos, "ToString", f"{st.name}.ToString(format) needs a literal format string")
                return self._formatted(s, st, fmt.value, fmt.pos), t.STRING
            raise self.err(e.pos, "ToString", f"{st}.ToString(format) is not supported")
        if name == "Equals":
            need(1)
            return self._not_distinct(s, a[0], False), t.BOOL
        if name == "GetValueOrDefault" and st.nullable:
            need(0, 1)
            default = a[0] if a else self._zero(st.name) if st.name in t.BUILTIN_TYPES else "NULL"
            return f"coalesce({s}, {default})", st.with_nullable(False)
        if st.name == "string":
            return self._string_method(s, name, a, args, e, need)
        if st.name == "DateTime":
            if name in _DATE_ADD:
                need(1)
                return self._date_add(_DATE_ADD[name], s, args[0], e.pos), st
            if name == "ToShortDateString":
                need(0)
                return self.render("DateTime.ToShortDateString", e.pos, s), t.STRING
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
        if (st.name, name) in (("SqlArray", "Contains"), ("SqlArray", "IndexOf"), ("SqlMap", "ContainsKey")):
            need(1)
            return self.render(f"{st.name}.{name}", e.pos, s, a[0]), (t.BOOL if "Contains" in name else t.INT)
        raise self.err(e.pos, name, f"method {st}.{name}(...) is not supported")

    def _date_add(self, unit: str, s: str, value: Typed, pos: n.Pos) -> str:
        """``d.Add<unit>(value)`` (``unit``: Days, ..., Milliseconds, Months, Years)."""
        raise self.unsupported(pos, f"DateTime.Add{unit}", f"DateTime.Add{unit}")

    # ------------------------------------------------------------ strings
    def _string_method(
        self, s: str, name: str, a: list[str], args: list[Typed], e: n.Call, need: Callable[..., None]
    ) -> Typed:
        if name in _STANDARD_STRING_METHODS:
            return self._standard_string_method(s, name, a, need)
        if name in ("Trim", "TrimStart", "TrimEnd"):
            return self._trim(s, name, a), t.STRING
        if name in ("Contains", "StartsWith", "EndsWith"):
            need(1)
            return self.render(f"string.{name}", e.pos, s, a[0], construct=name), t.BOOL
        if name == "Split":
            return self._split(s, args, e)
        if name in ("PadLeft", "PadRight"):
            need(1, 2)
            fn = "lpad" if name == "PadLeft" else "rpad"
            pad = a[1] if len(a) == 2 else "' '"
            width = f"CAST({a[0]} AS {self._type_sql(t.INT)})"  # lpad/rpad take an int width; s.Length + 5 is long
            return f"CASE WHEN {self._length(s)} >= {width} THEN {s} ELSE {fn}({s}, {width}, {pad}) END", t.STRING
        if name == "ToCharArray":
            need(0)
            chars = self._lambda_sql(["usql_c"], f"substring({s}, usql_c + 1, 1)")
            sql = self.render("string.ToCharArray", e.pos, s, chars, construct=name)
            return sql, t.array_of(UType("char", False))
        if name == "CompareTo":
            raise self.err(e.pos, "CompareTo", _CULTURE_COMPARE)
        raise self.err(e.pos, name, f"method string.{name}(...) is not supported")

    @staticmethod
    def _standard_string_method(s: str, name: str, a: list[str], need: Callable[..., None]) -> Typed:
        """The string methods whose SQL is standard: upper, lower, substring, instr, reverse, replace."""
        if name in ("ToUpper", "ToUpperInvariant", "ToLower", "ToLowerInvariant"):
            need(0)
            return f"{'upper' if 'Upper' in name else 'lower'}({s})", t.STRING
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
        if name == "Remove":
            need(1, 2)
            if len(a) == 1:
                return f"substring({s}, 1, {a[0]})", t.STRING
            return f"(substring({s}, 1, {a[0]}) || substring({s}, {a[0]} + {a[1]} + 1))", t.STRING
        need(2)  # Insert
        return f"(substring({s}, 1, {a[0]}) || {a[1]} || substring({s}, {a[0]} + 1))", t.STRING

    def _trim(self, s: str, name: str, chars: list[str]) -> str:
        """``s.Trim/TrimStart/TrimEnd(chars...)`` (no chars: white space)."""
        side = {"Trim": "BOTH", "TrimStart": "LEADING", "TrimEnd": "TRAILING"}[name]
        what = "concat(" + ", ".join(chars) + ")" if chars else self._strlit(" \t\r\n")
        return f"trim({side} {what} FROM {s})"

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
        out = t.array_of(t.STRING)
        seps = self._literal_separators(nodes)
        if seps is None:
            if len(args) != 1 or args[0][1].name not in ("char", "string"):
                raise self.err(e.pos, "Split", "Split needs literal separators (or one char/string separator)")
            sql = self.render("string.Split", e.pos, s, args[0][0], construct="Split")
        elif not seps or "" in seps:
            raise self.err(e.pos, "Split", "Split with no or empty separators (white space splitting) is not supported")
        else:
            sql = self._split_on_literals(s, seps, e.pos)
        if remove_empty:
            sql = self.render("SqlArray.Where", e.pos, sql, self._lambda_sql(["usql_v"], "usql_v <> ''"))
        return sql, out

    def _split_on_literals(self, s: str, seps: list[str], pos: n.Pos) -> str:
        """Split at any of the literal separators (the first matching at a position wins, as in .NET)."""
        # re.escape escapes only non-alphanumerics, which RE2 and Java's regex read as literals too
        return self.render("string.SplitRegex", pos, s, self._strlit("|".join(re.escape(x) for x in seps)))

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
            if at.name == "SqlMap" or elem.name in _NOT_JOINED:
                raise self.err(e.pos, "string.Join", f"string.Join of {at} is not supported; Select strings first")
            if elem.name not in ("string", "char", "unknown"):
                arr = self.render(
                    "SqlArray.Select", e.pos, arr, self._lambda_sql(["usql_j"], self._tostring("usql_j", elem))
                )
            return self._array_join(arr, sep, e.pos)
        parts = ", ".join(f"coalesce({self._concat_arg(s, ty)}, '')" for s, ty in values)
        return f"concat_ws({sep}, {parts})"

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

    # ------------------------------------------------------------ formats
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
            value = f"coalesce({self._formatted(s, st, spec, fmt.pos) if spec else self._tostring(s, st)}, '')"
            if align:
                fn = "lpad" if align > 0 else "rpad"
                width = abs(align)
                value = f"CASE WHEN {self._length(value)} >= {width} THEN {value} ELSE {fn}({value}, {width}, ' ') END"
            parts.append(value)
        return "concat(" + ", ".join(parts or ["''"]) + ")"

    def _formatted(self, s: str, st: UType, spec: str, pos: n.Pos) -> str:
        """``value.ToString(spec)``: DateTime custom/standard formats, numeric formats."""
        try:
            if st.name == "DateTime":
                return self._format_datetime(s, spec, pos)
            if st.is_numeric:
                return self._format_number(s, st, spec, pos)
        except FormatError as ex:
            raise self.err(pos, "format", str(ex)) from None
        raise self.err(pos, "format", f"format strings for {st} values are not supported")

    def _format_datetime(self, s: str, spec: str, pos: n.Pos) -> str:
        """``d.ToString(spec)`` of a C# DateTime format (raises FormatError for a format .NET rejects)."""
        raise self.unsupported(pos, "format", "DateTime formats")

    def _format_number(self, s: str, st: UType, spec: str, pos: n.Pos) -> str:
        """``x.ToString(spec)`` of a .NET numeric format (raises FormatError for a format .NET rejects)."""
        raise self.unsupported(pos, "format", f"{st} format {spec!r}")

    # ------------------------------------------------------------ DateTime and TimeSpan
    def _date_static_call(self, cls: str, name: str, e: n.Call, scope: Scope) -> Typed | None:
        """``DateTime.SpecifyKind/Compare/DaysInMonth/IsLeapYear``, ``TimeSpan.FromX``; None for other methods."""
        unit = name.removeprefix("From")
        if cls == "TimeSpan" and (unit in ("Days", "Hours", "Minutes", "Seconds", "Milliseconds", "Ticks")):
            ((x, _),) = self._args(e, scope, (1,), f"TimeSpan.{name}")
            return self._timespan_from(unit, x, e), TIMESPAN
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

    def _timespan_from(self, unit: str, x: str, e: n.Call) -> str:
        """``TimeSpan.From<unit>(x)``."""
        raise self.unsupported(e.pos, "TimeSpan", "TimeSpan values")

    def _compare(self, a: str, at: UType, b: str, bt: UType, e: n.Call) -> Typed:
        """``Compare(a, b)`` / ``a.CompareTo(b)`` of DateTimes or TimeSpans: -1, 0 or 1."""
        if at.name == bt.name == "string":
            raise self.err(e.pos, "Compare", _CULTURE_COMPARE)
        if at.name != bt.name or at.name not in ("DateTime", "TimeSpan"):
            raise self.err(e.pos, "Compare", f"Compare of {at} and {bt} is not supported")
        return self._compare_sql(a, at, b, bt), t.INT

    @staticmethod
    def _compare_sql(a: str, at: UType, b: str, bt: UType) -> str:
        """-1, 0 or 1 as ``a`` is before, at or after ``b`` (NULL if either is null)."""
        return f"CASE WHEN {a} < {b} THEN -1 WHEN {a} > {b} THEN 1 WHEN {a} = {b} THEN 0 END"

    # ------------------------------------------------------------ constructors
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
                return self._array_literal(e.initializer, elem, scope, e.pos), t.array_of(elem)
        raise self.err(e.pos, f"new {name}", f"new {name}(...) is not supported")

    def _new_timespan(self, e: n.New, args: list[Typed]) -> Typed:
        """``new TimeSpan(ticks)``, ``(h, m, s)``, ``(d, h, m, s[, ms])``."""
        raise self.unsupported(e.pos, "TimeSpan", "TimeSpan values")

    def _new_pair(self, e: n.New, args: list[Typed]) -> Typed:
        """``new KeyValuePair<K,V>(k, v)``."""
        raise self.unsupported(e.pos, "KeyValuePair", "KeyValuePair values (LINQ over SqlMap entries)")

    def _array_literal(self, items: tuple[tuple[n.Expr, ...], ...], elem: UType, scope: Scope, pos: n.Pos) -> str:
        """An array of the values ``items`` (one expression each), converted to ``elem``."""
        et = self._type_sql(elem)
        values = ", ".join(f"CAST({self.tr(x, scope)[0]} AS {et})" for (x,) in items)
        return self.render("SqlArray.literal", pos, values, self._type_sql(t.array_of(elem)))

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
                    return self.render("SqlMap.FromPairs", e.pos, args[0][0], self._type_sql(typ)), typ
                raise self.err(e.pos, "SqlMap", "new SqlMap<K,V>(...) takes another SqlMap, a sequence of "
                               "KeyValuePair<K,V> (x.Select(p => new KeyValuePair<K,V>(k, v))) or an initializer "
                               "{{k, v}, ...}")  # fmt: skip
            if not init:
                return self.render("SqlMap.empty", e.pos, self._type_sql(typ)), typ
            if any(len(item) != 2 for item in init):
                raise self.err(e.pos, "SqlMap", "each entry of new SqlMap<K,V>{...} is a pair {key, value}")
            kt, vt = self._type_sql(typ.key or t.STRING), self._type_sql(elem)
            pairs = [
                (f"CAST({self.tr(k, scope)[0]} AS {kt})", f"CAST({self.tr(v, scope)[0]} AS {vt})") for k, v in init
            ]
            return self._map_literal(pairs), typ
        if init is not None:
            if args or any(len(item) != 1 for item in init):
                raise self.err(e.pos, "SqlArray", "new SqlArray<T>{a, b, ...} takes one value per element")
            return self._array_literal(init, elem, scope, e.pos), typ
        if not args:
            return self._array_literal((), elem, scope, e.pos), typ
        if len(args) == 1 and args[0][1].name == "SqlArray":
            arg_elem = args[0][1].element
            if arg_elem is None or arg_elem.name in (elem.name, "unknown"):
                return args[0][0], typ
            return f"CAST({args[0][0]} AS {self._type_sql(typ)})", typ
        raise self.err(e.pos, "SqlArray", "new SqlArray<T>(x) needs an array such as s.Split(';')")

    @staticmethod
    def _map_literal(pairs: list[tuple[str, str]]) -> str:
        """A map of the (key, value) SQL pairs."""
        return "map(" + ", ".join(f"{k}, {v}" for k, v in pairs) + ")"
