"""Per-item results of ParallelRun steps, kept in the step's datastore beside the reuse records.

Under ``parallel/<namespace>/<digest>.json``, where the namespace is a digest of everything about the
step that can change an item's result except the items themselves (code, entry script, arguments,
params, environment, side inputs), so changing any of it starts an empty namespace and every item is
processed again. Each document maps item keys to the rows their ``run()`` returned and is named by
the digest of its own content: written create-if-absent, never rewritten, and checked when read (a
document whose content does not match its name is ignored with a warning). Concurrent runs of one
step only ever add documents.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.errors import NotFoundError, StepFailedError

PREFIX = "parallel"
#: The files ``summary_only`` items wrote, by their SHA-256 (beside, not under, the record documents).
FILES_PREFIX = "parallel-files"
#: Items per document: small enough to write as one request, large enough that a namespace of a
#: million items is a few hundred documents to list and read.
ITEMS_PER_DOCUMENT = 5000
SCHEMA = 1


class ItemRecords:
    """The recorded results of one namespace."""

    def __init__(self, store: Datastore, namespace: str, warn: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.namespace = namespace
        self.warn = warn or (lambda message: None)

    @property
    def prefix(self) -> str:
        return f"{PREFIX}/{self.namespace}"

    def load(self) -> dict[str, list[str]]:
        """Every recorded item key with its rows."""
        records: dict[str, list[str]] = {}
        for key in sorted(self.store.list(self.prefix)):
            try:
                data = self.store.read_bytes(key)
            except NotFoundError:
                continue
            name = key.rsplit("/", 1)[-1].removesuffix(".json")
            if hashlib.sha256(data).hexdigest() != name:
                self.warn(f"item record {key} does not match its digest; ignored (its items are processed again)")
                continue
            document = json.loads(data)
            if document.get("schema") == SCHEMA:
                records.update(document["items"])
        return records

    def save(self, records: dict[str, list[str]]) -> int:
        """Record new items (in documents of at most :data:`ITEMS_PER_DOCUMENT`); how many documents."""
        keys = sorted(records)
        written = 0
        for start in range(0, len(keys), ITEMS_PER_DOCUMENT):
            chunk = {key: records[key] for key in keys[start : start + ITEMS_PER_DOCUMENT]}
            data = json.dumps({"schema": SCHEMA, "items": chunk}, sort_keys=True, separators=(",", ":")).encode()
            self.store.write_bytes(f"{self.prefix}/{hashlib.sha256(data).hexdigest()}.json", data, if_absent=True)
            written += 1
        return written

    # -- summary_only: an item's result is the files its run() wrote -----------------------------------
    def save_files(self, written: dict[str, list[str]], output: Path) -> int:
        """Store the files each item wrote (relative paths under ``output``) by content and record them
        as ``"<sha256> <relative path>"``; how many items were recorded."""
        records: dict[str, list[str]] = {}
        for key, paths in written.items():
            entries = []
            for rel in paths:
                data = (output / rel).read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                self.store.write_bytes(f"{FILES_PREFIX}/{self.namespace}/{digest}", data, if_absent=True)
                entries.append(f"{digest} {rel}")
            records[key] = entries
        if records:
            self.save(records)
        return len(records)

    def restore_files(self, keys: Iterable[str], known: dict[str, list[str]], output: Path) -> int:
        """Write the recorded files of the items ``keys`` into ``output`` (each checked against its digest);
        how many files."""
        count = 0
        for key in keys:
            for entry in known[key]:
                digest, _, rel = entry.partition(" ")
                parts = PurePosixPath(rel).parts
                try:
                    if not rel or PurePosixPath(rel).is_absolute() or ".." in parts:
                        raise NotFoundError(f"unsafe path {rel!r}")
                    data = self.store.read_bytes(f"{FILES_PREFIX}/{self.namespace}/{digest}")
                    if hashlib.sha256(data).hexdigest() != digest:
                        raise NotFoundError(f"{rel} does not match its digest")
                except NotFoundError as exc:
                    raise StepFailedError(
                        f"the recorded files of an item cannot be restored ({exc}); run the step with"
                        ' allow_reuse=False or the run conf {"amlpipe": {"regenerate_outputs": true}} to process'
                        " every item again"
                    ) from exc
                target = output / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                count += 1
        return count
