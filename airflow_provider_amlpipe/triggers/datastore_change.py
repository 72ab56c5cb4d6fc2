"""Fires when files under a datastore path were added or changed and have settled (AML's datastore schedule)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_amlpipe.data.watch import ChangeWatcher, changed_path
from airflow_provider_amlpipe.triggers.step_lease import adatastore

#: Marks the events (and the asset events made from them) of a datastore-change watch.
EVENT_KIND = "amlpipe_datastore_change"


class DatastoreChangeTrigger(BaseEventTrigger):
    """Polls ``path`` of the datastore ``datastore`` every ``polling_interval`` seconds and fires once per settled
    change set: ``{"kind": ..., "datastore", "path" (the one changed file, or the folder), "changed": [keys]}``.

    Usable as an :class:`~airflow.sdk.AssetWatcher`'s trigger (event-driven scheduling: it keeps firing) and
    as a deferred sensor's trigger (the first event resumes the task). The baseline is kept in the datastore
    under ``watch_id`` (see :mod:`airflow_provider_amlpipe.data.watch`).
    """

    def __init__(
        self,
        datastore: str,
        path: str,
        watch_id: str,
        polling_interval: float = 60.0,
        recursive: bool = False,
        settle_seconds: float | None = None,
    ) -> None:
        super().__init__()
        self.datastore = datastore
        self.path = path
        self.watch_id = watch_id
        self.polling_interval = polling_interval
        self.recursive = recursive
        self.settle_seconds = polling_interval if settle_seconds is None else settle_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "datastore": self.datastore,
                "path": self.path,
                "watch_id": self.watch_id,
                "polling_interval": self.polling_interval,
                "recursive": self.recursive,
                "settle_seconds": self.settle_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        store = await adatastore(self.datastore)
        watcher = ChangeWatcher(store, self.path, self.recursive, self.settle_seconds, self.watch_id)
        baseline = await asyncio.to_thread(watcher.baseline)
        self.log.info(
            "watching %s of datastore %r every %gs (%d file(s) there already)",
            self.path, self.datastore, self.polling_interval, len(baseline),
        )  # fmt: skip
        while True:
            changed = await asyncio.to_thread(watcher.poll, time.time())
            if changed:
                self.log.info("%d new or changed file(s) under %s: %s", len(changed), self.path, changed[:10])
                yield TriggerEvent(
                    {
                        "kind": EVENT_KIND,
                        "datastore": self.datastore,
                        "path": changed_path(self.path, changed),
                        "changed": changed,
                    }
                )
            await asyncio.sleep(self.polling_interval)
