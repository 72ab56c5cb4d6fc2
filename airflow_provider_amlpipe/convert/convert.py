"""Putting it together: read, analyse, map, emit; the result and its report."""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_amlpipe.convert.analysis import Analyzer
from airflow_provider_amlpipe.convert.emit import emit, format_code
from airflow_provider_amlpipe.convert.mapping import Mapper, RecurrenceCheck
from airflow_provider_amlpipe.convert.model import Connection, Issue
from airflow_provider_amlpipe.convert.source import Source, read_source
from airflow_provider_amlpipe.errors import ConfigurationError


@dataclass
class ConversionResult:
    """The DAG text, what could not be converted (``todos``) and what was mapped differently (``notes``)."""

    text: str
    source: Source
    issues: list[Issue]
    connections: list[Connection]
    #: (line, col) of every AML call in the input that was mapped or reported.
    accounted: set[tuple[int, int]] = field(default_factory=set)

    @property
    def todos(self) -> list[Issue]:
        return [i for i in self.issues if i.todo]

    @property
    def notes(self) -> list[Issue]:
        return [i for i in self.issues if not i.todo]

    def report(self) -> list[str]:
        """One line per item, ``file:line: TODO|note: reason``, in input order."""
        unique = sorted(set(self.issues), key=lambda i: (i.line, not i.todo, i.message))
        return [f"{self.source.where(i.line)}: {'TODO' if i.todo else 'note'}: {i.message}" for i in unique]


def default_dag_id(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", path.stem).strip("_") or "converted"


def convert_source(
    source: Source, dag_id: str, output_dir: Path | None = None, check_recurrence: RecurrenceCheck | None = None
) -> ConversionResult:
    """Convert ``source``; relative folders are rewritten relative to ``output_dir`` (where the DAG goes).

    ``check_recurrence`` validates a schedule's recurrence as the DAG will (``amlpipe convert`` passes
    :func:`airflow_provider_amlpipe.cli.check_recurrence`); a refused one becomes a TODO.
    """
    try:
        tree = ast.parse(source.text, filename=source.path)
    except SyntaxError as exc:
        where = source.where(exc.lineno or 0)
        raise ConfigurationError("input", f"{where}: not valid Python: {exc.msg}", "fix the syntax error") from exc
    analyzer = Analyzer(source.text)
    input_dir = Path(source.path).resolve().parent
    for line, text in source.skipped:
        written = text.split()[-1] if text.startswith("%%writefile ") else None
        if written is not None and not (input_dir / written).exists():
            message = f"the cell writes {written!r} (%%writefile): save that cell as {written} beside the notebook"
            analyzer.issues.append(Issue(line, message, todo=True))
        else:
            analyzer.issues.append(Issue(line, f"`{text}` skipped: not Python (a notebook magic)", todo=False))
    analyzer.run(tree)

    def rebase(folder: str) -> str:
        if output_dir is None or os.path.isabs(folder):
            return folder
        return os.path.relpath(input_dir / folder, output_dir.resolve())

    def locate(folder: str) -> Path:
        return (output_dir or input_dir) / folder

    def place(line: int) -> str:
        return source.where(line, name_only=True)

    mapper = Mapper(analyzer, dag_id, rebase, place, check_recurrence, locate)
    model = mapper.build()
    # In the order found (dict keys keep it; a set's order would vary between runs), by line.
    issues = sorted(dict.fromkeys(analyzer.issues), key=lambda i: i.line)
    for issue in (i for i in issues if i not in mapper.placed):
        if issue.todo:
            model.dag_todos.append(f"{issue.message} [{source.where(issue.line, name_only=True)}]")
    model.source = Path(source.path).name
    model.notes = [i.message for i in issues if i.in_dag]
    text = format_code(emit(model))
    return ConversionResult(text, source, analyzer.issues, list(model.connections.values()), analyzer.accounted)


def convert_file(
    path: Path,
    output: Path | None = None,
    dag_id: str | None = None,
    check_recurrence: RecurrenceCheck | None = None,
) -> ConversionResult:
    """Convert the script or notebook at ``path``; write the DAG to ``output`` when given."""
    source = read_source(path)
    folder = None if output is None else output.parent
    result = convert_source(source, dag_id or default_dag_id(path), folder, check_recurrence)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(result.text, encoding="utf-8")
    return result
