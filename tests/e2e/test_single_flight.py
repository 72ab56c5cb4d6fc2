"""Single flight and crash safety through real Airflow processes (``airflow dags test``).

Several OS processes run the same DAG at once against one PostgreSQL metadata database and one
datastore: the step's body must run exactly once, the others wait (deferred, their trigger run
inline by ``dags test``) and then reuse. A worker killed with SIGKILL leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.dagtools import write_dag

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.registry import DatasetRegistry

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.slow]

SCRIPT = """\
import os, sys, time
from pathlib import Path
counters = Path(os.environ["AMLPIPE_TEST_COUNTERS"])
(counters / f"started-{os.getpid()}").write_text(os.getcwd())  # the step's workspace
with open(counters / "body", "a") as handle:
    handle.write("x")
out = Path(sys.argv[1])
(out / "part.txt").write_text("half")
go = os.environ.get("AMLPIPE_TEST_GO_FILE")
deadline = time.time() + 240
while go and not Path(go).exists() and time.time() < deadline:
    time.sleep(0.1)
(out / "result.txt").write_text("done")
"""


def make_dag(dag_id: str, tmp_path: Path) -> tuple[dict[str, str], LocalDatastore, Path]:
    counters = tmp_path / "counters"
    counters.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "step.py").write_text(SCRIPT)
    store_root = tmp_path / "store"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None, max_active_runs=16):
            PythonScriptStepOperator(
                task_id="slow", source_directory={str(src)!r}, script_name="step.py",
                arguments=[Output("result")], outputs=[Output("result")],
                datastore="store_{dag_id}", lease_ttl=4, poll_interval=0.5,
            )
        """,
    )
    env = {
        **os.environ,
        "AMLPIPE_TEST_COUNTERS": str(counters),
        f"AIRFLOW_CONN_STORE_{dag_id.upper()}": json.dumps(
            {"conn_type": "amlpipe_local", "extra": {"path": str(store_root)}}
        ),
    }
    return env, LocalDatastore("s", store_root), counters


def dags_test(dag_id: str, env: dict[str, str], log: Path, run_number: int) -> subprocess.Popen[bytes]:
    # Distinct logical dates give each process its own DAG run.
    logical_date = f"2026-01-01T00:00:{run_number:02d}+00:00"
    return subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id, logical_date],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_eight_concurrent_processes_execute_the_step_once(tmp_path: Path) -> None:
    dag_id = "t_single_flight_eight"
    env, store, counters = make_dag(dag_id, tmp_path)
    # Register the DAG once, so the eight processes do not all create its first version at once.
    subprocess.run([sys.executable, "-m", "airflow", "dags", "reserialize"], env=env, check=True, capture_output=True)
    logs = [tmp_path / f"run-{i}.log" for i in range(8)]
    go = tmp_path / "go"
    # The step holds until the seven other runs have found it running and deferred, so the test
    # does not depend on how fast a loaded machine starts eight Airflow processes.
    processes = [dags_test(dag_id, {**env, "AMLPIPE_TEST_GO_FILE": str(go)}, logs[i], i) for i in range(8)]
    deadline = time.monotonic() + 240
    while sum("is running now" in log.read_text(errors="replace") for log in logs) < 7:
        assert all(p.poll() is None for p in processes), "a run ended before the step was released"
        assert time.monotonic() < deadline, "the runs never all reached the running step"
        time.sleep(0.2)
    go.touch()
    codes = [p.wait(timeout=300) for p in processes]
    outputs = [log.read_text(errors="replace") for log in logs]
    assert codes == [0] * 8, "\n\n".join(o[-3000:] for o in outputs)
    assert (counters / "body").read_text() == "x", "the step's body ran more than once"
    assert all("state=success" in o for o in outputs), [o[-2000:] for o in outputs]
    assert sum("RUNNING: fingerprint" in o for o in outputs) == 1
    assert sum("REUSED: fingerprint" in o for o in outputs) == 7
    assert sum("is running now" in o for o in outputs) == 7  # they waited (deferred), not ran
    versions = DatasetRegistry(store).list_versions(f"{dag_id}.slow.result")
    assert [v["version"] for v in versions] == [1]


