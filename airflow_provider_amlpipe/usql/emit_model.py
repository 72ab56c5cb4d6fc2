"""What the DuckDB emitter produces and names: emitted statements, the UTF-8 input copies the runner makes,
qualified catalog names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmittedStatement:
    """One DuckDB statement and the U-SQL statement it came from."""

    kind: str  # "view", "output", "comment", "catalog"
    sql: str
    line: int
    column: int
    output_path: Path | None = None
    ensure_dir: Path | None = None  # create this folder before running the statement (the catalog folder)
    drop_file: Path | None = None  # delete this file after running the statement (DROP DATABASE)
    output_encoding: str | None = None  # Python codec the UTF-8 output is re-encoded to (None: keep UTF-8)
    output_row_delimiter: str = "\r\n"  # what ends each line of the output (to name the line of an encoding error)
    input_copy: InputCopy | None = None  # kind "input": make this UTF-8 copy of an input instead of running SQL


@dataclass(frozen=True)
class InputCopy:
    """An EXTRACT input in an encoding DuckDB cannot read, which the runner re-encodes to UTF-8 (in chunks) before
    the statement that reads it: each file ``f`` of ``source`` (a path, or a file set's glob whose names must
    fully match ``regex``) is copied to ``folder / f.relative_to(f.anchor)``. ``root`` holds all copies of a
    compiled script; the runner deletes it at the end of the run."""

    source: str
    codec: str
    folder: Path
    root: Path
    regex: str | None = None


@dataclass(frozen=True)
class QualifiedName:
    """``database.schema.name`` of a catalog object."""

    db: str
    schema: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def __str__(self) -> str:
        return f"{self.db}.{self.schema}.{self.name}"
