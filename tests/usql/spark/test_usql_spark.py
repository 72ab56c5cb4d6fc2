"""The Spark SQL emitter (``translate_to_spark``): golden scripts, one snippet per construct, file sets, the
catalog, untranslatable constructs, the CLI, no DuckDB SQL in Spark output, and (slow) runs on a local
SparkSession (one per test session, tables in a temporary warehouse) compared line by line with DuckDB's.

Every emitted script is validated statement by statement with sqlglot's Spark dialect. sqlglot cannot parse
Spark's ``INSERT OVERWRITE DIRECTORY 'p' USING fmt OPTIONS (...) <query>``, so for those statements the
head is matched exactly, the OPTIONS list is parsed as part of a ``CREATE TEMPORARY VIEW ... USING``, and
the query is parsed on its own.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlglot
from support.paths import USQL_CASES
from support.spark import SparkRig

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script, substitute, translate_to_spark

CASES = sorted(p for p in USQL_CASES.iterdir() if (p / "script.usql").is_file())
NOT_SPARK = "cannot be translated to Spark SQL"
_INSERT_DIR = re.compile(r"INSERT OVERWRITE DIRECTORY ('(?:[^'\\]|\\.)*')\nUSING (csv|text) OPTIONS (\([^\n]*\))\n")


def statements(sql: str) -> list[str]:
    """The statements of an emitted script, comment lines removed."""
    out = []
    for chunk in sql.split(";\n"):
        body = "\n".join(line for line in chunk.splitlines() if not line.startswith("--")).strip().rstrip(";")
        if body:
            out.append(body)
    return out


def validate(sql: str) -> list[str]:
    """Parse every statement with sqlglot (read="spark"); raises on any parse error."""
    stmts = statements(sql)
    for st in stmts:
        m = _INSERT_DIR.match(st)
        if st.startswith("INSERT OVERWRITE DIRECTORY"):
            assert m, f"malformed INSERT OVERWRITE DIRECTORY head:\n{st[:300]}"
            sqlglot.parse_one(f"CREATE TEMPORARY VIEW v USING {m.group(2)} OPTIONS {m.group(3)}", read="spark")
            query = st[m.end() :]
            assert query.startswith("SELECT "), query[:100]
            parsed = sqlglot.parse(query, read="spark", error_level=sqlglot.ErrorLevel.RAISE)
        else:
            parsed = sqlglot.parse(st, read="spark", error_level=sqlglot.ErrorLevel.RAISE)
        assert len(parsed) == 1 and parsed[0] is not None, st[:200]
    return stmts


def load_case(case: Path) -> tuple[str, dict[str, object]]:
    config = json.loads((case / "case.json").read_text()) if (case / "case.json").exists() else {}
    text = (case / "script.usql").read_text(encoding="utf-8")
    if config.get("substitute"):
        text = substitute(text, config["substitute"])
    return text, config


def spark(text: str, **kw: object) -> str:
    sql = translate_to_spark(text, **kw)  # type: ignore[arg-type]
    validate(sql)
    return sql


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


def test_file_set_translation() -> None:
    sql = spark(
        "@r = EXTRACT msg string, at DateTime, name string, id int?\n"
        '     FROM "logs/{at:yyyy}/{at:M}/{at:dd}/{at:HH}/{name}_{id}_{*}.csv" USING Extractors.Csv();\n'
        'OUTPUT (SELECT * FROM @r WHERE at >= new DateTime(2024, 1, 15)) TO "o.csv" USING Outputters.Csv();'
    )
    # only the column read from the files is in the csv schema; the glob has one * per placeholder
    assert (
        "CREATE OR REPLACE TEMPORARY VIEW `usql_raw_1` (`msg` STRING)\nUSING csv OPTIONS (path 'logs/*/*/*/*/*_*_*.csv'"
    ) in sql
    assert "url_decode(replace(input_file_name(), '+', '%2B')) AS `usql_fs_path` FROM `usql_raw_1`" in sql
    # the regex starts at the first segment with a placeholder: the glob fixes the segments before it,
    # whatever Spark puts in front of the path (file:, abfss://container@account..., the working directory)
    rx = r"'/(\\d{4})/(\\d{1,2})/(\\d{2})/(\\d{2})/([^/]*?)_([^/]*?)_[^/]*\\.csv$'"
    assert f"regexp_extract(`usql_fs_path`, {rx}, 6) AS `usql_fs_g6` FROM (" in sql
    date = (
        "try_cast(concat(`usql_fs_g1`, '-', lpad(`usql_fs_g2`, 2, '0'), '-', lpad(`usql_fs_g3`, 2, '0'), ' ', "
        "lpad(`usql_fs_g4`, 2, '0'), ':', '00', ':', '00') AS TIMESTAMP_NTZ)"
    )
    assert f"{date} AS `at`,\n  `usql_fs_g5` AS `name`,\n  try_cast(trim(`usql_fs_g6`) AS INT) AS `id`" in sql
    # files outside the pattern or without a valid date are not in the set; an {id} that is no int fails
    assert (f"WHERE CASE WHEN NOT (`usql_fs_path` RLIKE {rx}) THEN FALSE\n  WHEN NOT coalesce({date} IS NOT NULL, "
            "FALSE) THEN FALSE\n  ELSE CASE WHEN try_cast(trim(`usql_fs_g6`) AS INT) IS NULL AND trim(`usql_fs_g6`) "
            "<> '' THEN raise_error('conversion error: a file name part of {id} is not a valid int?') ELSE TRUE END END"
            ) in sql  # fmt: skip
    uri = spark(
        '@r = EXTRACT a string, d string FROM "abfss://c@acct.dfs.core.windows.net/in/x y/{d}.tsv" '
        'USING Extractors.Tsv();\nOUTPUT @r TO "o.csv" USING Outputters.Csv();'
    )
    assert "path 'abfss://c@acct.dfs.core.windows.net/in/x y/*.tsv'" in uri
    assert r"RLIKE '/([^/]*?)\\.tsv$'" in uri
    # a column named like the helper columns: they get another prefix
    own = spark(
        '@r = EXTRACT usql_fs_path string, d string FROM "/in/{d}.csv" USING Extractors.Csv();\n'
        'OUTPUT @r TO "o.csv" USING Outputters.Csv();'
    )
    assert "`usql_fs_path` AS `usql_fs_path`,\n  `usql_fs___g1` AS `d`" in own
    assert "AS `usql_fs___path` FROM `usql_raw_1`" in own


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ('@r = EXTRACT a string FROM "/d/{x}.csv" USING Extractors.Csv();', "'x' is not in the EXTRACT column list"),
        ('@r = EXTRACT a string, x int FROM "/d/{x:yyyy}.csv" USING Extractors.Csv();', "must be DateTime"),
        ('@r = EXTRACT a string FROM "/d/{*}.csv", "/e.csv" USING Extractors.Csv();', "the only path"),
        ('@r = EXTRACT x string FROM "/d/{x}.csv" USING Extractors.Csv();', "at least one column read"),
        ('@r = EXTRACT a string, x DateTime FROM "/d/{x:q}.csv" USING Extractors.Csv();', "unknown date part"),
        ('OUTPUT (SELECT * FROM (VALUES (1)) AS V(a)) TO "/o/{*}.csv" USING Outputters.Csv();',
         "not supported in OUTPUT"),
    ],
)  # fmt: skip
def test_file_set_errors_match_duckdb(script: str, message: str, tmp_path: Path) -> None:
    """A malformed file set is the same error (construct, position, message) as on the DuckDB path."""
    with pytest.raises(UsqlError) as spark_error:
        translate_to_spark(script, source_name="s.usql")
    with pytest.raises(UsqlError) as duck_error:
        compile_script(script, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    assert message in spark_error.value.message and NOT_SPARK not in spark_error.value.message
    assert spark_error.value.render() == duck_error.value.render()


def test_catalog_translation() -> None:
    sql = spark("CREATE DATABASE IF NOT EXISTS lake;\nUSE DATABASE lake;\n"
                "CREATE TABLE IF NOT EXISTS t (k int, v string, c char, n long?, tags SqlArray<string>, "
                "INDEX i CLUSTERED (k ASC) DISTRIBUTED BY HASH (k) INTO 4);\n"
                'INSERT INTO t (k, c) VALUES (1, \'x\');\n'
                "CREATE TABLE lake.dbo.s AS SELECT k, n FROM t;\n"
                'OUTPUT dbo.s TO "o.csv" USING Outputters.Csv();\n'
                "DROP TABLE IF EXISTS s;\nUSE DATABASE master;\n"
                "DROP DATABASE lake;\nDROP DATABASE IF EXISTS lake;")  # fmt: skip
    assert "CREATE DATABASE IF NOT EXISTS `lake`;" in sql and "USE `lake`;" in sql
    assert (
        "-- dropped: INDEX i CLUSTERED (k ASC) DISTRIBUTED BY HASH (k) INTO 4 (Spark tables "
        "have no clustered index or distribution)\nCREATE TABLE IF NOT EXISTS `lake`.`t` (\n"
        "  `k` INT NOT NULL COMMENT 'int',\n  `v` STRING COMMENT 'string',\n  `c` STRING NOT NULL COMMENT 'char',\n"
        "  `n` BIGINT COMMENT 'long?',\n  `tags` ARRAY<STRING> COMMENT 'SqlArray<string>'\n) USING parquet;"
    ) in sql
    # unlisted columns get null; every value is cast to its column's type
    assert (
        "INSERT INTO `lake`.`t` (`k`, `v`, `c`, `n`, `tags`)\nSELECT CAST(`c1` AS INT), CAST(NULL AS STRING), "
        "CAST(`c2` AS STRING), CAST(NULL AS BIGINT), CAST(NULL AS ARRAY<STRING>) FROM ("
    ) in sql
    assert (
        "CREATE TABLE `lake`.`s` USING parquet AS\nSELECT CAST(`k` AS INT) AS `k`, CAST(`n` AS BIGINT) AS `n` "
        "FROM (\nSELECT `t`.`k` AS `k`,\n  `t`.`n` AS `n`\nFROM `lake`.`t` AS `t`"
    ) in sql
    assert "SELECT `k`, `n` FROM `lake`.`s`" in sql
    assert "DROP TABLE IF EXISTS `lake`.`s`;" in sql and "USE `default`;" in sql
    assert "DROP DATABASE `lake` CASCADE;" in sql and "-- note: database lake does not exist (IF EXISTS)" in sql


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("CREATE DATABASE d;\nCREATE DATABASE d;", "database 'd' already exists"),
        ("CREATE DATABASE d;\n@r = SELECT * FROM d.dbo.t;", "unknown table d.dbo.t (tables in d: none)"),
        ("CREATE DATABASE d;\nCREATE TABLE d.dbo.t (a int);\nCREATE TABLE d.dbo.t (a int);", "already exists"),
        ("CREATE DATABASE d;\nCREATE TABLE d.dbo.t (a int);\nDROP TABLE d.dbo.t;\nDROP TABLE d.dbo.t;",
         "unknown table d.dbo.t"),
        ("CREATE DATABASE d;\nUSE DATABASE d;\nDROP DATABASE d;", "is in use"),
        ("DROP DATABASE d;\nUSE DATABASE d;", "database 'd' does not exist"),
        ("DROP DATABASE master;", "master database cannot be dropped"),
        ("CREATE TABLE t (a int);\nINSERT INTO t (b) VALUES (1);", "has no column 'b'"),
        ("CREATE TABLE t (a int, b int);\nINSERT INTO t (b) VALUES (1);", "'a' (int) is not nullable"),
        ("CREATE TABLE t (a int);\nINSERT INTO t VALUES (1, 2);", "yields 2 column(s) but 1 are inserted"),
        ('CREATE TABLE t (a int);\nINSERT INTO t VALUES ("x");', "column 'c1' is string but t.a is int"),
        ("CREATE TABLE t (a int?);\nINSERT INTO t SELECT (long?) 1 AS x FROM (VALUES (1)) AS V(y);",
         "column 'x' is long? but t.a is int?"),
    ],
)  # fmt: skip
def test_catalog_errors(script: str, message: str) -> None:
    """What the script itself shows to be wrong is an error, as on the DuckDB path (not "cannot be translated")."""
    with pytest.raises(UsqlError, match=re.escape(message)) as ei:
        translate_to_spark(script, source_name="s.usql")
    assert NOT_SPARK not in ei.value.message


@pytest.mark.parametrize(
    ("script", "construct", "where"),
    [
        ('@p = EXTRACT a int FROM "abfss://{c}@acct.dfs.core.windows.net/x.csv" USING Extractors.Csv();',
         "file set", (1, 25)),
        ('@p = EXTRACT a int FROM "/d/{*}/a\\\\b.csv" USING Extractors.Csv();', "file set", (1, 25)),
        ('@p = EXTRACT a int FROM "/d/{*}/../b.csv" USING Extractors.Csv();', "file set", (1, 25)),
        ('@p = EXTRACT a int, b byte[] FROM "/d/{b}.csv" USING Extractors.Csv();', "file set", (1, 35)),
        ('CREATE DATABASE default;', "DATABASE", (1, 1)),
        ('CREATE TABLE db.sales.t (a int);', "schema", (1, 14)),
        ('@r = SELECT * FROM db.dbo.t;', "table", (1, 20)),
        ('USE DATABASE shop;\nINSERT INTO t VALUES (1);', "table", (2, 13)),
        ("CREATE TABLE t (a int, p int, INDEX i CLUSTERED (a) PARTITIONED BY (p) DISTRIBUTED BY HASH (a));",
         "PARTITIONED BY", (1, 1)),
        ('@p = EXTRACT a int FROM "x.csv" USING Extractors.Csv(skipFirstNRows: 2);', "skipFirstNRows", (1, 39)),
        ('@p = EXTRACT a int FROM "x.csv" USING Extractors.Csv(encoding: Encoding.Unicode);', "encoding", (1, 39)),
        ('@p = EXTRACT a int FROM "x.csv" USING Extractors.Csv();\n'
         '@q = SELECT a, b FROM @p CROSS APPLY EXPLODE(new SqlArray<int>{1}) AS T(b) INNER JOIN @p AS z ON a == z.a;',
         "JOIN", (2, 76)),
        ('@p = EXTRACT a DateTime FROM "x.csv" USING Extractors.Csv();\n@q = SELECT a.Ticks AS t FROM @p;',
         "DateTime.Ticks", (2, 14)),
    ],
)  # fmt: skip
def test_untranslatable(script: str, construct: str, where: tuple[int, int]) -> None:
    with pytest.raises(UsqlError) as ei:
        translate_to_spark(script, source_name="s.usql")
    e = ei.value
    assert e.construct == construct and NOT_SPARK in e.message, e.render()
    assert (e.file, e.line, e.column) == ("s.usql", *where), e.render()


def test_unknown_node_types_are_refused() -> None:

    from airflow_provider_amlpipe.usql import nodes as n
    from airflow_provider_amlpipe.usql.duckdb_exprs import Scope
    from airflow_provider_amlpipe.usql.emit_spark import SparkEmitter

    @dataclass(frozen=True)
    class FutureStatement:
        pos: n.Pos

    @dataclass(frozen=True)
    class FutureExpr:
        pos: n.Pos

    em = SparkEmitter("s.usql", {})
    with pytest.raises(UsqlError, match=r"s\.usql:4:2: error: FutureStatement: cannot be translated to Spark SQL"):
        em.translate(n.Script([FutureStatement(n.Pos(4, 2))]))  # type: ignore[list-item]
    with pytest.raises(UsqlError, match=r"s\.usql:5:6: error: FutureExpr: cannot be translated to Spark SQL"):
        em.x.tr(FutureExpr(n.Pos(5, 6)), Scope())  # type: ignore[arg-type]
    with pytest.raises(UsqlError, match="FutureExpr: cannot be translated"):
        em.query(FutureExpr(n.Pos(1, 1)))  # type: ignore[arg-type]
    with pytest.raises(UsqlError, match="FutureExpr: cannot be translated"):
        em.source_sql(FutureExpr(n.Pos(1, 1)))  # type: ignore[arg-type]


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


# ---------------------------------------------------------------- Spark itself


def run_both(
    rig: SparkRig, case: Path, text: str, tmp_path: Path, params: dict[str, str] | None = None
) -> dict[Path, tuple[list[str], list[str]]]:
    """Run ``text`` with the files of ``case`` on DuckDB and, translated, on Spark.

    Returns, per output (relative path), the lines Spark wrote and the lines DuckDB wrote.
    """
    sql = translate_to_spark(text, source_name=case.name, params=params)
    validate(sql)
    rig.reset()
    shutil.copytree(case, rig.cwd, dirs_exist_ok=True, ignore=shutil.ignore_patterns("expected"))
    duck = tmp_path / "duck" / case.name
    shutil.copytree(case, duck, ignore=shutil.ignore_patterns("expected"))
    report = run_script(text, source_name=case.name, params=params, base_dir=duck,
                        catalog_dir=tmp_path / "catalog" / case.name)  # fmt: skip
    for st in statements(sql):
        rig.session.sql(st)
    out = {}
    for path in report.rows_written:
        rel = path.relative_to(duck)
        parts = sorted((rig.cwd / rel).glob("part-*"))
        assert parts, f"{case.name}: Spark wrote no part file for {rel}"
        got = b"".join(p.read_bytes() for p in parts).decode("utf-8").split("\r\n")
        out[rel] = (got, path.read_bytes().decode("utf-8").split("\r\n"))
    return out


def assert_same_lines(case: str, outputs: dict[Path, tuple[list[str], list[str]]], ordered: bool = True) -> None:
    assert outputs, f"{case}: no outputs"
    for rel, (got, want) in outputs.items():
        if not ordered:
            got, want = sorted(got), sorted(want)
        assert got == want, f"{case}/{rel}: Spark rows differ from DuckDB's:\n{got}\n{want}"


CONSTRUCTS_DATA = (
    '1,"Ann Lee",Oslo,10,2001-02-03,1.25,true,1.50\n'
    "2,Bob,,20,1999-12-31 13:45:00,2.5,False,2\n"
    '3,"Cy ""Q""",Oslo,,2010-07-04T06:07:08,-3.75,TRUE,0.125\n'
    '4,  Dot ,"",5,1/2/2003 4:05:06 PM,0,false,10\n'
)
CONSTRUCTS = """
@p = EXTRACT id int, name string, city string, score int?, born DateTime, amt double, flag bool, price decimal
     FROM "people.csv" USING Extractors.Csv();
@r = SELECT id, name.ToLower() AS lo, name.Trim() AS tr, name.TrimStart() AS ts, name.Length AS len,
       name.Contains("o") AS c1, name.StartsWith("A") AS c2, name.EndsWith("b") AS c3, name.Substring(1) AS sub1,
       name.LastIndexOf("o") AS li, name.Replace("o", "0") AS rep, name.PadLeft(8, '*') AS pl,
       name.Split(' ')[0] AS sp0, score ?? 0 AS sc, score.HasValue AS hv, score.GetValueOrDefault() AS gv,
       score == 10 AS eq, score != 10 AS ne, score > 5 AS gt, id / 2 AS half, id % 2 AS odd, amt / 2 AS ahalf,
       (int) amt AS iamt, Convert.ToInt32(amt) AS camt, Math.Round(amt, 1) AS ramt, Math.Floor(amt) AS famt,
       Math.Abs(-amt) AS aamt, Math.Max(id, 2) AS mx, born.Month AS mo, born.Day AS d, born.Hour AS h,
       born.DayOfYear AS doy, born.Date AS dt, born.AddHours(1.5) AS ah, born.AddMonths(1) AS am,
       born.ToString("dddd, MMMM d yyyy h:mm tt") AS f1, born.ToString("s") AS f2, born.ToShortDateString() AS f3,
       int.Parse("42") + id AS parsed, DateTime.Parse("1/2/2003 4:05:06 PM") AS dp, new DateTime(2020, 1, 2) AS nd,
       flag AS fl, !flag AS nf, price AS pr, price * 2 AS pr2, "x" + amt AS xs, "y" + flag AS ys, "z" + price AS zs,
       id IN (1, 3) AS inl, name LIKE "%o%" AS lk, score BETWEEN 5 AND 15 AS bt,
       string.IsNullOrWhiteSpace(city) AS ws, string.Concat(name, "-", id) AS cc, (long) id * 3000000000L AS big,
       'A' AS ch, city == "" ? "empty" : city ?? "null" AS cy
     FROM @p;
OUTPUT @r TO "out/r.csv" ORDER BY id USING Outputters.Csv(outputHeader: true);
@w = SELECT city, id, RANK() OVER (PARTITION BY city ORDER BY score DESC) AS rk,
            SUM(amt) OVER (PARTITION BY city) AS tot, LEAD(name) OVER (ORDER BY id) AS nxt FROM @p;
OUTPUT @w TO "out/w.tsv" ORDER BY id USING Outputters.Tsv(quoting: false, nullEscape: "NULL");
@g = SELECT city, COUNT(*) AS n, AVG(score) AS av, MIN(born) AS mn, MAX(amt) AS mx, COUNT(DISTINCT flag) AS nf
     FROM @p GROUP BY city HAVING COUNT(*) > 0;
OUTPUT @g TO "out/g.csv" ORDER BY city USING Outputters.Csv(dateTimeFormat: "yyyy-MM-dd");
@e = SELECT id, name + "&#" AS [a&"b], amt FROM @p;
OUTPUT @e TO "out/e.txt" ORDER BY id USING Outputters.Text(delimiter: '&', escapeCharacter: '#', outputHeader: true);
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_translated_golden_scripts_run_on_spark(spark_rig: SparkRig, tmp_path: Path) -> None:
    """Each golden case that translates runs on local Spark; its output lines equal the DuckDB run's rows."""
    extra = tmp_path / "constructs"
    extra.mkdir()
    (extra / "people.csv").write_text(CONSTRUCTS_DATA)
    (extra / "script.usql").write_text(CONSTRUCTS)
    ran = []
    for case in [*CASES, extra]:
        text, config = load_case(case)
        try:
            translate_to_spark(text, source_name=case.name, params=config.get("params"))  # type: ignore[arg-type]
        except UsqlError:
            assert case != extra, "the constructs script must translate"
            continue
        outputs = run_both(spark_rig, case, text, tmp_path, config.get("params"))  # type: ignore[arg-type]
        assert_same_lines(case.name, outputs, ordered="ORDER BY" in text)
        ran.append(case.name)
    assert {"aggregates", "catalog_tables", "collections", "expressions", "file_sets", "joins_sets",
            "notebook_employees", "constructs"} <= set(ran)  # fmt: skip


