"""U-SQL compiler errors: file:line:col, the construct's name, never a DuckDB traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script, substitute
from airflow_provider_amlpipe.usql.cli import main

VALUES = '@a = SELECT * FROM (VALUES (1, "x")) AS T(k, v);\n'
TABLE = "CREATE TABLE t (a int, b string, INDEX i CLUSTERED (a) DISTRIBUTED BY HASH (a));\n"


@pytest.fixture(autouse=True)
def _tmp_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scripts that touch the catalog use a fresh one (never ~/.cache)."""
    monkeypatch.setenv("AMLPIPE_USQL_CATALOG", str(tmp_path / "catalog"))


def err(text: str, tmp_path: Path | None = None) -> UsqlError:
    with pytest.raises(UsqlError) as info:
        compile_script(text, source_name="s.usql", base_dir=tmp_path)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "col", "construct", "fragment"),
    [
        (VALUES + "@b = SELECT k FROM @a WHERE k = 1;", 2, 31, "expression", "use '=='"),
        (VALUES + "@b = SELECT nope FROM @a;", 2, 13, "column", "unknown column 'nope'"),
        (VALUES + "@b = SELECT k FROM @missing;", 2, 20, "rowset", "unknown rowset @missing"),
        (VALUES + "@b = SELECT k + 1 FROM @a;", 2, 13, "SELECT", "AS name"),
        ("REFERENCE ASSEMBLY MyLib;", 1, 1, "REFERENCE ASSEMBLY (user code assemblies)", "not supported"),
        ("CREATE FUNCTION f() RETURNS int AS BEGIN END;", 1, 1, "CREATE FUNCTION", "not supported"),
        (VALUES + "@b = SELECT MyNs.Udf.Clean(v) AS c FROM @a;", 2, 27, "user code", "user-defined"),
        ('@e = EXTRACT a int FROM "x.csv" USING new MyExtractor();', 1, 39, "user-defined UDO", "not supported"),
        (VALUES + "@b = PROCESS @a USING new P();", 2, 6, "PROCESS (user-defined processor)", "not supported"),
        ('DECLARE @x int = "abc";', 1, 18, "type", "cannot assign"),
        ("@a = SELECT 1 AS k\n  FROM @b\n  WHERE true;", 2, 8, "rowset", "unknown rowset @b"),
        ('@a = SELECT "unterminated AS k;', 1, 13, "syntax", "unterminated string"),
        ("/* never closed", 1, 1, "syntax", "unterminated /* comment"),
        (VALUES + "OUTPUT @a TO \"o.csv\" USING Outputters.Csv(delimiter: ';');", 2, 43, "Outputters.Csv", "delimiter"),
        (VALUES + 'OUTPUT @a TO "o.csv" USING Outputters.Csv(header: true);', 2, 43, "Outputters.Csv", "unknown"),
        (VALUES + 'OUTPUT @a TO "/d/{date:yyyy}.csv" USING Outputters.Csv();', 2, 14, "file set", "not supported"),
        (VALUES + "@b = SELECT k FROM @a ORDER BY k;", 2, 23, "ORDER BY", "FETCH"),
        # file sets
        ('@e = EXTRACT a string FROM "d/{x}.csv" USING Extractors.Csv();', 1, 28, "file set", "not in the EXTRACT"),
        ('@e = EXTRACT a string, d int FROM "{d:yyyy}.csv" USING Extractors.Csv();', 1, 35, "file set", "DateTime"),
        ('@e = EXTRACT a string, d DateTime FROM "{d:yy}.csv" USING Extractors.Csv();', 1, 40, "file set", "date part"),
        ('@e = EXTRACT a string FROM "d/{a.csv" USING Extractors.Csv();', 1, 28, "file set", "without '}'"),
        ('@e = EXTRACT a string FROM "{*}.csv", "b.csv" USING Extractors.Csv();', 1, 28, "file set", "only path"),
        # collections
        (
            VALUES + "@b = SELECT k, x FROM @a CROSS APPLY EXPLODE(new SqlMap<int,string>{{k, v}}) AS T(x);",
            2,
            26,
            "EXPLODE",
            "two columns",
        ),
        (VALUES + "@b = SELECT k, x FROM @a CROSS APPLY EXPLODE(v) AS T(x);", 2, 26, "EXPLODE", "SqlArray"),
        # catalog
        (VALUES + "@b = SELECT * FROM nope;", 2, 20, "table", "unknown table master.dbo.nope"),
        ("@b = SELECT * FROM shop.dbo.t;", 1, 20, "table", "database 'shop'"),
        ("USE DATABASE nope;", 1, 1, "USE DATABASE", "does not exist"),
        ("CREATE DATABASE d;\nCREATE DATABASE d;", 2, 1, "CREATE DATABASE", "already exists"),
        ("DROP DATABASE nope;", 1, 1, "DROP DATABASE", "does not exist"),
        ("DROP TABLE nope;", 1, 12, "table", "unknown table"),
        (TABLE + TABLE, 2, 14, "CREATE TABLE", "already exists"),
        (TABLE + "INSERT INTO t SELECT * FROM (VALUES (1)) AS V(a);", 2, 1, "INSERT", "yields 1 column(s) but 2"),
        (TABLE + 'INSERT INTO t SELECT * FROM (VALUES ("x", "y")) AS V(a, b);', 2, 1, "INSERT", "is string but"),
        (TABLE + 'INSERT INTO t (b) VALUES ("y");', 2, 13, "INSERT", "not nullable"),
        (TABLE + "INSERT INTO t (a, c) VALUES (1, 2);", 2, 13, "INSERT", "no column 'c'"),
        (TABLE + 'INSERT INTO t SELECT * FROM (VALUES ((int?) 1, "y")) AS V(a, b);', 2, 1, "INSERT", "int?"),
        ("CREATE TABLE t (a int) AS SELECT 1 AS a;", 1, 24, "CREATE TABLE", "no column definitions"),
        ("@b = SELECT * FROM dbo.f(1);", 1, 20, "table-valued function", "does not exist"),
        ('CREATE ASSEMBLY a FROM @"a.dll";', 1, 1, "CREATE ASSEMBLY", "not supported"),
    ],
)
def test_compile_errors(text: str, line: int, col: int, construct: str, fragment: str) -> None:
    e = err(text)
    assert (e.line, e.column, e.construct) == (line, col, construct), e.render()
    assert fragment in e.message
    assert e.render().startswith(f"s.usql:{line}:{col}: error: {construct}: ")


