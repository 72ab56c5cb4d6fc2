"""A Databricks step's local run: ``python -m airflow_provider_amlpipe.databricks.step SPEC``.

The step's local process backend starts this module like any other step's command (so its output
streams into the task log, and ``on_kill`` stops it); it runs the notebook, script or jar with
:class:`~airflow_provider_amlpipe.databricks.local_runner.LocalRunner` and turns the run's result into
what a step process says: the notebook's exit value printed, exit code 0 on success; on failure the trace
and then the error (naming the failing cell) as the last lines of stderr, exit code 1.

``SPEC`` is a JSON file: ``kind`` (``notebook``, ``python``, ``jar``), ``path`` (notebook, script or main
jar), ``params`` (a notebook's widgets), ``args`` (a script's or jar's arguments), ``main_class``,
``libraries``, ``workdir``, ``dbfs_root``, ``env``, ``spark_conf``, ``timeout``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from airflow_provider_amlpipe.databricks.local_runner import LocalRunner, RunResult
from airflow_provider_amlpipe.databricks.notebook import NotebookError

EXIT_VALUE_PREFIX = "Notebook exit value: "
KINDS = {"notebook": "notebook", "python": "Python script", "jar": "jar"}


def _print(stream: str, line: str) -> None:
    out = sys.stderr if stream == "stderr" else sys.stdout
    print(line, file=out, flush=True)


def run(spec: dict[str, Any]) -> int:
    runner = LocalRunner(
        workdir=spec["workdir"],
        dbfs_root=spec["dbfs_root"],
        env=spec.get("env") or {},
        spark_conf=spec.get("spark_conf") or {},
        sink=_print,
    )

    def cancel(signum: int, frame: FrameType | None) -> None:
        # Not in the handler itself: cancelling waits for the run's process, which the main thread waits on too.
        threading.Thread(target=runner.cancel, daemon=True).start()

    signal.signal(signal.SIGTERM, cancel)
    signal.signal(signal.SIGINT, cancel)
    timeout = spec.get("timeout")
    kind = spec["kind"]
    try:
        if kind == "notebook":
            result = runner.run_notebook(spec["path"], spec.get("params") or {}, timeout=timeout)
        elif kind == "python":
            result = runner.run_python_script(spec["path"], spec.get("args") or [], timeout=timeout)
        else:
            result = runner.run_jar(
                spec["path"], spec["main_class"], spec.get("args") or [], libraries=spec.get("libraries") or [],
                timeout=timeout,
            )  # fmt: skip
    except (NotebookError, FileNotFoundError) as error:
        print(f"Databricks {KINDS[kind]} {spec['path']} cannot run: {error}", file=sys.stderr, flush=True)
        return 1
    return report(kind, result)


def report(kind: str, result: RunResult) -> int:
    """Print how the run ended as a step process does; its exit code."""
    what = KINDS[kind]
    if result.ok:
        if result.exit_value is not None:
            print(f"{EXIT_VALUE_PREFIX}{result.exit_value}", flush=True)
        print(f"Databricks {what} run succeeded in {result.duration:.1f} s", flush=True)
        return 0
    if result.trace:
        print(result.trace.rstrip("\n"), file=sys.stderr, flush=True)
    print(f"Databricks {what} run {result.state}: {result.error or 'no error given'}", file=sys.stderr, flush=True)
    return 1


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m airflow_provider_amlpipe.databricks.step SPEC.json", file=sys.stderr)
        return 2
    return run(json.loads(Path(argv[1]).read_text(encoding="utf-8")))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
