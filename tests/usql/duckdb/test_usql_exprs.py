"""Expressions and query clauses: each test runs a small script and checks the exact output bytes.

Expected values follow the U-SQL reference (PERCENTILE_CONT/DISC, quoted identifiers) and .NET semantics
(``string.Split`` overloads), worked out by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.usqltools import err, run

from airflow_provider_amlpipe.usql import UsqlError, run_script

LATENCY = (
    "@q = SELECT * FROM (VALUES "
    '("Banana", 300, "Image"), ("Cherry", 300, "Image"), ("Durian", 500, "Image"), ("Apple", 100, "Web"), '
    '("Fig", 200, "Web"), ("Papaya", 200, "Web"), ("Avocado", 300, "Web"), ("Cherry", 400, "Web"), '
    '("Durian", 500, "Web"), ("Kiwi", (int?) null, "Web")) AS T(Query, Latency, Vertical);\n'
)


def test_percentiles(tmp_path: Path) -> None:
    # Web (nulls ignored): 100 200 200 300 400 500 -> CONT(0.5) = 250 (between 3rd and 4th), DISC(0.5) = 200
    # (first CUME_DIST >= 0.5: 3/6); DESC DISC(0.25): 500 400 ... -> 2nd = 400. Image: 300 300 500.
    # CONT(0.25) DESC over all 9 values = CONT(0.75) ascending: row 1 + 0.75 * 8 = 7 -> 400.
    text = LATENCY + (
        "@r = SELECT DISTINCT Vertical,\n"
        "  PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY Latency) OVER (PARTITION BY Vertical) AS c,\n"
        "  PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY Latency ASC) OVER (PARTITION BY Vertical) AS d,\n"
        "  PERCENTILE_DISC(0.25) WITHIN GROUP (ORDER BY Latency DESC) OVER (PARTITION BY Vertical) AS dd,\n"
        "  PERCENTILE_CONT(0.25) WITHIN GROUP (ORDER BY Latency DESC) OVER () AS cd\n"
        "FROM @q;\n"
        'OUTPUT @r TO "out/r.csv" ORDER BY Vertical USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == '"Image",300,300,500,400\r\n"Web",250,200,400,400\r\n'


def test_percentile_cont_interpolates_to_a_double(tmp_path: Path) -> None:
    # 1 2 3 4: CONT(0.3) -> row 1 + 0.3 * 3 = 1.9 -> 1 + 0.9 * (2 - 1) = 1.9; DISC(0.3) -> ceil(1.2) = 2nd = 2
    text = (
        "@a = SELECT * FROM (VALUES (1), (2), (3), (4)) AS T(v);\n"
        "@r = SELECT DISTINCT PERCENTILE_CONT(0.3) WITHIN GROUP (ORDER BY v) OVER () AS c,\n"
        "  PERCENTILE_DISC(0.3) WITHIN GROUP (ORDER BY v) OVER () AS d FROM @a;\n"
        'OUTPUT @r TO "out/r.csv" USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == "1.9,2\r\n"


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        ("PERCENTILE_CONT(1.5) WITHIN GROUP (ORDER BY Latency) OVER ()", "between 0.0 and 1.0"),
        ("PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY Latency) OVER (ORDER BY Latency)", "without ORDER BY"),
        ("PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY Latency)", "OVER"),
        ("PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY Query) OVER ()", "numeric"),
        ("PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY Query DESC) OVER ()", "DESC"),
        ("SUM(Latency) WITHIN GROUP (ORDER BY Latency) OVER ()", "WITHIN GROUP"),
    ],
)
def test_percentile_errors(call: str, fragment: str, tmp_path: Path) -> None:
    e = err(LATENCY + f"@r = SELECT {call} AS p FROM @q;", tmp_path)
    assert (e.line, fragment in e.message) == (2, True), e.message


def test_declare_without_type_and_scalar_assignment(tmp_path: Path) -> None:
    text = (
        'DECLARE @start = DateTime.Parse("1979-03-31");\n'
        "@n = 3;\n"
        "@m = @n;\n"
        "@k = @n * 10 + 1;\n"
        '@s = "x" + @k;\n'
        '@a = SELECT * FROM (VALUES (1, "a"), (5, "b")) AS T(k, v);\n'
        "@b = @a;\n"
        "@r = SELECT k, @start.AddDays(k) AS d, @m AS m, @k AS kk, @s AS s FROM @b WHERE k <= @n;\n"
        'OUTPUT @r TO "out/r.csv" USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == '1,1979-04-01T00:00:00.0000000,3,31,"x31"\r\n'


@pytest.mark.parametrize(
    ("text", "construct", "fragment"),
    [
        ("DECLARE @x = null;", "type", "cannot be inferred"),
        ("@n = 3;\n@n = 4;", "DECLARE", "already declared"),
        ('@a = SELECT * FROM (VALUES (1)) AS T(k);\n@a = "x";', "DECLARE", "already declared"),
    ],
)
def test_inferred_variable_errors(text: str, construct: str, fragment: str, tmp_path: Path) -> None:
    e = err(text, tmp_path)
    assert (e.construct, fragment in e.message) == (construct, True), e.message


def test_generic_collection_aggregates(tmp_path: Path) -> None:
    text = (
        '@a = SELECT * FROM (VALUES ("en-us", "A", 1), ("en-us", "B", 2), ("en-gb", "D", 3)) AS T(r, c, n);\n'
        "@b = SELECT r, ARRAY_AGG<string>(c) AS cs, MAP_AGG<string, long>(c, n) AS m FROM @a GROUP BY r;\n"
        '@c = SELECT r, string.Join(";", cs) AS s, m["B"] ?? -1L AS b FROM @b;\n'
        'OUTPUT @c TO "out/r.csv" ORDER BY r USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == '"en-gb","D",-1\r\n"en-us","A;B",2\r\n'


def test_user_defined_aggregator_is_refused(tmp_path: Path) -> None:
    e = err('@a = SELECT * FROM (VALUES ("a")) AS T(c);\n@b = SELECT AGG<MyAgg>(c) AS x FROM @a;', tmp_path)
    assert (e.line, e.column, e.construct) == (2, 13, "AGG")


def test_dotnet_and_sql_type_names(tmp_path: Path) -> None:
    text = (
        '@a = SELECT * FROM (VALUES ("7", "")) AS T(id, age);\n'
        "@b = SELECT Int32.Parse(id) AS id, System.Int64.Parse(id) + 1 AS l,\n"
        "  string.IsNullOrEmpty(age) ? (Int16?) null : (Int16?) Int16.Parse(age) AS age,\n"
        '  System.DateTime.Parse("2017-01-02").Day AS day, (System.Double) 2 AS dbl,\n'
        '  new SQL.ARRAY<string>{"x", "y"}.Count AS n, (SQL.MAP<string, int>) null AS m FROM @a;\n'
        "@c = SELECT id, l, age, day, dbl, n, m == null AS nm FROM @b;\n"
        'OUTPUT @c TO "out/r.csv" USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == "7,8,,2,2,2,True\r\n"


def test_bracketed_identifiers(tmp_path: Path) -> None:
    text = (
        '@d = SELECT "Jane" AS [first name], "Doe" AS [name,last], 42 AS [数量], [v] AS [0] '
        "FROM (VALUES (1)) AS T([v]);\n"
        '@e = SELECT [first name], [数量] + 1 AS [say "hi"] FROM @d;\n'
        'OUTPUT @d TO "out/q.csv" USING Outputters.Csv(outputHeader: true);\n'
        'OUTPUT @d TO "out/r.csv" USING Outputters.Csv(outputHeader: true, quoting: false);\n'
        'OUTPUT @e TO "out/t.tsv" ORDER BY [first name] DESC USING Outputters.Tsv(outputHeader: true);\n'
    )
    assert run(text, tmp_path) == "first name,name,last,数量,0\r\nJane,Doe,42,1\r\n"
    assert (tmp_path / "out" / "q.csv").read_text(encoding="utf-8") == (
        '"first name","name,last","数量","0"\n"Jane","Doe",42,1\n'
    )
    assert (tmp_path / "out" / "t.tsv").read_bytes() == b'"first name"\t"say ""hi"""\r\n"Jane"\t43\r\n'


