"""The program a VM runs for a Python script step (stdlib only, Python 3.7+; it never imports this package).

:mod:`~airflow_provider_amlpipe.compute.azure_vm_job` ships this file's source in the Run Command
script; on the VM it runs in the run's working folder and

1. reads the job's manifest from the SAS URL in ``AMLPIPE_JOB_MANIFEST_URL`` (what to download and
   where, the script, its arguments, the output folders and their blob prefixes);
2. downloads the code and input files (each from its own read SAS URL) into the folder, makes the
   empty output folders and writes the run context file ``runtime`` reads (as a local step does);
3. runs ``<this python> <script> <arguments>`` there, its streams going to the run's stdout / stderr;
4. if the script succeeded, uploads every file of each output folder to
   ``<container>/<prefix>/<relative path>`` (``PUT`` with ``x-ms-blob-type: BlockBlob``, through the
   container write SAS URL in ``AMLPIPE_JOB_UPLOAD_URL``);
5. exits with the script's exit code (:data:`EXIT_SETUP` / :data:`EXIT_UPLOAD` when staging failed).

The SAS URLs and ``AMLPIPE_JOB_PARAMS`` (the step's params) arrive as environment variables (Run
Command parameters); they are removed from the script's environment, and what this program prints
names blobs without their signatures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

MANIFEST_ENV = "AMLPIPE_JOB_MANIFEST_URL"
UPLOAD_ENV = "AMLPIPE_JOB_UPLOAD_URL"
PARAMS_ENV = "AMLPIPE_JOB_PARAMS"
SECRET_ENVS = (MANIFEST_ENV, UPLOAD_ENV, PARAMS_ENV)
CONTEXT_ENV = "AMLPIPE_RUN_CONTEXT"
#: Exit codes when the step could not be staged (download) or its outputs not uploaded.
EXIT_SETUP = 97
EXIT_UPLOAD = 98
#: Where the job's own files go in the working folder (the runtime module, the context file).
STATE_DIR = ".amlpipe"
ATTEMPTS = 4
_TRANSIENT = (408, 429, 500, 502, 503, 504)


class StagingError(Exception):
    """A download or upload failed (the message names the blob, never its signature)."""

    transient = False


def public(url: str) -> str:
    """A URL without its query (its SAS signature)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _send(request: urllib.request.Request, what: str, sink: Any = None, attempts: int = ATTEMPTS) -> None:
    """Send ``request`` (copying the answer into ``sink``); transient failures are tried again."""
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                if sink is not None:
                    shutil.copyfileobj(response, sink)
                return
        except urllib.error.HTTPError as exc:
            error = StagingError(f"{what}: HTTP {exc.code} {exc.reason}")
            error.transient = exc.code in _TRANSIENT
        except (urllib.error.URLError, OSError) as exc:
            error = StagingError(f"{what}: {getattr(exc, 'reason', exc)}")
            error.transient = True
        if not error.transient or attempt == attempts:
            raise error
        if sink is not None:
            sink.seek(0)
            sink.truncate()
        time.sleep(min(2**attempt, 20))


def download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as handle:
        _send(urllib.request.Request(url), f"downloading {public(url)}", handle)


def blob_url(container_url: str, key: str) -> str:
    """The URL of blob ``key`` through a container SAS URL."""
    parts = urllib.parse.urlsplit(container_url)
    path = parts.path.rstrip("/") + "/" + urllib.parse.quote(key, safe="/")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def upload(path: Path, url: str) -> None:
    size = path.stat().st_size
    headers = {"x-ms-blob-type": "BlockBlob", "Content-Length": str(size), "Content-Type": "application/octet-stream"}
    for attempt in range(1, ATTEMPTS + 1):
        with open(path, "rb") as handle:  # the body is a stream: each attempt reopens it
            request = urllib.request.Request(url, data=handle if size else b"", headers=headers, method="PUT")
            try:
                _send(request, f"uploading {path.name} to {public(url)}", attempts=1)
                return
            except StagingError as exc:
                if not exc.transient or attempt == ATTEMPTS:
                    raise
        time.sleep(min(2**attempt, 20))


