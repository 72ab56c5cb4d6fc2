"""Golden U-SQL cases: each tests/usql/<case>/ runs through run_script; outputs must equal expected/ byte for byte.

A case may hold ``case.json`` with ``substitute`` (``@@name@@`` values) and ``params`` (DECLARE EXTERNAL).
Expected files are written by hand from U-SQL's documented semantics.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from airflow_provider_amlpipe.usql import run_script, substitute

CASES = sorted(p for p in (Path(__file__).parent / "usql").iterdir() if (p / "script.usql").is_file())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path, tmp_path: Path) -> None:
    work = tmp_path / case.name
    shutil.copytree(case, work, ignore=shutil.ignore_patterns("expected"))
    config = json.loads((case / "case.json").read_text()) if (case / "case.json").exists() else {}
    text = (case / "script.usql").read_text(encoding="utf-8")
    if config.get("substitute"):
        text = substitute(text, config["substitute"])
    report = run_script(text, source_name=f"{case.name}/script.usql", params=config.get("params"), base_dir=work)
    expected = sorted((case / "expected").iterdir())
    assert expected, "a golden case needs expected/ files"
    for exp in expected:
        got = work / "out" / exp.name
        assert got.exists(), f"{exp.name} was not written"
        assert got.read_bytes() == exp.read_bytes(), f"{case.name}/{exp.name} differs"
        assert report.rows_written[got] == exp.read_bytes().count(b"\n") - (1 if b'"id"' in exp.read_bytes() else 0)


def test_external_param_overrides_default(tmp_path: Path) -> None:
    case = Path(__file__).parent / "usql" / "declare_params"
    text = (case / "script.usql").read_text()
    run_script(text, params={"min": "3"}, base_dir=tmp_path)
    assert (tmp_path / "out" / "p.csv").read_bytes() == b'"k=3"\r\n'
