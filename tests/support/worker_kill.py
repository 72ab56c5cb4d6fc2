"""A worker killed while its remote job runs, and the task instance retried: the remote steps' reattach tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def kill_worker_then_retry(
    dag_id: str, task_id: str, env: dict[str, str], log: Path, submitted: Callable[[], bool]
) -> subprocess.CompletedProcess[str]:
    """Run the DAG with ``airflow dags test``, SIGKILL the whole process group once ``submitted()`` says the
    job is out (the worker must still be alive then), and run the same task instance again with
    ``airflow tasks test`` (same run id, as an Airflow retry). Returns the retry, its output in ``stdout``."""
    command = [sys.executable, "-m", "airflow", "dags", "test", dag_id, "2026-02-01T00:00:00+00:00"]
    victim = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: submitted() or victim.poll() is not None, timeout=180)
    assert victim.poll() is None, log.read_text()[-3000:]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    run_id = re.search(r"run_id=(manual__\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
    retry = subprocess.run(
        [sys.executable, "-m", "airflow", "tasks", "test", dag_id, task_id, run_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    return retry