def files_under(folder: Path) -> list[str]:
    """'/'-separated paths of the files under ``folder``, sorted."""
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            full = Path(root) / name
            if full.is_file():
                found.append(full.relative_to(folder).as_posix())
    return sorted(found)


def argv_of(parts: list[list[Any]], work: Path) -> list[str]:
    """Arguments from their parts: text, or ``{"path": <relative>}`` (a path in the working folder)."""
    argv = []
    for argument in parts:
        text = ""
        for part in argument:
            text += str(work / part["path"]) if isinstance(part, dict) else str(part)
        argv.append(text)
    return argv


def stage_in(manifest: dict[str, Any], work: Path) -> Path:
    """Download the code and inputs, make the output folders, write the run context; its path."""
    for item in manifest["files"]:
        download(item["url"], work / item["path"])
    for rel in manifest["output_dirs"]:
        (work / rel).mkdir(parents=True, exist_ok=True)
    state = work / STATE_DIR
    state.mkdir(exist_ok=True)
    metrics = state / "metrics.jsonl"
    metrics.touch()
    context = {
        "step_id": manifest["step_id"],
        "inputs": {name: str(work / rel) for name, rel in manifest["context"]["inputs"].items()},
        "outputs": {name: str(work / rel) for name, rel in manifest["context"]["outputs"].items()},
        "params": json.loads(os.environ.get(PARAMS_ENV) or "{}"),
        "metrics_file": str(metrics),
    }
    path = state / "context.json"
    path.write_text(json.dumps(context, indent=1), encoding="utf-8")
    return path


def script_env(manifest: dict[str, Any], work: Path, context_file: Path) -> dict[str, str]:
    """The script's environment: this one without the job's secrets, plus the context and PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENVS}
    env[CONTEXT_ENV] = str(context_file)
    paths = [str(work / p) for p in manifest.get("pythonpath", [])]
    if importlib.util.find_spec("airflow_provider_amlpipe") is None:
        paths.append(str(work / STATE_DIR / "lib"))  # the shipped runtime module, unless the VM has the package
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def stage_out(manifest: dict[str, Any], work: Path, container_url: str) -> int:
    """Upload each output folder's files under its blob prefix; how many files."""
    count = 0
    for output in manifest["outputs"]:
        folder = work / output["path"]
        for rel in files_under(folder):
            upload(folder / rel, blob_url(container_url, f"{output['prefix']}/{rel}"))
            count += 1
    return count


def report_metrics(work: Path) -> None:
    metrics = work / STATE_DIR / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                print(f"amlpipe metric: {line.strip()}", flush=True)


def main() -> int:
    work = Path.cwd()
    try:
        manifest_path = work / STATE_DIR / "job.json"
        download(os.environ[MANIFEST_ENV], manifest_path)
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        context_file = stage_in(manifest, work)
    except (StagingError, KeyError, ValueError, OSError) as exc:
        print(f"amlpipe: could not stage the step on this VM: {exc}", file=sys.stderr, flush=True)
        return EXIT_SETUP
    argv = [sys.executable, str(work / manifest["script"]), *argv_of(manifest["arguments"], work)]
    sys.stdout.flush()
    code = subprocess.call(argv, cwd=str(work), env=script_env(manifest, work, context_file))
    if code < 0:
        code = 128 - code  # killed by a signal: the shell's convention
    report_metrics(work)
    if code != 0:
        return code
    try:
        count = stage_out(manifest, work, os.environ[UPLOAD_ENV])
    except (StagingError, KeyError, OSError) as exc:
        print(f"amlpipe: could not upload the step's outputs: {exc}", file=sys.stderr, flush=True)
        return EXIT_UPLOAD
    print(f"amlpipe: uploaded {count} output file(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
