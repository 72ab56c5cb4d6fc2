"""A DAG run's steps at a glance: ran or reused, duration, output versions.

Reads the ``amlpipe_status`` XCom each step pushes, from the metadata database, so it is for
places that can reach that database: the ``amlpipe runs`` command, tests, the local demo.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_amlpipe.shell.links import STATUS_XCOM_KEY


def step_statuses(dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    """task_id -> the status a step pushed (tasks that pushed none are left out)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows: list[Any] = list(session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id, key=STATUS_XCOM_KEY)))
        return {row.task_id: XComModel.deserialize_value(row) for row in rows}


def task_states(dag_id: str, run_id: str) -> dict[str, str]:
    """task_id -> final state of each task instance of the run, in the order they started."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.start_date.nulls_last(), TaskInstance.task_id)
        ).all()
        return {task_id: str(state) for task_id, state in rows}


def task_durations(dag_id: str, run_id: str) -> dict[str, float | None]:
    """task_id -> seconds the task instance took, decision and commit included."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.duration).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
        return {task_id: duration for task_id, duration in rows}


def format_table(dag_id: str, run_id: str) -> str:
    """A plain-text table: step, ran/reused, task duration, output versions."""
    statuses = step_statuses(dag_id, run_id)
    states = task_states(dag_id, run_id)
    durations = task_durations(dag_id, run_id)
    rows = [("step", "result", "duration", "outputs")]
    for task_id in states:
        took = durations.get(task_id)
        duration = "-" if took is None else f"{took:.2f}s"
        status = statuses.get(task_id)
        if status is None:
            rows.append((task_id, states[task_id], duration, "-"))
            continue
        outcome = "reused" if status["reused"] else "ran"
        outputs = ", ".join(
            f"{status['datasets'][name]}:v{version}"
            + (" (new)" if f"{status['datasets'][name]}:{version}" in status.get("new_versions", []) else "")
            for name, version in sorted(status.get("versions", {}).items())
        )
        rows.append((task_id, outcome, duration, outputs or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
