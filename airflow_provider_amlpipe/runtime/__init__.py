"""What a step's own script imports: its input and output paths by name, params, metrics.

    from airflow_provider_amlpipe import runtime
    df = pd.read_csv(runtime.input_path("raw_data"))
    df.to_csv(runtime.output_path("processed") / "clean.csv")
    runtime.log_metric("rows", len(df))

The step writes a small JSON context file and points ``AMLPIPE_RUN_CONTEXT`` at it; this module
only reads it, so it works in any interpreter that can import this package (and needs nothing
else installed).
"""

from __future__ import annotations

import json
import math
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

CONTEXT_ENV = "AMLPIPE_RUN_CONTEXT"


class NotInStepError(RuntimeError):
    """Raised when the runtime is used outside a running step."""


@lru_cache(maxsize=1)
def context() -> dict[str, Any]:
    """The whole run context (inputs, outputs, params, metrics file)."""
    path = os.environ.get(CONTEXT_ENV)
    if not path:
        raise NotInStepError(f"{CONTEXT_ENV} is not set: this script is not running as an amlpipe step")
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def _lookup(kind: str, name: str) -> Any:
    values: dict[str, Any] = context()[kind]
    if name not in values:
        known = ", ".join(sorted(values)) or "none"
        raise KeyError(f"this step has no {kind[:-1]} named {name!r} (declared: {known})")
    return values[name]


def input_path(name: str) -> Path:
    """Local path of the input ``name`` (a folder, or a file for a DataPath to a file)."""
    return Path(_lookup("inputs", name))


def output_path(name: str) -> Path:
    """Local folder to write the output ``name`` into (it exists and is empty)."""
    return Path(_lookup("outputs", name))


def param(name: str, default: Any = None) -> Any:
    """The step parameter ``name`` from the operator's ``step_params`` (AML's ``params``), or ``default``.

    Airflow's ``params`` (DAG or task Params) are template variables: they reach a script only
    through a template, such as ``step_params={"epochs": "{{ params.epochs }}"}``, which also puts
    their rendered value in the step's fingerprint. A step operator refuses task-level ``params``
    that no template of it uses.
    """
    params: dict[str, Any] = context().get("params", {})
    return params.get(name, default)


def log_metric(name: str, value: float | int | str | bool, step: int | None = None) -> None:
    """Record a metric; it appears in the task log, the step's record and its XCom."""
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    line = json.dumps({"name": name, "value": value, "step": step, "time": time.time()})
    with open(context()["metrics_file"], "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
