"""``ParallelRunConfig``: AML's ParallelRunConfig, checked without I/O where the step is defined."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_amlpipe.compute.batch_pool import POOL_ID_RULE, check_pool_id
from airflow_provider_amlpipe.compute.environment import PythonEnvironment
from airflow_provider_amlpipe.errors import ConfigurationError

OUTPUT_ACTIONS = ("append_row", "summary_only")
DATASET_TYPES = ("file", "tabular")
LOCAL = "local"
#: AML's defaults when ``mini_batch_size`` is not given.
DEFAULT_FILE_BATCH = 10
DEFAULT_TABULAR_BATCH = 1024 * 1024
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?B?)\s*$", re.IGNORECASE)

DatasetType = Literal["file", "tabular"]


@dataclass(frozen=True)
class MiniBatchSize:
    """A parsed ``mini_batch_size``: a number of files, or a number of bytes of a table."""

    count: int | None = None
    nbytes: int | None = None

    def describe(self) -> str:
        return f"{self.count} files" if self.count is not None else f"{self.nbytes} bytes"


def parse_mini_batch_size(value: object) -> MiniBatchSize:
    """``10`` / ``"10"`` (files) or ``"1KB"`` / ``"1MB"`` / ``"1GB"`` (bytes of a table), as AML wrote it."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigurationError(
            "mini_batch_size",
            f"expected a count such as '10' or a size such as '1MB', got {value!r}",
            "pass mini_batch_size='10' (files per mini-batch) or '1MB' (bytes of a table per mini-batch)",
        )
    text = str(value)
    match = _SIZE.match(text)
    if match is None:
        raise ConfigurationError(
            "mini_batch_size",
            f"{text!r} is neither a count nor a size",
            "pass a whole number of files such as '10', or a size with a unit: '500KB', '1MB', '2GB'",
        )
    number, unit = float(match.group(1)), match.group(2).upper()
    if unit and unit != "B" and not unit.endswith("B"):
        unit += "B"
    if not unit:
        if number != int(number) or number < 1:
            raise ConfigurationError(
                "mini_batch_size", f"{text!r} is not a whole number of files of at least 1", "pass such as '10'"
            )
        return MiniBatchSize(count=int(number))
    nbytes = math.ceil(number * _UNITS[unit])
    if nbytes < 1:
        raise ConfigurationError("mini_batch_size", f"{text!r} is an empty size", "pass a positive size such as '1MB'")
    return MiniBatchSize(nbytes=nbytes)


