"""The dataset registry: named datasets with versions 1, 2, 3..., kept in a datastore.

``registry/<name>/versions/<n>.json`` points a version at a content-addressed object. A version
is immutable once written (create-if-absent), and content identical to the latest version does
not mint a new one.

A version minted by a step's commit names the commit's completion document (``commit.done``, the
step's reuse record): until that document exists the version is *pending* and no reader sees it,
so a step that dies between registering its versions and writing its record leaves nothing
visible. A pending version is later either completed (its commit rolled forward) or stays hidden;
see docs/architecture.md, "Commit protocol".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Protocol

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.names import validate_name
from airflow_provider_amlpipe.data.objects import data_prefix
from airflow_provider_amlpipe.data.refs import LATEST, LATEST_PRODUCED, DataRef
from airflow_provider_amlpipe.data.retry import retrying
from airflow_provider_amlpipe.data.sequence import Document, Sequence, decode, encode
from airflow_provider_amlpipe.errors import ConfigurationError, IntegrityError, NotFoundError


class StoredObject(Protocol):
    """What a version records of its object (a ``Manifest``, or a summary of one)."""

    @property
    def digest(self) -> str: ...

    @property
    def file_count(self) -> int: ...

    @property
    def size(self) -> int: ...


def utcnow_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class DatasetRegistry:
    """Registers and resolves dataset versions in one datastore."""

    def __init__(self, store: Datastore) -> None:
        self.store = store
        self._done: set[str] = set()  # completion documents seen: they never disappear

    def _served_key(self, name: str) -> str:
        return f"registry/{validate_name('dataset name', name)}/served.json"

    def mark_served(self, name: str, version: int, producer: dict[str, Any]) -> None:
        """Record ``version`` as what the producer of ``name`` served last (a commit or a reuse).

        Replace semantics, last writer wins; nothing is written when it already says so.
        """
        key = self._served_key(name)
        try:
            current = decode(retrying(lambda: self.store.read_bytes(key)), key)
        except (NotFoundError, IntegrityError):
            current = {}
        if current.get("version") == version:
            return
        doc = {"version": version, "served_at": utcnow_iso(), "producer": producer}
        retrying(lambda: self.store.write_bytes(key, encode(doc)))

    def served_version(self, name: str) -> int | None:
        """The version the producer of ``name`` served last, if recorded."""
        key = self._served_key(name)
        try:
            return int(decode(retrying(lambda: self.store.read_bytes(key)), key)["version"])
        except (NotFoundError, IntegrityError, KeyError, TypeError, ValueError):
            return None

    def _versions(self, name: str) -> Sequence:
        return Sequence(self.store, f"registry/{validate_name('dataset name', name)}/versions")

    def is_visible(self, doc: Document) -> bool:
        """Whether a version document is committed (its commit's completion document exists)."""
        commit = doc.get("commit")
        if not commit:
            return True
        done = str(commit.get("done", ""))
        if done in self._done:
            return True
        if done and retrying(lambda: self.store.exists(done)):
            self._done.add(done)
            return True
        return False

    def register(
        self, name: str, manifest: StoredObject, producer: dict[str, Any], *, commit: dict[str, str] | None = None
    ) -> tuple[DataRef, bool]:
        """Make ``manifest`` the newest version of ``name``; return its ref and whether it is new.

        ``commit`` (``{"id": ..., "done": <key>}``) makes the version pending until the document at
        ``done`` exists. The latest version is reused instead of minting one when it holds the same
        content and is visible -- or is this very commit's (a commit rolled forward twice).
        """

        def make(number: int) -> Document:
            doc: Document = {
                "name": name,
                "version": number,
                "digest": manifest.digest,
                "files": manifest.file_count,
                "size": manifest.size,
                "created_at": utcnow_iso(),
                "producer": producer,
            }
            if commit is not None:
                doc["commit"] = dict(commit)
            return doc

        def same(latest: Document) -> bool:
            if latest.get("digest") != manifest.digest:
                return False
            theirs = latest.get("commit") or {}
            return bool(commit and theirs.get("id") == commit["id"]) or self.is_visible(latest)

        _, doc, created = self._versions(name).append(make, reuse_latest=same)
        return self._ref(doc), created

    def find_by_commit(self, name: str, commit_id: str, since: str) -> DataRef | None:
        """The version of ``name`` that commit ``commit_id`` registered, looking back to ``since`` (ISO time)."""
        sequence = self._versions(name)
        for number in reversed(sequence.numbers()):
            doc = sequence.get(number)
            if (doc.get("commit") or {}).get("id") == commit_id:
                return self._ref(doc)
            if str(doc.get("created_at", "")) < since:
                return None
        return None

    def _ref(self, doc: dict[str, Any]) -> DataRef:
        return DataRef(
            name=doc["name"],
            version=int(doc["version"]),
            datastore=self.store.name,
            path=data_prefix(doc["digest"]),
            digest=doc["digest"],
            files=int(doc["files"]),
            size=int(doc["size"]),
            producer=dict(doc.get("producer") or {}),
        )

    def _visible_descending(self, name: str) -> Iterator[Document]:
        sequence = self._versions(name)
        for number in reversed(sequence.numbers()):
            doc = sequence.get(number)
            if self.is_visible(doc):
                yield doc

    def get(self, name: str, version: int | str = "latest", *, field: str = "dataset") -> DataRef:
        """Resolve ``name`` at ``version`` (a number, "latest" or "latest-produced"), or fail naming ``field``.

        "latest-produced" is the version the producing step most recently committed or reused
        (:meth:`mark_served`); a dataset with no such record falls back to "latest".
        """
        if version == LATEST_PRODUCED:
            version = self.served_version(name) or LATEST
        sequence = self._versions(name)
        if version != LATEST:
            number = int(version)
            try:
                doc = sequence.get(number)  # one read: the usual case when serving a recorded output
            except NotFoundError:
                doc = None
            if doc is not None and self.is_visible(doc):
                return self._ref(doc)
        latest = next(self._visible_descending(name), None)
        if latest is None:
            known = ", ".join(self.list_datasets()[:20]) or "none yet"
            raise ConfigurationError(
                field,
                f"no dataset named {name!r} in {self.store.describe()} (known: {known})",
                "run the step that registers it first, or correct the name",
            )
        if version == LATEST:
            return self._ref(latest)
        if doc is None:
            first = sequence.numbers()[0]
            raise ConfigurationError(
                field,
                f"dataset {name!r} has no version {version} (versions: {first}..{latest['version']})",
                "pick an existing version or 'latest'",
            )
        raise ConfigurationError(
            field,
            f"version {number} of dataset {name!r} belongs to a commit that has not completed",
            "wait for the step that produces it, or pick another version ('amlpipe gc' completes or clears"
            " abandoned commits)",
        )

    def list_datasets(self) -> list[str]:
        keys = retrying(lambda: list(self.store.list("registry")))
        names = {key.split("/")[1] for key in keys if key.count("/") >= 3}
        return sorted(names)

    def list_versions(self, name: str) -> list[dict[str, Any]]:
        """Every committed version of ``name``, oldest first."""
        return list(reversed(list(self._visible_descending(name))))
