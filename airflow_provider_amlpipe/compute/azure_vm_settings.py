"""An ``amlpipe_azure_vm`` connection's settings and credentials (no Airflow import).

Fields (the hook passes a connection's fields here; the triggerer does too):

- ``extra.subscription_id`` (required) and ``extra.resource_group`` (the default resource group;
  an operator's ``resource_group=`` overrides it);
- credentials, one of:

  * a service principal: ``extra.tenant_id``, ``extra.client_id`` (or Login) and the client secret
    in Password (or ``extra.client_secret``);
  * azure-identity's ``DefaultAzureCredential`` (managed identity, workload identity, environment,
    Azure CLI): ``extra.credential: "default"``, with ``extra.managed_identity_client_id`` to pick a
    user-assigned identity (which alone also selects it);

  a connection with neither is refused before anything is sent;
- Host: the ARM endpoint (default ``https://management.azure.com``; another cloud's, or a local
  test server), ``extra.credential_scopes`` (default: the endpoint's ``/.default``);
- ``extra.staging_datastore`` / ``extra.staging_prefix``: an ``amlpipe_azure_blob`` datastore
  through which a VM script step stages its inputs and outputs (default prefix
  ``amlpipe-staging/``);
- **test only**: ``extra.static_token`` (a fixed bearer token) and ``extra.allow_insecure_loopback:
  true`` (plain http to a loopback host).
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.extras import check_conn_type, connection_flag, is_loopback

AZURE_VM_CONN_TYPE = "amlpipe_azure_vm"
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_STAGING_PREFIX = "amlpipe-staging/"
_CREDENTIALS = ("service_principal", "default")


@dataclass(frozen=True)
class StaticTokenCredential:
    """A credential that always returns the same bearer token. **For tests only.**"""

    token: str = field(repr=False)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


@dataclass(frozen=True)
class AsyncStaticTokenCredential:
    """:class:`StaticTokenCredential` for async clients. **For tests only.**"""

    token: str = field(repr=False)

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> AsyncStaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


@dataclass(frozen=True)
class AzureVmSettings:
    """Everything a client of one ``amlpipe_azure_vm`` connection needs. Secrets are not in ``repr``."""

    conn_id: str
    subscription_id: str
    resource_group: str | None
    base_url: str = DEFAULT_ARM_ENDPOINT
    credential_scopes: tuple[str, ...] = (f"{DEFAULT_ARM_ENDPOINT}/.default",)
    credential_kind: str = "default"  # service_principal | default | static
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    managed_identity_client_id: str | None = None
    static_token: str | None = field(default=None, repr=False)
    allow_insecure_loopback: bool = False
    staging_datastore: str | None = None
    staging_prefix: str = DEFAULT_STAGING_PREFIX

    def resource_group_for(self, resource_group: str | None) -> str:
        """``resource_group`` if given, else the connection's; an error naming both places if neither."""
        group = resource_group or self.resource_group
        if not group:
            raise ConfigurationError(
                "resource_group",
                f"no resource group given and connection {self.conn_id!r} has none",
                "pass resource_group='<name>' or set the connection's extra.resource_group",
            )
        return group

    def credential(self) -> Any:
        """A new azure-identity (sync) credential for this connection."""
        if self.credential_kind == "static":
            return StaticTokenCredential(str(self.static_token))
        if self.credential_kind == "service_principal":
            from azure.identity import ClientSecretCredential

            return ClientSecretCredential(str(self.tenant_id), str(self.client_id), str(self.client_secret))
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.managed_identity_client_id)

    def async_credential(self) -> Any:
        """A new azure-identity async credential for this connection (close it when done)."""
        if self.credential_kind == "static":
            return AsyncStaticTokenCredential(str(self.static_token))
        if self.credential_kind == "service_principal":
            from azure.identity.aio import ClientSecretCredential

            return ClientSecretCredential(str(self.tenant_id), str(self.client_id), str(self.client_secret))
        from azure.identity.aio import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.managed_identity_client_id)

    @property
    def insecure_http(self) -> bool:
        """Whether bearer tokens may go over plain http (only to a loopback test server that asked for it)."""
        return urllib.parse.urlsplit(self.base_url).scheme == "http"


def azure_vm_ui_field_behaviour() -> dict[str, Any]:
    """How Airflow's connection form shows an ``amlpipe_azure_vm`` connection: declared once here for the provider
    info and the hook's ``get_ui_field_behaviour`` (a new dict each call: Airflow may change what it gets)."""
    return {
        "hidden-fields": ["schema", "port", "extra"],
        "relabeling": {
            "host": "ARM endpoint",
            "login": "Client ID (service principal)",
            "password": "Client secret",
        },
        "placeholders": {
            "host": "empty: https://management.azure.com",
            "password": "client secret of the service principal; empty with credential 'default'",
        },
    }


