"""The ADLA step through dag.test(): the ported notebook DAG, @@name@@ substitution, reuse, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.dagtools import run_dag, write_dag
from support.paths import REPO
from support.session import DAGS_FOLDER

from airflow_provider_amlpipe.data.datastore import LocalDatastore

pytestmark = pytest.mark.usefixtures("airflow_db")

EXPECTED = b'" Noah"\r\n" Liam"\r\n" Emma"\r\n" Jacob"\r\n" Jennie"\r\n'


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalDatastore:
    root = tmp_path / "store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMLPIPE_DEFAULT", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    return LocalDatastore("amlpipe_default", root)


def test_ported_notebook_dag_runs_the_usql_on_duckdb_and_is_reused(store: LocalDatastore) -> None:
    shutil.copy(REPO / "dags" / "aml_adla.py", DAGS_FOLDER / "aml_adla.py")
    shutil.copytree(REPO / "dags" / "scripts", DAGS_FOLDER / "scripts", dirs_exist_ok=True)
    (DAGS_FOLDER / ".airflowignore").write_text("scripts/\ndata/\n")
    first = run_dag("aml_adla")
    assert first.state == "success", first.task_states
    ref = first.xcom("adla_step", "sample_output")
    assert store.read_bytes(f"{ref['path']}/sample_output") == EXPECTED
    second = run_dag("aml_adla")
    assert second.ran() == set()


def test_usql_errors_fail_the_step_with_file_line_and_column(
    store: LocalDatastore, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "usql"
    src.mkdir()
    (src / "bad.usql").write_text(
        '@rs = EXTRACT a int FROM "@@data@@" USING Extractors.Csv();\n'
        'OUTPUT @nope TO "@@out@@" USING Outputters.Csv();\n'
    )
    write_dag(
        "t_adla_bad",
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output
        with DAG(dag_id="t_adla_bad", schedule=None):
            AdlaStepOperator(task_id="bad", source_directory={str(src)!r}, script_name="bad.usql",
                             inputs={{"data": DataPath("amlpipe_samples", "sample_input.csv")}},
                             outputs=[Output("out")])
        """,
    )
    result = run_dag("t_adla_bad")
    logs = capfd.readouterr()
    assert result.task_states["bad"] == "failed"
    assert "bad.usql:2:8: error:" in logs.out + logs.err
    assert "@nope" in logs.out + logs.err
    assert list(store.list("reuse/records")) == []


def test_step_params_fill_placeholders_and_join_the_fingerprint(store: LocalDatastore, tmp_path: Path) -> None:
    src = tmp_path / "usql"
    src.mkdir()
    (src / "filter.usql").write_text(
        '@rs = EXTRACT id int, name string, dept int FROM "@@data@@" USING Extractors.Csv();\n'
        'OUTPUT (SELECT name.Trim() AS name FROM @rs WHERE id > @@min_id@@) TO "@@out@@" USING Outputters.Csv();\n'
    )
    write_dag(
        "t_adla_params",
        f"""
        from airflow.sdk import DAG, Param
        from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output
        with DAG(dag_id="t_adla_params", schedule=None, params={{"min_id": Param(3, type="integer")}}):
            AdlaStepOperator(task_id="filter", source_directory={str(src)!r}, script_name="filter.usql",
                             inputs={{"data": DataPath("amlpipe_samples", "sample_input.csv")}},
                             outputs=[Output("out")],
                             step_params={{"min_id": "{{{{ params.min_id }}}}"}})
        """,
    )
    first = run_dag("t_adla_params")
    assert first.state == "success", first.task_states
    ref = first.xcom("filter", "out")
    assert store.read_bytes(f"{ref['path']}/out") == b'"Emma"\r\n"Jacob"\r\n"Jennie"\r\n'
    second = run_dag("t_adla_params", conf={"min_id": 4})
    assert second.ran() == {"filter"}
    assert second.statuses["filter"]["reason"] == "changed since the last record: params.min_id"
    assert store.read_bytes(f"{second.xcom('filter', 'out')['path']}/out") == b'"Jacob"\r\n"Jennie"\r\n'


def test_sales_example_file_set_join_explode_matches_a_python_recount(store: LocalDatastore) -> None:
    import csv
    from collections import defaultdict

    shutil.copy(REPO / "dags" / "aml_usql_sales.py", DAGS_FOLDER / "aml_usql_sales.py")
    shutil.copytree(REPO / "dags" / "scripts", DAGS_FOLDER / "scripts", dirs_exist_ok=True)
    (DAGS_FOLDER / ".airflowignore").write_text("scripts/\ndata/\n")
    first = run_dag("aml_usql_sales")
    assert first.state == "success", first.task_states

    data = REPO / "dags" / "data"
    tags = {row[0]: row[2].split(";") for row in csv.reader((data / "products.csv").open())}
    revenue: dict[tuple[str, str], float] = defaultdict(float)
    for path in (data / "sales").rglob("*.csv"):
        for _order_id, product, qty, price in csv.reader(path.open()):
            for tag in tags[product]:
                revenue[(path.stem, tag)] += int(qty) * float(price)
    best = {}
    for (shop, tag), total in sorted(revenue.items()):
        if shop not in best or total > best[shop][1]:
            best[shop] = (tag, total)
    ref = first.xcom("daily_tags", "best_tags")
    lines = store.read_bytes(f"{ref['path']}/best_tags").decode().splitlines()
    assert lines[0] == '"store","tag","revenue"'
    expected = [f'"{shop}","{tag}",{round(total, 2):g}' for shop, (tag, total) in sorted(best.items())]
    assert lines[1:] == expected

    daily = first.xcom("daily_tags", "daily_tags")
    assert daily["name"] == "sales_by_tag"
    again = run_dag("aml_usql_sales", conf={"min_revenue": 500})
    assert again.ran() == {"daily_tags"}
    assert again.statuses["daily_tags"]["reason"] == "changed since the last record: params.min_revenue"
    fewer = store.read_bytes(f"{again.xcom('daily_tags', 'daily_tags')['path']}/daily_tags").decode().splitlines()
    assert all(float(line.split(",")[3]) >= 500 for line in fewer[1:])
