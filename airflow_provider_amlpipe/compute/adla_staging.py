"""Where an ADLA job finds its inputs and puts its outputs: keys in a linked Blob container.

Plain Python, no I/O and no Airflow. A real Data Lake Analytics account reads and writes only its
own stores -- Data Lake Store (``adl://``) and the Blob storage accounts linked to it
(``wasb://<container>@<account>.blob.core.windows.net/<path>``) -- never the worker's disk. So
before a job is submitted every input is made available in a *staging* Blob container, and every
``@@name@@`` of the script becomes a URI there:

- an input whose files already live in the staging container is referenced where it is (no copy);
- any other input is uploaded under ``<prefix><job_id>/inputs/<name>/...``;
- an input folder holding exactly one file stands for that file (AML's AdlaStep rule, as locally);
- output ``name`` is the file ``<prefix><job_id>/outputs/<name>/<name>``;
- parameters are substituted by value, as locally.

:func:`staging_layout` computes the keys; the caller turns keys into URIs (``uri``), uploads,
downloads and deletes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_amlpipe.data.names import validate_key
from airflow_provider_amlpipe.errors import ConfigurationError

DEFAULT_STAGING_PREFIX = "amlpipe-staging/"
STAGING_DATASTORE_FIELD = "staging_datastore"
STAGING_PREFIX_FIELD = "staging_prefix"


@dataclass(frozen=True)
class StagingSettings:
    """An ADLA connection's staging settings: ``extra.staging_datastore`` and ``extra.staging_prefix``.

    ``datastore`` is the connection id of an ``amlpipe_azure_blob`` datastore whose storage
    account is linked to the ADLA account; ``None`` means "the step's own datastore, if it is on
    Blob". ``prefix`` is empty or ends with ``/``.
    """

    datastore: str | None = None
    prefix: str = DEFAULT_STAGING_PREFIX


def staging_settings(conn_id: str, extra: Mapping[str, Any]) -> StagingSettings:
    """Read and check the staging settings of the ADLA connection ``conn_id``."""
    datastore = extra.get(STAGING_DATASTORE_FIELD) or None
    if datastore is not None and not isinstance(datastore, str):
        raise ConfigurationError(
            f"compute (connection {conn_id!r}) extra.{STAGING_DATASTORE_FIELD}",
            f"{datastore!r} is not a connection id",
            "set it to the id of an amlpipe_azure_blob connection",
        )
    raw = extra.get(STAGING_PREFIX_FIELD)
    prefix = DEFAULT_STAGING_PREFIX if raw is None else raw
    return StagingSettings(datastore, _normalize_prefix(conn_id, prefix))


def _normalize_prefix(conn_id: str, prefix: object) -> str:
    if not isinstance(prefix, str):
        raise ConfigurationError(
            f"compute (connection {conn_id!r}) extra.{STAGING_PREFIX_FIELD}",
            f"{prefix!r} is not a string",
            f"use a folder such as {DEFAULT_STAGING_PREFIX!r}",
        )
    folder = prefix.strip("/")
    if not folder:
        return ""
    try:
        validate_key(folder)
    except ValueError:
        raise ConfigurationError(
            f"compute (connection {conn_id!r}) extra.{STAGING_PREFIX_FIELD}",
            f"{prefix!r} is not a blob folder",
            f"use '/'-separated names without '.', '..' or '\\\\', such as {DEFAULT_STAGING_PREFIX!r}",
        ) from None
    return f"{folder}/"


def job_staging_prefix(prefix: str, job_id: str) -> str:
    """The folder that holds one job's staged inputs and outputs (deleted after the job)."""
    return f"{prefix}{job_id}"


@dataclass(frozen=True)
class InputSource:
    """The files of one input: ``files`` are '/'-separated paths relative to ``base``.

    With ``in_place`` the files already live in the staging container and ``base`` is their
    folder's key (``""`` for the container's root); otherwise ``base`` is a local folder whose
    files must be uploaded.
    """

    base: str
    files: tuple[str, ...]
    in_place: bool


@dataclass(frozen=True)
class Upload:
    """A local file to upload to ``key`` before the job is submitted."""

    local_path: str
    key: str


@dataclass(frozen=True)
class StagingLayout:
    """The keys of one job in the staging container.

    ``inputs``: the key each input's ``@@name@@`` stands for (a file, or a folder).
    ``uploads``: what must be uploaded first. ``outputs``: each output's folder; the script
    writes the file ``<folder>/<name>`` (:meth:`output_file`).
    """

    job_prefix: str
    inputs: dict[str, str]
    uploads: tuple[Upload, ...]
    outputs: dict[str, str]

    def output_file(self, name: str) -> str:
        """The key output ``name``'s ``@@name@@`` stands for."""
        return f"{self.outputs[name]}/{name}"

    def placeholder_values(self, params: Mapping[str, Any], uri: Callable[[str], str]) -> dict[str, str]:
        """What each ``@@name@@`` stands for: parameter values, and ``uri(key)`` of inputs and outputs."""
        values = {name: str(value) for name, value in params.items()}
        values.update({name: uri(key) for name, key in self.inputs.items()})
        values.update({name: uri(self.output_file(name)) for name in self.outputs})
        return values


def _join(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel}" if base.strip("/") else rel


def staging_layout(
    prefix: str, job_id: str, inputs: Mapping[str, InputSource], outputs: Sequence[str]
) -> StagingLayout:
    """Lay out a job's inputs and outputs under ``<prefix><job_id>/`` of the staging container."""
    job_prefix = job_staging_prefix(prefix, job_id)
    keys: dict[str, str] = {}
    uploads: list[Upload] = []
    for name, source in inputs.items():
        folder = source.base.strip("/") if source.in_place else f"{job_prefix}/inputs/{name}"
        if not source.in_place:
            uploads.extend(Upload(_join(source.base, rel), _join(folder, rel)) for rel in source.files)
        # A folder with exactly one file (e.g. an upstream ADLA step's output) stands for that file.
        keys[name] = _join(folder, source.files[0]) if len(source.files) == 1 else folder
    output_folders = {name: f"{job_prefix}/outputs/{name}" for name in outputs}
    return StagingLayout(job_prefix, keys, tuple(uploads), output_folders)
