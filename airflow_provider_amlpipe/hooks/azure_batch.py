"""The Azure Batch hook: an ``amlpipe_azure_batch`` connection made into a Batch job backend.

Connection fields:

- Host: the account URL, ``https://<account>.<region>.batch.azure.com``;
- shared key: Login is the account name (default: the Host's first label), Password the account key;
- or a Microsoft Entra credential (azure-identity): ``extra.tenant_id`` + ``extra.client_id`` with the
  client secret in Password (a service principal), ``extra.managed_identity_client_id`` (a
  user-assigned managed identity) or ``extra.use_default_credential: true`` (azure-identity's
  default chain). A connection with neither key nor credential is refused before anything runs;
- ``extra.staging_datastore`` / ``extra.staging_prefix``: the ``amlpipe_azure_blob`` datastore
  through which inputs reach the nodes and outputs come back (default: the step's datastore, if on
  Blob), and the folder for each job in it (default ``amlpipe-staging/``);
- **test only**: ``extra.allow_insecure_loopback: true`` lets a token go to a plain-http loopback
  endpoint (a local server speaking the Batch protocol).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_amlpipe.compute.azure_batch import AllowHttpPolicy, AzureBatchJobBackend
from airflow_provider_amlpipe.compute.remote import RemoteCompute
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.extras import check_conn_type, connection_flag, entra_credential, https_url, is_loopback
from airflow_provider_amlpipe.hooks.base import ConnectionHook

BATCH_CONN_TYPE = "amlpipe_azure_batch"
DEFAULT_BATCH_CONN_ID = "azure_batch_default"
BATCH_SCOPE = "https://batch.core.windows.net//.default"


def batch_backend_from_connection(
    conn_id: str,
    conn_type: str | None,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: dict[str, Any],
) -> AzureBatchJobBackend:
    """A backend from a connection's fields (shared by the hook and the triggerer)."""
    from azure.batch import BatchClient

    field = f"compute (connection {conn_id!r})"
    insecure = connection_flag(extra, "allow_insecure_loopback", field)
    check_conn_type(field, conn_type, BATCH_CONN_TYPE, "an Azure Batch account")
    url = https_url(
        field,
        host,
        insecure,
        missing=("no Batch account URL", "set Host to https://<account>.<region>.batch.azure.com"),
        https_fix="use the account's https:// URL (plain http only to a local test server)",
    )
    account_host = urlsplit(url).hostname or ""
    loopback = is_loopback(account_host)
    options: dict[str, Any] = {}
    credential: Any = entra_credential(extra, password, field)
    if credential is None and password:
        from azure.core.credentials import AzureNamedKeyCredential

        account = (login or account_host.split(".", 1)[0]).strip()
        credential = AzureNamedKeyCredential(account, password)
    elif credential is None:
        raise ConfigurationError(
            field,
            "has neither an account key nor a credential",
            "put the account key in Password (Login: the account name), or set extra.tenant_id + extra.client_id"
            " with the secret in Password, extra.managed_identity_client_id, or extra.use_default_credential: true",
        )
    if loopback and insecure:
        options["retry_backoff_factor"] = 0.05
        if not password or extra.get("tenant_id"):  # a token: azure-core refuses it over http otherwise
            options["per_call_policies"] = [AllowHttpPolicy()]
    return AzureBatchJobBackend(BatchClient(url, credential, **options), url)


class AzureBatchHook(ConnectionHook):
    """An Azure Batch account, from an ``amlpipe_azure_batch`` connection."""

    conn_name_attr = "azure_batch_conn_id"
    default_conn_name = DEFAULT_BATCH_CONN_ID
    conn_type = BATCH_CONN_TYPE
    hook_name = "AML Pipelines Azure Batch account"

    def __init__(self, azure_batch_conn_id: str = DEFAULT_BATCH_CONN_ID) -> None:
        super().__init__()
        self.azure_batch_conn_id = azure_batch_conn_id

    def get_conn(self) -> AzureBatchJobBackend:
        return self.get_backend()

    def get_backend(self) -> AzureBatchJobBackend:
        """A backend on this account (close it when done)."""
        conn = self._connection()
        return batch_backend_from_connection(
            self.azure_batch_conn_id, conn.conn_type, conn.host, conn.login, conn.password, conn.extra_dejson
        )

    def get_remote_compute(self) -> RemoteCompute:
        """What the remote step base needs: the backend, staging, and how the triggerer rebuilds it."""
        settings = self.get_staging_settings()
        return RemoteCompute(self.get_backend(), settings, f"{__name__}:aazure_batch_backend", "an Azure Batch node")


async def aazure_batch_backend(conn_id: str) -> AzureBatchJobBackend:
    """The backend of a connection, for :class:`~airflow_provider_amlpipe.triggers.remote_job.RemoteJobTrigger`."""
    conn = await BaseHook.aget_connection(conn_id)
    return batch_backend_from_connection(
        conn_id, conn.conn_type, conn.host, conn.login, conn.password, conn.extra_dejson
    )
