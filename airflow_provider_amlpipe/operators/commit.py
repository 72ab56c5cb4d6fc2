"""``StepCommitOperator``: the last of check -> work -> commit (see ``StepReuseSensor``)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError
from airflow_provider_amlpipe.hooks.datastore import DEFAULT_CONN_ID, DatastoreResolver
from airflow_provider_amlpipe.links import STATUS_ATTRIBUTE, STATUS_XCOM_KEY, ReusedFromLink
from airflow_provider_amlpipe.operators.base import check_conn_id
from airflow_provider_amlpipe.reuse.commit import CommitSpec
from airflow_provider_amlpipe.reuse.hashing import Hasher
from airflow_provider_amlpipe.reuse.store import Lease
from airflow_provider_amlpipe.steps.runner import StepRunner

FAILED_STATES = frozenset({"failed", "upstream_failed"})


class StepCommitOperator(BaseOperator):
    """Commit what a guarded task wrote, or republish the outputs its reuse sensor served.

    Runs whatever happened upstream (``trigger_rule="all_done"``): when the guarded task failed it
    releases the lease (so the next run need not wait for it to expire) and fails too.
    Returns ``{output name: DataRef}``, like a step operator, and pushes each under its own key.
    """

    template_fields: Sequence[str] = ()
    operator_extra_links = (ReusedFromLink(),)

    def __init__(
        self, *, check_task_id: str, guarded_task_id: str, datastore: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        for field, value in (("check_task_id", check_task_id), ("guarded_task_id", guarded_task_id)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(field, f"expected a task id, got {value!r}", f"pass {field}='<task id>'")
        self.check_task_id = check_task_id
        self.guarded_task_id = guarded_task_id
        self.datastore = check_conn_id("datastore", datastore)

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        check = ti.xcom_pull(task_ids=self.check_task_id)
        if not check:
            raise StepFailedError(f"{self.check_task_id} pushed no reuse decision; did it run?")
        if check["reused"]:
            record = check["record"]
            self._push(ti, check["outputs"], record, reused=True, new_versions=[])
            return dict(check["outputs"])
        runner = StepRunner(DatastoreResolver()(self.datastore), Hasher(), self.log)
        lease = Lease(**check["lease"]) if check.get("lease") else None
        try:
            states = ti.get_task_states(
                dag_id=self.dag_id, task_ids=[self.guarded_task_id], run_ids=[context["run_id"]]
            )
            state = str(states.get(context["run_id"], {}).get(self.guarded_task_id))
            if state in FAILED_STATES:
                raise StepFailedError(f"{self.guarded_task_id} ended {state}; nothing is committed")
            folders = {name: Path(path) for name, path in check["outputs"].items()}
            fence = (lambda: runner.reuse.ensure_held(lease)) if lease is not None else None
            result = runner.commit(CommitSpec.from_dict(check["commit"]), folders, [], 0.0, move=True, fence=fence)
        finally:
            if lease is not None:
                runner.reuse.release(lease)
            shutil.rmtree(check["staging"], ignore_errors=True)
        self._push(ti, result.outputs, result.record, reused=False, new_versions=result.new_versions)
        return result.outputs

    def _push(
        self, ti: Any, outputs: dict[str, Any], record: dict[str, Any], *, reused: bool, new_versions: list[str]
    ) -> None:
        for name, ref in outputs.items():
            ti.xcom_push(key=name, value=ref)
        status = {
            "reused": reused,
            "producer": record.get("producer", {}),
            "fingerprint": record.get("fingerprint"),
            "versions": {n: r["version"] for n, r in outputs.items()},
            "datasets": {n: r["name"] for n, r in outputs.items()},
            "new_versions": new_versions,
            "metrics": record.get("metrics", []),
            "duration_seconds": record.get("duration_seconds"),
        }
        ti.xcom_push(key=STATUS_XCOM_KEY, value=status)
        setattr(self, STATUS_ATTRIBUTE, status)  # what ReusedFromLink reads when the task ends