def test_bracketed_names_after_keywords_and_indexers(tmp_path: Path) -> None:
    text = (
        '@a = SELECT * FROM (VALUES ("a;b")) AS T([text]);\n'
        "@b = SELECT [text], [text].Split(';')[1] AS [second] FROM @a WHERE [text] != null;\n"
        'OUTPUT @b TO "out/r.csv" USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == '"a;b","b"\r\n'


def test_split_overloads(tmp_path: Path) -> None:
    # .NET: empty entries stay unless RemoveEmptyEntries; several separators split at any of them
    text = (
        '@a = SELECT * FROM (VALUES ("1::2::::3"), ("a:b,,c")) AS T(line);\n'
        '@b = SELECT string.Join("|", new SQL.ARRAY<string>(line.Split(new string[]{"::"}, '
        "StringSplitOptions.None))) AS s1,\n"
        '  string.Join("|", line.Split(new string[]{"::"}, StringSplitOptions.RemoveEmptyEntries)) AS s2,\n'
        "  string.Join(\"|\", line.Split(new char[]{':', ','})) AS s3,\n"
        "  string.Join(\"|\", line.Split(':', '.', ',')) AS s4,\n"
        "  string.Join(\"|\", line.Split(new []{'x'})) AS s5\n"
        "FROM @a;\n"
        'OUTPUT @b TO "out/r.csv" USING Outputters.Csv();\n'
    )
    with pytest.raises(UsqlError):  # `new []{...}` (implicitly typed array) is not a type we accept
        run(text, tmp_path)
    text = text.replace(",\n  string.Join(\"|\", line.Split(new []{'x'})) AS s5", "")
    assert run(text, tmp_path) == (
        '"1|2||3","1|2|3","1||2||||3","1||2||||3"\r\n"a:b,,c","a:b,,c","a|b||c","a|b||c"\r\n'
    )


def test_split_with_computed_separators_is_refused(tmp_path: Path) -> None:
    e = err('@a = SELECT * FROM (VALUES ("a", ",")) AS T(s, c);\n@b = SELECT s.Split(c, c) AS x FROM @a;', tmp_path)
    assert (e.line, e.construct) == (2, "Split")


def test_trailing_comma_before_from_is_a_clear_error(tmp_path: Path) -> None:
    e = err('@e =\n  EXTRACT a string,\n    b int,\n  FROM "x.csv" USING Extractors.Csv();', tmp_path)
    assert (e.line, e.column, e.construct, e.message) == (3, 10, "EXTRACT", "remove the trailing comma before FROM")


def test_parse_returns_the_non_nullable_type_and_fails_on_null(tmp_path: Path) -> None:
    # C#: int.Parse(string) is int (so it fills a non-nullable column); int.Parse(null) throws.
    table = (
        "CREATE DATABASE IF NOT EXISTS P; USE DATABASE P;\n"
        "CREATE TABLE T(a int, INDEX i CLUSTERED(a) DISTRIBUTED BY HASH(a));\n"
        '@s = SELECT int.Parse(s) AS a FROM (VALUES(" 7 ")) AS X(s);\n'
        "INSERT INTO T SELECT * FROM @s;\n"
        'OUTPUT T TO "out/r.csv" USING Outputters.Csv();\n'
    )
    assert run(table, tmp_path) == "7\r\n"
    null = (
        "@s = SELECT long.Parse(s) AS a FROM (VALUES((string) null)) AS X(s);\n"
        'OUTPUT @s TO "out/n.csv" USING Outputters.Csv();\n'
    )
    with pytest.raises(UsqlError, match=r"long\.Parse: the value is null"):
        run_script(null, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    assert not (tmp_path / "out" / "n.csv").exists()
