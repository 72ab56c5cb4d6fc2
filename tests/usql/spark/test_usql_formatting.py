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
import random
import struct
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from support.spark import SparkRig

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script
from airflow_provider_amlpipe.usql.csformat import custom_number, dotnet_real
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs import custom_number_sql
from airflow_provider_amlpipe.usql.dialects.duckdb.prelude import PRELUDE
from airflow_provider_amlpipe.usql.dialects.spark.exprs import cs_tostring as spark_tostring
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


# ------------------------------------------------------------ custom numeric formats ("0.00", "#,##0", "0%")
# (value, format, .NET Framework's invariant-culture text), worked out by hand from .NET's "Custom numeric format
# strings" page (its examples are marked "doc") and the Framework's rules: a double is first rounded to 15
# significant digits (a float to 7), then to the format's places, half away from zero; a value that rounds to zero
# has no sign and takes the third (zero) section when there is one.

CUSTOM_TABLE: list[tuple[Any, str, str]] = [
    (1234.5678, "00000", "01235"),  # doc
    (0.45678, "0.00", "0.46"),  # doc
    (1234.5678, "#####", "1235"),  # doc
    (0.45678, "#.##", ".46"),  # doc
    (3, "####", "3"),  # doc: 0003
    (34.5, "00", "35"),  # doc: away from zero
    (2147483647, "##,#", "2,147,483,647"),  # doc
    (2147483647, "#,#,,", "2,147"),  # doc: each comma before the point divides by 1000
    (0.3697, "%#0.00", "%36.97"),  # doc
    (0.3697, "##.0 %", "37.0 %"),  # doc
    (0.03192, "#0.## \u2030", "31.92 \u2030"),  # doc: per mille
    (68, "# 'degrees'", "68 degrees"),  # doc
    (987654, "\\###00\\#", "#987654#"),  # doc: \# is a literal #
    (1234, "##;(##)", "1234"),  # doc: sections
    (-1234, "##;(##)", "(1234)"),  # doc
    (0, "##;(##);**Zero**", "**Zero**"),  # doc
    (-1234, "##;;**Zero**", "-1234"),  # doc: an empty section is the first one, with a minus sign
    (2.675, "0.00", "2.68"),  # 2.67499999999999982236431605997495353221893310546875 is 2.67500000000000 to 15 digits
    (1.005, "0.00", "1.01"),  # 1.00499999999999989... likewise
    (0.1 + 0.2, "0.0000000000000000", "0.3000000000000000"),  # 15 digits: 0.300000000000000
    (0.123456, "0.0000", "0.1235"),
    (-0.00004, "0.0000", "0.0000"),  # rounds to zero: no sign
    (-0.00004, "0.0000;(0.0000);nil", "nil"),  # rounds to zero in the negative section: the zero section
    (-0.4, "#", ""),
    (0.0, "#.##", ""),
    (0.0, "0.##", "0"),
    (1.5, "0.##", "1.5"),
    (1.0, "0.##", "1"),
    (-2.5, "0", "-3"),
    (1234567.891, "#,##0.00", "1,234,567.89"),
    (-1234.5, "$#,##0.00", "-$1,234.50"),
    (0.5, "$#,##0.00", "$0.50"),
    (12.34, "0 'kg'", "12 kg"),
    (12.34, '0.0 "m;s"', "12.3 m;s"),  # a quoted ; does not start a section
    (0.256, "0%", "26%"),
    (0.2567, "0.0%", "25.7%"),
    (1234567, "#,#", "1,234,567"),
    (0, "#,#", ""),
    (12.5, ".00", "12.50"),  # no integer placeholder: the integer digits go before the point
    (1234567, "(###) ###-####", "() 123-4567"),  # the digits fill the placeholders from the right
    (5551234567, "(###) ###-####", "(555) 123-4567"),
    (123, "00000", "00123"),
    (-42, "0000", "-0042"),
    (5, "abc", "abc"),  # no placeholder: no digits
    (1e20, "#,##0", "100,000,000,000,000,000,000"),
    (-1e-20, "0.00", "0.00"),
    (99.995, "0.00", "100.00"),
    (float("nan"), "0.00", "NaN"),
    (float("-inf"), "#,##0", "-Infinity"),
    (Decimal("2.675"), "0.00", "2.68"),
    (Decimal("-0.005"), "0.00;(0.00)", "(0.01)"),
    (Decimal("1234.5"), "#,##0.000", "1,234.500"),
]


@pytest.mark.parametrize(("value", "fmt", "text"), CUSTOM_TABLE, ids=[f"{v!r}-{f}" for v, f, _ in CUSTOM_TABLE])
def test_custom_number_reference(value: Any, fmt: str, text: str) -> None:
    assert custom_number(value, fmt) == text


def _sql_type(value: Any) -> tuple[UType, str]:
    if isinstance(value, Decimal):
        return UType("decimal", False), "DECIMAL(38,10)"
    if isinstance(value, int):
        return UType("long", False), "BIGINT"
    return UType("double", False), "DOUBLE"


def test_custom_number_sql_matches_the_table(duck: duckdb.DuckDBPyConnection) -> None:
    bad = []
    for value, fmt, text in CUSTOM_TABLE:
        typ, sql_type = _sql_type(value)
        got = duck.execute(f"SELECT {custom_number_sql('x', typ, fmt)} FROM (SELECT ?::{sql_type} AS x)", [str(value)])
        if got.fetchone() != (text,):
            bad.append((value, fmt, text))
    assert not bad


