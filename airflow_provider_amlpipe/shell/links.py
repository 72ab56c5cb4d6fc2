"""Operator extra links: the run whose outputs a reused step served."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

STATUS_XCOM_KEY = "amlpipe_status"


def _base_url() -> str:
    from airflow.sdk.configuration import conf

    return str(conf.get("api", "base_url", fallback="http://localhost:8080")).rstrip("/")


def run_url(producer: dict[str, Any]) -> str:
    """The Airflow UI page of the task instance described by ``producer``."""
    return "{}/dags/{}/runs/{}/tasks/{}".format(
        _base_url(),
        quote(str(producer["dag_id"]), safe=""),
        quote(str(producer["run_id"]), safe=""),
        quote(str(producer["task_id"]), safe=""),
    )


#: Where the provider's plugin app is mounted on the api-server (see ``plugin.py``).
PLUGIN_PREFIX = SWEEP_REPORT_PREFIX = "/amlpipe"


def sweep_report_url(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The report page of a sweep task instance, served by the provider's plugin."""
    url = "{}{}/sweeps/{}/{}/{}".format(
        _base_url(),
        SWEEP_REPORT_PREFIX,
        quote(dag_id, safe=""),
        quote(run_id, safe=""),
        quote(task_id, safe=""),
    )
    return url if map_index in (-1, None) else f"{url}?map_index={map_index}"


#: Where a step operator keeps the status it pushed, for :class:`ReusedFromLink` in the same process.
STATUS_ATTRIBUTE = "amlpipe_status"


class ReusedFromLink(BaseOperatorLink):
    """Links a reused step to the task instance that produced the outputs it served.

    Airflow computes extra links on the worker when the task instance ends -- also when it defers
    or fails, when no status exists yet -- and the UI reads the result from XCom. The link is
    therefore built from the status the operator kept (``STATUS_ATTRIBUTE``) in this process,
    never by asking the API for an XCom that may not exist (which logs a false error).
    """

    name = "Reused outputs from"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        status = getattr(operator, STATUS_ATTRIBUTE, None)
        if not isinstance(status, dict) or not status.get("reused") or not status.get("producer"):
            return ""
        return run_url(status["producer"])


#: Where a remote step operator keeps its job's page on the service (a Databricks run page), if it has one.
REMOTE_JOB_URL_ATTRIBUTE = "amlpipe_remote_job_url"


class RemoteJobLink(BaseOperatorLink):
    """Links a remote step to its job's page on the service (a Databricks run's page).

    Built from the URL the operator kept when it submitted or resumed (``REMOTE_JOB_URL_ATTRIBUTE``), for
    the same reason as :class:`ReusedFromLink`; empty for services without a job page and for steps that
    ran locally or were reused.
    """

    name = "Remote job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = getattr(operator, REMOTE_JOB_URL_ATTRIBUTE, None)
        return url if isinstance(url, str) and url.startswith(("https://", "http://")) else ""


class SweepReportLink(BaseOperatorLink):
    """Links a sweep task instance to its report page (per-trial curves, parallel coordinates).

    Shown once the sweep ran or was reused (it then has a ``metrics`` output); empty before, as
    :class:`ReusedFromLink` is, for the same reason.
    """

    name = "Sweep report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        if not isinstance(getattr(operator, STATUS_ATTRIBUTE, None), dict):
            return ""
        return sweep_report_url(ti_key.dag_id, ti_key.run_id, ti_key.task_id, ti_key.map_index)
