"""Numbered, append-only JSON documents in a datastore: 1, 2, 3... with no gaps or duplicates.

Number ``n + 1`` is only ever attempted after ``n`` is visible, and each number is written with
create-if-absent, so concurrent appenders race for the same number, exactly one wins and the
losers retry with the next one. Dataset versions, commit intents and leases are sequences.

Every appended document carries a random ``writer`` token: when a create-if-absent write is
retried after a transient error whose request had in fact succeeded, the appender finds its own
token under that number and knows it won, instead of appending a duplicate.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.retry import ATTEMPTS, is_transient, retrying
from airflow_provider_amlpipe.errors import IntegrityError, NotFoundError

Document = dict[str, Any]
_MAX_ATTEMPTS = 1000
WRITER = "_token"


def encode(doc: Document) -> bytes:
    """The stored form of a document: UTF-8 JSON, keys sorted for stable bytes."""
    return json.dumps(doc, sort_keys=True, indent=1).encode("utf-8")


def decode(raw: bytes, what: str) -> Document:
    """A stored document, or :class:`IntegrityError` when the bytes are not a JSON object."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise IntegrityError(f"{what} is damaged: {exc}") from None
    if not isinstance(doc, dict):
        raise IntegrityError(f"{what} is damaged: not a JSON object")
    return doc


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
        for key in retrying(lambda: list(self.store.list(self.prefix))):
            stem = key.rsplit("/", 1)[-1]
            if stem.endswith(".json") and stem[:-5].isdigit() and key == self.key(int(stem[:-5])):
                found.append(int(stem[:-5]))
        return sorted(found)

    def get(self, number: int) -> Document:
        """Document ``number``; :class:`NotFoundError` if absent, :class:`IntegrityError` if damaged."""
        key = self.key(number)
        return decode(retrying(lambda: self.store.read_bytes(key)), f"{self.store.describe()}: {key}")

    def exists(self, number: int) -> bool:
        return retrying(lambda: self.store.exists(self.key(number)))

    def latest(self) -> tuple[int, Document] | None:
        numbers = self.numbers()
        if not numbers:
            return None
        return numbers[-1], self.get(numbers[-1])

    def overwrite(self, number: int, doc: Document) -> None:
        """Replace document ``number`` (only its owner may: leases heartbeat this way)."""
        retrying(lambda: self.store.write_bytes(self.key(number), encode(doc)))

    def create(self, number: int, doc: Document) -> Document | None:
        """Write ``doc`` as ``number`` unless that exists; the document written, or ``None`` if another
        writer had it first (safe to call when a transient error may have hidden a success)."""
        token = uuid.uuid4().hex
        doc = {**doc, WRITER: token}
        key = self.key(number)
        for attempt in range(ATTEMPTS):
            try:
                if self.store.write_bytes(key, encode(doc), if_absent=True):
                    return doc
            except Exception as exc:
                if not is_transient(exc) or attempt == ATTEMPTS - 1:
                    raise
                continue
            # Exists: ours, if an earlier attempt that "failed" had in fact been written.
            try:
                return doc if attempt and self.get(number).get(WRITER) == token else None
            except NotFoundError:
                continue
        return None

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
            written = self.create(number, make(number))
            if written is not None:
                return number, written, True
        raise RuntimeError(f"could not append to {self.prefix} after {_MAX_ATTEMPTS} attempts")
