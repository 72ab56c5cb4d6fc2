"""The base of every step kind that can run as a job on a remote service.

One lifecycle for all of them: decide (reuse / wait / run, as every step); then, on remote
compute, stage inputs in Blob, submit the job under an id derived from the fingerprint and the
task instance, wait for it (deferred on :class:`RemoteJobTrigger`, or polling on the worker),
collect its outputs, commit them, release the lease and clean up. A step kind supplies its
backend (:meth:`RemoteStepOperator.remote_compute`) and a definition that renders its job spec;
it never repeats this lifecycle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from airflow.sdk import BaseOperatorLink, Context, conf

from airflow_provider_amlpipe.compute.remote import (
    JobStatus,
    JobWaiter,
    RemoteCompute,
    RemoteJob,
    RemoteJobBackend,
    describe_status,
    failure_message,
    remote_job_id,
)
from airflow_provider_amlpipe.compute.staging import StagingLayout
from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.errors import StepFailedError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver
from airflow_provider_amlpipe.operators.base import AmlStepOperator, StepDefinition, check_conn_id
from airflow_provider_amlpipe.reuse.commit import CommitSpec
from airflow_provider_amlpipe.reuse.store import Heartbeat, Lease
from airflow_provider_amlpipe.shell.links import REMOTE_JOB_URL_ATTRIBUTE, RemoteJobLink, ReusedFromLink
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.remote_run import staging_for, submit_job
from airflow_provider_amlpipe.steps.remote_staging import Staging, collect_outputs, remove_staging, staging_resume
from airflow_provider_amlpipe.steps.runner import Run, StepPlan, StepResult, StepRunner
from airflow_provider_amlpipe.triggers.remote_job import RemoteJobTrigger

if TYPE_CHECKING:  # the Azure SDK takes 0.4 s to import, and every DAG file with a step imports this module
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore

LOCAL = "local"
#: A deferred step's lease is not renewed while the job runs, so it must outlive the job.
REMOTE_LEASE_TTL = 24 * 3600.0


class RemoteStepDefinition(StepDefinition, Protocol):
    """What a step kind adds to run remotely: its job spec, from where the data was staged."""

    #: What a missing output suggests the user check; ``{name}`` is the output's name.
    output_hint: str

    def remote_spec(self, layout: StagingLayout, store: AzureBlobDatastore, job_id: str) -> dict[str, Any]: ...


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable``."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


class RemoteStepOperator(AmlStepOperator):
    """A step that runs on this worker (``compute="local"``) or as a job of a remote service.

    :param compute: ``"local"`` or the id of the kind's compute connection.
    :param deferrable: wait for a remote job in the triggerer (no worker slot held); default
        Airflow's ``[operators] default_deferrable``. With ``False`` the worker polls.
    """

    #: The kind's name in logs and errors ("ADLA", "Azure Batch").
    remote_kind = "remote"
    #: Whether the kind's service gives each job a page (a Databricks run's), which the "Remote job" link opens.
    remote_job_pages = False
    operator_extra_links: tuple[BaseOperatorLink, ...] = (ReusedFromLink(), RemoteJobLink())

    def __init__(self, *, compute: str = LOCAL, deferrable: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.compute = check_conn_id("compute", compute)
        self.deferrable = default_deferrable() if deferrable is None else config.check_bool("deferrable", deferrable)
        if not (self.remote and self.remote_job_pages):
            # The link would always be empty, and Airflow writes an XCom for every declared link when a
            # task instance ends: a round trip to its API server per task for nothing.
            self.operator_extra_links = tuple(
                link for link in self.operator_extra_links if not isinstance(link, RemoteJobLink)
            )

    # what a kind provides ----------------------------------------------------------------------
    def remote_compute(self) -> RemoteCompute:
        """The backend and staging settings of the connection ``self.compute``."""
        raise NotImplementedError

    def step_definition(self) -> RemoteStepDefinition:
        raise NotImplementedError

    # the lifecycle -----------------------------------------------------------------------------
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
        remote_definition = cast(RemoteStepDefinition, definition)
        job_id = remote_job_id(plan.fingerprint.digest, self._attempt_key(context))
        scratch = self._work_root(runner) / f"{plan.fingerprint.digest[:16]}-{job_id}"
        started = time.time()
        compute: RemoteCompute | None = None
        staging: Staging | None = None
        job: RemoteJob | None = None
        status: JobStatus | None = None
        try:
            compute = self.remote_compute()
            # Before anything is uploaded or submitted: a job that cannot reach its data costs nothing.
            staging = staging_for(
                compute,
                plan,
                compute_name=self.compute,
                datastore=self.datastore,
                step_store=runner.store,
                stores=DatastoreResolver(),
                kind=self.remote_kind,
            )
            with self._heartbeat(runner, decision) as heartbeat:
                layout, job = submit_job(
                    compute, staging, plan, remote_definition, job_id, scratch / "inputs", self.log,
                    self.remote_kind, self._log_line,
                )  # fmt: skip
                setattr(self, REMOTE_JOB_URL_ATTRIBUTE, job.details.get("url") or None)
                # A job that ended already (or ends at once) needs no trip through the triggerer.
                status = compute.backend.status(job)
                compute.backend.read_logs(job, self._log_line)
                if status.ended:  # the waiter and the trigger log each state they see; this one they never see
                    self._log_line("status", describe_status(job, status))
                elif not self.deferrable:
                    waiter = JobWaiter(compute.backend, job, self._log_line)
                    self._backend = waiter  # on_kill cancels the job
                    status = waiter.wait(self.poll_interval)
                if status.ended:
                    fence = heartbeat.ensure_held if heartbeat is not None else None
                    result = self._complete(
                        runner, compute.backend, job, status, staging.store, layout.outputs, scratch,
                        plan.commit_spec(), started, fence, remote_definition.output_hint,
                    )  # fmt: skip
        except BaseException:
            if job is not None and (status is None or not status.ended) and compute is not None:
                compute.backend.cancel(job)  # killed or failed while the job runs: stop paying for it
            self._finish(runner, compute.backend if compute else None, job, decision.lease, staging, job_id)
            raise
        else:
            if status.ended:
                self._finish(runner, compute.backend, job, decision.lease, staging, job_id)
        finally:
            self._backend = None
            if compute is not None:
                compute.backend.close()
            shutil.rmtree(scratch, ignore_errors=True)
        if status.ended:
            return self._push(context, result, decision.reason)
        resume = {
            "datastore": self.datastore,
            "lease": None if decision.lease is None else dataclasses.asdict(decision.lease),
            "commit": plan.commit_spec().to_dict(),
            "reason": decision.reason,
            "started": started,
            "output_hint": remote_definition.output_hint,
            # Connection ids and keys only: the resumed task downloads the outputs and cleans up.
            "staging": staging_resume(staging, layout.outputs, staging.job_prefix(job_id)),
        }
        trigger = RemoteJobTrigger(self.compute, compute.factory, job.to_dict(), self.poll_interval, resume=resume)
        self.defer(trigger=trigger, method_name="execute_job_complete")

    def execute_job_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        """Resumed when the job ended: collect and commit its outputs, or fail with its errors."""
        resume = event["resume"]
        stores = DatastoreResolver()
        runner = StepRunner(stores(self.datastore), Hasher(), self.log)
        held = Lease(**resume["lease"]) if resume["lease"] else None
        staged = resume["staging"]
        job = RemoteJob.from_dict(event["job"])
        setattr(self, REMOTE_JOB_URL_ATTRIBUTE, job.details.get("url") or None)
        scratch = self._work_root(runner) / f"resume-{uuid.uuid4().hex}"
        with runner.settling(held) as cleanup:
            cleanup.callback(shutil.rmtree, scratch, ignore_errors=True)
            backend = self.remote_compute().backend
            cleanup.callback(backend.close)
            cleanup.callback(backend.cleanup, job)
            staging_store = stores(staged["datastore"], "compute (staging datastore)")
            cleanup.callback(remove_staging, staging_store, staged["prefix"], self.log)
            if event.get("status") != "ended":
                raise StepFailedError(f"could not follow {job.kind} job {job.job_id}: {event.get('message')}")
            result = self._complete(
                runner, backend, job, JobStatus.from_dict(event["job_status"]), staging_store, staged["outputs"],
                scratch, CommitSpec.from_dict(resume["commit"]), resume["started"], runner.fence(held),
                resume["output_hint"],
            )  # fmt: skip
        return self._push(context, result, resume["reason"])

    def _complete(
        self,
        runner: StepRunner,
        backend: RemoteJobBackend,
        job: RemoteJob,
        status: JobStatus,
        store: Datastore,
        outputs: Mapping[str, str],
        scratch: Path,
        spec: CommitSpec,
        started: float,
        fence: Any,
        hint: str,
    ) -> StepResult:
        """A job that ended: its failure raised with the service's errors, or its outputs committed."""
        if not status.succeeded:
            for error in status.errors:
                self.log.error("[%s] %s", self.remote_kind, error)
            raise StepFailedError(failure_message(job, status))
        folders = collect_outputs(
            store, outputs, scratch / "outputs", kind=self.remote_kind, hint=hint, optional=spec.optional
        )
        return runner.commit(spec, folders, [], time.time() - started, move=True, fence=fence)

    def _heartbeat(self, runner: StepRunner, decision: Run) -> contextlib.AbstractContextManager[Any]:
        # Waiting on the worker holds a process-bound lease, renewed through uploads, the job and
        # downloads; a deferred step's lease is unbound and outlives this process anyway.
        if self.deferrable or decision.lease is None:
            return contextlib.nullcontext()
        return Heartbeat(runner.reuse, decision.lease, on_lost=self.on_kill)

    def _finish(
        self,
        runner: StepRunner,
        backend: RemoteJobBackend | None,
        job: RemoteJob | None,
        lease: Lease | None,
        staging: Staging | None,
        job_id: str,
    ) -> None:
        """Release the lease and delete what the job left (staging folder, the service's job)."""
        if lease is not None:
            runner.reuse.release(lease)
        if staging is not None:
            remove_staging(staging.store, staging.job_prefix(job_id), self.log)
        if backend is not None and job is not None:
            backend.cleanup(job)

    def on_kill(self) -> None:
        if self._backend is not None:
            self._backend.stop() if isinstance(self._backend, JobWaiter) else self._backend.terminate()

    def _work_root(self, runner: StepRunner) -> Path:
        # Scratch space (inputs downloaded before their upload, outputs before their commit): in a local
        # datastore's folder, so committing an output is a rename; otherwise this machine's, under AIRFLOW_HOME.
        local = runner.store.local_path("staging")
        if local is not None:
            return local
        return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "amlpipe" / "work"

    def _log_line(self, stream: str, line: str) -> None:
        self.log.info("[%s] %s", stream, line)
