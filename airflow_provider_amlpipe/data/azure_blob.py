"""A datastore in an Azure Blob Storage container.

Keys map one-to-one onto blob names. The create-if-absent primitive the package relies on is a
conditional upload (``If-None-Match: *``): the service accepts exactly one of several racing
creators and rejects the others with ``409 BlobAlreadyExists``. Every upload is atomic -- a
single ``Put Blob``, or staged blocks that only become visible with the final ``Put Block List``.

This module depends on ``azure-storage-blob`` only (never on Airflow), so it can run inside
compute jobs. Secrets (account keys, connection strings, SAS tokens) never appear in its
descriptions, URLs, reprs or error messages.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from azure.core.credentials import AzureNamedKeyCredential, TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.storage.blob import BlobProperties, ContainerClient

from airflow_provider_amlpipe import faults
from airflow_provider_amlpipe.data import blob_listing
from airflow_provider_amlpipe.data.blob_listing import ListedBlob
from airflow_provider_amlpipe.data.datastore import Datastore, ObjectStat, local_file_in_place
from airflow_provider_amlpipe.data.names import validate_key
from airflow_provider_amlpipe.errors import ConfigurationError, NotFoundError

_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_MAX_CONCURRENCY = 4
_CONTAINER_NOT_FOUND = "ContainerNotFound"
DEFAULT_ENDPOINT_SUFFIX = "core.windows.net"


def _without_secrets(url: str) -> str:
    """``url`` without query string, fragment or user info (where SAS tokens would live)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _looks_like_account_url(url: object) -> bool:
    """An http(s) URL with a host name (or a bare host name with a dot, which the SDK takes as https)."""
    if not isinstance(url, str) or not url.strip() or any(c.isspace() for c in url.strip()):
        return False
    text = url.strip() if "://" in url else f"https://{url.strip()}"
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme in ("http", "https") and bool(host) and ("://" in url or "." in host)


def _account_name(account_url: str) -> str:
    """The storage account an account URL addresses.

    ``https://<account>.blob.core.windows.net`` (and other clouds / private endpoints) carry it
    in the host name; emulator-style URLs (``http://127.0.0.1:10000/<account>``) in the path.
    """
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    if ".blob." in host:
        return host.split(".", 1)[0]
    segment = parts.path.strip("/").split("/", 1)[0]
    if not segment:
        raise ConfigurationError(
            "account_url",
            "cannot tell the storage account name from the URL",
            "use https://<account>.blob.core.windows.net, or http://<host>:<port>/<account> for an emulator",
        )
    return segment


#: Hadoop file-system schemes for Azure storage, and the endpoint each addresses (ABFS: ADLS Gen2's DFS).
HADOOP_SCHEMES = {"wasb": "blob", "wasbs": "blob", "abfs": "dfs", "abfss": "dfs"}


def wasb_uri(
    account: str, container: str, key: str, endpoint_suffix: str = DEFAULT_ENDPOINT_SUFFIX, scheme: str = "wasb"
) -> str:
    """The URI by which Hadoop-style services (ADLA, HDInsight, Databricks) address a blob.

    ``<scheme>://<container>@<account>.<blob|dfs>.<endpoint_suffix>/<key>`` for ``scheme`` ``wasb``,
    ``wasbs``, ``abfs`` or ``abfss``; the key is kept as it is (these services do not percent-decode paths).
    """
    if not account or not re.fullmatch(r"[a-z0-9]+", account):
        raise ValueError(f"{account!r} is not a storage account name")
    endpoint = HADOOP_SCHEMES[scheme]
    return f"{scheme}://{container}@{account}.{endpoint}.{endpoint_suffix}/{validate_key(key)}"


def _endpoint_suffix(account_url: str) -> str:
    """The cloud's storage suffix of an account URL (``core.windows.net`` for the public cloud).

    Emulator-style URLs (``http://127.0.0.1:10000/<account>``) have none; they get the public
    cloud's, so the URIs built from them stay syntactically valid.
    """
    host = urlsplit(account_url).hostname or ""
    _, blob, suffix = host.partition(".blob.")
    return suffix if blob and suffix else DEFAULT_ENDPOINT_SUFFIX


def _safe_reason(exc: Exception, *secrets: str | None) -> str:
    """The SDK's message for ``exc``, unless it could contain a secret."""
    message = str(exc)
    if any(secret and secret in message for secret in secrets) or "sig=" in message:
        return "the storage settings were rejected"
    return f"the storage settings were rejected: {message.rstrip('.')}"


