"""Value formatting and extractor/outputter edge cases, each checked against the reference it comes from:

- doubles and floats become text as .NET Framework's ``ToString()`` ("G": 15 significant digits for a double, 7 for
  a float; ADLA ran .NET Framework 4.x). Microsoft's window functions article (azure-docs
  ``data-lake-analytics-use-window-functions.md``, CUME_DIST) prints ``0.666666666666667``; the rules are those of
  .NET's "Standard numeric format strings" page (General specifier: fixed-point when the exponent is greater than -5
  and less than the precision, trailing zeros removed, exponent ``E+XX`` with at least two digits; ties away from
  zero on .NET Framework);
- Outputter Parameters (``encoding``: "a code point that is invalid for the specified encoding" is a runtime error;
  ``rowDelimiter``: ``string (max length=1)``);
- Extractor Parameters (the ``nullEscape`` table: a quoted ``""`` into ``int?`` is ERR).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script
from airflow_provider_amlpipe.usql.csformat import dotnet_real
from airflow_provider_amlpipe.usql.emit_duckdb import PRELUDE
from airflow_provider_amlpipe.usql.spark_exprs import cs_tostring as spark_tostring
from airflow_provider_amlpipe.usql.types import UType

# (value, double.ToString(), ((float) value).ToString()), worked out by hand with .NET Framework's rules
TABLE: list[tuple[float, str, str]] = [
    (0.1 + 0.2, "0.3", "0.3"),  # 0.30000000000000004: 15 digits are 0.300000000000000
    (2 / 3, "0.666666666666667", "0.6666667"),  # the window functions article's CUME_DIST
    (-2 / 3, "-0.666666666666667", "-0.6666667"),
    (25 / 3, "8.33333333333333", "8.333333"),  # the divide page's 25 / 3.0
    (1 / 3, "0.333333333333333", "0.3333333"),
    (0.1, "0.1", "0.1"),  # the float is 0.100000001490116: 7 digits are 0.1000000
    (1.5, "1.5", "1.5"),
    (100.0, "100", "100"),
    (1e15, "1E+15", "1E+15"),  # exponent 15 = the precision: scientific
    (1e14, "100000000000000", "1E+14"),  # exponent 14: fixed for a double, scientific for a float (>= 7)
    (99999999999999.98, "100000000000000", "1E+14"),  # rounds up to exponent 14
    (999999999999999.9, "1E+15", "1E+15"),  # rounds up to exponent 15
    (123456789012345678.0, "1.23456789012346E+17", "1.234568E+17"),
    (1234567.0, "1234567", "1234567"),
    (16777216.0, "16777216", "1.677722E+07"),
    (1e20, "1E+20", "1E+20"),
    (1e100, "1E+100", "Infinity"),  # three exponent digits; (float) 1e100 overflows
    (1e-5, "1E-05", "1E-05"),  # exponent -5: scientific, two exponent digits
    (-1e-7, "-1E-07", "-1E-07"),
    (0.0001, "0.0001", "0.0001"),  # exponent -4: fixed
    (0.00012345678901234567, "0.000123456789012346", "0.0001234568"),
    (9.999999999999999e-05, "0.0001", "0.0001"),  # rounds up to exponent -4
    (5e-324, "4.94065645841247E-324", "0"),  # the smallest double; (float) underflows to 0
    (1.7976931348623157e308, "1.79769313486232E+308", "Infinity"),
    (-0.0, "0", "0"),  # .NET Framework prints no sign for negative zero (.NET Core 3.0+ prints -0)
    (math.nan, "NaN", "NaN"),
    (math.inf, "Infinity", "Infinity"),
    (-math.inf, "-Infinity", "-Infinity"),
    # exact ties at the 16th (float: 8th) digit round away from zero on .NET Framework, where C rounds to even
    (12345678901234.25, "12345678901234.3", "1.234568E+13"),
    (-12345678901234.25, "-12345678901234.3", "-1.234568E+13"),
    (813.90625, "813.90625", "813.9063"),
    (1234568.5, "1234568.5", "1234569"),
]


def as_float(v: float) -> float:
    """C#'s ``(float) v``: the nearest single (overflow to infinity)."""
    if math.isfinite(v) and abs(v) > 3.4028235677973366e38:
        return math.copysign(math.inf, v)
    return float(struct.unpack("<f", struct.pack("<f", v))[0])


