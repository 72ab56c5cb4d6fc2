"""Waits, in the triggerer, for an ADLA job to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_amlpipe.compute.adla import AdlaError
from airflow_provider_amlpipe.hooks.adla import aadla_client


class AdlaJobTrigger(BaseTrigger):
    """Fires when the ADLA job ``job_id`` ends, with its state, result and error messages.

    The event's payload is ``{"status": "ended", **JobInfo.to_event()}``; when the job cannot be
    read it is ``{"status": "error", "job_id": ..., "message": ...}``. Either carries ``resume``:
    whatever the deferring task passed, handed back so it needs no ``defer(kwargs=...)``. The resumed task turns it
    back into a :class:`~airflow_provider_amlpipe.compute.adla.JobInfo` and calls
    ``AdlaJobBackend.raise_for_result``. Transient HTTP failures are retried by the client.
    """

    def __init__(
        self, adla_conn_id: str, job_id: str, poll_interval: float = 5.0, resume: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.adla_conn_id = adla_conn_id
        self.job_id = str(job_id)
        self.poll_interval = poll_interval
        self.resume = resume or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "adla_conn_id": self.adla_conn_id,
                "job_id": self.job_id,
                "poll_interval": self.poll_interval,
                "resume": self.resume,
            },
        )

    async def on_kill(self) -> None:
        """A user killed the deferred task (mark failed, clear): cancel the job, free the step's lease,
        delete the job's staging folder."""
        from airflow_provider_amlpipe.triggers.step_lease import adatastore

        client = await aadla_client(self.adla_conn_id)
        try:
            await asyncio.to_thread(client.cancel_job, self.job_id)
            self.log.info("ADLA job %s: cancel requested because the task was killed", self.job_id)
        except AdlaError as exc:
            self.log.warning("could not cancel ADLA job %s: %s", self.job_id, exc)
        finally:
            client.close()
        lease, datastore = self.resume.get("lease"), self.resume.get("datastore")
        if lease and datastore:
            from airflow_provider_amlpipe.reuse.store import Lease, ReuseStore

            store = await adatastore(datastore)
            await asyncio.to_thread(ReuseStore(store).release, Lease(**lease))
        staging = self.resume.get("staging")
        if staging:
            from airflow_provider_amlpipe.steps.adla_remote import remove_staging

            staging_store = await adatastore(staging["datastore"])
            await asyncio.to_thread(remove_staging, staging_store, staging["prefix"], self.log)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        client = await aadla_client(self.adla_conn_id)
        try:
            last_state = None
            while True:
                try:
                    info = await asyncio.to_thread(client.get_job, self.job_id)
                except AdlaError as exc:  # no such job, credentials refused, retries exhausted
                    yield TriggerEvent(
                        {"status": "error", "job_id": self.job_id, "message": str(exc), "resume": self.resume}
                    )
                    return
                if info.state != last_state:
                    self.log.info("ADLA job %s: %s", self.job_id, info.state)
                    last_state = info.state
                if info.ended:
                    yield TriggerEvent({"status": "ended", **info.to_event(), "resume": self.resume})
                    return
                await asyncio.sleep(self.poll_interval)
        finally:
            client.close()
