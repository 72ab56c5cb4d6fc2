"""The small objects users put in DAGs and steps pass to each other through XCom.

``DataPath``, ``DatasetInput`` and ``Output`` are declarations written in a DAG file; they carry
``template_fields`` so Airflow renders Jinja inside them (a ``DataPath`` whose path comes from a
Param, say). ``DataRef`` is what a committed output becomes: plain JSON in XCom.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_amlpipe.data.names import validate_key, validate_name, validate_output_name
from airflow_provider_amlpipe.errors import ConfigurationError

DATAREF_KIND = "amlpipe.dataref"
FINGERPRINT_MODES = ("content", "marker")
LATEST = "latest"
#: The version a producer most recently committed *or reused* (not necessarily the newest minted).
LATEST_PRODUCED = "latest-produced"
_VERSION_DIGITS = re.compile(r"[0-9]+")


def is_template(value: object) -> bool:
    """Whether ``value`` is a Jinja template string (rendered by Airflow when the task runs)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@dataclass(frozen=True)
class DataRef:
    """A committed, immutable version of a named dataset: what XCom carries between steps."""

    name: str
    version: int
    datastore: str
    path: str
    digest: str
    files: int
    size: int
    producer: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": DATAREF_KIND, **asdict(self)}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> DataRef:
        fields = {k: value[k] for k in ("name", "version", "datastore", "path", "digest", "files", "size")}
        return cls(**fields, producer=dict(value.get("producer") or {}))

    @staticmethod
    def is_ref(value: object) -> bool:
        return isinstance(value, dict) and value.get("kind") == DATAREF_KIND


class DataPath:
    """An external input: a file or folder at ``path`` in the datastore named by a connection.

    ``fingerprint_mode`` chooses how a change is noticed: ``"content"`` (default) hashes the
    bytes; ``"marker"`` trusts the store's change markers (ETag, size, mtime) and reads nothing.
    """

    template_fields = ("datastore", "path")

    def __init__(self, datastore: str, path: str, *, fingerprint_mode: str = "content") -> None:
        self.datastore = datastore
        self.path = path
        self.fingerprint_mode = fingerprint_mode

    def validate(self, field_name: str, *, rendered: bool = True) -> None:
        """Check the declaration; before rendering (``rendered=False``) templated parts are skipped."""
        if not isinstance(self.datastore, str) or not self.datastore.strip():
            raise ConfigurationError(
                f"{field_name}.datastore",
                f"no datastore connection id given (got {self.datastore!r})",
                "pass DataPath(datastore='<conn id>', ...)",
            )
        path = self.path
        if not isinstance(path, str) or not path.strip("/"):
            raise ConfigurationError(
                f"{field_name}.path",
                f"expected a path inside the datastore, got {path!r}",
                "give a relative path inside the datastore, such as 'raw/titanic.csv'",
            )
        if not rendered and is_template(path):
            pass  # checked again once Airflow has rendered it
        elif path.startswith("/"):
            # A leading '/' could mean the datastore's root or this machine's root: refuse to guess.
            raise ConfigurationError(
                f"{field_name}.path",
                f"{path!r} is absolute, but DataPath paths are relative to the datastore's root",
                f"write {path.lstrip('/')!r} (relative to the datastore's root folder or container)",
            )
        else:
            try:
                validate_key(path.rstrip("/"))
            except ValueError as exc:
                raise ConfigurationError(
                    f"{field_name}.path",
                    str(exc),
                    "give a relative path inside the datastore, such as 'raw/titanic.csv'",
                ) from exc
        if self.fingerprint_mode not in FINGERPRINT_MODES:
            raise ConfigurationError(
                f"{field_name}.fingerprint_mode",
                f"unknown mode {self.fingerprint_mode!r}",
                f"use one of {', '.join(FINGERPRINT_MODES)}",
            )

    @property
    def key(self) -> str:
        """The datastore key (a trailing '/' of a folder dropped); call :meth:`validate` first."""
        return self.path.rstrip("/")

    def __repr__(self) -> str:
        return f"DataPath(datastore={self.datastore!r}, path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataPath) and (self.datastore, self.path, self.fingerprint_mode) == (
            other.datastore,
            other.path,
            other.fingerprint_mode,
        )

    def __hash__(self) -> int:
        return hash((self.datastore, self.path, self.fingerprint_mode))


