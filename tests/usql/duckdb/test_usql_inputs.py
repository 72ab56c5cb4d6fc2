"""U-SQL inputs: extractor encodings (UTF-8 copies of the inputs DuckDB cannot decode), URI-encoded paths,
partition elimination with ``DateTime.Parse`` constants, and extractor option edge cases. Expected bytes follow
the U-SQL reference (Extractor Parameters, Input/Output Files, EXTRACT file sets)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import duckdb
import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.consts import fold_datetime_parse
from airflow_provider_amlpipe.usql.parser import parse
from airflow_provider_amlpipe.usql.runner import _utf8_copies


@pytest.fixture(autouse=True)
def _tmp_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLPIPE_USQL_CATALOG", str(tmp_path / "catalog"))


def write(root: Path, contents: dict[str, bytes]) -> None:
    for rel, data in contents.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


# ------------------------------------------------------------ encodings
ROWS = '"é€",1\r\n"Ωx",2\r\n'


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("Encoding.BigEndianUnicode", ROWS.encode("utf-16-be")),
        # a byte order mark at the start is not part of the first value
        ("Encoding.BigEndianUnicode", "\ufeff".encode("utf-16-be") + ROWS.encode("utf-16-be")),
        ("System.Text.Encoding.UTF32", ROWS.encode("utf-32-le")),
        ("Encoding.UTF32", "\ufeff".encode("utf-32-le") + ROWS.encode("utf-32-le")),
        ("Encoding.UTF7", ROWS.encode("utf-7")),
        ("Encoding.Unicode", "\ufeff".encode("utf-16-le") + ROWS.encode("utf-16-le")),  # DuckDB reads it itself
    ],
)
def test_unicode_encodings(tmp_path: Path, encoding: str, data: bytes) -> None:
    write(tmp_path, {"in.csv": data})
    script = (
        f'@e = EXTRACT s string, n int FROM "in.csv" USING Extractors.Csv(encoding: {encoding});\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == ROWS.encode()


@pytest.mark.parametrize(
    ("encoding", "data", "expected"),
    [
        ("Encoding.GetEncoding(1252)", b"caf\xe9 \x80,1\n", '"café €",1\r\n'),
        ('System.Text.Encoding.GetEncoding("windows-1252")', b"caf\xe9 \x80,1\n", '"café €",1\r\n'),
        ('Encoding.GetEncoding("Windows-1250")', b"\xb9\xe8,1\n", '"ąč",1\r\n'),
        ("Encoding.GetEncoding(1253)", b"\xe1\xe2,1\n", '"αβ",1\r\n'),
        ("Encoding.GetEncoding(1256)", b"\xc7,1\n", '"\u0627",1\r\n'),  # ARABIC LETTER ALEF
    ],
)
def test_windows_code_pages(tmp_path: Path, encoding: str, data: bytes, expected: str) -> None:
    write(tmp_path, {"in.csv": data})
    script = (
        f'@e = EXTRACT s string, n int FROM "in.csv" USING Extractors.Csv(encoding: {encoding});\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == expected.encode()


def test_encoding_from_an_untyped_declare(tmp_path: Path) -> None:
    write(tmp_path, {"in.csv": b"\xe9\n"})
    script = (
        "DECLARE @enc = System.Text.Encoding.GetEncoding(1252);\n"
        '@e = EXTRACT s string FROM "in.csv" USING Extractors.Csv(encoding: @enc);\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv(encoding: @enc);'
    )
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == b'"\xe9"\r\n'


def test_copies_are_made_at_run_time_and_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, {"in.csv": "a,1\n".encode("utf-32-le")})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    script = (
        '@e = EXTRACT s string, n int FROM "in.csv" USING Extractors.Csv(encoding: Encoding.UTF32);\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    compiled = compile_script(script, base_dir=tmp_path)
    note = compiled.statements[0]
    assert note.kind == "input" and note.input_copy is not None
    assert "is utf-32-le; the run reads a UTF-8 copy" in compiled.to_sql()
    assert not note.input_copy.root.exists()  # compiling copies nothing
    assert note.input_copy.root.parent == tmp_path / "tmp"
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == b'"a",1\r\n'
    assert list((tmp_path / "tmp").iterdir()) == []


def test_invalid_bytes_are_a_runtime_error_naming_file_and_offset(tmp_path: Path) -> None:
    write(tmp_path, {"in.csv": "ab,1\n".encode("utf-16-be") + b"\xdc\x00"})  # a lone low surrogate
    script = (
        '@e = EXTRACT s string, n int FROM "in.csv" USING Extractors.Csv(encoding: Encoding.BigEndianUnicode);\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    with pytest.raises(UsqlError) as info:
        run_script(script, base_dir=tmp_path)
    assert (info.value.line, info.value.construct) == (1, "runtime")
    assert f"{tmp_path / 'in.csv'}: the bytes at offset 10 are not valid utf-16-be" in info.value.message
    assert not (tmp_path / "o.csv").exists()


def test_file_set_in_a_code_page_keeps_virtual_columns_and_partition_elimination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path,
        {
            "d/2024/01/v1.csv": b"\xe9,1\n",
            "d/2024/02/v2.csv": b"\xe8,2\n",
            "d/2024/xx/v3.csv": b"not in the set\n",
        },
    )
    script = (
        "@e = EXTRACT s string, n int, date DateTime, vid int\n"
        '  FROM "d/{date:yyyy}/{date:MM}/v{vid}.csv" USING Extractors.Csv(encoding: Encoding.GetEncoding(1252));\n'
        'OUTPUT (SELECT s, vid, date FROM @e WHERE date >= DateTime.Parse("2024-02-01")) TO "o.csv"\n'
        "USING Outputters.Csv();"
    )
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == '"è",2,2024-02-01T00:00:00.0000000\r\n'.encode()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert scanned_files(script, tmp_path) == "1/2"


def test_empty_file_set_in_another_encoding_is_empty(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    script = (
        '@e = EXTRACT s string, k string FROM "d/{k}.csv" USING Extractors.Csv(encoding: Encoding.UTF32);\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == b""


# ------------------------------------------------------------ paths
def test_paths_are_uri_decoded(tmp_path: Path) -> None:
    write(tmp_path, {"my data/a b.csv": b"x\n"})
    script = (
        '@e = EXTRACT s string FROM "my%20data/a%20b.csv" USING Extractors.Csv();\n'
        'OUTPUT @e TO "out%2Fput/r%C3%A9sult%20%231.csv" USING Outputters.Csv();'
    )
    report = run_script(script, base_dir=tmp_path)
    assert report.rows_written == {tmp_path / "out" / "put" / "résult #1.csv": 1}


def test_path_map_with_uri_encoded_prefix_and_adl_paths(tmp_path: Path) -> None:
    write(tmp_path, {"lake/Sample Data/in.csv": b"x\n"})
    script = (
        '@e = EXTRACT s string FROM "adl://acct.azuredatalakestore.net/Sample%20Data/in.csv" USING Extractors.Csv();\n'
        'OUTPUT @e TO "swebhdfs://acct.azuredatalakestore.net/Sample%20Data/out.csv" USING Outputters.Csv();'
    )
    report = run_script(script, base_dir=tmp_path, path_map={"adl://acct.azuredatalakestore.net/": "lake"})
    assert report.rows_written == {tmp_path / "lake" / "Sample Data" / "out.csv": 1}


# ------------------------------------------------------------ DateTime.Parse constants
def scanned_files(script: str, base: Path) -> str | None:
    """DuckDB's count of the files the last OUTPUT's query opens (``Scanning Files: k/n`` in EXPLAIN)."""
    compiled = compile_script(script, base_dir=base)
    con = duckdb.connect()
    con.execute(compiled.prelude)
    for st in compiled.statements[:-1]:
        if st.input_copy is not None:
            _utf8_copies(st.input_copy)
        else:
            con.execute(st.sql)
    query = compiled.statements[-1].sql.removeprefix("COPY (").rsplit(") TO '", 1)[0]
    m = re.search(r"Scanning Files: (\d+/\d+)", con.execute("EXPLAIN " + query).fetchall()[0][1])
    return m.group(1) if m else None


VEHICLES = {
    "v/vehicle1_09152014.csv": b"a\n",
    "v/vehicle1_09162014.csv": b"b\n",
    "v/vehicle2_09162014.txt": b"c\n",
    "v/vehicle1_09172014.csv": b"d,too,many\n",  # reading it would fail the run
}


@pytest.mark.parametrize(
    ("declare", "where", "expected"),
    [
        ("", 'date >= DateTime.Parse("2014-09-16") AND date < DateTime.Parse("2014-09-17")', b'"b",1\r\n"c",2\r\n'),
        ("", 'date == System.DateTime.Parse("9/16/2014") && vid == 2', b'"c",2\r\n'),
        ("", 'date < DateTime.Parse("2014/9/16 12:00:00 AM")', b'"a",1\r\n'),
        ('DECLARE @from DateTime = DateTime.Parse("2014-09-16T00:00");\n', "date == @from", b'"b",1\r\n"c",2\r\n'),
    ],
)
def test_datetime_parse_of_a_constant_skips_files(tmp_path: Path, declare: str, where: str, expected: bytes) -> None:
    write(tmp_path, VEHICLES)
    script = (
        declare + "@d = EXTRACT s string, vid int, date DateTime\n"
        '  FROM "v/vehicle{vid}_{date:MM}{date:dd}{date:yyyy}.{*}" USING Extractors.Csv();\n'
        f'OUTPUT (SELECT s, vid FROM @d WHERE {where}) TO "o.csv" ORDER BY s USING Outputters.Csv();'
    )
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == expected
    assert int(scanned_files(script, tmp_path).split("/")[0]) == expected.count(b"\r\n")  # type: ignore[union-attr]


def where_of(text: str) -> n.Expr:
    st = parse(f"@r = SELECT * FROM @x WHERE {text};", "s.usql").statements[0]
    return st.query.where  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ('DateTime.Parse("2014-09-16")', (2014, 9, 16, 0, 0, 0)),
        ('DateTime.Parse(" 2014-9-6 7:05:09 ")', (2014, 9, 6, 7, 5, 9)),
        ('DateTime.Parse("12/11/2013 12:30 PM")', (2013, 12, 11, 12, 30, 0)),
        ('DateTime.Parse("12/11/2013 12:30:01 am")', (2013, 12, 11, 0, 30, 1)),
        ('DateTime.Parse("2016/1/1")', (2016, 1, 1, 0, 0, 0)),
    ],
)
def test_datetime_parse_folds_to_a_constructor(text: str, parts: tuple[int, ...]) -> None:
    folded = fold_datetime_parse(where_of(f"d == {text}"))
    assert isinstance(folded, n.Binary) and isinstance(folded.right, n.New)
    assert tuple(a.value for a in folded.right.args) == parts  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text",
    [
        'DateTime.Parse("2014-02-30")',  # no such date: the call stays and fails at run time, as in C#
        'DateTime.Parse("2015-05-10T12:15:35.1230000Z")',  # fractions and time zones are left to the call
        'DateTime.Parse("13:00 PM 1/1/2014")',
        "DateTime.Parse(s)",
        'MyNs.DateTime.Parse("2014-09-16")',
    ],
)
def test_datetime_parse_left_alone(text: str) -> None:
    where = where_of(f"d == {text}")
    assert fold_datetime_parse(where) is where


# ------------------------------------------------------------ extractor options
def extract(tmp_path: Path, files: dict[str, bytes], columns: str, path: str, options: str) -> bytes:
    write(tmp_path, files)
    script = (
        f'@e = EXTRACT {columns} FROM "{path}" USING Extractors.Csv({options});\n'
        'OUTPUT @e TO "o.csv" USING Outputters.Csv();'
    )
    run_script(script, base_dir=tmp_path)
    return (tmp_path / "o.csv").read_bytes()


def test_skip_first_n_rows_applies_to_each_file_of_a_file_set(tmp_path: Path) -> None:
    # the reference: the extractor parameters apply to all the selected files equally
    files = {"fs/p1.csv": b"header\n1\n2\n", "fs/p2.csv": b"header\n3\n"}
    got = extract(tmp_path, files, "v int, p int", "fs/p{p}.csv", "skipFirstNRows: 1")
    assert sorted(got.split(b"\r\n")) == [b"", b"1,1", b"2,1", b"3,2"]


def test_silent_skips_rows_with_the_wrong_column_count_and_nulls_bad_nullable_values(tmp_path: Path) -> None:
    files = {"in.csv": b"1,a\n2\n3,c,d\nx,e\n4,f\n"}
    assert extract(tmp_path, files, "v int?, s string", "in.csv", "silent: true") == b'1,"a"\r\n,"e"\r\n4,"f"\r\n'


def test_silent_still_fails_a_bad_value_of_a_non_nullable_column(tmp_path: Path) -> None:
    with pytest.raises(UsqlError) as info:
        extract(tmp_path, {"in.csv": b"1,a\nx,e\n"}, "v int, s string", "in.csv", "silent: true")
    assert info.value.construct == "runtime"
    assert "input string 'x' is not in a correct format for int (column v)" in info.value.message


def test_quoting_false_keeps_quotes_and_splits_at_every_delimiter(tmp_path: Path) -> None:
    got = extract(tmp_path, {"in.csv": b'a"b,"c"\n"d,e"\n'}, "s string, t string", "in.csv", "quoting: false")
    assert got == b'"a""b","""c"""\r\n"""d","e"""\r\n'


def test_default_row_delimiters(tmp_path: Path) -> None:
    # one file may end its rows with \r\n, another with \r or \n
    files = {"r/1.csv": b"a,1\r\nb,2\r\n", "r/2.csv": b"c,3\rd,4", "r/3.csv": b"e,5\n"}
    got = extract(tmp_path, files, "s string, n int, k int", "r/{k}.csv", "")
    assert sorted(got.split(b"\r\n")) == [b"", b'"a",1,1', b'"b",2,1', b'"c",3,2', b'"d",4,2', b'"e",5,3']


def test_null_escape(tmp_path: Path) -> None:
    got = extract(tmp_path, {"in.csv": b'\\N,1\n"\\N",2\n'}, "s string, n int", "in.csv", 'nullEscape: "\\\\N"')
    assert got == b',1\r\n"\\N",2\r\n'


def test_char_format_uint16_reads_character_codes(tmp_path: Path) -> None:
    got = extract(tmp_path, {"in.csv": b"65,9731\n 66 ,\n"}, "c char, d char?", "in.csv", "")
    assert got == b"65,9731\r\n66,\r\n"
