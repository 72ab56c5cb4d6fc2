"""Validation of the names users give to datasets, outputs and inputs.

Names become path segments in every datastore (local folders, Blob names, ADLS paths), so they
are restricted to a portable ASCII alphabet that every store can hold without escaping. A local
folder segment holds at most 255 bytes, and a store writes a file through a temporary name that
adds a 38-character prefix, so names stop well short of that.
"""

from __future__ import annotations

import re

from airflow_provider_amlpipe.errors import ConfigurationError

MAX_NAME_LENGTH = 200
NAME_RULE = (
    f"use 1-{MAX_NAME_LENGTH} characters from ASCII letters, digits, '_', '-' and '.', starting with a letter,"
    " digit or '_', and no '..'"
)
# '.' and '-' may not lead: a leading '.' hides a folder, a leading '-' reads as a command-line option.
_NAME = re.compile(rf"^[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{MAX_NAME_LENGTH - 1}}}$")
_RESERVED_OUTPUT_NAMES = frozenset({"return_value", "amlpipe_status"})


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a dataset/output/input name, or ``None`` when it can."""
    if not isinstance(name, str) or not name:
        return f"name must be a non-empty string, got {name!r}"
    if len(name) > MAX_NAME_LENGTH:
        return f"name {name[:40]!r}... is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    if "/" in name or "\\" in name or ".." in name or not _NAME.match(name):
        return f"name {name!r} contains characters a datastore cannot hold (or '/', '..')"
    return None


def validate_name(field: str, name: object) -> str:
    """Return ``name`` if it is a valid dataset/output/input name, else raise naming ``field``."""
    problem = name_problem(name)
    if problem is not None:
        fix = "give a name such as 'processed_data'" if not isinstance(name, str) or not name else NAME_RULE
        raise ConfigurationError(field, problem, fix)
    assert isinstance(name, str)
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
