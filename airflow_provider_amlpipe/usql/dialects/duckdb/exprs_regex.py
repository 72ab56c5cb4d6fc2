""".NET regular expressions (System.Text.RegularExpressions.Regex) as RE2."""

from __future__ import annotations

import re

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.csformat import FormatError
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed
from airflow_provider_amlpipe.usql.translator import Translator

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


class RegexCalls(Translator):
    """DuckDB's static Regex methods (IsMatch, Replace, Split, Match), as RE2 patterns."""

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
            return f"regexp_split_to_array({s}, {pattern})", t.array_of(t.STRING)
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
