"""``amlpipe convert``: golden DAG texts, every AML call mapped or reported, converted DAGs parse and run."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

import pytest
from support.paths import TESTS
from support.session import DAGS_FOLDER

from airflow_provider_amlpipe.cli import check_recurrence
from airflow_provider_amlpipe.cli import main as amlpipe
from airflow_provider_amlpipe.convert import convert_file
from airflow_provider_amlpipe.convert.source import read_source

HERE = TESTS
INPUTS = HERE / "convert_inputs"
GOLDEN = HERE / "convert_golden"
FIXTURES = sorted([*INPUTS.glob("*.py"), *INPUTS.glob("*.ipynb")])
SNIPPETS = sorted(GOLDEN.glob("*.aml.py"))


def _root(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def aml_calls(tree: ast.Module) -> set[tuple[int, int]]:
    """Every call whose callee is an azureml import or a name bound (transitively) from one.

    Written apart from the converter's analysis: imports taint names, an assignment (or a loop /
    ``with`` target) whose value mentions a tainted name taints its targets, to a fixed point.
    """
    tainted: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tainted |= {(a.asname or a.name.split(".")[0]) for a in node.names if a.name.startswith("azureml")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("azureml"):
            tainted |= {a.asname or a.name for a in node.names}
    bindings: list[tuple[set[str], ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            bindings.append((set().union(*(_names(t) for t in node.targets)), node.value))
        elif isinstance(node, ast.For):
            bindings.append((_names(node.target), node.iter))
        elif isinstance(node, ast.With):
            for item in node.items:
                if item.optional_vars is not None:
                    bindings.append((_names(item.optional_vars), item.context_expr))
    changed = True
    while changed:
        changed = False
        for targets, value in bindings:
            if _names(value) & tainted and not targets <= tainted:
                tainted |= targets
                changed = True
    return {(n.lineno, n.col_offset) for n in ast.walk(tree) if isinstance(n, ast.Call) and _root(n.func) in tainted}


def test_the_aml_call_collector_follows_names_and_loops() -> None:
    """The check below is only as good as this collector: it must see calls reached indirectly."""
    source = (
        "import os\nfrom azureml.core import Workspace as W\nws = W.from_config()\nstore = ws.get_default_datastore()\n"
        "alias = store\nalias.upload('x')\nfor child in ws.get_runs():\n    child.get_status()\nprint(os.getcwd())\n"
    )
    lines = sorted(line for line, _ in aml_calls(ast.parse(source)))
    assert lines == [3, 4, 6, 7, 8]


@pytest.mark.parametrize("path", [*FIXTURES, *SNIPPETS], ids=lambda p: p.name)
def test_every_aml_call_is_mapped_or_reported(path: Path) -> None:
    result = convert_file(path)
    calls = aml_calls(ast.parse(read_source(path).text))
    assert calls, "the input has AML calls"
    missing = calls - result.accounted
    assert not missing, [result.source.where(line) for line, _ in sorted(missing)]


def _expected(path: Path) -> Path:
    name = path.name.removesuffix(".aml.py").removesuffix(".py").removesuffix(".ipynb")
    return GOLDEN / f"{name}.expected.py"


@pytest.mark.parametrize("path", [*FIXTURES, *SNIPPETS], ids=lambda p: p.name)
def test_golden_dag_text(path: Path) -> None:
    """The DAG text for each input, as reviewed (regenerate with AMLPIPE_UPDATE_GOLDEN=1, then review the diff)."""
    text = convert_file(path, check_recurrence=check_recurrence).text
    expected = _expected(path)
    if os.environ.get("AMLPIPE_UPDATE_GOLDEN"):
        expected.write_text(text)
    assert text == expected.read_text()


def test_notebook_code_cells_in_order_and_places_in_reports() -> None:
    result = convert_file(INPUTS / "data_dependency.ipynb")
    report = "\n".join(result.report())
    assert "data_dependency.ipynb:cell 9:line 1: TODO: conda dependencies" in report
    # A cell magic is not Python; a file it writes that is not there is a TODO (a step may run it).
    assert "cell 15:line 1: note: `%%writefile data_dependency/extract.py` skipped" in report
    assert "cell 16:line 1: TODO: the cell writes 'note.txt' (%%writefile)" in report
    assert "`!ls` skipped" in report


def test_cli_exit_codes_report_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dags" / "gs.py"
    assert amlpipe(["convert", str(INPUTS / "getting_started.py"), "-o", str(out), "--dag-id", "gs"]) == 0
    assert 'dag_id="gs"' in out.read_text()
    # Relative folders are rewritten for where the DAG now is.
    assert os.path.relpath(INPUTS / "scripts" / "train", out.parent) in out.read_text()
    assert amlpipe(["convert", str(INPUTS / "batch_scoring.py"), "-o", str(tmp_path / "b.py")]) == 3
    err = capsys.readouterr().err
    assert f"{INPUTS / 'batch_scoring.py'}:18: TODO: node_count=2" in err
    assert "amlpipe_default: amlpipe_local / amlpipe_azure_blob" in err
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    syntax = tmp_path / "bad.py"
    syntax.write_text("from azureml.core import Workspace\nws = (\n")
    for path in (bad, syntax, tmp_path / "missing.py"):
        assert amlpipe(["convert", str(path)]) == 2
        assert "amlpipe: input: " in capsys.readouterr().err


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every fixture converted into the session's dags folder; datastores as local folders."""
    folder = DAGS_FOLDER / "converted"
    folder.mkdir(exist_ok=True)
    dags = {}
    for path in FIXTURES:
        dag_id = f"converted_{path.stem}"
        dags[dag_id] = folder / f"{dag_id}.py"
        convert_file(path, dags[dag_id], dag_id, check_recurrence)
    stores = tmp_path_factory.mktemp("convert-stores")
    for conn, files in {
        "workspaceblobstore": ["20newsgroups/20news.pkl"],
        "amlpipe_default": ["titanic/Titanic.csv"],
    }.items():
        for name in files:
            (stores / conn / name).parent.mkdir(parents=True, exist_ok=True)
            (stores / conn / name).write_text("a,b\n1,2\n")
        os.environ[f"AIRFLOW_CONN_{conn.upper()}"] = json.dumps(
            {"conn_type": "amlpipe_local", "extra": {"path": str(stores / conn)}}
        )
    return dags


@pytest.mark.usefixtures("airflow_db")
def test_converted_dags_parse_under_airflow(converted: dict[str, Path]) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER / "converted"))
    assert not bag.import_errors, bag.import_errors
    assert set(converted) <= set(bag.dag_ids)


@pytest.mark.slow
@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize(
    ("dag_id", "tasks", "fresh"),
    [
        ("converted_getting_started", {"train_step", "compare_step", "extract_step"}, True),
        ("converted_data_dependency", {"trainStep", "extractStep", "compareStep"}, True),
        # Its step is getting_started's train step (same script and folder, no inputs): once that DAG
        # ran, it is reused across DAGs, as AML reused a step across pipelines.
        ("converted_schedule", {"train"}, False),
    ],
)
def test_converted_python_script_pipelines_run_then_rerun_reused(
    converted: dict[str, Path], dag_id: str, tasks: set[str], fresh: bool
) -> None:
    from support.dagtools import RunResult

    first = RunResult(dag_id, _load(dag_id).test(logical_date=None))
    assert first.state == "success", first.task_states
    assert set(first.statuses) == tasks
    if fresh:
        assert first.ran() == tasks
    second = RunResult(dag_id, _load(dag_id).test(logical_date=None))
    assert second.state == "success", second.task_states
    assert second.ran() == set()


def _load(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER / "converted" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)
