"""Copying files between datastores: plan, copy in parallel, verify, journal, resume.

The source is a file or a folder in one datastore, the destination a file or a folder in another
(or the same). Each file is copied by the fastest route the two stores allow (a streamed copy on
disk, an upload or download with the service's MD5 checks, a service-side copy from URL between any
two Azure stores: Blob and ADLS Gen2 either way), verified, then journalled; a rerun skips every
journalled file whose source and destination are unchanged, so an interrupted transfer resumes where
it stopped.

The destination is listed only when the journal has entries to check against it, or when it is not
a Blob folder. A first transfer into a Blob folder (nothing journalled) writes each blob on
condition that it does not exist yet (``If-None-Match: *``) instead of listing first: a blob the
service reports present (left by a run killed before it journalled it, or by another writer) is
checked in place -- size and Content-MD5 against the source's -- and kept when it matches, else
overwritten; the first refusal also lists the destination once, so the files still to come are
checked against that listing instead of being sent only to be refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import HttpResponseError, ResourceModifiedError

from airflow_provider_amlpipe.data.adls_gen2 import AdlsGen2Datastore
from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
from airflow_provider_amlpipe.data.datastore import TEMP_FOLDER, Datastore, LocalDatastore, ObjectStat, etag
from airflow_provider_amlpipe.errors import ConfigurationError, IntegrityError, StepFailedError
from airflow_provider_amlpipe.hashing import sha256_file
from airflow_provider_amlpipe.transfer import blob
from airflow_provider_amlpipe.transfer.journal import Journal, Verified
from airflow_provider_amlpipe.transfer.progress import Progress, TransferLog
from airflow_provider_amlpipe.transfer.refs import DEFAULT_WORKERS, DIRECTORY, FILE

#: Datastore kinds a transfer reads from and writes to.
SUPPORTED_STORES = (LocalDatastore, AzureBlobDatastore, AdlsGen2Datastore)
#: Stores a service-side copy reads from and writes to (through their accounts' Blob endpoints).
AZURE_STORES = (AzureBlobDatastore, AdlsGen2Datastore)
#: Where a folder bound for a hierarchical namespace is assembled before its one atomic rename.
PARTIAL_PREFIX = ".amlpipe-partial-"
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileEnd:
    """One end of a file transfer: ``key`` in ``store``, a file or a directory."""

    store: Datastore
    key: str
    kind: str


@dataclass(frozen=True)
class Item:
    """One file to copy: where from, where to (``rel``: its path under the destination end), its stat."""

    source_key: str
    destination_key: str
    rel: str
    stat: ObjectStat


def check_store(field: str, store: Datastore) -> None:
    """Refuse a datastore kind the transfer cannot read or write."""
    if not isinstance(store, SUPPORTED_STORES):
        raise ConfigurationError(
            field,
            f"{store.describe()} is a kind of datastore a transfer cannot read or write",
            "use a local folder (amlpipe_local), Azure Blob (amlpipe_azure_blob) or ADLS Gen2 (amlpipe_adls_gen2)"
            " datastore",
        )


def source_kind(field: str, store: Datastore, key: str, declared: str | None) -> str:
    """AML's rule: the declared type, else the type of the existing path (a missing source is an error)."""
    if store.exists(key):
        found: str | None = FILE
    elif store.is_prefix(key):
        found = DIRECTORY
    else:
        found = None
    if found is None:
        empty = store.has_folder(key)
        raise ConfigurationError(
            f"{field}.path",
            f"{key!r} {'is an empty folder' if empty else 'does not exist'} in {store.describe()}",
            "check the path (relative to the datastore's root) or put the data there first",
        )
    if declared is not None and declared != found:
        raise ConfigurationError(
            "source_reference_type",
            f"declared {declared!r} but {key!r} in {store.describe()} is a {found}",
            f"pass source_reference_type={found!r} or point the source at a {declared}",
        )
    return found


