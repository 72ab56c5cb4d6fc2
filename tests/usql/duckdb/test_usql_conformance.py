"""Conformance with the U-SQL reference: window frames and windowed aggregates, rowset-variable column qualifiers,
case-sensitive names, and members of the "C# Functions and Operators" page. Each test runs a small script of its
own and checks the exact output bytes, or the error; the expected values are worked out by hand from the reference
page cited in the test (pages of MicrosoftDocs/azure-reference-other, u-sql/) and the .NET documentation.
Each script also goes through ``translate_to_spark``: it translates, or is refused as untranslatable.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.usqltools import err, run

from airflow_provider_amlpipe.usql import UsqlError, translate_to_spark

NOT_SPARK = "cannot be translated to Spark SQL"
PAY = (
    '@p = SELECT * FROM (VALUES (1, "a", 10, (int?) 5), (2, "a", 10, (int?) null), (3, "b", 20, (int?) 7)) '
    "AS T(id, g, k, v);\n"
)


def out(select: str, order: str | None = "id") -> str:
    order_by = f" ORDER BY {order}" if order else ""
    return f'@r = {select};\nOUTPUT @r TO "out/r.csv"{order_by} USING Outputters.Csv();\n'


def spark(text: str) -> str | None:
    """The Spark translation, or None when it is refused as untranslatable (any other error fails the test)."""
    try:
        return translate_to_spark(text, source_name="s.usql")
    except UsqlError as e:
        assert NOT_SPARK in e.message, e.render()
        return None


# ---------------------------------------------------------------- windowed aggregates (over-expression-u-sql.md)
def test_windowed_sum_of_int_and_int_nullable(tmp_path: Path) -> None:
    # sum-u-sql.md: SUM of int/int? is long?; the null v is skipped. The cast to long wraps the whole windowed SUM.
    text = PAY + out("SELECT id, SUM(k) OVER (PARTITION BY g) AS sk, SUM(v) OVER () AS sv FROM @p")
    assert run(text, tmp_path) == "1,20,12\r\n2,20,12\r\n3,20,12\r\n"
    sql = spark(text)
    assert sql is not None and "CAST(sum(`p`.`k`) OVER (PARTITION BY `p`.`g`) AS BIGINT)" in sql


def test_windowed_map_agg(tmp_path: Path) -> None:
    # map-agg-u-sql.md: MAP_AGG may be windowed; the map is built from the window's (key, value) pairs
    text = PAY + out("SELECT id, MAP_AGG(id, k) OVER (PARTITION BY g).Count AS n, "
                     "MAP_AGG<int, long>(id, k) OVER (PARTITION BY g)[1] AS first FROM @p")  # fmt: skip
    assert run(text, tmp_path) == "1,2,10\r\n2,2,10\r\n3,1,\r\n"
    assert spark(text) is None  # Spark's map_from_entries cannot wrap a windowed aggregate


def test_order_by_without_rows_is_a_rows_frame(tmp_path: Path) -> None:
    # over-expression-u-sql.md: "If the ROWS clause is not specified but ORDER BY is specified, ROWS BETWEEN UNBOUNDED
    # PRECEDING AND CURRENT ROW is used": the tied rows (k = 10) are counted one at a time (SQL's RANGE: 2, 2, 3)
    text = PAY + out("SELECT COUNT(*) OVER (ORDER BY k) AS running, SUM(k) OVER (ORDER BY k) AS total FROM @p",
                     order="running")  # fmt: skip
    assert run(text, tmp_path) == "1,10\r\n2,20\r\n3,40\r\n"
    sql = spark(text)
    assert sql is not None and sql.count("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW") == 2


def test_last_value_with_the_default_frame_is_the_current_row(tmp_path: Path) -> None:
    # last-value-u-sql.md + the OVER default frame: the frame ends at the current row
    text = PAY + out("SELECT id, LAST_VALUE(id) OVER (PARTITION BY g ORDER BY id) AS lv, "
                     "FIRST_VALUE(id) OVER (PARTITION BY g ORDER BY id) AS fv FROM @p")  # fmt: skip
    assert run(text, tmp_path) == "1,1,1\r\n2,2,1\r\n3,3,3\r\n"
    spark(text)


def test_ranking_functions_keep_their_peers(tmp_path: Path) -> None:
    # rank-u-sql.md: ties share a rank; ranking functions take no frame, so none is added
    text = PAY + out("SELECT id, RANK() OVER (ORDER BY k) AS r, LAG(id) OVER (ORDER BY id) AS prev FROM @p")
    assert run(text, tmp_path) == "1,1,\r\n2,1,1\r\n3,3,2\r\n"
    sql = spark(text)
    assert sql is not None and "ROWS" not in sql


def test_any_value_is_not_a_window_function(tmp_path: Path) -> None:
    # any-value-u-sql.md: ANY_VALUE "cannot be used in a windowing expression"
    e = err(PAY + out("SELECT id, ANY_VALUE(g) OVER (PARTITION BY k) AS a FROM @p"), tmp_path)
    assert (e.line, e.column, e.construct) == (2, 26, "ANY_VALUE")
    assert "windowing expression" in e.message and "FIRST_VALUE" in e.message
    with pytest.raises(UsqlError, match="windowing expression"):
        translate_to_spark(PAY + out("SELECT id, ANY_VALUE(g) OVER (PARTITION BY k) AS a FROM @p"))


# ---------------------------------------------------------------- @rowset.column (select-clause-u-sql.md)
DEPT = '@d = SELECT * FROM (VALUES ("a", "Alpha"), ("c", "Gamma")) AS T(g, title);\n'


def test_rowset_variable_qualifies_columns_in_every_clause(tmp_path: Path) -> None:
    # select-clause-u-sql.md: Column_Identifier := [(Rowset_Variable | Quoted_or_Unquoted_Identifier) '.'] ...
    text = (
        PAY
        + DEPT
        + out(
            "SELECT @p.g, @d.title, SUM(@p.k) AS k FROM @p LEFT OUTER JOIN @d ON @p.g == @d.g WHERE @p.id > 1 "
            "GROUP BY @p.g, @d.title",
            order="g",
        )
    )
    assert run(text, tmp_path) == '"a","Alpha",10\r\n"b",,20\r\n'
    spark(text)


def test_rowset_variable_star_and_semijoin(tmp_path: Path) -> None:
    text = PAY + DEPT + out("SELECT @d.* FROM @d LEFT ANTISEMIJOIN @p ON @d.g == @p.g", order=None)
    assert run(text, tmp_path) == '"c","Gamma"\r\n'
    spark(text)


def test_rowset_variable_in_a_self_join_names_the_side_without_alias(tmp_path: Path) -> None:
    text = PAY + out("SELECT @p.id, q.id AS next FROM @p INNER JOIN @p AS q ON @p.id + 1 == q.id")
    assert run(text, tmp_path) == "1,2\r\n2,3\r\n"


def test_rowset_variable_qualifier_errors(tmp_path: Path) -> None:
    e = err(PAY + out("SELECT @p.id FROM @p AS a INNER JOIN @p AS b ON a.id == b.id"), tmp_path)
    assert (e.line, e.column) == (2, 13)
    assert "@p is a rowset" in e.message and "qualify the column with its alias" in e.message
    e = err(PAY + out("SELECT @p.nope FROM @p"), tmp_path)
    assert e.message == "rowset 'p' has no column 'nope'"


def test_scalar_variable_members_are_not_qualifiers(tmp_path: Path) -> None:
    # a scalar variable shares the namespace of rowsets: @s.Length is the string's length, not a column of alias s
    text = 'DECLARE @s string = "abcd";\n' + PAY + out("SELECT s.id, @s.Length AS n FROM @p AS s")
    assert run(text, tmp_path) == "1,4\r\n2,4\r\n3,4\r\n"


# ---------------------------------------------------------------- case-sensitive names (csharp-identifiers.md)
@pytest.mark.parametrize(
    ("query", "where", "fragment"),
    [
        ("SELECT id AS [Key], g AS [KEY] FROM @p", (2, 26), "'Key' and 'KEY'"),
        ("SELECT * FROM (VALUES (1, 2)) AS T(a, A)", (2, 20), "'a' and 'A'"),
        ("SELECT x.id FROM @p AS x CROSS JOIN @p AS X", (2, 31), "rowset aliases 'x' and 'X'"),
    ],
)
def test_names_differing_only_in_case_are_refused(
    query: str, where: tuple[int, int], fragment: str, tmp_path: Path
) -> None:
    # U-SQL identifiers are case-sensitive; DuckDB's are not, so the two names would silently become one
    e = err(PAY + out(query, order=None), tmp_path)
    assert (e.line, e.column) == where
    assert fragment in e.message and "differ only in case" in e.message


def test_rowset_variables_differing_only_in_case_are_two_rowsets(tmp_path: Path) -> None:
    text = (
        "@a = SELECT * FROM (VALUES (1)) AS T(x);\n@A = SELECT * FROM (VALUES (2)) AS T(y);\n"
        "@a_2 = SELECT * FROM (VALUES (3)) AS T(z);\n@a = SELECT x + 10 AS x FROM @a;\n"
        + out("SELECT x, y, z FROM @a CROSS JOIN @A AS b CROSS JOIN @a_2", order=None)
    )
    assert run(text, tmp_path) == "11,2,3\r\n"


# ---------------------------------------------------------------- csharp-functions-and-operators-u-sql.md
WORDS = '@w = SELECT * FROM (VALUES ("kayak", "x;y;z", 7)) AS T(s, list, n);\n'


def test_concat_of_a_sequence_concatenates_its_elements(tmp_path: Path) -> None:
    # String.Concat(IEnumerable<T>): the elements' ToString()s, a null element as ""
    text = WORDS + out(
        "SELECT String.Concat(new SQL.ARRAY<string>(list.Split(';'))) AS a, "
        "string.Concat(new SQL.ARRAY<int?>{1, null, 3}) AS b FROM @w",
        order=None,
    )
    assert run(text, tmp_path) == '"xyz","13"\r\n'
    spark(text)


def test_index_of_and_last_index_of(tmp_path: Path) -> None:
    # String.LastIndexOf: "If value is String.Empty, the return value is the last index position in this instance";
    # IndexOf(value, startIndex[, count]) searches from startIndex (within count characters)
    text = WORDS + out(
        'SELECT s.LastIndexOf("") AS e, "".LastIndexOf("") AS ee, s.LastIndexOf("", 2) AS e2, s.LastIndexOf("k") AS k, '
        's.LastIndexOf("ka", 3) AS ka3, s.LastIndexOf("ya", 1) AS ya1, s.IndexOf("k", 1) AS k1, '
        's.IndexOf("a", 2, 2) AS a22, s.IndexOf("a", 2, 1) AS a21, s.IndexOf("", 5) AS e5 FROM @w',
        order=None,
    )
    assert run(text, tmp_path) == "4,0,2,4,0,-1,4,3,-1,5\r\n"
    spark(text)


def test_remove_insert_and_pad_with_computed_widths(tmp_path: Path) -> None:
    text = WORDS + out(
        'SELECT s.Remove(2) AS r2, s.Remove(1, 3) AS r13, s.Insert(5, "!") AS i5, s.Insert(0, list) AS i0, '
        "s.PadLeft(s.Length + n - 5, '.') AS pl, s.PadRight(n) + \"|\" AS pr, s.PadLeft(s.Length - 1) AS short "
        "FROM @w",
        order=None,
    )
    assert run(text, tmp_path) == '"ka","kk","kayak!","x;y;zkayak","..kayak","kayak  |","kayak"\r\n'
    spark(text)


def test_to_char_array(tmp_path: Path) -> None:
    # ToCharArray() into SQL.ARRAY<char>: chars are written as their code (charFormat uint16)
    text = WORDS + out(
        "SELECT new SQL.ARRAY<char>(s.ToCharArray())[1] AS c1, s.ToCharArray().Count AS n, "
        '"".ToCharArray().Count AS none FROM @w',
        order=None,
    )
    assert run(text, tmp_path) == "97,5,0\r\n"
    assert spark(text) is None


def test_compare_ordinal_sign(tmp_path: Path) -> None:
    # String.CompareOrdinal: less than zero, zero, greater than zero (only the sign is documented); null sorts first
    text = WORDS + out(
        'SELECT String.CompareOrdinal(s, "kayaks") AS shorter, String.CompareOrdinal("B", "a") AS upper_first, '
        "String.CompareOrdinal(s, s) AS same, String.CompareOrdinal((string) null, s) AS nul, "
        'String.CompareOrdinal(s, 2, "yak", 0, 2) AS ya FROM @w',
        order=None,
    )
    assert run(text, tmp_path) == "-1,-1,0,-1,0\r\n"
    spark(text)


def test_date_and_math_statics(tmp_path: Path) -> None:
    text = WORDS + out(
        "SELECT DateTime.DaysInMonth(2100, 2) AS feb2100, DateTime.DaysInMonth(2000, n + 2) AS sep, "
        "DateTime.IsLeapYear(2100) AS l2100, DateTime.IsLeapYear(2400) AS l2400, "
        "Math.BigMul(int.MaxValue, int.MaxValue) AS big, Math.BigMul(n, -2) AS neg FROM @w",
        order=None,
    )
    assert run(text, tmp_path) == "28,30,False,True,4611686014132420609,-14\r\n"
    spark(text)


@pytest.mark.parametrize(
    ("expr", "construct"),
    [('s.CompareTo("a")', "CompareTo"), ('String.Compare(s, "a")', "String.Compare"),
     ('string.Compare(s, 0, "a", 0, 1)', "String.Compare")],
)  # fmt: skip
def test_culture_sensitive_comparisons_are_refused(expr: str, construct: str, tmp_path: Path) -> None:
    # .NET compares strings culture-sensitively ("abc" precedes "ABC"): refused, pointing at CompareOrdinal
    e = err(WORDS + out(f"SELECT {expr} AS c FROM @w", order=None), tmp_path)
    assert e.construct == construct and "culture-sensitive" in e.message and "CompareOrdinal" in e.message


def test_math_big_mul_takes_ints(tmp_path: Path) -> None:
    e = err(WORDS + out("SELECT Math.BigMul(1L, 2) AS c FROM @w", order=None), tmp_path)
    assert e.message == "Math.BigMul takes two int values, not long and int"


# ---------------------------------------------------------------- lambdas (csharp-functions-and-operators-u-sql.md)
def test_explicitly_typed_lambda_parameters(tmp_path: Path) -> None:
    # the page's "=> (Lambda)" example writes both w => w.Length and (string w) => w.Length
    text = WORDS + out(
        "SELECT new SQL.ARRAY<string>(list.Split(';')).Min((string w) => w.Length) AS m, "
        "string.Join(\"\", new SQL.ARRAY<string>(list.Split(';')).Where((string w, int i) => i != 1)) AS j FROM @w",
        order=None,
    )
    assert run(text, tmp_path) == '1,"xz"\r\n'


@pytest.mark.parametrize(
    ("expr", "where", "fragment"),
    [
        ("arr.Select((int w) => w)", (3, 25), "declared int but Select passes string values"),
        ("arr.Select((string w, long i) => w)", (3, 35), "declared long but Select passes int values"),
        ("arr.Select((string w, i) => w)", (3, 24), "all have a type or all have none"),
        ("arr.Select(() => 1)", (3, 24), "the lambda of Select takes (p) or (p, index)"),
    ],
)
def test_lambda_parameter_errors(expr: str, where: tuple[int, int], fragment: str, tmp_path: Path) -> None:
    text = (
        WORDS
        + "@a = SELECT new SQL.ARRAY<string>(list.Split(';')) AS arr FROM @w;\n"
        + out(f"SELECT {expr}.Count AS c FROM @a", order=None)
    )
    e = err(text, tmp_path)
    assert (e.line, e.column) == where and fragment in e.message
