"""Rows of a ParallelRun step: recorded per item, merged with reused ones, written in a stable order.

Order of the ``append_row`` file: by input item (input, then path, then row), each item's rows in the
order ``run()`` returned them. A mini-batch whose ``run()`` returned one row per item is recorded per
item (row ``i`` belongs to item ``i``); one that returned another number of rows cannot be split, so
its rows stand at its first item's place and its items are not recorded (a rerun processes them again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from airflow_provider_amlpipe.parallel.items import Item, MiniBatch

SUMMARY_FILE = "parallel_run_summary.json"


@dataclass
class Rows:
    """The rows gathered so far, keyed by the position they take in the output."""

    by_item: dict[int, list[str]] = field(default_factory=dict)
    #: Rows of a mini-batch that returned a number of rows other than its item count, at its first item.
    by_batch: dict[int, list[str]] = field(default_factory=dict)

    def add_reused(self, item: Item, rows: list[str]) -> None:
        self.by_item[item.index] = rows

    def add(self, batch: MiniBatch, rows: list[str]) -> dict[str, list[str]]:
        """Keep a mini-batch's rows; the ``{item key: rows}`` that can be recorded per item."""
        if len(rows) != len(batch.items):
            self.by_batch[batch.first] = list(rows)
            return {}
        for item, row in zip(batch.items, rows, strict=True):
            self.by_item[item.index] = [row]
        return {item.key: [row] for item, row in zip(batch.items, rows, strict=True)}

    def write(self, path: Path) -> int:
        """Write every row in output order; the number of rows."""
        count = 0
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            for position in sorted(set(self.by_item) | set(self.by_batch)):
                for row in (*self.by_batch.get(position, ()), *self.by_item.get(position, ())):
                    handle.write(row + "\n")
                    count += 1
        return count


class RecordLog:
    """New per-item results, appended to a JSON-lines file as each mini-batch completes, so what a
    failed or killed run finished can still be recorded."""

    def __init__(self, path: Path) -> None:
        self._handle: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open across mini-batches

    def add(self, records: dict[str, list[str]]) -> None:
        if records:
            for key, rows in records.items():
                self._handle.write(json.dumps({"key": key, "rows": rows}) + "\n")
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_record_log(path: Path) -> dict[str, list[str]]:
    """The records a run logged (a truncated last line, from a killed run, is ignored)."""
    records: dict[str, list[str]] = {}
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        records[entry["key"]] = entry["rows"]
    return records


def write_summary(output_dir: Path, summary: dict[str, Any]) -> Path:
    """The failure summary beside the output (deterministic: no timings, so a rerun writes the same bytes)."""
    path = output_dir / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path
