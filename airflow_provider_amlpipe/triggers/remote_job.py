"""Waits, in the triggerer, for any remote step's job to end, streaming its logs to the task log."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_amlpipe.compute.remote import JobStatus, RemoteJob, RemoteJobBackend, describe_status

BackendFactory = Callable[[str], Awaitable[RemoteJobBackend]]


def backend_factory(path: str) -> BackendFactory:
    """The async function at ``module:name`` that builds a backend from a connection id."""
    module, _, name = path.partition(":")
    factory: BackendFactory = getattr(importlib.import_module(module), name)
    return factory


class RemoteJobTrigger(BaseTrigger):
    """Fires when a remote step's job ends.

    ``backend`` is the ``module:function`` that rebuilds the step kind's backend from the compute
    connection ``compute_conn_id`` (so the trigger holds no secret); ``job`` is the
    :class:`~airflow_provider_amlpipe.compute.remote.RemoteJob` the task submitted. Each poll
    reads the job's status and sends its new log lines to the task log.

    The event is ``{"status": "ended", "job": ..., "job_status": ..., "resume": ...}``, or
    ``{"status": "error", "job": ..., "message": ..., "resume": ...}`` when the job could not be
    read; ``resume`` is whatever the deferring task passed. Killing the deferred task (mark failed,
    clear) cancels the job, frees the step's lease and deletes the job's staging folder.
    """

    def __init__(
        self,
        compute_conn_id: str,
        backend: str,
        job: dict[str, Any],
        poll_interval: float = 5.0,
        resume: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.compute_conn_id = compute_conn_id
        self.backend = backend
        self.job = job
        self.poll_interval = poll_interval
        self.resume = resume or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "compute_conn_id": self.compute_conn_id,
                "backend": self.backend,
                "job": self.job,
                "poll_interval": self.poll_interval,
                "resume": self.resume,
            },
        )

    async def _backend(self) -> RemoteJobBackend:
        return await backend_factory(self.backend)(self.compute_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        job = RemoteJob.from_dict(self.job)
        backend = await self._backend()

        def sink(stream: str, line: str) -> None:
            self.log.info("[%s] %s", stream, line)

        try:
            last: tuple[str, str] | None = None
            while True:
                try:
                    status: JobStatus = await asyncio.to_thread(backend.status, job)
                    await asyncio.to_thread(backend.read_logs, job, sink)
                except Exception as exc:  # the job cannot be read (gone, credentials refused, retries exhausted)
                    yield TriggerEvent(
                        {"status": "error", "job": job.to_dict(), "message": str(exc), "resume": self.resume}
                    )
                    return
                if (status.state, status.detail) != last:
                    self.log.info("%s", describe_status(job, status))
                    last = (status.state, status.detail)
                if status.ended:
                    yield TriggerEvent(
                        {"status": "ended", "job": job.to_dict(), "job_status": status.to_dict(), "resume": self.resume}
                    )
                    return
                await asyncio.sleep(self.poll_interval)
        finally:
            await asyncio.to_thread(backend.close)

    async def on_kill(self) -> None:
        """A user killed the deferred task: cancel the job and clean up after it, free the step's
        lease, delete the job's staging folder."""
        from airflow_provider_amlpipe.reuse.store import Lease, ReuseStore
        from airflow_provider_amlpipe.steps.remote_staging import remove_staging
        from airflow_provider_amlpipe.triggers.step_lease import adatastore

        job = RemoteJob.from_dict(self.job)
        backend = await self._backend()
        try:
            await asyncio.to_thread(backend.cancel, job)
            self.log.info("%s job %s: cancel requested because the task was killed", job.kind, job.job_id)
            await asyncio.to_thread(backend.cleanup, job)
        finally:
            await asyncio.to_thread(backend.close)
        lease, datastore = self.resume.get("lease"), self.resume.get("datastore")
        if lease and datastore:
            store = await adatastore(datastore)
            await asyncio.to_thread(ReuseStore(store).release, Lease(**lease))
        staging = self.resume.get("staging")
        if staging:
            staging_store = await adatastore(staging["datastore"])
            await asyncio.to_thread(remove_staging, staging_store, staging["prefix"], self.log)
