"""The process a ParallelRun step runs: list the items, skip those already recorded, run the rest on a
worker pool, write ``append_row`` output, the summary and metrics.

``python -m airflow_provider_amlpipe.parallel.driver SPEC.json`` (the step base runs it like any step
command, so its output streams to the task log and ``on_kill`` stops it and its workers together).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe import runtime
from airflow_provider_amlpipe.errors import AmlPipeError, ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.parallel.config import MiniBatchSize
from airflow_provider_amlpipe.parallel.items import (
    Item,
    MiniBatch,
    file_batches,
    file_items,
    table_batches,
    table_items,
)
from airflow_provider_amlpipe.parallel.pool import PoolReport, PoolSettings, ThresholdExceededError, WorkerPool
from airflow_provider_amlpipe.parallel.results import RecordLog, Rows, write_summary
from airflow_provider_amlpipe.parallel.worker import WorkerSpec

#: ``{inputs.X}`` / ``{outputs.X}`` in a spec written for a remote node.
PLACEHOLDER = re.compile(r"\{(inputs|outputs)\.([^{}]*)\}")


@dataclass
class DriverSpec:
    """Everything the driver needs, as plain JSON (written by the step, read by this process)."""

    entry_script: str
    source_directory: str | None
    arguments: list[str]
    dataset_type: str
    inputs: list[tuple[str, str]]
    output_dir: str
    output_action: str
    append_row_file_name: str
    pool: PoolSettings
    mini_batch_size: MiniBatchSize | None = None
    partition_keys: list[str] | None = None
    known_records: str | None = None
    record_log: str | None = None
    metrics_file: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: ``[start, end)``: on one of several nodes, the positions (in the items' order) of the items this
    #: node handles -- it writes their rows, summary and records only. ``None``: every item.
    share: list[int] | None = None
    #: ``summary_only``: where each worker gets a folder of its own to capture what ``run()`` writes
    #: (see :mod:`~airflow_provider_amlpipe.parallel.worker`), so a one-item mini-batch's files are recorded.
    capture_dir: str | None = None
    #: Where the keys of the items taken from the records are written (their files are restored by the step).
    reused_log: str | None = None

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> DriverSpec:
        """Read a spec. On a remote node the spec is written before the node's paths are known: there,
        ``{inputs.X}`` / ``{outputs.X}`` become the run context's paths, relative paths are taken from
        the working folder, and ``pool.processes`` 0 is the node's CPU count."""
        text = path.read_text(encoding="utf-8")
        data = json.loads(_resolve_placeholders(text) if PLACEHOLDER.search(text) else text)
        if data["pool"]["processes"] == 0:
            data["pool"]["processes"] = os.cpu_count() or 1
        data["pool"] = PoolSettings(**data["pool"])
        size = data.get("mini_batch_size")
        data["mini_batch_size"] = None if size is None else MiniBatchSize(**size)
        data["inputs"] = [(name, _absolute(where)) for name, where in data["inputs"]]
        paths = ("entry_script", "source_directory", "output_dir", "known_records", "record_log", "metrics_file")
        for key in (*paths, "capture_dir", "reused_log"):
            if data.get(key):
                data[key] = _absolute(data[key])
        return cls(**data)


def _absolute(path: str) -> str:
    return str(Path.cwd() / path)


def _resolve_placeholders(text: str) -> str:
    """``{inputs.X}`` / ``{outputs.X}`` in a spec (JSON text) as the run context's paths."""
    context = runtime.context()

    def path(match: re.Match[str]) -> str:
        value = str(context[match.group(1)][match.group(2)])
        return json.dumps(value)[1:-1]  # escaped as inside a JSON string

    return PLACEHOLDER.sub(path, text)


def plan_items(spec: DriverSpec, hasher: Hasher) -> tuple[list[Item], Callable[[list[Item]], list[MiniBatch]]]:
    """The items in output order, and how to cut a subset of them into mini-batches."""
    inputs = [(name, Path(path)) for name, path in spec.inputs]
    if spec.dataset_type == "file":
        count = spec.mini_batch_size.count if spec.mini_batch_size else None
        if count is None:
            raise ConfigurationError("mini_batch_size", "a file dataset needs a number of files", "pass '10'")
        return file_items(inputs, hasher), lambda pending: file_batches(pending, count)
    items, tables = table_items(inputs, spec.mini_batch_size, spec.partition_keys)
    partitioned = spec.partition_keys is not None
    return items, lambda pending: table_batches(pending, tables, partitioned)


