"""The Python script step: run ``script_name`` from ``source_directory`` with arguments.

On this worker (the default), or on an existing Azure VM through Run Command (:class:`VmTarget`):
then :meth:`PythonScriptStep.remote_spec` uploads the code and a manifest to the staging container
and the VM's bootstrap (:mod:`~airflow_provider_amlpipe.compute.azure_vm_bootstrap`) lays the run
out in its working folder as ``code/`` (the ``source_directory`` files), ``inputs/<name>``,
``outputs/<name>``, with ``{inputs.X}`` / ``{outputs.X}`` and the run context pointing there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_amlpipe.compute.base import Invocation
from airflow_provider_amlpipe.compute.environment import PythonEnvironment
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher, code_digest, list_tree
from airflow_provider_amlpipe.runtime import CONTEXT_ENV
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps.config import check_source_folder, resolve_path, source_folder
from airflow_provider_amlpipe.steps.runner import StepWorkspace

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.staging import StagingLayout
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore

KIND = "python_script"
#: The blob (in the job's staging folder) that tells the VM what to download and run.
MANIFEST_NAME = "vm-job.json"


@dataclass(frozen=True)
class VmTarget:
    """Where a script step runs remotely: an existing Linux VM (not part of the fingerprint)."""

    vm_name: str
    resource_group: str | None = None
    #: Seconds after which the run is stopped on the VM (``None``: no limit).
    timeout_seconds: float | None = None


@dataclass
class PythonScriptStep:
    """A script, its folder, arguments, params and environment: everything that defines a run."""

    script_name: str
    source_directory: str | None
    arguments: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    environment: PythonEnvironment = field(default_factory=PythonEnvironment)
    #: What relative paths are relative to (the DAG file's folder); ``None``: the current directory.
    base_dir: str | None = None
    #: Run on this VM instead of this worker.
    vm: VmTarget | None = None
    #: The run context's ``step_id`` on a VM (``dag.task``).
    step_id: str = "amlpipe"
    #: Runs on a remote compute's node (a sweep's trial on Azure Batch), with ``environment.interpreter``
    #: (default ``python3``) there: the fingerprint names that command instead of probing this worker's.
    on_node: bool = False

    output_hint = "did the script write into the folder passed as {{outputs.{name}}} (runtime.output_path)?"

    @property
    def folder(self) -> Path | None:
        return source_folder(self.source_directory, self.base_dir)

    @property
    def script_path(self) -> Path:
        folder = self.folder
        return (folder / self.script_name) if folder else resolve_path(self.script_name, self.base_dir)

    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        folder = self.folder
        check_source_folder(self.source_directory, folder, "the script")
        if not isinstance(self.script_name, str) or not self.script_name:
            raise ConfigurationError("script_name", "no script given", "name the script, such as 'train.py'")
        if not self.script_path.is_file():
            where = f" in source_directory {str(folder)!r}" if folder else f" ({str(self.script_path)!r})"
            raise ConfigurationError(
                "script_name",
                f"script {self.script_name!r} does not exist{where}",
                "correct the name or add the script",
            )
        if self.vm is not None and self.environment.requirements is not None:
            raise ConfigurationError(
                "environment.requirements",
                "a requirements venv is built on this worker only, not on a VM",
                "install the packages on the VM (they are then used by its interpreter), or use compute='local'",
            )
        args.check(self.arguments, input_names, output_names)

    @property
    def vm_python(self) -> str:
        """The interpreter command on the VM or node (``environment.interpreter``, default ``python3``)."""
        return str(self.environment.interpreter or "python3")

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        folder = self.folder
        return {
            "kind": KIND,
            "code": code_digest(hasher, folder, self.script_path),
            "entry": self.script_name,
            "arguments": self.arguments,
            "params": self.params,
            # On a VM its interpreter is not probed from here: the command names it.
            "environment": self._environment_identity(folder),
        }

    def _environment_identity(self, folder: Path | None) -> dict[str, Any]:
        # Remotely the interpreter is not probed from here: the command names it.
        if self.vm is not None:
            return {"vm_python": self.vm_python}
        if self.on_node:
            return {"node_python": self.vm_python}
        return self.environment.identity(folder)

    def invocation(self, workspace: StepWorkspace) -> Invocation:
        python = self.environment.python(self.folder)
        argv = [python, str(self.script_path), *args.expand(self.arguments, workspace.inputs, workspace.outputs)]
        env = {CONTEXT_ENV: str(workspace.context_file)}
        if self.folder is not None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.folder), os.environ.get("PYTHONPATH")) if p)
        # The script runs outside its folder so files it writes cannot change its own fingerprint.
        return Invocation(argv=argv, cwd=workspace.root, env=env)

    # -- on an Azure VM -------------------------------------------------------------------------------

    def code_files(self) -> dict[str, Path]:
        """What the VM gets under ``code/``: ``source_directory`` minus ignored files, or the lone script."""
        folder = self.folder
        if folder is None:
            return {self.script_path.name: self.script_path}
        files = {rel: folder / rel for rel in list_tree(folder, honour_ignore_files=True)}
        files.setdefault(Path(self.script_name).as_posix(), self.script_path)  # even if an ignore file names it
        return files

    def remote_spec(self, layout: StagingLayout, store: AzureBlobDatastore, job_id: str) -> dict[str, Any]:
        """Upload the code and the manifest (per-file read SAS URLs, the run's layout); the job spec.

        The spec's ``manifest_url``, ``upload_url`` and ``params`` reach the VM only as Run Command
        parameters (see :mod:`~airflow_provider_amlpipe.compute.azure_vm_job`).
        """
        from airflow_provider_amlpipe.data.blob_sas import ContainerSigner
        from airflow_provider_amlpipe.steps.remote_staging import upload_code

        if self.vm is None:
            raise ConfigurationError("vm_name", "no VM given for a remote Python script step", "pass vm_name='<VM>'")
        signer = ContainerSigner(store.container_client)
        files: list[dict[str, str]] = []
        files.extend(
            {"url": url, "path": f"code/{rel}"}
            for rel, url in upload_code(self.code_files(), store, layout.job_prefix, signer)
        )
        paths: dict[str, str] = {}
        for name, staged in layout.inputs.items():
            target = f"inputs/{name}"
            files.extend({"url": signer.blob_url(key), "path": f"{target}/{rel}"} for rel, key in staged.file_keys())
            paths[f"inputs.{name}"] = f"{target}/{staged.files[0]}" if staged.is_file else target
        outputs = []
        for name, prefix in layout.outputs.items():
            paths[f"outputs.{name}"] = f"outputs/{name}"
            outputs.append({"name": name, "path": f"outputs/{name}", "prefix": prefix})
        script = f"code/{self.script_name}" if self.folder is not None else f"code/{self.script_path.name}"
        manifest = {
            "version": 1,
            "step_id": self.step_id,
            "script": script,
            "pythonpath": ["code"] if self.folder is not None else [],
            "arguments": [_argument_parts(a, paths) for a in self.arguments],
            "files": files,
            "output_dirs": [o["path"] for o in outputs],
            "outputs": outputs,
            "context": {
                "inputs": {k.split(".", 1)[1]: v for k, v in paths.items() if k.startswith("inputs.")},
                "outputs": {k.split(".", 1)[1]: v for k, v in paths.items() if k.startswith("outputs.")},
            },
        }
        manifest_key = f"{layout.job_prefix}/{MANIFEST_NAME}"
        store.write_bytes(manifest_key, json.dumps(manifest, indent=1).encode())
        return {
            "vm_name": self.vm.vm_name,
            "resource_group": self.vm.resource_group,
            "python": self.vm_python,
            "timeout_seconds": self.vm.timeout_seconds,
            "manifest_url": signer.blob_url(manifest_key),
            "upload_url": signer.container_url(write=True),
            "params": self.params,
            "outputs": dict(layout.outputs),
        }


def _argument_parts(argument: str, paths: dict[str, str]) -> list[Any]:
    """An argument as text and ``{"path": <relative path>}`` parts, which the VM makes absolute."""
    parts: list[Any] = []
    position = 0
    for match in args.PLACEHOLDER.finditer(argument):
        if match.start() > position:
            parts.append(argument[position : match.start()])
        parts.append({"path": paths[f"{match.group(1)}.{match.group(2)}"]})
        position = match.end()
    if position < len(argument) or not parts:
        parts.append(argument[position:])
    return parts
