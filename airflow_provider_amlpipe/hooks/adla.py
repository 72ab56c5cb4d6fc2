"""The ADLA hook: turns an ``amlpipe_adla`` Airflow connection into an :class:`AdlaJobsClient`.

Connection fields:

- Host: the account's job endpoint, ``https://<account>.azuredatalakeanalytics.net`` (or just
  the account name; Login is used as the account name when Host is empty);
- credentials: a service principal (``extra.tenant_id``, ``extra.client_id`` and the secret in
  Password or ``extra.client_secret``); else azure-identity's default chain (managed identity,
  workload identity, environment, Azure CLI), with ``extra.managed_identity_client_id`` to pick a
  user-assigned identity;
- ``extra.api_version`` (default ``2016-11-01``);
- ``extra.staging_datastore``: the connection id of an ``amlpipe_azure_blob`` datastore whose
  storage account is linked to the ADLA account. A job reads its inputs from and writes its
  outputs to ``wasb://`` URIs in that container, under ``extra.staging_prefix`` (default
  ``amlpipe-staging/``). Without it, a step whose own datastore is on Blob stages there; a step
  on a local datastore fails before anything is submitted;
- **test only**: ``extra.static_token``, a fixed bearer token, and ``extra.allow_insecure_loopback:
  true``, which allows plain http to a loopback host (a local server speaking the protocol).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_amlpipe.compute.adla import (
    ADLA_DNS_SUFFIX,
    DEFAULT_API_VERSION,
    AdlaJobBackend,
    AdlaJobsClient,
    StaticTokenCredential,
    TokenCredential,
)
from airflow_provider_amlpipe.compute.remote import RemoteCompute
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.extras import check_conn_type, connection_flag
from airflow_provider_amlpipe.hooks.base import ConnectionHook

ADLA_CONN_TYPE = "amlpipe_adla"
DEFAULT_ADLA_CONN_ID = "adla_default"


def adla_endpoint(conn_id: str, host: str | None, login: str | None, port: int | None) -> str:
    """The account endpoint named by a connection's Host (URL or account name) or Login."""
    value = (host or login or "").strip()
    if not value:
        raise ConfigurationError(
            f"compute (connection {conn_id!r})",
            "no ADLA account given",
            f"set Host to https://<account>.{ADLA_DNS_SUFFIX}",
        )
    if "://" not in value:
        value = f"https://{value}" if "." in value or ":" in value else f"https://{value}.{ADLA_DNS_SUFFIX}"
    if port:
        scheme, _, rest = value.partition("://")
        netloc, slash, path = rest.partition("/")
        if ":" not in netloc.rsplit("]", 1)[-1]:
            value = f"{scheme}://{netloc}:{port}{slash}{path}"
    return value


def adla_credential(password: str | None, extra: dict[str, Any]) -> TokenCredential:
    """The credential a connection describes (see the module's docstring)."""
    if extra.get("static_token"):
        return StaticTokenCredential(str(extra["static_token"]))
    if extra.get("tenant_id") and extra.get("client_id"):
        from azure.identity import ClientSecretCredential

        secret = extra.get("client_secret") or password
        if not secret:
            raise ConfigurationError(
                "compute (ADLA connection)",
                "a service principal needs its client secret",
                "put the secret in the connection's Password",
            )
        return ClientSecretCredential(
            tenant_id=str(extra["tenant_id"]), client_id=str(extra["client_id"]), client_secret=str(secret)
        )
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=extra.get("managed_identity_client_id"))


def adla_client_from_connection(
    conn_id: str,
    conn_type: str | None,
    host: str | None,
    login: str | None,
    password: str | None,
    port: int | None,
    extra: dict[str, Any],
) -> AdlaJobsClient:
    """Build a job-service client from a connection's fields (shared by the hook and triggers)."""
    check_conn_type(f"compute (connection {conn_id!r})", conn_type, ADLA_CONN_TYPE, "an ADLA account")
    endpoint = adla_endpoint(conn_id, host, login, port)
    return AdlaJobsClient(
        endpoint,
        adla_credential(password, extra),
        api_version=str(extra.get("api_version") or DEFAULT_API_VERSION),
        verify_https=not connection_flag(extra, "allow_insecure_loopback", f"compute (connection {conn_id!r})"),
    )


class AdlaHook(ConnectionHook):
    """An Azure Data Lake Analytics account's job service, from an ``amlpipe_adla`` connection."""

    conn_name_attr = "adla_conn_id"
    default_conn_name = DEFAULT_ADLA_CONN_ID
    conn_type = ADLA_CONN_TYPE
    hook_name = "AML Pipelines ADLA account"

    def __init__(self, adla_conn_id: str = DEFAULT_ADLA_CONN_ID) -> None:
        super().__init__()
        self.adla_conn_id = adla_conn_id

    def get_conn(self) -> AdlaJobsClient:
        return self.get_client()

    def get_client(self) -> AdlaJobsClient:
        """A new client (close it when done, or use it as a context manager)."""
        conn = self._connection()
        return adla_client_from_connection(
            self.adla_conn_id, conn.conn_type, conn.host, conn.login, conn.password, conn.port, conn.extra_dejson
        )

    def get_backend(self) -> AdlaJobBackend:
        """A compute backend that runs U-SQL scripts as jobs of this account."""
        return AdlaJobBackend(self.get_client())

    def get_remote_compute(self) -> RemoteCompute:
        """What the remote step base needs: the backend, staging, and how the triggerer rebuilds it."""
        settings = self.get_staging_settings()  # checked before a client is built
        return RemoteCompute(self.get_backend(), settings, f"{__name__}:aadla_backend", "an ADLA account")


async def aadla_client(conn_id: str) -> AdlaJobsClient:
    """The client of a connection, fetched without blocking the triggerer's event loop."""
    conn = await BaseHook.aget_connection(conn_id)
    return adla_client_from_connection(
        conn_id, conn.conn_type, conn.host, conn.login, conn.password, conn.port, conn.extra_dejson
    )


async def aadla_backend(conn_id: str) -> AdlaJobBackend:
    """The backend of a connection, for :class:`~airflow_provider_amlpipe.triggers.remote_job.RemoteJobTrigger`."""
    return AdlaJobBackend(await aadla_client(conn_id))
