"""The dataset registry: named datasets with versions 1, 2, 3..., kept in a datastore.

``registry/<name>/versions/<n>.json`` points a version at a content-addressed object. A version
is immutable once visible (create-if-absent), and content identical to the latest version does
not mint a new one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.names import validate_name
from airflow_provider_amlpipe.data.objects import Manifest, data_prefix
from airflow_provider_amlpipe.data.refs import DataRef
from airflow_provider_amlpipe.data.sequence import Sequence
from airflow_provider_amlpipe.errors import ConfigurationError


def utcnow_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class DatasetRegistry:
    """Registers and resolves dataset versions in one datastore."""

    def __init__(self, store: Datastore) -> None:
        self.store = store

    def _versions(self, name: str) -> Sequence:
        return Sequence(self.store, f"registry/{validate_name('dataset name', name)}/versions")

    def register(self, name: str, manifest: Manifest, producer: dict[str, Any]) -> tuple[DataRef, bool]:
        """Make ``manifest`` the newest version of ``name``; return its ref and whether it is new."""

        def make(number: int) -> dict[str, Any]:
            return {
                "name": name,
                "version": number,
                "digest": manifest.digest,
                "files": len(manifest.files),
                "size": manifest.size,
                "created_at": utcnow_iso(),
                "producer": producer,
            }

        _, doc, created = self._versions(name).append(
            make, reuse_latest=lambda latest: latest["digest"] == manifest.digest
        )
        return self._ref(doc), created

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

    def get(self, name: str, version: int | str = "latest", *, field: str = "dataset") -> DataRef:
        """Resolve ``name`` at ``version`` (a number or "latest"), or fail naming ``field``."""
        sequence = self._versions(name)
        numbers = sequence.numbers()
        if not numbers:
            known = ", ".join(self.list_datasets()[:20]) or "none yet"
            raise ConfigurationError(
                field,
                f"no dataset named {name!r} in {self.store.describe()} (known: {known})",
                "run the step that registers it first, or correct the name",
            )
        number = numbers[-1] if version == "latest" else int(version)
        if number not in numbers:
            raise ConfigurationError(
                field,
                f"dataset {name!r} has no version {version} (versions: {numbers[0]}..{numbers[-1]})",
                "pick an existing version or 'latest'",
            )
        return self._ref(sequence.get(number))

    def list_datasets(self) -> list[str]:
        names = {key.split("/")[1] for key in self.store.list("registry") if key.count("/") >= 3}
        return sorted(names)

    def list_versions(self, name: str) -> list[dict[str, Any]]:
        sequence = self._versions(name)
        return [sequence.get(n) for n in sequence.numbers()]
