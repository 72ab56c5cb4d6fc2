"""Run Azurite's Blob service (from ``node_modules``, installed by ``npm ci``) for the tests.

:func:`running_azurite` starts ``azurite-blob`` on a free loopback port with in-memory storage,
waits until it answers HTTP, yields a connection string for the well-known development account
and stops the process afterwards. It never skips: a missing install is an error that says how
to fix it, so a green run always means the Blob datastore was really exercised.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"

# Azurite's published development account (documented by Microsoft; not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_HOST = "127.0.0.1"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_PORT_ATTEMPTS = 3


class AzuriteNotInstalledError(RuntimeError):
    """``node_modules/.bin/azurite-blob`` (or ``node``) is missing."""


class AzuriteStartError(RuntimeError):
    """Azurite was found but did not start answering."""


def connection_string(port: int) -> str:
    """A shared-key connection string for the development account on ``port``."""
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT_NAME};"
        f"AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{_HOST}:{port}/{ACCOUNT_NAME};"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    """Whether an HTTP server answers on ``port`` (any status, even 4xx, counts)."""
    try:
        with urllib.request.urlopen(f"http://{_HOST}:{port}/{ACCOUNT_NAME}?comp=list", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def install_problem() -> str | None:
    """Why Azurite cannot be started here (with the fix), or ``None`` when it can."""
    if not AZURITE_BLOB.exists():
        return (
            f"Azurite is not installed ({AZURITE_BLOB} is missing). "
            f"Run `npm ci` in {REPO_ROOT} (needs Node.js >= 18) to install it from package-lock.json."
        )
    if shutil.which("node") is None:
        return "`node` is not on PATH; install Node.js >= 18, then run `npm ci`."
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    # The process was started in its own session, so its group id is its pid.
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=_STOP_TIMEOUT_S)


def _start(workdir: Path, port: int, log_path: Path) -> subprocess.Popen[bytes] | None:
    """Start Azurite on ``port``; return it once it answers, or ``None`` if it exited early.

    Storage is in memory (Azurite refuses ``--location`` together with that); ``workdir`` is
    only its working directory, for anything it might still write.
    """
    command = [
        str(AZURITE_BLOB),
        "--blobHost",
        _HOST,
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--silent",
        "--skipApiVersionCheck",
        "--disableTelemetry",
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        if _answers(port):
            return proc
        time.sleep(0.1)
    _stop(proc)
    raise AzuriteStartError(
        f"Azurite did not answer on {_HOST}:{port} within {_START_TIMEOUT_S:.0f}s; "
        f"its output:\n{log_path.read_text(errors='replace')[-4000:]}"
    )


@contextmanager
def running_azurite() -> Iterator[str]:
    """Run Azurite's Blob service for the duration of the block; yield its connection string."""
    problem = install_problem()
    if problem is not None:
        raise AzuriteNotInstalledError(problem)
    workdir = Path(tempfile.mkdtemp(prefix="amlpipe-azurite-"))
    log_path = workdir / "azurite.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(_PORT_ATTEMPTS):  # another process may grab the free port first
            port = _free_port()
            proc = _start(workdir, port, log_path)
            if proc is not None:
                break
        if proc is None:
            raise AzuriteStartError(
                f"Azurite exited before answering ({_PORT_ATTEMPTS} attempts); its output:\n"
                f"{log_path.read_text(errors='replace')[-4000:]}"
            )
        yield connection_string(port)
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
