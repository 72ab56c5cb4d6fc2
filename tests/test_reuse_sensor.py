"""StepReuseSensor + StepCommitOperator give a TaskFlow task the same reuse as a step operator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagtools import run_dag, write_dag

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def guarded_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, Path]:
    counters = tmp_path / "counters"
    counters.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    (data / "words.txt").write_text("b\na\nc\n")
    for conn_id, folder in (("GUARD_STORE", tmp_path / "store"), ("GUARD_DATA", data)):
        connection = {"conn_type": "amlpipe_local", "extra": {"path": str(folder)}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps(connection))
    dag_id = "t_guarded_taskflow"
    write_dag(
        dag_id,
        f"""
        from pathlib import Path
        from airflow.sdk import DAG, task
        from airflow_provider_amlpipe import DataPath, StepCommitOperator, StepReuseSensor

        def sort_words(check):
            Path({str(counters)!r}, "sort").open("a").write("x")
            raw = Path(check["inputs"]["words"]).read_text().split()
            Path(check["outputs"]["sorted"], "sorted.txt").write_text("\\n".join(sorted(raw)))

        with DAG(dag_id={dag_id!r}, schedule=None):
            check = StepReuseSensor(
                task_id="sort_reuse", guarded_task_id="sort", code=[sort_words],
                inputs={{"words": DataPath("guard_data", "words.txt")}}, outputs=["sorted"],
                datastore="guard_store", poll_interval=0.5,
            )
            work = task(task_id="sort")(sort_words)(check.output)
            commit = StepCommitOperator(
                task_id="sort_commit", check_task_id="sort_reuse", guarded_task_id="sort", datastore="guard_store"
            )

            @task(task_id="count")
            def count(ref):
                from airflow_provider_amlpipe.hooks.datastore import dataref_path
                return len((dataref_path(ref) / "sorted.txt").read_text().split())

            check >> work >> commit
            count(commit.output["sorted"])
        """,
    )
    return dag_id, counters, data


def test_guarded_task_runs_once_then_is_skipped_and_downstream_gets_the_outputs(
    guarded_dag: tuple[str, Path, Path],
) -> None:
    dag_id, counters, data = guarded_dag
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    assert first.task_states["sort"] == "success"
    ref = first.xcom("sort_commit", "sorted")
    assert ref["version"] == 1 and ref["producer"]["task_id"] == "sort"
    assert first.statuses["sort_commit"]["reused"] is False
    assert first.xcom("count", "return_value") == 3

    second = run_dag(dag_id)
    assert second.state == "success", second.task_states
    assert second.task_states["sort"] == "skipped"
    assert second.task_states["sort_commit"] == "success"
    assert second.statuses["sort_commit"]["reused"] is True
    assert second.xcom("sort_commit", "sorted") == ref
    assert second.xcom("count", "return_value") == 3
    assert (counters / "sort").read_text() == "x"

    (data / "words.txt").write_text("z\ny\n")  # input content changed: the guarded task runs again
    third = run_dag(dag_id)
    assert third.task_states["sort"] == "success"
    assert third.xcom("sort_commit", "sorted")["version"] == 2
    assert third.xcom("count", "return_value") == 2
    assert (counters / "sort").read_text() == "xx"
