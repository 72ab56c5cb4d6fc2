"""Golden U-SQL cases: each tests/usql/cases/<case>/ runs through run_script; outputs equal expected/ byte for byte.

A case may hold ``case.json`` with ``substitute`` (``@@name@@`` values), ``params`` (DECLARE EXTERNAL) and
``header_files`` (expected files whose first line is a header). Each case gets an empty U-SQL catalog
(``catalog_dir``) in its tmp folder.
Expected files are written by hand from U-SQL's documented semantics.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.paths import USQL_CASES

from airflow_provider_amlpipe.usql import compile_script, run_script, substitute
from airflow_provider_amlpipe.usql.compiler import default_catalog_dir

CASES = sorted(p for p in USQL_CASES.iterdir() if (p / "script.usql").is_file())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path, tmp_path: Path) -> None:
    work = tmp_path / case.name
    shutil.copytree(case, work, ignore=shutil.ignore_patterns("expected"))
    config = json.loads((case / "case.json").read_text()) if (case / "case.json").exists() else {}
    text = (case / "script.usql").read_text(encoding="utf-8")
    if config.get("substitute"):
        text = substitute(text, config["substitute"])
    report = run_script(
        text,
        source_name=f"{case.name}/script.usql",
        params=config.get("params"),
        base_dir=work,
        catalog_dir=tmp_path / "catalog",
    )
    expected = sorted((case / "expected").iterdir())
    assert expected, "a golden case needs expected/ files"
    headers = set(config.get("header_files", []))
    for exp in expected:
        got = work / "out" / exp.name
        assert got.exists(), f"{exp.name} was not written"
        assert got.read_bytes() == exp.read_bytes(), f"{case.name}/{exp.name} differs"
        header = exp.name in headers or b'"id"' in exp.read_bytes()
        assert report.rows_written[got] == exp.read_bytes().count(b"\n") - (1 if header else 0)


def test_external_param_overrides_default(tmp_path: Path) -> None:
    case = USQL_CASES / "declare_params"
    text = (case / "script.usql").read_text()
    run_script(text, params={"min": "3"}, base_dir=tmp_path)
    assert (tmp_path / "out" / "p.csv").read_bytes() == b'"k=3"\r\n'


def test_catalog_persists_across_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = tmp_path / "catalog"
    monkeypatch.setenv("AMLPIPE_USQL_CATALOG", str(tmp_path / "not-this-one"))
    create = (
        "CREATE DATABASE IF NOT EXISTS db1;\n"
        "CREATE TABLE IF NOT EXISTS db1.dbo.t (k int, v string?, tags SqlArray<string>, "
        "INDEX i CLUSTERED (k) DISTRIBUTED BY HASH (k));\n"
        'INSERT INTO db1.dbo.t SELECT * FROM (VALUES (1, "a", new SqlArray<string>{"x", "y"})) AS V(k, v, tags);\n'
    )
    read = (
        "USE DATABASE db1;\n"
        "@r = SELECT k, v, tags.Count AS n FROM t;\n"
        'OUTPUT @r TO "out/t.csv" ORDER BY k USING Outputters.Csv();\n'
    )
    compile_script(create, base_dir=tmp_path, catalog_dir=catalog)
    assert not catalog.exists(), "compiling must not touch the catalog"
    run_script(create, base_dir=tmp_path, catalog_dir=catalog)
    run_script(create, base_dir=tmp_path, catalog_dir=catalog)  # IF NOT EXISTS: the INSERT appends a second row
    assert (catalog / "db1.duckdb").is_file()
    run_script(read, base_dir=tmp_path, catalog_dir=catalog)
    assert (tmp_path / "out" / "t.csv").read_bytes() == b'1,"a",2\r\n1,"a",2\r\n'
    run_script("DROP DATABASE db1;", base_dir=tmp_path, catalog_dir=catalog)
    assert not (catalog / "db1.duckdb").exists()
    assert not (tmp_path / "not-this-one").exists()


def test_default_catalog_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLPIPE_USQL_CATALOG", str(tmp_path / "cat"))
    assert default_catalog_dir() == tmp_path / "cat"
    run_script("CREATE DATABASE x;", base_dir=tmp_path)
    assert (tmp_path / "cat" / "x.duckdb").is_file()
    monkeypatch.delenv("AMLPIPE_USQL_CATALOG")
    assert default_catalog_dir() == Path.home() / ".cache" / "amlpipe" / "usql-catalog"
