"""U-SQL values that follow .NET rather than SQL: AVG over integers is a truncated ``long?``, ``Split`` yields a C#
``string[]`` (``.Length``, indexing). Each runs on DuckDB and, translated, on the test session's Spark."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.spark import SparkRig
from support.usqltools import err, run

from airflow_provider_amlpipe.usql import translate_to_spark

NUMBERS = "g\tn\na\t3\na\t2\nb\t-7\nb\t-8\nc\t5\nc\t\n"
AVG_SCRIPT = """
@s = EXTRACT g string, n int? FROM "in.tsv" USING Extractors.Tsv(skipFirstNRows: 1);
@r = SELECT g, AVG(n) AS av, AVG(DISTINCT n) AS ad, AVG((long?) n * 3) AS a3 FROM @s GROUP BY g;
OUTPUT @r TO "out/r.csv" ORDER BY g USING Outputters.Csv();
"""
#: a: (3 + 2) / 2 = 2.5 -> 2; b: -7.5 -> -7 (towards zero, not down); c: nulls are skipped, 5 / 1
AVG_LINES = ['"a",2,2,7', '"b",-7,-7,-22', '"c",5,5,15', ""]

WORDS = "s\nred;green;blue\n;x\nsolo\n"
SPLIT_SCRIPT = """
@s = EXTRACT s string FROM "in.tsv" USING Extractors.Tsv(skipFirstNRows: 1);
@r = SELECT s, s.Split(';').Length AS n, s.Split(';')[s.Split(';').Length - 1] AS last,
            s.Split(';', 'e').Length AS ne, new string[]{s, "x"}.Length AS two, s.Split(';', 'o').Length AS no
     FROM @s;
OUTPUT @r TO "out/r.csv" ORDER BY s USING Outputters.Csv();
"""
SPLIT_LINES = ['";x",2,"x",2,2,2', '"red;green;blue",3,"blue",7,2,3', '"solo",1,"solo",1,2,3', ""]


def run_case(text: str, data: str, tmp_path: Path) -> list[str]:
    (tmp_path / "in.tsv").write_text(data)
    return run(text, tmp_path).split("\r\n")


def test_avg_of_integers_is_a_truncated_long(tmp_path: Path) -> None:
    assert run_case(AVG_SCRIPT, NUMBERS, tmp_path) == AVG_LINES


def test_avg_of_integers_is_typed_long(tmp_path: Path) -> None:
    (tmp_path / "in.tsv").write_text(NUMBERS)
    e = err(AVG_SCRIPT.replace("AVG(n) AS av", "AVG(n).Length AS av"), tmp_path)
    assert "long?.Length is not supported" in e.message


def test_avg_of_doubles_keeps_the_fraction(tmp_path: Path) -> None:
    text = AVG_SCRIPT.replace("n int?", "n double?")
    assert run_case(text, NUMBERS, tmp_path)[:2] == ['"a",2.5,2.5,7', '"b",-7.5,-7.5,-22']


def test_split_is_a_string_array(tmp_path: Path) -> None:
    assert run_case(SPLIT_SCRIPT, WORDS, tmp_path) == SPLIT_LINES


def test_char_array_and_regex_split_lengths(tmp_path: Path) -> None:
    # DuckDB only: the Spark translation refuses ToCharArray and has no Regex.Split
    text = SPLIT_SCRIPT.replace("s.Split(';', 'e').Length", "s.ToCharArray().Length").replace(
        "s.Split(';', 'o').Length", 'Regex.Split(s, "[;o]").Length'
    )
    assert [line.split(",")[3:] for line in run_case(text, WORDS, tmp_path)[:3]] == [
        ["2", "2", "2"],
        ["14", "2", "3"],
        ["4", "2", "3"],
    ]


def test_a_sql_array_has_no_length(tmp_path: Path) -> None:
    (tmp_path / "in.tsv").write_text(WORDS)
    e = err(SPLIT_SCRIPT.replace("s.Split(';').Length AS n", "new SqlArray<string>(s.Split(';')).Length AS n"),
            tmp_path)  # fmt: skip
    assert "SqlArray<string>.Length is not supported" in e.message


def run_on_spark(rig: SparkRig, text: str, data: str) -> list[str]:
    """The lines the Spark translation of ``text`` writes to ``out/r.csv``, with ``data`` as ``in.tsv``."""
    sql = translate_to_spark(text, source_name="s.usql")
    rig.reset()
    (rig.cwd / "in.tsv").write_text(data)
    for chunk in sql.split(";\n"):
        body = "\n".join(line for line in chunk.splitlines() if not line.startswith("--")).strip().rstrip(";")
        if body:
            rig.session.sql(body)
    parts = sorted((rig.cwd / "out" / "r.csv").glob("part-*"))
    return b"".join(p.read_bytes() for p in parts).decode("utf-8").split("\r\n")


@pytest.mark.slow
@pytest.mark.parametrize(("text", "data", "lines"), [(AVG_SCRIPT, NUMBERS, AVG_LINES),
                                                     (SPLIT_SCRIPT, WORDS, SPLIT_LINES)])  # fmt: skip
def test_same_on_spark(spark_rig: SparkRig, text: str, data: str, lines: list[str]) -> None:
    assert run_on_spark(spark_rig, text, data) == lines


def test_spark_truncates_with_a_cast() -> None:
    # Spark's CAST of a double to BIGINT drops the fraction (its trunc() is a date function)
    assert "CAST(avg(" in translate_to_spark(AVG_SCRIPT, source_name="s.usql")
