"""Numbered, append-only JSON documents in a datastore: 1, 2, 3... with no gaps or duplicates.

Number ``n + 1`` is only ever attempted after ``n`` is visible, and each number is written with
create-if-absent, so concurrent appenders race for the same number, exactly one wins and the
losers retry with the next one. Dataset versions, reuse records and leases are all sequences.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from airflow_provider_amlpipe.data.datastore import Datastore

Document = dict[str, Any]
_MAX_ATTEMPTS = 1000


def encode(doc: Document) -> bytes:
    """The stored form of a document: UTF-8 JSON, keys sorted for stable bytes."""
    return json.dumps(doc, sort_keys=True, indent=1).encode("utf-8")


class Sequence:
    """The documents ``<prefix>/0000000001.json``, ``<prefix>/0000000002.json``, ..."""

    def __init__(self, store: Datastore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def key(self, number: int) -> str:
        return f"{self.prefix}/{number:010d}.json"

    def numbers(self) -> list[int]:
        """Every number present, ascending."""
        found = []
        for key in self.store.list(self.prefix):
            stem = key.rsplit("/", 1)[-1]
            if stem.endswith(".json") and stem[:-5].isdigit() and key == self.key(int(stem[:-5])):
                found.append(int(stem[:-5]))
        return sorted(found)

    def get(self, number: int) -> Document:
        doc: Document = json.loads(self.store.read_bytes(self.key(number)))
        return doc

    def latest(self) -> tuple[int, Document] | None:
        numbers = self.numbers()
        if not numbers:
            return None
        return numbers[-1], self.get(numbers[-1])

    def overwrite(self, number: int, doc: Document) -> None:
        """Replace document ``number`` (only its owner may: leases heartbeat this way)."""
        self.store.write_bytes(self.key(number), encode(doc))

    def append(
        self,
        make: Callable[[int], Document],
        *,
        reuse_latest: Callable[[Document], bool] | None = None,
    ) -> tuple[int, Document, bool]:
        """Write ``make(n)`` as the next number; return ``(n, doc, created)``.

        When ``reuse_latest`` says the current latest document already stands for what would be
        written, that one is returned (``created`` false) and nothing is written.
        """
        for _ in range(_MAX_ATTEMPTS):
            latest = self.latest()
            if latest is not None and reuse_latest is not None and reuse_latest(latest[1]):
                return latest[0], latest[1], False
            number = latest[0] + 1 if latest else 1
            doc = make(number)
            if self.store.write_bytes(self.key(number), encode(doc), if_absent=True):
                return number, doc, True
        raise RuntimeError(f"could not append to {self.prefix} after {_MAX_ATTEMPTS} attempts")