FILE_SET_FILES = {
    "logs/2024/01/15/09/app one.csv": "start,1\nretry,2\n",  # a space: %20 in Spark's file URI
    "logs/2024/01/15/10/a+b%c.csv": "plus,3\n",  # '+' and '%' in the URI (url_decode reads '+' as a space)
    "logs/2024/01/16/00/é.csv": "accent,4\n",
    "logs/2024/02/01/23/app one.csv": "feb,5\n",
    "logs/2024/1x/01/00/bad.csv": "bad month,6\n",  # the glob finds it, the pattern does not match it
    "logs/2024/01/15/09/notes.txt": "not csv,7\n",
    "logs/2024/02/30/00/x.csv": "no such day,8\n",  # matches, but the parts form no date: not in the set
    "ids/7_a.tsv": "seven\n",
    "ids/12_b.tsv": "twelve\nzwölf\n",
    "ids/x.tsv": "no id\n",
    "days/2024/0131/05_2024.txt": "kept\n",  # {d:yyyy} twice: the parts agree
    "days/2024/0201/06_2023.txt": "dropped\n",  # ... or the file is not in the set
}
FILE_SET_SCRIPT = """
@r = EXTRACT msg string, n int, at DateTime, name string
     FROM "logs/{at:yyyy}/{at:MM}/{at:dd}/{at:HH}/{name}.csv" USING Extractors.Csv();
@late = SELECT at, name, msg, n FROM @r WHERE at >= new DateTime(2024, 1, 15, 10, 0, 0) AND at.Month == 1;
OUTPUT @late TO "out/late.csv" ORDER BY at, msg USING Outputters.Csv();
OUTPUT (SELECT name, COUNT(*) AS c, SUM(n) AS s, MIN(at) AS first FROM @r GROUP BY name)
    TO "out/names.csv" ORDER BY name USING Outputters.Csv(outputHeader: true);
@i = EXTRACT v string, id int FROM "ids/{id}_{*}.tsv" USING Extractors.Tsv();
OUTPUT (SELECT id, v FROM @i WHERE id > 7) TO "out/ids.csv" ORDER BY id, v USING Outputters.Csv();
@d = EXTRACT v string, d DateTime, h int? FROM "days/{d:yyyy}/{d:MM}{d:dd}/{h}_{d:yyyy}.txt" USING Extractors.Text();
OUTPUT @d TO "out/days.csv" USING Outputters.Csv();
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_file_sets_run_on_spark(spark_rig: SparkRig, tmp_path: Path) -> None:
    """Date parts, a name part with characters Spark percent-encodes, a typed {id}, {*}, files the pattern rejects."""
    case = tmp_path / "file_set_names"
    for rel, content in FILE_SET_FILES.items():
        (case / rel).parent.mkdir(parents=True, exist_ok=True)
        (case / rel).write_text(content, encoding="utf-8")
    outputs = run_both(spark_rig, case, FILE_SET_SCRIPT, tmp_path)
    assert_same_lines(case.name, outputs)
    late, _ = outputs[Path("out/late.csv")]
    assert late[0] == '2024-01-15T10:00:00.0000000,"a+b%c","plus",3' and len(late) == 3  # + trailing ""
    names, _ = outputs[Path("out/names.csv")]
    assert '"app one",3,8,2024-01-15T09:00:00.0000000' in names and not any("bad" in x for x in names)
    assert outputs[Path("out/ids.csv")][0] == ['12,"twelve"', '12,"zwölf"', ""]
    assert outputs[Path("out/days.csv")][0] == ['"kept",2024-01-31T00:00:00.0000000,5', ""]


CATALOG_SCRIPT = """
CREATE DATABASE IF NOT EXISTS lake;
CREATE TABLE lake.dbo.t (k int, v string, c char, n long?, d DateTime?, m decimal, tags SqlArray<string>,
    INDEX i CLUSTERED (k ASC) DISTRIBUTED BY HASH (k));
