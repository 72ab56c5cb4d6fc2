"""The small objects users put in DAGs and steps pass to each other through XCom.

``DataPath``, ``DatasetInput`` and ``Output`` are declarations written in a DAG file; they carry
``template_fields`` so Airflow renders Jinja inside them (a ``DataPath`` whose path comes from a
Param, say). ``DataRef`` is what a committed output becomes: plain JSON in XCom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_amlpipe.data.names import validate_key, validate_name, validate_output_name
from airflow_provider_amlpipe.errors import ConfigurationError

DATAREF_KIND = "amlpipe.dataref"
FINGERPRINT_MODES = ("content", "marker")


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

    def validate(self, field_name: str) -> None:
        if not self.datastore or not isinstance(self.datastore, str):
            raise ConfigurationError(
                f"{field_name}.datastore",
                "no datastore connection id given",
                "pass DataPath(datastore='<conn id>', ...)",
            )
        try:
            validate_key(self.path.strip("/") if isinstance(self.path, str) else "")
        except ValueError as exc:
            raise ConfigurationError(
                f"{field_name}.path", str(exc), "give a relative path inside the datastore, such as 'raw/titanic.csv'"
            ) from exc
        if self.fingerprint_mode not in FINGERPRINT_MODES:
            raise ConfigurationError(
                f"{field_name}.fingerprint_mode",
                f"unknown mode {self.fingerprint_mode!r}",
                f"use one of {', '.join(FINGERPRINT_MODES)}",
            )

    @property
    def key(self) -> str:
        return self.path.strip("/")

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
    """An input taken from the dataset registry: ``name`` at ``version`` (a number or "latest")."""

    template_fields = ("name", "version")

    def __init__(self, name: str, version: int | str = "latest", *, datastore: str | None = None) -> None:
        self.name = name
        self.version = version
        self.datastore = datastore

    def resolved_version(self, field_name: str) -> int | str:
        version = self.version
        if isinstance(version, str) and version != "latest":
            if not version.isdigit():
                raise ConfigurationError(
                    f"{field_name}.version", f"{version!r} is not a version", "use a version number or 'latest'"
                )
            version = int(version)
        if isinstance(version, int) and version < 1:
            raise ConfigurationError(f"{field_name}.version", f"{version} is not a version", "versions start at 1")
        validate_name(f"{field_name}.name", self.name)
        return version

    def __repr__(self) -> str:
        return f"DatasetInput(name={self.name!r}, version={self.version!r})"


class Output:
    """A named output a step declares; committed as a new version of a dataset on success.

    ``register_as`` names the dataset (default: ``<dag_id>.<task_id>.<name>``).
    """

    def __init__(self, name: str, *, register_as: str | None = None) -> None:
        self.name = name
        self.register_as = register_as

    def validate(self, field_name: str) -> None:
        validate_output_name(f"{field_name}.name", self.name)
        if self.register_as is not None:
            validate_name(f"{field_name}.register_as", self.register_as)

    @property
    def placeholder(self) -> str:
        return "{outputs." + self.name + "}"

    def __str__(self) -> str:
        return self.placeholder

    def __repr__(self) -> str:
        return f"Output({self.name!r}, register_as={self.register_as!r})"
