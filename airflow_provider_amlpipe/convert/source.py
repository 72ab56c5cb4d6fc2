"""Reading the input: a ``.py`` script, or a notebook's code cells in order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_amlpipe.errors import ConfigurationError


@dataclass
class Source:
    """Python text and where each of its lines came from (for ``file:line`` in reports)."""

    path: str
    text: str
    #: For a notebook, line ``n`` (1-based) of ``text`` is ``cells[n - 1]``: (cell number, line in cell).
    cells: list[tuple[int, int]] = field(default_factory=list)
    #: Notebook lines that are not Python (IPython magics, shell escapes), with their places.
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def where(self, line: int, *, name_only: bool = False) -> str:
        """``path:line``, or ``path:cell C:line L`` for a notebook (the file's name alone with ``name_only``)."""
        path = Path(self.path).name if name_only else self.path
        if self.cells and 0 < line <= len(self.cells):
            cell, in_cell = self.cells[line - 1]
            return f"{path}:cell {cell}:line {in_cell}"
        return f"{path}:{line}"


def read_source(path: Path) -> Source:
    """The Python text of ``path``; an unreadable file or notebook is a ``ConfigurationError``."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError("input", f"cannot read {path}: {exc}", "pass a readable .py or .ipynb file") from exc
    if path.suffix == ".ipynb":
        return notebook_source(str(path), raw)
    return Source(str(path), raw)


def notebook_source(name: str, raw: str) -> Source:
    """The code cells of a notebook (nbformat 4 JSON) joined in order.

    IPython magics and shell escapes are not Python: their lines become blank lines (so line
    numbers still map) and are listed in ``skipped``; a ``%%`` cell magic skips the whole cell
    (``%%writefile`` writes a file, it is not pipeline code).
    """
    try:
        doc = json.loads(raw)
        cells = doc["cells"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError("input", f"{name} is not a Jupyter notebook: {exc}", "pass an .ipynb file") from exc
    lines: list[str] = []
    places: list[tuple[int, int]] = []
    skipped: list[tuple[int, str]] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        cell_lines = text.splitlines()
        whole_cell_magic = bool(cell_lines) and cell_lines[0].lstrip().startswith("%%")
        for in_cell, line in enumerate(cell_lines, start=1):
            stripped = line.lstrip()
            if whole_cell_magic or stripped.startswith(("%", "!", "?")):
                if in_cell == 1 or not whole_cell_magic:
                    skipped.append((len(lines) + 1, stripped))
                # ``pass`` keeps a block that held only the magic a block; a cell magic's body is not code.
                line = "" if whole_cell_magic else line[: len(line) - len(stripped)] + "pass"
            lines.append(line)
            places.append((number, in_cell))
        lines.append("")
        places.append((number, len(cell_lines) + 1))
    return Source(name, "\n".join(lines) + "\n", places, skipped)
