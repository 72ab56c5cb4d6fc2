"""The Databricks step: a notebook, a Python script or a jar, as AML's DatabricksStep ran them.

Locally (``compute="local"``) the task runs on PySpark in local mode through
:mod:`airflow_provider_amlpipe.databricks` (``python -m airflow_provider_amlpipe.databricks.step``, started
by the step's local process backend like any step's command). The pipeline's data reaches it as AML
passed it: a notebook gets one widget per input and output, named after it, holding its local path; a
script or a jar gets ``--NAME path`` arguments after its own parameters.

The fingerprint covers the task kind, the notebook / script / jar content, the parameters and the
main class; not the cluster (where and how fast it runs).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_amlpipe.compute.base import Invocation
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher, code_digest, sha256_json, tree_digest
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps.config import check_source_folder, resolve_path, source_folder
from airflow_provider_amlpipe.steps.runner import StepWorkspace

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.staging import StagingLayout
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore

KIND = "databricks"
NOTEBOOK, SCRIPT, SCRIPT_PATH, JAR = "notebook", "python_script", "python_script_path", "jar"
#: The argument naming each task kind, as in AML's DatabricksStep.
TASK_FIELDS = {
    NOTEBOOK: "notebook_path",
    SCRIPT: "python_script_name",
    SCRIPT_PATH: "python_script_path",
    JAR: "main_class_name",
}
SPEC_FILE = "databricks-task.json"
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


@dataclass
class DatabricksStep:
    """What defines a Databricks run: the task kind, its code, its parameters (the cluster only says where)."""

    task_kind: str
    notebook_path: str | None = None
    notebook_params: dict[str, str] = field(default_factory=dict)
    python_script_name: str | None = None
    source_directory: str | None = None
    python_script_path: str | None = None
    python_script_params: list[str] = field(default_factory=list)
    main_class_name: str | None = None
    jar_params: list[str] = field(default_factory=list)
    #: Local jar files; the first holds the main class (locally: the jar ``spark-submit`` runs).
    jar_libraries: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    #: Cluster settings that also apply locally (not part of the fingerprint).
    spark_conf: dict[str, str] = field(default_factory=dict)
    spark_env_variables: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int | None = None
    #: What relative paths are relative to (the DAG file's folder); ``None``: the current directory.
    base_dir: str | None = None
    job_name: str = "amlpipe"

    output_hint = "did the task write into the path it got as the widget / --argument {name}?"

    # -- paths ------------------------------------------------------------------------------------

    @property
    def folder(self) -> Path | None:
        return source_folder(self.source_directory, self.base_dir)

    @property
    def code_path(self) -> Path:
        """The notebook, the script or the main jar on this machine."""
        if self.task_kind == NOTEBOOK:
            return resolve_path(str(self.notebook_path), self.base_dir)
        if self.task_kind == SCRIPT:
            folder = self.folder
            name = str(self.python_script_name)
            return folder / name if folder is not None else resolve_path(name, self.base_dir)
        if self.task_kind == SCRIPT_PATH:
            return resolve_path(str(self.python_script_path), self.base_dir)
        return resolve_path(self.jar_libraries[0], self.base_dir)

    @property
    def library_paths(self) -> list[Path]:
        return [resolve_path(lib, self.base_dir) for lib in self.jar_libraries[1:]]

    @property
    def arguments(self) -> list[str]:
        return self.jar_params if self.task_kind == JAR else self.python_script_params

    # -- the StepDefinition protocol --------------------------------------------------------------

    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        folder = self.folder
        check_source_folder(self.source_directory, folder, "the script")
        field_name = "jar_libraries" if self.task_kind == JAR else TASK_FIELDS[self.task_kind]
        path = self.code_path
        if not path.is_file():
            raise ConfigurationError(
                field_name,
                f"{str(path)!r} does not exist on this machine (compute='local' runs it here)",
                "correct the path (relative to the DAG file's folder, or source_directory for python_script_name)",
            )
        for lib in self.library_paths:
            if not lib.is_file():
                raise ConfigurationError("jar_libraries", f"jar {str(lib)!r} does not exist", "correct the path")
        if self.task_kind == NOTEBOOK:
            from airflow_provider_amlpipe.databricks.notebook import NotebookError, read_notebook

            try:
                read_notebook(path)
            except NotebookError as error:
                raise ConfigurationError("notebook_path", str(error), "fix the notebook") from error
        args.check(self.arguments, input_names, output_names)

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        if self.task_kind == SCRIPT:
            code = code_digest(hasher, self.folder, self.code_path)
        else:
            files = [self.code_path, *self.library_paths]
            code = sha256_json([tree_digest(hasher.hash_files(p.parent, [p.name])) for p in files])
        return {
            "kind": KIND,
            "task": self.task_kind,
            "code": code,
            "entry": self.python_script_name if self.task_kind == SCRIPT else None,
            "notebook_params": self.notebook_params,
            "arguments": self.arguments,
            "main_class": self.main_class_name,
            "params": self.params,
        }

    def invocation(self, workspace: StepWorkspace) -> Invocation:
        workdir = workspace.root / "wd"
        spec: dict[str, Any] = {
            "workdir": str(workdir),
            "dbfs_root": str(workspace.root / "dbfs"),
            "env": self.spark_env_variables,
            "spark_conf": self.spark_conf,
            "timeout": self.timeout_seconds,
            "path": str(self.code_path),
        }
        data = {**{n: str(p) for n, p in workspace.inputs.items()}, **{n: str(p) for n, p in workspace.outputs.items()}}
        if self.task_kind == NOTEBOOK:
            # AML's way: one widget per input and output, named after it.
            spec.update(kind="notebook", params={**self.notebook_params, **data})
        else:
            argv = args.expand(self.arguments, workspace.inputs, workspace.outputs)
            for name, path in data.items():
                argv += [f"--{name}", path]
            spec.update(kind="jar" if self.task_kind == JAR else "python", args=argv)
            if self.task_kind == JAR:
                spec.update(main_class=self.main_class_name, libraries=[str(p) for p in self.library_paths])
        spec_file = workspace.root / SPEC_FILE
        spec_file.write_text(json.dumps(spec, indent=1), encoding="utf-8")
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "airflow_provider_amlpipe.databricks.step", str(spec_file)]
        # This very package, wherever it is imported from (a checkout, not only the installed one).
        path = os.pathsep.join(p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)
        return Invocation(argv=argv, cwd=workdir, env={"PYTHONPATH": path})

    # -- on a Databricks workspace ----------------------------------------------------------------

    def remote_spec(self, layout: StagingLayout, store: AzureBlobDatastore, job_id: str) -> dict[str, Any]:
        raise ConfigurationError(
            "compute",
            "running a Databricks step on a Databricks workspace is not supported yet",
            "use compute='local' (PySpark on this worker) until the Jobs API backend lands",
        )