def test_sigkill_mid_step_leaves_no_version_and_no_record(tmp_path: Path) -> None:
    dag_id = "t_single_flight_sigkill"
    env, store, counters = make_dag(dag_id, tmp_path)
    victim = dags_test(dag_id, {**env, "AMLPIPE_TEST_GO_FILE": str(tmp_path / "never")}, tmp_path / "victim.log", 1)
    deadline = time.monotonic() + 120
    while not list(counters.glob("started-*")):
        assert victim.poll() is None, (tmp_path / "victim.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.2)
    marker = next(counters.glob("started-*"))
    script_pid = int(marker.name.split("-")[1])
    workspace = Path(marker.read_text())
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)

    # The script dies with its worker rather than finishing unobserved.
    for _ in range(50):
        try:
            os.kill(script_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the step's process outlived the killed worker")
    assert list(store.list("registry")) == []
    assert list(store.list("reuse/records")) == []
    assert [k for k in store.list("objects") if k.endswith("manifest.json")] == []

    # The next run takes over the dead holder's lease (its process is gone) and executes.
    rerun = dags_test(dag_id, env, tmp_path / "rerun.log", 2)
    assert rerun.wait(timeout=300) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    assert "RUNNING: fingerprint" in (tmp_path / "rerun.log").read_text()
    assert (counters / "body").read_text() == "xx"
    assert not workspace.exists()  # the killed worker's workspace was swept
    assert [v["version"] for v in DatasetRegistry(store).list_versions(f"{dag_id}.slow.result")] == [1]


def test_a_worker_killed_while_committing_leaves_nothing_visible_and_the_next_run_reuses(tmp_path: Path) -> None:
    dag_id = "t_commit_killed_between_versions"
    counters = tmp_path / "counters"
    counters.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "two.py").write_text(
        "import os, sys\nfrom pathlib import Path\n"
        "open(Path(os.environ['AMLPIPE_TEST_COUNTERS']) / 'body', 'a').write('x')\n"
        "Path(sys.argv[1], 'a.txt').write_text('A')\nPath(sys.argv[2], 'b.txt').write_text('B')\n"
    )
    store_root = tmp_path / "store"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            PythonScriptStepOperator(
                task_id="two", source_directory={str(src)!r}, script_name="two.py",
                arguments=[Output("first"), Output("second")], outputs=[Output("first"), Output("second")],
                datastore="store_{dag_id}", lease_ttl=10,
            )
        """,
    )
    env = {
        **os.environ,
        "AMLPIPE_TEST_COUNTERS": str(counters),
        f"AIRFLOW_CONN_STORE_{dag_id.upper()}": json.dumps(
            {"conn_type": "amlpipe_local", "extra": {"path": str(store_root)}}
        ),
    }
    # Killed after the first version of two is registered: the commit point is passed, nothing is visible.
    faulty = {**env, "AMLPIPE_FAULTS": json.dumps({"commit.after_version": "kill"})}
    victim = dags_test(dag_id, faulty, tmp_path / "victim.log", 1)
    victim.wait(timeout=300)
    store = LocalDatastore("s", store_root)
    registry = DatasetRegistry(store)
    assert [registry.list_versions(name) for name in registry.list_datasets()] == [[]]  # one pending, hidden
    assert list(store.list("reuse/records")) == []

    rerun = dags_test(dag_id, env, tmp_path / "rerun.log", 2)
    assert rerun.wait(timeout=300) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    assert "REUSED: fingerprint" in (tmp_path / "rerun.log").read_text()  # the commit was finished, not redone
    assert (counters / "body").read_text() == "x"
    for output in ("first", "second"):
        assert [v["version"] for v in registry.list_versions(f"{dag_id}.two.{output}")] == [1]
