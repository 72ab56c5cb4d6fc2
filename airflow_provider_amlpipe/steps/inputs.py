"""Turning what a user passed as ``inputs`` into resolved inputs with content digests."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore, LocalFolder, ObjectStat, local_listing
from airflow_provider_amlpipe.data.names import validate_key, validate_name
from airflow_provider_amlpipe.data.refs import DataPath, DataRef, DatasetInput
from airflow_provider_amlpipe.data.registry import DatasetRegistry
from airflow_provider_amlpipe.errors import ConfigurationError, NotFoundError
from airflow_provider_amlpipe.hashing import Hasher, sha256_file, sha256_json, tree_digest

StoreResolver = Callable[[str], Datastore]


@dataclass(frozen=True)
class ResolvedInput:
    """An input ready to fingerprint and stage."""

    name: str
    digest: str
    description: str
    store: Datastore
    key: str
    kind: str  # "dataref" (a committed object) or "file" / "folder" (an external DataPath)
    ref: DataRef | None = None
    #: A remote folder fingerprinted by its markers: its objects as the digest saw them (by key).
    listed: dict[str, ObjectStat] | None = None

    def stage(self, dest: Path) -> Path:
        """A local path holding this input's bytes (in place where the store is local)."""
        if self.ref is not None:
            return objects.materialize(self.store, self.ref.digest, dest)
        local = self.store.local_path(self.key)
        if local is not None:
            return local
        if self.kind == "file":
            target = dest / Path(self.key).name
            self.store.download_file(self.key, target)
            return target
        for key in self.store.list(self.key):
            self.store.download_file(key, dest / key[len(self.key) + 1 :])
        return dest


def resolve_inputs(
    raw: Mapping[str, Any], stores: StoreResolver, hasher: Hasher, default_store: str
) -> dict[str, ResolvedInput]:
    """Resolve every input, failing on the first bad one with its field named."""
    resolved: dict[str, ResolvedInput] = {}
    for name, value in raw.items():
        field = f"inputs[{name!r}]"
        validate_name(field, name)
        resolved[name] = _resolve_one(name, field, value, stores, hasher, default_store)
    return resolved


def _single_output(field: str, value: dict[str, Any]) -> dict[str, Any]:
    """Accept an upstream step's whole return value when it has exactly one output."""
    if DataRef.is_ref(value):
        return value
    refs = [v for v in value.values() if DataRef.is_ref(v)]
    if len(refs) == 1 and len(value) == 1:
        return refs[0]
    raise ConfigurationError(
        field,
        f"got the outputs of an upstream step with {len(value)} outputs ({', '.join(map(str, value))})",
        "pick one: upstream_task.output['<output name>']",
    )


def _resolve_one(
    name: str, field: str, value: Any, stores: StoreResolver, hasher: Hasher, default_store: str
) -> ResolvedInput:
    if isinstance(value, dict) and {"datastore", "path"} <= set(value) and not DataRef.is_ref(value):
        value = DataPath(value["datastore"], value["path"], fingerprint_mode=value.get("fingerprint_mode", "content"))
    if isinstance(value, dict):
        ref = DataRef.from_dict(_single_output(field, value))
        return _from_ref(name, field, ref, stores(ref.datastore))
    if isinstance(value, DatasetInput):
        version = value.resolved_version(field)
        store = stores(value.datastore or default_store)
        ref = DatasetRegistry(store).get(value.name, version, field=field)
        return _from_ref(name, field, ref, store)
    if isinstance(value, DataPath):
        return _from_datapath(name, field, value, stores, hasher)
    if value is None:
        raise ConfigurationError(
            field,
            "the input is None (did the upstream step return nothing?)",
            "pass a DataPath, DatasetInput or an upstream step's output",
        )
    raise ConfigurationError(
        field,
        f"unsupported input {value!r} of type {type(value).__name__}",
        "pass a DataPath, DatasetInput or an upstream step's output (upstream.output['name'])",
    )


def _from_ref(name: str, field: str, ref: DataRef, store: Datastore) -> ResolvedInput:
    if not store.exists(f"{objects.object_prefix(ref.digest)}/manifest.json"):
        raise ConfigurationError(
            field,
            f"{ref.name} version {ref.version} ({ref.digest[:12]}) is not in {store.describe()}",
            "rerun the step that produced it (with regenerate_outputs) or restore the datastore",
        )
    return ResolvedInput(name, ref.digest, f"{ref.name}:{ref.version}", store, ref.path, "dataref", ref)


