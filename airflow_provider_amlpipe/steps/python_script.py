"""The Python script step: run ``script_name`` from ``source_directory`` with arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.compute.base import Invocation
from airflow_provider_amlpipe.compute.environment import PythonEnvironment
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.reuse.hashing import Hasher, code_digest
from airflow_provider_amlpipe.runtime import CONTEXT_ENV
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps.config import resolve_path
from airflow_provider_amlpipe.steps.runner import StepWorkspace

KIND = "python_script"


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

    @property
    def folder(self) -> Path | None:
        return resolve_path(self.source_directory, self.base_dir) if self.source_directory else None

    @property
    def script_path(self) -> Path:
        folder = self.folder
        return (folder / self.script_name) if folder else resolve_path(self.script_name, self.base_dir)

    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        folder = self.folder
        if folder is not None and not folder.is_dir():
            where = "" if str(folder) == self.source_directory else f" ({str(folder)!r})"
            raise ConfigurationError(
                "source_directory",
                f"{self.source_directory!r}{where} is not a folder",
                "point it at the folder holding the script (a relative path is relative to the DAG file's folder)",
            )
        if not isinstance(self.script_name, str) or not self.script_name:
            raise ConfigurationError("script_name", "no script given", "name the script, such as 'train.py'")
        if not self.script_path.is_file():
            where = f" in source_directory {str(folder)!r}" if folder else f" ({str(self.script_path)!r})"
            raise ConfigurationError(
                "script_name",
                f"script {self.script_name!r} does not exist{where}",
                "correct the name or add the script",
            )
        args.check(self.arguments, input_names, output_names)

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        folder = self.folder
        return {
            "kind": KIND,
            "code": code_digest(hasher, folder, self.script_path),
            "entry": self.script_name,
            "arguments": self.arguments,
            "params": self.params,
            "environment": self.environment.identity(folder),
        }

    def invocation(self, workspace: StepWorkspace) -> Invocation:
        python = self.environment.python(self.folder)
        argv = [python, str(self.script_path), *args.expand(self.arguments, workspace.inputs, workspace.outputs)]
        env = {CONTEXT_ENV: str(workspace.context_file)}
        if self.folder is not None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.folder), os.environ.get("PYTHONPATH")) if p)
        # The script runs outside its folder so files it writes cannot change its own fingerprint.
        return Invocation(argv=argv, cwd=workspace.root, env=env)
