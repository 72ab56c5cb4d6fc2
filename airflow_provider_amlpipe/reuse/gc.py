"""``amlpipe gc``: finish abandoned commits and remove what killed commits left behind.

Safe while other steps commit: it removes only objects that no version or pending commit names
and that nobody has written for ``grace_seconds`` (a commit in progress writes its object's files
and manifest, or rewrites the manifest of an identical existing object, before it names it in its
intent), and the manifest goes first, so a half-removed object is never taken for a complete one.
A commit that was in flight longer than the grace period could lose its object; the next run of
that step notices (the object does not verify) and computes it again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import TEMP_FOLDER, Datastore, ObjectStat
from airflow_provider_amlpipe.data.retry import retrying
from airflow_provider_amlpipe.data.sequence import decode
from airflow_provider_amlpipe.errors import IntegrityError, NotFoundError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.reuse.commit import CommitLog, Committer

DEFAULT_GRACE_SECONDS = 24 * 3600.0


@dataclass
class GcReport:
    """What one collection did (or, with ``dry_run``, would do)."""

    finished_commits: int = 0
    removed_objects: list[str] = field(default_factory=list)
    removed_incomplete: list[str] = field(default_factory=list)
    removed_files: int = 0
    removed_temp_files: int = 0
    kept_recent: int = 0

    def summary(self) -> str:
        return (
            f"finished {self.finished_commits} abandoned commit(s); removed {len(self.removed_objects)} unreferenced"
            f" and {len(self.removed_incomplete)} incomplete object(s) ({self.removed_files} files) and"
            f" {self.removed_temp_files} temporary file(s); kept {self.kept_recent} recent unreferenced object(s)"
        )


def referenced_digests(store: Datastore) -> set[str]:
    """Digests named by any version (committed or pending) or by a commit intent without a record."""
    found: set[str] = set()
    for key in retrying(lambda: list(store.list("registry"))):
        if "/versions/" in key and key.endswith(".json"):
            found.update(_digests(store, key, lambda doc: [doc.get("digest")]))
    records = {key.replace("reuse/records/", "", 1) for key in retrying(lambda: list(store.list("reuse/records")))}
    for key in retrying(lambda: list(store.list("reuse/commits"))):
        if key.endswith(".json") and key.replace("reuse/commits/", "", 1) not in records:
            found.update(_digests(store, key, lambda doc: [o.get("digest") for o in doc.get("outputs", {}).values()]))
    return found


def _digests(store: Datastore, key: str, pick: Any) -> list[str]:
    try:
        doc = decode(retrying(lambda: store.read_bytes(key)), key)
        return [str(d) for d in pick(doc) if d]
    except (IntegrityError, NotFoundError, AttributeError):
        return []


def collect_garbage(
    store: Datastore,
    hasher: Hasher,
    log: CommitLog,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
) -> GcReport:
    """Finish abandoned commits, then remove unreferenced or incomplete objects older than the grace period."""
    report = GcReport()
    committer = Committer(store, hasher, log)
    for fingerprint in committer.reuse.fingerprints_with_intents():
        if not dry_run:
            report.finished_commits += committer.finish_abandoned(fingerprint)
    referenced = referenced_digests(store)
    now = time.time()
    by_digest: dict[str, dict[str, ObjectStat]] = defaultdict(dict)
    for key, st in retrying(lambda: store.list_stats("objects")).items():
        parts = key.split("/")
        if len(parts) >= 3:
            by_digest[parts[1]][key] = st
    for digest, files in sorted(by_digest.items()):
        complete = objects.manifest_key(digest) in files
        if complete and digest in referenced:
            continue
        if now - max(st.modified for st in files.values()) < grace_seconds:
            report.kept_recent += 1
            continue
        (report.removed_objects if complete else report.removed_incomplete).append(digest)
        report.removed_files += len(files)
        if not dry_run:
            _remove_object(store, digest, files)
    report.removed_temp_files = _sweep_temp(store, now - grace_seconds, dry_run)
    return report


def _remove_object(store: Datastore, digest: str, files: dict[str, ObjectStat]) -> None:
    manifest = objects.manifest_key(digest)
    if manifest in files:
        # Rewritten since the listing: a commit is reusing this object right now.
        if retrying(lambda: store.stat(manifest)).modified > files[manifest].modified:
            return
        retrying(lambda: store.delete(manifest))
    retrying(lambda: store.delete_prefix(objects.object_prefix(digest)))


def _sweep_temp(store: Datastore, before: float, dry_run: bool) -> int:
    folder = store.local_path(TEMP_FOLDER)
    if folder is None or not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < before:
                removed += 1
                if not dry_run:
                    path.unlink()
        except FileNotFoundError:
            continue
    return removed
