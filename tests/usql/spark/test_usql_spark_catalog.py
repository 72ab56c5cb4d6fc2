"""The Spark SQL emitter: file sets, the catalog (databases, tables), the errors it shares with the DuckDB path,
and what cannot be translated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.sparktools import NOT_SPARK, spark

from airflow_provider_amlpipe.usql import UsqlError, compile_script, translate_to_spark


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
    from airflow_provider_amlpipe.usql.dialects.spark.emitter import SparkEmitter
    from airflow_provider_amlpipe.usql.exprs_common import Scope

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
