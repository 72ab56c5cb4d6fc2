"""A datastore in an Azure Data Lake Storage Gen2 file system (hierarchical namespace).

Keys map onto paths of one file system. Every write goes to a temporary file under
``.amlpipe-tmp/`` and is renamed into place: a rename is atomic on a hierarchical namespace, so
readers never see a partial file, and a rename with ``If-None-Match: *`` on the destination is the
create-if-absent primitive. :meth:`AdlsGen2Datastore.rename_folder` publishes a whole folder at once.

This module depends on ``azure-storage-file-datalake`` only (never on Airflow). Secrets never appear
in its descriptions, URLs or errors.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential, TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, ContainerClient
from azure.storage.filedatalake import ContentSettings, DataLakeServiceClient, FileSystemClient

from airflow_provider_amlpipe import faults
from airflow_provider_amlpipe.data.datastore import (
    TEMP_FOLDER,
    Datastore,
    ObjectStat,
    etag,
    local_file_in_place,
    quoted_etag,
)
from airflow_provider_amlpipe.data.names import validate_key
from airflow_provider_amlpipe.errors import ConfigurationError, IntegrityError, NotFoundError, StepFailedError


def _without_secrets(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def _account_name(account_url: str) -> str:
    """``https://<account>.dfs.core.windows.net``, or ``http://<host>:<port>/<account>`` (an emulator)."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    if ".dfs." in host or ".blob." in host:
        return host.split(".", 1)[0]
    return parts.path.strip("/").split("/", 1)[0]


