"""Runs Databricks tasks locally on PySpark: a notebook, a Python script, a jar.

Each run is a child process in its own process group (one JVM start each when the run uses Spark), so a
notebook cannot leak state into the next, a crash cannot take the worker down, and :meth:`LocalRunner.cancel`
stops the run with everything it started. Its output reaches ``sink(stream, line)`` line by line as printed,
with the secrets' values replaced by ``[REDACTED]`` as on Databricks. A run ends in a :class:`RunResult`
shaped like the Jobs API's ``get_run_output``: the state, the notebook's exit value, or the error and trace.

Notebooks and scripts run in ``python -m airflow_provider_amlpipe.databricks.child``, where
``SparkSession.builder.getOrCreate()`` gives a small local session (``local[1]``, no UI, few shuffle
partitions; ``spark_conf`` adds or overrides settings). Jars run with the ``spark-submit`` PySpark ships.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.compute.local import start_process, stream_lines
from airflow_provider_amlpipe.databricks.child import SECRETS_ENV
from airflow_provider_amlpipe.databricks.notebook import read_notebook

LineSink = Callable[[str, str], None]
"""Receives ``(stream, line)`` for each line the run prints (``stdout`` or ``stderr``), as it prints it."""

SUCCESS, FAILED, TIMEDOUT, CANCELED = "SUCCESS", "FAILED", "TIMEDOUT", "CANCELED"
REDACTED = "[REDACTED]"
TAIL_LINES = 50
KILL_GRACE_SECONDS = 5.0
DEFAULT_SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.session.timeZone": "UTC",
}
_JAVA_EXCEPTION = re.compile(r'^Exception in thread "[^"]*" (.*)$')
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class RunResult:
    """How a run ended: ``state`` is ``SUCCESS``, ``FAILED``, ``TIMEDOUT`` or ``CANCELED`` (Databricks' result states).

    ``exit_value`` is the notebook's ``dbutils.notebook.exit`` value; ``error`` / ``trace`` say why a run
    failed (``cell`` is the failing notebook cell's number); the tails are the last lines of each stream.
    """

    state: str
    exit_value: str | None = None
    error: str | None = None
    trace: str | None = None
    cell: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    returncode: int | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == SUCCESS


def spark_home() -> Path:
    """The Spark distribution inside the installed PySpark package (its ``bin/spark-submit``, ``jars``)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


class LocalRunner:
    """Runs one task at a time locally; :meth:`cancel` (from any thread) stops the current run and any later one.

    ``workdir`` is the run's working folder (relative paths resolve there), ``dbfs_root`` the folder behind
    ``dbfs:/`` paths, ``env`` extra environment variables (a cluster's ``spark_env_variables``), ``secrets``
    ``{scope: {key: value}}`` for ``dbutils.secrets``, ``spark_conf`` Spark settings over the small defaults.
    """

    def __init__(
        self,
        *,
        workdir: str | os.PathLike[str],
        dbfs_root: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        spark_conf: Mapping[str, str] | None = None,
        master: str = "local[1]",
        sink: LineSink | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.dbfs_root = Path(dbfs_root).resolve()
        self.env = dict(env or {})
        self.secrets = {scope: dict(keys) for scope, keys in (secrets or {}).items()}
        self.spark_conf = {**DEFAULT_SPARK_CONF, **(spark_conf or {})}
        self.master = master
        self.sink = sink
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._cancelled = False
        values = {v for keys in self.secrets.values() for v in keys.values() if v}
        self._secret_values = sorted(values, key=len, reverse=True)

    # ------------------------------------------------------------------ the three task kinds

    def run_notebook(
        self, path: str | os.PathLike[str], params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> RunResult:
        """Run a notebook (``.py`` source format or ``.ipynb``); ``params`` are its widgets' values.

        Raises :class:`~airflow_provider_amlpipe.databricks.notebook.NotebookError` before anything runs for a
        notebook that cannot be read or has a cell that cannot run locally.
        """
        cells = read_notebook(path)
        spec = {
            "kind": "notebook",
            "path": str(Path(path).resolve()),
            "cells": [cell.to_json() for cell in cells],
            "params": {str(k): str(v) for k, v in (params or {}).items()},
        }
        return self._run_child(spec, timeout)

    def run_python_script(
        self, path: str | os.PathLike[str], args: Sequence[str] = (), *, timeout: float | None = None
    ) -> RunResult:
        """Run a Python script with ``sys.argv = [path, *args]``; ``SparkSession.builder.getOrCreate()`` works."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"python script {path} does not exist")
        spec = {"kind": "python", "path": str(Path(path).resolve()), "args": [str(a) for a in args]}
        return self._run_child(spec, timeout)

    def run_jar(
        self,
        jar: str | os.PathLike[str],
        main_class: str,
        args: Sequence[str] = (),
        *,
        libraries: Sequence[str | os.PathLike[str]] = (),
        timeout: float | None = None,
    ) -> RunResult:
        """Run ``main_class`` of ``jar`` with ``spark-submit`` (``libraries``: more jars on the class path)."""
        for item in [jar, *libraries]:
            if not Path(item).is_file():
                raise FileNotFoundError(f"jar {item} does not exist")
        argv = [str(spark_home() / "bin" / "spark-submit"), "--master", self.master, "--class", main_class]
        for key, value in self.spark_conf.items():
            argv += ["--conf", f"{key}={value}"]
        if libraries:
            argv += ["--jars", ",".join(str(Path(lib).resolve()) for lib in libraries)]
        argv += [str(Path(jar).resolve()), *[str(a) for a in args]]
        return self._execute(argv, self._child_env(), None, timeout)

    def cancel(self) -> None:
        """Stop the running task and everything it started; later runs on this runner end ``CANCELED`` at once."""
        with self._lock:
            self._cancelled = True
            process = self._process
        if process is not None:
            _stop_group(process)

    # ------------------------------------------------------------------ the child process

    def _child_env(self) -> dict[str, str]:
        submit = ["--master", self.master]
        for key, value in self.spark_conf.items():
            submit += ["--conf", f"{key}={value}"]
        env = {"SPARK_LOCAL_IP": "127.0.0.1", **os.environ, **self.env}
        env.update(
            PYTHONUNBUFFERED="1",
            PYSPARK_PYTHON=sys.executable,
            PYSPARK_DRIVER_PYTHON=sys.executable,
            PYSPARK_SUBMIT_ARGS=shlex.join([*submit, "pyspark-shell"]),
            PYTHONPATH=os.pathsep.join(p for p in [_PACKAGE_PARENT, env.get("PYTHONPATH", "")] if p),
        )
        env.pop(SECRETS_ENV, None)
        return env

    def _run_child(self, spec: dict[str, Any], timeout: float | None) -> RunResult:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dbfs_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="amlpipe-databricks-"))
        try:
            result_path = scratch / "result.json"
            spec = {**spec, "dbfs_root": str(self.dbfs_root), "result": str(result_path)}
            (scratch / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
            env = self._child_env()
            env[SECRETS_ENV] = json.dumps(self.secrets)
            argv = [sys.executable, "-m", "airflow_provider_amlpipe.databricks.child", str(scratch / "spec.json")]
            return self._execute(argv, env, result_path, timeout)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _execute(
        self, argv: list[str], env: dict[str, str], result_path: Path | None, timeout: float | None
    ) -> RunResult:
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self._lock:
            if self._cancelled:
                return RunResult(CANCELED, error="the run was cancelled before it started")
            process = start_process(argv, cwd=self.workdir, env=env)
            self._process = process
        tails = {name: collections.deque[str](maxlen=TAIL_LINES) for name in ("stdout", "stderr")}

        def on_line(stream: str, line: str) -> None:
            line = self._redact(line)
            tails[stream].append(line)
            if self.sink is not None:
                self.sink(stream, line)

        readers = stream_lines(process, on_line)
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(process)
        finally:
            with self._lock:
                self._process = None
        for reader in readers:
            reader.join(timeout=10)
        if any(reader.is_alive() for reader in readers):  # something the run started still holds its output
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            for reader in readers:
                reader.join()
        common: dict[str, Any] = {
            "stdout_tail": "\n".join(tails["stdout"]),
            "stderr_tail": "\n".join(tails["stderr"]),
            "returncode": process.returncode,
            "duration": time.monotonic() - started,
        }
        if timed_out:
            return RunResult(TIMEDOUT, error=f"the run did not finish within {timeout} s and was stopped", **common)
        if self._cancelled:
            return RunResult(CANCELED, error="the run was cancelled", **common)
        if result_path is None:  # a jar: its exit code and stderr say how it went
            if process.returncode == 0:
                return RunResult(SUCCESS, **common)
            error, trace = _java_error(list(tails["stderr"]))
            return RunResult(
                FAILED,
                error=error or f"spark-submit exited with code {process.returncode}",
                trace=trace or common["stderr_tail"],
                **common,
            )
        try:
            data = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return RunResult(
                FAILED,
                error=f"the run's process ended with code {process.returncode} without a result "
                f"(crashed or killed); last lines of stderr:\n{common['stderr_tail'] or '(none)'}",
                **common,
            )
        return RunResult(
            data["state"],
            exit_value=self._redact_optional(data.get("exit_value")),
            error=self._redact_optional(data.get("error")),
            trace=self._redact_optional(data.get("trace")),
            cell=data.get("cell"),
            **common,
        )

    def _redact(self, text: str) -> str:
        for value in self._secret_values:
            text = text.replace(value, REDACTED)
        return text

    def _redact_optional(self, text: str | None) -> str | None:
        return None if text is None else self._redact(text)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the run's process group, SIGKILL after a grace period if the run is still there."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _java_error(stderr: list[str]) -> tuple[str | None, str | None]:
    """The exception a jar's main thread died of, and its stack, from spark-submit's stderr."""
    for index, line in enumerate(stderr):
        match = _JAVA_EXCEPTION.match(line)
        if match:
            trace = [line]
            for more in stderr[index + 1 :]:
                if not (more.startswith(("\tat ", "\t... ", "Caused by:")) or more.startswith(" ")):
                    break
                trace.append(more)
            return match.group(1), "\n".join(trace)
    return None, None


# ---------------------------------------------------------------------- one-call forms


def run_notebook(
    path: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    *,
    workdir: str | os.PathLike[str],
    dbfs_root: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    spark_conf: Mapping[str, str] | None = None,
    timeout: float | None = None,
    sink: LineSink | None = None,
) -> RunResult:
    runner = LocalRunner(
        workdir=workdir, dbfs_root=dbfs_root, env=env, secrets=secrets, spark_conf=spark_conf, sink=sink
    )
    return runner.run_notebook(path, params, timeout=timeout)


def run_python_script(
    path: str | os.PathLike[str],
    args: Sequence[str] = (),
    *,
    workdir: str | os.PathLike[str],
    dbfs_root: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    spark_conf: Mapping[str, str] | None = None,
    timeout: float | None = None,
    sink: LineSink | None = None,
) -> RunResult:
    runner = LocalRunner(
        workdir=workdir, dbfs_root=dbfs_root, env=env, secrets=secrets, spark_conf=spark_conf, sink=sink
    )
    return runner.run_python_script(path, args, timeout=timeout)


def run_jar(
    jar: str | os.PathLike[str],
    main_class: str,
    args: Sequence[str] = (),
    *,
    libraries: Sequence[str | os.PathLike[str]] = (),
    workdir: str | os.PathLike[str],
    dbfs_root: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    spark_conf: Mapping[str, str] | None = None,
    timeout: float | None = None,
    sink: LineSink | None = None,
) -> RunResult:
    runner = LocalRunner(workdir=workdir, dbfs_root=dbfs_root, env=env, spark_conf=spark_conf, sink=sink)
    return runner.run_jar(jar, main_class, args, libraries=libraries, timeout=timeout)