#: Formats for the random comparison: every specifier, sections, grouping, scaling, text between digits.
CUSTOM_FORMATS = [
    "0.00", "0.0000", "0", "#,##0.00", "#.##", "00000", "0.##", "0%", "0.0%", "#,#", "$#,##0.00", "0 'kg'",
    "0;(0)", "0.00;(0.00);zero", "#,##0,,", ".00", "(###) ###-####", "0.0\u2030", "#,##0.0;-#,##0.0;", "##0.0#",
    "0.0;;z", "00.##x#0", "#,#,,.0", "'a'0\\.0",
]  # fmt: skip


@pytest.mark.parametrize("fmt", CUSTOM_FORMATS)
def test_custom_number_sql_matches_the_reference(duck: duckdb.DuckDBPyConnection, fmt: str) -> None:
    doubles = [*random_doubles(600), math.inf, -math.inf, math.nan, -0.0, 5e-324, 12345678901234.25, 0.5, -0.05]
    floats = [v for v in map(as_float, doubles[:300]) if math.isfinite(v)]
    ints = [0, 1, -1, 5, -999, 1000, 123456789, -(2**63), 2**63 - 1] + [random.Random(i).randint(-10**12, 10**12)
                                                                          for i in range(50)]  # fmt: skip
    decimals = ["2.675", "-0.005", "1234567890123456789012345678.1234567891", "0", "-0.0000000001", "99.995"]
    checks: list[tuple[str, str, list[Any], Any]] = [
        ("double", "DOUBLE", doubles, lambda v: custom_number(v, fmt)),
        ("float", "FLOAT", floats, lambda v: custom_number(v, fmt, 7)),
        ("long", "BIGINT", ints, lambda v: custom_number(v, fmt)),
        ("decimal", "DECIMAL(38,10)", decimals, lambda v: custom_number(Decimal(v), fmt)),
    ]
    for name, sql_type, values, reference in checks:
        sql = custom_number_sql("x", UType(name, False), fmt)
        got = duck.execute(f"SELECT x, {sql} FROM (SELECT unnest(?::{sql_type}[]) AS x)", [values]).fetchall()
        bad = [(v, g) for v, (_, g) in zip(values, got, strict=True) if g != reference(v)]
        assert not bad, (name, bad[:5])


CUSTOM_SCRIPT = """
DECLARE @n string = (1234567).ToString("#,##0");
@d = SELECT * FROM (VALUES (2.675, 1234567, -0.5m, (double?) null)) AS T(x, i, m, z);
@r = SELECT x.ToString("0.0000") AS a, i.ToString("#,##0.00") AS b, m.ToString("0.0;(0.0)") AS c,
            String.Format("{0:0.00}|{1,10:#,#}|{2:0%}|{3:0.0}", x, i, 0.125, z) AS d, (x * 0.1).ToString("$0.00") AS e,
            @n AS f, (42).ToString("00000") AS g, i.ToString("") AS h, x.ToString("") AS k
     FROM @d;
OUTPUT @r TO "o.tsv" USING Outputters.Tsv(quoting: false);
"""


def test_custom_formats_in_a_script(tmp_path: Path) -> None:
    # ToString, String.Format (alignment, a null argument), a constant folded at compile time
    run_script(CUSTOM_SCRIPT, base_dir=tmp_path)
    assert (tmp_path / "o.tsv").read_bytes().decode() == (
        "2.6750\t1,234,567.00\t(0.5)\t2.68| 1,234,567|13%|\t$0.27\t1,234,567\t00042\t1234567\t2.675\r\n"
    )


def test_custom_format_of_a_constant_in_a_path(tmp_path: Path) -> None:
    # output paths are folded at compile time: csformat.custom_number formats the constant
    script = 'DECLARE @p string = "o" + (7).ToString("000;(0)") + ".csv";\n'
    script += "OUTPUT (SELECT * FROM (VALUES (1)) AS T(a)) TO @p USING Outputters.Csv();"
    run_script(script, base_dir=tmp_path)
    assert (tmp_path / "o007.csv").read_bytes() == b"1\r\n"


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ('x.ToString("0.00E+00")', "exponent notation (E+0) in custom numeric formats is not supported"),
        ('x.ToString("0;0e-0")', "exponent notation (e+0)"),
        ('x.ToString("#,#x#")', "digit grouping (,) with text between the integer digit placeholders"),
        ('String.Format("{0:P1}", x)', "numeric format 'P1' is not supported"),
    ],
)
def test_custom_format_errors(expr: str, fragment: str) -> None:
    script = f"@d = SELECT * FROM (VALUES (1.5)) AS T(x);\n@r = SELECT {expr} AS s FROM @d;\n"
    script += 'OUTPUT @r TO "o.csv" USING Outputters.Csv();\n'
    with pytest.raises(UsqlError) as info:
        compile_script(script, source_name="s.usql")
    e = info.value
    assert (e.line, e.construct) == (2, "format") and fragment in e.message, e.render()


# ------------------------------------------------------------ Spark (the same strings; slow)


@pytest.fixture
def spark(spark_rig: SparkRig) -> Any:
    # The session every Spark test shares: a JVM's working directory is fixed for the process, and
    # other tests resolve relative paths in it.
    return spark_rig.session


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