def _is_folder_marker(blob: Any) -> bool:
    """A blob that stands for a folder: ADLS Gen2's ``hdi_isfolder`` directory blobs, and the
    zero-length ``name/`` blobs some tools create."""
    if (getattr(blob, "metadata", None) or {}).get("hdi_isfolder", "").lower() == "true":
        return True
    return str(getattr(blob, "name", "")).endswith("/") and not getattr(blob, "size", 0)


def _listed(blob: BlobProperties) -> ListedBlob:
    """An entry of the SDK's listing as the fast listing gives it."""
    md5 = blob.content_settings.content_md5
    return ListedBlob(
        name=str(blob.name),
        size=int(blob.size),
        etag=str(blob.etag),
        modified=blob.last_modified.timestamp() if blob.last_modified else 0.0,
        content_md5=bytes(md5).hex() if md5 else None,
        metadata=dict(blob.metadata or {}),
    )


def _request_reason(exc: ServiceRequestError) -> str:
    """Why a request did not reach the service, without anything that could be a secret."""
    message = str(exc.message if getattr(exc, "message", None) else exc)
    if "sig=" in message or "?" in message:
        return "the connection failed"
    # urllib3 prefixes the host it already named; keep what went wrong.
    return message.rsplit("): ", 1)[-1].strip() or "the connection failed"


