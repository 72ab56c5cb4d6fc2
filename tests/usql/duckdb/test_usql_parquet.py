"""``Extractors.Parquet()`` / ``Outputters.Parquet(...)`` (U-SQL Winter 2017/18 release notes, "Built-in Parquet
Extractor and Outputter"): Parquet types, codecs and row groups checked with DuckDB's parquet_schema/metadata, and
U-SQL -> Parquet -> U-SQL CSV round trips with exact bytes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script, translate_to_spark

PREVIEW = 'SET @@FeaturePreviews = "EnableParquetUdos:on";\n'
ROWS = (
    PREVIEW + "@d = SELECT * FROM (VALUES\n"
    "  ((bool?) true, (byte?) 1, (short?) null, 2147483647, (long?) 9223372036854775807, (float?) 123.345, 234.567,\n"
    '   (decimal?) 345.678, DateTime.Parse("2015-05-10T12:15:35.1234560"), "ala, \\"ma\\" kota"),\n'
    "  ((bool?) null, (byte?) 255, (short?) -7, -1, (long?) null, (float?) null, -0.5,\n"
    '   (decimal?) -1.125, DateTime.Parse("1999-12-31T23:59:59"), (string) null)\n'
    ") AS T(b, u8, i16, i32, i64, f, d, m, t, s);\n"
)
READ_ALL = (
    PREVIEW + "@r = EXTRACT b bool?, u8 byte?, i16 short?, i32 int, i64 long?, f float?, d double, m decimal?,"
    ' t DateTime, s string FROM "p.parquet" USING Extractors.Parquet();\n'
)


@pytest.fixture(autouse=True)
def _tmp_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLPIPE_USQL_CATALOG", str(tmp_path / "catalog"))


def schema(path: Path) -> dict[str, tuple[str, str | None, int | None, int | None]]:
    rows = duckdb.sql(
        f"SELECT name, type, converted_type, precision, scale FROM parquet_schema('{path}') "
        "WHERE name <> 'duckdb_schema'"
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def codecs(path: Path) -> set[str]:
    return {r[0] for r in duckdb.sql(f"SELECT compression FROM parquet_metadata('{path}')").fetchall()}


def compile_error(text: str, tmp_path: Path) -> UsqlError:
    with pytest.raises(UsqlError) as info:
        compile_script(text, source_name="s.usql", base_dir=tmp_path)
    return info.value


def test_output_types_follow_the_reference_table(tmp_path: Path) -> None:
    run_script(ROWS + 'OUTPUT @d TO "p.parquet" USING Outputters.Parquet();', base_dir=tmp_path)
    assert schema(tmp_path / "p.parquet") == {
        "b": ("BOOLEAN", None, None, None),
        "u8": ("INT32", "UINT_8", None, None),
        "i16": ("INT32", "INT_16", None, None),
        "i32": ("INT32", "INT_32", None, None),
        "i64": ("INT64", "INT_64", None, None),
        "f": ("FLOAT", None, None, None),
        "d": ("DOUBLE", None, None, None),
        "m": ("FIXED_LEN_BYTE_ARRAY", "DECIMAL", 28, 8),  # documented defaults: precision 28, scale 8
        "t": ("INT64", "TIMESTAMP_MICROS", None, None),
        "s": ("BYTE_ARRAY", "UTF8", None, None),
    }
    assert codecs(tmp_path / "p.parquet") == {"UNCOMPRESSED"}


def test_round_trip_to_csv_exact_bytes(tmp_path: Path) -> None:
    run_script(ROWS + 'OUTPUT @d TO "p.parquet" USING Outputters.Parquet();', base_dir=tmp_path)
    run_script(READ_ALL + 'OUTPUT @r TO "o.csv" USING Outputters.Csv();', base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == (
        b"True,1,,2147483647,9223372036854775807,123.345,234.567,345.678,2015-05-10T12:15:35.1234560,"
        b'"ala, ""ma"" kota"\r\n'
        b",255,-7,-1,,,-0.5,-1.125,1999-12-31T23:59:59.0000000,\r\n"
    )


def test_column_options_precision_scale_datetime_unit_codec(tmp_path: Path) -> None:
    script = ROWS + 'OUTPUT @d TO "p.parquet" USING Outputters.Parquet(columnOptions: "7:5.2~gzip, 8:milli");'
    compiled = compile_script(script, base_dir=tmp_path)
    assert any("one codec per file, so every column is gzip" in x for x in compiled.notes)
    run_script(script, base_dir=tmp_path)
    got = schema(tmp_path / "p.parquet")
    assert got["m"] == ("INT32", "DECIMAL", 5, 2)  # precision 1..9: INT32
    assert got["t"] == ("INT64", "TIMESTAMP_MILLIS", None, None)
    assert codecs(tmp_path / "p.parquet") == {"GZIP"}
    run_script(
        PREVIEW + '@r = EXTRACT m decimal?, t DateTime FROM "p.parquet" USING Extractors.Parquet();\n'
        'OUTPUT @r TO "o.csv" USING Outputters.Csv();',
        base_dir=tmp_path,
    )
    # 345.678 rounds to 345.68, -1.125 away from zero to -1.13; milliseconds truncate the microseconds
    assert (tmp_path / "o.csv").read_bytes() == (
        b"345.68,2015-05-10T12:15:35.1230000\r\n-1.13,1999-12-31T23:59:59.0000000\r\n"
    )


def test_different_codecs_per_column_use_the_first_named(tmp_path: Path) -> None:
    script = ROWS + 'OUTPUT @d TO "p.parquet" USING Outputters.Parquet(columnOptions: "7.8,9~snappy,4~brotli");'
    compiled = compile_script(script, base_dir=tmp_path)
    assert any("(snappy, brotli)" in x and "every column is snappy" in x for x in compiled.notes)
    run_script(script, base_dir=tmp_path)
    assert codecs(tmp_path / "p.parquet") == {"SNAPPY"}


def test_row_group_rows(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("".join(f"{i}\n" for i in range(5000)))
    script = (
        PREVIEW + '@d = EXTRACT i int FROM "i.csv" USING Extractors.Csv();\n'
        'OUTPUT @d TO "p.parquet" USING Outputters.Parquet(rowGroupRows: 2100);'
    )
    run_script(script, base_dir=tmp_path)
    sizes = duckdb.sql(f"SELECT row_group_num_rows FROM parquet_metadata('{tmp_path / 'p.parquet'}')").fetchall()
    assert [r[0] for r in sizes] == [2048, 2048, 904]  # row groups of at most 2100 rows


def test_extract_byte_array_and_binary_strings(tmp_path: Path) -> None:
    duckdb.sql(
        f"COPY (SELECT 'abc'::BLOB AS raw, '\\xC3\\xA9'::BLOB AS txt) TO '{tmp_path / 'p.parquet'}' (FORMAT parquet)"
    )
    run_script(
        PREVIEW + '@r = EXTRACT raw byte[], txt string FROM "p.parquet" USING Extractors.Parquet();\n'
        'OUTPUT @r TO "o.parquet" USING Outputters.Parquet();\n'
        '@t = SELECT txt FROM @r;\nOUTPUT @t TO "o.csv" USING Outputters.Csv();',
        base_dir=tmp_path,
    )
    assert (tmp_path / "o.csv").read_bytes() == '"é"\r\n'.encode()
    assert schema(tmp_path / "o.parquet") == {
        "raw": ("BYTE_ARRAY", None, None, None),
        "txt": ("BYTE_ARRAY", "UTF8", None, None),
    }
    assert duckdb.sql(f"SELECT raw FROM '{tmp_path / 'o.parquet'}'").fetchall() == [(b"abc",)]


def test_file_set_of_parquet_files_with_virtual_column(tmp_path: Path) -> None:
    for part in ("a", "b"):
        duckdb.sql(f"COPY (SELECT 1::INTEGER AS x) TO '{tmp_path / f'v_{part}.parquet'}' (FORMAT parquet)")
    run_script(
        PREVIEW + '@r = EXTRACT x int, part string FROM "v_{part}.parquet" USING Extractors.Parquet();\n'
        'OUTPUT @r TO "o.csv" ORDER BY part USING Outputters.Csv();',
        base_dir=tmp_path,
    )
    assert (tmp_path / "o.csv").read_bytes() == b'1,"a"\r\n1,"b"\r\n'


def test_null_into_non_nullable_column_is_a_runtime_error(tmp_path: Path) -> None:
    run_script(ROWS + 'OUTPUT @d TO "p.parquet" USING Outputters.Parquet();', base_dir=tmp_path)
    text = (
        PREVIEW
        + '@r = EXTRACT i64 long FROM "p.parquet" USING Extractors.Parquet();\n'
        + 'OUTPUT @r TO "o.csv" USING Outputters.Csv();'
    )
    with pytest.raises(UsqlError) as info:
        run_script(text, base_dir=tmp_path)
    assert "column 'i64' holds a null, but long is not nullable" in str(info.value)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ("nope int", "column 'nope' is not in the Parquet file"),
        ("i32 long", "column 'i32' is INTEGER in"),
        ("s char", "char cannot be extracted from Parquet"),
    ],
)
def test_extract_schema_errors_name_the_column(tmp_path: Path, columns: str, message: str) -> None:
    run_script(ROWS + 'OUTPUT @d TO "p.parquet" USING Outputters.Parquet();', base_dir=tmp_path)
    e = compile_error(PREVIEW + f'@r = EXTRACT {columns} FROM "p.parquet" USING Extractors.Parquet();\n'
                      'OUTPUT @r TO "o.csv" USING Outputters.Csv();', tmp_path)  # fmt: skip
    assert e.construct == "Extractors.Parquet" and e.line == 2 and message in e.message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('columnOptions: "0.2"', "decimal precision/scale does not apply to a column of type bool?"),
        ('columnOptions: "9:milli"', "'milli' does not apply to a column of type string"),
        ('columnOptions: "12~snappy"', "columnOptions names column 12"),
        ('columnOptions: "1~lz4"', "unknown compression 'lz4'"),
        ('columnOptions: "7:30"', "precision must be in [1..28]"),
        ('columnOptions: "7:5.6"', "scale must not exceed the precision"),
        ("rowGroupSize: 2000", "rowGroupSize must be an int in [1..1024]"),
        ("quoting: false", "unknown parameter 'quoting'"),
    ],
)
def test_outputter_option_errors(tmp_path: Path, options: str, message: str) -> None:
    e = compile_error(ROWS + f'OUTPUT @d TO "p.parquet" USING Outputters.Parquet({options});', tmp_path)
    assert e.construct == "Outputters.Parquet" and message in e.message


def test_unsupported_output_type_and_extractor_parameters(tmp_path: Path) -> None:
    e = compile_error(PREVIEW + "@d = SELECT * FROM (VALUES ('x')) AS T(c);\n"
                      'OUTPUT @d TO "p.parquet" USING Outputters.Parquet();', tmp_path)  # fmt: skip
    assert "column 'c' of type char cannot be written to Parquet" in e.message and "convert it to string" in e.message
    e = compile_error(PREVIEW + '@r = EXTRACT a int FROM "p.parquet" USING Extractors.Parquet(silent: true);\n'
                      'OUTPUT @r TO "o.csv" USING Outputters.Csv();', tmp_path)  # fmt: skip
    assert e.construct == "Extractors.Parquet" and "takes no parameters" in e.message


def test_spark_refuses_parquet() -> None:
    with pytest.raises(UsqlError) as info:
        translate_to_spark(ROWS + 'OUTPUT @d TO "p.parquet" USING Outputters.Parquet();', source_name="s.usql")
    assert info.value.construct == "Outputters.Parquet" and "not supported by this translation" in info.value.message
