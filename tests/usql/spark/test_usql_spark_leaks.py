"""No DuckDB SQL in Spark output: one case per member the DuckDB translator knows; each translates to SQL Spark
evaluates to DuckDB's value (slow, on a local SparkSession), or is refused.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from support.spark import SparkRig
from support.sparktools import NOT_SPARK, run_both, spark

from airflow_provider_amlpipe.usql import UsqlError, compile_script, translate_to_spark

# ---------------------------------------------------------------- no DuckDB SQL leaks into Spark output
# The dialect-neutral translator dispatches each C# member to the dialect's SQL: a member whose Spark SQL were
# DuckDB's would be wrong. Each case below is a branch of the neutral translator (_static_member, _property,
# _static_call, _convert, _math, _method, _string_method, _sql_function, _aggregate); each must translate to SQL
# that Spark evaluates to DuckDB's value, or be refused.

LEAK_DATA = (
    '1,"Ann;Lee",3,2001-02-03 04:05:06.25,2.5,1.25,true,a\n'
    '2,"  bob ",,1999-12-31 23:59:59,-3.75,10,false,a\n'
    "3,Cy,7,2020-02-29 12:00:00,0.5,0.5,true,b\n"
)
LEAK_PRE = (
    "@p = EXTRACT id int, s string, n int?, d DateTime, x double, m decimal, b bool, g string\n"
    '     FROM "p.csv" USING Extractors.Csv();\n'
    "@q = SELECT id, s, n, d, x, m, b, g, new SqlArray<string>(s.Split(';')) AS arr,\n"
    '            new SqlMap<string, int>{{"k", 1}, {g, id}} AS mp FROM @p;\n'
)
ROW_CASES = [
    # _static_member
    "Math.PI", "Math.E", "DateTime.Now > new DateTime(2000, 1, 1)", "DateTime.UtcNow.Year > 2000",
    "DateTime.Today <= DateTime.Now", "DateTime.MinValue", "DateTime.MaxValue", "string.Empty", "String.Empty",
    "int.MaxValue", "long.MinValue", "Int16.MaxValue", "byte.MaxValue",
    # _property
    "s.Length", "d.Year", "d.Month", "d.Day", "d.Hour", "d.Minute", "d.Second", "d.Millisecond", "d.DayOfYear",
    "d.Date", "d.Ticks", "n.HasValue", "n.Value", "arr.Count", "mp.Count", 'string.Join(",", mp.Keys)',
    'string.Join(",", mp.Values)',
    # _static_call, _convert
    "string.IsNullOrEmpty(s)", "string.IsNullOrWhiteSpace(s)", "string.Concat(s, n, x)", 'string.Join("-", arr)',
    "SqlArray.Create(s.Split(';')).Count", "Convert.ToInt32(x)", 'Convert.ToInt64("12")', "Convert.ToInt16(m)",
    "Convert.ToByte(3.5)", 'Convert.ToDouble("1.5")', "Convert.ToSingle(id)", 'Convert.ToDecimal("2.5")',
    "Convert.ToBoolean(id)", 'Convert.ToDateTime("2020-01-02")', "Convert.ToDateTime(d)", "Convert.ToDateTime(id)",
    "Convert.ToString(x)", "Convert.ToString(b)", 'int.Parse(" 42 ")', 'Int64.Parse("-7")', 'short.Parse("12")',
    'byte.Parse("255")', 'double.Parse("2.5")', 'float.Parse("0.25")', 'decimal.Parse("3.75")', 'bool.Parse("True")',
    'DateTime.Parse("2020-01-02 03:04:05")', 'Guid.Parse("6F9619FF-8B86-D011-B42D-00C04FC964FF")',
    'sbyte.Parse("-128")', 'UInt16.Parse("65535")', 'uint.Parse(" 4294967295")', 'ulong.Parse("18446744073709551615")',
    'int.TryParse("1")',
    # _math
    "Math.Abs(x)", "Math.Ceiling(x)", "Math.Floor(x)", "Math.Truncate(x)", "Math.Sign(x)", "Math.Sqrt(id)",
    "Math.Exp(x)", "Math.Log(id)", "Math.Log(id, 2)", "Math.Log10(id)", "Math.Sin(x)", "Math.Cos(x)", "Math.Tan(x)",
    "Math.Max(id, 2)", "Math.Min(x, 1.0)", "Math.Pow(x, 2)", "Math.Round(x)", "Math.Round(m, 1)",
    "Math.Round(x, id)",
    # _method, _string_method
    "x.ToString()", "d.ToString()", "b.ToString()", "m.ToString()", 'd.ToString("yyyy-MM-dd HH:mm:ss.fff tt")',
    'x.ToString("F2")', 's.Equals("Cy")', "n.GetValueOrDefault()", "n.GetValueOrDefault(5)", "d.AddDays(1.5)",
    "d.AddHours(-2)", "d.AddMinutes(30)", "d.AddSeconds(0.5)", "d.AddMilliseconds(250)", "d.AddMonths(1)",
    "d.AddYears(1)", "d.ToShortDateString()", 'arr.Contains("Lee")', 'arr.IndexOf("Lee")', 'mp.ContainsKey("k")',
    "s.ToUpper()", "s.ToUpperInvariant()", "s.ToLower()", "s.ToLowerInvariant()", "s.Trim()", "s.Trim('A', 'e')",
    "s.TrimStart()", "s.TrimEnd()", 's.Contains("o")', 's.StartsWith("A")', 's.EndsWith(" ")', "s.Substring(1)",
    "s.Substring(1, 2)", 's.IndexOf("e")', 's.LastIndexOf("e")', 's.Replace("e", "E")', "s.Split(';')[0]",
    "s.Split(';', ',')[0]", "s.Split(';', ' ')[1]", 's.Split(new string[]{"e"}, StringSplitOptions.None).Count',
    "string.Join(\"/\", s.Split(new char[]{';', ' '}, StringSplitOptions.RemoveEmptyEntries))",
    "s.PadLeft(8)", "s.PadRight(8, '*')", "s[0]",
    # string.Join / String.Format (_string_join, _string_format, _formatted), arrays, KeyValuePair, LINQ
    'String.Format("{0}-{1,4}:{2,-6}:{3:yyyy-MM-dd HH}:{{x}}", s, id, b, d)', 'string.Format("{0} {1}", x, n)',
    'String.Format("{0:F2}", x)', 'string.Join("-", new string[]{"a", s})', 'string.Join("/", id, s, n)',
    'x.ToString("0.00")', 'id.ToString("#,##0")', 'String.Format("{0:0.0%}", m)',  # custom numeric formats
    'new KeyValuePair<string, int>("a", 1).Key', 'string.Join(",", mp.Select(p => p.Key))',
    # DayOfWeek, DateTimeKind, double constants, Compare, TimeSpan, Guid.NewGuid
    "d.DayOfWeek", "d.DayOfWeek == DayOfWeek.Saturday", '"" + d.DayOfWeek', "DateTime.SpecifyKind(d, DateTimeKind.Utc)",
    "new DateTime(2020, 1, 2, 3, 4, 5, 250, DateTimeKind.Local)", "new DateTime(2020, 1, 2, DateTimeKind.Unspecified)",
    "double.NaN", "Double.PositiveInfinity", "double.NegativeInfinity", "DateTime.Compare(d, d.AddDays(1))",
    "d.CompareTo(DateTime.MinValue)", "TimeSpan.Zero.TotalDays", "d.TimeOfDay.TotalHours", "(d - d).Negate().Ticks",
    "d.Subtract(d).Duration().TotalMinutes", "d.Add(TimeSpan.FromDays(1))", "Guid.NewGuid()",
    # _new_collection with U-SQL's other spellings of the complex types
    "new SQL.ARRAY<int>{1, 2}.Count", 'new SQL.MAP<string, int>{{"a", 1}}.Count',
    # members of the reference's "C# Functions and Operators" page
    's.IndexOf("e", 1)', 's.IndexOf("e", 1, 2)', 's.LastIndexOf("e", 2)', 's.LastIndexOf("")', "s.Remove(1)",
    "s.Remove(1, 1)", 's.Insert(1, "-")', "s.ToCharArray()[0]", "s.PadLeft(s.Length + 2, '.')", "String.Concat(arr)",
    'String.CompareOrdinal(s, "Cy")', "string.CompareOrdinal(s, 0, g, 0, 1)", "Math.BigMul(id, 2147483647)",
    "DateTime.DaysInMonth(2016, id + 1)", "DateTime.IsLeapYear(d.Year)",
    # T-SQL null functions (U-SQL Winter 2017/18)
    "COALESCE(n, NULL, id)", "ISNULL(n, x)", 'NULLIF(s, "Cy")', "NULLIF(n, null)",
]  # fmt: skip
AGG_CASES = [
    "COUNT(*)", "COUNT(n)", "COUNT(DISTINCT b)", "SUM(n)", "SUM(x)", "SUM(m)", "AVG(n)", "AVG(x)", "AVG(m)",
    "MIN(d)", "MAX(s)", "ANY_VALUE(g)", "STDEV(x)", "STDEVP(x)", "VAR(x)", "VARP(x)", "FIRST(g)", "LAST(g)",
    'string.Join("+", ARRAY_AGG(g))', "MAP_AGG(s, id).Count", 'string.Join("+", ARRAY_AGG<string>(s))',
    "ARRAY_AGG<long>(n).Count", "MAP_AGG<string, double>(s, id).Count",
]  # fmt: skip
WINDOW_CASES = [
    "ROW_NUMBER() OVER (ORDER BY id)", "RANK() OVER (PARTITION BY g ORDER BY b)", "DENSE_RANK() OVER (ORDER BY g)",
    "NTILE(2) OVER (ORDER BY id)", "LAG(id) OVER (ORDER BY id)", "LEAD(s) OVER (ORDER BY id)",
    "FIRST_VALUE(s) OVER (PARTITION BY g ORDER BY id)", "LAST_VALUE(id) OVER (ORDER BY id)",
    "CUME_DIST() OVER (ORDER BY id)", "PERCENT_RANK() OVER (ORDER BY id)", "SUM(x) OVER (PARTITION BY g)",
    "COUNT(*) OVER ()", "MAP_AGG(s, id) OVER (PARTITION BY g).Count",
    'string.Join("+", ARRAY_AGG(id) OVER (ORDER BY id))',  # DuckDB's array_to_string skips null elements
    "PERCENTILE_CONT(0.3) WITHIN GROUP (ORDER BY x DESC) OVER (PARTITION BY g)",
    "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY n) OVER ()",
    "PERCENTILE_DISC(0.7) WITHIN GROUP (ORDER BY x DESC) OVER (PARTITION BY g)",
    "PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY n) OVER ()", "PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY m) OVER ()",
    "SUM(n) OVER (PARTITION BY b ORDER BY g)", "COUNT(*) OVER (ORDER BY g, id)",  # the default ROWS frame
    "LAST_VALUE(id) OVER (PARTITION BY g ORDER BY id)",
]  # fmt: skip
#: DuckDB translates these, Spark refuses them (docs/usql-spark.md, "Refused").
SPARK_ONLY_REFUSES = {
    "d.Ticks", "Math.Round(x, id)", "Convert.ToDateTime(id)", "MAP_AGG(s, id) OVER (PARTITION BY g).Count",
    "PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY m) OVER ()", 'x.ToString("F2")', 'String.Format("{0:F2}", x)',
    'new KeyValuePair<string, int>("a", 1).Key', 'string.Join(",", mp.Select(p => p.Key))', "TimeSpan.Zero.TotalDays",
    "d.TimeOfDay.TotalHours", "(d - d).Negate().Ticks", "d.Subtract(d).Duration().TotalMinutes",
    "d.Add(TimeSpan.FromDays(1))", "s.ToCharArray()[0]", 'x.ToString("0.00")', 'id.ToString("#,##0")',
    'String.Format("{0:0.0%}", m)',
}  # fmt: skip
#: Function names of DuckDB SQL that must not appear in Spark output.
DUCKDB_ONLY = re.compile(
    r"\b(list_contains|list_position|string_split|strftime|round_even|epoch_us|to_microseconds|to_months|to_years|"
    r"array_to_string|usql_fmt_real|usql_fmt_decimal|usql_parse_datetime|usql_int_text|usql_required|regexp_full_match|"
    r"map_contains|starts_with|ends_with|unicode|date_trunc|make_timestamp|exp\(1\)|xor|len|list|quantile_cont|"
    r"quantile_disc|row)\(|::|//|IS (NOT )?DISTINCT FROM|TIMESTAMP '|HUGEINT|UBIGINT|VARCHAR|\[\]"
)


def leak_script(row: list[tuple[int, str]], agg: list[tuple[int, str]], win: list[tuple[int, str]]) -> str:
    """A script computing each case ``(i, expr)`` as column ``c<i>``: per row, per group of g, as a window."""
    parts = [LEAK_PRE]
    for name, key, cases, tail in (("row", "id", row, ""), ("agg", "g", agg, " GROUP BY g"), ("win", "id", win, "")):
        if cases:
            items = ", ".join(f"{expr} AS c{i}" for i, expr in cases)
            parts.append(f"@{name} = SELECT {key}, {items} FROM @q{tail};\n"
                         f'OUTPUT @{name} TO "out/{name}.txt" ORDER BY {key} '
                         "USING Outputters.Text(delimiter: '|');\n")  # fmt: skip
    return "".join(parts)


def leak_cases() -> list[tuple[str, list[tuple[int, str]], list[tuple[int, str]], list[tuple[int, str]]]]:
    """(expression, row, agg, win): each case alone, as leak_script's arguments."""
    out = []
    for i, expr in enumerate([*ROW_CASES, *AGG_CASES, *WINDOW_CASES]):
        one = [(i, expr)]
        kind = 0 if expr in ROW_CASES else 1 if expr in AGG_CASES else 2
        out.append((expr, *(one if k == kind else [] for k in range(3))))
    return out  # type: ignore[return-value]


