"""A worker process: loads the entry script, calls ``init()`` once, then ``run(mini_batch)`` per request.

The script is loaded as AML loads it: its folder first on ``sys.path``, ``sys.argv`` holding the step's
arguments (so ``argparse`` in ``init()`` works unchanged), the process's working folder the step's. What
``run()`` returns -- a list (one element per successful item) or a pandas DataFrame (one row per
successful item) -- is turned into text rows here, so only strings cross the pipe.

Messages to the coordinator: ``("ready",)``, ``("init_failed", traceback)``, then per request
``("done", batch_id, rows, files)`` or ``("failed", batch_id, traceback)``.

With ``capture`` (``summary_only`` steps, whose ``run()`` writes its own files), the worker hands the script
a folder of its own wherever the output folder appears (in the arguments and the run context), and after each
``run()`` moves what appeared there into the output folder: ``files`` are their relative paths, so the files
of a mini-batch are known even while other workers write at the same time. What ``init()`` writes is moved
too, but belongs to no mini-batch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import traceback
from collections import OrderedDict
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

from airflow_provider_amlpipe.runtime import CONTEXT_ENV

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
    #: ``[output folder, capture root]``: see the module's docstring.
    capture: list[str] | None = None


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


def _captured(spec: WorkerSpec) -> tuple[WorkerSpec, Path | None]:
    """The spec this worker runs with, and its own folder, when the step captures what ``run()`` writes."""
    if spec.capture is None:
        return spec, None
    output, root = spec.capture
    private = Path(root) / str(os.getpid())
    private.mkdir(parents=True, exist_ok=True)
    context_file = os.environ.get(CONTEXT_ENV)
    if context_file:
        context = json.loads(Path(context_file).read_text(encoding="utf-8"))
        outputs = context.get("outputs", {})
        context["outputs"] = {name: str(private) if path == output else path for name, path in outputs.items()}
        mine = Path(root) / f"context-{os.getpid()}.json"
        mine.write_text(json.dumps(context), encoding="utf-8")
        os.environ[CONTEXT_ENV] = str(mine)
    # The output folder as a whole path (not the start of a longer name such as "<output>2").
    folder = re.compile(re.escape(output) + r"(?=$|[/\s,;:'\"])")
    arguments = [folder.sub(lambda _: str(private), argument) for argument in spec.arguments]
    return replace(spec, arguments=arguments), private


def _drain(private: Path | None, output: str) -> list[str]:
    """Move what appeared in the worker's folder into the output folder; the files' relative paths."""
    if private is None:
        return []
    moved = []
    for path in sorted(p for p in private.rglob("*") if p.is_file()):
        rel = path.relative_to(private).as_posix()
        target = Path(output) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        moved.append(rel)
    return moved


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """The worker's loop (the target of its process); returns when the coordinator sends ``None``."""
    os.environ.update(spec.env)
    output = spec.capture[0] if spec.capture else ""
    try:
        spec, private = _captured(spec)
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
    _drain(private, output)  # what init() wrote belongs to no mini-batch
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
            _drain(private, output)  # a failed try's files are the output's, as without capture
            conn.send(("failed", batch_id, traceback.format_exc()))
            continue
        conn.send(("done", batch_id, rows, _drain(private, output)))
