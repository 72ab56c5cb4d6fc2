"""``@step``: step reuse and versioned outputs for a plain Python function, the TaskFlow way.

    from pathlib import Path
    from airflow_provider_amlpipe import DataPath, step

    @step(outputs=["sorted"])
    def sort_words(words: Path, sorted: Path, *, reverse: bool = False) -> None:
        lines = words.read_text().split()
        (sorted / "sorted.txt").write_text("\\n".join(sorted(lines, reverse=reverse)))

    with DAG("words", schedule=None):
        result = sort_words(words=DataPath("data", "words.txt"), reverse=True)
        count(result)                 # the DataRef of "sorted" (result["sorted"] says the same)

Calling the decorated function in a DAG builds the check -> work -> commit trio a
``StepReuseSensor`` and a ``StepCommitOperator`` make by hand, with ids that cannot be mistyped:
``<name>_reuse`` decides, ``<name>`` runs the function (skipped when its outputs are reused),
``<name>_commit`` commits them as versions (and emits their asset events); the three sit in a
TaskGroup ``<name>_step``. The function receives each input as a local ``Path`` (a folder, or a
file for a file ``DataPath``) and each output as an empty folder to write into, both as keyword
arguments named after them; every other keyword argument is a parameter (plain JSON), part of the
fingerprint with the function's source (add the files it imports with ``code=``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import XComArg, task
from airflow.sdk.definitions.taskgroup import TaskGroup

from airflow_provider_amlpipe.data.refs import DataPath, DataRef, DatasetInput, Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.datastore import DEFAULT_CONN_ID
from airflow_provider_amlpipe.operators.commit import StepCommitOperator
from airflow_provider_amlpipe.reuse.store import DEFAULT_LEASE_TTL
from airflow_provider_amlpipe.sensors.reuse import StepReuseSensor
from airflow_provider_amlpipe.steps import config


def _is_input(value: object) -> bool:
    return isinstance(value, (DataPath, DatasetInput, XComArg)) or DataRef.is_ref(value)


def _guarded_body(fn: Callable[..., Any]) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    """The guarded task's callable: the user's function, given local paths for its inputs and outputs."""

    def body(reuse_decision: dict[str, Any], step_parameters: dict[str, Any]) -> None:
        paths = {name: Path(path) for name, path in reuse_decision["inputs"].items()}
        paths.update({name: Path(path) for name, path in reuse_decision["outputs"].items()})
        result = fn(**paths, **step_parameters)
        if result is not None:
            raise ConfigurationError(
                fn.__name__,
                f"the step function returned {type(result).__name__}; a step's results are the files it writes",
                "write results into the output folders it receives, and return nothing",
            )

    body.__name__ = body.__qualname__ = fn.__name__
    body.__doc__ = fn.__doc__
    return body


class StepFunction:
    """A function decorated with :func:`step`; call it inside a DAG to add the step."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.fn = fn
        self.options = options
        self.outputs = config.check_outputs(options.get("outputs", ()))
        self.default_inputs = config.check_mapping("inputs", options.get("inputs"), "{'raw': DataPath(...)}")
        self.task_id = options.get("task_id") or fn.__name__
        self._accepted = inspect.signature(fn).parameters
        self._takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in self._accepted.values())
        for name in [*self.default_inputs, *(o.name for o in self.outputs)]:
            self._check_accepts(name, "input" if name in self.default_inputs else "output")
        functools.update_wrapper(self, fn)

    def _check_accepts(self, name: str, what: str) -> None:
        if not self._takes_any and name not in self._accepted:
            annotation = "" if what == "parameter" else ": Path"
            raise ConfigurationError(
                f"{self.fn.__name__}({name}=...)",
                f"the function takes no argument {name!r}, through which it would receive its {what} {name!r}",
                f"add a parameter {name}{annotation} to {self.fn.__name__}, or correct the name",
            )

    def override(self, **options: Any) -> StepFunction:
        """The same step with other options (``task_id=`` to use one function twice in a DAG)."""
        return StepFunction(self.fn, {**self.options, **options})

    def __call__(self, **arguments: Any) -> XComArg:
        inputs = dict(self.default_inputs)
        params: dict[str, Any] = {}
        for name, value in arguments.items():
            if _is_input(value):
                inputs[name] = value
            else:
                params[name] = value
        for name in inputs:
            self._check_accepts(name, "input")
        for name in params:
            self._check_accepts(name, "parameter")
        params = config.check_step_params(params, field=f"{self.fn.__name__} parameters")
        task_id = self.task_id
        options = self.options
        datastore = options.get("datastore", DEFAULT_CONN_ID)
        with TaskGroup(group_id=f"{task_id}_step", prefix_group_id=False, tooltip=f"amlpipe step {task_id}"):
            check = StepReuseSensor(
                task_id=f"{task_id}_reuse",
                guarded_task_id=task_id,
                code=[self.fn, *options.get("code", ())],
                inputs=inputs,
                outputs=self.outputs,
                fingerprint_params=params,
                datastore=datastore,
                allow_reuse=options.get("allow_reuse", True),
                lease_ttl=options.get("lease_ttl", DEFAULT_LEASE_TTL),
                poll_interval=options.get("poll_interval", 5.0),
            )
            guarded: Any = task(task_id=task_id, **options.get("task_kwargs", {}))(_guarded_body(self.fn))
            work = guarded(check.output, params)
            commit = StepCommitOperator(
                task_id=f"{task_id}_commit",
                check_task_id=check.task_id,
                guarded_task_id=task_id,
                outputs=self.outputs,
                datastore=datastore,
            )
            check >> work >> commit
        return commit.output


def step(
    fn: Callable[..., Any] | None = None,
    *,
    outputs: Sequence[Output | str] = (),
    inputs: Mapping[str, Any] | None = None,
    code: Sequence[object] = (),
    datastore: str = DEFAULT_CONN_ID,
    allow_reuse: bool = True,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    poll_interval: float = 5.0,
    task_id: str | None = None,
    task_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Make ``fn`` a reusable step with versioned outputs (see the module docstring).

    :param outputs: the outputs the function writes (``Output`` or names); each arrives as an
        empty folder argument of that name.
    :param inputs: default inputs (call-time keyword arguments that are a ``DataPath``,
        ``DatasetInput`` or an upstream output are inputs too).
    :param code: files or folders the function imports, hashed into the fingerprint with its source.
    :param task_id: the guarded task's id (default: the function's name).
    :param task_kwargs: other arguments for the guarded task (``retries``, ``pool``, ...).
    The rest are those of ``StepReuseSensor``.
    """
    options = {
        "outputs": outputs,
        "inputs": inputs,
        "code": code,
        "datastore": datastore,
        "allow_reuse": allow_reuse,
        "lease_ttl": lease_ttl,
        "poll_interval": poll_interval,
        "task_id": task_id,
        "task_kwargs": dict(task_kwargs or {}),
    }
    if fn is not None:
        return StepFunction(fn, options)
    return lambda function: StepFunction(function, options)
