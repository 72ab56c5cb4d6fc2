"""The default compute: a local child process, its output streamed line by line."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
from typing import IO

from airflow_provider_amlpipe.compute.base import Invocation, LineSink
from airflow_provider_amlpipe.errors import StepFailedError

STDERR_TAIL_LINES = 20
_PR_SET_PDEATHSIG = 1


class LocalProcessBackend:
    """Runs a step as a child process of the worker, in its own process group.

    The process group lets :meth:`terminate` stop the whole tree a script may have spawned.
    """

    name = "local"

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None

    def run(self, invocation: Invocation, sink: LineSink) -> None:
        env = {**os.environ, **invocation.env, "PYTHONUNBUFFERED": "1"}
        process = start_process(invocation.argv, cwd=invocation.cwd, env=env)
        self._process = process
        tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)

        def on_line(stream: str, line: str) -> None:
            if stream == "stderr":
                tail.append(line)
            sink(stream, line)

        readers = stream_lines(process, on_line)
        try:
            code = process.wait()
        finally:
            for reader in readers:
                reader.join()
            self._process = None
        if code != 0:
            detail = "\n".join(tail) or "(no output on stderr)"
            raise StepFailedError(f"command exited with code {code}; last lines of stderr:\n{detail}")

    def terminate(self) -> None:
        """Stop the running command and everything it started (``on_kill``)."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)


def _die_with_parent(parent_pid: int) -> None:
    """In the child, before exec: on Linux, be killed when the worker dies, even by SIGKILL.

    The step runs in its own session (so ``terminate`` can stop its whole tree), which would
    otherwise let it outlive a killed worker and keep computing results nobody will commit. A
    worker that died between ``fork`` and ``prctl`` sends no signal, so the child checks that its
    parent is still the worker once the signal is armed, and exits at once if not.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:
            os._exit(137)


def start_process(argv: list[str], *, cwd: str | os.PathLike[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A child process in its own session (so its whole tree can be stopped with ``killpg``) that
    dies with this process, its output piped for :func:`stream_lines`."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=functools.partial(_die_with_parent, os.getpid()),
    )


def stream_lines(process: subprocess.Popen[bytes], on_line: LineSink) -> list[threading.Thread]:
    """Started threads that call ``on_line(stream, line)`` for each line the process prints; join
    them once it exited."""
    assert process.stdout is not None and process.stderr is not None
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, "stdout", on_line), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, "stderr", on_line), daemon=True),
    ]
    for reader in readers:
        reader.start()
    return readers


def _pump(stream: IO[bytes], name: str, on_line: LineSink) -> None:
    for raw in iter(stream.readline, b""):
        on_line(name, raw.decode("utf-8", errors="replace").rstrip("\n"))
    stream.close()
