"""Verified copies into, out of and between Azure Blob containers.

- Upload: files up to ``SINGLE_PUT`` in one ``Put Blob``, whose answer carries the MD5 the service
  computed over what it stored, compared with the MD5 of what was read; larger ones as blocks staged
  in parallel (memory bounded by ``BLOCK_SIZE`` times the blocks in flight), each checked by the
  service against its transactional MD5 (``validate_content``). Either way the blob's Content-MD5
  property is the MD5 of the bytes read. Block ids derive from the source's change marker and the
  block's index, so a rerun after a kill stages only the blocks the service does not already hold
  (uncommitted blocks survive for a week).
- Download: ranges checked against the service's MD5 on the way (``validate_content``), then the
  file's digest compared with the blob's Content-MD5 when it has one.
- Blob or ADLS Gen2 to Blob: a server-side copy from the source's URL (``Copy Blob``; an ADLS Gen2
  file is read through its account's Blob endpoint), signed with a read SAS unless the service reads
  its own account, pinned to the listed ETag; no byte passes through this machine. A source whose
  listing gave its Content-MD5 is copied in one synchronous request carrying that MD5, which the
  service checks the copied bytes against; any other is copied asynchronously and then checked by
  its size and the Content-MD5 the copy carried over.
- Conditional writes: with ``if_missing``, an upload or copy only creates the blob (``If-None-Match:
  *``); when the blob is already there the service refuses and :class:`DestinationExists` is raised,
  so a first transfer need not list its destination to avoid replacing what a killed run left.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

from airflow_provider_amlpipe.data.adls_gen2 import AdlsGen2Datastore
from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
from airflow_provider_amlpipe.data.datastore import Datastore, etag, quoted_etag
from airflow_provider_amlpipe.errors import ConfigurationError, IntegrityError, StepFailedError

BLOCK_SIZE = 8 * 1024 * 1024
#: Blocks of one file in flight at once (each holds ``BLOCK_SIZE`` of memory).
BLOCKS_IN_FLIGHT = 4
#: Files up to this size go up in one request: as much memory as a larger file's blocks in flight
#: hold anyway, for one request and one MD5 pass instead of a request and an MD5 per block.
SINGLE_PUT = BLOCKS_IN_FLIGHT * BLOCK_SIZE
#: Copy Blob From URL (synchronous, one request) takes sources up to this size; larger ones are
#: copied asynchronously and polled.
SYNC_COPY_MAX = 256 * 1024 * 1024
_COPY_POLL = 0.2

Cancelled = Callable[[], bool]
Advance = Callable[[int], None]


def md5_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    """Hex MD5 of a local file, streamed."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _hex(md5: bytes | bytearray | None) -> str | None:
    return bytes(md5).hex() if md5 else None


class DestinationExists(Exception):
    """A conditional (``if_missing``) upload or copy was refused: the destination blob already exists."""


def _refused_as_present(exc: HttpResponseError) -> bool:
    """Whether a write sent with ``If-None-Match: *`` was refused because the blob exists.

    Put Blob answers ``409 BlobAlreadyExists``; a refused destination condition elsewhere is
    ``412 ConditionNotMet`` (a source condition is ``SourceConditionNotMet``, a different refusal).
    """
    return isinstance(exc, ResourceExistsError) or getattr(exc, "error_code", None) == "ConditionNotMet"


def _write_conditions(if_missing: bool) -> dict[str, Any]:
    return {"match_condition": MatchConditions.IfMissing} if if_missing else {}


def _check_cancel(cancelled: Cancelled) -> None:
    if cancelled():
        raise StepFailedError("the transfer was cancelled")


#: What a copy returns: the verified digest (``md5:<hex>``) and the destination's marker (its ETag).
Copied = tuple[str, str]


def upload(
    store: AzureBlobDatastore,
    path: Path,
    key: str,
    marker: str,
    advance: Advance,
    cancelled: Cancelled,
    if_missing: bool = False,
) -> Copied:
    """Upload ``path`` to ``key``; the verified ``md5:<hex>`` of its bytes and the blob's ETag.

    With ``if_missing``, only if ``key`` does not exist yet, else :class:`DestinationExists`.
    """
    blob = store.container_client.get_blob_client(key)
    size = path.stat().st_size
    if size > SINGLE_PUT:
        return _upload_blocks(blob, path, marker, advance, cancelled, if_missing)
    data = path.read_bytes()
    md5 = hashlib.md5(data, usedforsecurity=False).digest()
    _check_cancel(cancelled)
    try:
        done = blob.upload_blob(
            data,
            overwrite=not if_missing,
            content_settings=ContentSettings(content_md5=bytearray(md5)),
            **_write_conditions(if_missing),
        )
    except HttpResponseError as exc:
        if if_missing and _refused_as_present(exc):
            raise DestinationExists(key) from None
        raise
    # Put Blob answers with the MD5 the service computed over the body it stored.
    received = _hex(done.get("content_md5"))
    if received != md5.hex():
        raise IntegrityError(f"{key!r}: the service stored bytes with MD5 {received}, but {md5.hex()} was read")
    advance(size)
    return f"md5:{md5.hex()}", etag(done["etag"])