def run_parallel(spec: DriverSpec, log: Callable[[str], None], hasher: Hasher | None = None) -> dict[str, Any]:
    """Process the items; the summary (also written beside the output). Raises when a limit is passed."""
    started = time.monotonic()
    items, cut = plan_items(spec, hasher or Hasher())
    if spec.share is not None:
        items = items[spec.share[0] : spec.share[1]]
    known: dict[str, list[str]] = {}
    if spec.known_records and Path(spec.known_records).exists():
        known = json.loads(Path(spec.known_records).read_text(encoding="utf-8"))
    rows = Rows()
    pending = []
    for item in items:
        if item.key in known:
            rows.add_reused(item, known[item.key])
        else:
            pending.append(item)
    batches = cut(pending)
    reused = len(items) - len(pending)
    log(
        f"{len(items)} items: {reused} reused from earlier runs, {len(pending)} to process in {len(batches)}"
        f" mini-batches on {min(spec.pool.processes, max(1, len(batches)))} worker processes"
    )
    if spec.reused_log:
        reused_keys = [item.key for item in items if item.key in known]
        Path(spec.reused_log).write_text(json.dumps(reused_keys), encoding="utf-8")
    capture = [spec.output_dir, spec.capture_dir] if spec.capture_dir else None
    worker = WorkerSpec(spec.entry_script, spec.source_directory, list(spec.arguments), dict(spec.env), capture)
    record_log = RecordLog(Path(spec.record_log)) if spec.record_log else None

    def on_done(batch: MiniBatch, batch_rows: list[str], files: list[str]) -> None:
        recordable = rows.add(batch, batch_rows)
        if spec.output_action == "summary_only":
            # An item's result is the files its run() wrote: known only for a mini-batch of that item alone.
            recordable = {batch.items[0].key: files} if len(batch.items) == 1 and files else {}
        if record_log is not None:
            record_log.add(recordable)

    try:
        report = WorkerPool(worker, spec.pool, log).run(batches, on_done)
    except ThresholdExceededError as exc:
        log(f"FAILED: {exc}")
        log("summary: " + json.dumps(_summary(items, reused, exc.report)))
        raise
    finally:
        if record_log is not None:
            record_log.close()
    output = Path(spec.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    written = None
    if spec.output_action == "append_row":
        written = rows.write(output / spec.append_row_file_name)
    summary = _summary(items, reused, report)
    write_summary(output, summary)
    metrics = {
        "items": len(items),
        "items_reused": reused,
        "items_processed": report.items_done,
        "items_failed": report.items_failed,
        "mini_batches": len(batches),
        "retries": report.retries,
        "workers_replaced": report.workers_replaced,
    }
    if spec.metrics_file:
        with open(spec.metrics_file, "a", encoding="utf-8") as handle:
            for name, value in metrics.items():
                handle.write(json.dumps({"name": name, "value": value, "step": None, "time": time.time()}) + "\n")
    rows_note = f", {written} rows in {spec.append_row_file_name}" if written is not None else ""
    log(
        f"done in {time.monotonic() - started:.1f} s: {report.items_done} items processed, {reused} reused,"
        f" {report.items_failed} failed, {report.retries} retries,"
        f" {report.workers_replaced} workers replaced{rows_note}"
    )
    return summary


def _summary(items: list[Item], reused: int, report: PoolReport) -> dict[str, Any]:
    """Failures by item (not by mini-batch: batches differ between a full and an incremental run)."""
    return {
        "items": len(items),
        "items_succeeded": reused + report.items_done,
        "items_failed": report.items_failed,
        "failed": [{"items": b["items"], "tries": b["tries"], "errors": b["errors"]} for b in report.batches_failed],
        "fewer_rows_than_items": [
            {"items": b["items"], "rows": b["rows"], "failed": b["failed"]} for b in report.short_batches
        ],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m airflow_provider_amlpipe.parallel.driver SPEC.json", file=sys.stderr)
        return 2
    spec = DriverSpec.load(Path(argv[0]))

    def log(message: str) -> None:
        print(f"[parallel] {message}", flush=True)

    try:
        run_parallel(spec, log)
    except AmlPipeError as exc:
        print(f"ParallelRun step failed: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
