"""The Azure Batch step: an executable from ``source_directory`` run with arguments, on a pool's
node (remote compute) or as a local process (``compute="local"``) with the same files and arguments.

On a node, the task's working directory holds the ``source_directory`` files (resource files),
each input under ``inputs/<name>`` and an empty ``outputs/<name>`` per output; ``{inputs.X}`` and
``{outputs.X}`` become those relative paths. Locally, the executable runs in a copy of
``source_directory`` with the placeholders as the run's local paths.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_amlpipe.compute.base import Invocation
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher, code_digest, list_tree, tree_digest
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps.config import check_source_folder, source_folder
from airflow_provider_amlpipe.steps.runner import StepWorkspace

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.staging import StagingLayout
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore

KIND = "azure_batch"
#: Above this many files, an input reaches the node as one container-prefix resource file
#: (its blob names kept below ``inputs/<name>``) instead of one resource file per file.
MAX_FILE_RESOURCES = 100


@dataclass(frozen=True)
class PoolSpec:
    """The pool a Batch step runs on, and whether (and how) the step creates it."""

    pool_id: str
    create: bool = False
    vm_size: str | None = None
    #: ``{"publisher", "offer", "sku", "version"}`` of the node image.
    image: dict[str, str] | None = None
    node_agent_sku_id: str | None = None
    target_compute_nodes: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "pool_id": self.pool_id,
            "create": self.create,
            "vm_size": self.vm_size,
            "image": self.image,
            "node_agent_sku_id": self.node_agent_sku_id,
            "target_compute_nodes": self.target_compute_nodes,
        }


@dataclass
class AzureBatchStep:
    """An executable, its folder and arguments: what defines a run (the pool only says where)."""

    executable: str
    source_directory: str | None
    arguments: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    pool: PoolSpec | None = None
    delete_batch_job_after_finish: bool = True
    delete_batch_pool_after_finish: bool = False
    is_positive_exit_code_failure: bool = True
    run_task_as_admin: bool = False
    #: The task's display name (``dag.task``).
    job_name: str = "amlpipe"
    #: Where the executable runs: on this machine (checked there) or on a pool's node.
    local: bool = True
    #: What relative paths are relative to (the DAG file's folder); ``None``: the current directory.
    base_dir: str | None = None
    #: Files added to the node's working folder (relative path -> local file) that are not the step's
    #: code and not in its fingerprint: the launcher of a Python program of ours (steps/node_launch.py).
    extra_files: dict[str, Path] = field(default_factory=dict)

    output_hint = "did the executable write into the folder passed as {{outputs.{name}}}?"

    @property
    def folder(self) -> Path | None:
        return source_folder(self.source_directory, self.base_dir)

    @property
    def bundled(self) -> Path | None:
        """The executable's file in ``source_directory``, if it is one of its files."""
        folder = self.folder
        if folder is None:
            return None
        candidate = folder / self.executable
        return candidate if candidate.is_file() else None

    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        folder = self.folder
        check_source_folder(self.source_directory, folder, "the executable and its files")
        if self.local and self.bundled is None and shutil.which(self.executable) is None:
            where = f"in source_directory {str(folder)!r} nor " if folder else ""
            raise ConfigurationError(
                "executable",
                f"{self.executable!r} is neither {where}on this machine's PATH (compute='local' runs it here)",
                "ship the executable in source_directory, or run the step on an Azure Batch pool",
            )
        args.check(self.arguments, input_names, output_names)

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        folder = self.folder
        bundled = self.bundled
        if bundled is not None:
            code = code_digest(hasher, folder, bundled)
        elif folder is not None:
            code = tree_digest(hasher.hash_tree(folder, honour_ignore_files=True))
        else:
            code = None
        return {
            "kind": KIND,
            "code": code,
            "executable": self.executable,
            "arguments": self.arguments,
            "params": self.params,
            "run_as_admin": self.run_task_as_admin,
            "positive_exit_code_failure": self.is_positive_exit_code_failure,
        }

    def code_files(self) -> dict[str, Path]:
        """What the node (or the local run) gets in its working folder: ``source_directory`` minus ignored files."""
        folder = self.folder
        files = {} if folder is None else {rel: folder / rel for rel in list_tree(folder, honour_ignore_files=True)}
        return {**files, **self.extra_files}

    # -- on this machine -----------------------------------------------------------------------------

    def invocation(self, workspace: StepWorkspace) -> Invocation:
        # As on a node: the executable runs in a folder holding a copy of source_directory.
        wd = workspace.root / "wd"
        for rel, path in self.code_files().items():
            (wd / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, wd / rel)
        wd.mkdir(parents=True, exist_ok=True)
        bundled = self.bundled
        program = str(wd / self.executable) if bundled is not None else self.executable
        argv = [program, *args.expand(self.arguments, workspace.inputs, workspace.outputs)]
        return Invocation(argv=argv, cwd=wd, env={"AZ_BATCH_TASK_WORKING_DIR": str(wd)})

    # -- on a pool's node ------------------------------------------------------------------------

    def remote_spec(self, layout: StagingLayout, store: AzureBlobDatastore, job_id: str) -> dict[str, Any]:
        """The Batch task: resource files (code and inputs), output files, the command's parts."""
        from airflow_provider_amlpipe.data.blob_sas import ContainerSigner
        from airflow_provider_amlpipe.steps.remote_staging import upload_code

        if self.pool is None:
            raise ConfigurationError("pool_id", "no pool given for a remote Batch step", "pass pool_id='<pool>'")
        signer = ContainerSigner(store.container_client)
        resources: list[dict[str, Any]] = []
        code = self.code_files()
        for rel, url in upload_code(code, store, layout.job_prefix, signer):
            mode = "0755" if rel == self.executable or os.access(code[rel], os.X_OK) else None
            resources.append(_file_resource(url, rel, mode))
        paths: dict[str, str] = {}
        listing_url: str | None = None
        for name, staged in layout.inputs.items():
            target = f"inputs/{name}"
            files = staged.file_keys()
            if staged.is_file:
                rel, key = files[0]
                resources.append(_file_resource(signer.blob_url(key), f"{target}/{rel}"))
                paths[f"inputs.{name}"] = f"{target}/{rel}"
            elif len(files) <= MAX_FILE_RESOURCES:
                resources.extend(_file_resource(signer.blob_url(key), f"{target}/{rel}") for rel, key in files)
                paths[f"inputs.{name}"] = target
            else:
                # The service keeps each blob's full name below file_path: the input is that folder.
                listing_url = listing_url or signer.container_url(read=True, list=True)
                prefix = staged.folder.strip("/")
                resources.append(
                    {
                        "storage_container_url": listing_url,
                        "blob_prefix": f"{prefix}/" if prefix else "",
                        "file_path": target,
                    }
                )
                paths[f"inputs.{name}"] = f"{target}/{prefix}" if prefix else target
        write_url = signer.container_url(write=True)
        outputs = []
        for name, key in layout.outputs.items():
            paths[f"outputs.{name}"] = f"outputs/{name}"
            outputs.append({"file_pattern": f"outputs/{name}/**/*", "container_url": write_url, "path": key})
        return {
            "pool": self.pool.to_dict(),
            "display_name": self.job_name,
            "executable": self.executable,
            "bundled": self.bundled is not None,
            "arguments": list(self.arguments),
            "paths": paths,
            "output_dirs": [f"outputs/{name}" for name in layout.outputs],
            "resource_files": resources,
            "output_files": outputs,
            "delete_job": self.delete_batch_job_after_finish,
            "delete_pool": self.delete_batch_pool_after_finish,
            "positive_exit_code_failure": self.is_positive_exit_code_failure,
            "run_as_admin": self.run_task_as_admin,
        }


def _file_resource(url: str, file_path: str, mode: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"http_url": url, "file_path": file_path}
    if mode:
        resource["file_mode"] = mode
    return resource