def _block_id(marker: str, index: int) -> str:
    tag = hashlib.sha256(marker.encode()).hexdigest()[:16]
    return base64.b64encode(f"{tag}-{index:08d}".encode()).decode()


def _upload_blocks(
    blob: BlobClient, path: Path, marker: str, advance: Advance, cancelled: Cancelled, if_missing: bool
) -> Copied:
    """Stage the blocks the service lacks, each checked by the service against its MD5, then commit them."""
    if if_missing and blob.exists():
        # Asked before any block is sent: the commit's own condition would come after all of them.
        raise DestinationExists(blob.blob_name)
    staged: set[str] = set()
    try:
        _, uncommitted = blob.get_block_list("uncommitted")
        staged = {b.id for b in uncommitted}
    except ResourceNotFoundError:  # no blob yet: nothing staged to resume from
        staged = set()
    whole = hashlib.md5(usedforsecurity=False)
    ids: list[str] = []
    gate = threading.BoundedSemaphore(BLOCKS_IN_FLIGHT)
    pending: list[Future[None]] = []

    def stage(block_id: str, data: bytes) -> None:
        try:
            blob.stage_block(block_id, data, validate_content=True)
            advance(len(data))
        finally:
            gate.release()

    with ThreadPoolExecutor(BLOCKS_IN_FLIGHT) as pool, open(path, "rb") as handle:
        index = 0
        while data := handle.read(BLOCK_SIZE):
            whole.update(data)
            block_id = _block_id(marker, index)
            ids.append(block_id)
            index += 1
            if block_id in staged:
                advance(len(data))
                continue
            _check_cancel(cancelled)
            gate.acquire()
            pending.append(pool.submit(stage, block_id, data))
            for finished in [f for f in pending if f.done()]:
                finished.result()  # a failed block stops the upload now, not after the last block
                pending.remove(finished)
        for future in pending:
            future.result()
    md5 = whole.digest()
    try:
        done = blob.commit_block_list(
            [BlobBlock(block_id) for block_id in ids],
            content_settings=ContentSettings(content_md5=bytearray(md5)),
            **_write_conditions(if_missing),
        )
    except HttpResponseError as exc:
        if if_missing and _refused_as_present(exc):
            raise DestinationExists(blob.blob_name) from None
        raise
    return f"md5:{md5.hex()}", etag(done["etag"])


def matching(
    source: Datastore,
    source_key: str,
    local: Path | None,
    destination: AzureBlobDatastore,
    key: str,
    size: int,
    source_md5: str | None = None,
) -> Copied | None:
    """When the blob ``key`` already holds the source's bytes (``size`` bytes, and its Content-MD5 equals
    the source's: ``source_md5`` when the source's listing gave it, else the local file's MD5, or the
    source blob's or ADLS Gen2 file's Content-MD5): its digest and ETag; else ``None`` (also when it
    is gone)."""
    try:
        props = destination.container_client.get_blob_client(key).get_blob_properties()
    except ResourceNotFoundError:
        return None
    stored = _hex(props.content_settings.content_md5)
    if stored is None or int(props.size) != size:
        return None
    if source_md5 is not None:
        return (f"md5:{stored}", etag(props.etag)) if stored == source_md5 else None
    expected: str | None = None
    if local is not None:
        expected = md5_file(local)
    elif isinstance(source, AzureBlobDatastore):
        found = source.container_client.get_blob_client(source_key).get_blob_properties()
        expected = _hex(found.content_settings.content_md5)
    elif isinstance(source, AdlsGen2Datastore):
        expected = source.content_md5(source_key)
    return (f"md5:{stored}", etag(props.etag)) if stored == expected else None


def download(
    store: AzureBlobDatastore, key: str, version: str, dest: Path, advance: Advance, cancelled: Cancelled
) -> str:
    """Download the version (ETag) ``version`` of ``key`` to ``dest`` (atomically renamed into place); the
    verified digest of its bytes."""
    _check_cancel(cancelled)
    blob = store.container_client.get_blob_client(key)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".tmp-{hashlib.sha256(key.encode()).hexdigest()[:12]}-{dest.name}"
    done = [0]

    def hook(current: int, total: int | None) -> None:
        advance(current - done[0])
        done[0] = current
        _check_cancel(cancelled)

    try:
        # Chunks of at most 4 MiB, each checked against the MD5 the service sends with it.
        downloader = blob.download_blob(
            max_concurrency=4,
            validate_content=True,
            etag=quoted_etag(version),
            match_condition=MatchConditions.IfNotModified,
            progress_hook=hook,
        )
        props = downloader.properties
        expected = _hex(props.content_settings.content_md5)
        with open(tmp, "wb") as handle:
            downloader.readinto(handle)
        actual = md5_file(tmp)
        if int(tmp.stat().st_size) != int(props.size) or (expected is not None and actual != expected):
            raise IntegrityError(f"{key!r}: the downloaded bytes do not match the blob's size or Content-MD5")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return f"md5:{actual}"


