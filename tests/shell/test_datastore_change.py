"""AML's datastore-change schedule: the watcher (settled change sets, non-recursive, a baseline that survives a
restart), its trigger, the deferrable sensor in a DAG, the asset watcher, and the template a step reads the
changed path with."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support.dagtools import run_dag, write_dag
from support.stores import local_store

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.watch import ChangeWatcher, changed_path, check_path, watch_id
from airflow_provider_amlpipe.errors import ConfigurationError


@pytest.fixture
def store(tmp_path: Path) -> LocalDatastore:
    return LocalDatastore("watched", tmp_path / "store")


def test_a_burst_of_new_files_is_one_change_set_once_it_settles(store: LocalDatastore) -> None:
    store.write_bytes("incoming/old.csv", b"old")
    watcher = ChangeWatcher(store, "incoming", settle_seconds=10, id="w1")
    assert watcher.poll(now=0) is None  # the first look is the baseline
    store.write_bytes("incoming/a.csv", b"a")
    assert watcher.poll(now=1) is None  # a change, not settled yet
    store.write_bytes("incoming/b.csv", b"b")
    assert watcher.poll(now=5) is None  # still changing: the clock restarts
    assert watcher.poll(now=12) is None
    assert watcher.poll(now=16) == ["incoming/a.csv", "incoming/b.csv"]
    assert watcher.poll(now=30) is None  # handed out once
    store.write_bytes("incoming/old.csv", b"changed")
    store.delete("incoming/a.csv")  # deletions are not changes, as in AML
    watcher.poll(now=40)
    assert watcher.poll(now=51) == ["incoming/old.csv"]


def test_only_files_directly_in_the_folder_count_unless_recursive(store: LocalDatastore) -> None:
    flat = ChangeWatcher(store, "in", id="flat")
    deep = ChangeWatcher(store, "in", recursive=True, id="deep")
    flat.baseline(), deep.baseline()
    store.write_bytes("in/sub/x.csv", b"x")
    assert flat.poll(now=1) is None
    assert deep.poll(now=1) == ["in/sub/x.csv"]
    store.write_bytes("in/y.csv", b"y")
    assert flat.poll(now=2) == ["in/y.csv"]


def test_the_baseline_is_kept_in_the_datastore_across_restarts(store: LocalDatastore) -> None:
    ChangeWatcher(store, "in", id="kept").baseline()
    store.write_bytes("in/new.csv", b"1")
    restarted = ChangeWatcher(store, "in", id="kept")  # e.g. a new triggerer process
    assert restarted.poll(now=0) == ["in/new.csv"]
    assert ChangeWatcher(store, "in", id="kept").poll(now=1) is None  # and not handed out twice
    doc = json.loads(store.read_bytes("reuse/watches/kept.json"))
    assert doc["snapshot"].keys() == {"in/new.csv"}


def test_watched_paths_and_what_a_run_gets() -> None:
    assert check_path("/incoming/") == "incoming"
    for bad in ("", "/", "reuse/watches", 3):
        with pytest.raises(ConfigurationError, match="path_on_datastore"):
            check_path(bad)
    assert changed_path("in", ["in/a.csv"]) == "in/a.csv"
    assert changed_path("in", ["in/a.csv", "in/b.csv"]) == "in"
    assert watch_id("d", "in", False) != watch_id("d", "in", True) != watch_id("d", "in", False, "other")


@pytest.mark.usefixtures("airflow_db")
def test_the_trigger_fires_once_per_settled_change_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_amlpipe.triggers.datastore_change import DatastoreChangeTrigger

    conn, store = local_store("t_watch_trigger", tmp_path, monkeypatch)
    trigger = DatastoreChangeTrigger(conn, "in", "trig", polling_interval=0.1, settle_seconds=0.3)
    assert DatastoreChangeTrigger(**trigger.serialize()[1]).serialize() == trigger.serialize()

    async def first_event() -> dict[str, Any]:
        events = trigger.run()
        pending = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.3)  # the baseline is taken
        for name in ("a", "b", "c"):
            await asyncio.to_thread(store.write_bytes, f"in/{name}.csv", name.encode())
            await asyncio.sleep(0.05)
        event = await asyncio.wait_for(pending, timeout=20)
        await events.aclose()
        return dict(event.payload)

    payload = asyncio.run(first_event())
    assert payload == {
        "kind": "amlpipe_datastore_change",
        "datastore": conn,
        "path": "in",
        "changed": ["in/a.csv", "in/b.csv", "in/c.csv"],
    }


READ = """\
import sys
from pathlib import Path
source = Path(sys.argv[1])
files = sorted(source.iterdir()) if source.is_dir() else [source]
Path(sys.argv[2], "seen.txt").write_text("".join(f.read_text() for f in files))
"""


@pytest.mark.usefixtures("airflow_db")
def test_the_sensor_waits_deferred_and_hands_the_changed_path_to_a_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag_id = "t_watch_sensor"
    conn, store = local_store(dag_id, tmp_path, monkeypatch)
    src = tmp_path / "src"
    src.mkdir()
    (src / "read.py").write_text(READ)
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, DatastoreChangeSensor, Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            wait = DatastoreChangeSensor(
                task_id="wait", datastore={conn!r}, path_on_datastore="landing", polling_interval=0.2,
                settle_seconds=0.4,
            )
            read = PythonScriptStepOperator(
                task_id="read", source_directory={str(src)!r}, script_name="read.py", datastore={conn!r},
                arguments=["{{inputs.data}}", "{{outputs.seen}}"], outputs=[Output("seen")],
                inputs={{"data": DataPath(datastore={conn!r}, path="{{{{ ti.xcom_pull('wait')['path'] }}}}")}},
            )
            wait >> read
        """,
    )
    store.write_bytes("landing/before.csv", b"before\n")
    # As the previous run of the sensor left it (one baseline per sensor task).
    ChangeWatcher(store, "landing", id=watch_id(conn, "landing", False, f"{dag_id}.wait")).baseline()
    store.write_bytes("landing/new.csv", b"new rows\n")
    result = run_dag(dag_id)
    assert result.state == "success", result.task_states
    assert result.xcom("wait", "return_value") == {
        "datastore": conn,
        "path": "landing/new.csv",
        "changed": ["landing/new.csv"],
    }
    assert store.read_bytes(f"{result.xcom('read', 'seen')['path']}/seen.txt") == b"new rows\n"


