"""The resume journal: which destination files an earlier run already copied and verified.

Kept in the step's datastore under a folder named after the (source, destination) pair -- not
after the step's fingerprint -- so that a rerun after a kill, and a run after the source changed,
both skip the files whose source and destination are still what was verified, and copy only the
rest. An entry is trusted only while both markers (ETag, or size, mtime, ctime and inode on disk)
are unchanged: anything that rewrote either side invalidates it.

Entries are written in batches (one document each ``FLUSH_SECONDS`` or ``FLUSH_ENTRIES``, and at the
end), not one write per file: a kill loses at most the last batch, whose files a rerun then finds
already at a Blob destination with the right Content-MD5 (not sent again) or copies again on disk.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.errors import NotFoundError

JOURNAL_ROOT = "transfers"
FLUSH_SECONDS = 1.0
FLUSH_ENTRIES = 500


@dataclass(frozen=True)
class Verified:
    """A destination file that was copied from a source file and verified equal to it."""

    path: str
    size: int
    source_marker: str
    destination_marker: str
    #: How it was verified and against what: ``md5:<hex>`` (the service's Content-MD5) or ``sha256:<hex>``.
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    """Verified files of one (source, destination) pair, kept in ``store``."""

    def __init__(self, store: Datastore, pair: str) -> None:
        self.store = store
        self.prefix = f"{JOURNAL_ROOT}/{hashlib.sha256(pair.encode()).hexdigest()[:32]}"
        self._run = uuid.uuid4().hex[:12]
        self._batch = 0
        self._pending: list[Verified] = []
        self._flushed_at = time.monotonic()
        self._lock = threading.Lock()

    def load(self) -> dict[str, Verified]:
        """Every entry written so far, by destination path (a later batch wins)."""
        entries: dict[str, Verified] = {}
        for key in sorted(self.store.list(self.prefix)):
            try:
                for doc in json.loads(self.store.read_bytes(key)):
                    entry = Verified(**doc)
                    entries[entry.path] = entry
            except (NotFoundError, ValueError, TypeError):
                continue  # a batch damaged or removed meanwhile: its files are checked again
        return entries

    def record(self, entry: Verified) -> None:
        """Add a verified file; written with the next batch."""
        with self._lock:
            self._pending.append(entry)
            due = len(self._pending) >= FLUSH_ENTRIES or time.monotonic() - self._flushed_at >= FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the entries not written yet as one document."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._flushed_at = time.monotonic()
            if not pending:
                return
            self._batch += 1
            key = f"{self.prefix}/{time.time_ns():020d}-{self._run}-{self._batch:06d}.json"
            self.store.write_bytes(key, json.dumps([e.to_dict() for e in pending]).encode())
