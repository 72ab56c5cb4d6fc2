"""Reading an Airflow connection's fields: yes/no extras, loopback hosts, Entra credentials (plain Python: used
by hooks and core settings alike)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_amlpipe.errors import ConfigurationError


def connection_flag(extra: Mapping[str, Any], name: str, where: str, default: bool = False) -> bool:
    """A yes/no setting of a connection's extra: JSON true/false, or the strings "true"/"false"
    (a missing or null one is ``default``). Anything else is refused: ``bool("false")`` is true, and
    guessing would create containers, or allow plain http, that nobody asked for."""
    value = extra.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigurationError(where, f"extra.{name} is {value!r}", f"set extra.{name} to true or false")


def entra_credential(extra: Mapping[str, Any], secret: str | None, where: str) -> Any | None:
    """The Microsoft Entra credential (azure-identity) a connection names, or ``None`` if it names none:
    ``extra.tenant_id`` + ``extra.client_id`` with the client secret in Password (a service principal),
    ``extra.managed_identity_client_id`` or ``extra.use_default_credential: true`` (the default chain)."""
    if extra.get("tenant_id") or extra.get("client_id"):
        if not (extra.get("tenant_id") and extra.get("client_id") and secret):
            raise ConfigurationError(
                f"{where} extra.tenant_id / extra.client_id / Password",
                "a service principal needs its tenant id, client id and secret",
                "set all three (the client secret goes in Password)",
            )
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(str(extra["tenant_id"]), str(extra["client_id"]), str(secret))
    if extra.get("managed_identity_client_id") or connection_flag(extra, "use_default_credential", where):
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=extra.get("managed_identity_client_id"))
    return None


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (a local test server), the only place plain http may go."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_conn_type(where: str, conn_type: str | None, expected: str, what: str, fix: str | None = None) -> None:
    """Refuse a connection whose type is not ``expected`` (``what`` names what that type is, e.g. "an ADLA
    account"); the fix says which type to use."""
    if conn_type != expected:
        raise ConfigurationError(
            where,
            f"connection type {conn_type!r} is not {what}",
            fix or f"use a connection of type {expected}",
        )


def https_url(where: str, host: str | None, insecure: bool, *, missing: tuple[str, str], https_fix: str) -> str:
    """A connection's Host as a service URL: ``https://`` added to a bare host name, no trailing slash.

    No host at all is refused with ``missing`` (problem, fix); plain http with ``https_fix``, unless it goes to a
    loopback host and the connection allows that (``insecure``: ``extra.allow_insecure_loopback``, tests only).
    """
    url = (host or "").strip().rstrip("/")
    if "://" not in url and url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigurationError(f"{where} Host", *missing)
    if parts.scheme != "https" and not (is_loopback(parts.hostname) and insecure):
        raise ConfigurationError(f"{where} Host", f"{url!r} is not https", https_fix)
    return url