@pytest.mark.parametrize(("value", "double", "single"), TABLE, ids=[repr(v) for v, _, _ in TABLE])
def test_dotnet_real(value: float, double: str, single: str) -> None:
    assert dotnet_real(value) == double
    assert dotnet_real(as_float(value), 7) == single


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute(PRELUDE)
    yield con
    con.close()


def test_duckdb_macros_match_the_table(duck: duckdb.DuckDBPyConnection) -> None:
    for value, double, single in TABLE:
        got = duck.execute("SELECT usql_fmt_real(?::DOUBLE), usql_fmt_float(?::FLOAT)", [value, as_float(value)])
        assert got.fetchall() == [(double, single)], value


def random_doubles(n: int) -> list[float]:
    """Random bit patterns (every exponent), quotients (the 16-17 digit values arithmetic makes) and binary
    fractions (many exact ties: 2421.5625 as a float)."""
    rnd = random.Random(7)
    out: list[float] = []
    while len(out) < n:
        v = struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0]
        out += [v, rnd.randint(1, 10**6) / rnd.randint(1, 999), round(rnd.uniform(-1e4, 1e4), rnd.randint(0, 6))]
        out += [rnd.randint(-(10**9), 10**9) / 2 ** rnd.randint(0, 30), rnd.randint(-(10**16), 10**16) / 2**12]
    return [v for v in out if not math.isnan(v)]


def test_duckdb_macros_match_dotnet_real_on_random_values(duck: duckdb.DuckDBPyConnection) -> None:
    values = random_doubles(20000)
    duck.execute("CREATE TEMP TABLE vals AS SELECT unnest(?::DOUBLE[]) AS x", [values])
    got = duck.execute("SELECT x, usql_fmt_real(x), usql_fmt_float(TRY_CAST(x AS FLOAT)) FROM vals").fetchall()
    single = {x: dotnet_real(as_float(x), 7) if math.isfinite(as_float(x)) else None for x, _, _ in got}
    bad = [(x, d, f) for x, d, f in got if (d, f) != (dotnet_real(x), single[x])]
    assert not bad, bad[:10]


SCRIPT = """
DECLARE @c string = "a" + 1e20 + "|" + 0.5 + "|" + 2.0 / 3;
@d = SELECT * FROM (VALUES (25, (double?) null)) AS T(n, z);
@r = SELECT n / 3.0 AS d, (float) (n / 3.0) AS f, 1e20 AS big, 1e-5 AS small, -0.0 AS nz, z,
            "x" + (0.1 + 0.2) AS cat, String.Format("{0}|{1}", 1e15, (float) 1 / 3) AS sf, (n / 3.0).ToString() AS ts,
            Convert.ToString(1e-7) AS cv, string.Join(";", new SQL.ARRAY<double>{0.5, 1.0 / 3}) AS j, @c AS c,
            double.NaN AS nan, -1.0 / 0 AS ninf
     FROM @d;
OUTPUT @r TO "o.csv" USING Outputters.Csv(quoting: false);
"""


