"""File-property columns of EXTRACT (``uri = FILE.URI()``, ``FILE.MODIFIED()``, ``FILE.CREATED()``,
``FILE.LENGTH()``; U-SQL Winter 2017/18 release): each test runs a small script and checks the exact output bytes,
or the error a construct gives.

Locally a file's URI is the ``file://`` URI of its absolute path (percent-encoded), MODIFIED/CREATED are its
mtime/ctime as UTC DateTimes and LENGTH its size in bytes.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script, translate_to_spark

#: 2017-12-01T08:30:00Z and 2018-01-15T23:59:59.5Z, as Unix times.
T1, T2 = 1512117000, 1516060799.5


def write(path: Path, text: str, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    os.utime(path, (mtime, mtime))
    return path


def run(text: str, tmp_path: Path) -> str:
    run_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    return (tmp_path / "out" / "r.csv").read_bytes().decode("utf-8")


def err(text: str, tmp_path: Path) -> UsqlError:
    with pytest.raises(UsqlError) as info:
        compile_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    return info.value


def test_file_set_rows_carry_their_file_properties(tmp_path: Path) -> None:
    write(tmp_path / "data" / "vehicle1.csv", "1,a\n2,b\n", T1)
    write(tmp_path / "data" / "vehicle 2.csv", "3,c\n", T2)
    text = (
        "@d = EXTRACT id int, uri = FILE.URI(), name string, modified = FILE.MODIFIED(), sz = FILE.LENGTH()\n"
        'FROM "data/vehicle{*}" USING Extractors.Csv();\n'
        'OUTPUT @d TO "out/r.csv" ORDER BY id USING Outputters.Csv(outputHeader: true);\n'
    )
    base = (tmp_path / "data").absolute().as_uri()
    assert run(text, tmp_path) == (
        '"id","uri","name","modified","sz"\r\n'
        f'1,"{base}/vehicle1.csv","a",2017-12-01T08:30:00.0000000,8\r\n'
        f'2,"{base}/vehicle1.csv","b",2017-12-01T08:30:00.0000000,8\r\n'
        f'3,"{base}/vehicle%202.csv","c",2018-01-15T23:59:59.5000000,4\r\n'
    )


def test_file_properties_in_where_and_with_pattern_columns(tmp_path: Path) -> None:
    write(tmp_path / "in" / "2017" / "big.csv", "1\n2\n3\n", T1)
    write(tmp_path / "in" / "2018" / "small.csv", "4\n", T2)
    text = (
        "@d = EXTRACT id int, year int, sz = FILE.LENGTH(), m = FILE.MODIFIED()\n"
        'FROM "in/{year}/{*}.csv" USING Extractors.Csv();\n'
        "@r = SELECT id, year, sz FROM @d WHERE sz > 2 && m < new DateTime(2018, 1, 1);\n"
        'OUTPUT @r TO "out/r.csv" ORDER BY id USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == "1,2017,6\r\n2,2017,6\r\n3,2017,6\r\n"


def test_single_file_created_is_its_utc_ctime(tmp_path: Path) -> None:
    f = write(tmp_path / "one.tsv", "7\tx\n", T1)
    created = datetime.fromtimestamp(f.stat().st_ctime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"
    text = (
        '@d = EXTRACT id int, s string, c = FILE.CREATED(), u = FILE.URI() FROM "one.tsv" USING Extractors.Tsv();\n'
        '@r = SELECT id, c, u FROM @d;\nOUTPUT @r TO "out/r.csv" USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == f'7,{created},"{f.absolute().as_uri()}"\r\n'


def test_empty_file_set_with_file_properties_is_empty(tmp_path: Path) -> None:
    (tmp_path / "none").mkdir()
    text = (
        '@d = EXTRACT id int, sz = FILE.LENGTH() FROM "none/{*}.csv" USING Extractors.Csv();\n'
        'OUTPUT @d TO "out/r.csv" USING Outputters.Csv();\n'
    )
    assert run(text, tmp_path) == ""


@pytest.mark.parametrize(
    ("columns", "construct", "where", "fragment"),
    [
        ("id int, s = FILE.SIZE()", "FILE.SIZE", (1, 31), "unknown file property FILE.SIZE(); use URI, MODIFIED"),
        ("id int, s = 5", "EXTRACT column = FILE.property()", (1, 26), "expected FILE.URI(), FILE.MODIFIED()"),
        ("id int, s = FILE.URI(1)", "syntax", (1, 35), "expected ')' (FILE.URI() takes no arguments), found '1'"),
        ("s = FILE.URI()", "EXTRACT", (1, 6), "EXTRACT needs at least one column read from the file(s)"),
        ("id int, id = FILE.URI()", "EXTRACT", (1, 22), "column 'id' is defined twice"),
    ],
)
def test_file_property_errors(
    columns: str, construct: str, where: tuple[int, int], fragment: str, tmp_path: Path
) -> None:
    write(tmp_path / "x.csv", "1\n", T1)
    e = err(f'@d = EXTRACT {columns} FROM "x.csv" USING Extractors.Csv();\n', tmp_path)
    assert (e.construct, (e.line, e.column)) == (construct, where), e.render()
    assert fragment in str(e)


def test_file_properties_need_an_encoding_read_directly(tmp_path: Path) -> None:
    write(tmp_path / "x.csv", "1\n", T1)
    text = '@d = EXTRACT id int, s = FILE.LENGTH() FROM "x.csv" USING Extractors.Csv(encoding: Encoding.UTF32);\n'
    e = err(text, tmp_path)
    assert e.construct == "FILE.property()" and "need an input encoding DuckDB reads directly" in str(e)


def test_spark_refuses_file_properties() -> None:
    text = '@d = EXTRACT id int, s = FILE.URI() FROM "x.csv" USING Extractors.Csv();\n'
    with pytest.raises(UsqlError) as info:
        translate_to_spark(text, source_name="s.usql")
    assert info.value.construct == "ExtractFileProperties"
    assert "cannot be translated to Spark SQL" in str(info.value)
