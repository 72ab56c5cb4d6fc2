"""A step that finds an identical one running waits on its worker first (wait_before_defer), so a
short holder costs about its own duration instead of a triggerer round trip; a long one still
defers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from support.dagtools import run_dag, write_dag

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.reuse.store import Lease, ReuseStore

pytestmark = pytest.mark.usefixtures("airflow_db")


def _dag(dag_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait: float) -> ReuseStore:
    src = tmp_path / "src"
    src.mkdir()
    (src / "step.py").write_text("import sys, pathlib\npathlib.Path(sys.argv[1], 'x.txt').write_text('x')\n")
    root = tmp_path / "store"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_STORE_{dag_id.upper()}", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            PythonScriptStepOperator(
                task_id="step", source_directory={str(src)!r}, script_name="step.py",
                arguments=["{{outputs.out}}"], outputs=[Output("out")], datastore="store_{dag_id}",
                poll_interval=0.2, wait_before_defer={wait},
            )
        """,
    )
    return ReuseStore(LocalDatastore("s", root))


def _release_once_running(dag_id: str, earlier_run: str, reuse: ReuseStore, lease: Lease) -> None:
    """Release ``lease`` some time after the new run's task started (it waits for the lease by then)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with create_session() as session:
            states = session.scalars(
                select(TaskInstance.state).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id != earlier_run)
            ).all()
        if any(str(state) in ("running", "deferred", "TaskInstanceState.RUNNING") for state in states):
            break
        time.sleep(0.05)
    time.sleep(2.0)  # the task decides (and finds the lease held) well within this, even on a loaded machine
    reuse.release(lease)


@pytest.mark.parametrize(("wait", "deferred"), [(30.0, False), (0.0, True)], ids=["waits_inline", "defers"])
def test_a_duplicate_waits_on_its_worker_before_deferring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], wait: float, deferred: bool
) -> None:
    dag_id = f"t_wait_before_defer_{int(wait)}"
    reuse = _dag(dag_id, tmp_path, monkeypatch, wait)
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    fingerprint = first.statuses["step"]["fingerprint"]
    # The record is gone and someone else computes the same fingerprint now, finishing a moment later.
    for key in list(reuse.store.list(f"reuse/records/{fingerprint}")):
        reuse.store.delete(key)
    other = reuse.acquire(fingerprint, ttl=60, bind_to_process=False, owner="another worker")
    assert isinstance(other, Lease)
    releaser = threading.Thread(target=_release_once_running, args=(dag_id, first.run_id, reuse, other))
    releaser.start()
    capfd.readouterr()
    forced = run_dag(dag_id)
    releaser.join()
    logs = "".join(capfd.readouterr())
    assert forced.state == "success", forced.task_states
    assert "is running now (lease" in logs and "held by another worker" in logs
    assert ("Pausing task as DEFERRED" in logs) is deferred
    assert ("The identical step ended while this worker waited (lease_ended); deciding again." in logs) is not deferred


def test_wait_before_defer_is_checked() -> None:
    from airflow_provider_amlpipe import PythonScriptStepOperator

    with pytest.raises(ConfigurationError, match="below the minimum") as caught:
        PythonScriptStepOperator(task_id="t", script_name="x.py", wait_before_defer=-1)
    assert caught.value.field == "wait_before_defer"
