"""The Spark SQL emitter (``translate_to_spark``): golden scripts, one snippet per construct, untranslatable
constructs, the CLI, and (slow) a run of the translated golden scripts on a local SparkSession.

Every emitted script is validated statement by statement with sqlglot's Spark dialect. sqlglot cannot parse
Spark's ``INSERT OVERWRITE DIRECTORY 'p' USING fmt OPTIONS (...) <query>``, so for those statements the
head is matched exactly, the OPTIONS list is parsed as part of a ``CREATE TEMPORARY VIEW ... USING``, and
the query is parsed on its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from airflow_provider_amlpipe.usql import UsqlError, run_script, substitute, translate_to_spark

CASES = sorted(p for p in (Path(__file__).parent / "usql").iterdir() if (p / "script.usql").is_file())
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
    assert "ORDER BY `region` ASC NULLS FIRST" in agg
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
                                                              "(instr(`p`.`name`, 'o') - 1)"]),
        ("name.StartsWith(\"a\") AS a, name.Contains(\"b\") AS b, name.Replace(\"a\", \"b\") AS c",
         ["startswith(`p`.`name`, 'a')", "contains(`p`.`name`, 'b')", "replace(`p`.`name`, 'a', 'b')"]),
        ("name.Split(';')[1] AS a", ["try_element_at(split(`p`.`name`, concat('\\\\Q', ';', '\\\\E'), -1), (1) + 1)"]),
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
    assert "collect_list(`e`.`part`)" in sql and "count(DISTINCT `e`.`part`)" in sql
    assert "map_from_entries(collect_list(struct(`e`.`part`, `e`.`id`)))" in sql
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


@pytest.mark.parametrize(
    ("script", "construct", "where"),
    [
        ('@p = EXTRACT a int FROM "/d/{date:yyyy}/{*}.csv" USING Extractors.Csv();', "file set", (1, 25)),
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
    from dataclasses import dataclass

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
    script.write_text('@p = EXTRACT a int FROM "/x/{*}.csv" USING Extractors.Csv();\n')
    r = subprocess.run([*base, "--to", "spark", str(script)], capture_output=True, text=True)
    assert r.returncode == 2 and f"{script}:1:25: error: file set: {NOT_SPARK}" in r.stderr


# ---------------------------------------------------------------- Spark itself


def _spark_session_or_skip(cwd: Path) -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.skip("pyspark is not installed (pip install -e .[test] installs it)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime for Spark (java not on PATH, JAVA_HOME unset)")
    old = Path.cwd()
    os.chdir(cwd)  # the JVM's working directory is where relative paths in the scripts resolve
    try:
        return (
            SparkSession.builder.master("local[1]")
            .appName("usql-spark-test")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"a local SparkSession could not be started: {type(e).__name__}: {str(e)[:200]}")
    finally:
        os.chdir(old)


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
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_translated_golden_scripts_run_on_spark(tmp_path: Path) -> None:
    """Each golden case that translates runs on local Spark; its output lines equal the DuckDB run's rows."""
    jvm_cwd = tmp_path / "spark"
    jvm_cwd.mkdir()
    session = _spark_session_or_skip(jvm_cwd)
    extra = tmp_path / "constructs"
    extra.mkdir()
    (extra / "people.csv").write_text(CONSTRUCTS_DATA)
    (extra / "script.usql").write_text(CONSTRUCTS)
    ran = []
    try:
        for case in [*CASES, extra]:
            text, config = load_case(case)
            try:
                sql = translate_to_spark(text, source_name=case.name, params=config.get("params"))  # type: ignore[arg-type]
            except UsqlError:
                assert case != extra, "the constructs script must translate"
                continue
            for child in jvm_cwd.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
            shutil.copytree(case, jvm_cwd, dirs_exist_ok=True, ignore=shutil.ignore_patterns("expected"))
            duck = tmp_path / "duck" / case.name
            shutil.copytree(case, duck, ignore=shutil.ignore_patterns("expected"))
            report = run_script(text, source_name=case.name, params=config.get("params"), base_dir=duck)  # type: ignore[arg-type]
            for st in statements(sql):
                session.sql(st)
            for path in report.rows_written:
                rel = path.relative_to(duck)
                parts = sorted((jvm_cwd / rel).glob("part-*"))
                assert parts, f"{case.name}: Spark wrote no part file for {rel}"
                got = b"".join(p.read_bytes() for p in parts).decode("utf-8").split("\r\n")
                want = path.read_bytes().decode("utf-8").split("\r\n")
                if "ORDER BY" not in text:
                    got, want = sorted(got), sorted(want)
                assert got == want, f"{case.name}/{rel}: Spark rows differ from DuckDB's:\n{got}\n{want}"
            ran.append(case.name)
    finally:
        session.stop()
    assert {"aggregates", "collections", "expressions", "joins_sets", "notebook_employees", "constructs"} <= set(ran)