INSERT INTO lake.dbo.t (k, v, c, m) VALUES (1, "a", 'x', 1.5m), (2, "b,\\"q\\"", 'y', 2m);
INSERT INTO lake.dbo.t
    SELECT k + 10 AS k, v, c, (long?) k * 3000000000L AS n, (DateTime?) new DateTime(2020, 1, 2, 3, 4, 5) AS d, m,
           new SqlArray<string>{v, "z"} AS tags
    FROM lake.dbo.t;
USE DATABASE lake;
CREATE TABLE IF NOT EXISTS s (INDEX j CLUSTERED (k) DISTRIBUTED BY HASH (k)) AS
    SELECT k, tags.Count AS nt, string.Join("+", tags) AS j FROM t WHERE tags != null;
CREATE TABLE IF NOT EXISTS s AS SELECT k, 0 AS nt, "" AS j FROM t;
OUTPUT (SELECT k, v, c, n, d, m FROM t) TO "out/t.csv" ORDER BY k USING Outputters.Csv();
OUTPUT lake.dbo.s TO "out/s.csv" ORDER BY k USING Outputters.Csv(outputHeader: true);
DROP TABLE s;
USE DATABASE master;
CREATE TABLE copy AS SELECT * FROM lake.dbo.t WHERE k < 10;
OUTPUT (SELECT k, tags.Count AS n FROM copy) TO "out/copy.csv" ORDER BY k USING Outputters.Csv();
DROP TABLE IF EXISTS copy;
DROP DATABASE lake;
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_catalog_round_trip_on_spark(spark_rig: SparkRig, tmp_path: Path) -> None:
    """Databases and tables: typed columns, INSERT with a column list and from a table, CTAS, reads, drops."""
    case = tmp_path / "catalog_round_trip"
    case.mkdir()
    outputs = run_both(spark_rig, case, CATALOG_SCRIPT, tmp_path)
    assert_same_lines(case.name, outputs)
    assert outputs[Path("out/t.csv")][0][2] == '11,"a",120,3000000000,2020-01-02T03:04:05.0000000,1.5'  # char: code
    assert outputs[Path("out/s.csv")][0][:2] == ['"k","nt","j"', '11,2,"a+z"']
    catalog = spark_rig.session.catalog
    assert not catalog.databaseExists("lake") and not catalog.tableExists("default.copy")