class AdlsGen2Datastore(Datastore):
    """A datastore whose objects are the files of one ADLS Gen2 file system."""

    def __init__(self, name: str, file_system: FileSystemClient, credential: Any = None) -> None:
        super().__init__(name)
        self.file_system = file_system
        #: What the account's Blob endpoint is called with (service-side copies from a URL).
        self.credential = credential

    @classmethod
    def from_settings(
        cls,
        name: str,
        *,
        file_system: str,
        account_url: str,
        account_key: str | None = None,
        credential: TokenCredential | None = None,
        create_file_system: bool = False,
    ) -> AdlsGen2Datastore:
        """Connect to ``file_system`` of the account at ``account_url`` with a key or a token credential."""
        if not isinstance(file_system, str) or not 3 <= len(file_system) <= 63:
            raise ConfigurationError(
                "file_system", f"{file_system!r} is not a file system name", "set extra.file_system"
            )
        auth: Any = credential
        if account_key is not None:
            auth = AzureNamedKeyCredential(_account_name(account_url), account_key)
        try:
            service = DataLakeServiceClient(account_url, credential=auth)
        except ValueError as exc:
            raise ConfigurationError(
                "account_url",
                f"{_without_secrets(account_url)!r} was refused: {str(exc).split(chr(10))[0][:200]}",
                "use https://<account>.dfs.core.windows.net (token credentials need https)",
            ) from None
        store = cls(name, service.get_file_system_client(file_system), auth)
        if create_file_system:
            with contextlib.suppress(ResourceExistsError):
                store.file_system.create_file_system()
        return store

    # -- helpers -----------------------------------------------------------------------------------
    def _file(self, key: str) -> Any:
        return self.file_system.get_file_client(validate_key(key))

    def _publish(self, tmp: Any, key: str, *, if_absent: bool) -> bool:
        """Rename the temporary file ``tmp`` onto ``key``: atomic; with ``if_absent`` only if ``key`` is absent."""
        parent = key.rpartition("/")[0]
        if parent:
            self.file_system.get_directory_client(parent).create_directory()
        conditions: dict[str, Any] = {"match_condition": MatchConditions.IfMissing} if if_absent else {}
        try:
            tmp.rename_file(f"{self.file_system.file_system_name}/{key}", **conditions)
        except ResourceExistsError:
            with contextlib.suppress(ResourceNotFoundError):
                tmp.delete_file()
            if if_absent:
                return False
            raise
        return True

    def _staged(self, data: Any, length: int, md5: bytes) -> Any:
        """Write ``data`` to a new temporary file (every append checked by the service against its MD5)."""
        tmp = self.file_system.get_file_client(f"{TEMP_FOLDER}/{uuid.uuid4().hex}")
        settings = ContentSettings(content_md5=bytearray(md5))
        if length == 0:  # upload_data sends no request at all for no bytes
            tmp.create_file()
            tmp.flush_data(0, content_settings=settings)
            return tmp
        tmp.upload_data(data, length=length, overwrite=True, validate_content=True, content_settings=settings)
        return tmp

    # -- the datastore contract --------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes:
        faults.point("datastore.read")
        try:
            return bytes(self._file(key).download_file().readall())
        except ResourceNotFoundError:
            raise NotFoundError(f"{self.describe()}: no object {key!r}") from None

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        faults.point("datastore.write")
        validate_key(key)
        tmp = self._staged(data, len(data), hashlib.md5(data, usedforsecurity=False).digest())
        return self._publish(tmp, key, if_absent=if_absent)

    def _properties(self, key: str) -> Any:
        try:
            return self._file(key).get_file_properties()
        except ResourceNotFoundError:
            return None

    @staticmethod
    def _is_folder(props: Any) -> bool:
        return str((props.metadata or {}).get("hdi_isfolder", "")).lower() == "true"

    def exists(self, key: str) -> bool:
        props = self._properties(key)
        return props is not None and not self._is_folder(props)

    def stat(self, key: str) -> ObjectStat:
        props = self._properties(key)
        if props is None or self._is_folder(props):
            raise NotFoundError(f"{self.describe()}: no object {key!r}")
        modified = props.last_modified.timestamp() if props.last_modified else 0.0
        return ObjectStat(int(props.size), etag(props.etag), modified)

    def content_md5(self, key: str) -> str | None:
        """The file's Content-MD5 (hex) as recorded when it was written, or ``None``."""
        props = self._properties(key)
        md5 = None if props is None else props.content_settings.content_md5
        return bytes(md5).hex() if md5 else None

    def _paths(self, prefix: str) -> list[Any]:
        try:
            return [
                p for p in self.file_system.get_paths(path=validate_key(prefix), recursive=True) if not p.is_directory
            ]
        except ResourceNotFoundError:
            return []

    def list(self, prefix: str) -> Iterator[str]:
        faults.point("datastore.list")
        found = [str(p.name) for p in self._paths(prefix)]
        if not found and self.exists(prefix):
            found = [prefix]
        yield from found

    def list_stats(self, prefix: str) -> dict[str, ObjectStat]:
        faults.point("datastore.list")
        return {
            str(p.name): ObjectStat(
                int(p.content_length or 0),
                etag(p.etag),
                p.last_modified.timestamp() if hasattr(p.last_modified, "timestamp") else 0.0,
            )
            for p in self._paths(prefix)
        }

    def has_folder(self, prefix: str) -> bool:
        props = self._properties(prefix)
        return props is not None and self._is_folder(props)

    def delete(self, key: str) -> None:
        faults.point("datastore.delete")
        with contextlib.suppress(ResourceNotFoundError):
            self._file(key).delete_file()

    def upload_file(self, local_path: Path, key: str, *, move: bool = False) -> None:
        faults.point("datastore.write")
        self.upload_verified(Path(local_path), key)

    def upload_verified(self, local_path: Path, key: str) -> tuple[str, str]:
        """Upload a local file (streamed) through a temporary file renamed into place; its MD5 is
        checked by the service on every append and recorded as its Content-MD5. The ``md5:`` digest
        and the ETag of the published file."""
        validate_key(key)
        digest = hashlib.md5(usedforsecurity=False)
        with open(local_path, "rb") as handle:
            while block := handle.read(4 * 1024 * 1024):
                digest.update(block)
        size = local_path.stat().st_size
        with open(local_path, "rb") as handle:
            tmp = self._staged(handle, size, digest.digest())
        self._publish(tmp, key, if_absent=False)
        stat = self.stat(key)
        if stat.size != size or self.content_md5(key) != digest.hexdigest():
            raise IntegrityError(f"{key!r}: after the upload, {self.describe()} holds other bytes than were read")
        return f"md5:{digest.hexdigest()}", stat.marker

    def download_file(self, key: str, local_path: Path, *, version: str | None = None) -> None:
        """Copy one file to a local file; with ``version`` (an ETag), only that version of it (else the
        service's ``ResourceModifiedError``, before any byte is written)."""
        faults.point("datastore.read")
        pinned: dict[str, Any] = {}
        if version is not None:
            pinned = {"etag": quoted_etag(version), "match_condition": MatchConditions.IfNotModified}
        with local_file_in_place(local_path) as tmp:
            try:
                downloader = self._file(key).download_file(max_concurrency=4, validate_content=True, **pinned)
            except ResourceNotFoundError:
                raise NotFoundError(f"{self.describe()}: no object {key!r}") from None
            with open(tmp, "wb") as handle:
                downloader.readinto(handle)

    def blob_client(self, key: str) -> BlobClient:
        """The file ``key`` through the account's Blob endpoint (what a service-side copy writes to)."""
        url = self._file(key).url.replace(".dfs.", ".blob.", 1)
        return BlobClient.from_blob_url(url, credential=self.credential)

    def blob_container(self) -> ContainerClient:
        """The file system as a container of the account's Blob endpoint (service-side copies read from
        and write to it: an ADLS Gen2 account serves the Blob API on the same data)."""
        url = self.file_system.url.replace(".dfs.", ".blob.", 1)
        return ContainerClient.from_container_url(url, credential=self.credential)

    def copy_from_url(
        self, url: str, key: str, size: int, cancelled: Callable[[], bool], source_etag: str | None = None
    ) -> tuple[str, str]:
        """Copy the blob at ``url`` (readable by the service: signed, same account, or public) into
        ``key``, service-side; with ``source_etag``, only from that version of the source.

        The copy lands in a temporary file, is checked (the service must report success and the file
        must hold ``size`` bytes; its Content-MD5 is the source's, carried over) and renamed into place.
        The ``md5:`` (else ``size:``) digest and the published file's ETag.
        """
        tmp = f"{TEMP_FOLDER}/{uuid.uuid4().hex}"
        target = self.blob_client(tmp)
        pinned: dict[str, Any] = {}
        if source_etag is not None:
            pinned = {
                "source_etag": quoted_etag(source_etag),
                "source_match_condition": MatchConditions.IfNotModified,
            }
        copy = target.start_copy_from_url(url, **pinned)
        status = copy.get("copy_status")
        while status == "pending":
            if cancelled():
                target.abort_copy(str(copy["copy_id"]))
                raise StepFailedError("the transfer was cancelled")
            time.sleep(0.2)
            status = target.get_blob_properties().copy.status
        if status != "success":
            raise StepFailedError(f"the service-side copy to {key!r} ended {status}")
        props = target.get_blob_properties()
        if int(props.size) != size:
            raise IntegrityError(f"{key!r}: the copy holds {props.size} bytes, the source {size}")
        self._publish(self._file(tmp), key, if_absent=False)
        md5 = props.content_settings.content_md5
        return (f"md5:{bytes(md5).hex()}" if md5 else f"size:{size}"), self.stat(key).marker

    def rename_folder(self, source: str, target: str) -> None:
        """Move the folder ``source`` to ``target`` in one atomic rename (``target`` must not exist)."""
        parent = target.rpartition("/")[0]
        if parent:
            self.file_system.get_directory_client(parent).create_directory()
        self.file_system.get_directory_client(validate_key(source)).rename_directory(
            f"{self.file_system.file_system_name}/{validate_key(target)}",
            match_condition=MatchConditions.IfMissing,
        )

    def url(self, key: str) -> str:
        base = _without_secrets(self.file_system.url).rstrip("/")
        return f"{base}/{quote(validate_key(key), safe='/')}"

    def describe(self) -> str:
        return f"ADLS Gen2 datastore {self.name!r} at {_without_secrets(self.file_system.url).rstrip('/')}"
