"""Databricks notebooks read into cells: the ``.py`` source format and ``.ipynb``.

The source format is what Databricks exports and imports as "Source": a first line
``# Databricks notebook source``, cells separated by ``# COMMAND ----------`` lines, and cells in another
language than Python written as ``# MAGIC`` comment lines whose first one names the language (``%md``,
``%sql``, ``%python``, ...). A ``.ipynb`` notebook's code cells are its cells (a code cell may start with
a magic too, as in a Databricks ``.ipynb`` export); its Markdown and raw cells are skipped.

Only Python (run), SQL (run through ``spark.sql``) and Markdown (skipped) are runnable locally; any other
magic is refused with an error naming the cell and its line, before anything runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.errors import AmlPipeError

SOURCE_HEADER = "# Databricks notebook source"
_SEPARATOR = re.compile(r"^# COMMAND -{10,}\s*$")
_MAGIC = re.compile(r"^# MAGIC(?: |$)")
_TITLE = re.compile(r"^# DBTITLE ")
_LANGUAGE = re.compile(r"^%(\w+)")
RUNNABLE = ("python", "sql")
SKIPPED = ("md", "md-sandbox")


class NotebookError(AmlPipeError, ValueError):
    """A notebook that cannot be read or holds a cell that cannot run locally."""


@dataclass(frozen=True)
class Cell:
    """One cell: its 1-based number, kind (``python``, ``sql``, ``md``) and source (without its magic line).

    ``line`` is where the cell starts: a line of a ``.py`` source file, or the cell's index in an ``.ipynb``.
    """

    number: int
    kind: str
    source: str
    line: int
    code_line: int = 1
    """The line (of the file, or of an ``.ipynb`` cell) where ``source`` begins: tracebacks use it."""

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        return cls(
            int(data["number"]), str(data["kind"]), str(data["source"]), int(data["line"]), int(data["code_line"])
        )


def read_notebook(path: str | os.PathLike[str]) -> list[Cell]:
    """The cells of the notebook at ``path`` (``.ipynb`` by its suffix, else the ``.py`` source format)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise NotebookError(f"notebook {path}: cannot be read: {e}") from e
    if path.suffix.lower() == ".ipynb":
        return parse_ipynb(text, name=str(path))
    return parse_source(text, name=str(path))


def parse_source(text: str, *, name: str = "<notebook>") -> list[Cell]:
    """Cells of a notebook in Databricks' ``.py`` source format."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != SOURCE_HEADER:
        raise NotebookError(
            f"notebook {name}: not a Databricks notebook source file (its first line must be {SOURCE_HEADER!r}); "
            "export the notebook as 'Source' or as .ipynb"
        )
    chunks: list[tuple[int, list[str]]] = []
    start = 2
    current: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        if _SEPARATOR.match(line):
            chunks.append((start, current))
            start, current = number + 1, []
        else:
            current.append(line)
    chunks.append((start, current))
    cells: list[Cell] = []
    for first_line, body in chunks:
        cell = _cell_from_source_lines(len(cells) + 1, first_line, body, name)
        if cell is not None:
            cells.append(cell)
    return cells


def _cell_from_source_lines(number: int, first_line: int, body: list[str], name: str) -> Cell | None:
    while body and (not body[0].strip() or _TITLE.match(body[0])):
        body, first_line = body[1:], first_line + 1
    while body and not body[-1].strip():
        body = body[:-1]
    if not body:
        return None
    if _MAGIC.match(body[0]):
        magic = [_MAGIC.sub("", line, count=1) if _MAGIC.match(line) else line for line in body]
        return _classify(number, "\n".join(magic), first_line, first_line, name)
    return Cell(number, "python", "\n".join(body) + "\n", first_line, first_line)


def parse_ipynb(text: str, *, name: str = "<notebook>") -> list[Cell]:
    """Cells of a Jupyter notebook: its code cells, in order (a leading magic line sets a cell's language)."""
    try:
        document = json.loads(text)
        raw_cells = document["cells"]
    except (ValueError, KeyError, TypeError) as e:
        raise NotebookError(f"notebook {name}: not a Jupyter notebook (.ipynb JSON with 'cells'): {e}") from e
    cells: list[Cell] = []
    for index, raw in enumerate(raw_cells, start=1):
        if not isinstance(raw, dict) or raw.get("cell_type") != "code":
            continue
        source = raw.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip():
            continue
        cells.append(_classify(len(cells) + 1, source, index, 1, name, where="notebook cell"))
    return cells


def _classify(number: int, source: str, line: int, code_line: int, name: str, *, where: str = "line") -> Cell:
    """A cell from its text: a first line ``%lang`` sets its kind (and is dropped), else it is Python."""
    code_line += len(source) - len(source.lstrip("\n"))
    text = source.strip("\n") + "\n"
    first, _, rest = text.partition("\n")
    match = _LANGUAGE.match(first.strip())
    if not match:
        return Cell(number, "python", text, line, code_line)
    language = match.group(1)
    inline = first.strip()[match.end() :].strip()
    body = (inline + "\n" if inline else "") + rest
    if language in RUNNABLE:
        return Cell(number, language, body, line, code_line + (0 if inline else 1))
    if language in SKIPPED:
        return Cell(number, "md", body, line, code_line)
    hint = {
        "sh": "run the shell command from a Python cell with subprocess",
        "fs": "use dbutils.fs from a Python cell",
        "run": "%run of another notebook is not supported locally; import its code as a module",
        "pip": "install the package in the worker's environment (the step's libraries) instead",
    }.get(language, "only %python, %sql and %md cells can run locally")
    raise NotebookError(f"notebook {name}: cell {number} ({where} {line}) is a %{language} cell: {hint}")


def split_sql(text: str) -> list[str]:
    """The statements of a ``%sql`` cell, split at ``;`` outside quotes and comments; empty ones dropped."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < n:
                current.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            current.append(" ")
            continue
        elif ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]
