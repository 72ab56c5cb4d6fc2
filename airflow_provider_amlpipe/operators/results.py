"""What a finished step hands to Airflow: XComs, its status, asset events -- one place for every step kind.

XCom writes are kept to what the documented uses need: each output under its own key (for
``step.output["name"]``), the ``amlpipe_status``, and -- only for a step with several outputs -- the
``{name: DataRef}`` return value (a single-output step's ``step.output`` *is* its output's key, see
``StepOutputs``). The "Reused outputs from" link reads the status kept on the operator.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_provider_amlpipe.assets import dataset_alias, dataset_asset
from airflow_provider_amlpipe.links import STATUS_ATTRIBUTE, STATUS_XCOM_KEY
from airflow_provider_amlpipe.steps.runner import StepResult


def publish_result(
    task: BaseOperator, context: Context, result: StepResult, reason: str, datastore: str
) -> dict[str, Any] | None:
    """Push ``result``'s XComs and status, emit asset events for new versions; return what
    ``execute`` should return (``None`` for a single-output step, whose output key is its ``output``)."""
    ti = context["ti"]
    for name, ref in result.outputs.items():
        ti.xcom_push(key=name, value=ref)
    status = result.status(reason)
    ti.xcom_push(key=STATUS_XCOM_KEY, value=status)
    setattr(task, STATUS_ATTRIBUTE, status)  # what ReusedFromLink reads when the task ends
    if task.has_dag():
        events = context["outlet_events"]
        for name, ref in result.outputs.items():
            if result.is_new(name):
                extra = {"version": ref["version"], "digest": ref["digest"], "run_id": context["run_id"]}
                events[dataset_alias(datastore, ref["name"])].add(dataset_asset(datastore, ref["name"]), extra=extra)
    for metric in status["metrics"]:
        task.log.info("metric %s = %s", metric.get("name"), metric.get("value"))
    return None if len(result.outputs) == 1 else result.outputs