def _from_datapath(name: str, field: str, path: DataPath, stores: StoreResolver, hasher: Hasher) -> ResolvedInput:
    path.validate(field)
    store = stores(path.datastore)
    key = path.key
    listing = None
    remote_stats: dict[str, ObjectStat] | None = None
    if store.exists(key):
        kind, keys = "file", [key]
    else:
        kind = "folder"
        # A local folder is walked once, with every file's stat (what hashing needs), not listed here
        # and then stat-ed file by file again.
        listing = local_listing(store, key)
        if listing is not None:
            keys = []  # built below only where needed: 100,000 keys cost more than the check they serve
            empty = not any(files for _, _, files in listing)
        else:
            # Markers come with the listing (one request per page), not from a request per object.
            remote_stats = store.list_stats(key) if path.fingerprint_mode == "marker" else None
            keys = sorted(remote_stats if remote_stats is not None else store.list(key))
            empty = not keys
        if empty:
            if store.has_folder(key):
                raise ConfigurationError(
                    f"{field}.path",
                    f"{key!r} in {store.describe()} is an empty folder (it holds no files)",
                    "put the input's files there first, or point the DataPath at the folder that holds them",
                )
            raise ConfigurationError(
                f"{field}.path",
                f"{key!r} does not exist in {store.describe()}",
                "check the path (relative to the datastore's root) or upload the data first",
            )
        for k in keys if listing is None else _backslashed_keys(key, listing):
            _check_object_name(f"{field}.path", k, store)
    description = f"{path.datastore}:{key}"
    if path.fingerprint_mode == "marker":
        if listing is not None:
            listed = {f"{key}/{rel}{file}": st for _, rel, files in listing for file, st in files}
            stats = [(k, LocalDatastore.object_stat(listed[k])) for k in sorted(listed)]
        elif remote_stats is not None:
            stats = [(k, remote_stats[k]) for k in keys]
        else:
            stats = [(k, store.stat(k)) for k in keys]
        markers = [[k, st.size, st.marker] for k, st in stats]
        return ResolvedInput(name, "marker:" + sha256_json(markers), description, store, key, kind, listed=remote_stats)
    if listing is not None:
        digest = hasher.listing_digest(listing[0][0], listing)
    elif (local := store.local_path(key)) is not None:
        rels = [local.name] if kind == "file" else [k[len(key) + 1 :] for k in keys]
        root = local.parent if kind == "file" else local
        digest = tree_digest(hasher.hash_files(root, rels))
    else:
        digest = _remote_content_digest(store, keys, key, kind)
    return ResolvedInput(name, digest, description, store, key, kind)


def _backslashed_keys(key: str, listing: list[LocalFolder]) -> list[str]:
    """The keys of a local listing that the object-name check could refuse, sorted.

    A name read from a folder has no '/' and is never '', '.' or '..', so only a backslash, in a
    file's name or in a folder's on its path, can fail the check; the other keys are never built.
    """
    found: list[str] = []
    for _, rel, files in listing:
        if "\\" in rel:
            found.extend(f"{key}/{rel}{file}" for file, _ in files)
        elif "\\" in "/".join([file for file, _ in files]):
            found.extend(f"{key}/{rel}{file}" for file, _ in files if "\\" in file)
    return sorted(found)


def _check_object_name(field: str, key: str, store: Datastore) -> None:
    """An object of an input folder must be able to become a file (a Blob name need not)."""
    try:
        validate_key(key)
    except ValueError:
        raise ConfigurationError(
            field,
            f"the object {key!r} in {store.describe()} cannot be a file: its name has an empty, '.' or '..'"
            " segment (such as '//') or ends in '/'",
            "rename or delete that object, or point the DataPath at a folder without it",
        ) from None


def _remote_content_digest(store: Datastore, keys: list[str], key: str, kind: str) -> str:
    """Digest of remote objects, streamed through a temporary file (never whole in memory)."""
    entries = []
    with tempfile.TemporaryDirectory(prefix="amlpipe-digest-") as tmp:
        scratch = Path(tmp) / "object"
        for k in keys:
            try:
                store.download_file(k, scratch)
            except NotFoundError as exc:  # deleted between list and read
                raise ConfigurationError("inputs", f"{k!r} vanished while being read", "retry the task") from exc
            rel = Path(k).name if kind == "file" else k[len(key) + 1 :]
            entries.append([rel, scratch.stat().st_size, sha256_file(scratch)])
    return sha256_json(entries)