class DatasetInput:
    """An input taken from the dataset registry: ``name`` at ``version``.

    ``version`` is a number, ``"latest"`` (the most recently *minted* version) or
    ``"latest-produced"`` (the version a producing step most recently committed or reused: after a
    pipeline went back to inputs whose outputs are an older version, that older version).
    """

    template_fields = ("name", "version")

    def __init__(self, name: str, version: int | str = "latest", *, datastore: str | None = None) -> None:
        self.name = name
        self.version = version
        self.datastore = datastore

    def validate(self, field_name: str, *, rendered: bool = True) -> int | str:
        """Check name and version; return the version as ``int`` or ``"latest"``.

        Before rendering (``rendered=False``) a templated name or version is left for later.
        """
        if rendered or not is_template(self.name):
            validate_name(f"{field_name}.name", self.name)
        if self.datastore is not None and (not isinstance(self.datastore, str) or not self.datastore.strip()):
            raise ConfigurationError(
                f"{field_name}.datastore",
                f"expected a datastore connection id, got {self.datastore!r}",
                "pass datastore='<conn id>', or leave it out to use the step's datastore",
            )
        return check_version(f"{field_name}.version", self.version, rendered=rendered)

    def resolved_version(self, field_name: str) -> int | str:
        """The rendered version as ``int`` or ``"latest"`` (raises on anything else)."""
        return self.validate(field_name, rendered=True)

    def __repr__(self) -> str:
        return f"DatasetInput(name={self.name!r}, version={self.version!r})"


def check_version(field_name: str, version: object, *, rendered: bool = True) -> int | str:
    """A dataset version: an int from 1 (not a bool), a string of ASCII digits, ``"latest"`` or ``"latest-produced"``.

    Anything else is refused rather than coerced: ``True`` or ``2.7`` would otherwise silently
    pick version 1 or 2. Before rendering, a Jinja template string is accepted as it is.
    """
    fix = f"use a version number from 1 (such as 3 or '3'), {LATEST!r} or {LATEST_PRODUCED!r}"
    if isinstance(version, str):
        text = version.strip()
        if text in (LATEST, LATEST_PRODUCED) or (not rendered and is_template(text)):
            return text
        if not _VERSION_DIGITS.fullmatch(text):
            raise ConfigurationError(field_name, f"{version!r} is not a version", fix)
        version = int(text)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigurationError(field_name, f"{version!r} ({type(version).__name__}) is not a version", fix)
    if version < 1:
        raise ConfigurationError(field_name, f"{version} is not a version", "versions start at 1")
    return version


class Output:
    """A named output a step declares; committed as a new version of a dataset on success.

    ``register_as`` names the dataset (default: ``<dag_id>.<task_id>.<name>``). A ``required``
    output (the default) that the step leaves empty fails the step; with ``required=False`` an
    empty output is committed as an empty version, with a warning.
    """

    def __init__(self, name: str, *, register_as: str | None = None, required: bool = True) -> None:
        self.name = name
        self.register_as = register_as
        self.required = required

    def validate(self, field_name: str) -> None:
        validate_output_name(f"{field_name}.name", self.name)
        if self.register_as is not None:
            validate_name(f"{field_name}.register_as", self.register_as)
        if not isinstance(self.required, bool):
            raise ConfigurationError(
                f"{field_name}.required", f"expected True or False, got {self.required!r}", "pass required=False"
            )

    def dataset_name(self, dag_id: str, task_id: str) -> str:
        """The dataset this output is committed to: ``register_as``, else ``<dag_id>.<task_id>.<name>``."""
        return self.register_as if self.register_as is not None else f"{dag_id}.{task_id}.{self.name}"

    @property
    def placeholder(self) -> str:
        return "{outputs." + self.name + "}"

    def __str__(self) -> str:
        return self.placeholder

    def __repr__(self) -> str:
        return f"Output({self.name!r}, register_as={self.register_as!r}, required={self.required!r})"
