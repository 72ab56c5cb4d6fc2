"""Helpers shared by the U-SQL test modules: run a script in a tmp folder, or expect its compile error."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script


def run(text: str, tmp_path: Path, name: str = "r.csv") -> str:
    """Runs ``text`` with ``tmp_path`` as base folder (and an empty catalog); returns ``out/<name>``'s text."""
    run_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    return (tmp_path / "out" / name).read_bytes().decode("utf-8")


def err(text: str, tmp_path: Path) -> UsqlError:
    """The UsqlError compiling ``text`` raises (the test fails if it compiles)."""
    with pytest.raises(UsqlError) as info:
        compile_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    return info.value