def test_leak_cases_cover_the_duckdb_translator() -> None:
    """Every C# member name the DuckDB translator dispatches on has a case (so a new branch needs one)."""
    import ast
    import inspect

    from airflow_provider_amlpipe.usql import translate_base, translate_calls, translate_ops

    methods = {"_static_member", "_property", "_static_call", "_convert", "_math", "_method", "_string_method",
               "_sql_function", "_aggregate"}  # fmt: skip
    names = set(translate_ops.AGGREGATES) | set(translate_ops.WINDOW_ONLY) | set(translate_calls._CONVERT)
    source = "\n".join(inspect.getsource(m) for m in (translate_base, translate_calls, translate_ops))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name in methods:
            names |= {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)
                      and re.fullmatch(r"[A-Z][A-Za-z0-9_]*", c.value)}  # fmt: skip
    cases = " ".join([*ROW_CASES, *AGG_CASES, *WINDOW_CASES])
    not_members = {"NULL", "Upper", "EXPLODE", "String", "SqlMap", "Infinity"}  # SQL text, name fragments, errors
    missing = sorted(x for x in names - not_members if not re.search(rf"\b{x}\b", cases))
    assert not missing, f"no leak case uses {missing}"
    parse_targets = set(translate_base._PARSE_TARGET.values())
    parsed = {translate_base._PARSE_TARGET[m.group(1)] for m in re.finditer(r"\b(\w+)\.Parse\(", cases)}
    assert parse_targets <= parsed, f"no T.Parse case for {sorted(parse_targets - parsed)}"


