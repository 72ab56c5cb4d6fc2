"""Helpers of the Spark SQL emitter's tests: the golden cases, sqlglot validation of an emitted script, and running
a script on DuckDB and, translated, on a local SparkSession to compare their output lines.

Every emitted script is validated statement by statement with sqlglot's Spark dialect. sqlglot cannot parse
Spark's ``INSERT OVERWRITE DIRECTORY 'p' USING fmt OPTIONS (...) <query>``, so for those statements the
head is matched exactly, the OPTIONS list is parsed as part of a ``CREATE TEMPORARY VIEW ... USING``, and
the query is parsed on its own.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import sqlglot

from airflow_provider_amlpipe.usql import run_script, substitute, translate_to_spark
from support.paths import USQL_CASES
from support.spark import SparkRig

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
