"""C# in expressions: LINQ lambdas over SqlArray/SqlMap, String.Format, Regex, DateTime/TimeSpan.

Each test runs a small script and checks the exact output bytes; expected values are worked out by hand from
.NET semantics (System.Linq.Enumerable, composite formatting, System.Text.RegularExpressions, TimeSpan).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script


def run(select: str, tmp_path: Path, source: str = "@a", order: str = "") -> str:
    """Runs ``@r = SELECT <select> FROM <source>;`` over a small input and returns the CSV output."""
    text = (
        '@a = SELECT * FROM (VALUES (1, "a;bb;;ccc"), (2, "x"), (3, (string) null)) AS T(id, s);\n'
        "@b = SELECT id, new SqlArray<string>(s.Split(';')) AS arr FROM @a WHERE s != null;\n"
        f"@r = SELECT {select} FROM {source};\n"
        f'OUTPUT @r TO "out/r.csv" {order} USING Outputters.Csv();\n'
    )
    run_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    return (tmp_path / "out" / "r.csv").read_bytes().decode("utf-8")


def err(select: str, tmp_path: Path) -> UsqlError:
    text = (
        '@a = SELECT * FROM (VALUES (1, "a;b", new DateTime(2024, 1, 1))) AS T(id, s, d);\n'
        f"@r = SELECT {select} FROM @a;\n"
        'OUTPUT @r TO "out/r.csv" USING Outputters.Csv();\n'
    )
    with pytest.raises(UsqlError) as info:
        compile_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    return info.value


# ---------------------------------------------------------------- LINQ
def test_select_where_and_index_lambdas(tmp_path: Path) -> None:
    # the lambda parameter shadows the column s; id is captured from the row; (p, i) gets the 0-based index
    out = run(
        'id, string.Join("|", arr.Select(s => s.ToUpper() + id)) AS up, '
        'string.Join("|", arr.Where((p, i) => p.Length > 0 && i > 0)) AS w, '
        'string.Join("|", arr.Select((p, i) => i + ":" + p)) AS ix',
        tmp_path,
        "@b",
        "ORDER BY id",
    )
    assert out == '1,"A1|BB1|1|CCC1","bb|ccc","0:a|1:bb|2:|3:ccc"\r\n2,"X2","","0:x"\r\n'


def test_quantifiers_counts_and_elements(tmp_path: Path) -> None:
    # arr = a, bb, "", ccc: Any() true; Any(== "x") false; All(Length < 4) true; Count 4; Count(== "") 1;
    # First "a"; Last "ccc"; FirstOrDefault(Length > 5) null (string); lengths' FirstOrDefault(> 5) 0 (int)
    out = run(
        'id, arr.Any() AS a, arr.Any(p => p == "x") AS ax, arr.All(p => p.Length < 4) AS al, arr.Count() AS c, '
        'arr.Count(p => p == "") AS ce, arr.LongCount() AS lc, arr.First() AS f, arr.Last() AS l, '
        "arr.FirstOrDefault(p => p.Length > 5) AS fd, arr.Select(p => p.Length).FirstOrDefault(n => n > 5) AS fz, "
        'arr.Where(p => p != "").Last(p => p.Length < 3) AS lp',
        tmp_path,
        "@b",
        "ORDER BY id",
    )
    assert out == '1,True,False,True,4,1,4,"a","ccc",,0,"bb"\r\n2,True,True,True,1,0,1,"x","x",,0,"x"\r\n'


def test_first_of_an_empty_sequence_fails_at_run_time(tmp_path: Path) -> None:
    # .NET: InvalidOperationException "Sequence contains no elements"
    with pytest.raises(UsqlError) as info:
        run('arr.First(p => p == "zz") AS f', tmp_path, "@b")
    assert info.value.construct == "runtime" and "Sequence contains no elements" in info.value.message


def test_aggregates(tmp_path: Path) -> None:
    # lengths 1 2 0 3: Sum 6, Min 0, Max 3, Average 1.5; of an empty Where: Sum 0, Min/Max of int? null
    out = run(
        "id, arr.Select(p => p.Length).Sum() AS s, arr.Min(p => p.Length) AS mn, arr.Max(p => p.Length) AS mx, "
        'arr.Average(p => p.Length) AS av, arr.Where(p => p == "q").Sum(p => p.Length) AS s0, '
        'arr.Where(p => p == "q").Max(p => (int?) p.Length) AS m0, arr.Sum(p => p.Length * 1.5) AS sd',
        tmp_path,
        "@b",
        "ORDER BY id",
    )
    assert out == "1,6,0,3,1.5,0,,9\r\n2,1,1,1,1,0,,1.5\r\n"


def test_distinct_order_skip_take_reverse(tmp_path: Path) -> None:
    # Distinct keeps first occurrences in order; OrderBy is stable with null keys first; OrderByDescending puts
    # null keys last and keeps equal keys in their order
    text = (
        "new SqlArray<int?>{3, 1, null, 3, 2, 1}.Distinct() AS d0, "
        "new SqlArray<int>{30, 11, 22, 13}.OrderBy(x => x % 10 == 1) AS o, "
        "new SqlArray<int?>{2, null, 5, 1}.OrderBy(x => x) AS on, "
        "new SqlArray<int?>{2, null, 5, 1}.OrderByDescending(x => x) AS od, "
        "new SqlArray<int>{10, 21, 11, 20}.OrderByDescending(x => x / 10) AS st, "
        "new SqlArray<int>{1, 2, 3, 4}.Skip(1).Take(2) AS sk, new SqlArray<int>{1, 2, 3}.Skip(-1).Take(9) AS all, "
        "new SqlArray<int>{1, 2, 3}.Reverse().ToArray() AS rv"
    )
    cols = ["d0", "o", "on", "od", "st", "sk", "all", "rv"]
    joined = ", ".join(f'string.Join(",", {c}) AS {c}' for c in cols)
    out = run(joined, tmp_path, f"(SELECT {text} FROM @a WHERE id == 1) AS t")
    assert out == '"3,1,,2","30,22,13,11",",1,2,5","5,2,1,","21,20,10,11","2,3","1,2,3","3,2,1"\r\n'


def test_map_entries_and_key_value_pairs(tmp_path: Path) -> None:
    # SqlMap from a sequence of KeyValuePair; its entries have Key and Value; LINQ query syntax desugars to
    # Where/Select
    text = (
        '@a = SELECT * FROM (VALUES (1, "home:123,work:456,:0"), (2, "cell:9")) AS T(id, s);\n'
        "@m = SELECT id, new SQL.MAP<string, int>(s.Split(',').Where(p => !p.StartsWith(\":\"))"
        ".Select(p => new KeyValuePair<string, int>(p.Split(':')[0], int.Parse(p.Split(':')[1])))) AS m,\n"
        "  new SqlMap<string, string>(from p in s.Split(',') where p.Length > 2 select "
        "new KeyValuePair<string, string>(p, p.ToUpper())) AS q FROM @a;\n"
        '@r = SELECT id, string.Join(";", m.Select(p => String.Format("{0}={1}", p.Key, p.Value))) AS kv,\n'
        "  m.Where(p => p.Value > 200).Count() AS big, m.Sum(p => p.Value) AS total, q.Count AS qn,\n"
        '  string.Join(",", m.OrderByDescending(p => p.Value).Select(p => p.Key)) AS bykey FROM @m;\n'
        'OUTPUT @r TO "out/r.csv" ORDER BY id USING Outputters.Csv();\n'
    )
    run_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    out = (tmp_path / "out" / "r.csv").read_bytes().decode()
    assert out == '1,"home=123;work=456",1,579,2,"work,home"\r\n2,"cell=9",0,9,1,"cell"\r\n'


def test_string_join_uses_tostring_and_empty_for_null(tmp_path: Path) -> None:
    # .NET string.Join: each element's ToString(), null elements as "", and the params form
    out = run(
        'string.Join(",", new SqlArray<bool>{true, false}) AS b, string.Join("-", new SqlArray<string>{"a", null, '
        '"c"}) AS n, string.Join("/", 1, "x", 2.5) AS p, string.Join(",", new SqlArray<double>{0.5, 100}) AS d',
        tmp_path,
        "@a WHERE id == 1",
    )
    assert out == '"True,False","a--c","1/x/2.5","0.5,100"\r\n'


@pytest.mark.parametrize(
    ("select", "construct", "fragment"),
    [
        ("s.Split(';').Select(p => { return p; }) AS x", "lambda", "statement lambdas"),
        ('((Func<string, bool>)(p => p == ""))(s) AS x', "delegate", "delegate casts"),
        ("(p => p) AS x", "lambda", "only supported as the argument of a LINQ method"),
        ("s.Split(';').Where(p => p.Length) AS x", "lambda", "must return bool"),
        ("s.Split(';').OrderBy(p => p) AS x", "OrderBy", "culture-sensitively"),
        ("s.Split(';').Max() AS x", "Max", "culture-sensitively"),
        ("s.Split(';').Select(p => new KeyValuePair<string, int>(p, 1)) AS x", "type", "KeyValuePair"),
        ("s.Split(';').Select(p => p).Zip(1) AS x", "Zip", "not supported"),
    ],
)
def test_lambda_errors(select: str, construct: str, fragment: str, tmp_path: Path) -> None:
    e = err(select, tmp_path)
    assert (e.line, e.construct, fragment in e.message) == (2, construct, True), e


# ---------------------------------------------------------------- String.Format
def test_string_format(tmp_path: Path) -> None:
    # {{ }} escapes, alignment (right/left, never truncating), null argument as "", D/X/F/N formats (.NET
    # Framework: a double is rounded to 15 significant digits first, so 2.675 -> 2.68; decimals round half away
    # from zero), DateTime custom formats
    text = (
        'String.Format("{0}:{1} {{x}} [{2,5}] [{2,-5}] [{1,2}] {3:F2} {4:N2} {5:D5} {2:X} {2:x4}", id, "abc", -42, '
        '2.675, 1234567.125m, -42) AS f, string.Format("{0}|{1:N0}|{2:F0}|{3:F1}|{4:yyyy-MM-dd HH:mm}", '
        '(int?) null, -42000, -2.5m, -0.001, new DateTime(2024, 3, 5, 14, 7, 9)) AS g, (255).ToString("X4") AS h, '
        '2.5.ToString("N3") AS k'
    )
    out = run(text, tmp_path, "@a WHERE id == 1")
    assert out == (
        '"1:abc {x} [  -42] [-42  ] [abc] 2.68 1,234,567.13 -00042 FFFFFFD6 ffffffd6",'
        '"|-42,000|-3|0.0|2024-03-05 14:07","00FF","2.500"\r\n'
    )


@pytest.mark.parametrize(
    ("select", "fragment"),
    [
        ('String.Format("{1}", id) AS x', "has no argument"),
        ('String.Format("{0", id) AS x', "malformed format item"),
        ('String.Format("a}b", id) AS x', "'}}'"),
        ("String.Format(s, id) AS x", "literal format string"),
        ('String.Format("{0:E2}", 1.5) AS x', "not supported"),
        ('String.Format("{0:X}", 1.5) AS x', "only for integral types"),
    ],
)
def test_string_format_errors(select: str, fragment: str, tmp_path: Path) -> None:
    e = err(select, tmp_path)
    assert (e.line, fragment in e.message) == (2, True), e


# ---------------------------------------------------------------- Regex
def test_regex(tmp_path: Path) -> None:
    # Match of no match: Value "" and Success false; Replace with $1 and $$; \d is Unicode (Arabic-Indic three);
    # $ also matches before a final newline; Split keeps the trailing empty entry
    text = (
        '@a = SELECT * FROM (VALUES (1, "Order 123 shipped 45"), (2, "none"), (3, "ABC-9\\n"), (4, "x\u0663")) '
        "AS T(id, s);\n"
        '@r = SELECT id, Regex.IsMatch(s, @"\\d+") AS m, '
        'System.Text.RegularExpressions.Regex.IsMatch(s, "^abc", RegexOptions.IgnoreCase) AS ic, '
        'Regex.Replace(s, @"(\\d+)", "<$1>$$") AS rep, Regex.Match(s, @"\\d+").Value AS v, '
        'Regex.Match(s, @"(\\w+) (\\d+)").Groups[2].Value AS g, Regex.Match(s, "e").Success AS ok, '
        'string.Join("|", Regex.Split(s, @"\\s+")) AS sp, Regex.IsMatch(s, @"\\d$") AS endnl FROM @a;\n'
        'OUTPUT @r TO "out/r.csv" ORDER BY id USING Outputters.Csv();\n'
    )
    run_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    assert (tmp_path / "out" / "r.csv").read_bytes().decode() == (
        '1,True,False,"Order <123>$ shipped <45>$","123","123",True,"Order|123|shipped|45",True\r\n'
        '2,False,False,"none","","",True,"none",False\r\n'
        '3,True,True,"ABC-<9>$\n","9","",False,"ABC-9|",True\r\n'
        '4,True,False,"x<\u0663>$","\u0663","",False,"x\u0663",True\r\n'
    )


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        ('Regex.IsMatch(s, "(?=a)b")', "lookahead"),
        ('Regex.IsMatch(s, @"(a)\\1")', "backreferences"),
        ('Regex.IsMatch(s, "(?<n>a)")', "named groups"),
        ('Regex.IsMatch(s, "a", RegexOptions.ExplicitCapture)', "not supported"),
        ("Regex.IsMatch(s, s)", "literal pattern"),
        ('Regex.Replace(s, "a", "${x}")', "not supported"),
        ('string.Join(",", Regex.Split(s, "(;)"))', "capturing groups"),
        ('Regex.Match(s, "a").Index', "Regex.Match"),
    ],
)
def test_regex_errors(call: str, fragment: str, tmp_path: Path) -> None:
    e = err(f"{call} AS x", tmp_path)
    assert (e.line, e.construct.startswith("Regex"), fragment in e.message) == (2, True, True), e


# ---------------------------------------------------------------- DateTime and TimeSpan
def test_datetime_kind_timespan_and_day_of_week(tmp_path: Path) -> None:
    # a - b = 3 days 10:30:15.250 (row 1) and -(2 days 6 hours) (row 2): parts truncate toward zero;
    # TimeSpan.FromHours(1.5) = 1:30; 2024-03-04 is a Monday, 2024-02-28 a Wednesday
    text = (
        "DECLARE @p DateTime = new DateTime(2016, 01, 01, 00, 00, 00, 00, DateTimeKind.Utc);\n"
        "@a = SELECT * FROM (VALUES (1, new DateTime(2024, 3, 4, 10, 30, 15, 250), new DateTime(2024, 3, 1)), "
        "(2, new DateTime(2024, 2, 28), new DateTime(2024, 3, 1, 6, 0, 0))) AS T(id, a, b);\n"
        "@r = SELECT id, (a - b).TotalDays AS td, (a - b).Days AS d, (a - b).Hours AS h, (a - b).Minutes AS mi, "
        "(a - b).Seconds AS s, (a - b).Milliseconds AS ms, (a - b).TotalHours AS th, (a - b).ToString() AS ts, "
        'a + TimeSpan.FromHours(1.5) AS plus, a.DayOfWeek == DayOfWeek.Monday AS mon, "day " + a.DayOfWeek AS dn, '
        "DateTime.Compare(a, b) AS cmp, a.Subtract(TimeSpan.FromDays(1)) AS sub, "
        "DateTime.SpecifyKind(@p, DateTimeKind.Local) AS p, new TimeSpan(1, 2, 3).TotalSeconds AS nts, "
        "(int) a.DayOfWeek AS idow, a - b > TimeSpan.Zero AS pos FROM @a;\n"
        'OUTPUT @r TO "out/r.csv" ORDER BY id USING Outputters.Csv();\n'
    )
    run_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    assert (tmp_path / "out" / "r.csv").read_bytes().decode() == (
        '1,3.43767650462963,3,10,30,15,250,82.5042361111111,"3.10:30:15.2500000",2024-03-04T12:00:15.2500000,'
        'True,"day Monday",1,2024-03-03T10:30:15.2500000,2016-01-01T00:00:00.0000000,3723,1,True\r\n'
        '2,-2.25,-2,-6,0,0,0,-54,"-2.06:00:00",2024-02-28T01:30:00.0000000,False,"day Wednesday",-1,'
        "2024-02-27T00:00:00.0000000,2016-01-01T00:00:00.0000000,3723,3,False\r\n"
    )


@pytest.mark.parametrize(
    ("select", "construct", "fragment"),
    [
        ("d - new DateTime(2020, 1, 1) AS x", "type", "TimeSpan, which is not a U-SQL column type"),
        ("d.DayOfWeek AS x", "type", "DayOfWeek"),
        ("d + 1 AS x", "DateTime", "not defined"),
        ("Guid.NewGuid() AS x", "Guid.NewGuid", "random"),
        ("(s as string) AS x", "'as'", "not supported"),
        ("(s is string) AS x", "'is'", "not supported"),
    ],
)
def test_date_and_misc_errors(select: str, construct: str, fragment: str, tmp_path: Path) -> None:
    e = err(select, tmp_path)
    assert (e.line, e.construct, fragment in e.message) == (2, construct, True), e


def test_numeric_limits(tmp_path: Path) -> None:
    out = run(
        "int.MaxValue AS a, long.MinValue AS b, double.NaN AS c, double.PositiveInfinity AS d",
        tmp_path,
        "@a WHERE id == 1",
    )
    assert out == "2147483647,-9223372036854775808,NaN,Infinity\r\n"