def test_no_duckdb_sql_leaks_into_spark(tmp_path: Path) -> None:
    """Each case translates to Spark SQL without DuckDB functions, or is refused; only the listed ones are refused
    by Spark alone."""
    (tmp_path / "p.csv").write_text(LEAK_DATA)
    spark_refuses = set()
    for expr, row, agg, win in leak_cases():
        text = leak_script(row, agg, win)
        try:
            sql = spark(text)
        except UsqlError as e:
            try:
                compile_script(text, base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
            except UsqlError:
                continue  # refused on both paths
            assert NOT_SPARK in e.message, e.render()
            spark_refuses.add(expr)
            continue
        leak = DUCKDB_ONLY.search(sql)
        assert leak is None, f"{expr}: DuckDB SQL {leak.group(0)!r} in the Spark translation:\n{sql}"
    assert spark_refuses == SPARK_ONLY_REFUSES


def same_value(spark_text: str, duck_text: str) -> bool:
    """Equal texts, or doubles one rounding apart: Math.Sin/Exp/Log come from Java's and C's math libraries, and a
    one-ulp difference can move the 15th significant digit of the printed text (G15, as .NET Framework prints)."""
    if spark_text == duck_text:
        return True
    try:
        a, b = float(spark_text), float(duck_text)
    except ValueError:
        return False
    return "." in spark_text and math.isclose(a, b, rel_tol=1e-14)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_expression_cases_evaluate_like_duckdb(spark_rig: SparkRig, tmp_path: Path) -> None:
    """All cases Spark translates, in one script per kind: Spark computes the values DuckDB computes."""
    case = tmp_path / "leaks"
    case.mkdir()
    (case / "p.csv").write_text(LEAK_DATA)
    kept: list[list[tuple[int, str]]] = [[], [], []]
    for _, *kinds in leak_cases():
        try:
            translate_to_spark(leak_script(*kinds))
            compile_script(leak_script(*kinds), base_dir=case, catalog_dir=tmp_path / "catalog")
        except UsqlError:
            continue
        for k in range(3):
            kept[k] += kinds[k]
    exprs = dict(kept[0] + kept[1] + kept[2])
    assert len(exprs) > 120
    outputs = run_both(spark_rig, case, leak_script(*kept), tmp_path)
    differ = []
    for rel, (got, want) in outputs.items():
        cases = kept[["out/row.txt", "out/agg.txt", "out/win.txt"].index(str(rel))]
        assert len(got) == len(want), f"{rel}: {got} vs {want}"
        for got_line, want_line in zip(got[:-1], want[:-1], strict=True):  # the last line ends in \r\n
            pairs = zip(got_line.split("|")[1:], want_line.split("|")[1:], strict=True)
            differ += [f"{exprs[i]}: Spark {g!r}, DuckDB {w!r}" for (i, _), (g, w) in zip(cases, pairs, strict=True)
                       if not same_value(g, w)]  # fmt: skip
    assert not differ, "\n".join(differ)