def test_missing_input_file(tmp_path: Path) -> None:
    e = err('@e = EXTRACT a int FROM "nope.csv" USING Extractors.Csv();', tmp_path)
    assert (e.line, e.column, e.construct) == (1, 25, "EXTRACT")


def test_runtime_conversion_error_is_a_usql_error(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("1\nabc\n")
    text = '@e = EXTRACT a int FROM "in.csv" USING Extractors.Csv();\nOUTPUT @e TO "o.csv" USING Outputters.Csv();'
    with pytest.raises(UsqlError) as info:
        run_script(text, source_name="s.usql", base_dir=tmp_path)
    assert (info.value.line, info.value.construct) == (2, "runtime")
    assert not (tmp_path / "o.csv").exists()


def test_silent_skips_bad_rows_and_nulls_bad_nullable_values(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("1,2\nx,3\n4\n5,6,7\n8,9\n")
    text = (
        '@e = EXTRACT a int?, b int FROM "in.csv" USING Extractors.Csv(silent: true);\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    run_script(text, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == b"1,2\r\n,3\r\n8,9\r\n"


def test_unknown_param_is_an_error() -> None:
    with pytest.raises(UsqlError, match="match no DECLARE EXTERNAL"):
        compile_script("DECLARE EXTERNAL @a int = 1;", params={"b": "2"})


def test_substitute() -> None:
    assert substitute('FROM "@@in@@" TO "@@out@@"', {"in": "a.csv", "out": "b.csv"}) == 'FROM "a.csv" TO "b.csv"'
    with pytest.raises(UsqlError) as info:
        substitute("x\n  @@nope@@", {"in": "a"})
    assert (info.value.line, info.value.column, info.value.construct) == (2, 3, "@@placeholder@@")


def test_cli_explain_run_and_bad_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in.csv").write_text("1,a\n2,b\n")
    script = tmp_path / "s.usql"
    script.write_text(
        "DECLARE EXTERNAL @min int = 0;\n"
        '@e = EXTRACT k int, v string FROM "@@input@@" USING Extractors.Csv();\n'
        'OUTPUT (SELECT v FROM @e WHERE k > @min) TO "out/o.csv" USING Outputters.Csv();\n'
    )
    base = ["--base-dir", str(tmp_path), "--param", "input=in.csv"]
    assert main(["explain", str(script), *base]) == 0
    assert "read_csv" in capsys.readouterr().out
    assert main(["run", str(script), *base, "--param", "min=1"]) == 0
    assert (tmp_path / "out" / "o.csv").read_bytes() == b'"b"\r\n'
    bad = tmp_path / "bad.usql"
    bad.write_text("@x = SELECT FROM;")
    assert main(["run", str(bad)]) == 2
    assert f"{bad}:1:13: error: syntax:" in capsys.readouterr().err


def test_file_set_empty_and_bad_virtual_value(tmp_path: Path) -> None:
    script = (
        '@e = EXTRACT a string, n int FROM "in/part{n}.csv" USING Extractors.Csv();\n'
        'OUTPUT (SELECT n, a FROM @e) TO "o.csv" ORDER BY n USING Outputters.Csv();'
    )
    run_script(script, base_dir=tmp_path)  # no file matches: an empty rowset, not an error
    assert (tmp_path / "o.csv").read_bytes() == b""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part2.csv").write_text("x\n")
    (tmp_path / "in" / "part10.csv").write_text("y\n")
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == b'2,"x"\r\n10,"y"\r\n'
    (tmp_path / "in" / "partX.csv").write_text("z\n")
    with pytest.raises(UsqlError) as info:
        run_script(script, base_dir=tmp_path)
    assert (info.value.line, info.value.construct) == (2, "runtime")


@pytest.mark.parametrize("value", ["2.5", "1e3", "1_000", "0x1F", "42."])
@pytest.mark.parametrize("typ", ["int", "long", "int?", "long?"])
def test_integer_fields_are_parsed_like_csharp(tmp_path: Path, typ: str, value: str) -> None:
    """DuckDB's cast would round "2.5" and read "1e3", "1_000", "0x1F"; C#'s int.Parse rejects them."""
    (tmp_path / "in.csv").write_text(f"1,1\n2,{value}\n")
    text = (
        f'@e = EXTRACT k int, a {typ} FROM "in.csv" USING Extractors.Csv();\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    with pytest.raises(UsqlError) as info:
        run_script(text, source_name="s.usql", base_dir=tmp_path)
    assert (info.value.line, info.value.construct) == (2, "runtime")
    assert f"input string '{value}' is not in a correct format for {typ.rstrip('?')} (column a)" in info.value.message
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("value", [" 42 ", "+42", "0042", "\t42"])
def test_integer_fields_accept_white_space_sign_and_zeros(tmp_path: Path, value: str) -> None:
    (tmp_path / "in.csv").write_text(f"{value},{value}\n")
    text = (
        '@e = EXTRACT a int, b long? FROM "in.csv" USING Extractors.Csv();\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    run_script(text, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == b"42,42\r\n"


def test_int_parse_and_integer_parameters_are_strict(tmp_path: Path) -> None:
    text = (
        '@a = SELECT * FROM (VALUES ("2.5")) AS T(s);\n'
        'OUTPUT (SELECT int.Parse(s) AS n FROM @a) TO "o.csv" USING Outputters.Csv();'
    )
    with pytest.raises(UsqlError, match="not in a correct format for int") as info:
        run_script(text, source_name="s.usql", base_dir=tmp_path)
    assert (info.value.line, info.value.construct) == (2, "runtime")
    with pytest.raises(UsqlError, match="is not a int") as info:
        compile_script("DECLARE EXTERNAL @n int = 1;", source_name="s.usql", params={"n": "2.5"})
    assert info.value.construct == "DECLARE EXTERNAL"
    compile_script("DECLARE EXTERNAL @n long = 1;", params={"n": " -7 "})


def test_datetime_fields_iso_and_en_us(tmp_path: Path) -> None:
    """ISO values take the fast cast, others the en-US formats; both as before, errors too."""
    (tmp_path / "in.csv").write_text(" 2020-01-02 03:04:05 ,1/2/2020 3:04:05 PM\n2020-01-02T03:04:05,\n")
    text = (
        '@e = EXTRACT a DateTime, b DateTime? FROM "in.csv" USING Extractors.Csv();\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    run_script(text, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == (
        b"2020-01-02T03:04:05.0000000,2020-01-02T15:04:05.0000000\r\n2020-01-02T03:04:05.0000000,\r\n"
    )
    (tmp_path / "in.csv").write_text("2020-13-45,\n")
    with pytest.raises(UsqlError, match="not recognized as a valid DateTime"):
        run_script(text, base_dir=tmp_path)
    (tmp_path / "in.csv").write_text(" ,\n")
    with pytest.raises(UsqlError, match="non-nullable column a"):
        run_script(text, base_dir=tmp_path)
