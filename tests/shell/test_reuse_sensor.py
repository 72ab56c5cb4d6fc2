"""StepReuseSensor + StepCommitOperator give a TaskFlow task the same reuse as a step operator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.dagtools import run_dag, write_dag

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


def asset_events(uri: str, run_ids: list[str]) -> list[dict[str, object]]:
    """The extras of the events these runs emitted for the asset ``uri``."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(
            session.scalars(
                select(AssetEvent.extra)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.uri == uri, AssetEvent.source_run_id.in_(run_ids))
                .order_by(AssetEvent.timestamp)
            ).all()
        )


def test_guarded_outputs_are_assets_with_an_event_per_new_version_only(guarded_dag: tuple[str, Path, Path]) -> None:
    dag_id, _counters, data = guarded_dag
    uri = f"amlpipe://guard_store/{dag_id}.sort.sorted"
    first = run_dag(dag_id)
    assert first.xcom("sort_commit", "sorted")["version"] == 1
    assert [e["version"] for e in asset_events(uri, [first.run_id])] == [1]
    second = run_dag(dag_id)  # reused: not new data, no event
    assert asset_events(uri, [second.run_id]) == []
    (data / "words.txt").write_text("z\ny\n")
    third = run_dag(dag_id)
    assert third.task_states["sort"] == "success"
    assert [e["version"] for e in asset_events(uri, [third.run_id])] == [2]


STEP_DAG = """
from pathlib import Path
from airflow.sdk import DAG, task
from airflow_provider_amlpipe import DataPath, step

@step(outputs=["ordered"], datastore="guard_store", poll_interval=0.5)
def sort_words(words: Path, ordered: Path, *, reverse: bool = False) -> None:
    Path({counters!r}, "sort_words").open("a").write("x")
    (ordered / "sorted.txt").write_text("\\n".join(sorted(words.read_text().split(), reverse=reverse)))

@step(outputs=["first"], datastore="guard_store", poll_interval=0.5)
def head(sorted_list: Path, first: Path) -> None:
    Path({counters!r}, "head").open("a").write("x")
    (first / "first.txt").write_text((sorted_list / "sorted.txt").read_text().split()[0])

with DAG(dag_id={dag_id!r}, schedule=None):
    ordered = sort_words(words=DataPath("guard_data", "words.txt"), reverse={reverse})
    top = head(sorted_list=ordered)

    @task(task_id="show")
    def show(ref):
        from airflow_provider_amlpipe.hooks.datastore import dataref_path
        return (dataref_path(ref) / "first.txt").read_text()

    show(top)
"""


def test_a_decorated_function_is_a_reusable_step(guarded_dag: tuple[str, Path, Path]) -> None:
    _dag_id, counters, _data = guarded_dag
    dag_id = "t_step_decorator"
    write_dag(dag_id, STEP_DAG.format(counters=str(counters), dag_id=dag_id, reverse=True))
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    assert first.xcom("show", "return_value") == "c"
    assert {t: first.task_states[t] for t in ("sort_words_reuse", "sort_words", "sort_words_commit")} == {
        "sort_words_reuse": "success",
        "sort_words": "success",
        "sort_words_commit": "success",
    }
    assert first.xcom("sort_words_commit", "ordered")["name"] == f"{dag_id}.sort_words.ordered"

    second = run_dag(dag_id)
    assert second.state == "success", second.task_states
    assert (second.task_states["sort_words"], second.task_states["head"]) == ("skipped", "skipped")
    assert second.xcom("show", "return_value") == "c"
    assert (counters / "sort_words").read_text() == "x" and (counters / "head").read_text() == "x"

    # A changed parameter changes the fingerprint; regenerate_outputs names the function.
    write_dag(dag_id, STEP_DAG.format(counters=str(counters), dag_id=dag_id, reverse=False))
    third = run_dag(dag_id)
    assert third.xcom("show", "return_value") == "a"
    assert "params.reverse" in third.statuses["sort_words_commit"]["reason"]
    forced = run_dag(dag_id, conf={"amlpipe": {"regenerate_outputs": ["head"]}})
    assert (forced.task_states["sort_words"], forced.task_states["head"]) == ("skipped", "success")


def test_step_decorator_mistakes_fail_where_the_dag_is_written() -> None:
    from airflow.sdk import DAG

    from airflow_provider_amlpipe import DataPath, step
    from airflow_provider_amlpipe.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="takes no argument 'model'"):

        @step(outputs=["model"])
        def train(data: Path) -> None: ...

    @step(outputs=["model"])
    def fit(data: Path, model: Path, *, kind: str = "linear") -> None: ...

    with DAG(dag_id="t_step_mistakes", schedule=None):
        with pytest.raises(ConfigurationError, match="takes no argument 'raw'"):
            fit(raw=DataPath("s", "x.csv"))
        with pytest.raises(ConfigurationError, match="takes no argument 'knd'"):
            fit(data=DataPath("s", "x.csv"), knd="tree")
        with pytest.raises(ConfigurationError, match="JSON"):
            fit(data=DataPath("s", "x.csv"), kind=object())
        result = fit(data=DataPath("s", "x.csv"))
        with pytest.raises(ConfigurationError, match="declares no output 'modle'"):
            result["modle"]


def test_guarded_task_wiring_mistakes_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import DAG

    from airflow_provider_amlpipe import StepCommitOperator, StepReuseSensor
    from airflow_provider_amlpipe.errors import ConfigurationError

    with DAG(dag_id="t_wiring_parse", schedule=None):
        StepReuseSensor(task_id="check", guarded_task_id="train", outputs=["model"])
        with pytest.raises(ConfigurationError, match="is not the task 'check' guards"):
            StepCommitOperator(task_id="commit", check_task_id="check", guarded_task_id="trian")
        with pytest.raises(ConfigurationError, match=r"not in DAG .* yet"):
            StepCommitOperator(task_id="commit2", check_task_id="later", guarded_task_id="train")

    # A typo in guarded_task_id: the sensor fails the run instead of "skipping" nothing.
    monkeypatch.setenv(
        "AIRFLOW_CONN_WIRING_STORE", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(tmp_path)}})
    )
    dag_id = "t_wiring_typo"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG, task
        from airflow_provider_amlpipe import StepCommitOperator, StepReuseSensor

        def train(check):
            open(check["outputs"]["model"] + "/m.txt", "w").write("m")

        with DAG(dag_id={dag_id!r}, schedule=None):
            check = StepReuseSensor(task_id="check", guarded_task_id="trian", code=[train], outputs=["model"],
                                    datastore="wiring_store")
            work = task(task_id="train")(train)(check.output)
            commit = StepCommitOperator(task_id="commit", check_task_id="check", guarded_task_id="trian")
            check >> work >> commit
        """,
    )
    result = run_dag(dag_id)
    assert result.state == "failed"
    assert result.task_states["check"] == "failed"
    assert list(tmp_path.glob("registry/*")) == []
