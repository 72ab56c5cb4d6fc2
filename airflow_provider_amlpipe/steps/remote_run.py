"""The remote-job lifecycle's parts, without Airflow: choose staging, stage and submit, wait, collect.

:class:`~airflow_provider_amlpipe.operators.remote.RemoteStepOperator` (an Airflow task per job,
possibly deferred) and :class:`RemoteStepRun` (a job run to its end from a thread of a worker: a
sweep's trial, a ParallelRun node) both submit through :func:`submit_job`, so there is one way to
stage a step's data and submit its job. :class:`RemoteStepRun` is used inside
:meth:`StepRunner.run <airflow_provider_amlpipe.steps.runner.StepRunner.run>`'s ``execute``: the
step base decides, holds the lease and commits; the job only has to fill the workspace's outputs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_amlpipe.compute.remote import (
    JobStatus,
    JobWaiter,
    LineSink,
    RemoteCompute,
    RemoteJob,
    raise_for_status,
)
from airflow_provider_amlpipe.compute.staging import StagingLayout
from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.errors import StepFailedError
from airflow_provider_amlpipe.steps.remote_staging import (
    Staging,
    choose_staging,
    collect_outputs,
    refuse_local_inputs,
    remove_staging,
    stage_inputs,
)
from airflow_provider_amlpipe.steps.runner import StepLog, StepPlan

if TYPE_CHECKING:  # the Azure SDK takes 0.4 s to import, and every DAG file with a step imports this module
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore


class JobDefinition(Protocol):
    """A step definition that renders a job spec from where its data was staged."""

    output_hint: str

    def remote_spec(self, layout: StagingLayout, store: AzureBlobDatastore, job_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RemoteTarget:
    """A compute connection, made usable by the Airflow shell for code that runs jobs itself.

    ``open`` makes a new :class:`RemoteCompute` (one per thread: each owns its client); ``stores``
    resolves datastore connection ids (the staging container); ``datastore`` is the step's own.
    """

    name: str
    open: Callable[[], RemoteCompute]
    stores: Callable[[str], Datastore]
    datastore: str


def staging_for(
    compute: RemoteCompute,
    plan: StepPlan,
    *,
    compute_name: str,
    datastore: str,
    step_store: Datastore,
    stores: Callable[[str], Datastore],
    kind: str,
) -> Staging:
    """The job's staging container; refused (before anything is uploaded) when the service cannot
    read the step's data."""
    staging = choose_staging(
        compute.staging, compute_name, datastore, step_store, stores, kind=kind, service=compute.service
    )
    if not compute.stages_local_inputs:
        refuse_local_inputs(plan, kind, compute.service)
    return staging


def submit_job(
    compute: RemoteCompute,
    staging: Staging,
    plan: StepPlan,
    definition: JobDefinition,
    job_id: str,
    scratch: Path,
    log: StepLog,
    kind: str,
    sink: LineSink,
) -> tuple[StagingLayout, RemoteJob]:
    """Upload what the job cannot reach, render its spec, check it and submit it as ``job_id`` (or
    reattach to the job already submitted under that id)."""
    layout = stage_inputs(plan, staging, job_id, scratch, log, kind)
    spec = definition.remote_spec(layout, staging.store, job_id)
    compute.backend.check(spec)
    return layout, compute.backend.submit(job_id, spec, sink)


@dataclass
class RemoteStepRun:
    """One step's job, submitted, followed and collected from this thread.

    :meth:`run` fills the workspace's output folders with what the job wrote; files of
    the job's working folder named in ``mirror`` (relative path -> local file) are copied as they
    grow, at every poll, so a caller can follow them (a trial's metrics). :meth:`terminate` (any
    thread) cancels the job; the run then fails.
    """

    target: RemoteTarget
    kind: str
    log: StepLog
    sink: LineSink
    poll_interval: float = 1.0
    mirror: Mapping[str, Path] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _waiter: JobWaiter | None = field(default=None, repr=False)
    _terminated: bool = field(default=False, repr=False)

    def run(
        self,
        plan: StepPlan,
        definition: JobDefinition,
        job_id: str,
        step_store: Datastore,
        scratch: Path,
        outputs_dir: Path,
        optional: tuple[str, ...] = (),
    ) -> JobStatus:
        """Submit the job, follow it to its end and download each output into ``outputs_dir/<name>``;
        raises :class:`StepFailedError` (with the service's errors) unless it succeeded. The job's
        staging folder and its trace on the service are removed whatever happens."""
        compute = self.target.open()
        staging: Staging | None = None
        job: RemoteJob | None = None
        status: JobStatus | None = None
        try:
            staging = staging_for(
                compute,
                plan,
                compute_name=self.target.name,
                datastore=self.target.datastore,
                step_store=step_store,
                stores=self.target.stores,
                kind=self.kind,
            )
            if self._terminated:
                raise StepFailedError("terminated before it was submitted")
            layout, job = submit_job(
                compute, staging, plan, definition, job_id, scratch / "inputs", self.log, self.kind, self.sink
            )
            offsets = dict.fromkeys(self.mirror, 0)
            backend, submitted = compute.backend, job

            def copy_growth() -> None:
                for rel, local in self.mirror.items():
                    data = backend.read_file(submitted, rel, offsets[rel])
                    if data:
                        with open(local, "ab") as handle:
                            handle.write(data)
                        offsets[rel] += len(data)

            waiter = JobWaiter(compute.backend, job, self.sink, on_poll=copy_growth if self.mirror else None)
            with self._lock:
                self._waiter = waiter
                if self._terminated:
                    waiter.stop()
            status = waiter.wait(self.poll_interval)
            raise_for_status(job, status)
            collect_outputs(
                staging.store,
                layout.outputs,
                outputs_dir,
                kind=self.kind,
                hint=definition.output_hint,
                optional=optional,
            )
            return status
        except BaseException:
            if job is not None and (status is None or not status.ended):
                compute.backend.cancel(job)  # failed or killed while the job runs: stop paying for it
            raise
        finally:
            with self._lock:
                self._waiter = None
            if staging is not None:
                remove_staging(staging.store, staging.job_prefix(job_id), self.log)
            if job is not None:
                compute.backend.cleanup(job)
            compute.backend.close()

    def terminate(self) -> None:
        """Cancel the job (from any thread); :meth:`run` ends once the service reports it ended."""
        with self._lock:
            self._terminated = True
            if self._waiter is not None:
                self._waiter.stop()
