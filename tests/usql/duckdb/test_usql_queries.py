"""Query clauses (CASE, SAMPLE, PIVOT/UNPIVOT, set operations BY NAME, FETCH forms, hints): each test runs a small
script and checks the exact output bytes, or the error a construct gives.

Expected values follow the U-SQL language reference (CASE expression, SAMPLE, PIVOT and UNPIVOT, UNION and OUTER
UNION, ORDER BY and OFFSET/FETCH), worked out by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.usqltools import err, run

from airflow_provider_amlpipe.usql import compile_script, run_script

PEOPLE = (
    "@p = SELECT * FROM (VALUES "
    '(1, "Noah", 100, (int?) 10000), (2, "Emma", 200, (int?) 8000), (3, "Liam", 300, (int?) null), '
    '(4, "Ava", 400, (int?) 50000)) AS T(id, name, dept, salary);\n'
)


def out(select: str, order: str = "id") -> str:
    return f'@r = {select};\nOUTPUT @r TO "out/r.csv" ORDER BY {order} USING Outputters.Csv();\n'


# ---------------------------------------------------------------- CASE
def test_simple_case_first_match_else_and_null_without_else(tmp_path: Path) -> None:
    # no ELSE and no match -> null (string is nullable); the first matching WHEN wins
    text = PEOPLE + out(
        'SELECT id, CASE dept WHEN 100 THEN "Eng" WHEN 200 THEN "HR" WHEN 100 THEN "never" END AS d, '
        "CASE dept WHEN 400 THEN 1 ELSE 0 END AS four FROM @p"
    )
    assert run(text, tmp_path) == '1,"Eng",0\r\n2,"HR",0\r\n3,,0\r\n4,,1\r\n'


def test_searched_case_and_nested_case(tmp_path: Path) -> None:
    # salary null: every comparison is false in C#, so the ELSE arm
    text = PEOPLE + out(
        'SELECT id, CASE WHEN salary < 9000 THEN "low" WHEN salary >= 9000 AND salary < 20000 THEN '
        'CASE WHEN dept == 100 THEN "mid-eng" ELSE "mid" END ELSE "other" END AS tier FROM @p'
    )
    assert run(text, tmp_path) == '1,"mid-eng"\r\n2,"low"\r\n3,"other"\r\n4,"other"\r\n'


def test_simple_case_uses_csharp_equality_for_null(tmp_path: Path) -> None:
    # C# ==: null == null is true, so WHEN null matches the null salary
    text = PEOPLE + out('SELECT id, CASE salary WHEN null THEN "none" WHEN 8000 THEN "8k" END AS s FROM @p')
    assert run(text, tmp_path) == '1,\r\n2,"8k"\r\n3,"none"\r\n4,\r\n'


def test_case_result_type_is_nullable_when_a_result_is(tmp_path: Path) -> None:
    text = PEOPLE + out("SELECT id, CASE WHEN id > 2 THEN salary ELSE 0 END ?? -1 AS s FROM @p")
    assert run(text, tmp_path) == "1,0\r\n2,0\r\n3,-1\r\n4,50000\r\n"


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ('CASE dept WHEN "x" THEN 1 ELSE 2 END', "the WHEN value is string but the CASE input is int"),
        ('CASE WHEN id > 1 THEN 1 ELSE "a" END', "CASE results must have one type"),
        ("CASE WHEN id > 1 THEN 1 END", "add ELSE or cast a result to int?"),
        ("CASE WHEN id > 1 THEN 1 ELSE null END", "its result type int is not nullable"),
        ("CASE WHEN id THEN 1 ELSE 2 END", "a CASE WHEN condition must be a bool expression"),
        ("CASE WHEN id > 1 THEN null END", "no CASE result has a type"),
    ],
)
def test_case_errors(expr: str, fragment: str, tmp_path: Path) -> None:
    e = err(PEOPLE + out(f"SELECT id, {expr} AS c FROM @p"), tmp_path)
    assert fragment in str(e)
    assert str(e).startswith("s.usql:2:")


def test_case_syntax_errors(tmp_path: Path) -> None:
    assert "expected WHEN in CASE" in str(err(PEOPLE + out("SELECT id, CASE id ELSE 1 END AS c FROM @p"), tmp_path))
    assert "expected END closing CASE" in str(err(PEOPLE + out("SELECT id, CASE WHEN id > 1 THEN 1 AS c FROM @p"),
                                                  tmp_path))  # fmt: skip


# ---------------------------------------------------------------- SAMPLE
NUMBERS = "@n = SELECT * FROM (VALUES " + ", ".join(f"({i}, {i % 3})" for i in range(200)) + ") AS T(k, g);\n"


def rows(csv: str) -> list[list[str]]:
    return [line.split(",") for line in csv.split("\r\n") if line]


def test_sample_any_takes_n_input_rows(tmp_path: Path) -> None:
    got = rows(run(NUMBERS + out("SELECT k, g FROM @n WHERE k >= 100 SAMPLE ANY (5)", "k"), tmp_path))
    assert len(got) == 5
    assert all(int(k) >= 100 and int(g) == int(k) % 3 for k, g in got)


def test_sample_uniform_keeps_input_rows_with_a_weight(tmp_path: Path) -> None:
    # 200 rows at p = 0.5: fewer than 40 or more than 160 kept has probability < 1e-18
    got = rows(run(NUMBERS + out("SELECT * FROM @n SAMPLE UNIFORM (0.5)", "k"), tmp_path))
    assert 40 <= len(got) <= 160
    assert all(int(g) == int(k) % 3 for k, g in got)
    assert len({k for k, _ in got}) == len(got)
    weighted = rows(run(NUMBERS + out("SAMPLE @n UNIFORM (0.25) WITH WEIGHT AS w", "k"), tmp_path))
    assert weighted and {w for _, _, w in weighted} == {"4"}
    assert rows(run(NUMBERS + out("SELECT * FROM @n SAMPLE UNIFORM (0.0)", "k"), tmp_path)) == []


def test_sample_universe_keeps_whole_groups(tmp_path: Path) -> None:
    text = NUMBERS + out("SAMPLE @n ON g UNIVERSE (0.5)", "k")
    got = rows(run(text, tmp_path))
    kept = {g for _, g in got}
    assert len(got) == sum(1 for i in range(200) if str(i % 3) in kept)
    assert rows(run(text, tmp_path)) == got, "the same values are picked on every run"
    assert len(rows(run(NUMBERS + out("SAMPLE @n ON g UNIVERSE (1.0)", "k"), tmp_path))) == 200


def test_sample_distinct_keeps_min_rows_per_group(tmp_path: Path) -> None:
    got = rows(run(NUMBERS + out("SAMPLE @n ON g DISTINCT (0.0, 2) WITH WEIGHT AS w", "k"), tmp_path))
    assert sorted(g for _, g, _ in got) == ["0", "0", "1", "1", "2", "2"]
    assert {w for _, _, w in got} == {"1"}
    assert len(rows(run(NUMBERS + out("SAMPLE @n ON g DISTINCT (1.0, 2)", "k"), tmp_path))) == 200


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELECT * FROM @n SAMPLE UNIFORM (1.5)", "the sample fraction must be a constant double between 0 and 1"),
        ("SELECT * FROM @n SAMPLE ANY (-1)", "row counts in SAMPLE must be non-negative constant integers"),
        ("SELECT * FROM @n SAMPLE RANDOM (1)", "expected ANY (n) or UNIFORM (fraction) after SAMPLE"),
        ("SAMPLE @n ON x UNIVERSE (0.5)", "unknown column 'x' in SAMPLE ON"),
        ("SAMPLE @n ON g UNIFORM (0.5)", "expected UNIVERSE (f) or DISTINCT (f, n) in SAMPLE"),
        ("SAMPLE @n UNIFORM (0.5) WITH WEIGHT AS g", "the weight column 'g' is already a column"),
    ],
)
def test_sample_errors(query: str, fragment: str, tmp_path: Path) -> None:
    e = err(NUMBERS + out(query, "k"), tmp_path)
    assert fragment in str(e)
    assert e.construct in ("SAMPLE", "syntax")


# ---------------------------------------------------------------- PIVOT / UNPIVOT
BANDS = (
    "@d = SELECT * FROM (VALUES "
    '("A", "a1", 1940, "drums", 1), ("A", "a2", 1941, "bass", 2), ("B", "b1", 1940, "drums", 0), '
    '("B", "b2", 1940, "vocals", 3)) AS T(Band, Musician, YearOfBirth, Instrument, Children);\n'
    "@y = SELECT Band, YearOfBirth, Children FROM @d;\n"
)


def test_pivot_groups_by_the_other_columns(tmp_path: Path) -> None:
    # per Band: SUM of Children whose YearOfBirth == value; no such row -> null
    text = BANDS + out(
        "SELECT * FROM @y PIVOT (SUM(Children) FOR YearOfBirth IN (1940 AS y40, 1941 AS [y 41], 1942 AS y42)) AS P",
        "Band",
    )
    assert run(text, tmp_path) == '"A",1,2,\r\n"B",3,,\r\n'


def test_pivot_count_gives_zero_and_string_values(tmp_path: Path) -> None:
    text = BANDS + out(
        "SELECT Band, n40, n42 FROM (SELECT Band, YearOfBirth FROM @d) AS s "
        "PIVOT (COUNT(*) FOR s.YearOfBirth IN (1940 AS n40, 1942 AS n42)) AS P",
        "Band",
    )
    assert run(text, tmp_path) == '"A",1,0\r\n"B",2,0\r\n'
    text = BANDS + out(
        "SELECT * FROM (SELECT Musician, Band, Instrument FROM @d) AS s PIVOT (ANY_VALUE(Instrument) FOR Band IN "
        '("A" AS [band A], "B" AS B)) AS P',
        "Musician",
    )
    assert run(text, tmp_path) == '"a1","drums",\r\n"a2","bass",\r\n"b1",,"drums"\r\n"b2",,"vocals"\r\n'


def test_unpivot_excludes_nulls_by_default(tmp_path: Path) -> None:
    pivot = "@p = SELECT * FROM @y PIVOT (SUM(Children) FOR YearOfBirth IN (1940 AS y40, 1941 AS y41)) AS P;\n"
    query = "SELECT * FROM @p UNPIVOT {} (Children FOR Year IN (y40, [y41])) AS U"
    assert run(BANDS + pivot + out(query.format(""), "Band, Year"), tmp_path) == (
        '"A","y40",1\r\n"A","y41",2\r\n"B","y40",3\r\n'
    )
    assert run(BANDS + pivot + out(query.format("INCLUDE NULLS"), "Band, Year"), tmp_path) == (
        '"A","y40",1\r\n"A","y41",2\r\n"B","y40",3\r\n"B","y41",\r\n'
    )


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("@y PIVOT (SUM(Children) FOR YearOfBirth IN (1940 AS y)) P", "a PIVOT needs an alias"),
        ("@y PIVOT (Children FOR YearOfBirth IN (1940 AS y)) AS P", "PIVOT needs an aggregate call"),
        ("@y PIVOT (SUM(Children) FOR Year IN (1940 AS y)) AS P", "unknown column 'Year'"),
        ("@y PIVOT (SUM(Children) FOR YearOfBirth IN (1940 AS Band)) AS P", "column 'Band' appears twice"),
        ("@y UNPIVOT (v FOR k IN (Band, Children)) AS U", "UNPIVOT columns must have one type"),
        ("@y UNPIVOT (v FOR k IN (Nope)) AS U", "UNPIVOT column 'Nope' is not a column of the rowset"),
        ("@y UNPIVOT (Band FOR k IN (Children)) AS U", "column 'Band' appears twice in the UNPIVOT result"),
    ],
)
def test_pivot_errors(source: str, fragment: str, tmp_path: Path) -> None:
    assert fragment in str(err(BANDS + out(f"SELECT * FROM {source}", "Band"), tmp_path))


# ---------------------------------------------------------------- set operations BY NAME
SIDES = (
    '@l = SELECT * FROM (VALUES (1, "a", 20), (1, "a", 20), (2, "b", 30), (3, (string) null, 40)) '
    "AS T(id, name, age);\n"
    '@r = SELECT * FROM (VALUES (1, 100, "a"), (2, 200, "x"), (5, 300, (string) null)) AS T(id, salary, name);\n'
)


def test_union_by_name_matches_columns_by_name(tmp_path: Path) -> None:
    distinct = out("SELECT * FROM @l UNION DISTINCT BY NAME ON (*) SELECT * FROM @r", "id, name")
    assert run(SIDES + distinct, tmp_path) == '1,"a"\r\n2,"b"\r\n2,"x"\r\n3,\r\n5,\r\n'
    every = out("SELECT * FROM @l UNION ALL BY NAME ON (id, *) SELECT * FROM @r", "id, name")
    assert run(SIDES + every, tmp_path) == '1,"a"\r\n1,"a"\r\n1,"a"\r\n2,"b"\r\n2,"x"\r\n3,\r\n5,\r\n'
    no_on = out("SELECT id, name FROM @l UNION BY NAME SELECT name, id FROM @r", "id, name")
    assert run(SIDES + no_on, tmp_path) == '1,"a"\r\n2,"b"\r\n2,"x"\r\n3,\r\n5,\r\n'


def test_except_and_intersect_by_name(tmp_path: Path) -> None:
    text = SIDES + out("SELECT * FROM @l EXCEPT BY NAME ON (id, name) SELECT * FROM @r", "id")
    assert run(text, tmp_path) == '2,"b"\r\n3,\r\n'
    # WITH DISJOINT (cols) is an optimizer hint: accepted, no effect
    text = SIDES + out("SELECT * FROM @l INTERSECT BY NAME ON (*) WITH DISJOINT (id) SELECT * FROM @r", "id")
    assert run(text, tmp_path) == '1,"a"\r\n'


def test_outer_union_fills_missing_cells_with_defaults(tmp_path: Path) -> None:
    # OUTER UNION is ALL; missing int cells get 0 (.NET default), missing string? cells null
    text = SIDES + out("SELECT * FROM @l OUTER UNION BY NAME ON (id, name) SELECT * FROM @r", "id, salary")
    assert run(text, tmp_path) == (
        '1,"a",20,0\r\n1,"a",20,0\r\n1,"a",0,100\r\n2,"b",30,0\r\n2,"x",0,200\r\n3,,40,0\r\n5,,0,300\r\n'
    )
    nullable = "@n = SELECT id, (int?) salary AS bonus, (DateTime?) null AS d, true AS flag FROM @r;\n" + out(
        "SELECT id, age FROM @l OUTER UNION ALL BY NAME ON (*) SELECT * FROM @n", "id, age"
    )
    assert run(SIDES + nullable, tmp_path) == (
        "1,0,100,,True\r\n1,20,,,False\r\n1,20,,,False\r\n2,0,200,,True\r\n2,30,,,False\r\n3,40,,,False\r\n"
        "5,0,300,,True\r\n"
    )


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELECT * FROM @l UNION BY NAME ON (id) SELECT * FROM @r", "column 'name' is on both sides but not in ON"),
        ("SELECT * FROM @l UNION BY NAME ON (age) SELECT * FROM @r", "ON column 'age' is not a column of both"),
        ("SELECT * FROM @l UNION BY NAME ON (id, id, *) SELECT * FROM @r", "column 'id' is listed twice in ON"),
        ("SELECT * FROM @l UNION BY NAME SELECT * FROM @r", "column 'age' is only on the left"),
        ("SELECT * FROM @l OUTER UNION DISTINCT BY NAME ON (*) SELECT * FROM @r", "OUTER UNION does not support"),
        ("SELECT * FROM @l OUTER UNION ALL SELECT * FROM @r", "OUTER UNION needs BY NAME ON (columns)"),
        ("SELECT * FROM @l OUTER UNION BY NAME SELECT * FROM @r", "OUTER UNION needs BY NAME ON (columns)"),
        ("SELECT id, age AS name FROM @l UNION BY NAME ON (*) SELECT * FROM @r", "column 'name' is int on the left"),
    ],
)
def test_by_name_errors(query: str, fragment: str, tmp_path: Path) -> None:
    assert fragment in str(err(SIDES + out(query), tmp_path))


# ---------------------------------------------------------------- ORDER BY ... OFFSET / FETCH
@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("ORDER BY id DESC FETCH 2", "3\r\n4\r\n"),
        ("ORDER BY id FETCH FIRST 1 ROW", "1\r\n"),
        ("ORDER BY id OFFSET 1 ROW FETCH NEXT 2 ROWS ONLY", "2\r\n3\r\n"),
        ("ORDER BY id OFFSET 3 ROWS", "4\r\n"),
    ],
)
def test_fetch_forms(clause: str, expected: str, tmp_path: Path) -> None:
    assert run(PEOPLE + out(f"SELECT id FROM @p {clause}"), tmp_path) == expected


def test_order_by_fetch_after_extract(tmp_path: Path) -> None:
    (tmp_path / "in.tsv").write_text("1\t5\n2\t\n3\t9\n4\t7\n")
    text = (
        '@e = EXTRACT id int, d int? FROM "in.tsv" USING Extractors.Tsv() ORDER BY d DESC FETCH 2;\n'
        'OUTPUT @e TO "out/r.csv" ORDER BY id USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == "3,9\r\n4,7\r\n"


# ---------------------------------------------------------------- select items, names, type arguments
def test_column_name_from_a_trailing_property(tmp_path: Path) -> None:
    # the reference's rule: an expression ending in a property/field access is named after it
    text = PEOPLE + out("SELECT id, name.ToString().Length, 2 + name.Length AS Length2 FROM @p")
    run_script(text.replace("Csv()", "Csv(outputHeader: true)"), base_dir=tmp_path, catalog_dir=tmp_path / "c")
    assert (tmp_path / "out" / "r.csv").read_bytes().decode().split("\r\n")[:2] == ['"id","Length","Length2"', "1,4,6"]
    e = err(PEOPLE + out("SELECT id, 2 + name.Length FROM @p"), tmp_path)
    assert "needs a column name: add AS name" in str(e)
    assert "'Length' appears twice" in str(err(PEOPLE + out("SELECT name.Length, id.ToString().Length FROM @p"),
                                                 tmp_path))  # fmt: skip


def test_object_equals(tmp_path: Path) -> None:
    # object.Equals: both null -> true; a boxed int never equals a boxed long
    text = PEOPLE + out("SELECT id, Equals(salary, null) AS n, Equals(dept, 200) AS d, Equals(dept, 200L) AS l FROM @p")
    assert run(text, tmp_path) == (
        "1,False,False,False\r\n2,False,True,False\r\n3,True,False,False\r\n4,False,False,False\r\n"
    )


def test_nested_generic_type_arguments_closed_with_shift_token(tmp_path: Path) -> None:
    text = PEOPLE + out(
        'SELECT id, new SqlMap<string,SqlArray<int>>{{"a", new SqlArray<int>{id, 2}}}["a"].Count AS n, '
        "(SqlArray<SqlArray<int>>) null == null AS z FROM @p WHERE id == 1"
    )
    assert run(text, tmp_path) == "1,2,True\r\n"


def test_upper_case_null_is_the_null_literal(tmp_path: Path) -> None:
    # U-SQL accepts NULL wherever null is accepted: C# == null, casts, ?? and IS NULL
    text = PEOPLE + out(
        "SELECT id, salary != NULL AS has, (string) NULL ?? name AS n, (salary ?? -1) AS s FROM @p "
        "WHERE salary == NULL || id == 1 || (int?) NULL IS NOT NULL"
    )
    assert run(text, tmp_path) == '1,True,"Noah",10000\r\n3,False,"Liam",-1\r\n'


def test_unknown_names_are_clear_errors(tmp_path: Path) -> None:
    e = err(PEOPLE + out("SELECT id, Things.Count AS c FROM @p"), tmp_path)
    assert "unknown name 'Things' in Things.Count: not a column, rowset alias or supported .NET class" in str(e)
    assert "(columns in scope: dept, id, name, salary)" in str(e)


# ---------------------------------------------------------------- COALESCE, NULLIF, ISNULL
def test_coalesce_nullif_isnull_values(tmp_path: Path) -> None:
    # COALESCE: first non-null; NULLIF(a, b): null when a == b (C# ==, so null == null), else a; ISNULL: a ?? b
    text = PEOPLE + out(
        "SELECT id, COALESCE((int?) NULL, salary, dept) AS c, COALESCE(salary, 2.0) / 3 AS d, "
        'NULLIF(salary, 8000) AS n1, NULLIF(name, "Emma") AS n2, NULLIF(salary, null) AS n3, '
        "ISNULL(salary, -1) AS i FROM @p"
    )
    assert run(text, tmp_path) == (
        '1,10000,3333.33333333333,10000,"Noah",10000,10000\r\n'
        "2,8000,2666.66666666667,,,8000,8000\r\n"
        '3,300,0.666666666666667,,"Liam",,-1\r\n'
        '4,50000,16666.6666666667,50000,"Ava",50000,50000\r\n'
    )


def test_coalesce_is_nullable_only_if_its_last_argument_is(tmp_path: Path) -> None:
    # a CASE without ELSE needs a nullable result type: COALESCE(dept, salary) is int?, COALESCE(salary, dept) int
    text = PEOPLE + out("SELECT id, CASE WHEN id > 2 THEN COALESCE(dept, salary) END AS c FROM @p")
    assert run(text, tmp_path) == "1,\r\n2,\r\n3,300\r\n4,400\r\n"
    e = err(PEOPLE + out("SELECT id, CASE WHEN id > 2 THEN COALESCE(salary, dept) END AS c FROM @p"), tmp_path)
    assert "its result type int is not nullable" in str(e)
    e = err(PEOPLE + out("SELECT id, CASE WHEN id > 2 THEN ISNULL(salary, 0) END AS c FROM @p"), tmp_path)
    assert "its result type int is not nullable" in str(e)


@pytest.mark.parametrize(
    ("expr", "construct", "fragment"),
    [
        ("COALESCE(salary)", "COALESCE", "COALESCE takes two or more arguments"),
        ("NULLIF(salary, 1, 2)", "NULLIF", "NULLIF takes two arguments"),
        ("ISNULL(name, 1)", "ISNULL", "ISNULL arguments must have one type: this one is int, the first is string"),
        ("COALESCE(null, NULL)", "COALESCE", "no COALESCE argument has a type"),
        ("NULLIF(null, 1)", "NULLIF", "the first NULLIF argument has no type"),
    ],
)
def test_coalesce_nullif_isnull_errors(expr: str, construct: str, fragment: str, tmp_path: Path) -> None:
    e = err(PEOPLE + out(f"SELECT id, {expr} AS c FROM @p"), tmp_path)
    assert (e.construct, e.line) == (construct, 2)
    assert fragment in str(e)


# ---------------------------------------------------------------- hints and refusals
def test_hints_are_accepted_and_noted(tmp_path: Path) -> None:
    (tmp_path / "in.tsv").write_text("1\t5\n2\t\n")
    text = (
        '@e = EXTRACT id int, d int? FROM "in.tsv" REQUIRED id SORTED BY id ASC, d USING Extractors.Tsv();\n'
        "@r = SELECT id, d FROM @e WHERE id > 1 OPTION (ROWCOUNT = 100);\n"
        'OUTPUT @r TO "out/r.csv" USING Outputters.Csv();\n'
    )
    sql = compile_script(text, base_dir=tmp_path, catalog_dir=tmp_path / "c").to_sql()
    assert "-- note: REQUIRED id ignored" in sql
    assert "-- note: SORTED BY id ASC, d ignored" in sql
    assert "-- note: OPTION (ROWCOUNT = 100) ignored" in sql
    assert run(text, tmp_path) == "2,\r\n"


@pytest.mark.parametrize(
    ("text", "construct", "where"),
    [
        ('RAISE WARNING "x";\n', "RAISE ERROR/WARNING", (1, 1)),
        ('@e = EXTRACT type1.*, d int? FROM "in.tsv" USING Extractors.Tsv();\n', "EXTRACT type.*", (1, 14)),
    ],
)
def test_refused_constructs_are_named(text: str, construct: str, where: tuple[int, int], tmp_path: Path) -> None:
    e = err(text, tmp_path)
    assert (e.construct, (e.line, e.column)) == (construct, where)
    assert "not supported" in str(e)


# ---------------------------------------------------------------- null ordering
def test_nulls_sort_last_in_either_direction(tmp_path: Path) -> None:
    # ORDER BY reference: "U-SQL always orders null values last, regardless of the sort direction or data types".
    asc = PEOPLE + out("SELECT name, salary FROM @p", "salary ASC")
    assert run(asc, tmp_path) == '"Emma",8000\r\n"Noah",10000\r\n"Ava",50000\r\n"Liam",\r\n'
    desc = PEOPLE + (
        "@r = SELECT name, salary FROM @p ORDER BY salary DESC FETCH 3 ROWS;\n"
        'OUTPUT @r TO "out/r.csv" ORDER BY salary DESC USING Outputters.Csv();\n'
    )
    assert run(desc, tmp_path) == '"Ava",50000\r\n"Noah",10000\r\n"Emma",8000\r\n'
    ranked = PEOPLE + out("SELECT name, ROW_NUMBER() OVER (ORDER BY salary DESC) AS rn FROM @p", "rn")
    assert run(ranked, tmp_path) == '"Ava",1\r\n"Noah",2\r\n"Emma",3\r\n"Liam",4\r\n'
