"""Watching a datastore path for new or changed files: AML's datastore-change schedule, without Airflow.

A :class:`ChangeWatcher` compares snapshots of a path (each file's change marker: an ETag on Blob; size,
mtime, ctime and inode on disk) with a *baseline*. Files added or changed since the baseline make a change set;
it is handed out only once it has **settled** -- the path looked the same in two polls at least
``settle_seconds`` apart -- so a burst of uploads starts one run, not one per file. Handing out a change set
moves the baseline, which is kept in the datastore itself (``reuse/watches/<watch id>.json``), so a restart of
the process that polls (the triggerer) neither forgets nor repeats changes. Deleted files are not changes, as in
AML. Non-recursive by default, as AML's ``path_on_datastore``: only the files directly in the folder count.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.names import validate_key
from airflow_provider_amlpipe.errors import ConfigurationError, NotFoundError

WATCH_PREFIX = "reuse/watches"
Snapshot = dict[str, str]


def watch_id(datastore: str, path: str, recursive: bool, name: str = "") -> str:
    """A stable id for one watch of ``path`` (its baseline's key); ``name`` tells two watchers of one path apart."""
    text = json.dumps([datastore, path, recursive, name])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def check_path(path: object) -> str:
    """A watched path: a folder or file key of the datastore (not its root, not a reserved folder)."""
    if not isinstance(path, str) or not path.strip("/"):
        raise ConfigurationError(
            "path_on_datastore", f"expected a folder or file in the datastore, got {path!r}", "name a folder"
        )
    key = path.strip("/")
    try:
        validate_key(key)
    except ValueError as error:
        raise ConfigurationError("path_on_datastore", str(error), "use a '/'-separated relative path") from None
    if key == "reuse" or key.startswith("reuse/"):
        raise ConfigurationError("path_on_datastore", f"{key!r} is the provider's own folder", "watch your data")
    return key


def take_snapshot(store: Datastore, path: str, recursive: bool = False) -> Snapshot:
    """Each file under ``path`` (only those directly in it unless ``recursive``) with its change marker."""
    try:
        stats = store.list_stats(path)
    except NotFoundError:
        return {}
    snapshot = {}
    for key, stat in stats.items():
        rest = key[len(path) + 1 :] if key != path else ""
        if stat.regular and (recursive or "/" not in rest):
            snapshot[key] = f"{stat.size}:{stat.marker}"
    return snapshot


def changed_keys(before: Snapshot, after: Snapshot) -> list[str]:
    """Files added or changed from ``before`` to ``after``, sorted."""
    return sorted(key for key, marker in after.items() if before.get(key) != marker)


@dataclass
class ChangeWatcher:
    """Polls ``path`` of ``store`` and hands out settled change sets (see the module's docstring)."""

    store: Datastore
    path: str
    recursive: bool = False
    settle_seconds: float = 0.0
    id: str = ""
    _baseline: Snapshot | None = field(default=None, repr=False)
    _pending: Snapshot | None = field(default=None, repr=False)
    _pending_since: float = field(default=0.0, repr=False)

    @property
    def state_key(self) -> str:
        return f"{WATCH_PREFIX}/{self.id or watch_id(self.store.name, self.path, self.recursive)}.json"

    def baseline(self) -> Snapshot:
        """The snapshot changes are measured from: the stored one, else (first use) the path as it is now."""
        if self._baseline is None:
            try:
                self._baseline = dict(json.loads(self.store.read_bytes(self.state_key))["snapshot"])
            except NotFoundError:
                self._baseline = take_snapshot(self.store, self.path, self.recursive)
                self._save(self._baseline)
        return self._baseline

    def poll(self, now: float) -> list[str] | None:
        """The settled change set, if there is one now (the baseline then moves past it); else ``None``."""
        baseline = self.baseline()
        snapshot = take_snapshot(self.store, self.path, self.recursive)
        if not changed_keys(baseline, snapshot):
            self._pending = None
            return None
        if snapshot != self._pending:  # still changing: wait until it looks the same for settle_seconds
            self._pending, self._pending_since = snapshot, now
            if self.settle_seconds > 0:
                return None
        elif now - self._pending_since < self.settle_seconds:
            return None
        changed = changed_keys(baseline, snapshot)
        self._save(snapshot)
        self._baseline, self._pending = snapshot, None
        return changed

    def _save(self, snapshot: Snapshot) -> None:
        doc = {"datastore": self.store.name, "path": self.path, "recursive": self.recursive, "snapshot": snapshot}
        self.store.write_bytes(self.state_key, json.dumps(doc, sort_keys=True).encode("utf-8"))


def changed_path(path: str, changed: list[str]) -> str:
    """What a run is given for a change set: the one changed file, or the watched folder for several."""
    return changed[0] if len(changed) == 1 else path