def test_the_asset_watcher_and_the_changed_path_template() -> None:
    import jinja2

    from airflow_provider_amlpipe import changed_data_path_input, data_path_param, datastore_change_asset

    asset = datastore_change_asset("landing_store", "incoming", polling_interval=30)
    (watcher,) = asset.watchers
    kind, kwargs = watcher.trigger.serialize()
    assert kind.endswith("DatastoreChangeTrigger")
    assert kwargs["path"] == "incoming" and kwargs["polling_interval"] == 30.0 and kwargs["settle_seconds"] == 30.0
    with pytest.raises(ConfigurationError, match="polling_interval"):
        datastore_change_asset("landing_store", "incoming", polling_interval=0)

    data = changed_data_path_input("raw")
    params = {"raw": data_path_param("default_store", "fallback.csv").value}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)

    def render(events: dict[Any, list[Any]]) -> tuple[str, str]:
        context = {"params": params, "triggering_asset_events": events}
        return env.from_string(data.datastore).render(context), env.from_string(data.path).render(context)

    assert render({}) == ("default_store", "fallback.csv")  # a manual or REST run: the Param
    change = SimpleNamespace(
        extra={"from_trigger": True, "payload": {"kind": "amlpipe_datastore_change", "datastore": "landing_store",
                                                 "path": "incoming/new.csv", "changed": ["incoming/new.csv"]}}
    )  # fmt: skip
    other = SimpleNamespace(extra={"version": 3})
    assert render({asset: [change], "other": [other]}) == ("landing_store", "incoming/new.csv")


def test_settling_waits_for_quiet(store: LocalDatastore) -> None:
    watcher = ChangeWatcher(store, "in", settle_seconds=0.2, id="quiet")
    watcher.baseline()
    store.write_bytes("in/a.csv", b"a")
    deadline = time.monotonic() + 5
    changed = None
    while changed is None and time.monotonic() < deadline:
        changed = watcher.poll(time.time())
        time.sleep(0.05)
    assert changed == ["in/a.csv"]


def test_a_dag_scheduled_on_a_dataset_reads_the_version_that_triggered_it() -> None:
    import jinja2
    from airflow.sdk import AssetAlias

    from airflow_provider_amlpipe.assets import dataset_asset, triggered_dataset_input

    data = triggered_dataset_input("amlpipe_default", "passenger_model_comparison")
    asset = dataset_asset("amlpipe_default", "passenger_model_comparison")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # as Airflow renders templates

    def event(uri: str, version: int) -> SimpleNamespace:
        return SimpleNamespace(asset=SimpleNamespace(uri=uri), extra={"version": version, "digest": "d", "run_id": "r"})

    def render(events: dict[Any, list[Any]]) -> str:
        return env.from_string(data.version).render({"triggering_asset_events": events})

    assert render({}) == "latest"  # a manual or REST run
    v3, v4 = event(asset.uri, 3), event(asset.uri, 4)
    other = event("amlpipe://amlpipe_default/other", 9)
    # Airflow lists each event under its Asset and under the alias it came through; two queued versions: the newest.
    alias = AssetAlias(name=asset.uri, group="amlpipe-dataset")
    assert render({asset: [v3, v4], alias: [v3, v4], "x": [other]}) == "4"
    assert data.name == "passenger_model_comparison" and data.datastore == "amlpipe_default"
    assert data.validate("inputs['c']", rendered=False) == data.version  # a template until the task renders it
