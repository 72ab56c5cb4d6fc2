"""``StepCommitOperator``: the last of check -> work -> commit (see ``StepReuseSensor``)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context

from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.hooks.datastore import DEFAULT_CONN_ID, DatastoreResolver
from airflow_provider_amlpipe.operators.base import check_conn_id
from airflow_provider_amlpipe.operators.results import StepResultOperator
from airflow_provider_amlpipe.reuse.commit import CommitSpec
from airflow_provider_amlpipe.reuse.store import Lease
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.runner import StepResult, StepRunner

if TYPE_CHECKING:
    from airflow_provider_amlpipe.sensors.reuse import StepReuseSensor

FAILED_STATES = frozenset({"failed", "upstream_failed"})


class StepCommitOperator(StepResultOperator):
    """Commit what a guarded task wrote, or republish the outputs its reuse sensor served.

    Runs whatever happened upstream (``trigger_rule="all_done"``): when the guarded task failed it
    releases the lease (so the next run need not wait for it to expire) and fails too.
    Like a step operator it pushes each output's DataRef under its own key (``commit.output["name"]``;
    ``commit.output`` for a single output), its ``amlpipe_status``, and an asset event per newly
    minted version.

    :param check_task_id: the ``StepReuseSensor`` that decided for the guarded task.
    :param guarded_task_id: the task whose outputs are committed (between the sensor and this task).
    :param outputs: the guarded task's outputs; by default the sensor's (which must then be created
        before this task).
    :param datastore: by default the sensor's.
    """

    template_fields: Sequence[str] = ()

    def __init__(
        self,
        *,
        check_task_id: str,
        guarded_task_id: str,
        datastore: str | None = None,
        outputs: Sequence[Output | str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        for field, value in (("check_task_id", check_task_id), ("guarded_task_id", guarded_task_id)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(field, f"expected a task id, got {value!r}", f"pass {field}='<task id>'")
        self.check_task_id = check_task_id
        self.guarded_task_id = guarded_task_id
        found = self.dag.task_dict.get(check_task_id) if self.has_dag() else None
        sensor = self._check_sensor(found) if found is not None else None
        default_store = sensor.datastore if sensor is not None else DEFAULT_CONN_ID
        self.datastore = check_conn_id("datastore", datastore if datastore is not None else default_store)
        if sensor is not None and self.datastore != sensor.datastore:
            raise ConfigurationError(
                "datastore",
                f"{self.datastore!r} differs from the datastore of {check_task_id!r} ({sensor.datastore!r})",
                "leave datastore unset: it is the sensor's",
            )
        if outputs is not None:
            self.outputs = config.check_outputs(outputs)
        elif sensor is not None:
            self.outputs = list(sensor.outputs)
        elif self.has_dag():
            raise ConfigurationError(
                "outputs",
                f"the StepReuseSensor {check_task_id!r} is not in DAG {self.dag_id!r} yet, so the outputs to commit"
                " are unknown",
                f"create {check_task_id!r} before this task, or pass outputs=[...] (the sensor's outputs)",
            )
        else:
            self.outputs = []
        if self.has_dag() and self.outputs:
            self.declare_dataset_outlets(self.guarded_task_id)

    def _check_sensor(self, sensor: object) -> StepReuseSensor:
        from airflow_provider_amlpipe.sensors.reuse import StepReuseSensor

        if not isinstance(sensor, StepReuseSensor):
            raise ConfigurationError(
                "check_task_id",
                f"{self.check_task_id!r} is a {type(sensor).__name__}, not a StepReuseSensor",
                "name the StepReuseSensor that guards the task",
            )
        if sensor.guarded_task_id != self.guarded_task_id:
            raise ConfigurationError(
                "guarded_task_id",
                f"{self.guarded_task_id!r} is not the task {self.check_task_id!r} guards ({sensor.guarded_task_id!r})",
                f"pass guarded_task_id={sensor.guarded_task_id!r}, or correct the sensor",
            )
        return sensor

    def check_wiring(self) -> None:
        """The sensor and the guarded task exist and are wired check >> guarded >> commit (the DAG is
        complete when the task runs; the ids alone are checked when it is parsed)."""
        dag = self.dag
        for field, task_id in (("check_task_id", self.check_task_id), ("guarded_task_id", self.guarded_task_id)):
            if task_id not in dag.task_dict:
                raise ConfigurationError(
                    field,
                    f"no task {task_id!r} in DAG {dag.dag_id!r} (its tasks: {', '.join(sorted(dag.task_dict))})",
                    "correct the task id",
                )
        self._check_sensor(dag.task_dict[self.check_task_id])
        if self.guarded_task_id not in self.upstream_task_ids:
            raise ConfigurationError(
                "guarded_task_id",
                f"{self.guarded_task_id!r} is not directly upstream of {self.task_id!r}, so its outputs may not be"
                " written when this task commits them",
                f"wire {self.check_task_id} >> {self.guarded_task_id} >> {self.task_id}",
            )

    def execute(self, context: Context) -> dict[str, Any] | None:
        self.check_wiring()
        ti = context["ti"]
        check = ti.xcom_pull(task_ids=self.check_task_id)
        if not check:
            raise StepFailedError(f"{self.check_task_id} pushed no reuse decision; did it run?")
        runner = StepRunner(DatastoreResolver()(self.datastore), Hasher(), self.log)
        if check["reused"]:
            runner.committer.note_served(check["record"])
            reused = StepResult(dict(check["outputs"]), True, str(check["fingerprint"]), check["record"], [])
            return self.publish(context, reused, "reused: fingerprint unchanged")
        lease = Lease(**check["lease"]) if check.get("lease") else None
        with runner.settling(lease) as cleanup:
            cleanup.callback(shutil.rmtree, check["staging"], ignore_errors=True)
            states = ti.get_task_states(
                dag_id=self.dag_id, task_ids=[self.guarded_task_id], run_ids=[context["run_id"]]
            )
            state = str(states.get(context["run_id"], {}).get(self.guarded_task_id))
            if state in FAILED_STATES:
                raise StepFailedError(f"{self.guarded_task_id} ended {state}; nothing is committed")
            folders = {name: Path(path) for name, path in check["outputs"].items()}
            spec = CommitSpec.from_dict(check["commit"])
            result = runner.commit(spec, folders, [], 0.0, move=True, fence=runner.fence(lease))
        return self.publish(context, result, str(check.get("reason", "")))
