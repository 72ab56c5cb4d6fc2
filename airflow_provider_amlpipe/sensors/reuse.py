"""``StepReuseSensor``: step reuse for a task that is not a step operator.

Three tasks make the pattern -- check, work, commit::

    check = StepReuseSensor(task_id="train_reuse", guarded_task_id="train", code=[train],
                            inputs={"raw": DataPath("store", "raw.csv")}, outputs=["model"])
    work = train(check.output)          # any task; writes into check.output["outputs"]["model"]
    commit = StepCommitOperator(task_id="train_commit", check_task_id="train_reuse", guarded_task_id="train")
    check >> work >> commit             # downstream reads commit.output["model"]

On a match the sensor skips the guarded task and the commit step republishes the recorded
outputs, so downstream tasks receive them either way. While an identical guarded task runs in
another DAG run, the sensor defers until that one commits, then reuses its outputs.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.sdk.exceptions import DownstreamTasksSkipped

from airflow_provider_amlpipe.data.datastore import new_temp_dir
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.hooks.datastore import DEFAULT_CONN_ID, DatastoreResolver
from airflow_provider_amlpipe.operators.base import (
    DEFAULT_WAIT_BEFORE_DEFER,
    MIN_POLL_INTERVAL,
    build_plan,
    check_conn_id,
    decide_or_defer,
    regenerate_for,
    resolved_later,
)
from airflow_provider_amlpipe.reuse.store import check_lease_ttl
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.guarded import GuardedTask, code_identity
from airflow_provider_amlpipe.steps.runner import Reused, StepRunner

GUARDED_LEASE_TTL = 3600.0


class StepReuseSensor(BaseSensorOperator):
    """Decide reuse for ``guarded_task_id``: skip it and serve recorded outputs, or let it run.

    :param guarded_task_id: the task this sensor guards (downstream of it).
    :param code: what defines the guarded task: functions (their source is hashed), files or
        folders (their content is hashed, honouring ``.amlignore`` / ``.gitignore``).
    :param inputs: as for step operators; their content digests join the fingerprint.
    :param outputs: the guarded task's named outputs (``Output`` or names).
    :param fingerprint_params: other values that change the result (templated).
    :param lease_ttl: how long the guarded task may take before another run may take over.
    Pushes ``{"reused": bool, "inputs": {name: local path}, "outputs": {name: DataRef, or the
    folder to write into}, ...}`` as its result.
    """

    template_fields: Sequence[str] = ("inputs", "fingerprint_params")

    def __init__(
        self,
        *,
        guarded_task_id: str,
        code: Sequence[object] = (),
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[Output | str] = (),
        fingerprint_params: Mapping[str, Any] | None = None,
        datastore: str = DEFAULT_CONN_ID,
        allow_reuse: bool = True,
        lease_ttl: float = GUARDED_LEASE_TTL,
        poll_interval: float = 5.0,
        wait_before_defer: float = DEFAULT_WAIT_BEFORE_DEFER,
        **kwargs: Any,
    ) -> None:
        poll_interval = config.check_seconds("poll_interval", poll_interval, MIN_POLL_INTERVAL)
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.wait_before_defer = config.check_seconds("wait_before_defer", wait_before_defer, 0.0)
        if not isinstance(guarded_task_id, str) or not guarded_task_id:
            raise ConfigurationError(
                "guarded_task_id", f"expected a task id, got {guarded_task_id!r}", "name the task this sensor guards"
            )
        self.guarded_task_id = guarded_task_id
        if isinstance(code, (str, bytes)) or not isinstance(code, Sequence):
            raise ConfigurationError("code", f"expected a list, got {code!r:.60}", "pass code=[my_function, 'path/']")
        self.code = [code_identity(item, f"code[{i}]") for i, item in enumerate(code)]
        self.inputs = config.check_mapping("inputs", inputs, "{'raw': DataPath('my_store', 'raw/data.csv')}")
        config.check_input_declarations(self.inputs, resolved_later)
        self.outputs = config.check_outputs(outputs)
        self.fingerprint_params = config.check_step_params(fingerprint_params, resolved_later, "fingerprint_params")
        self.datastore = check_conn_id("datastore", datastore)
        self.allow_reuse = config.check_bool("allow_reuse", allow_reuse)
        self.lease_ttl = check_lease_ttl(lease_ttl)
        self.poll_interval = poll_interval
        if self.has_dag():
            config.dataset_names(self.outputs, self.dag_id, self.guarded_task_id)

    def poke(self, context: Context) -> bool:
        raise NotImplementedError("StepReuseSensor decides in execute() and defers while it waits")

    def check_wiring(self) -> None:
        """The guarded task exists and is directly downstream (the DAG is complete when this runs)."""
        dag = self.dag
        if self.guarded_task_id not in dag.task_dict:
            tasks = ", ".join(sorted(dag.task_dict))
            raise ConfigurationError(
                "guarded_task_id",
                f"no task {self.guarded_task_id!r} in DAG {dag.dag_id!r} (its tasks: {tasks})",
                "name the task this sensor guards",
            )
        if self.guarded_task_id not in self.downstream_task_ids:
            raise ConfigurationError(
                "guarded_task_id",
                f"{self.guarded_task_id!r} is not directly downstream of {self.task_id!r}, so it could not be skipped"
                " when its outputs are reused",
                f"wire {self.task_id} >> {self.guarded_task_id}",
            )

    def execute(self, context: Context) -> dict[str, Any]:
        self.check_wiring()
        self.fingerprint_params = config.check_step_params(
            self.fingerprint_params, field="fingerprint_params (rendered)"
        )
        regenerate = regenerate_for(self, context, self.guarded_task_id)
        stores = DatastoreResolver()
        hasher = Hasher()
        store = stores(self.datastore)
        task = GuardedTask(self.code, self.fingerprint_params)
        task.validate(list(self.inputs), [o.name for o in self.outputs])
        parts = task.fingerprint_parts(hasher)
        plan = build_plan(
            self, context, parts, self.inputs, self.outputs, stores, hasher, step_task_id=self.guarded_task_id
        )
        runner = StepRunner(store, hasher, self.log)
        decision = decide_or_defer(
            self,
            runner,
            plan,
            lambda: runner.decide(
                plan,
                allow_reuse=self.allow_reuse,
                regenerate=regenerate,
                lease_ttl=self.lease_ttl,
                bind_to_process=False,
            ),
        )
        ti = context["ti"]
        if isinstance(decision, Reused):
            result = {
                "reused": True,
                "fingerprint": plan.fingerprint.digest,
                "outputs": decision.outputs,
                "record": decision.record,
            }
            ti.xcom_push(key="return_value", value=result)
            self.log.info(
                "REUSED: %s matches an earlier record; skipping %s.", plan.fingerprint.digest[:12], self.guarded_task_id
            )
            raise DownstreamTasksSkipped(tasks=[self.guarded_task_id])
        staging = self._staging_root(store.local_path("staging"))
        folders = {}
        for output in self.outputs:
            folder = staging / output.name
            folder.mkdir(parents=True)
            folders[output.name] = str(folder)
        inputs = {name: str(item.stage(staging / "_inputs" / name)) for name, item in plan.inputs.items()}
        self.log.info("RUNNING: %s must run (%s). Outputs go to %s", self.guarded_task_id, decision.reason, staging)
        return {
            "reused": False,
            "inputs": inputs,
            "reason": decision.reason,
            "fingerprint": plan.fingerprint.digest,
            "outputs": folders,
            "staging": str(staging),
            "lease": None if decision.lease is None else dataclasses.asdict(decision.lease),
            "commit": plan.commit_spec().to_dict(),
        }

    def execute_resume(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resumed after waiting on an identical guarded task: decide again (usually: reuse its outputs)."""
        self.log.info("The identical step we waited for ended (%s); deciding again.", (event or {}).get("status"))
        return self.execute(context)

    @staticmethod
    def _staging_root(local_staging: Path | None) -> Path:
        # A local datastore's folder is shared by every worker that uses it; a remote store has
        # no shared folder, so the guarded task and the commit step must share this machine.
        if local_staging is not None:
            root = local_staging / uuid.uuid4().hex
            root.mkdir(parents=True)
            return root
        return new_temp_dir("amlpipe-guarded-")
