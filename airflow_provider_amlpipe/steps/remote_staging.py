"""A remote step's data: stage inputs in a Blob container, collect outputs, clean up.

Plain Python (no Airflow). The remote step base picks the staging container
(:func:`choose_staging`), uploads what the job cannot reach otherwise (:func:`stage_inputs`),
submits the job, and afterwards downloads its outputs (:func:`collect_outputs`) and deletes the
job's staging folder (:func:`remove_staging`). Key layout: :mod:`airflow_provider_amlpipe.compute.staging`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from airflow_provider_amlpipe.compute.staging import (
    STAGING_DATASTORE_FIELD,
    InputSource,
    StagingLayout,
    StagingSettings,
    job_staging_prefix,
    staging_layout,
)
from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.errors import ConfigurationError, NotFoundError, StepFailedError
from airflow_provider_amlpipe.steps.inputs import ResolvedInput
from airflow_provider_amlpipe.steps.runner import StepLog, StepPlan

if TYPE_CHECKING:  # the Azure SDK takes 0.4 s to import, and every DAG file with a step imports this module
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
    from airflow_provider_amlpipe.data.blob_sas import ContainerSigner


def _on_blob(store: Datastore) -> TypeGuard[AzureBlobDatastore]:
    """Whether ``store`` is an Azure Blob datastore (its module, and the SDK, load only when one is used)."""
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore

    return isinstance(store, AzureBlobDatastore)


@dataclass(frozen=True)
class Staging:
    """The Blob container (datastore ``conn_id``) a job reads its inputs from and writes its outputs to."""

    conn_id: str
    store: AzureBlobDatastore
    prefix: str

    def job_prefix(self, job_id: str) -> str:
        return job_staging_prefix(self.prefix, job_id)


def choose_staging(
    settings: StagingSettings,
    compute: str,
    step_datastore: str,
    step_store: Datastore,
    stores: Callable[[str], Datastore],
    *,
    kind: str,
    service: str,
) -> Staging:
    """The staging container: the connection's ``staging_datastore``, else the step's datastore if it
    is on Blob; else :class:`ConfigurationError` (raised before anything is uploaded or submitted).

    ``kind`` names the connection ("ADLA") and ``service`` who reads the container ("an ADLA
    account") in errors.
    """
    fix = (
        f"set extra.{STAGING_DATASTORE_FIELD} on the {kind} connection to an amlpipe_azure_blob connection"
        f" {service} can read (or keep the step's datastore on Azure Blob)"
    )
    field = f"compute (connection {compute!r}) extra.{STAGING_DATASTORE_FIELD}"
    if settings.datastore:
        store = stores(settings.datastore)
        if not _on_blob(store):
            raise ConfigurationError(
                field, f"{settings.datastore!r} is {store.describe()}, which {service} cannot read", fix
            )
        return Staging(settings.datastore, store, settings.prefix)
    if _on_blob(step_store):
        return Staging(step_datastore, step_store, settings.prefix)
    raise ConfigurationError(
        field,
        f"not set, and the step's datastore is {step_store.describe()}: {service} reads Blob storage, never a"
        " worker's files",
        fix,
    )


def refuse_local_inputs(plan: StepPlan, kind: str, service: str) -> None:
    """Refuse inputs that are not on Azure Blob storage, for services that read only their own storage."""
    for name, item in plan.inputs.items():
        if not _on_blob(item.store):
            raise ConfigurationError(
                f"inputs[{name!r}]",
                f"is on {item.store.describe()}, which {service} cannot read: a {kind} step's data must be on"
                " Azure storage",
                "put the input on an amlpipe_azure_blob datastore (an upstream step's output: set that step's"
                " datastore=), or run this step with compute='local'",
            )


def _same_container(store: Datastore, staging: Staging) -> bool:
    return _on_blob(store) and store.container_url == staging.store.container_url


def _relative_files(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()))


def input_source(item: ResolvedInput, staging: Staging, scratch: Path) -> InputSource:
    """Where ``item``'s files are: in the staging container already, or in a local folder.

    Inputs elsewhere are staged locally first (in place for local datastores, downloaded into
    ``scratch`` otherwise) so they can be uploaded.
    """
    is_file = item.ref is None and item.kind == "file"
    if _same_container(item.store, staging):
        if item.ref is not None:
            manifest = objects.read_manifest(item.store, item.ref.digest)
            return InputSource(objects.data_prefix(item.ref.digest), tuple(f.path for f in manifest.files), True)
        if is_file:
            parent, _, name = item.key.rpartition("/")
            return InputSource(parent, (name,), True, is_file=True)
        files = tuple(sorted(key[len(item.key) + 1 :] for key in item.store.list(item.key)))
        return InputSource(item.key, files, True)
    local = item.stage(scratch)
    if local.is_file():
        return InputSource(str(local.parent), (local.name,), False, is_file=True)
    return InputSource(str(local), _relative_files(local), False)


def stage_inputs(
    plan: StepPlan, staging: Staging, job_id: str, scratch: Path, log: StepLog, kind: str
) -> StagingLayout:
    """Lay out the job's keys and upload the inputs that are not in the staging container yet."""
    sources = {name: input_source(item, staging, scratch / name) for name, item in plan.inputs.items()}
    layout = staging_layout(staging.prefix, job_id, sources, [o.name for o in plan.outputs])
    for name, source in sources.items():
        how = "referenced in place" if source.in_place else f"uploaded ({len(source.files)} files)"
        log.info("%s input %r: %s at %s", kind, name, how, staging.store.url(layout.inputs[name].key))
    for upload in layout.uploads:
        staging.store.upload_file(Path(upload.local_path), upload.key)
    return layout


def collect_outputs(
    store: Datastore,
    outputs: Mapping[str, str],
    dest: Path,
    *,
    kind: str,
    hint: str = "",
    optional: Collection[str] = (),
) -> dict[str, Path]:
    """Download each output folder the job wrote into ``dest/<name>``.

    A required output the job wrote nothing to fails the step, naming where it should be
    (``hint``, e.g. "did the script OUTPUT to @@name@@?"); an ``optional`` one comes back empty.
    """
    folders: dict[str, Path] = {}
    for name, folder in outputs.items():
        try:
            keys = list(store.list(folder))
        except NotFoundError:
            keys = []
        target = dest / name
        target.mkdir(parents=True, exist_ok=True)
        if not keys and name not in optional:
            more = f" ({hint.format(name=name)})" if hint else ""
            raise StepFailedError(f"output {name!r}: the {kind} job wrote nothing to {store.url(folder)}/{more}")
        for key in keys:
            store.download_file(key, target / (key[len(folder) + 1 :] if key != folder else name))
        folders[name] = target
    return folders


def upload_code(
    files: Mapping[str, Path], store: AzureBlobDatastore, job_prefix: str, signer: ContainerSigner
) -> list[tuple[str, str]]:
    """Upload a step's code files (relative path -> local file) under ``<job_prefix>/code/``, deleted
    with the job's staging folder; each one's relative path and a URL a node can read it from."""
    uploaded = []
    for rel, path in files.items():
        key = f"{job_prefix}/code/{rel}"
        store.upload_file(path, key)
        uploaded.append((rel, signer.blob_url(key)))
    return uploaded


def remove_staging(store: Datastore, job_prefix: str, log: StepLog) -> None:
    """Delete a job's staging folder; best effort (a failure is logged, never raised)."""
    try:
        keys = list(store.list(job_prefix))
        for key in keys:
            store.delete(key)
    except Exception as exc:  # cleanup must not hide the step's own result or error
        log.warning("could not delete the staging folder %s: %s", job_prefix, exc)
        return
    if keys:
        log.info("deleted the staging folder %s (%d blobs)", job_prefix, len(keys))


def staging_resume(staging: Staging, layout_outputs: Mapping[str, str], job_prefix: str) -> dict[str, Any]:
    """What a resumed task needs to collect outputs and clean up (connection ids and keys; no secrets)."""
    return {"datastore": staging.conn_id, "prefix": job_prefix, "outputs": dict(layout_outputs)}
