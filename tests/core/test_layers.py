"""The layers hold: the core never imports Airflow and lower layers never import upper ones.

Two checks, each shown to fail on a copy of the package with a violation: the import-linter contracts of
``.importlinter`` (what ``make lint`` runs; static, so lazy imports count too), and importing every core module
in a fresh interpreter (which also catches a third-party library that pulls Airflow in).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import REPO

ROOT = REPO
PACKAGE = "airflow_provider_amlpipe"
#: The core packages and modules; sweep, parallel and transfer are checked when they exist.
CORE = ("data", "reuse", "compute", "steps", "usql", "runtime", "databricks", "sweep", "parallel", "transfer",
        "hashing", "errors", "extras", "faults", "convert")  # fmt: skip

_LINT = (
    "import sys\nfrom importlinter.cli import lint_imports\n"
    "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))"
)

#: Imports every core module (sys.argv[1:]: package or module names) in turn; prints the first whose import
#: brought ``airflow`` into sys.modules, and exits 1 then.
_FRESH = """
import importlib, pkgutil, sys
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            continue  # a core package this branch does not have
        raise
    subs = pkgutil.walk_packages(getattr(module, "__path__", []), name + ".")
    names = [name] + [m.name for m in subs if not m.name.endswith(".__main__")]  # __main__ runs a CLI
    for sub in names:
        importlib.import_module(sub)
        if "airflow" in sys.modules:
            print(sub)
            sys.exit(1)
"""


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the repository's contracts, on the package found in ``root``."""
    return _python(root, "-c", _LINT, str(ROOT / ".importlinter"))


def airflow_importer(root: Path) -> str | None:
    """The first core module of the package in ``root`` whose import loads Airflow, or None."""
    r = _python(root, "-c", _FRESH, *(f"{PACKAGE}.{c}" for c in CORE))
    if r.returncode not in (0, 1) or (r.returncode == 1 and not r.stdout.strip()):
        raise AssertionError(f"importing the core failed:\n{r.stderr[-3000:]}")
    return r.stdout.strip() or None


def _python(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package to break."""
    shutil.copytree(ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_contracts_are_kept() -> None:
    r = lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 kept, 0 broken" in r.stdout


def test_no_core_module_loads_airflow() -> None:
    assert airflow_importer(ROOT) is None


def test_a_core_module_importing_airflow_breaks_both_checks(copy: Path) -> None:
    (copy / PACKAGE / "data" / "leaf.py").write_text("from airflow.models import BaseOperator  # noqa\n")
    r = lint_imports(copy)
    assert r.returncode == 1
    assert "The core never imports Airflow BROKEN" in r.stdout
    assert f"{PACKAGE}.data.leaf -> airflow" in r.stdout
    assert airflow_importer(copy) == f"{PACKAGE}.data.leaf"


def test_a_lazy_airflow_import_is_caught_statically(copy: Path) -> None:
    refs = copy / PACKAGE / "usql" / "paths.py"
    refs.write_text(refs.read_text() + "\n\ndef _late() -> None:\n    import airflow  # noqa\n")
    assert "The core never imports Airflow BROKEN" in lint_imports(copy).stdout
    assert airflow_importer(copy) is None  # not at import time: only the static check sees it


def test_a_lower_layer_importing_an_upper_one_breaks_the_layers(copy: Path) -> None:
    (copy / PACKAGE / "data" / "upward.py").write_text("from airflow_provider_amlpipe.steps import config  # noqa\n")
    r = lint_imports(copy)
    assert r.returncode == 1
    assert "Lower layers never import upper ones BROKEN" in r.stdout
    assert f"{PACKAGE}.data is not allowed to import {PACKAGE}.steps" in " ".join(r.stdout.split())


def test_an_optional_package_is_placed_in_its_layer(copy: Path) -> None:
    misplaced = "from airflow_provider_amlpipe.steps import config  # noqa\n"
    (copy / PACKAGE / "sweep" / "misplaced.py").write_text(misplaced)
    assert "Lower layers never import upper ones BROKEN" in lint_imports(copy).stdout


def test_a_dialect_importing_the_other_breaks_the_siblings_contract(copy: Path) -> None:
    usql = copy / PACKAGE / "usql"
    (usql / "dialects" / "spark" / "borrowed.py").write_text(
        "from airflow_provider_amlpipe.usql.dialects.duckdb import exprs  # noqa\n"
    )
    (usql / "leaning.py").write_text("from airflow_provider_amlpipe.usql.dialects.spark import values  # noqa\n")
    (usql / "translate_base.py").write_text(
        (usql / "translate_base.py").read_text() + "\nimport airflow_provider_amlpipe.usql.leaning  # noqa\n"
    )
    out = " ".join(lint_imports(copy).stdout.split())
    assert "neither imports the other (both build on the dialect-neutral usql modules) BROKEN" in out
    assert "The dialect-neutral U-SQL layer imports no dialect BROKEN" in out


def test_worker_code_importing_the_api_server_plugin_breaks_the_contracts(copy: Path) -> None:
    upward = "from airflow_provider_amlpipe.plugin import aml_rest  # noqa\n"
    (copy / PACKAGE / "shell" / "upward.py").write_text(upward)
    (copy / PACKAGE / "operators" / "web.py").write_text("import fastapi  # noqa\n")
    out = " ".join(lint_imports(copy).stdout.split())
    assert "Lower layers never import upper ones BROKEN" in out
    assert f"{PACKAGE}.shell is not allowed to import {PACKAGE}.plugin" in out
    assert "What workers run never imports the api-server's web stack BROKEN" in out
    assert f"{PACKAGE}.operators.web -> fastapi" in out


def test_pre_commit_runs_the_tools_of_make_lint_with_the_projects_virtualenv() -> None:
    import yaml

    hooks = {h["id"]: h for repo in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"]
             for h in repo["hooks"]}  # fmt: skip
    assert set(hooks) == {"ruff", "ruff-format", "mypy", "lint-imports"}
    make_lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    for hook in hooks.values():
        assert hook["entry"].startswith(".venv/bin/"), hook  # the pinned versions, not a second copy
        assert hook["entry"].replace(".venv/bin/", "$(BIN)/") in make_lint, hook
    assert "tests" in hooks["ruff"]["files"] and "airflow_provider_amlpipe" in hooks["ruff"]["files"]
    assert hooks["lint-imports"]["pass_filenames"] is False and "--no-cache" in hooks["lint-imports"]["entry"]
