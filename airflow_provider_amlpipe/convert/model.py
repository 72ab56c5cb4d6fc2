"""The converted pipeline: steps as operator calls, their data links, Params, connections, schedule.

Values inside a step's keyword arguments are Python literals (rendered with ``repr``) or the
expression nodes below; the emitter renders them and imports only what they name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROVIDER = "airflow_provider_amlpipe"
SWEEP = "airflow_provider_amlpipe.sweep"
SDK = "airflow.sdk"


@dataclass(frozen=True)
class Code:
    """Python source for a value, and the ``(module, name)`` imports it needs."""

    text: str
    imports: tuple[tuple[str, str], ...] = ()


@dataclass
class Call:
    """A call ``func(*args, **kwargs)`` of a name imported from ``module`` (``""``: no import)."""

    func: str
    module: str = PROVIDER
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepOutputRef:
    """Output ``name`` of the step bound to ``step`` (its Python variable): a data link."""

    step: str
    name: str


@dataclass(frozen=True)
class Issue:
    """Something in the input at ``line``: a ``todo`` (not converted faithfully) or a note (mapped
    differently, or dropped because it has no place in a DAG file)."""

    line: int
    message: str
    todo: bool
    #: A note the DAG file's docstring repeats (how to trigger it, what became of publish / submit).
    in_dag: bool = False


@dataclass
class Step:
    """One operator call; ``var`` is its Python variable, ``line`` where AML's step was built."""

    var: str
    operator: str
    task_id: str
    line: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: Steps this one runs after that no data link already orders (AML's ``run_after``).
    after: list[str] = field(default_factory=list)
    todos: list[str] = field(default_factory=list)
    #: Why the step is written commented out (a required argument could not be converted), if it is.
    blocked: str | None = None

    def upstream(self) -> set[str]:
        """The steps whose outputs this step reads."""
        found: set[str] = set()

        def walk(value: Any) -> None:
            if isinstance(value, StepOutputRef):
                found.add(value.step)
            elif isinstance(value, Call):
                for item in [*value.args, *value.kwargs.values()]:
                    walk(item)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)

        walk(self.kwargs)
        return found - {self.var}


@dataclass
class Connection:
    """An Airflow connection the converted DAG needs: its id, type and what AML object it replaces."""

    conn_id: str
    conn_type: str
    replaces: str


@dataclass
class PipelineModel:
    """Everything the emitter writes."""

    dag_id: str
    source: str
    steps: list[Step] = field(default_factory=list)
    #: DAG Params: name -> a ``Call`` (``Param(...)`` / ``data_path_param(...)``).
    params: dict[str, Any] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)
    #: Module-level constants the DAG refers to (``RECURRENCE = ScheduleRecurrence(...)``).
    constants: dict[str, Any] = field(default_factory=dict)
    dag_kwargs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dag_todos: list[str] = field(default_factory=list)
