"""schedule: converted by `amlpipe convert` from schedule.py.

- publish: the DAG is the published pipeline; trigger it over REST at POST /api/v2/dags/{dag_id}/dagRuns or
  AML's body at POST /amlpipe/aml/pipelines/{dag_id}/submit (docs/migrating-from-aml.md)
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import PythonScriptStepOperator, ScheduleRecurrence, recurrence_timetable

RECURRENCE = ScheduleRecurrence(
    frequency="Week",
    interval=1,
    week_days=["Monday"],
    hours=[22],
    minutes=[30],
    time_zone="PacificStandardTime",
    start_time="2025-01-01T00:00:00",
)

with DAG(
    dag_id="schedule",
    schedule=recurrence_timetable(RECURRENCE),
    start_date=RECURRENCE.start_date,
    catchup=False,
    tags=["amlpipe", "converted"],
):
    train_step = PythonScriptStepOperator(task_id="train", script_name="train.py", source_directory="scripts/train")
