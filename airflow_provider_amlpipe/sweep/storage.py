"""Where a sweep's Optuna study lives: an Optuna RDB URL, or a journal file kept in the datastore.

In the datastore the study is Optuna's own journal format (``JournalFileBackend``) at
``sweeps/<study name>/study.journal``: the sweep works on a local copy and writes it back after
each trial ends, so a user opens it with ``optuna.storages.JournalStorage`` once downloaded. With an
RDB URL (``postgresql://...``), Optuna's tables hold it and any Optuna tool reads it directly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

import optuna
from optuna.pruners import NopPruner
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.sweep.storage_url import shown_url


class _WorkingCopy(JournalFileBackend):
    """The journal file the sweep works on, written without Optuna's ``fsync`` per record.

    The durable copy is the one :meth:`StudyStore.save` writes to the datastore; syncing the local
    copy on every ask, report and tell only adds disk waits (tens of milliseconds each on a busy
    disk, several per trial). One process writes it, from the controller's thread.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self._path = path

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        with open(self._path, "ab") as handle:
            handle.write(text.encode("utf-8"))


class StudyStore:
    """Opens the study and keeps it where it belongs."""

    def __init__(self, store: Datastore, study_name: str, work_dir: Path, url: str | None = None) -> None:
        self.store = store
        self.study_name = study_name
        self.url = url
        self.key = f"sweeps/{study_name}/study.journal"
        self.local = work_dir / "study.journal"
        self._lock = threading.Lock()

    def describe(self) -> str:
        return shown_url(self.url) if self.url else f"{self.store.describe()}/{self.key}"

    def _storage(self) -> BaseStorage:
        if self.url is not None:
            return RDBStorage(self.url)
        self.local.parent.mkdir(parents=True, exist_ok=True)
        if self.store.exists(self.key):
            self.local.write_bytes(self.store.read_bytes(self.key))
        return JournalStorage(_WorkingCopy(self.local))

    def open(self, sampler: Callable[[int], BaseSampler], goal: str) -> optuna.Study:
        """The study (created, or loaded with the trials of earlier runs), sampling with
        ``sampler(n)`` where ``n`` counts the trials it holds already: a seeded sampler that continues
        a study must not draw the parameters of its first trials again."""
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self._storage(),
            pruner=NopPruner(),  # termination is the policy layer's decision, not a pruner's
            direction=cast(Literal["minimize", "maximize"], goal),
            load_if_exists=True,
        )
        study.sampler = sampler(len(study.get_trials(deepcopy=False)))
        return study

    def save(self) -> None:
        """Write the local journal back to the datastore (an RDB study is saved as it changes)."""
        if self.url is None and self.local.exists():
            with self._lock:
                self.store.write_bytes(self.key, self.local.read_bytes())
