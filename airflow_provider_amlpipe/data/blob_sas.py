"""Shared access signatures for a Blob datastore's container: URLs a remote node can use.

A remote service (an Azure Batch node, a VM) holds no credential of ours. It gets URLs signed for
exactly what the job needs, valid for a limited time: read one blob (an input file), read and
list a folder, write into the container (outputs). Signed with the account key when the datastore
has one, else with a user delegation key from its token credential; a datastore connected with a
SAS token passes on that token (whose permissions it was given).

These URLs are secrets: they go to the service in the job's definition and nowhere else (never
to logs, XCom, fingerprints or records).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    UserDelegationKey,
    generate_blob_sas,
    generate_container_sas,
)

from airflow_provider_amlpipe.data.names import validate_key
from airflow_provider_amlpipe.errors import ConfigurationError

#: How long the URLs of one job stay valid (a job that queues longer needs a longer validity).
DEFAULT_VALIDITY = timedelta(days=7)
# Clocks differ between this worker and the storage service: a signature starts slightly in the past.
_CLOCK_SKEW = timedelta(minutes=15)


class ContainerSigner:
    """Signs URLs of one container (of an :class:`~airflow_provider_amlpipe.data.azure_blob.AzureBlobDatastore`)."""

    def __init__(self, container: ContainerClient, validity: timedelta = DEFAULT_VALIDITY) -> None:
        self.container = container
        self.start = datetime.now(timezone.utc) - _CLOCK_SKEW
        self.expiry = self.start + _CLOCK_SKEW + validity
        parts = urlsplit(container.url)
        self._base = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
        self._own_sas = parts.query  # a datastore connected with a SAS token
        credential: Any = container.credential
        self._account_key: str | None = getattr(credential, "account_key", None)
        self._delegation: UserDelegationKey | None = None
        if self._account_key is None and not self._own_sas:
            if credential is None:
                raise ConfigurationError(
                    f"datastore {container.container_name!r}",
                    "an anonymous connection cannot sign URLs for a remote job",
                    "connect the staging datastore with an account key, a token credential or a SAS token",
                )
            self._delegation = self._user_delegation_key()

    def _user_delegation_key(self) -> UserDelegationKey:
        service = BlobServiceClient(self._base.rsplit("/", 1)[0], credential=self.container.credential)
        with service:
            return service.get_user_delegation_key(self.start, self.expiry)

    @property
    def _account(self) -> str:
        return str(self.container.account_name)

    def blob_url(self, key: str) -> str:
        """A URL that reads the blob ``key``."""
        url = f"{self._base}/{quote(validate_key(key), safe='/')}"
        if self._own_sas:
            return f"{url}?{self._own_sas}"
        sas = generate_blob_sas(
            self._account,
            self.container.container_name,
            key,
            account_key=self._account_key,
            user_delegation_key=self._delegation,
            permission=BlobSasPermissions(read=True),
            start=self.start,
            expiry=self.expiry,
        )
        return f"{url}?{sas}"

    def container_url(self, *, read: bool = False, list: bool = False, write: bool = False) -> str:
        """A URL of the container with the given permissions (``write`` also creates blobs)."""
        if self._own_sas:
            return f"{self._base}?{self._own_sas}"
        sas = generate_container_sas(
            self._account,
            self.container.container_name,
            account_key=self._account_key,
            user_delegation_key=self._delegation,
            permission=ContainerSasPermissions(read=read, list=list, write=write, create=write),
            start=self.start,
            expiry=self.expiry,
        )
        return f"{self._base}?{sas}"
