"""The items of a ParallelRun input and the mini-batches they are cut into.

An item is a file of a file dataset, or a row of a table (CSV or Parquet). Each carries a *key*: a
digest of what its result depends on besides the step itself -- for a file its path under its input
and its content, for a row its values -- under which its result is recorded, so a rerun can skip it.
Items are numbered in a stable order (input, then path, then row), which is also the order of the
``append_row`` output.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher, list_tree, sha256_json
from airflow_provider_amlpipe.parallel.config import MiniBatchSize

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class Item:
    """One unit of work: ``ref`` names it in logs and summaries, ``key`` identifies its result."""

    index: int
    ref: str
    key: str
    path: str
    row: int | None = None
    #: The mini-batch family it belongs to: its table file, plus the partition key values.
    group: Any = None


@dataclass
class MiniBatch:
    """Items handed to one ``run()`` call, and what a worker needs to build the argument."""

    id: int
    items: list[Item]
    payload: dict[str, Any]
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def first(self) -> int:
        return self.items[0].index


@dataclass(frozen=True)
class Table:
    """A table file of a tabular input: its format and how many rows make a mini-batch of the asked size."""

    path: str
    format: str
    rows_per_batch: int


def file_items(inputs: Sequence[tuple[str, Path]], hasher: Hasher) -> list[Item]:
    """Every file of the inputs (a folder's files sorted by path), keyed by input name, path and content."""
    items: list[Item] = []
    for name, path in inputs:
        if path.is_file():
            root, rels = path.parent, [path.name]
        else:
            root, rels = path, list_tree(path)
        for entry in hasher.hash_files(root, rels):
            ref = f"{name}/{entry.path}"
            key = sha256_json({"file": ref, "sha256": entry.sha256})
            items.append(Item(len(items), ref, key, str(root / entry.path)))
    return items


def table_files(inputs: Sequence[tuple[str, Path]]) -> list[tuple[str, Path, str]]:
    """``(ref, path, format)`` of each CSV or Parquet file of the inputs, in order."""
    found: list[tuple[str, Path, str]] = []
    for name, path in inputs:
        rels = [path.name] if path.is_file() else list_tree(path)
        root = path.parent if path.is_file() else path
        for rel in rels:
            fmt = TABLE_SUFFIXES.get(Path(rel).suffix.lower())
            if fmt is None:
                raise ConfigurationError(
                    f"inputs[{name!r}]",
                    f"{rel!r} is not a CSV or Parquet file, which a tabular input must hold",
                    "give a folder of .csv / .parquet files, or dataset_type='file' to hand the scripts file paths",
                )
            found.append((f"{name}/{rel}", root / rel, fmt))
    return found


def read_table(path: str, fmt: str) -> pd.DataFrame:
    """A table file as a DataFrame (what the entry script's ``run()`` gets slices of)."""
    import pandas as pd

    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)


def table_items(
    inputs: Sequence[tuple[str, Path]], size: MiniBatchSize | None, partition_keys: Sequence[str] | None
) -> tuple[list[Item], dict[str, Table]]:
    """Every row of every table file, keyed by its values (and the table's columns and types).

    A mini-batch holds rows of one file: ``size`` bytes of it (estimated from the file's size per row),
    or one combination of ``partition_keys`` values.
    """
    import pandas as pd

    items: list[Item] = []
    tables: dict[str, Table] = {}
    for ref, path, fmt in table_files(inputs):
        frame = read_table(str(path), fmt)
        rows = len(frame)
        schema = hashlib.sha256(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode()).hexdigest()
        hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy() if rows else []
        if partition_keys is not None:
            missing = [k for k in partition_keys if k not in frame.columns]
            if missing:
                raise ConfigurationError(
                    "partition_keys",
                    f"{', '.join(map(repr, missing))} not among the columns of {ref!r}"
                    f" ({', '.join(map(str, frame.columns))})",
                    "name columns the tables have",
                )
            groups: list[Any] = [None] * rows
            for value, positions in frame.groupby(list(partition_keys), sort=False, dropna=False).indices.items():
                for position in positions:
                    groups[position] = (str(path), repr(value))
        per_batch = 1
        if size is not None and size.nbytes is not None:
            per_row = max(1.0, path.stat().st_size / max(1, rows))
            per_batch = max(1, int(size.nbytes // per_row))
        tables[str(path)] = Table(str(path), fmt, per_batch)
        for row in range(rows):
            key = f"{schema[:16]}{int(hashes[row]):016x}"
            group = groups[row] if partition_keys is not None else str(path)
            items.append(Item(len(items), f"{ref}:{row}", key, str(path), row, group))
    return items, tables


def file_batches(items: Sequence[Item], count: int) -> list[MiniBatch]:
    """Consecutive runs of ``count`` files (the last one shorter)."""
    return [
        MiniBatch(number, list(chunk), {"files": [item.path for item in chunk]})
        for number, chunk in enumerate(items[i : i + count] for i in range(0, len(items), count))
    ]


def table_batches(items: Sequence[Item], tables: dict[str, Table], partitioned: bool) -> list[MiniBatch]:
    """Rows grouped per file (and partition), cut into the file's rows per mini-batch unless partitioned."""
    groups: dict[Any, list[Item]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    batches: list[MiniBatch] = []
    for members in groups.values():
        table = tables[members[0].path]
        step = len(members) if partitioned else table.rows_per_batch
        for start in range(0, len(members), step):
            chunk = members[start : start + step]
            rows = [item.row for item in chunk]
            payload = {"table": table.path, "format": table.format, "rows": rows}
            batches.append(MiniBatch(len(batches), chunk, payload))
    batches.sort(key=lambda batch: batch.first)
    for number, batch in enumerate(batches):
        batch.id = number
    return batches
