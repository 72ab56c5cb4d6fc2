"""Sweep report pages on the api-server (mounted by the provider's plugin under ``/amlpipe``).

``GET /amlpipe/sweeps/{dag_id}/{run_id}/{task_id}`` renders the report of the sweep that task instance ran (or
reused): it reads the ``metrics`` DataRef the task pushed to XCom and the ``metrics.json`` it names from the
datastore. Airflow does not authenticate plugin apps, so the route asks for what Airflow's own XCom endpoint
asks for: a signed-in user (session cookie or bearer token) allowed to read the DAG's XComs.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse

router = APIRouter()


def _metrics_ref(session: Any, dag_id: str, run_id: str, task_id: str, map_index: int, key: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel

    row = session.scalars(
        XComModel.get_many(run_id=run_id, dag_ids=dag_id, task_ids=task_id, map_indexes=map_index, key=key)
    ).first()
    value = None if row is None else XComModel.deserialize_value(row)
    if not isinstance(value, dict) or "digest" not in value:
        raise HTTPException(404, f"task {dag_id}.{task_id} of run {run_id} has no sweep metrics (XCom {key!r})")
    return value


@router.get(
    "/sweeps/{dag_id}/{run_id}/{task_id}",
    response_class=HTMLResponse,
    dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.XCOM))],
)
def sweep_report(
    dag_id: str, run_id: str, task_id: str, session: SessionDep, map_index: int = -1, output: str = "metrics"
) -> HTMLResponse:
    """The report page of a sweep task instance."""
    from airflow_provider_amlpipe.data import objects
    from airflow_provider_amlpipe.data.refs import DataRef
    from airflow_provider_amlpipe.hooks.datastore import AmlDatastoreHook
    from airflow_provider_amlpipe.steps.hyperdrive import METRICS_FILE
    from airflow_provider_amlpipe.sweep import report

    ref = DataRef.from_dict(_metrics_ref(session, dag_id, run_id, task_id, map_index, output))
    store = AmlDatastoreHook(ref.datastore).get_conn()
    document = json.loads(store.read_bytes(f"{objects.data_prefix(ref.digest)}/{METRICS_FILE}"))
    return HTMLResponse(report.render(document, f"Sweep {dag_id}.{task_id} ({run_id})"))
