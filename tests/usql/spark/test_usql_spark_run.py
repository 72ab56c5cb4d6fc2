"""Translated scripts run (slow) on a local SparkSession (one per test session, tables in a temporary warehouse)
and are compared line by line with DuckDB's output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.spark import SparkRig
from support.sparktools import CASES, assert_same_lines, load_case, run_both

from airflow_provider_amlpipe.usql import UsqlError, translate_to_spark

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
            "notebook_employees", "constructs", "decimal_scale"} <= set(ran)  # fmt: skip


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
