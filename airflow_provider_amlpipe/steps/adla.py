"""The ADLA step: a U-SQL script with ``@@name@@`` placeholders, run locally on DuckDB.

As in AML's AdlaStep, ``@@name@@`` in the script becomes the path of the input or output of that
name, or the value of the parameter of that name. An output's path is a file named after the
output inside its output folder (what ADLA's PipelineData path was); an input that is a folder
holding exactly one file (the output of an upstream ADLA step) stands for that file.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_amlpipe.compute.base import Invocation
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher, code_digest
from airflow_provider_amlpipe.steps.config import check_source_folder, resolve_path, source_folder
from airflow_provider_amlpipe.steps.runner import StepWorkspace

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.staging import StagingLayout
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore

KIND = "adla_usql"


def _script_path(path: Path) -> str:
    # U-SQL paths are URIs (percent-decoded by the compiler): a literal '%' in a file name must be escaped.
    return str(path).replace("%", "%25")


def local_input(path: Path) -> Path:
    """What an input stands for: a folder holding exactly one file (an upstream U-SQL step's output) is that file."""
    files = [p for p in path.iterdir() if p.is_file()] if path.is_dir() else []
    return files[0] if len(files) == 1 else path


def placeholder_values(workspace: StepWorkspace, params: dict[str, Any]) -> dict[str, str]:
    """What each ``@@name@@`` stands for in this run."""
    values = {name: str(value) for name, value in params.items()}
    for name, path in workspace.inputs.items():
        values[name] = _script_path(local_input(path))
    for name, folder in workspace.outputs.items():
        values[name] = _script_path(folder / name)
    return values


@dataclass
class AdlaScriptStep:
    """A U-SQL script, its folder, parameters and the ADLA settings that can change a result."""

    script_name: str
    source_directory: str | None
    params: dict[str, Any] = field(default_factory=dict)
    runtime_version: str | None = None
    #: ``@@JobInfo.Name`` / ``.Priority`` of a local run (not fingerprinted: they name the run, not the result).
    job_name: str | None = None
    priority: int | None = None
    #: What relative paths are relative to (the DAG file's folder); ``None``: the current directory.
    base_dir: str | None = None
    #: The ADLA job's AUs (remote compute only; not fingerprinted: it changes the speed, not the result).
    degree_of_parallelism: int | None = None

    output_hint = 'did the script OUTPUT to "@@{name}@@"?'

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
        if not self.script_path.is_file():
            raise ConfigurationError(
                "script_name",
                f"U-SQL script {self.script_name!r} does not exist ({str(self.script_path)!r})",
                "correct the name or add the script",
            )
        clashes = (set(self.params) & set(input_names)) | (set(self.params) & set(output_names))
        if clashes:
            raise ConfigurationError(
                "params", f"{sorted(clashes)} are also input/output names", "rename them: @@name@@ must be unambiguous"
            )

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        folder = self.folder
        return {
            "kind": KIND,
            "code": code_digest(hasher, folder, self.script_path),
            "entry": self.script_name,
            "params": self.params,
            "settings": {"runtime_version": self.runtime_version},
        }

    def render(self, workspace: StepWorkspace) -> str:
        """The script with every ``@@name@@`` replaced by this run's local paths and parameters."""
        return self.render_with(placeholder_values(workspace, self.params))

    def render_with(self, values: Mapping[str, str]) -> str:
        """The script with every ``@@name@@`` replaced by ``values`` (e.g. an ADLA job's ``wasb://`` URIs)."""
        from airflow_provider_amlpipe.usql import substitute

        text = self.script_path.read_text(encoding="utf-8")
        return substitute(text, values)

    def remote_values(self, layout: StagingLayout, store: AzureBlobDatastore, scheme: str = "wasb") -> dict[str, str]:
        """What each ``@@name@@`` stands for in a remote job: the staged data's URIs (``scheme``), the parameters."""
        values = {name: str(value) for name, value in self.params.items()}
        for name, staged in layout.inputs.items():
            # A folder holding exactly one file (e.g. an upstream ADLA step's output) stands for that file.
            files = staged.file_keys()
            values[name] = store.wasb_uri(files[0][1] if len(files) == 1 else staged.key, scheme)
        for name, folder in layout.outputs.items():
            values[name] = store.wasb_uri(f"{folder}/{name}", scheme)
        return values

    def remote_spec(self, layout: StagingLayout, store: AzureBlobDatastore, job_id: str) -> dict[str, Any]:
        """The ADLA job: the script with ``wasb://`` URIs of the staged inputs and outputs."""
        values = self.remote_values(layout, store)
        return {
            "script": self.render_with(values),
            "name": self.job_name or "amlpipe",
            "degree_of_parallelism": self.degree_of_parallelism,
            "priority": self.priority,
            "runtime_version": self.runtime_version,
        }

    def invocation(self, workspace: StepWorkspace) -> Invocation:
        script = workspace.root / self.script_path.name
        script.write_text(self.render(workspace), encoding="utf-8")
        base_dir = self.script_path.parent
        argv = [sys.executable, "-m", "airflow_provider_amlpipe.usql", "run", str(script), "--base-dir", str(base_dir)]
        if self.job_name:
            argv += ["--job-name", self.job_name]
        if self.priority is not None:
            argv += ["--job-priority", str(self.priority)]
        return Invocation(argv=argv, cwd=workspace.root)
