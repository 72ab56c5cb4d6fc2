"""What every compute backend is given and must do: run one command to completion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Invocation:
    """One command to run: argv, working folder and extra environment variables."""

    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


LineSink = Callable[[str, str], None]
"""Receives ``(stream, line)`` for each line the command prints, as it prints it."""


class ComputeBackend(Protocol):
    """Runs invocations; raises :class:`~airflow_provider_amlpipe.errors.StepFailedError` on failure."""

    name: str

    def run(self, invocation: Invocation, sink: LineSink) -> None: ...

    def terminate(self) -> None:
        """Stop the running invocation (``on_kill``), from any thread."""