# ---------------------------------------------------------------- no DuckDB SQL leaks into Spark output
# SparkExprTranslator subclasses the DuckDB ExprTranslator: a C# member the DuckDB translator handles and Spark
# does not override would emit DuckDB SQL. Each case below is a branch of duckdb_exprs (_static_member, _property,
# _static_call, _convert, _math, _method, _string_method, _sql_function, _aggregate); each must translate to SQL
# that Spark evaluates to DuckDB's value, or be refused.

LEAK_DATA = (
    '1,"Ann;Lee",3,2001-02-03 04:05:06.25,2.5,1.25,true,a\n'
    '2,"  bob ",,1999-12-31 23:59:59,-3.75,10,false,a\n'
    "3,Cy,7,2020-02-29 12:00:00,0.5,0.5,true,b\n"
)
LEAK_PRE = (
    "@p = EXTRACT id int, s string, n int?, d DateTime, x double, m decimal, b bool, g string\n"
    '     FROM "p.csv" USING Extractors.Csv();\n'
    "@q = SELECT id, s, n, d, x, m, b, g, new SqlArray<string>(s.Split(';')) AS arr,\n"
    '            new SqlMap<string, int>{{"k", 1}, {g, id}} AS mp FROM @p;\n'
)
ROW_CASES = [
    # _static_member
    "Math.PI", "Math.E", "DateTime.Now > new DateTime(2000, 1, 1)", "DateTime.UtcNow.Year > 2000",
    "DateTime.Today <= DateTime.Now", "DateTime.MinValue", "DateTime.MaxValue", "string.Empty", "String.Empty",
    "int.MaxValue", "long.MinValue", "Int16.MaxValue", "byte.MaxValue",
    # _property
    "s.Length", "d.Year", "d.Month", "d.Day", "d.Hour", "d.Minute", "d.Second", "d.Millisecond", "d.DayOfYear",
    "d.Date", "d.Ticks", "n.HasValue", "n.Value", "arr.Count", "mp.Count", 'string.Join(",", mp.Keys)',
    'string.Join(",", mp.Values)',
    # _static_call, _convert
    "string.IsNullOrEmpty(s)", "string.IsNullOrWhiteSpace(s)", "string.Concat(s, n, x)", 'string.Join("-", arr)',
    "SqlArray.Create(s.Split(';')).Count", "Convert.ToInt32(x)", 'Convert.ToInt64("12")', "Convert.ToInt16(m)",
    "Convert.ToByte(3.5)", 'Convert.ToDouble("1.5")', "Convert.ToSingle(id)", 'Convert.ToDecimal("2.5")',
    "Convert.ToBoolean(id)", 'Convert.ToDateTime("2020-01-02")', "Convert.ToDateTime(d)", "Convert.ToDateTime(id)",
    "Convert.ToString(x)", "Convert.ToString(b)", 'int.Parse(" 42 ")', 'Int64.Parse("-7")', 'short.Parse("12")',
    'byte.Parse("255")', 'double.Parse("2.5")', 'float.Parse("0.25")', 'decimal.Parse("3.75")', 'bool.Parse("True")',
    'DateTime.Parse("2020-01-02 03:04:05")', 'Guid.Parse("6F9619FF-8B86-D011-B42D-00C04FC964FF")',
    'sbyte.Parse("-128")', 'UInt16.Parse("65535")', 'uint.Parse(" 4294967295")', 'ulong.Parse("18446744073709551615")',
    'int.TryParse("1")',
    # _math
    "Math.Abs(x)", "Math.Ceiling(x)", "Math.Floor(x)", "Math.Truncate(x)", "Math.Sign(x)", "Math.Sqrt(id)",
    "Math.Exp(x)", "Math.Log(id)", "Math.Log(id, 2)", "Math.Log10(id)", "Math.Sin(x)", "Math.Cos(x)", "Math.Tan(x)",
    "Math.Max(id, 2)", "Math.Min(x, 1.0)", "Math.Pow(x, 2)", "Math.Round(x)", "Math.Round(m, 1)",
    "Math.Round(x, id)",
    # _method, _string_method
    "x.ToString()", "d.ToString()", "b.ToString()", "m.ToString()", 'd.ToString("yyyy-MM-dd HH:mm:ss.fff tt")',
    'x.ToString("F2")', 's.Equals("Cy")', "n.GetValueOrDefault()", "n.GetValueOrDefault(5)", "d.AddDays(1.5)",
    "d.AddHours(-2)", "d.AddMinutes(30)", "d.AddSeconds(0.5)", "d.AddMilliseconds(250)", "d.AddMonths(1)",
    "d.AddYears(1)", "d.ToShortDateString()", 'arr.Contains("Lee")', 'arr.IndexOf("Lee")', 'mp.ContainsKey("k")',
    "s.ToUpper()", "s.ToUpperInvariant()", "s.ToLower()", "s.ToLowerInvariant()", "s.Trim()", "s.Trim('A', 'e')",
    "s.TrimStart()", "s.TrimEnd()", 's.Contains("o")', 's.StartsWith("A")', 's.EndsWith(" ")', "s.Substring(1)",
    "s.Substring(1, 2)", 's.IndexOf("e")', 's.LastIndexOf("e")', 's.Replace("e", "E")', "s.Split(';')[0]",
    "s.Split(';', ',')[0]", "s.Split(';', ' ')[1]", 's.Split(new string[]{"e"}, StringSplitOptions.None).Count',
    "string.Join(\"/\", s.Split(new char[]{';', ' '}, StringSplitOptions.RemoveEmptyEntries))",
    "s.PadLeft(8)", "s.PadRight(8, '*')", "s[0]",
    # string.Join / String.Format (_string_join, _string_format, _formatted), arrays, KeyValuePair, LINQ
    'String.Format("{0}-{1,4}:{2,-6}:{3:yyyy-MM-dd HH}:{{x}}", s, id, b, d)', 'string.Format("{0} {1}", x, n)',
    'String.Format("{0:F2}", x)', 'string.Join("-", new string[]{"a", s})', 'string.Join("/", id, s, n)',
    'x.ToString("0.00")', 'id.ToString("#,##0")', 'String.Format("{0:0.0%}", m)',  # custom numeric formats
    'new KeyValuePair<string, int>("a", 1).Key', 'string.Join(",", mp.Select(p => p.Key))',
    # DayOfWeek, DateTimeKind, double constants, Compare, TimeSpan, Guid.NewGuid
    "d.DayOfWeek", "d.DayOfWeek == DayOfWeek.Saturday", '"" + d.DayOfWeek', "DateTime.SpecifyKind(d, DateTimeKind.Utc)",
    "new DateTime(2020, 1, 2, 3, 4, 5, 250, DateTimeKind.Local)", "new DateTime(2020, 1, 2, DateTimeKind.Unspecified)",
    "double.NaN", "Double.PositiveInfinity", "double.NegativeInfinity", "DateTime.Compare(d, d.AddDays(1))",
    "d.CompareTo(DateTime.MinValue)", "TimeSpan.Zero.TotalDays", "d.TimeOfDay.TotalHours", "(d - d).Negate().Ticks",
    "d.Subtract(d).Duration().TotalMinutes", "d.Add(TimeSpan.FromDays(1))", "Guid.NewGuid()",
    # _new_collection with U-SQL's other spellings of the complex types
    "new SQL.ARRAY<int>{1, 2}.Count", 'new SQL.MAP<string, int>{{"a", 1}}.Count',
    # members of the reference's "C# Functions and Operators" page
    's.IndexOf("e", 1)', 's.IndexOf("e", 1, 2)', 's.LastIndexOf("e", 2)', 's.LastIndexOf("")', "s.Remove(1)",
    "s.Remove(1, 1)", 's.Insert(1, "-")', "s.ToCharArray()[0]", "s.PadLeft(s.Length + 2, '.')", "String.Concat(arr)",
    'String.CompareOrdinal(s, "Cy")', "string.CompareOrdinal(s, 0, g, 0, 1)", "Math.BigMul(id, 2147483647)",
    "DateTime.DaysInMonth(2016, id + 1)", "DateTime.IsLeapYear(d.Year)",
    # T-SQL null functions (U-SQL Winter 2017/18)
    "COALESCE(n, NULL, id)", "ISNULL(n, x)", 'NULLIF(s, "Cy")', "NULLIF(n, null)",
]  # fmt: skip
AGG_CASES = [
    "COUNT(*)", "COUNT(n)", "COUNT(DISTINCT b)", "SUM(n)", "SUM(x)", "SUM(m)", "AVG(n)", "AVG(x)", "AVG(m)",
    "MIN(d)", "MAX(s)", "ANY_VALUE(g)", "STDEV(x)", "STDEVP(x)", "VAR(x)", "VARP(x)", "FIRST(g)", "LAST(g)",
    'string.Join("+", ARRAY_AGG(g))', "MAP_AGG(s, id).Count", 'string.Join("+", ARRAY_AGG<string>(s))',
    "ARRAY_AGG<long>(n).Count", "MAP_AGG<string, double>(s, id).Count",
]  # fmt: skip
WINDOW_CASES = [
    "ROW_NUMBER() OVER (ORDER BY id)", "RANK() OVER (PARTITION BY g ORDER BY b)", "DENSE_RANK() OVER (ORDER BY g)",
    "NTILE(2) OVER (ORDER BY id)", "LAG(id) OVER (ORDER BY id)", "LEAD(s) OVER (ORDER BY id)",
    "FIRST_VALUE(s) OVER (PARTITION BY g ORDER BY id)", "LAST_VALUE(id) OVER (ORDER BY id)",
    "CUME_DIST() OVER (ORDER BY id)", "PERCENT_RANK() OVER (ORDER BY id)", "SUM(x) OVER (PARTITION BY g)",
    "COUNT(*) OVER ()", "MAP_AGG(s, id) OVER (PARTITION BY g).Count",
    'string.Join("+", ARRAY_AGG(id) OVER (ORDER BY id))',  # DuckDB's array_to_string skips null elements
    "PERCENTILE_CONT(0.3) WITHIN GROUP (ORDER BY x DESC) OVER (PARTITION BY g)",
    "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY n) OVER ()",
    "PERCENTILE_DISC(0.7) WITHIN GROUP (ORDER BY x DESC) OVER (PARTITION BY g)",
    "PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY n) OVER ()", "PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY m) OVER ()",
    "SUM(n) OVER (PARTITION BY b ORDER BY g)", "COUNT(*) OVER (ORDER BY g, id)",  # the default ROWS frame
    "LAST_VALUE(id) OVER (PARTITION BY g ORDER BY id)",
]  # fmt: skip
#: DuckDB translates these, Spark refuses them (docs/usql-spark.md, "Refused").
SPARK_ONLY_REFUSES = {
    "d.Ticks", "Math.Round(x, id)", "Convert.ToDateTime(id)", "MAP_AGG(s, id) OVER (PARTITION BY g).Count",
    "PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY m) OVER ()", 'x.ToString("F2")', 'String.Format("{0:F2}", x)',
    'new KeyValuePair<string, int>("a", 1).Key', 'string.Join(",", mp.Select(p => p.Key))', "TimeSpan.Zero.TotalDays",
    "d.TimeOfDay.TotalHours", "(d - d).Negate().Ticks", "d.Subtract(d).Duration().TotalMinutes",
    "d.Add(TimeSpan.FromDays(1))", "s.ToCharArray()[0]", 'x.ToString("0.00")', 'id.ToString("#,##0")',
    'String.Format("{0:0.0%}", m)',
}  # fmt: skip
#: Function names of DuckDB SQL that must not appear in Spark output.
DUCKDB_ONLY = re.compile(
    r"\b(list_contains|list_position|string_split|strftime|round_even|epoch_us|to_microseconds|to_months|to_years|"
    r"array_to_string|usql_fmt_real|usql_fmt_decimal|usql_parse_datetime|usql_int_text|usql_required|regexp_full_match|"
    r"map_contains|starts_with|ends_with|unicode|date_trunc|make_timestamp|exp\(1\)|xor|len|list|quantile_cont|"
    r"quantile_disc|row)\(|::|//|IS (NOT )?DISTINCT FROM|TIMESTAMP '|HUGEINT|UBIGINT|VARCHAR|\[\]"
)