def parse_azure_vm_connection(
    conn_id: str,
    conn_type: str | None,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: dict[str, Any],
) -> AzureVmSettings:
    """Check an ``amlpipe_azure_vm`` connection's fields (see the module docstring) and return its settings.

    Every problem names the connection and the field, and says how to fix it; nothing is sent.
    """
    where = f"compute (connection {conn_id!r})"
    check_conn_type(where, conn_type, AZURE_VM_CONN_TYPE, "an Azure VM connection", f"use a {AZURE_VM_CONN_TYPE} one")
    if not isinstance(extra, dict):
        raise ConfigurationError(where, "its extra is not a JSON object", "set extra to a JSON object")
    subscription_id = str(extra.get("subscription_id") or "").strip()
    if not subscription_id:
        raise ConfigurationError(
            f"{where} extra.subscription_id", "no subscription id", "set extra.subscription_id to the VM's subscription"
        )
    base_url, scopes = _endpoint(where, host, extra)
    allow_loopback = connection_flag(extra, "allow_insecure_loopback", where)
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme == "http" and not (allow_loopback and is_loopback(parsed.hostname or "")):
        fix = (
            "set extra.allow_insecure_loopback: true (local test servers only)"
            if is_loopback(parsed.hostname or "")
            else "use https: bearer tokens are never sent over plain http to another host"
        )
        raise ConfigurationError(f"{where} Host", f"plain http to {parsed.hostname!r} is refused", fix)
    kind, tenant_id, client_id, secret = _credential(where, login, password, extra)
    prefix = str(extra.get("staging_prefix") or DEFAULT_STAGING_PREFIX).strip("/") + "/"
    return AzureVmSettings(
        conn_id=conn_id,
        subscription_id=subscription_id,
        resource_group=str(extra.get("resource_group") or "").strip() or None,
        base_url=base_url,
        credential_scopes=scopes,
        credential_kind=kind,
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=secret,
        managed_identity_client_id=str(extra.get("managed_identity_client_id") or "") or None,
        static_token=str(extra["static_token"]) if extra.get("static_token") else None,
        allow_insecure_loopback=allow_loopback,
        staging_datastore=str(extra.get("staging_datastore") or "").strip() or None,
        staging_prefix=prefix,
    )


def _endpoint(where: str, host: str | None, extra: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    value = (host or extra.get("base_url") or DEFAULT_ARM_ENDPOINT).strip().rstrip("/")
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(f"{where} Host", f"{value!r} is not an http(s) URL", f"use {DEFAULT_ARM_ENDPOINT}")
    raw = extra.get("credential_scopes")
    if raw is None or raw == "" or raw == []:
        scopes: tuple[str, ...] = (f"{parsed.scheme}://{parsed.netloc}/.default",)
        if parsed.scheme == "http":  # a loopback test server: the token audience of real ARM
            scopes = (f"{DEFAULT_ARM_ENDPOINT}/.default",)
    elif isinstance(raw, str):
        scopes = tuple(s for s in raw.replace(",", " ").split() if s)
    elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        scopes = tuple(raw)
    else:
        raise ConfigurationError(
            f"{where} extra.credential_scopes",
            f"expected a list of scopes, got {raw!r}",
            'e.g. ["<endpoint>/.default"]',
        )
    return value, scopes


def _credential(
    where: str, login: str | None, password: str | None, extra: dict[str, Any]
) -> tuple[str, str | None, str | None, str | None]:
    if extra.get("static_token"):
        return "static", None, None, None
    tenant_id = str(extra.get("tenant_id") or "").strip() or None
    client_id = str(extra.get("client_id") or login or "").strip() or None
    secret = str(extra.get("client_secret") or password or "") or None
    chosen = str(extra.get("credential") or "").strip().lower().replace("-", "_")
    if chosen and chosen not in _CREDENTIALS:
        raise ConfigurationError(
            f"{where} extra.credential",
            f"unknown credential {chosen!r}",
            "use 'default' (azure-identity DefaultAzureCredential) or 'service_principal'",
        )
    if chosen == "default" or (not chosen and extra.get("managed_identity_client_id") and not client_id):
        return "default", tenant_id, None, None
    if chosen == "service_principal" or tenant_id or client_id or secret:
        missing = [
            name
            for name, value in (
                ("extra.tenant_id", tenant_id),
                ("extra.client_id (or Login)", client_id),
                ("Password (the client secret)", secret),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(
                f"{where} {missing[0]}",
                f"a service principal needs tenant id, client id and secret; missing: {', '.join(missing)}",
                "set them, or set extra.credential to 'default' to use a managed identity / DefaultAzureCredential",
            )
        return "service_principal", tenant_id, client_id, secret
    raise ConfigurationError(
        f"{where} credential",
        "the connection has neither a service principal nor a credential choice",
        "set extra.tenant_id, extra.client_id and the client secret in Password, or set extra.credential to"
        " 'default' (managed identity, workload identity, Azure CLI through azure-identity)",
    )
