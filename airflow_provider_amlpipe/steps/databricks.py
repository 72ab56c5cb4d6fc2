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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_amlpipe.compute.base import Invocation
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher, code_digest, list_tree, sha256_json, tree_digest
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
    #: On a workspace: the run's cluster (``{"existing_cluster_id": ...}`` or ``{"new_cluster": {...}}``, Jobs
    #: API fields), ``libraries`` (Databricks library specs), how staged data is addressed (``abfss`` / ``wasbs``).
    cluster: dict[str, Any] = field(default_factory=dict)
    permit_cluster_restart: bool = False
    libraries: list[dict[str, Any]] = field(default_factory=list)
    uri_scheme: str = "abfss"
    #: The folder standing for DBFS on this worker (``compute="local"``): ``dbfs:/x`` is ``<dbfs_root>/x``, shared
    #: by every local Databricks step as a workspace's DBFS is; ``None``: a fresh folder per run.
    dbfs_root: str | None = None
    #: Digests of code that lives in the workspace (``python_script_path``, jars by workspace path), read
    #: through the API by the operator: a changed file there changes the fingerprint as a local one does.
    remote_code: dict[str, str] = field(default_factory=dict)

    output_hint = "did the task write into the path it got as the widget / --argument {name}?"

    # -- paths ------------------------------------------------------------------------------------

    @property
    def folder(self) -> Path | None:
        return source_folder(self.source_directory, self.base_dir)

    @property
    def code_path(self) -> Path:
        """The notebook, the script or the main jar on this machine."""
        if self.task_kind == NOTEBOOK:
            return self._local(str(self.notebook_path))
        if self.task_kind == SCRIPT:
            folder = self.folder
            name = str(self.python_script_name)
            return folder / name if folder is not None else resolve_path(name, self.base_dir)
        if self.task_kind == SCRIPT_PATH:
            return self._local(str(self.python_script_path))
        return self._local(self.jar_libraries[0])

    @property
    def library_paths(self) -> list[Path]:
        return [self._local(lib) for lib in self.jar_libraries[1:] if lib not in self.remote_code]

    def _local(self, path: str) -> Path:
        """Where a code path is on this worker: ``dbfs:/x`` under the local DBFS root, else a file path."""
        if path.startswith("dbfs:") and self.dbfs_root is not None:
            return Path(self.dbfs_root, path[len("dbfs:") :].lstrip("/"))
        return resolve_path(path, self.base_dir)

    @property
    def arguments(self) -> list[str]:
        return self.jar_params if self.task_kind == JAR else self.python_script_params

    # -- the StepDefinition protocol --------------------------------------------------------------

    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        folder = self.folder
        check_source_folder(self.source_directory, folder, "the script")
        field_name = "jar_libraries" if self.task_kind == JAR else TASK_FIELDS[self.task_kind]
        path = self.code_path
        if self._code_ref() in self.remote_code:
            args.check(self.arguments, input_names, output_names)
            return
        if not path.is_file():
            local_dbfs = self._code_ref().startswith("dbfs:")
            where = " (dbfs:/ is the local DBFS root, [amlpipe] local_dbfs_root)" if local_dbfs else ""
            raise ConfigurationError(
                field_name,
                f"{str(path)!r} does not exist on this machine{where} (compute='local' runs it here)",
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
            digests = [
                self.remote_code[ref] if ref in self.remote_code else tree_digest(hasher.hash_files(p.parent, [p.name]))
                for ref, p in self._code_refs()
            ]
            code = sha256_json(digests)
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
        spec: dict[str, Any] = {"path": str(self.code_path)}
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
        return local_invocation(
            workspace, spec, self.spark_env_variables, self.spark_conf, self.timeout_seconds, self.dbfs_root
        )

    def _code_ref(self) -> str:
        """How the DAG names the notebook / script / main jar."""
        if self.task_kind == NOTEBOOK:
            return str(self.notebook_path)
        if self.task_kind == SCRIPT_PATH:
            return str(self.python_script_path)
        return self.jar_libraries[0] if self.task_kind == JAR else str(self.python_script_name)

    def _code_refs(self) -> list[tuple[str, Path]]:
        """Each code file as the DAG names it, with its local path (meaningless for workspace paths)."""
        refs = [(self._code_ref(), self.code_path)]
        if self.task_kind == JAR:
            refs += [(lib, self._local(lib)) for lib in self.jar_libraries[1:]]
        return refs

    # -- on a Databricks workspace ----------------------------------------------------------------

    def remote_spec(self, layout: StagingLayout, store: AzureBlobDatastore, job_id: str) -> dict[str, Any]:
        """The run for :class:`~airflow_provider_amlpipe.compute.databricks.DatabricksJobBackend`: the code to
        upload, the parameters with the staged data's URIs (as AML passed them), the cluster."""
        data = {name: store.wasb_uri(staged.key, self.uri_scheme) for name, staged in layout.inputs.items()}
        data.update({name: store.wasb_uri(folder, self.uri_scheme) for name, folder in layout.outputs.items()})
        code: dict[str, dict[str, str]] = {}
        remote_paths: dict[str, str] = {}

        def ref(field_name: str, name: str, local: Path, folder: str) -> dict[str, str]:
            if name in self.remote_code:
                remote_paths[field_name] = name
                return {"remote": name}
            code[f"{folder}/{local.name}"] = {"path": str(local), "as": "file"}
            return {"code": f"{folder}/{local.name}"}

        spec: dict[str, Any] = {
            "run_name": self.job_name,
            "timeout_seconds": self.timeout_seconds,
            "cluster": self.cluster,
            "permit_cluster_restart": self.permit_cluster_restart,
            "libraries": self.libraries,
            "code": code,
            "remote_paths": remote_paths,
        }
        if self.task_kind == NOTEBOOK:
            code[self.code_path.name] = {"path": str(self.code_path), "as": "notebook"}
            return {
                **spec,
                "task_kind": "notebook",
                "entry": {"code": self.code_path.name},
                "parameters": {**self.notebook_params, **data},
            }
        uris = {name: data[name] for name in layout.inputs}
        outs = {name: data[name] for name in layout.outputs}
        parameters = args.expand(self.arguments, uris, outs)  # type: ignore[arg-type]
        for name, uri in data.items():
            parameters += [f"--{name}", uri]
        if self.task_kind == JAR:
            jars = [ref(f"jar_libraries[{i}]", lib, p, "jars") for i, (lib, p) in enumerate(self._code_refs())]
            return {
                **spec,
                "task_kind": "jar",
                "main_class_name": self.main_class_name,
                "jars": jars,
                "parameters": parameters,
            }
        if self.task_kind == SCRIPT:
            folder = self.folder
            files = {str(self.python_script_name): self.code_path} if folder is None else self.code_files(folder)
            code.update({f"code/{rel}": {"path": str(path), "as": "file"} for rel, path in files.items()})
            entry = {"code": f"code/{self.python_script_name}"}
        else:
            entry = ref("python_script_path", str(self.python_script_path), self.code_path, "code")
        return {**spec, "task_kind": "python", "entry": entry, "parameters": parameters}

    @staticmethod
    def code_files(folder: Path) -> dict[str, Path]:
        """``source_directory`` minus ignored files (``.amlignore`` / ``.gitignore``), as uploaded."""
        return {rel: folder / rel for rel in list_tree(folder, honour_ignore_files=True)}


def local_invocation(
    workspace: StepWorkspace,
    task: Mapping[str, Any],
    env: Mapping[str, str],
    spark_conf: Mapping[str, str],
    timeout: int | None,
    dbfs_root: str | None = None,
) -> Invocation:
    """The command that runs ``task`` (``kind``, ``path``, ``params`` / ``args``...; see
    :mod:`airflow_provider_amlpipe.databricks.step`) on this machine, as a cluster would."""
    workdir = workspace.root / "wd"
    spec = {
        "workdir": str(workdir),
        "dbfs_root": dbfs_root or str(workspace.root / "dbfs"),
        "env": dict(env),
        "spark_conf": dict(spark_conf),
        "timeout": timeout,
        **task,
    }
    spec_file = workspace.root / SPEC_FILE
    spec_file.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "airflow_provider_amlpipe.databricks.step", str(spec_file)]
    # This very package, wherever it is imported from (a checkout, not only the installed one).
    path = os.pathsep.join(p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)
    return Invocation(argv=argv, cwd=workdir, env={"PYTHONPATH": path})