def destination_kind(store: Datastore, key: str, declared: str | None, source: str) -> str:
    """AML's rule: the declared type, else the type of the existing path, else the source's type."""
    if declared is not None:
        kind = declared
    elif store.exists(key):
        kind = FILE
    elif store.is_prefix(key):
        kind = DIRECTORY
    else:
        kind = source
    if source == DIRECTORY and kind == FILE:
        raise ConfigurationError(
            "destination_reference_type",
            f"a directory cannot be copied into the file {key!r}",
            "point the destination at a folder (destination_reference_type='directory')",
        )
    return kind


def _normal(stat: ObjectStat) -> ObjectStat:
    """``stat`` with its marker as the journal keeps it (an ETag without quotes, however it was read)."""
    return dataclasses.replace(stat, marker=etag(stat.marker))


def _skip(rel: str) -> bool:
    """Temporary files of stores and of interrupted copies are never data."""
    return any(part.startswith((".tmp-", PARTIAL_PREFIX)) or part == TEMP_FOLDER for part in rel.split("/"))


def plan(source: FileEnd, destination: FileEnd, listed: Mapping[str, ObjectStat] | None = None) -> list[Item]:
    """The files to copy, sorted by destination path; a source folder's objects from ``listed`` (by key,
    as ``list_stats`` gives them) when the caller has listed it, else listed here."""
    if source.kind == FILE:
        stat = _normal(source.store.stat(source.key))
        name = source.key.rsplit("/", 1)[-1]
        dest = destination.key if destination.kind == FILE else f"{destination.key}/{name}"
        rel = name if destination.kind == DIRECTORY else dest.rsplit("/", 1)[-1]
        return [Item(source.key, dest, rel, stat)]
    items = []
    for key, stat in (listed if listed is not None else source.store.list_stats(source.key)).items():
        rel = key[len(source.key) + 1 :]
        if _skip(rel):
            continue
        if not stat.regular:
            raise ConfigurationError(
                "source_data_reference.path",
                f"{key!r} in {source.store.describe()} is a symbolic link or special file",
                "copy plain files only: replace the link by the file it points to",
            )
        items.append(Item(key, f"{destination.key}/{rel}", rel, _normal(stat)))
    return sorted(items, key=lambda i: i.destination_key)


