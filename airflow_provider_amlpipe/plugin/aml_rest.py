"""AML's published-pipeline REST API, served by the provider's plugin on Airflow's api-server.

Client code written for an AML published pipeline keeps working against a DAG:

- ``POST /amlpipe/aml/pipelines/{dag_id}/submit`` with AML's body -- ``ExperimentName``,
  ``ParameterAssignments`` (the DAG's Params), ``DataPathAssignments`` (``{"name": {"DataStoreName": ...,
  "RelativePath": ...}}``, for Params made with :func:`~airflow_provider_amlpipe.params.data_path_param`),
  ``RunSource``, ``Description`` -- plus our ``RegenerateOutputs`` (``true`` or a list of task ids) --
  creates a DAG run and answers AML's ``{"Id": ..., "Status": "NotStarted", ...}``;
- ``GET /amlpipe/aml/pipelines/{dag_id}/runs/{run_id}`` answers the run's status in AML's words
  (``NotStarted``, ``Running``, ``Completed``, ``Failed``...) with one entry per step.

Both sit behind Airflow's own authentication and authorisation (the auth manager of the deployment, a
bearer token as for ``/api/v2``): submitting needs permission to trigger that DAG (``POST`` on its runs),
reading a run needs permission to read its runs. The run is created as the REST API creates it: the conf is
validated against the DAG's Params (a 400 naming the Param when it does not fit) before the run exists.
"""

from __future__ import annotations

from typing import Any

# Module-level imports: FastAPI resolves the handlers' annotations (GetUserDep, SessionDep) in this module's
# namespace. The module is imported only where the app is built, in the api-server.
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.dagbag import create_dag_bag, get_latest_version_of_dag
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.sdk.definitions.param import ParamValidationError
from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunTriggeredByType, DagRunType
from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from airflow_provider_amlpipe.operators.base import REGENERATE_CONF_KEY, REGENERATE_OPTION

#: AML's run statuses for Airflow's DAG run and task instance states.
AML_STATUS = {
    "queued": "NotStarted",
    "running": "Running",
    "success": "Completed",
    "failed": "Failed",
    "upstream_failed": "Failed",
    "skipped": "Canceled",
    "removed": "Canceled",
    "scheduled": "Queued",
    "deferred": "Running",
    "up_for_retry": "Running",
    "up_for_reschedule": "Running",
    "restarting": "Running",
}


class DataPathAssignment(BaseModel):
    """AML's ``DataPath`` in a REST body."""

    model_config = ConfigDict(extra="forbid")
    DataStoreName: str = Field(min_length=1)
    RelativePath: str = Field(min_length=1)


class SubmitBody(BaseModel):
    """AML's published-pipeline submission body."""

    model_config = ConfigDict(extra="forbid")
    ExperimentName: str | None = None
    ParameterAssignments: dict[str, Any] = Field(default_factory=dict)
    DataPathAssignments: dict[str, DataPathAssignment] = Field(default_factory=dict)
    RunSource: str | None = None
    Description: str | None = None
    RegenerateOutputs: bool | list[str] | None = None

    def conf(self) -> dict[str, Any]:
        """The DAG run's conf: parameters and data paths by name, reuse control under ``amlpipe``."""
        both = set(self.ParameterAssignments) & set(self.DataPathAssignments)
        if both:
            raise ValueError(f"{sorted(both)} given in both ParameterAssignments and DataPathAssignments")
        conf: dict[str, Any] = dict(self.ParameterAssignments)
        conf.update({name: path.model_dump() for name, path in self.DataPathAssignments.items()})
        if self.RegenerateOutputs not in (None, False, []):
            conf[REGENERATE_CONF_KEY] = {REGENERATE_OPTION: self.RegenerateOutputs}
        return conf

    def note(self) -> str | None:
        parts = [
            f"Experiment: {self.ExperimentName}" if self.ExperimentName else "",
            self.Description or "",
            f"(run source: {self.RunSource})" if self.RunSource else "",
        ]
        return " ".join(p for p in parts if p) or None


def create_router() -> APIRouter:
    """The routes the plugin mounts under ``/amlpipe``."""
    app = APIRouter()
    dag_bag = create_dag_bag()

    @app.post(
        "/aml/pipelines/{dag_id}/submit",
        dependencies=[Depends(requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN))],
    )
    def submit(dag_id: str, body: SubmitBody, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
        """Create a DAG run from AML's published-pipeline body; AML's answer."""
        model = session.scalar(select(DagModel).where(~DagModel.is_stale, DagModel.dag_id == dag_id).limit(1))
        if model is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"pipeline (DAG) {dag_id!r} not found")
        if model.has_import_errors:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"DAG {dag_id!r} has import errors")
        dag = get_latest_version_of_dag(dag_bag, dag_id, session)
        try:
            params = TriggerDAGRunPostBody(conf=body.conf(), note=body.note(), logical_date=None).validate_context(dag)
            run = dag.create_dagrun(
                run_id=params["run_id"],
                logical_date=params["logical_date"],
                data_interval=params["data_interval"],
                run_after=params["run_after"],
                conf=params["conf"],
                run_type=DagRunType.MANUAL,
                triggered_by=DagRunTriggeredByType.REST_API,
                triggering_user_name=user.get_name(),
                state=DagRunState.QUEUED,
                partition_key=params["partition_key"],
                partition_date=params["partition_date"],
                session=session,
            )
        except (ParamValidationError, ValueError) as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from error
        if params["note"]:
            run.note = (params["note"], user.get_id())
        return {
            "Id": run.run_id,
            "RunId": run.run_id,
            "PipelineId": dag_id,
            "ExperimentName": body.ExperimentName or dag_id,
            "Status": "NotStarted",
            "RunSource": body.RunSource,
            "Description": body.Description,
        }

    @app.get(
        "/aml/pipelines/{dag_id}/runs/{run_id}",
        dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))],
    )
    def run_status(dag_id: str, run_id: str, session: SessionDep) -> dict[str, Any]:
        """A run's status in AML's words, with its steps."""
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id!r} of pipeline {dag_id!r} not found")
        steps = [
            {"Name": ti.task_id, "Status": AML_STATUS.get(str(ti.state or "queued"), "NotStarted")}
            for ti in sorted(run.get_task_instances(session=session), key=lambda ti: ti.task_id)
        ]
        return {
            "Id": run.run_id,
            "PipelineId": dag_id,
            "Status": AML_STATUS.get(str(run.state), "NotStarted"),
            "StartTimeUtc": run.start_date.isoformat() if run.start_date else None,
            "EndTimeUtc": run.end_date.isoformat() if run.end_date else None,
            "StepRuns": steps,
        }

    return app
