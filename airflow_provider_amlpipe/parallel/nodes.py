"""A ParallelRun step on several nodes: each node's share of the items, and the nodes' results merged.

A share is a contiguous range of the items' output order, starting at a mini-batch boundary, and the
shares split the mini-batches to process about evenly. Each node runs the driver over its share
(``DriverSpec.share``) and writes, as a single node would, its rows in output order, its summary, its
metrics and the per-item records it made; so the step's ``append_row`` file is the nodes' files
concatenated in share order -- the same bytes as one node writes -- and the failure limits are applied
to the nodes' failures added up (:func:`merge`). A node whose task failed after its tries counts every
item and mini-batch it had to process as failed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.parallel.items import Item, MiniBatch
from airflow_provider_amlpipe.parallel.pool import PoolReport, PoolSettings, check_limits
from airflow_provider_amlpipe.parallel.results import SUMMARY_FILE, write_summary

#: A node's second output (besides the step's): the per-item records it made and its metrics.
NODE_STATE = "amlpipe_node"
NODE_RECORDS = "records.jsonl"
NODE_METRICS = "metrics.jsonl"
NODE_REUSED = "reused.json"
_METRICS = ("items", "items_reused", "items_processed", "items_failed", "mini_batches", "retries", "workers_replaced")


def shares(items: list[Item], batches: list[MiniBatch], nodes: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of ``items`` (positions), one per node used (at most one per mini-batch),
    each starting at a mini-batch to process and together covering every item."""
    if not batches:
        return [(0, len(items))]
    used = min(nodes, len(batches))
    positions = {item.index: position for position, item in enumerate(items)}
    starts = [0] + [positions[batches[(len(batches) * n) // used].first] for n in range(1, used)]
    return [(start, end) for start, end in zip(starts, [*starts[1:], len(items)], strict=True)]


@dataclass
class NodeResult:
    """One node's share and how it ended: its output folders (``output``: the step's, ``state``:
    :data:`NODE_STATE`), or the errors of its last try."""

    share: tuple[int, int]
    output: Path | None
    state: Path | None
    tries: int
    errors: list[str] = field(default_factory=list)
    #: The mini-batches it had to process (counted as failed when the node failed).
    batches: list[MiniBatch] = field(default_factory=list)


@dataclass
class Merged:
    summary: dict[str, Any]
    metrics: dict[str, Any]
    #: The nodes' per-item records (JSON lines, as the driver logs them).
    records: list[str]
    #: ``summary_only``: the keys of the items the nodes took from the records.
    reused: list[str] = field(default_factory=list)


def merge(results: list[NodeResult], items: list[Item], output: Path, append_row_file_name: str | None) -> Merged:
    """Write the step's output from the nodes' (rows, summary, the files ``run()`` wrote) and gather
    metrics and records."""
    summary: dict[str, Any] = {
        "items": len(items),
        "items_succeeded": 0,
        "items_failed": 0,
        "failed": [],
        "fewer_rows_than_items": [],
    }
    metrics: dict[str, Any] = dict.fromkeys(_METRICS, 0)
    metrics["items"] = len(items)
    records: list[str] = []
    reused: list[str] = []
    target = None if append_row_file_name is None else output / append_row_file_name
    handle = None if target is None else open(target, "wb")  # noqa: SIM115 - written node by node
    try:
        for result in sorted(results, key=lambda r: r.share):
            if result.output is None or result.state is None:
                failed_items = [item for batch in result.batches for item in batch.items]
                summary["items_failed"] += len(failed_items)
                summary["items_succeeded"] += result.share[1] - result.share[0] - len(failed_items)
                metrics["items_failed"] += len(failed_items)
                metrics["mini_batches"] += len(result.batches)
                summary["failed"].extend(
                    {"items": [i.ref for i in b.items], "tries": result.tries, "errors": result.errors}
                    for b in result.batches
                )
                continue
            node_summary = json.loads((result.output / SUMMARY_FILE).read_text(encoding="utf-8"))
            for key in ("items_succeeded", "items_failed"):
                summary[key] += node_summary[key]
            summary["failed"].extend(node_summary["failed"])
            summary["fewer_rows_than_items"].extend(node_summary["fewer_rows_than_items"])
            for line in _lines(result.state / NODE_METRICS):
                metric = json.loads(line)
                if metric.get("name") in _METRICS and metric["name"] != "items":
                    metrics[metric["name"]] += int(metric["value"])
            records.extend(_lines(result.state / NODE_RECORDS))
            if (result.state / NODE_REUSED).is_file():
                reused.extend(json.loads((result.state / NODE_REUSED).read_text(encoding="utf-8")))
            if handle is not None:
                node_rows = result.output / str(append_row_file_name)
                if node_rows.is_file():
                    handle.write(node_rows.read_bytes())
            merged_here = {SUMMARY_FILE, append_row_file_name}
            for path in sorted(result.output.rglob("*")):
                rel = path.relative_to(result.output).as_posix()
                if path.is_file() and rel not in merged_here:  # what run() wrote itself (summary_only)
                    (output / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, output / rel)
    finally:
        if handle is not None:
            handle.close()
    metrics["nodes"] = len(results)
    write_summary(output, summary)
    return Merged(summary, metrics, records, reused)


def check(settings: PoolSettings, merged: Merged) -> None:
    """Apply the step's failure limits to every node's failures together."""
    summary = merged.summary
    report = PoolReport(
        total_items=summary["items"],
        total_batches=merged.metrics["mini_batches"],
        items_done=merged.metrics["items_processed"],
        items_failed=summary["items_failed"],
        batches_failed=list(summary["failed"]),
    )
    check_limits(settings, report)


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
