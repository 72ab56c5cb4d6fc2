"""Validation of the names users give to datasets, outputs and inputs.

Names become path segments in every datastore (local folders, Blob names, ADLS paths), so they
are restricted to a portable alphabet that every store can hold without escaping.
"""

from __future__ import annotations

import re

from airflow_provider_amlpipe.errors import ConfigurationError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_RESERVED_OUTPUT_NAMES = frozenset({"return_value", "amlpipe_status"})


def validate_name(field: str, name: object) -> str:
    """Return ``name`` if it is a valid dataset/output/input name, else raise naming ``field``."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(
            field, f"name must be a non-empty string, got {name!r}", "give a name such as 'processed_data'"
        )
    if "/" in name or "\\" in name or ".." in name or not _NAME.match(name):
        raise ConfigurationError(
            field,
            f"name {name!r} contains characters a datastore cannot hold (or '/', '..')",
            "use 1-128 characters from letters, digits, '_', '-' and '.', starting with a letter or digit, and no '..'",
        )
    return name


def validate_output_name(field: str, name: object) -> str:
    """Like :func:`validate_name`, also refusing the XCom keys the operators use themselves."""
    validate_name(field, name)
    if name in _RESERVED_OUTPUT_NAMES:
        raise ConfigurationError(field, f"output name {name!r} is reserved", "choose another output name")
    return str(name)


def validate_key(key: str) -> str:
    """Check a datastore key: relative, '/'-separated, no empty, '.' or '..' segments."""
    if not key or key.startswith("/") or "\\" in key:
        raise ValueError(f"invalid datastore key {key!r}: keys are relative '/'-separated paths")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"invalid datastore key {key!r}: empty, '.' or '..' segment")
    return key
