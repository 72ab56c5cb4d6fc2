"""Helpers for tests that write DAG files, run them with ``dag.test()`` and read the results."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_amlpipe.shell.run_summary import step_statuses, task_states
from support.session import DAGS_FOLDER


def write_dag(dag_id: str, body: str) -> Path:
    """Write a DAG file named after ``dag_id`` into the session's dags folder."""
    path = DAGS_FOLDER / f"{dag_id}.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def load_dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


class RunResult:
    """A finished run: its state, each task's state and each step's amlpipe status."""

    def __init__(self, dag_id: str, dagrun: Any) -> None:
        self.dag_id = dag_id
        self.run_id = dagrun.run_id
        self.state = str(dagrun.state)
        self.task_states = task_states(dag_id, self.run_id)
        self.statuses = step_statuses(dag_id, self.run_id)

    def reused(self, task_id: str) -> bool:
        return bool(self.statuses[task_id]["reused"])

    def ran(self) -> set[str]:
        return {t for t, s in self.statuses.items() if not s["reused"]}

    def xcom(self, task_id: str, key: str) -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(run_id=self.run_id, dag_ids=self.dag_id, task_ids=task_id, key=key)
            ).first()
            return None if row is None else XComModel.deserialize_value(row)


def run_dag(dag_id: str, conf: dict[str, Any] | None = None) -> RunResult:
    dag = load_dag(dag_id)
    dagrun = dag.test(run_conf=conf, logical_date=None)
    return RunResult(dag_id, dagrun)


def logs_of(capfd: pytest.CaptureFixture[str]) -> str:
    """What the test wrote to stdout and stderr since the last read (a ``dag.test()`` run's task logs)."""
    captured = capfd.readouterr()
    return captured.out + captured.err
