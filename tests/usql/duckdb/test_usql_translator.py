"""The dialect-neutral expression translator: C# members are known once, a dialect without SQL for one refuses it
through ``Translator.unsupported``, and a member that does not exist is the same script error in every dialect."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, translate_to_spark
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs import ExprTranslator
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed
from airflow_provider_amlpipe.usql.translator import Translator

NOT_SPARK = "cannot be translated to Spark SQL"
PRE = '@p = EXTRACT s string, d DateTime FROM "in.csv" USING Extractors.Csv();\n'


def compile_duckdb(text: str, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a,2001-02-03\n")
    compile_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")


def script(expr: str) -> str:
    return PRE + f'@r = SELECT {expr} AS c FROM @p;\nOUTPUT @r TO "out.csv" USING Outputters.Csv();\n'


def no_variables(v: n.Variable) -> Typed:
    raise AssertionError(f"no variables here, got @{v.name}")


class NoYears(ExprTranslator):
    """DuckDB without SQL for DateTime.Year: a dialect that leaves a template out."""

    NOT_TRANSLATED = "cannot be translated to NoYears SQL: "
    TEMPLATES: ClassVar[dict[str, str]] = {k: v for k, v in ExprTranslator.TEMPLATES.items() if k != "DateTime.Year"}


def year_of_d() -> tuple[n.Member, Scope]:
    pos = n.Pos(3, 7)
    return n.Member(n.Name("d", pos), "Year", pos), Scope([(None, "d", t.DATETIME)])


def test_a_member_without_a_template_is_refused_through_unsupported() -> None:
    member, scope = year_of_d()
    assert ExprTranslator("s.usql", no_variables).tr(member, scope) == ('CAST(year("d") AS INTEGER)', t.INT)
    with pytest.raises(UsqlError) as ei:
        NoYears("s.usql", no_variables).tr(member, scope)
    e = ei.value
    assert (e.line, e.column, e.construct) == (3, 7, "member")
    assert e.message == "cannot be translated to NoYears SQL: DateTime.Year has no translation"


def test_the_neutral_translator_writes_standard_sql_and_refuses_the_rest() -> None:
    member, scope = year_of_d()
    with pytest.raises(UsqlError, match=r"cannot be translated to this SQL dialect: DateTime\.Year"):
        Translator("s.usql", no_variables).tr(member, scope)
    pos = n.Pos(1, 1)
    upper = n.Call(n.Member(n.Name("s", pos), "ToUpper", pos), (), pos)
    assert Translator("s.usql", no_variables).tr(upper, Scope([(None, "s", t.STRING)])) == ('upper("s")', t.STRING)


def test_regex_is_refused_by_spark_and_translated_for_duckdb(tmp_path: Path) -> None:
    text = script('Regex.IsMatch(s, "a+")')
    compile_duckdb(text, tmp_path)
    with pytest.raises(UsqlError) as ei:
        translate_to_spark(text, source_name="s.usql")
    assert ei.value.construct == "Regex.IsMatch" and NOT_SPARK in ei.value.message
    assert "regexp_matches" not in ei.value.message


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("s.Frobnicate()", "method string.Frobnicate(...) is not supported"),
        ("d.Fortnight", "DateTime.Fortnight is not supported"),
        ("Math.Cbrt(2.0)", "Math.Cbrt(...) is not supported"),
        ("DateTime.Tomorrow", "DateTime.Tomorrow is not supported"),
    ],
)
def test_a_member_nobody_knows_is_the_same_error_in_both_dialects(expr: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(UsqlError) as duck:
        compile_duckdb(script(expr), tmp_path)
    with pytest.raises(UsqlError) as spark:
        translate_to_spark(script(expr), source_name="s.usql")
    assert message in duck.value.message and NOT_SPARK not in spark.value.message
    assert spark.value.render() == duck.value.render()