def leak_script(row: list[tuple[int, str]], agg: list[tuple[int, str]], win: list[tuple[int, str]]) -> str:
    """A script computing each case ``(i, expr)`` as column ``c<i>``: per row, per group of g, as a window."""
    parts = [LEAK_PRE]
    for name, key, cases, tail in (("row", "id", row, ""), ("agg", "g", agg, " GROUP BY g"), ("win", "id", win, "")):
        if cases:
            items = ", ".join(f"{expr} AS c{i}" for i, expr in cases)
            parts.append(f"@{name} = SELECT {key}, {items} FROM @q{tail};\n"
                         f'OUTPUT @{name} TO "out/{name}.txt" ORDER BY {key} '
                         "USING Outputters.Text(delimiter: '|');\n")  # fmt: skip
    return "".join(parts)


def leak_cases() -> list[tuple[str, list[tuple[int, str]], list[tuple[int, str]], list[tuple[int, str]]]]:
    """(expression, row, agg, win): each case alone, as leak_script's arguments."""
    out = []
    for i, expr in enumerate([*ROW_CASES, *AGG_CASES, *WINDOW_CASES]):
        one = [(i, expr)]
        kind = 0 if expr in ROW_CASES else 1 if expr in AGG_CASES else 2
        out.append((expr, *(one if k == kind else [] for k in range(3))))
    return out  # type: ignore[return-value]