@dataclass(frozen=True)
class ParallelRunConfig:
    """How a ParallelRun step splits its input and runs its entry script (AML's ``ParallelRunConfig``).

    :param entry_script: the script defining ``init()`` (optional) and ``run(mini_batch)``, relative to
        ``source_directory``.
    :param source_directory: the folder holding the entry script and what it imports (fingerprinted).
    :param mini_batch_size: files per mini-batch (``"10"``, the default for files) or bytes of a table
        per mini-batch (``"1MB"``, the default for tables).
    :param partition_keys: tabular only, instead of ``mini_batch_size``: one mini-batch per distinct
        combination of these columns' values.
    :param error_threshold: how many failed items (files, or table rows) are tolerated; ``-1`` ignores
        failures.
    :param allowed_failed_count: how many mini-batches may fail (after all their tries); ``None``: any.
    :param allowed_failed_percent: the percentage of mini-batches that may fail; ``None``: any.
    :param output_action: ``"append_row"`` (the rows every ``run()`` returned, concatenated into
        ``append_row_file_name``) or ``"summary_only"`` (``run()`` writes what it produces itself).
    :param process_count_per_node: worker processes (each calls ``init()`` once); default: the CPU count.
    :param node_count: nodes: 1 with ``compute="local"`` (this worker); on Azure Batch, tasks on the pool,
        each running ``process_count_per_node`` workers over its share of the mini-batches.
    :param run_invocation_timeout: seconds one ``run()`` call may take before its worker is stopped
        and the mini-batch retried.
    :param run_max_try: tries of one mini-batch (a raise, a timeout or a dead worker each count one).
    :param environment: the Python that runs the workers (a ``PythonEnvironment``).
    :param compute: ``"local"`` or an ``amlpipe_azure_batch`` connection id.
    :param pool_id: the existing Batch pool the nodes' tasks run on (required with a Batch connection).
    """

    entry_script: str
    source_directory: str | None = None
    mini_batch_size: int | str | None = None
    partition_keys: list[str] | None = None
    error_threshold: int = 10
    allowed_failed_count: int | None = None
    allowed_failed_percent: float | None = None
    output_action: str = "append_row"
    append_row_file_name: str = "parallel_run_step.txt"
    process_count_per_node: int | None = None
    node_count: int = 1
    run_invocation_timeout: float = 60.0
    run_max_try: int = 3
    environment: PythonEnvironment = field(default_factory=PythonEnvironment)
    compute: str = LOCAL
    pool_id: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def processes(self) -> int:
        """Worker processes to start (``process_count_per_node``, else the CPU count)."""
        return self.process_count_per_node or os.cpu_count() or 1

    @property
    def remote(self) -> bool:
        return self.compute != LOCAL

    def validate(self) -> None:
        """Field checks that need no I/O (run where the DAG is parsed)."""
        if not isinstance(self.entry_script, str) or not self.entry_script.strip():
            raise ConfigurationError(
                "entry_script", f"expected a script name, got {self.entry_script!r}", "pass entry_script='score.py'"
            )
        if self.partition_keys is not None:
            if self.mini_batch_size is not None:
                raise ConfigurationError(
                    "mini_batch_size",
                    "given together with partition_keys, which already decide the mini-batches",
                    "pass one of them: partition_keys (one mini-batch per key value) or mini_batch_size",
                )
            keys = self.partition_keys
            if not isinstance(keys, (list, tuple)) or not keys or not all(isinstance(k, str) and k for k in keys):
                raise ConfigurationError(
                    "partition_keys", f"expected a list of column names, got {keys!r}", "pass ['store', 'day']"
                )
        elif self.mini_batch_size is not None:
            parse_mini_batch_size(self.mini_batch_size)
        if self.output_action not in OUTPUT_ACTIONS:
            raise ConfigurationError(
                "output_action",
                f"{self.output_action!r} is not an output action",
                "pass 'append_row' or 'summary_only'",
            )
        name = self.append_row_file_name
        if not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name or name in (".", ".."):
            raise ConfigurationError(
                "append_row_file_name", f"expected a plain file name, got {name!r}", "pass such as 'scores.txt'"
            )
        _check_int("error_threshold", self.error_threshold, -1, "-1 ignores every failure")
        if self.allowed_failed_count is not None:
            _check_int("allowed_failed_count", self.allowed_failed_count, 0, "None allows any")
        percent = self.allowed_failed_percent
        if percent is not None and (
            isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100
        ):
            raise ConfigurationError(
                "allowed_failed_percent", f"expected a percentage from 0 to 100, got {percent!r}", "pass such as 10"
            )
        if self.process_count_per_node is not None:
            _check_int("process_count_per_node", self.process_count_per_node, 1, "None uses the CPU count")
        _check_int("node_count", self.node_count, 1, "")
        _check_int("run_max_try", self.run_max_try, 1, "1 means no retry")
        timeout = self.run_invocation_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise ConfigurationError(
                "run_invocation_timeout", f"expected a positive number of seconds, got {timeout!r}", "pass such as 60"
            )
        if not isinstance(self.environment, PythonEnvironment):
            raise ConfigurationError(
                "environment", f"expected a PythonEnvironment, got {self.environment!r}", "pass PythonEnvironment(...)"
            )
        if not isinstance(self.compute, str) or not self.compute.strip():
            raise ConfigurationError(
                "compute", f"expected 'local' or a connection id, got {self.compute!r}", "pass compute='local'"
            )
        if self.compute == LOCAL:
            if self.node_count != 1:
                raise ConfigurationError(
                    "node_count",
                    f"{self.node_count} nodes need a remote compute; compute='local' is this worker alone",
                    "pass compute='<Azure Batch connection>' with pool_id, or node_count=1 and more"
                    " process_count_per_node",
                )
            if self.pool_id is not None:
                raise ConfigurationError(
                    "pool_id", "given with compute='local'", "pass compute='<Azure Batch connection>', or drop pool_id"
                )
            return
        check_pool_id(
            "pool_id",
            self.pool_id,
            why=f"on compute {self.compute!r} each node is a task on an existing pool",
            fix=f"pass pool_id='<pool>': {POOL_ID_RULE}",
        )
        if self.environment.requirements is not None:
            raise ConfigurationError(
                "environment.requirements",
                "a requirements venv is built on this worker only, not on a Batch node",
                "install the packages on the pool's nodes and name their interpreter:"
                " PythonEnvironment(interpreter='/path/on/the/node/python'), or use compute='local'",
            )

    def batch_size_for(self, dataset_type: str) -> MiniBatchSize | None:
        """The mini-batch size for this kind of input (``None`` with ``partition_keys``), checked against it."""
        if dataset_type not in DATASET_TYPES:
            raise ConfigurationError(
                "dataset_type", f"{dataset_type!r} is not a dataset type", "pass 'file' or 'tabular'"
            )
        if dataset_type == "file":
            if self.partition_keys is not None:
                raise ConfigurationError(
                    "partition_keys",
                    "partition_keys group the rows of a table, but the input is a file dataset",
                    "use mini_batch_size='10' (files per mini-batch), or dataset_type='tabular' for CSV/Parquet",
                )
            size = parse_mini_batch_size(self.mini_batch_size or DEFAULT_FILE_BATCH)
            if size.count is None:
                raise ConfigurationError(
                    "mini_batch_size",
                    f"{self.mini_batch_size!r} is a size, which applies to tables, but the input is a file dataset",
                    "give a number of files such as '10', or dataset_type='tabular' for CSV/Parquet",
                )
            return size
        if self.partition_keys is not None:
            return None
        size = parse_mini_batch_size(self.mini_batch_size or f"{DEFAULT_TABULAR_BATCH}B")
        if size.nbytes is None:
            raise ConfigurationError(
                "mini_batch_size",
                f"{self.mini_batch_size!r} is a number of files, but the input is a table",
                "give a size with a unit such as '1MB' (AML's tabular mini-batches are sizes)",
            )
        return size

    def settings(self) -> dict[str, Any]:
        """What of this configuration can change the output (fingerprinted); speed and tolerance settings
        are not in it."""
        return {
            "mini_batch_size": None if self.mini_batch_size is None else str(self.mini_batch_size),
            "partition_keys": None if self.partition_keys is None else list(self.partition_keys),
            "output_action": self.output_action,
            "append_row_file_name": self.append_row_file_name,
        }


def _check_int(name: str, value: object, minimum: int, note: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = f" ({note})" if note else ""
        raise ConfigurationError(
            name,
            f"expected a whole number of at least {minimum}, got {value!r}",
            f"pass a whole number >= {minimum}{extra}",
        )
