"""The Spark SQL emitter (``translate_to_spark``): golden scripts, one snippet per construct, DECLARE and the CLI.
Every emitted script is validated with sqlglot's Spark dialect (``sparktools.validate``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.sparktools import CASES, NOT_SPARK, load_case, spark, validate

from airflow_provider_amlpipe.usql import UsqlError, translate_to_spark

# ---------------------------------------------------------------- golden cases


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_translates_or_is_refused(case: Path) -> None:
    text, config = load_case(case)
    try:
        sql = translate_to_spark(text, source_name=f"{case.name}/script.usql", params=config.get("params"))  # type: ignore[arg-type]
    except UsqlError as e:
        assert NOT_SPARK in e.message, e.render()
        assert e.file == f"{case.name}/script.usql" and e.line >= 1 and e.column >= 1
        return
    stmts = validate(sql)
    outputs = len(re.findall(r"^\s*OUTPUT\b", text, re.M))
    extracts = len(re.findall(r"\bEXTRACT\b", text))
    assert sum(s.startswith("INSERT OVERWRITE DIRECTORY") for s in stmts) == outputs
    assert sum("USING csv OPTIONS (path " in s for s in stmts) >= extracts
    assert "/*+ COALESCE(1) */" in sql


def test_golden_fragments() -> None:
    by_name = {c.name: c for c in CASES}
    joins = spark(load_case(by_name["joins_sets"])[0])
    assert "LEFT SEMI JOIN" in joins and "LEFT ANTI JOIN" in joins and "LEFT OUTER JOIN" in joins
    assert "UNION ALL" in joins and "EXCEPT DISTINCT" in joins
    assert "FROM VALUES (1, 'x'), (2, 'y'), (3, CAST(NULL AS STRING)) AS usql_v(c0, c1)" in joins
    agg = spark(load_case(by_name["aggregates"])[0])
    assert "USING csv OPTIONS (path 'sales.tsv', header 'false', sep '\\t'" in agg
    assert "mode 'FAILFAST'" in agg and "CAST(sum(`s`.`qty`) AS BIGINT)" in agg
    assert "row_number() OVER (PARTITION BY `s`.`region` ORDER BY `s`.`amount` DESC NULLS LAST)" in agg
    assert "ORDER BY `region` ASC NULLS LAST" in agg  # U-SQL orders nulls last in either direction
    expr = spark(load_case(by_name["expressions"])[0])
    assert "header 'true'" in expr  # skipFirstNRows: 1 and outputHeader: true
    assert 'AS `"id","upper",' in expr
    assert "date_format(`p`.`born`, 'yyyyMMdd')" in expr
    assert "coalesce(`p`.`city`, 'none')" in expr


# ---------------------------------------------------------------- constructs

PRE = '@p = EXTRACT id int, name string, city string, score int?, born DateTime FROM "in.csv" USING Extractors.Csv();\n'


def select(exprs: str, where: str = "") -> str:
    sql = spark(PRE + f'@r = SELECT {exprs} FROM @p{where};\nOUTPUT @r TO "out.csv" USING Outputters.Csv();')
    return sql


@pytest.mark.parametrize(
    ("exprs", "fragments"),
    [
        ("score == 3 AS a, id == 1 AS b", ["(`p`.`score` <=> 3) AS `a`", "(`p`.`id` = 1) AS `b`"]),
        ("score != id AS a", ["(NOT (`p`.`score` <=> `p`.`id`)) AS `a`"]),
        ("city == null AS a", ["(`p`.`city` IS NULL) AS `a`"]),
        ("city ?? \"x\" AS a", ["coalesce(`p`.`city`, 'x') AS `a`"]),
        ("id > 2 ? \"big\" : \"small\" AS a", ["CASE WHEN (`p`.`id` > 2) THEN 'big' ELSE 'small' END"]),
        ("score > 2 AS a", ["coalesce((`p`.`score` > 2), FALSE)"]),
        ("name.Length AS a, name.ToUpper() AS b, name.Trim() AS c", ["char_length(`p`.`name`)", "upper(`p`.`name`)",
                                                                    "trim(BOTH ' \\t\\r\\n' FROM `p`.`name`)"]),
        ("name.Substring(1, 2) AS a, name.IndexOf(\"o\") AS b", ["substring(`p`.`name`, (1) + 1, 2)",
                                                              "CAST(instr(`p`.`name`, 'o') - 1 AS INTEGER)"]),
        ("name.StartsWith(\"a\") AS a, name.Contains(\"b\") AS b, name.Replace(\"a\", \"b\") AS c",
         ["startswith(`p`.`name`, 'a')", "contains(`p`.`name`, 'b')", "replace(`p`.`name`, 'a', 'b')"]),
        ("name.Split(';')[1] AS a", ["try_element_at(split(`p`.`name`, ';', -1), (1) + 1)"]),
        ("name.Split(city).Count AS a", ["split(`p`.`name`, concat('\\\\Q', `p`.`city`, '\\\\E'), -1)"]),
        ("name.Split('.', '|', ':').Count AS a", ["split(`p`.`name`, '\\\\.|\\\\||:', -1)"]),
        ("SUM(id) OVER (PARTITION BY city) AS a", ["CAST(sum(`p`.`id`) OVER (PARTITION BY `p`.`city`) AS BIGINT)"]),
        ("born.Year AS a, born.Date AS b, born.AddDays(1) AS c", ["year(`p`.`born`)", "CAST(CAST(`p`.`born` AS DATE)",
                                                                  "timestampadd(DAY, 1, `p`.`born`)"]),
        ("born.ToString(\"yyyy-MM-dd HH:mm\") AS a", ["date_format(`p`.`born`, 'yyyy-MM-dd HH:mm')"]),
        ("DateTime.Parse(name) AS a", ["try_to_timestamp(trim(`p`.`name`), 'M/d/yyyy h:mm:ss a')", "raise_error("]),
        ("string.IsNullOrEmpty(city) AS a", ["(`p`.`city` IS NULL OR `p`.`city` = '')"]),
        ("Math.Round(1.25, 1) AS a, Math.Abs(-id) AS b", ["bround(CAST('1.25' AS DOUBLE), 1)", "abs((-`p`.`id`))"]),
        ("Convert.ToInt32(name) AS a, (int?) score AS b", ["coalesce(CASE WHEN `p`.`name` IS NULL", "`p`.`score`"]),
        ("id / 2 AS a, id % 2 AS b", ["CAST((`p`.`id` DIV 2) AS INT)", "(`p`.`id` % 2)"]),
        ("\"n=\" + id AS a", ["concat(coalesce('n=', ''), coalesce(CAST(`p`.`id` AS STRING), ''))"]),
        ("id IN (1, 2) AS a, name LIKE \"a%\" AS b, id BETWEEN 1 AND 3 AS c",
         ["(`p`.`id` IN (1, 2))", "(`p`.`name` LIKE 'a%')", "(`p`.`id` BETWEEN 1 AND 3)"]),
        ("new SqlArray<string>{\"a\", \"b\"}.Count AS a", ["size(CAST(array(CAST('a' AS STRING)"]),
    ],
)  # fmt: skip
def test_expression(exprs: str, fragments: list[str]) -> None:
    sql = select(exprs)
    for f in fragments:
        assert f in sql, f"{f!r} not in\n{sql}"


def test_extract_typed_projection() -> None:
    sql = spark('@p = EXTRACT a int, b int?, c string, d bool, e DateTime?, f char FROM "x.txt" '
                'USING Extractors.Text(delimiter: \'|\', quoting: false, silent: true, nullEscape: "\\\\N");\n'
                'OUTPUT @p TO "o.txt" USING Outputters.Tsv(outputHeader: false, quoting: false);')  # fmt: skip
    assert "CREATE OR REPLACE TEMPORARY VIEW `usql_raw_1` (`a` STRING, `b` STRING, `c` STRING" in sql
    assert "sep '|', quote '', escape '', nullValue '\\\\N', emptyValue '\\uFDD0', mode 'DROPMALFORMED'" in sql
    assert "raise_error('conversion error: null or empty value for the non-nullable column a')" in sql
    assert "try_cast(trim(`b`) AS INT) END AS `b`" in sql  # silent + nullable: bad values become null
    assert "CASE WHEN `c` = '\\uFDD0' THEN '' ELSE `c` END AS `c`" in sql  # quoted "" stays an empty string
    assert "CASE lower(trim(`d`)) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END" in sql
    assert "decode(unhex(lpad(hex(" in sql
    assert "USING text OPTIONS (lineSep '\\r\\n'" in sql


def test_explode_aggregates_windows_sets() -> None:
    sql = spark(PRE + '@a = SELECT id, new SqlArray<string>(name.Split(\';\')) AS parts FROM @p;\n'
                '@e = SELECT id, part FROM @a CROSS APPLY EXPLODE(parts) AS T(part);\n'
                '@o = SELECT id, part FROM @a OUTER APPLY EXPLODE(parts) AS T(part);\n'
                '@g = SELECT id, ARRAY_AGG(part) AS ps, COUNT(DISTINCT part) AS n, MAP_AGG(part, id) AS m '
                'FROM @e GROUP BY id;\n'
                '@w = SELECT id, SUM(id) OVER (PARTITION BY name ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND '
                'CURRENT ROW) AS run, LAG(id) OVER (ORDER BY id) AS prev FROM @p;\n'
                '@s = SELECT id FROM @p INTERSECT SELECT id FROM @e;\n'
                '@x = SELECT * FROM @p ORDER BY id OFFSET 1 ROWS FETCH 2 ROWS;\n'
                'OUTPUT @w TO "w.csv" ORDER BY id FETCH 5 ROWS USING Outputters.Csv();')  # fmt: skip
    assert "LATERAL VIEW explode(`a`.`parts`) `T` AS `part`" in sql
    assert "LATERAL VIEW OUTER explode(`a`.`parts`) `T` AS `part`" in sql
    # ARRAY_AGG keeps nulls: collect_list would skip them, but not the structs holding them
    assert "transform(collect_list(named_struct('v', `e`.`part`)), usql_e -> usql_e.v)" in sql
    assert "count(DISTINCT `e`.`part`)" in sql and "map_from_entries(collect_list(struct(`e`.`part`, `e`.`id`)))" in sql
    assert "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW" in sql and "lag(`p`.`id`) OVER" in sql
    assert "INTERSECT DISTINCT" in sql
    assert "LIMIT 2\nOFFSET 1" in sql and "LIMIT 5" in sql


def test_right_semijoin_and_joins() -> None:
    sql = spark(PRE + "@b = SELECT id AS k FROM @p;\n"
                "@r = SELECT b.k FROM @p AS a RIGHT SEMIJOIN @b AS b ON a.id == b.k;\n"
                "@f = SELECT a.id, b.k FROM @p AS a FULL OUTER JOIN @b AS b ON a.id == b.k CROSS JOIN @b AS c;\n"
                'OUTPUT @r TO "r.csv" USING Outputters.Csv();')  # fmt: skip
    assert "`rs_b` AS `b`\nLEFT SEMI JOIN `rs_p` AS `a` ON (`a`.`id` = `b`.`k`)" in sql
    assert "FULL OUTER JOIN" in sql and "CROSS JOIN `rs_b` AS `c`" in sql


def test_params_and_declare() -> None:
    sql = spark('DECLARE EXTERNAL @min int = 2;\nDECLARE @s string = "it\'s";\n'
                '@a = SELECT * FROM (VALUES (1), (2)) AS T(k);\n'
                'OUTPUT (SELECT @s + k AS s FROM @a WHERE k >= @min) TO "o.csv" USING Outputters.Csv();',
                params={"min": "7"})  # fmt: skip
    assert "'7'" in sql and "'it\\'s'" in sql
    with pytest.raises(UsqlError, match="match no DECLARE EXTERNAL"):
        translate_to_spark("DECLARE @x int = 1;", params={"nope": "1"})


def test_cli_translate(tmp_path: Path) -> None:
    script = tmp_path / "s.usql"
    script.write_text('@p = EXTRACT a int FROM "@@in@@" USING Extractors.Csv();\n'
                      'OUTPUT @p TO "o.csv" USING Outputters.Csv();\n')  # fmt: skip
    base = [sys.executable, "-m", "airflow_provider_amlpipe.usql", "translate"]
    r = subprocess.run([*base, "--to", "spark", str(script), "--param", "in=data.csv"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "USING csv OPTIONS (path 'data.csv'" in r.stdout
    validate(r.stdout)
    (tmp_path / "data.csv").write_text("1\n")
    r = subprocess.run([*base, "--to", "duckdb", str(script), "--param", "in=data.csv"], capture_output=True,
                       text=True, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "read_csv" in r.stdout
    script.write_text('@p = EXTRACT a int FROM "x.csv" USING Extractors.Csv(skipFirstNRows: 2);\n')
    r = subprocess.run([*base, "--to", "spark", str(script)], capture_output=True, text=True)
    assert r.returncode == 2 and f"{script}:1:39: error: skipFirstNRows: {NOT_SPARK}" in r.stderr
