"""``DatastoreChangeSensor``: wait, deferred, for new or changed files under a datastore path."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_provider_amlpipe.data.watch import ChangeWatcher, changed_path, check_path, watch_id
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver
from airflow_provider_amlpipe.triggers.datastore_change import DatastoreChangeTrigger


class DatastoreChangeSensor(BaseOperator):
    """Wait until files under ``path_on_datastore`` are added or changed (and have settled), AML's datastore
    schedule as a task: for a DAG on a time schedule that should go on only when new data arrived.

    Changes are measured from the baseline this sensor's watch keeps in the datastore (so each new file is
    reported once, to one run); the first run ever records the baseline and waits for the next change. Returns
    (XCom) ``{"datastore", "path" (the changed file, or the folder for several), "changed": [keys]}``. Waits in
    the triggerer; the path is checked once before deferring.

    :param polling_interval: seconds between two looks (AML's was in minutes).
    :param settle_seconds: how long the path must look the same (default: one polling interval).
    :param recursive: count files in sub-folders too (AML: no).
    """

    template_fields: Sequence[str] = ("path_on_datastore",)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        datastore: str,
        path_on_datastore: str,
        polling_interval: float = 300.0,
        settle_seconds: float | None = None,
        recursive: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(datastore, str) or not datastore.strip():
            raise ConfigurationError("datastore", f"expected a connection id, got {datastore!r}", "name a datastore")
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore if "{{" in str(path_on_datastore) else check_path(path_on_datastore)
        self.polling_interval = float(polling_interval)
        self.settle_seconds = self.polling_interval if settle_seconds is None else float(settle_seconds)
        self.recursive = recursive

    def _watch_id(self) -> str:
        return watch_id(
            self.datastore, check_path(self.path_on_datastore), self.recursive, f"{self.dag_id}.{self.task_id}"
        )

    def execute(self, context: Context) -> dict[str, Any] | None:
        path = check_path(self.path_on_datastore)
        store = DatastoreResolver()(self.datastore)
        watcher = ChangeWatcher(store, path, self.recursive, self.settle_seconds, self._watch_id())
        changed = watcher.poll(time.time())
        if changed:  # settled already (settle_seconds=0): no trip through the triggerer
            return self._result(path, changed)
        trigger = DatastoreChangeTrigger(
            self.datastore, path, self._watch_id(), self.polling_interval, self.recursive, self.settle_seconds
        )
        self.defer(trigger=trigger, method_name="execute_complete")
        return None

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        self.log.info("%d new or changed file(s): %s", len(event["changed"]), event["changed"][:20])
        return {"datastore": event["datastore"], "path": event["path"], "changed": event["changed"]}

    def _result(self, path: str, changed: list[str]) -> dict[str, Any]:
        self.log.info("%d new or changed file(s): %s", len(changed), changed[:20])
        return {"datastore": self.datastore, "path": changed_path(path, changed), "changed": changed}
