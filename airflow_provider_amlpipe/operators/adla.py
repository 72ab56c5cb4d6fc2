"""``AdlaStepOperator``: AML's AdlaStep; U-SQL run locally on DuckDB, or as an ADLA job."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Context

from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.operators.base import AmlStepOperator, StepDefinition
from airflow_provider_amlpipe.reuse.store import Heartbeat
from airflow_provider_amlpipe.steps.adla import AdlaScriptStep
from airflow_provider_amlpipe.steps.runner import CommitSpec, Run, StepPlan, StepRunner

LOCAL = "local"
REMOTE_LEASE_TTL = 24 * 3600.0


class AdlaStepOperator(AmlStepOperator):
    """Run a U-SQL script as a reusable, data-versioned step.

    :param script_name: the ``.usql`` file, relative to ``source_directory``.
    :param degree_of_parallelism: the ADLA job's AUs (remote compute); DuckDB uses the worker's cores.
    :param priority: the ADLA job's priority (remote compute; lower runs first).
    :param runtime_version: part of the fingerprint, as another runtime could give other results.
    :param compute: ``"local"`` (DuckDB, the default) or an ``amlpipe_adla`` connection id: the
        script is then submitted as a job of that Azure Data Lake Analytics account.
    :param deferrable: with remote compute, wait for the job in the triggerer (no worker slot held).

    ``step_params`` (AML's ``params``; Airflow reserves that name) gives values for ``@@name@@``
    placeholders (templated); inputs and outputs are substituted by name too.
    """

    template_fields: Sequence[str] = (*AmlStepOperator.template_fields, "script_name")

    def __init__(
        self,
        *,
        script_name: str,
        source_directory: str | None = None,
        degree_of_parallelism: int | None = None,
        priority: int = 1000,
        runtime_version: str | None = None,
        compute: str = LOCAL,
        deferrable: bool = True,
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[Output | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.script_name = script_name
        self.source_directory = source_directory
        self.degree_of_parallelism = degree_of_parallelism
        self.priority = priority
        self.runtime_version = runtime_version
        self.compute = compute
        self.deferrable = deferrable

    def step_definition(self) -> AdlaScriptStep:
        return AdlaScriptStep(
            script_name=self.script_name,
            source_directory=self.source_directory,
            params=self.step_params,
            runtime_version=self.runtime_version,
        )

    # remote compute: an ADLA job ----------------------------------------------------------------
    @property
    def remote(self) -> bool:
        return self.compute != LOCAL

    def _attempt_key(self, context: Context) -> str:
        # Stable across retries of one task instance: a retry reattaches to its job and lease.
        return f"{self.dag_id}.{self.task_id}.{context['run_id']}.{getattr(context['ti'], 'map_index', -1)}"

    def lease_options(self, context: Context) -> dict[str, Any]:
        if not (self.remote and self.deferrable):
            return super().lease_options(context)
        # The lease must outlive this process while the job runs and the task is deferred.
        return {"lease_ttl": REMOTE_LEASE_TTL, "bind_to_process": False, "owner": self._attempt_key(context)}

    def run_step(
        self, context: Context, runner: StepRunner, plan: StepPlan, decision: Run, definition: StepDefinition
    ) -> dict[str, Any]:
        if not self.remote:
            return super().run_step(context, runner, plan, decision, definition)
        from airflow_provider_amlpipe.compute.adla import job_id_for
        from airflow_provider_amlpipe.hooks.adla import AdlaHook
        from airflow_provider_amlpipe.triggers.adla_job import AdlaJobTrigger

        assert isinstance(definition, AdlaScriptStep)
        backend = AdlaHook(self.compute).get_backend()
        job_id = job_id_for(plan.fingerprint.digest, self._attempt_key(context))
        root = self._work_root(runner) / f"{plan.fingerprint.digest[:16]}-{job_id}"
        started = time.time()
        name = f"{self.dag_id}.{self.task_id}"
        try:
            workspace = runner.prepare_workspace(plan, self.step_params, root=root)
            script = definition.render(workspace)
            if self.deferrable:
                info = backend.submit(
                    script,
                    job_id=job_id,
                    name=name,
                    degree_of_parallelism=self.degree_of_parallelism,
                    priority=self.priority,
                    runtime_version=self.runtime_version,
                    sink=self._log_line,
                )
            else:
                self._backend = backend  # on_kill cancels the job
                heartbeat = Heartbeat(runner.reuse, decision.lease) if decision.lease else contextlib.nullcontext()
                with heartbeat:
                    backend.run_script(
                        script,
                        job_id=job_id,
                        name=name,
                        degree_of_parallelism=self.degree_of_parallelism,
                        priority=self.priority,
                        runtime_version=self.runtime_version,
                        sink=self._log_line,
                        poll_interval=self.poll_interval,
                    )
                result = runner.commit(plan.commit_spec(), workspace.outputs, [], time.time() - started, move=True)
        except BaseException:
            self._finish_remote(runner, decision, root)
            raise
        finally:
            self._backend = None
            backend.client.close()
        if not self.deferrable:
            self._finish_remote(runner, decision, root)
            return self._push(context, result, decision.reason)
        resume = {
            "root": str(root),
            "datastore": self.datastore,
            "lease": None if decision.lease is None else dataclasses.asdict(decision.lease),
            "commit": plan.commit_spec().to_dict(),
            "reason": decision.reason,
            "started": started,
        }
        trigger = AdlaJobTrigger(self.compute, info.job_id or str(job_id), self.poll_interval, resume=resume)
        self.defer(trigger=trigger, method_name="execute_job_complete")

    def execute_job_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resumed when the ADLA job ended: commit its outputs, or fail with its errors."""
        from airflow_provider_amlpipe.compute.adla import AdlaJobBackend, job_info_from_event
        from airflow_provider_amlpipe.errors import StepFailedError
        from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver
        from airflow_provider_amlpipe.reuse.hashing import Hasher
        from airflow_provider_amlpipe.reuse.store import Lease

        resume = event["resume"]
        root = resume["root"]
        runner = StepRunner(DatastoreResolver()(self.datastore), Hasher(), self.log)
        held = Lease(**resume["lease"]) if resume["lease"] else None
        try:
            if event.get("status") != "ended":
                raise StepFailedError(f"could not follow ADLA job {event.get('job_id')}: {event.get('message')}")
            info = job_info_from_event(event)
            for error in info.errors:
                self.log.error("[adla] %s", error)
            AdlaJobBackend.raise_for_result(info)
            spec = CommitSpec.from_dict(resume["commit"])
            outputs = {name: Path(root) / "outputs" / name for name in spec.dataset_names}
            result = runner.commit(spec, outputs, [], time.time() - resume["started"], move=True)
        finally:
            if held is not None:
                runner.reuse.release(held)
            shutil.rmtree(root, ignore_errors=True)
        return self._push(context, result, resume["reason"])

    @staticmethod
    def _finish_remote(runner: StepRunner, decision: Run, root: Path) -> None:
        if decision.lease is not None:
            runner.reuse.release(decision.lease)
        shutil.rmtree(root, ignore_errors=True)

    def _work_root(self, runner: StepRunner) -> Path:
        # The job and the resumed task read this folder: in a local datastore it is shared by every
        # worker of that store; otherwise it is this machine's, under AIRFLOW_HOME.
        local = runner.store.local_path("staging")
        if local is not None:
            return local
        return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "amlpipe" / "work"

    def _log_line(self, stream: str, line: str) -> None:
        self.log.info("[%s] %s", stream, line)