def test_leak_cases_cover_the_duckdb_translator() -> None:
    """Every C# member name the DuckDB translator dispatches on has a case (so a new branch needs one)."""
    import ast
    import inspect

    from airflow_provider_amlpipe.usql import duckdb_exprs, exprs_strings, exprs_windows

    methods = {"_static_member", "_property", "_static_call", "_convert", "_math", "_method", "_string_method",
               "_sql_function", "_aggregate"}  # fmt: skip
    names = set(duckdb_exprs.AGGREGATES) | set(duckdb_exprs.WINDOW_ONLY) | set(duckdb_exprs._CONVERT)
    source = "\n".join(inspect.getsource(m) for m in (duckdb_exprs, exprs_strings, exprs_windows))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name in methods:
            names |= {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)
                      and re.fullmatch(r"[A-Z][A-Za-z0-9_]*", c.value)}  # fmt: skip
    cases = " ".join([*ROW_CASES, *AGG_CASES, *WINDOW_CASES])
    not_members = {"NULL", "Upper", "EXPLODE", "String", "SqlMap", "Infinity"}  # SQL text, name fragments, errors
    missing = sorted(x for x in names - not_members if not re.search(rf"\b{x}\b", cases))
    assert not missing, f"no leak case uses {missing}"
    parse_targets = set(duckdb_exprs._PARSE_TARGET.values())
    parsed = {duckdb_exprs._PARSE_TARGET[m.group(1)] for m in re.finditer(r"\b(\w+)\.Parse\(", cases)}
    assert parse_targets <= parsed, f"no T.Parse case for {sorted(parse_targets - parsed)}"


