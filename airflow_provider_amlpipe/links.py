"""Operator extra links: the run whose outputs a reused step served."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink
from airflow.sdk.bases.xcom import BaseXCom

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


class ReusedFromLink(BaseOperatorLink):
    """Links a reused step to the task instance that produced the outputs it served."""

    name = "Reused outputs from"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        # The SDK's own TaskInstanceKey is read-only where the protocol says settable; it is what the SDK passes.
        status = BaseXCom.get_value(ti_key=ti_key, key=STATUS_XCOM_KEY)  # type: ignore[arg-type]
        if not status or not status.get("reused") or not status.get("producer"):
            return ""
        return run_url(status["producer"])
