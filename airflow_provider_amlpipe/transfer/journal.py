"""The resume journal: which destination files an earlier run already copied and verified.

One small document per verified file, in the step's datastore under a folder named after the
(source, destination) pair -- not after the step's fingerprint -- so that a rerun after a kill, and
a run after the source changed, both skip the files whose source and destination are still what
was verified, and copy only the rest. An entry is trusted only while both markers (ETag, or size,
mtime, ctime and inode on disk) are unchanged: anything that rewrote either side invalidates it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.errors import NotFoundError

JOURNAL_ROOT = "transfers"


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

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{hashlib.sha256(path.encode()).hexdigest()[:40]}.json"

    def get(self, path: str) -> Verified | None:
        try:
            doc = json.loads(self.store.read_bytes(self._key(path)))
            return Verified(**doc)
        except (NotFoundError, ValueError, TypeError):
            return None

    def record(self, entry: Verified) -> None:
        self.store.write_bytes(self._key(entry.path), json.dumps(entry.to_dict()).encode())
