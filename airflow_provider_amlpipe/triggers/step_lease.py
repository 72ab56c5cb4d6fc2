"""Waits, in the triggerer, for an identical step running elsewhere to commit or give up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore
from airflow_provider_amlpipe.hooks.datastore import DEFAULT_CONN_ID, datastore_from_connection, default_datastore_root
from airflow_provider_amlpipe.reuse.store import ReuseStore


async def adatastore(conn_id: str) -> Datastore:
    """The datastore of a connection, fetched without blocking the triggerer's event loop."""
    try:
        conn = await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        if conn_id == DEFAULT_CONN_ID:
            return LocalDatastore(conn_id, default_datastore_root())
        raise
    return datastore_from_connection(conn_id, conn.conn_type, conn.host, conn.login, conn.password, conn.extra_dejson)


class StepLeaseTrigger(BaseTrigger):
    """Fires when the lease ``lease_number`` on ``fingerprint`` ends or a record is committed.

    The lease ends when its holder releases it, its heartbeat expires, or (on the same machine)
    the holder's process is gone. The resumed task then decides again: reuse the record, or take
    the lease over and run.
    """

    def __init__(self, datastore_conn_id: str, fingerprint: str, lease_number: int, poll_interval: float = 5.0) -> None:
        super().__init__()
        self.datastore_conn_id = datastore_conn_id
        self.fingerprint = fingerprint
        self.lease_number = lease_number
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "datastore_conn_id": self.datastore_conn_id,
                "fingerprint": self.fingerprint,
                "lease_number": self.lease_number,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        store = await adatastore(self.datastore_conn_id)
        while True:
            outcome = await asyncio.to_thread(ReuseStore(store).wait_outcome, self.fingerprint, self.lease_number)
            if outcome is not None:
                yield TriggerEvent({"status": outcome, "fingerprint": self.fingerprint})
                return
            await asyncio.sleep(self.poll_interval)
