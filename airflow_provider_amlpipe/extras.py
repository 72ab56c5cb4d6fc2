"""Reading an Airflow connection's fields: yes/no extras and loopback hosts (plain Python: used by hooks and
core settings alike)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

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
