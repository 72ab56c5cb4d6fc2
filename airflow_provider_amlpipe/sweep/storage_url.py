"""The Optuna RDB URL a sweep may keep its study in: checked when the DAG is parsed, shown without its password.

Apart from :mod:`.storage` so that the check needs no Optuna (0.3 s to import, paid by every parse of the DAG file).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from airflow_provider_amlpipe.errors import ConfigurationError

_RDB_SCHEMES = ("postgresql", "mysql", "sqlite", "mariadb", "oracle", "mssql")


def check_storage_url(value: object) -> str | None:
    """An Optuna RDB URL (``postgresql://user@host/db``, ``sqlite:///path``) or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str) or urlsplit(value).scheme.split("+")[0] not in _RDB_SCHEMES:
        raise ConfigurationError(
            "optuna_storage",
            f"expected an Optuna RDB storage URL, got {shown_url(value) if isinstance(value, str) else value!r}",
            "pass a SQLAlchemy URL such as 'postgresql://user@host:5432/optuna', or None to keep the study in the"
            " datastore",
        )
    return value


def shown_url(url: str) -> str:
    """``url`` without its password, for logs and records."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