def test_no_duckdb_sql_leaks_into_spark(tmp_path: Path) -> None:
    """Each case translates to Spark SQL without DuckDB functions, or is refused; only the listed ones are refused
    by Spark alone."""
    (tmp_path / "p.csv").write_text(LEAK_DATA)
    spark_refuses = set()
    for expr, row, agg, win in leak_cases():
        text = leak_script(row, agg, win)
        try:
            sql = spark(text)
        except UsqlError as e:
            try:
                compile_script(text, base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
            except UsqlError:
                continue  # refused on both paths
            assert NOT_SPARK in e.message, e.render()
            spark_refuses.add(expr)
            continue
        leak = DUCKDB_ONLY.search(sql)
        assert leak is None, f"{expr}: DuckDB SQL {leak.group(0)!r} in the Spark translation:\n{sql}"
    assert spark_refuses == SPARK_ONLY_REFUSES


def same_value(spark_text: str, duck_text: str) -> bool:
    """Equal texts, or doubles one rounding apart: Math.Sin/Exp/Log come from Java's and C's math libraries, and a
    one-ulp difference can move the 15th significant digit of the printed text (G15, as .NET Framework prints)."""
    if spark_text == duck_text:
        return True
    try:
        a, b = float(spark_text), float(duck_text)
    except ValueError:
        return False
    return "." in spark_text and math.isclose(a, b, rel_tol=1e-14)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_expression_cases_evaluate_like_duckdb(spark_rig: SparkRig, tmp_path: Path) -> None:
    """All cases Spark translates, in one script per kind: Spark computes the values DuckDB computes."""
    case = tmp_path / "leaks"
    case.mkdir()
    (case / "p.csv").write_text(LEAK_DATA)
    kept: list[list[tuple[int, str]]] = [[], [], []]
    for _, *kinds in leak_cases():
        try:
            translate_to_spark(leak_script(*kinds))
            compile_script(leak_script(*kinds), base_dir=case, catalog_dir=tmp_path / "catalog")
        except UsqlError:
            continue
        for k in range(3):
            kept[k] += kinds[k]
    exprs = dict(kept[0] + kept[1] + kept[2])
    assert len(exprs) > 120
    outputs = run_both(spark_rig, case, leak_script(*kept), tmp_path)
    differ = []
    for rel, (got, want) in outputs.items():
        cases = kept[["out/row.txt", "out/agg.txt", "out/win.txt"].index(str(rel))]
        assert len(got) == len(want), f"{rel}: {got} vs {want}"
        for got_line, want_line in zip(got[:-1], want[:-1], strict=True):  # the last line ends in \r\n
            pairs = zip(got_line.split("|")[1:], want_line.split("|")[1:], strict=True)
            differ += [f"{exprs[i]}: Spark {g!r}, DuckDB {w!r}" for (i, _), (g, w) in zip(cases, pairs, strict=True)
                       if not same_value(g, w)]  # fmt: skip
    assert not differ, "\n".join(differ)
