"""The DAG file's text from a :class:`~.model.PipelineModel`, importing only what it uses."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.convert.model import SDK, Call, Code, PipelineModel, Step, StepOutputRef

TODO = "TODO(amlpipe convert)"


class _Renderer:
    def __init__(self) -> None:
        self.imports: set[tuple[str, str]] = set()

    def __call__(self, value: Any) -> str:
        if isinstance(value, StepOutputRef):
            return f"{value.step}.output[{value.name!r}]"
        if isinstance(value, Code):
            self.imports.update(value.imports)
            return value.text
        if isinstance(value, Call):
            if value.module:
                self.imports.add((value.module, value.func))
            parts = [self(a) for a in value.args] + [f"{k}={self(v)}" for k, v in value.kwargs.items()]
            return f"{value.func}({', '.join(parts)})"
        if isinstance(value, list):
            return "[" + ", ".join(self(v) for v in value) + "]"
        if isinstance(value, tuple):
            return "(" + ", ".join(self(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self(k)}: {self(v)}" for k, v in value.items()) + "}"
        return repr(value)


def _comment(text: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 110 - len(indent), break_on_hyphens=False)]


def ordered(steps: list[Step]) -> list[Step]:
    """Steps in the input's order, moved after the steps they refer to (their variables must exist)."""
    done: list[Step] = []
    names = {s.var for s in steps}
    pending = list(steps)
    while pending:
        for step in pending:
            if (step.upstream() | set(step.after)) & names <= {s.var for s in done}:
                done.append(step)
                pending.remove(step)
                break
        else:  # a cycle: AML would have refused it too; keep the input's order
            done.extend(pending)
            break
    return done


def _call(render: _Renderer, step: Step) -> str:
    kwargs = ", ".join(f"{k}={render(v)}" for k, v in step.kwargs.items())
    return f"{step.var} = {step.operator}({kwargs})"


def emit(model: PipelineModel) -> str:
    """The DAG file text (unformatted; see :func:`format_code`)."""
    render = _Renderer()
    body: list[str] = []
    for message in model.dag_todos:
        body += _comment(f"{TODO}: {message}", "    ")
    dag_kwargs: dict[str, Any] = {"dag_id": model.dag_id, **model.dag_kwargs}
    if model.params:
        dag_kwargs["params"] = model.params
    dag_kwargs["tags"] = ["amlpipe", "converted"]
    header_args = ", ".join(f"{k}={render(v)}" for k, v in dag_kwargs.items())
    steps = ordered(model.steps)
    for step in steps:
        for message in step.todos:
            body += _comment(f"{TODO}: {message}", "    ")
        if step.blocked:
            # Its own renderer: what only a commented-out step names is not imported.
            text = format_code(_call(_Renderer(), step))
            body += [f"    # {line}".rstrip() for line in text.splitlines()]
            continue
        render.imports.add(("airflow_provider_amlpipe", step.operator))
        body.append(f"    {_call(render, step)}")
    for step in steps:
        for before in step.after:
            if not step.blocked:
                body.append(f"    {before} >> {step.var}")
    if all(step.blocked for step in steps):
        body.append("    pass")
    constants = [f"{name} = {render(value)}" for name, value in model.constants.items()]
    render.imports.add((SDK, "DAG"))
    lines = [f'"""{model.dag_id}: converted by `amlpipe convert` from {model.source}.']
    if model.notes:
        lines.append("")
        for note in model.notes:
            lines += textwrap.wrap(note, 110, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False)
    lines[-1] += '"""' if not model.notes else ""
    lines += ['"""', ""] if model.notes else [""]
    if model.connections:
        lines.append("# Airflow connections this DAG needs (create them before it runs):")
        for conn in model.connections.values():
            lines.append(f"#   {conn.conn_id}: {conn.conn_type} (replaces {conn.replaces})")
        lines.append("")
    lines += ["from __future__ import annotations", ""]
    by_module: dict[str, list[str]] = {}
    for module, name in sorted(render.imports):
        by_module.setdefault(module, []).append(name)
    for module in sorted(by_module, key=lambda m: (not m.startswith("airflow."), m)):
        lines.append(f"from {module} import {', '.join(sorted(by_module[module]))}")
        if module == SDK:
            lines.append("")
    lines.append("")
    if constants:
        lines += [*constants, ""]
    lines += [f"with DAG({header_args}):", *body]
    return "\n".join(lines) + "\n"


def format_code(text: str) -> str:
    """``text`` formatted by ruff (line length 120) when a ruff binary is at hand, else as it is."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        return text
    result = subprocess.run(
        [ruff, "format", "--isolated", "--line-length", "120", "--stdin-filename", "dag.py", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else text
