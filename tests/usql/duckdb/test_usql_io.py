"""U-SQL input/output: outputter escapeCharacter and encodings, path mapping, file set patterns and partition
elimination. Expected bytes follow the U-SQL reference (Outputter Parameters, Input Files)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script
from airflow_provider_amlpipe.usql.cli import main
from airflow_provider_amlpipe.usql.paths import PathMap

ROWS = '@d = SELECT * FROM (VALUES ("a,b", (int?) 1), ("x#y\\r\\nz", (int?) null), ("q\\"r", (int?) 3)) AS T(s, n);\n'


@pytest.fixture(autouse=True)
def _tmp_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLPIPE_USQL_CATALOG", str(tmp_path / "catalog"))


def out(tmp_path: Path, script: str, name: str = "o.csv") -> bytes:
    run_script(script, base_dir=tmp_path)
    return (tmp_path / name).read_bytes()


def compile_error(text: str, tmp_path: Path) -> UsqlError:
    with pytest.raises(UsqlError) as info:
        compile_script(text, source_name="s.usql", base_dir=tmp_path)
    return info.value


# ------------------------------------------------------------ escapeCharacter
def test_escape_character_with_quoting(tmp_path: Path) -> None:
    # escapes itself, the column delimiter and the row delimiter characters; the quote is doubled, not escaped
    got = out(tmp_path, ROWS + "OUTPUT @d TO \"o.csv\" USING Outputters.Csv(escapeCharacter: '#');")
    assert got == b'"a#,b",1\r\n"x##y#\r#\nz",\r\n"q""r",3\r\n'


def test_escape_character_without_quoting_null_escape_and_header(tmp_path: Path) -> None:
    script = (
        '@d = SELECT * FROM (VALUES ("a|b", (int?) null)) AS T([x|y], n);\n'
        "OUTPUT @d TO \"o.csv\" USING Outputters.Text(delimiter: '|', quoting: false, escapeCharacter: '\\\\', "
        'nullEscape: "\\\\N", outputHeader: true, rowDelimiter: "\\n");'
    )
    assert out(tmp_path, script) == b"x\\|y|n\na\\|b|\\N\n"


def test_escape_character_applies_to_every_type(tmp_path: Path) -> None:
    script = (
        "@d = SELECT * FROM (VALUES (2.5, new DateTime(2024, 5, 6))) AS T(x, d);\n"
        'OUTPUT @d TO "o.csv"\n'
        "USING Outputters.Text(delimiter: '.', escapeCharacter: '!', dateTimeFormat: \"yyyy.MM\");"
    )
    assert out(tmp_path, script) == b"2!.5.2024!.05\r\n"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ('escapeCharacter: "##"', "single char"),
        ("escapeCharacter: 1", "single char"),
    ],
)
def test_escape_character_errors(tmp_path: Path, options: str, fragment: str) -> None:
    e = compile_error(ROWS + f'OUTPUT @d TO "o.csv" USING Outputters.Csv({options});', tmp_path)
    assert (e.line, e.construct) == (2, "Outputters.Csv")
    assert fragment in e.message


def test_extractor_escape_character_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a\n")
    e = compile_error("@e = EXTRACT a string FROM \"in.csv\" USING Extractors.Csv(escapeCharacter: '#');", tmp_path)
    assert (e.line, e.column, e.construct) == (1, 58, "Extractors.Csv")
    assert "escapeCharacter is not supported locally by the extractors" in e.message


# ------------------------------------------------------------ encodings
TEXT = '@d = SELECT * FROM (VALUES ("é€", 1)) AS T(s, n);\n'


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("Encoding.UTF8", '"é€",1\r\n'.encode()),
        ("System.Text.Encoding.UTF8", '"é€",1\r\n'.encode()),
        # UTF-16/32 without a byte order mark: the reference says the built-in outputters add none
        ("Encoding.Unicode", '"é€",1\r\n'.encode("utf-16-le")),
        ("Encoding.BigEndianUnicode", '"é€",1\r\n'.encode("utf-16-be")),
        ("Encoding.UTF32", '"é€",1\r\n'.encode("utf-32-le")),
        # a code page writes the characters it cannot represent as '?' (ASCII: tests/usql/spark/test_usql_formatting.py)
        ("Encoding.GetEncoding(1252)", b'"\xe9\x80",1\r\n'),
        ('System.Text.Encoding.GetEncoding("Windows-1252")', b'"\xe9\x80",1\r\n'),
        ('Encoding.GetEncoding("windows-1250")', b'"\xe9\x80",1\r\n'),
        ("Encoding.GetEncoding(1253)", b'"?\x80",1\r\n'),
    ],
)
def test_output_encodings(tmp_path: Path, encoding: str, expected: bytes) -> None:
    assert out(tmp_path, TEXT + f'OUTPUT @d TO "o.csv" USING Outputters.Csv(encoding: {encoding});') == expected


def test_utf16_output_round_trips_through_the_extractor(tmp_path: Path) -> None:
    run_script(TEXT + 'OUTPUT @d TO "u.csv" USING Outputters.Csv(encoding: Encoding.Unicode);', base_dir=tmp_path)
    script = (
        '@e = EXTRACT s string, n int FROM "u.csv" USING Extractors.Csv(encoding: Encoding.Unicode);\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    assert out(tmp_path, script) == '"é€",1\r\n'.encode()


@pytest.mark.parametrize(
    ("udo", "encoding", "fragment"),
    [
        ("Outputters.Csv", "Encoding.Default", "Encoding.Default is not supported by U-SQL"),
        ("Outputters.Csv", "Encoding.UTF7", "Encoding.UTF7 is not supported locally by the outputters"),
        ("Outputters.Csv", "Encoding.GetEncoding(1200)", "GetEncoding(1200) is not supported"),
        ("Outputters.Csv", '"utf-8"', "must be an Encoding"),
        ("Extractors.Csv", "Encoding.Default", "Encoding.Default is not supported by U-SQL"),
        ("Extractors.Csv", "Encoding.GetEncoding(437)", "GetEncoding(437) is not supported locally by the extractors"),
    ],
)
def test_unsupported_encodings(tmp_path: Path, udo: str, encoding: str, fragment: str) -> None:
    (tmp_path / "in.csv").write_text("a\n")
    if udo.startswith("Outputters"):
        text = TEXT + f'OUTPUT @d TO "o.csv" USING {udo}(encoding: {encoding});'
    else:
        text = f'@e = EXTRACT a string FROM "in.csv" USING {udo}(encoding: {encoding});'
    e = compile_error(text, tmp_path)
    assert e.construct == udo
    assert fragment in e.message


def test_csv_and_tsv_take_no_delimiter_and_say_what_to_use(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a\n")
    e = compile_error("@e = EXTRACT a string FROM \"in.csv\" USING Extractors.Csv(delimiter: ';');", tmp_path)
    assert e.construct == "Extractors.Csv"
    assert "use Extractors.Text(delimiter: ...)" in e.message


# ------------------------------------------------------------ path mapping
def drivers(root: Path) -> Path:
    (root / "DemoData").mkdir(parents=True)
    (root / "DemoData" / "Drivers.txt").write_text("1\tAnna\n2\tBen\n")
    return root


DRIVERS = (
    'DECLARE @in string = "wasb://demo@acct/DemoData/Drivers.txt";\n'
    "@d = EXTRACT id int, name string FROM @in USING Extractors.Tsv();\n"
    'OUTPUT @d TO "adl://store.azuredatalakestore.net/out/d.csv" USING Outputters.Csv();'
)


def test_path_map_runs_a_script_on_local_copies(tmp_path: Path) -> None:
    drivers(tmp_path / "blob")
    path_map = {"wasb://demo@acct/": "blob", "adl://store.azuredatalakestore.net/": tmp_path / "lake"}
    report = run_script(DRIVERS, base_dir=tmp_path, path_map=path_map)
    assert report.rows_written == {tmp_path / "lake" / "out" / "d.csv": 2}
    assert (tmp_path / "lake" / "out" / "d.csv").read_bytes() == b'1,"Anna"\r\n2,"Ben"\r\n'


def test_remote_path_without_mapping_names_the_option(tmp_path: Path) -> None:
    e = compile_error(DRIVERS, tmp_path)
    assert (e.line, e.column, e.construct) == (2, 39, "EXTRACT")
    assert "remote paths ('wasb://demo@acct/DemoData/Drivers.txt') are not supported locally" in e.message
    assert "--map-path" in e.message


def test_store_root_paths_missing_locally_name_the_mapping_and_run_with_it(tmp_path: Path) -> None:
    # ADLA reads "/Samples/..." from its Data Lake Store's root; locally that is a folder the user maps.
    text = (
        '@r = EXTRACT a int, b string FROM "/Samples/Data/t.tsv" USING Extractors.Tsv();\n'
        'OUTPUT @r TO "/output/r.csv" USING Outputters.Csv();\n'
    )
    e = compile_error(text, tmp_path)
    assert (e.line, e.construct) == (1, "EXTRACT") and "--map-path /=DIR" in e.message
    (tmp_path / "root" / "Samples" / "Data").mkdir(parents=True)
    (tmp_path / "root" / "Samples" / "Data" / "t.tsv").write_text("1\tx\n")
    run_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "c", path_map={"/": "root/"})
    assert (tmp_path / "root" / "output" / "r.csv").read_bytes() == b'1,"x"\r\n'


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("wasb://demo@acct.blob.core.windows.net/a/b.csv", "blob/a/b.csv"),  # the long form of the account
        ("wasbs://demo@acct/a/b.csv", "blob/a/b.csv"),
        ("wasb://demo@acct/sub/x.csv", "sub-copy/x.csv"),  # the longest prefix wins
        ("swebhdfs://store.azuredatalakestore.net/x.csv", "lake/x.csv"),  # same store as adl://
        ("/Samples/Data/SearchLog.tsv", "samples/Data/SearchLog.tsv"),
        ("wasb://demo@acctx/a.csv", None),
        ("wasb://other@acct/a.csv", None),
        ("/Other/a.csv", None),
    ],
)
def test_path_map_prefixes(path: str, expected: str | None) -> None:
    pm = PathMap(
        {
            "wasb://demo@acct": "blob",
            "wasb://demo@acct/sub/": "sub-copy",
            "adl://store.azuredatalakestore.net/": "lake",
            "/Samples/": "samples",
        }
    )
    assert pm.apply(path) == expected


def test_cli_map_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drivers(tmp_path / "blob")
    script = tmp_path / "s.usql"
    script.write_text(DRIVERS)
    args = ["run", str(script), "--base-dir", str(tmp_path), "--map-path", "wasb://demo@acct/=blob"]
    assert main([*args, "--map-path", "adl://store.azuredatalakestore.net/=lake/"]) == 0
    assert (tmp_path / "lake" / "out" / "d.csv").read_bytes() == b'1,"Anna"\r\n2,"Ben"\r\n'
    assert main([*args, "--map-path", "no-equals-sign"]) == 2
    assert "must be PREFIX=DIR" in capsys.readouterr().err


# ------------------------------------------------------------ file sets
def files(root: Path, contents: dict[str, str]) -> None:
    for rel, text in contents.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_repeated_date_parts_must_agree(tmp_path: Path) -> None:
    files(
        tmp_path,
        {
            "d/2024/01/v1_20240115.csv": "a\n",
            "d/2024/02/v12_20240201.csv": "b\n",
            "d/2024/02/v1_20240301.csv": "not in the set: the months disagree\n",
            "d/2024/02/v1_20230201.csv": "not in the set: the years disagree\n",
            "d/2024/02/v1_20240230.csv": "not in the set: no such date\n",
        },
    )
    script = (
        "@e = EXTRACT s string, vid int, date DateTime\n"
        '  FROM "d/{date:yyyy}/{date:MM}/v{vid}_{date:yyyy}{date:MM}{date:dd}.csv" USING Extractors.Csv();\n'
        'OUTPUT @e TO "o.csv" ORDER BY s USING Outputters.Csv();'
    )
    assert out(tmp_path, script) == (b'"a",1,2024-01-15T00:00:00.0000000\r\n"b",12,2024-02-01T00:00:00.0000000\r\n')


def test_time_parts_wildcard_column_and_double_underscore_names(tmp_path: Path) -> None:
    files(tmp_path, {"logs/2024-03-05T0730_web-7.log": "up\n", "logs/2024-03-05T2359_db-12.log": "down\n"})
    script = (
        "@e = EXTRACT msg string, __ts DateTime, __host string, __n long\n"
        '  FROM "logs/{__ts:yyyy}-{__ts:MM}-{__ts:dd}T{__ts:HH}{__ts:mm}_{__host:*}-{__n}.log"\n'
        "  USING Extractors.Text(delimiter: '|');\n"
        'OUTPUT (SELECT __host, __n, __ts, msg FROM @e) TO "o.csv" ORDER BY __n USING Outputters.Csv();'
    )
    assert out(tmp_path, script) == (
        b'"web",7,2024-03-05T07:30:00.0000000,"up"\r\n"db",12,2024-03-05T23:59:00.0000000,"down"\r\n'
    )


def test_virtual_column_that_does_not_convert_is_a_runtime_error(tmp_path: Path) -> None:
    files(tmp_path, {"in/p1.csv": "a\n", "in/pX.csv": "b\n"})
    script = (
        '@e = EXTRACT a string, n int FROM "in/p{n}.csv" USING Extractors.Csv();\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    with pytest.raises(UsqlError) as info:
        run_script(script, base_dir=tmp_path)
    assert (info.value.line, info.value.construct) == (2, "runtime")
    assert "{n} is not a valid int" in info.value.message


PARTITIONED = (
    "@e = EXTRACT s string, n int, date DateTime, vid int\n"
    '  FROM "d/{date:yyyy}/{date:MM}/v{vid}_{date:dd}.csv" USING Extractors.Csv();\n'
)


@pytest.mark.parametrize(
    ("where", "read", "expected"),
    [
        ("date < new DateTime(2024, 2, 1)", 2, b'"a",1,1\r\n"c",3,2\r\n'),
        ("date >= new DateTime(2024, 2, 1) && date < new DateTime(2024, 3, 1)", 1, b'"b",2,1\r\n'),
        ("vid == 2", 1, b'"c",3,2\r\n'),
        ("vid == 1 AND date < new DateTime(2024, 2, 1)", 1, b'"a",1,1\r\n'),
    ],
)
def test_partition_elimination_skips_files_unread(tmp_path: Path, where: str, read: int, expected: bytes) -> None:
    files(
        tmp_path,
        {
            "d/2024/01/v1_05.csv": "a,1\n",
            "d/2024/02/v1_05.csv": "b,2\n",
            "d/2024/01/v2_06.csv": "c,3\n",
            "d/2025/01/v3_01.csv": "x,y,z\n",  # three columns: reading it fails the run
        },
    )
    script = (
        PARTITIONED + f'OUTPUT (SELECT s, n, vid FROM @e WHERE {where}) TO "o.csv" ORDER BY s USING Outputters.Csv();'
    )
    assert out(tmp_path, script) == expected
    # DuckDB's plan counts the files it will open: only those the predicate on virtual columns keeps
    compiled = compile_script(script, base_dir=tmp_path)
    con = duckdb.connect()
    con.execute(compiled.prelude)
    for st in compiled.statements[:-1]:
        con.execute(st.sql)
    query = compiled.statements[-1].sql.removeprefix("COPY (").rsplit(") TO '", 1)[0]
    plan = con.execute("EXPLAIN " + query).fetchall()[0][1]
    scanning = re.search(r"Scanning Files: (\d+)/4", plan)
    assert scanning is not None and int(scanning.group(1)) == read


# ------------------------------------------------------------ positional UDO arguments, STATISTICS
@pytest.mark.parametrize(
    ("udo", "fix"),
    [
        ('EXTRACT a string FROM "i.csv" USING Extractors.Tsv(Encoding.Unicode)', "encoding: Encoding.Unicode"),
        (
            'EXTRACT a string FROM "i.csv" USING Extractors.Csv(System.Text.Encoding.UTF8)',
            "encoding: System.Text.Encoding.UTF8",
        ),
        ("EXTRACT a string FROM \"i.csv\" USING Extractors.Text('|')", "<parameter>: '|'"),
    ],
)
def test_positional_udo_arguments_are_refused_with_the_fix(tmp_path: Path, udo: str, fix: str) -> None:
    (tmp_path / "i.csv").write_text("x\n")
    e = compile_error(f'@r = {udo};\nOUTPUT @r TO "o.csv" USING Outputters.Csv();', tmp_path)
    construct = udo.split("USING ")[1].split("(")[0]
    assert (e.construct, e.line) == (construct, 1)
    assert e.message.endswith(f"pass it by name: {fix}")
    rows = "@r = SELECT * FROM (VALUES (1)) AS T(a);\n"
    e = compile_error(rows + 'OUTPUT @r TO "o.csv" USING Outputters.Csv(Encoding.Unicode);', tmp_path)
    assert (e.construct, e.line, e.column) == ("Outputters.Csv", 2, 43)
    assert "positional arguments are not supported" in e.message


def test_statistics_statements_are_noted_no_ops(tmp_path: Path) -> None:
    script = (
        "CREATE DATABASE IF NOT EXISTS S; USE DATABASE S;\n"
        "CREATE TABLE T(a int, b string, INDEX i CLUSTERED (a) DISTRIBUTED BY HASH (a));\n"
        "CREATE STATISTICS IF NOT EXISTS st_a ON S.dbo.T(a) WITH FULLSCAN;\n"
        "CREATE STATISTICS st_b ON T(a, b) WITH SAMPLE 10 PERCENT;\n"
        "UPDATE STATISTICS st_a ON T WITH FULLSCAN;\n"
        "DROP STATISTICS IF EXISTS st_b ON dbo.T;\n"
        'INSERT INTO T VALUES (1, "x");\n@r = SELECT * FROM T;\nOUTPUT @r TO "o.csv" USING Outputters.Csv();'
    )
    notes = compile_script(script, base_dir=tmp_path).notes
    assert [x for x in notes if "STATISTICS" in x] == [
        "CREATE STATISTICS st_a ON S.dbo.T has no effect locally (accepted and ignored)",
        "CREATE STATISTICS st_b ON T has no effect locally (accepted and ignored)",
        "UPDATE STATISTICS st_a ON T has no effect locally (accepted and ignored)",
        "DROP STATISTICS st_b ON dbo.T has no effect locally (accepted and ignored)",
    ]
    assert out(tmp_path, script) == b'1,"x"\r\n'
    e = compile_error("CREATE STATISTICS s ON Nope(a) WITH FULLSCAN;", tmp_path)
    assert (e.line, e.column) == (1, 24) and "Nope" in e.message