def blob_container(store: Datastore) -> ContainerClient:
    """The Blob-endpoint container of a Blob datastore, or of an ADLS Gen2 datastore's file system."""
    if isinstance(store, AzureBlobDatastore):
        return store.container_client
    assert isinstance(store, AdlsGen2Datastore), "only Azure stores have a Blob endpoint"
    return store.blob_container()


def source_urls(source: Datastore, destination: Datastore) -> Callable[[str], str]:
    """URLs a service-side copy reads the source's (Blob or ADLS Gen2) files from.

    Within one account, when the destination is authorized with the account's shared key, the plain
    URL: the service reads its own blob (a signed URL can make it fetch the blob over HTTP instead).
    Otherwise a URL signed with a read SAS where the source's credentials can sign (one signer for the
    whole transfer), else the plain URL (a public container).
    """
    from airflow_provider_amlpipe.data.blob_sas import ContainerSigner

    container, target = blob_container(source), blob_container(destination)
    parts = urlsplit(container.url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")  # never the source's own SAS

    def plain(key: str) -> str:
        return f"{base}/{quote(key, safe='/')}"

    if (
        parts[:2] == urlsplit(target.url)[:2]
        and container.account_name == target.account_name
        and getattr(target.credential, "account_key", None)
    ):
        return plain
    try:
        return ContainerSigner(container).blob_url
    except (ConfigurationError, HttpResponseError):
        return plain


def server_copy(
    url: str,
    source_etag: str,
    size: int,
    destination: AzureBlobDatastore,
    key: str,
    advance: Advance,
    cancelled: Cancelled,
    source_md5: str | None = None,
    if_missing: bool = False,
) -> Copied:
    """Copy the version ``source_etag`` of the blob at ``url`` service-side into ``key``.

    The copy must succeed from that very version (the source may not change meanwhile). With the
    source's listed Content-MD5 (``source_md5``, hex) and up to :data:`SYNC_COPY_MAX` bytes, it is
    one synchronous request that carries the MD5 (``x-ms-source-content-md5``): the service compares
    the bytes it copied with it and fails the copy on a mismatch, and answers with the new ETag.
    Otherwise the copy is started, polled to its end, and the destination must then hold ``size``
    bytes; its digest is the Content-MD5 the copy carried over. With ``if_missing``, only if ``key``
    does not exist yet, else :class:`DestinationExists`.
    """
    _check_cancel(cancelled)
    blob = destination.container_client.get_blob_client(key)
    pinned: dict[str, Any] = {
        "source_etag": quoted_etag(source_etag),
        "source_match_condition": MatchConditions.IfNotModified,
        **_write_conditions(if_missing),
    }
    try:
        return _server_copy(url, blob, size, key, advance, cancelled, source_md5, pinned)
    except HttpResponseError as exc:
        if if_missing and _refused_as_present(exc):
            raise DestinationExists(key) from None
        raise


def _server_copy(
    url: str,
    blob: BlobClient,
    size: int,
    key: str,
    advance: Advance,
    cancelled: Cancelled,
    source_md5: str | None,
    pinned: dict[str, Any],
) -> Copied:
    if source_md5 is not None and size <= SYNC_COPY_MAX:
        md5 = base64.b64encode(bytes.fromhex(source_md5)).decode()
        # The SDK has no keyword for x-ms-source-content-md5 on this call; it adds its own headers to these.
        done = blob.start_copy_from_url(url, requires_sync=True, headers={"x-ms-source-content-md5": md5}, **pinned)
        if done.get("copy_status") != "success":
            raise StepFailedError(f"the service-side copy to {key!r} ended {done.get('copy_status')}")
        advance(size)
        return f"md5:{source_md5}", etag(done["etag"])
    copy = blob.start_copy_from_url(url, **pinned)
    status = copy.get("copy_status")
    while status == "pending":
        if cancelled():
            blob.abort_copy(str(copy["copy_id"]))
            raise StepFailedError("the transfer was cancelled")
        time.sleep(_COPY_POLL)
        status = blob.get_blob_properties().copy.status
    if status != "success":
        raise StepFailedError(f"the service-side copy to {key!r} ended {status}")
    props = blob.get_blob_properties()
    if int(props.size) != size:
        raise IntegrityError(f"{key!r}: the copy holds {props.size} bytes, the source {size}")
    advance(size)
    carried = _hex(props.content_settings.content_md5)
    return (f"md5:{carried}" if carried else f"size:{size}"), etag(props.etag)
