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
from collections.abc import Callable

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.errors import NotFoundError

PREFIX = "parallel"
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
