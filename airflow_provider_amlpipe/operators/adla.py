"""``AdlaStepOperator``: AML's AdlaStep; U-SQL run locally on DuckDB, or as an ADLA job."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context

from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.operators.base import AmlStepOperator, StepDefinition, check_conn_id
from airflow_provider_amlpipe.reuse.commit import CommitSpec
from airflow_provider_amlpipe.reuse.store import Heartbeat, Lease
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.adla import AdlaScriptStep
from airflow_provider_amlpipe.steps.runner import Run, StepPlan, StepResult, StepRunner

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.adla import AdlaJobBackend, JobInfo
    from airflow_provider_amlpipe.data.datastore import Datastore
    from airflow_provider_amlpipe.steps.adla_remote import Staging

LOCAL = "local"
REMOTE_LEASE_TTL = 24 * 3600.0


class AdlaStepOperator(AmlStepOperator):
    """Run a U-SQL script as a reusable, data-versioned step.

    :param script_name: the ``.usql`` file, relative to ``source_directory`` (without one: relative
        to the folder of the DAG file).
    :param source_directory: the script's folder; a relative path is relative to the folder of the
        file that defines the DAG (``dag.folder``), never to the worker's current directory.
    :param degree_of_parallelism: the ADLA job's AUs (remote compute); DuckDB uses the worker's cores.
    :param priority: the ADLA job's priority (remote compute; lower runs first).
    :param runtime_version: part of the fingerprint, as another runtime could give other results.
    :param compute: ``"local"`` (DuckDB, the default) or an ``amlpipe_adla`` connection id: the
        script is then submitted as a job of that Azure Data Lake Analytics account, its inputs and
        outputs staged as ``wasb://`` URIs in the connection's ``extra.staging_datastore`` (or the
        step's datastore when that is on Azure Blob); see docs/usql.md.
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
        self.source_directory = self._resolve_source_directory(source_directory)
        self._check_code_at_parse(self.source_directory, script_name, "U-SQL script")
        self.degree_of_parallelism = _check_count("degree_of_parallelism", degree_of_parallelism, optional=True)
        self.priority = _check_count("priority", priority)
        if runtime_version is not None and (not isinstance(runtime_version, str) or not runtime_version.strip()):
            raise ConfigurationError(
                "runtime_version", f"expected a runtime name, got {runtime_version!r}", "pass a string, or leave it out"
            )
        self.runtime_version = runtime_version
        self.compute = check_conn_id("compute", compute)
        self.deferrable = config.check_bool("deferrable", deferrable)
        # @@name@@ stands for a parameter, an input or an output: one name may only mean one of them.
        config.check_name_clashes(
            "step_params",
            {
                "a step parameter": [k for k in self.step_params],
                "an input": list(self.inputs),
                "an output": [o.name for o in self.outputs],
            },
            "rename one of them: @@name@@ must be unambiguous",
        )

    def step_definition(self) -> AdlaScriptStep:
        folder = self._dag_folder()
        return AdlaScriptStep(
            script_name=self.script_name,
            source_directory=self._resolve_source_directory(self.source_directory),
            base_dir=None if folder is None else str(folder),
            params=self.step_params,
            runtime_version=self.runtime_version,
            job_name=f"{self.dag_id}.{self.task_id}",
            priority=self.priority,
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
    ) -> dict[str, Any] | None:
        if not self.remote:
            return super().run_step(context, runner, plan, decision, definition)
        from airflow_provider_amlpipe.compute.adla import job_id_for
        from airflow_provider_amlpipe.hooks.adla import AdlaHook
        from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver
        from airflow_provider_amlpipe.steps.adla_remote import choose_staging, stage_inputs, staging_resume
        from airflow_provider_amlpipe.triggers.adla_job import AdlaJobTrigger

        assert isinstance(definition, AdlaScriptStep)
        hook = AdlaHook(self.compute)
        job_id = str(job_id_for(plan.fingerprint.digest, self._attempt_key(context)))
        scratch = self._work_root(runner) / f"{plan.fingerprint.digest[:16]}-{job_id}"
        started = time.time()
        backend: AdlaJobBackend | None = None
        staging: Staging | None = None
        try:
            backend = hook.get_backend()
            # Before anything is uploaded or submitted: a job that cannot reach its data costs nothing.
            staging = choose_staging(
                hook.get_staging_settings(), self.compute, self.datastore, runner.store, DatastoreResolver()
            )
            with self._heartbeat(runner, decision) as heartbeat:
                layout = stage_inputs(plan, staging, job_id, scratch / "inputs", self.log)
                script = definition.render_with(layout.placeholder_values(self.step_params, staging.store.wasb_uri))
                if self.deferrable:
                    info = self._submit(backend, script, job_id)
                else:
                    self._run_inline(backend, script, job_id)
                    fence = heartbeat.ensure_held if heartbeat is not None else None
                    result = self._collect_and_commit(
                        runner, staging.store, layout.outputs, scratch, plan.commit_spec(), started, fence
                    )
        except BaseException:
            self._finish_remote(runner, decision.lease, staging, job_id)
            raise
        finally:
            self._backend = None
            if backend is not None:
                backend.client.close()
            shutil.rmtree(scratch, ignore_errors=True)
        if not self.deferrable:
            self._finish_remote(runner, decision.lease, staging, job_id)
            return self._push(context, result, decision.reason)
        resume = {
            "datastore": self.datastore,
            "lease": None if decision.lease is None else dataclasses.asdict(decision.lease),
            "commit": plan.commit_spec().to_dict(),
            "reason": decision.reason,
            "started": started,
            # Connection ids and keys only: the resumed task downloads the outputs and cleans up.
            "staging": staging_resume(staging, layout.outputs, staging.job_prefix(job_id)),
        }
        trigger = AdlaJobTrigger(self.compute, info.job_id or job_id, self.poll_interval, resume=resume)
        self.defer(trigger=trigger, method_name="execute_job_complete")

    def _job_settings(self, job_id: str) -> dict[str, Any]:
        """What a job of this step is submitted with (both waiting modes)."""
        return {
            "job_id": uuid.UUID(job_id),
            "name": f"{self.dag_id}.{self.task_id}",
            "degree_of_parallelism": self.degree_of_parallelism,
            "priority": self.priority,
            "runtime_version": self.runtime_version,
            "sink": self._log_line,
        }

    def _submit(self, backend: AdlaJobBackend, script: str, job_id: str) -> JobInfo:
        return backend.submit(script, **self._job_settings(job_id))

    def _heartbeat(self, runner: StepRunner, decision: Run) -> contextlib.AbstractContextManager[Any]:
        # Waiting on the worker holds a process-bound lease, renewed through uploads, the job and
        # downloads; a deferred step's lease is unbound and outlives this process anyway.
        if self.deferrable or decision.lease is None:
            return contextlib.nullcontext()
        return Heartbeat(runner.reuse, decision.lease, on_lost=self.on_kill)

    def _run_inline(self, backend: AdlaJobBackend, script: str, job_id: str) -> None:
        self._backend = backend  # on_kill cancels the job
        backend.run_script(script, **self._job_settings(job_id), poll_interval=self.poll_interval)

    @staticmethod
    def _collect_and_commit(
        runner: StepRunner,
        store: Datastore,
        outputs: dict[str, str],
        scratch: Path,
        spec: CommitSpec,
        started: float,
        fence: Callable[[], None] | None,
    ) -> StepResult:
        from airflow_provider_amlpipe.steps.adla_remote import collect_outputs

        folders = collect_outputs(store, outputs, scratch / "outputs")
        return runner.commit(spec, folders, [], time.time() - started, move=True, fence=fence)

    def execute_job_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        """Resumed when the ADLA job ended: download and commit its outputs, or fail with its errors."""
        from airflow_provider_amlpipe.compute.adla import AdlaJobBackend, job_info_from_event
        from airflow_provider_amlpipe.errors import StepFailedError
        from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver
        from airflow_provider_amlpipe.reuse.hashing import Hasher
        from airflow_provider_amlpipe.reuse.store import Lease
        from airflow_provider_amlpipe.steps.adla_remote import remove_staging

        resume = event["resume"]
        stores = DatastoreResolver()
        runner = StepRunner(stores(self.datastore), Hasher(), self.log)
        held = Lease(**resume["lease"]) if resume["lease"] else None
        staged = resume["staging"]
        staging_store: Datastore | None = None
        scratch = self._work_root(runner) / f"resume-{uuid.uuid4().hex}"
        try:
            staging_store = stores(staged["datastore"], "compute (staging datastore)")
            if event.get("status") != "ended":
                raise StepFailedError(f"could not follow ADLA job {event.get('job_id')}: {event.get('message')}")
            info = job_info_from_event(event)
            for error in info.errors:
                self.log.error("[adla] %s", error)
            AdlaJobBackend.raise_for_result(info)
            spec = CommitSpec.from_dict(resume["commit"])
            fence = (lambda: runner.reuse.ensure_held(held)) if held is not None else None
            result = self._collect_and_commit(
                runner, staging_store, staged["outputs"], scratch, spec, resume["started"], fence
            )
        finally:
            if held is not None:
                runner.reuse.release(held)
            if staging_store is not None:
                remove_staging(staging_store, staged["prefix"], self.log)
            shutil.rmtree(scratch, ignore_errors=True)
        return self._push(context, result, resume["reason"])

    def _finish_remote(self, runner: StepRunner, lease: Lease | None, staging: Staging | None, job_id: str) -> None:
        from airflow_provider_amlpipe.steps.adla_remote import remove_staging

        if lease is not None:
            runner.reuse.release(lease)
        if staging is not None:
            remove_staging(staging.store, staging.job_prefix(job_id), self.log)

    def _work_root(self, runner: StepRunner) -> Path:
        # Scratch space (inputs downloaded before their upload, outputs before their commit): in a local
        # datastore's folder, so committing an output is a rename; otherwise this machine's, under AIRFLOW_HOME.
        local = runner.store.local_path("staging")
        if local is not None:
            return local
        return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "amlpipe" / "work"

    def _log_line(self, stream: str, line: str) -> None:
        self.log.info("[%s] %s", stream, line)


def _check_count(field: str, value: object, *, optional: bool = False) -> int | None:
    """A whole number from 1 (not a bool); ``None`` where ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(field, f"expected a whole number from 1, got {value!r}", f"pass {field}=<int>")
    return value
