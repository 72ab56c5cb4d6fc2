"""AML notebook "setup schedule for a published pipeline" (time-based schedule), ported.

AML::

    recurrence = ScheduleRecurrence(frequency="Day", interval=2, hours=[22], minutes=[30])
    Schedule.create(ws, name="Every-Other-Day-At-10-30-PM", pipeline_id=published_pipeline.id,
                    experiment_name=..., recurrence=recurrence, description="...")

Here the same ``ScheduleRecurrence`` becomes the DAG's schedule through ``recurrence_timetable``
(an Airflow built-in timetable, so no plugin is needed) and its ``start_date``. AML counted "every
other day" from the moment the schedule was created; a DAG file has no such moment, so the port
gives ``start_time`` (in ``time_zone``) to count from. The pipeline is the "getting started" train
step; an unchanged rerun reuses it, as a scheduled AML pipeline with ``allow_reuse`` did.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import DataPath, Output, PythonScriptStepOperator
from airflow_provider_amlpipe.schedules import ScheduleRecurrence, recurrence_timetable

SCRIPTS = Path(__file__).parent / "scripts" / "getting_started"

EVERY_OTHER_DAY_AT_22_30 = ScheduleRecurrence(
    frequency="Day",
    interval=2,
    hours=[22],
    minutes=[30],
    start_time="2025-01-01T00:00:00",
    time_zone="UTC",
)

with DAG(
    dag_id="aml_schedule",
    schedule=recurrence_timetable(EVERY_OTHER_DAY_AT_22_30),
    start_date=EVERY_OTHER_DAY_AT_22_30.start_date,
    catchup=False,
    description="A sample schedule which runs every other day at 10:30pm.",
    tags=["amlpipe", "example"],
    doc_md=__doc__,
):
    PythonScriptStepOperator(
        task_id="train",
        source_directory=str(SCRIPTS / "train"),
        script_name="train.py",
        arguments=["--passengers", "{inputs.passengers}", "--model", Output("model")],
        inputs={"passengers": DataPath(datastore="amlpipe_samples", path="passengers.csv")},
        outputs=[Output("model")],
    )
