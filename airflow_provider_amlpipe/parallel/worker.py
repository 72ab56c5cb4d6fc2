"""A worker process: loads the entry script, calls ``init()`` once, then ``run(mini_batch)`` per request.

The script is loaded as AML loads it: its folder first on ``sys.path``, ``sys.argv`` holding the step's
arguments (so ``argparse`` in ``init()`` works unchanged), the process's working folder the step's. What
``run()`` returns -- a list (one element per successful item) or a pandas DataFrame (one row per
successful item) -- is turned into text rows here, so only strings cross the pipe.

Messages to the coordinator: ``("ready",)``, ``("init_failed", traceback)``, then per request
``("done", batch_id, rows)`` or ``("failed", batch_id, traceback)``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

#: Table files a worker keeps parsed (mini-batches of one file mostly arrive one after another).
TABLE_CACHE = 2
#: The module name AML scripts are imported under is not part of the contract; this one cannot clash.
MODULE_NAME = "amlpipe_entry_script"


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker of a pool loads (picklable: it crosses to a spawned process)."""

    entry_script: str
    source_directory: str | None
    arguments: list[str]
    env: dict[str, str]


def load_entry_script(spec: WorkerSpec) -> ModuleType:
    """Import the entry script with ``sys.argv`` and ``sys.path`` as AML sets them."""
    script = Path(spec.entry_script)
    folder = spec.source_directory or str(script.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.argv = [str(script), *spec.arguments]
    module_spec = importlib.util.spec_from_file_location(MODULE_NAME, script)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {script}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[MODULE_NAME] = module
    module_spec.loader.exec_module(module)
    return module


def as_rows(result: Any) -> list[str]:
    """``run()``'s result as text rows: a DataFrame's rows space-separated (as AML writes them), a list's
    elements as ``str()``."""
    if result is None:
        raise TypeError("run() returned None; it must return a list (one element per item) or a DataFrame")
    if hasattr(result, "to_csv") and hasattr(result, "columns"):
        text = result.to_csv(sep=" ", header=False, index=False, lineterminator="\n")
        return text.splitlines()
    if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
        raise TypeError(f"run() returned {type(result).__name__}; it must return a list or a pandas DataFrame")
    return [element if isinstance(element, str) else str(element) for element in result]


class _Tables:
    """The last few table files read, so consecutive mini-batches of a file parse it once."""

    def __init__(self) -> None:
        self._frames: OrderedDict[str, Any] = OrderedDict()

    def batch(self, payload: dict[str, Any]) -> Any:
        from airflow_provider_amlpipe.parallel.items import read_table

        path = payload["table"]
        frame = self._frames.pop(path, None)
        if frame is None:
            frame = read_table(path, payload["format"])
        self._frames[path] = frame
        while len(self._frames) > TABLE_CACHE:
            self._frames.popitem(last=False)
        return frame.iloc[payload["rows"]].reset_index(drop=True)


def mini_batch_argument(payload: dict[str, Any], tables: _Tables) -> Any:
    """The argument of ``run()``: a list of file paths, or a DataFrame of table rows."""
    if "files" in payload:
        return list(payload["files"])
    return tables.batch(payload)


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """The worker's loop (the target of its process); returns when the coordinator sends ``None``."""
    os.environ.update(spec.env)
    try:
        module = load_entry_script(spec)
        run = getattr(module, "run", None)
        if not callable(run):
            raise AttributeError(f"{spec.entry_script} defines no run(mini_batch) function")
        init = getattr(module, "init", None)
        if callable(init):
            init()
    except BaseException:
        conn.send(("init_failed", traceback.format_exc()))
        return
    conn.send(("ready",))
    tables = _Tables()
    while True:
        request = conn.recv()
        if request is None:
            return
        batch_id, payload = request
        try:
            rows = as_rows(run(mini_batch_argument(payload, tables)))
        except Exception:
            conn.send(("failed", batch_id, traceback.format_exc()))
            continue
        conn.send(("done", batch_id, rows))
