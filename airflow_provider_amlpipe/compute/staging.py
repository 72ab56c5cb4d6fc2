"""Where a remote job finds its inputs and puts its outputs: keys in a staging Blob container.

Plain Python, no I/O and no Airflow. A remote service (an ADLA account, an Azure Batch node, a
VM) never reads a worker's disk. So before a job is submitted every input is made available in a
*staging* Blob container, and the job is told where:

- an input whose files already live in the staging container is referenced where it is (no copy);
- any other input is uploaded under ``<prefix><job_id>/inputs/<name>/...``;
- output ``name`` is the folder ``<prefix><job_id>/outputs/<name>``, collected after the job.

:func:`staging_layout` computes the keys; the step kind turns keys into what its service reads
(``wasb://`` URIs, SAS URLs), and the remote step base uploads, downloads and deletes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_amlpipe.data.names import validate_key
from airflow_provider_amlpipe.errors import ConfigurationError

DEFAULT_STAGING_PREFIX = "amlpipe-staging/"
STAGING_DATASTORE_FIELD = "staging_datastore"
STAGING_PREFIX_FIELD = "staging_prefix"


@dataclass(frozen=True)
class StagingSettings:
    """A compute connection's staging settings: ``extra.staging_datastore`` and ``extra.staging_prefix``.

    ``datastore`` is the connection id of an ``amlpipe_azure_blob`` datastore the service can
    read and write; ``None`` means "the step's own datastore, if it is on Blob". ``prefix`` is
    empty or ends with ``/``.
    """

    datastore: str | None = None
    prefix: str = DEFAULT_STAGING_PREFIX


def staging_settings(conn_id: str, extra: Mapping[str, Any]) -> StagingSettings:
    """Read and check the staging settings of the compute connection ``conn_id``."""
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
    files must be uploaded. ``is_file``: the input is one file (a file ``DataPath``), which a job
    gets as a file rather than as a folder.
    """

    base: str
    files: tuple[str, ...]
    in_place: bool
    is_file: bool = False


@dataclass(frozen=True)
class StagedInput:
    """One input in the staging container: its folder's key and its files, relative to it."""

    folder: str
    files: tuple[str, ...]
    is_file: bool = False

    def file_keys(self) -> list[tuple[str, str]]:
        """``(relative path, key)`` of each file."""
        return [(rel, _join(self.folder, rel)) for rel in self.files]

    @property
    def key(self) -> str:
        """What the input stands for: its file's key for a file input, else its folder's."""
        return _join(self.folder, self.files[0]) if self.is_file else self.folder


@dataclass(frozen=True)
class Upload:
    """A local file to upload to ``key`` before the job is submitted."""

    local_path: str
    key: str


@dataclass(frozen=True)
class StagingLayout:
    """The keys of one job in the staging container.

    ``inputs``: where each input's files are. ``uploads``: what must be uploaded first.
    ``outputs``: each output's folder, which the job fills and the step collects.
    """

    job_prefix: str
    inputs: dict[str, StagedInput]
    uploads: tuple[Upload, ...]
    outputs: dict[str, str]


def _join(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel}" if base.strip("/") else rel


def staging_layout(
    prefix: str, job_id: str, inputs: Mapping[str, InputSource], outputs: Sequence[str]
) -> StagingLayout:
    """Lay out a job's inputs and outputs under ``<prefix><job_id>/`` of the staging container."""
    job_prefix = job_staging_prefix(prefix, job_id)
    staged: dict[str, StagedInput] = {}
    uploads: list[Upload] = []
    for name, source in inputs.items():
        folder = source.base.strip("/") if source.in_place else f"{job_prefix}/inputs/{name}"
        if not source.in_place:
            uploads.extend(Upload(_join(source.base, rel), _join(folder, rel)) for rel in source.files)
        staged[name] = StagedInput(folder, source.files, source.is_file)
    output_folders = {name: f"{job_prefix}/outputs/{name}" for name in outputs}
    return StagingLayout(job_prefix, staged, tuple(uploads), output_folders)