def test_double_text_everywhere(tmp_path: Path) -> None:
    # outputter, concatenation (also folded at compile time), String.Format, ToString, Convert.ToString, Join
    run_script(SCRIPT, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes().decode() == (
        "8.33333333333333,8.333333,1E+20,1E-05,0,,x0.3,1E+15|0.3333333,8.33333333333333,1E-07,"
        "0.5;0.333333333333333,a1E+20|0.5|0.666666666666667,NaN,-Infinity\r\n"
    )


# ------------------------------------------------------------ Spark (the same strings; slow)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.skip("pyspark is not installed")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime for Spark")
    root = tmp_path_factory.mktemp("spark-fmt")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("usql-formatting-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(root / "warehouse"))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_spark_prints_doubles_like_dotnet(spark: Any) -> None:
    values = [v for v, _, _ in TABLE] + random_doubles(3000)
    rows = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i long, x double")
    rows.createOrReplaceTempView("usql_fmt_vals")
    double = spark_tostring("x", UType("double", False))
    single = spark_tostring("CAST(x AS FLOAT)", UType("float", False))
    got = spark.sql(f"SELECT i, {double}, {single} FROM usql_fmt_vals ORDER BY i").collect()
    bad = []
    for i, d, f in got:
        v = values[i]
        if v != 0 and abs(v) < 2.2250738585072014e-308:
            continue  # subnormals (documented): DecimalFormat stops at the shortest round-trip digits
        single = as_float(v)
        if d != dotnet_real(v) or (math.isfinite(single) and f != dotnet_real(single, 7)):
            bad.append((v, d, f))
    assert not bad, bad[:10]


# ------------------------------------------------------------ K: encodings that cannot represent a character


def test_ascii_output_of_a_non_ascii_character_is_a_runtime_error(tmp_path: Path) -> None:
    # Outputter Parameters: "a runtime error during output will occur that will indicate the offending data value";
    # nothing is written, not even the script's other (earlier) outputs
    script = (
        '@d = SELECT * FROM (VALUES ("abc"), ("café")) AS T(s);\n'
        'OUTPUT @d TO "first.csv" USING Outputters.Csv();\n'
        'OUTPUT @d TO "a.csv" USING Outputters.Csv(encoding: Encoding.[ASCII], outputHeader: true);\n'
    )
    with pytest.raises(UsqlError) as info:
        run_script(script, source_name="s.usql", base_dir=tmp_path)
    e = info.value
    assert (e.line, e.column, e.construct) == (3, 1, "encoding")
    assert f"{tmp_path / 'a.csv'}: line 3 holds 'é' (U+00E9)" in e.message and "'\"café\"'" in e.message, e.message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_code_pages_write_question_marks(tmp_path: Path) -> None:
    # Outputter Parameters: with a code page, "the character will be replaced by ? (hex 3F)"
    script = '@d = SELECT * FROM (VALUES ("é€")) AS T(s);\n'
    run_script(script + 'OUTPUT @d TO "o.csv" USING Outputters.Csv(encoding: Encoding.GetEncoding(1253));',
               base_dir=tmp_path)  # fmt: skip
    assert (tmp_path / "o.csv").read_bytes() == b'"?\x80"\r\n'


# ------------------------------------------------------------ L: rowDelimiter


@pytest.mark.parametrize(
    ("delimiter", "expected"),
    [
        ('"\\u0003"', '"s","n"\x03"a",1\x03"b\'",2\x03'),  # the Outputters.Csv page's example
        ('"\'"', '"s","n"\'"a",1\'"b\'",2\''),
        ('"\\\\"', '"s","n"\\"a",1\\"b\'",2\\'),
        ('"é"', '"s","n"é"a",1é"b\'",2é'),
        ('"\\r\\n"', '"s","n"\r\n"a",1\r\n"b\'",2\r\n'),
        ("null", '"s","n"\r\n"a",1\r\n"b\'",2\r\n'),
    ],
)
def test_outputter_row_delimiter_is_any_one_character(tmp_path: Path, delimiter: str, expected: str) -> None:
    script = (
        '@d = SELECT * FROM (VALUES ("a", 1), ("b\'", 2)) AS T(s, n);\n'
        f'OUTPUT @d TO "o.csv" USING Outputters.Csv(rowDelimiter: {delimiter}, outputHeader: true);\n'
    )
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes().decode() == expected


def test_escape_character_escapes_a_custom_row_delimiter(tmp_path: Path) -> None:
    script = (
        '@d = SELECT * FROM (VALUES ("a|b")) AS T(s);\n'
        'OUTPUT @d TO "o.csv" USING Outputters.Csv(rowDelimiter: "|", escapeCharacter: \'#\', quoting: false);\n'
    )
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o.csv").read_bytes() == b"a#|b|"


@pytest.mark.parametrize(
    ("udo", "delimiter", "fragment"),
    [
        ("Outputters.Csv", '"ab"', "rowDelimiter must be one character"),
        ("Outputters.Csv", '""', "rowDelimiter must be one character"),
        ("Extractors.Csv", '"\\u0003"', "for the local extractors (the local CSV reader cannot split rows at"),
    ],
)
def test_row_delimiter_errors(tmp_path: Path, udo: str, delimiter: str, fragment: str) -> None:
    (tmp_path / "in.csv").write_text("1\n")
    source = "SELECT * FROM (VALUES (1)) AS T(n);\n" if udo.startswith("Outputters") else ""
    if not source:
        source = f'EXTRACT n int FROM "in.csv" USING {udo}(rowDelimiter: {delimiter});\n'
    outputter = f"{udo}(rowDelimiter: {delimiter})" if udo.startswith("Outputters") else "Outputters.Csv()"
    script = f'@d = {source}OUTPUT @d TO "o.csv" USING {outputter};\n'
    with pytest.raises(UsqlError) as info:
        compile_script(script, source_name="s.usql", base_dir=tmp_path)
    e = info.value
    assert (e.line, e.construct, fragment in e.message) == (2 if udo.startswith("Outputters") else 1, udo, True), e


# ------------------------------------------------------------ J: nullEscape table (Extractor Parameters)

ROW = '1,,"",\\N,#NULL#,"Some \\N fun"\n'


def extract(tmp_path: Path, typ: str, options: str) -> list[str]:
    """Each of the five fields of ROW extracted on its own as ``typ``: its text, ``null`` or ``ERR``."""
    (tmp_path / "in.csv").write_text(ROW)
    cols = ", ".join(f"c{i} {typ}" for i in range(2, 7))
    out = []
    for i in range(2, 7):
        script = (
            f'@d = EXTRACT c1 int, {cols} FROM "in.csv" USING Extractors.Csv({options});\n'
            f'@e = SELECT c{i} == null ? "null" : "<" + c{i} + ">" AS v FROM @d;\n'
            'OUTPUT @e TO "o.csv" USING Outputters.Csv(quoting: false);\n'
        )
        try:
            run_script(script, base_dir=tmp_path)
        except UsqlError as e:
            assert e.construct == "runtime", e
            out.append("ERR")
            continue
        out.append((tmp_path / "o.csv").read_text().strip())
    return out


@pytest.mark.parametrize(
    ("options", "typ", "expected"),
    [
        # nullEscape null (the default): a quoted "" is a zero-length string for both type categories
        ("", "string", ["null", "<>", "<\\N>", "<#NULL#>", "<Some \\N fun>"]),
        ("", "int?", ["null", "ERR", "ERR", "ERR", "ERR"]),
        ("nullEscape: null", "int?", ["null", "ERR", "ERR", "ERR", "ERR"]),
        ('nullEscape: ""', "int?", ["null", "null", "ERR", "ERR", "ERR"]),
        ('nullEscape: "\\\\N"', "string", ["<>", "<>", "null", "<#NULL#>", "<Some \\N fun>"]),
        # silent: true turns conversion errors of nullable types into null
        ("silent: true", "int?", ["null", "null", "null", "null", "null"]),
        ("", "double?", ["null", "ERR", "ERR", "ERR", "ERR"]),
        ("", "DateTime?", ["null", "ERR", "ERR", "ERR", "ERR"]),
    ],
)
def test_null_escape_table(tmp_path: Path, options: str, typ: str, expected: list[str]) -> None:
    assert extract(tmp_path, typ, options) == expected
