"""The ParallelRun step: an entry script's ``init()`` / ``run(mini_batch)`` over every item of its inputs.

The step base runs it like a script step: its command is the driver
(:mod:`airflow_provider_amlpipe.parallel.driver`), which starts the worker processes. What the step adds
to the base is the per-item record namespace (:meth:`ParallelRunStep.namespace`): the known items are
written into the workspace before the driver starts, and what it logged is recorded after it ends.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.compute.base import Invocation
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher, code_digest, sha256_json
from airflow_provider_amlpipe.parallel.config import ParallelRunConfig
from airflow_provider_amlpipe.parallel.driver import DriverSpec
from airflow_provider_amlpipe.parallel.pool import PoolSettings
from airflow_provider_amlpipe.runtime import CONTEXT_ENV
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps.config import check_source_folder, resolve_path, source_folder
from airflow_provider_amlpipe.steps.runner import StepWorkspace

KIND = "parallel_run"
DRIVER_MODULE = "airflow_provider_amlpipe.parallel.driver"
#: Fingerprint parts that do not decide one item's result: the items themselves, where the rows go,
#: and how items are grouped into mini-batches (each item's rows are its own).
_NOT_PER_ITEM = ("inputs", "outputs", "settings")


@dataclass
class ParallelRunStep:
    """A ParallelRun step's definition: configuration, inputs split into items and side inputs, arguments."""

    config: ParallelRunConfig
    input_names: list[str]
    output_name: str
    dataset_type: str = "file"
    side_input_names: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    #: What relative paths are relative to (the DAG file's folder).
    base_dir: str | None = None
    progress_interval: float = 10.0

    output_hint = "a ParallelRun step writes its output itself; was the output folder removed by the script?"

    @property
    def folder(self) -> Path | None:
        return source_folder(self.config.source_directory, self.base_dir)

    @property
    def script_path(self) -> Path:
        folder = self.folder
        script = self.config.entry_script
        return (folder / script) if folder else resolve_path(script, self.base_dir)

    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        check_source_folder(self.config.source_directory, self.folder, "the entry script")
        self.config.batch_size_for(self.dataset_type)
        check_entry_script(self.script_path)
        if output_names != [self.output_name]:
            raise ConfigurationError("output", f"expected one output, got {output_names}", "pass output=Output('x')")
        args.check(self.arguments, input_names, output_names)

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        folder = self.folder
        return {
            "kind": KIND,
            "code": code_digest(hasher, folder, self.script_path),
            "entry": self.config.entry_script,
            "arguments": self.arguments,
            "params": self.params,
            "environment": self.config.environment.identity(folder),
            "dataset_type": self.dataset_type,
            "side_inputs": sorted(self.side_input_names),
            "settings": self.config.settings(),
        }

    def namespace(self, parts: dict[str, Any]) -> str:
        """Where the items' results are recorded: every fingerprint part that can change an item's result
        (code, entry script, arguments, params, environment, the side inputs' content), nothing else."""
        per_step = {name: value for name, value in parts.items() if name not in _NOT_PER_ITEM}
        inputs = parts.get("inputs", {})
        per_step["side_input_digests"] = {name: inputs.get(name) for name in sorted(self.side_input_names)}
        if self.summary_only:
            # Its records are files, not rows: never served to an append_row step of the same script.
            per_step["output_action"] = "summary_only"
        return sha256_json(per_step)

    @property
    def summary_only(self) -> bool:
        return self.config.output_action == "summary_only"

    @property
    def captures_files(self) -> bool:
        """Whether workers capture what each ``run()`` writes: ``summary_only`` with one file per mini-batch,
        the only case where a mini-batch's files are one item's result (so other steps are left as they were)."""
        size = self.config.batch_size_for(self.dataset_type)
        return self.summary_only and size is not None and size.count == 1

    # the driver ----------------------------------------------------------------------------------------
    @staticmethod
    def known_records_file(workspace: StepWorkspace) -> Path:
        return workspace.root / "parallel-known.json"

    @staticmethod
    def record_log_file(workspace: StepWorkspace) -> Path:
        return workspace.root / "parallel-records.jsonl"

    @staticmethod
    def reused_log_file(workspace: StepWorkspace) -> Path:
        """``summary_only``: the keys of the items taken from the records (their files are restored)."""
        return workspace.root / "parallel-reused.json"

    def pool_settings(self) -> PoolSettings:
        config = self.config
        return PoolSettings(
            processes=config.processes,
            run_invocation_timeout=float(config.run_invocation_timeout),
            run_max_try=config.run_max_try,
            error_threshold=config.error_threshold,
            allowed_failed_count=config.allowed_failed_count,
            allowed_failed_percent=config.allowed_failed_percent,
            progress_interval=self.progress_interval,
        )

    def driver_spec(self, workspace: StepWorkspace) -> DriverSpec:
        """The driver's spec for a run on this worker (the workspace's paths)."""
        folder = self.folder
        config = self.config
        return DriverSpec(
            entry_script=str(self.script_path),
            source_directory=None if folder is None else str(folder),
            arguments=args.expand(self.arguments, workspace.inputs, workspace.outputs),
            dataset_type=self.dataset_type,
            inputs=[(name, str(workspace.inputs[name])) for name in self.input_names],
            output_dir=str(workspace.outputs[self.output_name]),
            output_action=config.output_action,
            append_row_file_name=config.append_row_file_name,
            pool=self.pool_settings(),
            mini_batch_size=config.batch_size_for(self.dataset_type),
            partition_keys=None if config.partition_keys is None else list(config.partition_keys),
            known_records=str(self.known_records_file(workspace)),
            record_log=str(self.record_log_file(workspace)),
            metrics_file=str(workspace.metrics_file),
            capture_dir=str(workspace.root / "parallel-capture") if self.captures_files else None,
            reused_log=str(self.reused_log_file(workspace)) if self.summary_only else None,
        )

    def invocation(self, workspace: StepWorkspace) -> Invocation:
        folder = self.folder
        config = self.config
        spec = self.driver_spec(workspace)
        spec_file = workspace.root / "parallel-spec.json"
        spec.dump(spec_file)
        env = {CONTEXT_ENV: str(workspace.context_file)}
        if folder is not None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
        python = config.environment.python(folder)
        return Invocation(argv=[python, "-m", DRIVER_MODULE, str(spec_file)], cwd=workspace.root, env=env)


def check_entry_script(path: Path) -> None:
    """The entry script exists, parses, and defines ``run`` at module level (``init`` is optional)."""
    if not path.is_file():
        raise ConfigurationError(
            "entry_script", f"{str(path)!r} does not exist", "correct entry_script (relative to source_directory)"
        )
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise ConfigurationError(
            "entry_script", f"{path.name} does not parse: {exc.msg} (line {exc.lineno})", "fix the script"
        ) from exc
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    if "run" not in names:
        raise ConfigurationError(
            "entry_script",
            f"{path.name} defines no run(mini_batch) function, which the workers call for every mini-batch",
            "add def run(mini_batch): ... returning a list (one element per item) or a pandas DataFrame",
        )
