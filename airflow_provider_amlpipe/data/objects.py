"""Content-addressed output trees: ``objects/<digest>/data/...`` and ``objects/<digest>/manifest.json``.

A step's output folder is hashed, uploaded under the digest of its manifest, and the manifest is
written last: an object without a manifest is an interrupted upload, invisible to every reader
(``amlpipe gc`` removes it). The manifest is replaced rather than created-if-absent so a damaged
object can be repaired; its bytes are a function of the digest, so every writer writes the same
manifest. Identical outputs share one object, so they cost no storage and no new version.

An object is *intact* when its files are exactly the manifest's -- none missing, none extra, no
links, every size and SHA-256 as recorded. Local stores check content through the stat cache (see
:mod:`airflow_provider_amlpipe.hashing` for what it trusts) and seal committed files
read-only; remote stores compare each blob's ETag with the one recorded when it was uploaded
(``markers.json``; any rewrite changes an ETag) and read the bytes of any blob whose ETag differs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe import faults
from airflow_provider_amlpipe.data.datastore import Datastore, new_temp_dir
from airflow_provider_amlpipe.data.names import validate_key
from airflow_provider_amlpipe.data.retry import retrying
from airflow_provider_amlpipe.data.sequence import encode
from airflow_provider_amlpipe.errors import IntegrityError, NotFoundError, StepFailedError
from airflow_provider_amlpipe.hashing import FileEntry, Hasher, sha256_file, tree_digest

_MAX_SEGMENT_BYTES = 255  # a file name on every common file system
_MAX_KEY_CHARS = 1024  # a blob name


@dataclass(frozen=True)
class Manifest:
    """The files of one output tree, their sizes and digests, and the digest over all of them."""

    digest: str
    files: tuple[FileEntry, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def file_count(self) -> int:
        return len(self.files)

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


def manifest_key(digest: str) -> str:
    return f"{object_prefix(digest)}/manifest.json"


def markers_key(digest: str) -> str:
    return f"{object_prefix(digest)}/markers.json"


def manifest_of(local_dir: Path, hasher: Hasher) -> Manifest:
    entries = tuple(hasher.hash_tree(local_dir))
    return Manifest(tree_digest(entries), entries)


def read_manifest(store: Datastore, digest: str) -> Manifest:
    """The object's manifest, checked to be one: parseable, safe paths, and hashing to ``digest``.

    Raises :class:`NotFoundError` when there is none and :class:`IntegrityError` when it is damaged
    or does not describe this object (a manifest is a function of its digest, so it can be checked).
    """
    raw = retrying(lambda: store.read_bytes(manifest_key(digest)))
    try:
        manifest = Manifest.from_dict(json.loads(raw))
        for entry in manifest.files:
            validate_key(entry.path)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"object {digest[:12]}: its manifest is damaged ({exc})") from None
    if manifest.digest != digest or tree_digest(manifest.files) != digest:
        raise IntegrityError(f"object {digest[:12]}: its manifest describes other content")
    return manifest


def check_output_tree(local_dir: Path, label: str) -> None:
    """Make an output folder committable, or fail naming the file and the fix -- before anything is stored.

    Symbolic links are replaced by a copy of what they point to (a version holds bytes, never a
    link whose target may change); names every datastore can hold are required.
    """
    _replace_links(local_dir, label)
    for dirpath, _dirnames, filenames in os.walk(local_dir):
        for name in filenames:
            rel = Path(dirpath, name).relative_to(local_dir).as_posix()
            problem = _name_problem(rel)
            if problem:
                raise StepFailedError(
                    f"output {label!r}: the file {rel!r} cannot be stored: {problem}. Fix: have the script write"
                    " names of printable UTF-8 characters, without '\\', of at most 255 bytes per folder or file name"
                )


def _name_problem(rel: str) -> str | None:
    try:
        encoded = rel.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if "\\" in rel:
        return "its name contains '\\' (a folder separator on Windows and in Blob tools)"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in rel):
        return "its name contains a control character"
    if any(len(segment.encode("utf-8")) > _MAX_SEGMENT_BYTES for segment in rel.split("/")):
        return f"a folder or file name in it is longer than {_MAX_SEGMENT_BYTES} bytes"
    if len(encoded) + len(data_prefix("0" * 64)) + 1 > _MAX_KEY_CHARS:
        return f"its path is longer than a datastore key may be ({_MAX_KEY_CHARS} characters in all)"
    return None


def _replace_links(folder: Path, label: str, depth: int = 0) -> None:
    if depth > 64:
        raise StepFailedError(f"output {label!r}: folders nested more than 64 deep through links (a link loop?)")
    with os.scandir(folder) as entries:
        for entry in list(entries):
            path = Path(entry.path)
            if entry.is_symlink():
                target = Path(os.path.realpath(path))
                if not target.exists():
                    raise StepFailedError(
                        f"output {label!r}: {path.name!r} is a symbolic link to {os.readlink(path)!r}, which does not"
                        " exist. Fix: write the file itself, or link to an existing one"
                    )
                path.unlink()
                if target.is_dir():
                    if path.parent.resolve().is_relative_to(target):
                        raise StepFailedError(
                            f"output {label!r}: {path.name!r} links to a folder that contains it. Fix: remove the link"
                        )
                    shutil.copytree(target, path, symlinks=True)
                else:
                    shutil.copyfile(target, path)
            if path.is_dir() and not path.is_symlink():
                _replace_links(path, label, depth + 1)


def publish(store: Datastore, local_dir: Path, hasher: Hasher, *, move: bool = False) -> Manifest:
    """Store ``local_dir`` as a content-addressed object; return its manifest.

    With ``move`` the files are handed over (a local store renames them instead of copying).
    When an intact object with the same digest exists, nothing is uploaded (its manifest is
    rewritten, which marks it as recently used for ``amlpipe gc``). A damaged one -- a file
    missing, altered or added since -- is repaired: extra files are removed and the rest uploaded.
    Call :func:`check_output_tree` first (before publishing any of a step's outputs).
    """
    manifest = manifest_of(local_dir, hasher)
    key = manifest_key(manifest.digest)
    if retrying(lambda: store.exists(key)):
        try:
            verify(store, manifest.digest, hasher)
        except IntegrityError:
            pass
        else:
            retrying(lambda: store.write_bytes(key, encode(manifest.to_dict())))
            return manifest
    _upload(store, local_dir, manifest, hasher, move=move)
    faults.point("commit.after_object")
    retrying(lambda: store.write_bytes(key, encode(manifest.to_dict())))
    return manifest


def _upload(store: Datastore, local_dir: Path, manifest: Manifest, hasher: Hasher, *, move: bool) -> None:
    base = data_prefix(manifest.digest)
    wanted = {f"{base}/{entry.path}" for entry in manifest.files}
    for stale in set(retrying(lambda: store.list_stats(base))) - wanted:  # left by an earlier, broken copy
        retrying(lambda stale=stale: store.delete(stale))  # type: ignore[misc]
    for entry in manifest.files:
        retrying(lambda entry=entry: store.upload_file(local_dir / entry.path, f"{base}/{entry.path}", move=move))  # type: ignore[misc]
        faults.point("commit.publish.file")
    local_base = store.local_path(base)
    if local_base is not None:
        local_base.mkdir(parents=True, exist_ok=True)  # an empty output is an empty folder, not none
        store.seal(base)
        root = str(local_base)
        stats = [(os.path.join(root, entry.path), entry) for entry in manifest.files]
        # The bytes were just hashed: tell the stat cache (its racy-entry rule re-reads them once).
        hasher.cache.put_many((path, os.stat(path), entry.sha256) for path, entry in stats)
    else:
        _write_markers(store, manifest.digest, retrying(lambda: store.list_stats(base)))


def _write_markers(store: Datastore, digest: str, stats: dict[str, Any]) -> None:
    base = data_prefix(digest)
    markers = {key[len(base) + 1 :]: st.marker for key, st in stats.items()}
    doc = {"recorded_at": time.time(), "markers": markers}
    retrying(lambda: store.write_bytes(markers_key(digest), encode(doc)))


def _recorded_markers(store: Datastore, digest: str) -> dict[str, str]:
    try:
        doc = json.loads(retrying(lambda: store.read_bytes(markers_key(digest))))
        return {str(k): str(v) for k, v in doc["markers"].items()}
    except (NotFoundError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # none yet (an older object) or damaged: every file is checked by content


def problems(store: Datastore, manifest: Manifest, hasher: Hasher) -> list[str]:
    """What no longer matches the manifest: missing, extra or linked files, sizes, changed bytes."""
    base = data_prefix(manifest.digest)
    stats = retrying(lambda: store.list_stats(base))
    found: list[str] = []
    expected = {entry.path: entry for entry in manifest.files}
    present = {key[len(base) + 1 :]: st for key, st in stats.items()}
    found.extend(f"{rel}: not in the manifest" for rel in sorted(set(present) - set(expected)))
    to_read: list[FileEntry] = []
    for rel, entry in expected.items():
        st = present.get(rel)
        if st is None:
            found.append(f"{rel}: missing")
        elif not st.regular:
            found.append(f"{rel}: is a link, not a file")
        elif st.size != entry.size:
            found.append(f"{rel}: size {st.size}, expected {entry.size}")
        else:
            to_read.append(entry)
    if found:
        return found
    local = store.local_path(base)
    if local is not None:
        actual = hasher.hash_files(local, [entry.path for entry in to_read]) if to_read else []
        found.extend(f"{e.path}: content changed" for e, a in zip(to_read, actual, strict=True) if a.sha256 != e.sha256)
        return found
    recorded = _recorded_markers(store, manifest.digest)
    changed = [e for e in to_read if recorded.get(e.path) != present[e.path].marker]
    found.extend(f"{e.path}: content changed" for e in changed if _remote_sha256(store, f"{base}/{e.path}") != e.sha256)
    if changed and not found:
        _write_markers(store, manifest.digest, stats)  # rewritten with the same bytes: remember the new ETags
    return found


def _remote_sha256(store: Datastore, key: str) -> str:
    with tempfile.TemporaryDirectory(prefix="amlpipe-verify-") as tmp:
        scratch = Path(tmp) / "object"
        retrying(lambda: store.download_file(key, scratch))
        return sha256_file(scratch)


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


def protects_in_place() -> bool:
    """Whether read-only permissions stop this process from writing into a sealed version.

    They do not stop root, so a root worker is handed copies of local inputs instead.
    """
    return not hasattr(os, "geteuid") or os.geteuid() != 0


def materialize(store: Datastore, digest: str, dest: Path | None = None, *, copy_if_unprotected: bool = True) -> Path:
    """A local folder holding the object's files: in place (read-only) for local stores, else downloaded.

    Downloads -- and, for a worker running as root, copies of local objects, since permissions do
    not stop root from altering a version in place -- go to ``dest`` (default: a new temporary
    folder the caller owns).
    """
    base = data_prefix(digest)
    manifest = read_manifest(store, digest)
    local = store.local_path(base)
    if local is not None and (protects_in_place() or not copy_if_unprotected):
        return local
    dest = dest or new_temp_dir("amlpipe-ref-")
    dest.mkdir(parents=True, exist_ok=True)
    fetch: Callable[[str, Path], None] = store.download_file
    for entry in manifest.files:
        target = dest / entry.path
        retrying(lambda entry=entry, target=target: fetch(f"{base}/{entry.path}", target))  # type: ignore[misc]
    return dest