class AzureBlobDatastore(Datastore):
    """A datastore whose objects are the block blobs of one container.

    Build it from a :class:`~azure.storage.blob.ContainerClient` (which owns credentials,
    retries and transfer sizes) or with :meth:`from_settings`.
    """

    def __init__(self, name: str, container_client: ContainerClient) -> None:
        super().__init__(name)
        self.container_client = container_client

    @classmethod
    def from_settings(
        cls,
        name: str,
        *,
        container: str,
        account_url: str | None = None,
        connection_string: str | None = None,
        account_key: str | None = None,
        credential: TokenCredential | None = None,
        create_container: bool = False,
        **client_options: Any,
    ) -> AzureBlobDatastore:
        """Connect to ``container`` with exactly one way of authenticating.

        Give either ``connection_string`` or ``account_url``. With ``account_url``, authenticate
        with ``account_key`` (shared key), ``credential`` (any azure-identity ``TokenCredential``;
        HTTPS only), a SAS token in the URL, or nothing (anonymous access to a public container).
        ``client_options`` go to the ``ContainerClient`` (e.g. ``max_single_put_size``,
        ``max_block_size``, ``max_single_get_size``, ``max_chunk_get_size``, ``retry_total``).
        With ``create_container`` the container is created when missing.
        """
        if not isinstance(container, str) or not _CONTAINER_NAME.match(container):
            raise ConfigurationError(
                "container",
                f"{container!r} is not a valid container name",
                "use 3-63 characters: lowercase letters, digits and single hyphens, starting and ending"
                " with a letter or digit",
            )
        if (connection_string is None) == (account_url is None):
            raise ConfigurationError(
                "account_url/connection_string",
                "exactly one of account_url and connection_string must be given",
                "pass account_url (with account_key or credential) or a connection_string",
            )
        if account_key is not None and credential is not None:
            raise ConfigurationError(
                "account_key/credential",
                "both an account key and a token credential were given",
                "pass only one of account_key and credential",
            )
        if connection_string is not None and account_key is not None:
            raise ConfigurationError(
                "account_key",
                "an account key cannot be combined with a connection string",
                "put the key in the connection string (AccountKey=...) or use account_url",
            )
        if account_url is not None and not _looks_like_account_url(account_url):
            raise ConfigurationError(
                "account_url",
                f"{_without_secrets(account_url) if isinstance(account_url, str) else account_url!r} is not an"
                " account URL",
                "use https://<account>.blob.core.windows.net, or http://<host>:<port>/<account> for an emulator",
            )
        auth: AzureNamedKeyCredential | TokenCredential | None = credential
        if account_url is not None and account_key is not None:
            auth = AzureNamedKeyCredential(_account_name(account_url), account_key)
        try:
            if connection_string is not None:
                client = ContainerClient.from_connection_string(
                    connection_string, container, credential=auth, **client_options
                )
            else:
                assert account_url is not None
                client = ContainerClient(account_url, container, credential=auth, **client_options)
        except ValueError as exc:
            raise ConfigurationError(
                "account_url" if account_url is not None else "connection_string",
                _safe_reason(exc, account_key, connection_string),
                "check the URL or connection string; token credentials need an https:// account URL",
            ) from None  # the SDK's traceback may hold the secrets; its message alone is kept
        store = cls(name, client)
        if create_container:
            store.create_container()
        return store

    # -- helpers ------------------------------------------------------------------------------

    def create_container(self) -> None:
        """Create the container unless it exists already."""
        with contextlib.suppress(ResourceExistsError), self._service():
            self.container_client.create_container()

    def _not_found(self, key: str, exc: ResourceNotFoundError) -> NotFoundError:
        if getattr(exc, "error_code", None) == _CONTAINER_NOT_FOUND:
            return NotFoundError(
                f"{self.describe()}: the container does not exist (looking for {key!r});"
                " create it, or pass create_container=True"
            )
        return NotFoundError(f"{self.describe()}: no object {key!r}")

    @property
    def container_url(self) -> str:
        """The container's URL, without any SAS token."""
        return _without_secrets(self.container_client.url).rstrip("/")

    @property
    def container_name(self) -> str:
        return str(self.container_client.container_name)

    @property
    def account_name(self) -> str:
        """The storage account's name (from the host, or the path's first segment for emulators)."""
        # Private endpoints (<account>.privatelink.blob...) carry more than the name before ".blob.".
        return _account_name(self.container_url).split(".", 1)[0]

    @property
    def endpoint_suffix(self) -> str:
        """The cloud's storage suffix (``core.windows.net`` for the public cloud and emulators)."""
        return _endpoint_suffix(self.container_url)

    def wasb_uri(self, key: str, scheme: str = "wasb") -> str:
        """The Hadoop URI of ``key`` (``wasb://`` for an ADLA job, whose account links this storage;
        ``abfss://`` or ``wasbs://`` for a Databricks cluster)."""
        return wasb_uri(self.account_name, self.container_name, key, self.endpoint_suffix, scheme)

    @contextlib.contextmanager
    def _service(self) -> Iterator[None]:
        """Turn "cannot reach the service" and "credentials refused" into errors naming this
        datastore (its connection id) and URL. The SDK's own traceback is dropped: its request
        could carry a SAS token."""
        try:
            yield
        except ServiceRequestError as exc:
            raise ConfigurationError(
                f"datastore {self.name!r}",
                f"cannot reach the Blob service at {self.container_url} ({_request_reason(exc)})",
                f"check the account URL (Host) of connection {self.name!r}, and that this machine can reach it",
            ) from None
        except HttpResponseError as exc:
            if not isinstance(exc, ClientAuthenticationError) and exc.status_code not in (401, 403):
                raise
            code = getattr(exc, "error_code", None) or exc.status_code
            raise ConfigurationError(
                f"datastore {self.name!r}",
                f"the storage account at {self.container_url} refused the credentials or the request ({code})",
                f"check the key, SAS token or identity of connection {self.name!r}, its permissions and the"
                " account's network rules",
            ) from None

    # -- the datastore contract ----------------------------------------------------------------

    def read_bytes(self, key: str) -> bytes:
        faults.point("datastore.read")
        try:
            with self._service():
                downloader = self.container_client.download_blob(validate_key(key), max_concurrency=_MAX_CONCURRENCY)
                return downloader.readall()
        except ResourceNotFoundError as exc:
            raise self._not_found(key, exc) from None

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        faults.point("datastore.write")
        try:
            with self._service():
                self.container_client.upload_blob(
                    validate_key(key),
                    data,
                    length=len(data),
                    overwrite=not if_absent,
                    max_concurrency=_MAX_CONCURRENCY,
                )
        except ResourceExistsError:
            # overwrite=False sends If-None-Match: *; the SDK reports a lost race (409
            # BlobAlreadyExists, or 412 ConditionNotMet on a block-list commit) as this error.
            if if_absent:
                return False
            raise
        return True

    def exists(self, key: str) -> bool:
        # A hierarchical-namespace (ADLS Gen2) directory is an empty blob marked hdi_isfolder: not an object.
        try:
            with self._service():
                props = self.container_client.get_blob_client(validate_key(key)).get_blob_properties()
        except ResourceNotFoundError:
            return False
        return not _is_folder_marker(props)

    def stat(self, key: str) -> ObjectStat:
        try:
            with self._service():
                props = self.container_client.get_blob_client(validate_key(key)).get_blob_properties()
        except ResourceNotFoundError as exc:
            raise self._not_found(key, exc) from None
        modified = props.last_modified.timestamp() if props.last_modified else 0.0
        md5 = props.content_settings.content_md5
        return ObjectStat(
            size=int(props.size),
            marker=str(props.etag),
            modified=modified,
            content_md5=bytes(md5).hex() if md5 else None,
        )

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix/``; when there are none and ``prefix`` is itself a blob, that blob.

        Folder markers are not objects and are skipped: the empty blobs hierarchical-namespace
        (ADLS Gen2) accounts keep for directories (metadata ``hdi_isfolder``), and the zero-length
        blobs named ``folder/`` that tools such as Storage Explorer create.
        """
        validate_key(prefix)
        faults.point("datastore.list")
        found = False
        try:
            with self._service():
                for blob in self.container_client.list_blobs(name_starts_with=f"{prefix}/", include=["metadata"]):
                    if _is_folder_marker(blob):
                        continue
                    found = True
                    yield str(blob.name)
        except ResourceNotFoundError as exc:
            raise self._not_found(prefix, exc) from None
        if not found and self.exists(prefix):
            yield prefix

    def list_stats(self, prefix: str) -> dict[str, ObjectStat]:
        """Blobs under ``prefix/`` with size, ETag, last-modified time and Content-MD5, from one listing
        (parsed by :mod:`~airflow_provider_amlpipe.data.blob_listing`, or by the SDK when it cannot)."""
        validate_key(prefix)
        faults.point("datastore.list")
        try:
            with self._service():
                blobs = blob_listing.list_blobs(self.container_client, f"{prefix}/")
                if blobs is None:  # an answer the fast parser does not read: the SDK's listing and errors
                    listing = self.container_client.list_blobs(name_starts_with=f"{prefix}/", include=["metadata"])
                    blobs = [_listed(blob) for blob in listing]
        except ResourceNotFoundError as exc:
            raise self._not_found(prefix, exc) from None
        return {
            blob.name: ObjectStat(blob.size, blob.etag, blob.modified, content_md5=blob.content_md5)
            for blob in blobs
            if not _is_folder_marker(blob)
        }

    def has_folder(self, prefix: str) -> bool:
        """Whether ``prefix`` is a folder: any blob under ``prefix/``, markers included, or a directory marker."""
        validate_key(prefix)
        try:
            with self._service():
                if next(iter(self.container_client.list_blobs(name_starts_with=f"{prefix}/")), None) is not None:
                    return True
                props = self.container_client.get_blob_client(prefix).get_blob_properties()
        except ResourceNotFoundError:
            return False
        return _is_folder_marker(props)

    def delete(self, key: str) -> None:
        faults.point("datastore.delete")
        with contextlib.suppress(ResourceNotFoundError), self._service():
            self.container_client.delete_blob(validate_key(key), delete_snapshots="include")

    def upload_file(self, local_path: Path, key: str, *, move: bool = False) -> None:
        """Stream a local file into ``key``, replacing any blob there.

        Files up to the client's ``max_single_put_size`` (64 MiB by default) go up in one request;
        larger ones as blocks of ``max_block_size`` committed at the end, so memory stays bounded
        and readers never see a partial blob. ``move`` changes nothing here: the local file stays.
        """
        validate_key(key)
        faults.point("datastore.write")
        path = Path(local_path)
        with open(path, "rb") as handle, self._service():
            self.container_client.upload_blob(
                key,
                handle,
                length=os.fstat(handle.fileno()).st_size,
                overwrite=True,
                max_concurrency=_MAX_CONCURRENCY,
            )

    def download_file(self, key: str, local_path: Path) -> None:
        """Stream ``key`` into ``local_path`` chunk by chunk.

        The bytes go to a temporary file beside ``local_path`` that is renamed into place when
        complete, so an interrupted download never leaves a truncated file under the final name.
        """
        validate_key(key)
        faults.point("datastore.read")
        with local_file_in_place(local_path) as tmp:
            try:
                with self._service():
                    downloader = self.container_client.download_blob(key, max_concurrency=_MAX_CONCURRENCY)
            except ResourceNotFoundError as exc:
                raise self._not_found(key, exc) from None
            with open(tmp, "wb") as handle, self._service():
                downloader.readinto(handle)

    def url(self, key: str) -> str:
        """The blob's URL (percent-encoded, never carrying a SAS token)."""
        return f"{self.container_url}/{quote(validate_key(key), safe='/')}"

    def describe(self) -> str:
        return f"Azure Blob datastore {self.name!r} at {self.container_url}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, container_url={self.container_url!r})"