class FileTransfer:
    """Copies the files of ``source`` to ``destination``, resuming from ``journal`` (``None``: no resume)."""

    def __init__(
        self,
        source: FileEnd,
        destination: FileEnd,
        journal: Journal | None,
        log: TransferLog,
        *,
        workers: int = DEFAULT_WORKERS,
        cancel: threading.Event | None = None,
        progress_every: float = 5.0,
        listed: Mapping[str, ObjectStat] | None = None,
    ) -> None:
        self.source = source
        #: The source folder's objects as the caller listed them (``None``: :meth:`run` lists it).
        self.listed = listed
        self.destination = destination
        self.journal = journal
        self.log = log
        self.workers = workers
        self.cancel = cancel or threading.Event()
        self.progress_every = progress_every
        #: The destination's files by key, or ``None`` while it was not listed (writes are then conditional).
        self._existing: dict[str, ObjectStat] | None = None
        self._urls: Callable[[str], str] | None = None
        self._lock = threading.Lock()
        #: Apart from ``_lock``: workers asking for source URLs need not wait for a listing.
        self._listing_lock = threading.Lock()
        #: Set once the destination's service could not read a source URL: the rest go through here.
        self._no_server_copy = False

    def run(self) -> list[Verified]:
        """Copy and verify every file; the verified files, sorted by path."""
        final = self.destination
        store = final.store
        staged = isinstance(store, AdlsGen2Datastore) and final.kind == DIRECTORY and not store.has_folder(final.key)
        if staged:
            # A new folder on a hierarchical namespace appears at once: assembled aside, then renamed.
            parent, _, name = final.key.rpartition("/")
            tag = hashlib.sha256(f"{self.source.store.name}:{self.source.key}".encode()).hexdigest()[:12]
            folder = f"{PARTIAL_PREFIX}{name}-{tag}"
            self.destination = FileEnd(store, f"{parent}/{folder}" if parent else folder, DIRECTORY)
        try:
            done = self._run()
            if staged:
                assert isinstance(store, AdlsGen2Datastore)
                store.rename_folder(self.destination.key, final.key)
                self.log.info("transfer: published %s as %s in one rename", self.destination.key, final.key)
            return done
        finally:
            self.destination = final

    def _run(self) -> list[Verified]:
        # The source's listing runs beside the journal's load and (when needed) the destination's listing, which
        # this thread does in turn: the journal tells whether the destination must be listed.
        with ThreadPoolExecutor(1) as pool:
            listed = pool.submit(plan, self.source, self.destination, self.listed)
            journalled = {} if self.journal is None else self.journal.load()
            if journalled or not self._conditional_first():
                self._existing = self._destination_stats()
            items = listed.result()
        existing = self._existing or {}
        progress = Progress(self.log, len(items), sum(i.stat.size for i in items), every=self.progress_every)
        todo: list[Item] = []
        done: list[Verified] = []
        for item in items:
            entry = journalled.get(item.rel)
            current = existing.get(item.destination_key)
            if (
                entry is not None
                and current is not None
                and entry.source_marker == item.stat.marker
                and entry.destination_marker == current.marker
            ):
                done.append(entry)
                progress.skipped(item.stat.size)
            else:
                todo.append(item)
        self.log.info(
            "transfer: %d file(s) to copy from %s to %s, %d already verified by an earlier run",
            len(todo),
            self.source.store.describe(),
            self.destination.store.describe(),
            len(done),
        )
        # Large files first: they set the finish time, and small ones fill the gaps around them.
        todo.sort(key=lambda i: -i.stat.size)
        with ThreadPoolExecutor(max(1, min(self.workers, len(todo) or 1))) as pool:
            try:
                done.extend(pool.map(lambda item: self._copy(item, progress), todo))
            except BaseException:
                self.cancel.set()  # the other copies stop at their next chunk instead of running on
                raise
            finally:
                if self.journal is not None:
                    self.journal.flush()  # what was verified before a failure need not be copied again
        progress.tick(force=True)
        return sorted(done, key=lambda v: v.path)

    def _destination_stats(self) -> dict[str, ObjectStat]:
        store, key = self.destination.store, self.destination.key
        if self.destination.kind == FILE:
            found = {key: store.stat(key)} if store.exists(key) else {}
        else:
            found = store.list_stats(key)
        return {k: _normal(v) for k, v in found.items()}

    def _conditional_first(self) -> bool:
        """Whether, with nothing journalled, the destination goes unlisted and each write is conditional.

        A Blob folder only: a single destination file is checked with one request up front instead, as
        it is often rewritten on purpose (an export to a fixed path), which a refused write would cost
        the file's bytes sent twice; other stores are listed up front too.
        """
        return isinstance(self.destination.store, AzureBlobDatastore) and self.destination.kind == DIRECTORY

    def _list_destination(self) -> None:
        """List the destination once, the first time a conditional write finds it was not empty."""
        with self._listing_lock:
            if self._existing is None:
                self._existing = self._destination_stats()

    def _cancelled(self) -> bool:
        return self.cancel.is_set()

    def _copy(self, item: Item, progress: Progress) -> Verified:
        if self.cancel.is_set():
            raise StepFailedError("the transfer was cancelled")
        advance = progress.add_bytes
        listed = self._existing
        present = None if listed is None else listed.get(item.destination_key)
        local = self.source.store.local_path(item.source_key)
        if present is not None and present.size == item.stat.size:
            # Copied by a run killed before it journalled the file: verify it there instead of copying.
            found = self._already_there(item, local, present)
            if found is not None:
                advance(item.stat.size)
                return self._done(item, progress, *found)
        try:
            # Not listed: only create, never replace, so what a killed run left is not copied again unseen.
            return self._write(item, progress, local, if_missing=listed is None)
        except blob.DestinationExists:
            self._list_destination()
            found = self._already_there(item, local, None)
            if found is not None:
                advance(item.stat.size)
                return self._done(item, progress, *found)
            return self._write(item, progress, local, if_missing=False)

    def _write(self, item: Item, progress: Progress, local: Path | None, if_missing: bool) -> Verified:
        """Copy one file by the fastest route the two stores allow; with ``if_missing``, only create it."""
        try:
            return self._write_by_route(item, progress, local, if_missing)
        except HttpResponseError as exc:
            # Reads of a Blob source are pinned to its listed ETag. Azure names a failed source condition
            # SourceConditionNotMet; Azurite answers 412 ConditionNotMet, which is the source's too when
            # the write carried no condition of its own.
            code = getattr(exc, "error_code", None)  # set by the storage SDKs' error mapping
            if code == "SourceConditionNotMet" or (exc.status_code == 412 and not if_missing):
                raise self._source_changed(item) from None
            raise

    def _source_changed(self, item: Item) -> StepFailedError:
        return StepFailedError(
            f"{item.source_key!r} in {self.source.store.describe()} changed after the transfer listed it;"
            " run the task again (files already verified are not copied again)"
        )

    def _write_by_route(self, item: Item, progress: Progress, local: Path | None, if_missing: bool) -> Verified:
        src, dst = self.source.store, self.destination.store
        advance = progress.add_bytes
        server_side = isinstance(src, AZURE_STORES) and isinstance(dst, AZURE_STORES) and not self._no_server_copy
        if server_side:
            try:
                return self._done(item, progress, *self._server_copy(item, advance, if_missing))
            except HttpResponseError as exc:
                code = getattr(exc, "error_code", None)
                if code != "CannotVerifyCopySource" or not src.exists(item.source_key):
                    raise
                # The destination's service cannot reach the source (a storage firewall or private
                # endpoint between the accounts; an emulator that copies within itself only).
                with self._lock:
                    if not self._no_server_copy:
                        # The code only: the service's message could quote the signed source URL.
                        self.log.warning(
                            "transfer: %s cannot read from %s (%s); files go through this worker instead",
                            dst.describe(),
                            src.describe(),
                            code,
                        )
                    self._no_server_copy = True
        if isinstance(dst, LocalDatastore):
            target = dst.local_path(item.destination_key)
            assert target is not None
            digest = (
                copy_local(local, target, advance, self._cancelled)
                if local is not None
                else self._fetch(item, target, advance)
            )
            copied = digest, LocalDatastore.object_stat(os.stat(target)).marker
        elif local is not None:
            copied = self._send(item, local, advance, if_missing)
        else:  # between two remote stores of different kinds: through a local temporary file
            with tempfile.TemporaryDirectory(prefix="amlpipe-transfer-") as scratch:
                path = Path(scratch) / "file"
                self._fetch(item, path, lambda n: None)
                copied = self._send(item, path, advance, if_missing)
        return self._done(item, progress, *copied)

    def _server_copy(self, item: Item, advance: Callable[[int], None], if_missing: bool) -> tuple[str, str]:
        """Copy between two Azure stores on the service side, from the listed version of the source."""
        dst = self.destination.store
        url = self._source_url(item.source_key)
        if isinstance(dst, AzureBlobDatastore):
            return blob.server_copy(
                url,
                item.stat.marker,
                item.stat.size,
                dst,
                item.destination_key,
                advance,
                self._cancelled,
                item.stat.content_md5,
                if_missing,
            )
        assert isinstance(dst, AdlsGen2Datastore)
        copied = dst.copy_from_url(url, item.destination_key, item.stat.size, self._cancelled, item.stat.marker)
        advance(item.stat.size)
        return copied

    def _send(self, item: Item, local: Path, advance: Callable[[int], None], if_missing: bool) -> tuple[str, str]:
        """Upload a local file to the (Blob or ADLS Gen2) destination, verified."""
        dst = self.destination.store
        if isinstance(dst, AzureBlobDatastore):
            return blob.upload(dst, local, item.destination_key, item.stat.marker, advance, self._cancelled, if_missing)
        assert isinstance(dst, AdlsGen2Datastore), "check_store admits no other kind"
        if self.cancel.is_set():
            raise StepFailedError("the transfer was cancelled")
        copied = dst.upload_verified(local, item.destination_key)
        advance(item.stat.size)
        return copied

    def _fetch(self, item: Item, target: Path, advance: Callable[[int], None]) -> str:
        """Download a (Blob or ADLS Gen2) source file to ``target``; its verified digest."""
        src = self.source.store
        try:
            if isinstance(src, AzureBlobDatastore):
                return blob.download(src, item.source_key, item.stat.marker, target, advance, self._cancelled)
            assert isinstance(src, AdlsGen2Datastore), "check_store admits no other kind"
            if self.cancel.is_set():
                raise StepFailedError("the transfer was cancelled")
            src.download_file(item.source_key, target, version=item.stat.marker)
        except ResourceModifiedError:  # both reads are pinned to the listed ETag
            raise self._source_changed(item) from None
        actual, expected = blob.md5_file(target), src.content_md5(item.source_key)
        if target.stat().st_size != item.stat.size or (expected is not None and actual != expected):
            raise IntegrityError(f"{item.source_key!r}: the downloaded bytes do not match its size or Content-MD5")
        advance(item.stat.size)
        return f"md5:{actual}"

    def _already_there(self, item: Item, local: Path | None, present: ObjectStat | None) -> tuple[str, str] | None:
        """The digest and marker of the destination file when it already holds the source's bytes, else ``None``.

        ``present``: its listed stat (``None`` for a Blob destination that was found by a refused write).
        """
        src, dst = self.source.store, self.destination.store
        if isinstance(dst, AzureBlobDatastore):
            return blob.matching(
                src, item.source_key, local, dst, item.destination_key, item.stat.size, item.stat.content_md5
            )
        assert present is not None, "only a Blob destination goes unlisted"
        if isinstance(dst, LocalDatastore):
            # Reading both files costs less than copying (a write, an fsync, a read back).
            target = dst.local_path(item.destination_key)
            if local is None or target is None:
                return None
            digest = sha256_file(local)
            return (f"sha256:{digest}", present.marker) if sha256_file(target) == digest else None
        assert isinstance(dst, AdlsGen2Datastore)
        stored = dst.content_md5(item.destination_key)
        if stored is None:
            return None
        expected: str | None
        if local is not None:
            expected = blob.md5_file(local)
        elif isinstance(src, AdlsGen2Datastore):
            expected = src.content_md5(item.source_key)
        else:
            return None
        return (f"md5:{stored}", present.marker) if stored == expected else None

    def _source_url(self, key: str) -> str:
        with self._lock:
            if self._urls is None:
                self._urls = blob.source_urls(self.source.store, self.destination.store)
        return self._urls(key)

    def _done(self, item: Item, progress: Progress, digest: str, marker: str) -> Verified:
        verified = Verified(item.rel, item.stat.size, item.stat.marker, etag(marker), digest)
        if self.journal is not None:
            self.journal.record(verified)
        progress.file_done()
        return verified


def copy_local(source: Path, target: Path, advance: Callable[[int], None], cancelled: Callable[[], bool]) -> str:
    """Stream ``source`` into ``target`` (atomically renamed into place); ``sha256:<hex>`` verified.

    The digest of what was read is compared with the digest of what the destination holds once
    written (read back through the page cache, so this costs memory bandwidth, not disk time).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{uuid.uuid4().hex[:12]}-{target.name}"
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as reader, open(tmp, "wb") as writer:
            while chunk := reader.read(_CHUNK):
                if cancelled():
                    raise StepFailedError("the transfer was cancelled")
                digest.update(chunk)
                writer.write(chunk)
                advance(len(chunk))
            writer.flush()
            os.fsync(writer.fileno())
        written = hashlib.sha256()
        with open(tmp, "rb") as check:
            while chunk := check.read(_CHUNK):
                written.update(chunk)
        if written.hexdigest() != digest.hexdigest():
            raise IntegrityError(f"{str(target)!r}: the bytes written differ from the bytes read")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return f"sha256:{digest.hexdigest()}"
