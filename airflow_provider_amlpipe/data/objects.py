"""Content-addressed output trees: ``objects/<digest>/data/...`` and ``objects/<digest>/manifest.json``.

A step's output folder is hashed, uploaded under the digest of its manifest, and the manifest is
written last: an object without a manifest is an interrupted upload, invisible to every reader.
The manifest is replaced rather than created-if-absent so a damaged object can be repaired; its
bytes are a function of the digest, so every writer writes the same manifest. Identical outputs
share one object, so they cost no storage and no new version.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.data.datastore import Datastore, new_temp_dir
from airflow_provider_amlpipe.data.sequence import encode
from airflow_provider_amlpipe.errors import IntegrityError, NotFoundError
from airflow_provider_amlpipe.reuse.hashing import FileEntry, Hasher, tree_digest


@dataclass(frozen=True)
class Manifest:
    """The files of one output tree, their sizes and digests, and the digest over all of them."""

    digest: str
    files: tuple[FileEntry, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def prefix(self) -> str:
        return object_prefix(self.digest)

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "files": [f.as_dict() for f in self.files]}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Manifest:
        files = tuple(FileEntry(f["path"], int(f["size"]), f["sha256"]) for f in doc["files"])
        return cls(doc["digest"], files)


def object_prefix(digest: str) -> str:
    return f"objects/{digest}"


def data_prefix(digest: str) -> str:
    """Where an object's files live; the ``path`` a DataRef carries."""
    return f"{object_prefix(digest)}/data"


def manifest_of(local_dir: Path, hasher: Hasher) -> Manifest:
    entries = tuple(hasher.hash_tree(local_dir))
    return Manifest(tree_digest(entries), entries)


def read_manifest(store: Datastore, digest: str) -> Manifest:
    return Manifest.from_dict(json.loads(store.read_bytes(f"{object_prefix(digest)}/manifest.json")))


def publish(store: Datastore, local_dir: Path, hasher: Hasher, *, move: bool = False) -> Manifest:
    """Store ``local_dir`` as a content-addressed object; return its manifest.

    With ``move`` the files are handed over (a local store renames them instead of copying).

    When an intact object with the same digest exists, nothing is uploaded. A damaged one
    (a file deleted or altered since) is repaired by uploading again.
    """
    manifest = manifest_of(local_dir, hasher)
    if store.exists(f"{manifest.prefix}/manifest.json") and not problems(store, manifest, hasher):
        return manifest
    stored: list[tuple[str, os.stat_result, str]] = []
    for entry in manifest.files:
        key = f"{data_prefix(manifest.digest)}/{entry.path}"
        store.upload_file(local_dir / entry.path, key, move=move)
        local = store.local_path(key)
        if local is not None:
            stored.append((str(local), local.stat(), entry.sha256))  # the store's root is already resolved
    # The bytes were just hashed: tell the stat cache, so verifying a reuse hit reads nothing.
    hasher.cache.put_many(stored)
    store.write_bytes(f"{manifest.prefix}/manifest.json", encode(manifest.to_dict()))
    return manifest


def problems(store: Datastore, manifest: Manifest, hasher: Hasher) -> list[str]:
    """What no longer matches the manifest: missing files, wrong sizes, changed bytes.

    Local stores are checked by content (the stat cache makes an unchanged file free); remote
    stores by existence and size, which is what they can answer without reading every byte.
    """
    found: list[str] = []
    base = data_prefix(manifest.digest)
    for entry in manifest.files:
        key = f"{base}/{entry.path}"
        try:
            stat = store.stat(key)
        except NotFoundError:
            found.append(f"{entry.path}: missing")
            continue
        if stat.size != entry.size:
            found.append(f"{entry.path}: size {stat.size}, expected {entry.size}")
            continue
        local = store.local_path(key)
        if local is not None:
            actual = hasher.hash_files(local.parent, [local.name])[0].sha256
            if actual != entry.sha256:
                found.append(f"{entry.path}: content changed")
    return found


def verify(store: Datastore, digest: str, hasher: Hasher) -> Manifest:
    """Return the object's manifest, or raise :class:`IntegrityError` saying what is wrong."""
    try:
        manifest = read_manifest(store, digest)
    except NotFoundError as exc:
        raise IntegrityError(f"object {digest[:12]} has no manifest in {store.describe()}") from exc
    issues = problems(store, manifest, hasher)
    if issues:
        raise IntegrityError(f"object {digest[:12]} in {store.describe()}: " + "; ".join(issues))
    return manifest


def materialize(store: Datastore, digest: str, dest: Path | None = None) -> Path:
    """A local folder holding the object's files: in place for local stores, else downloaded.

    Downloads go to ``dest`` (default: a new temporary folder the caller owns).
    """
    base = data_prefix(digest)
    manifest = read_manifest(store, digest)
    local = store.local_path(base)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)  # an empty output has no files, hence no folder
        return local
    dest = dest or new_temp_dir("amlpipe-ref-")
    dest.mkdir(parents=True, exist_ok=True)
    for entry in manifest.files:
        store.download_file(f"{base}/{entry.path}", dest / entry.path)
    return dest
