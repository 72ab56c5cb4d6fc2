"""How a Python program of ours (a sweep's trial script, a ParallelRun node's driver) starts on a remote
compute's node (an Azure Batch task).

The node's working folder gets, besides the step's code and inputs, a folder :data:`STATE_DIR` holding

- ``launch.py`` (:data:`LAUNCHER_SOURCE`, stdlib only): it completes the run context that
  :mod:`airflow_provider_amlpipe.runtime` reads (the inputs' and outputs' paths on this node, the
  metrics file :data:`METRICS_FILE`), makes the output folders, then runs the program with the node's
  interpreter and exits with its exit code;
- ``amlpipe.zip``: this worker's copy of the package's modules, first on the program's path, so the
  node runs the same code (the driver's protocol, ``runtime``) as the worker that submitted it; its
  dependencies (``pathspec``; pandas for tables; the user's libraries) come from the node's interpreter;
- ``context.json``: the step's id and params (paths are added on the node).

The metrics file stays in the job's working folder, where the backend's
:meth:`~airflow_provider_amlpipe.compute.remote.RemoteJobBackend.read_file` reads it while the job runs.
"""

from __future__ import annotations

import json
import tempfile
import threading
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.steps.azure_batch import AzureBatchStep, PoolSpec

STATE_DIR = ".amlpipe"
LAUNCHER = f"{STATE_DIR}/launch.py"
PACKAGE_ZIP = f"{STATE_DIR}/amlpipe.zip"
CONTEXT_FILE = f"{STATE_DIR}/context.json"
METRICS_FILE = f"{STATE_DIR}/metrics.jsonl"

LAUNCHER_SOURCE = '''\
"""amlpipe launcher: complete the run context, then run the program (stdlib only)."""
import json, os, subprocess, sys

def main():
    work = os.getcwd()
    state = os.path.dirname(os.path.abspath(__file__))
    argv = sys.argv[1:]
    split = argv.index("--")
    options, program = argv[:split], argv[split + 1:]
    context_file = os.path.join(state, "context.json")
    with open(context_file, encoding="utf-8") as handle:
        context = json.load(handle)
    for option in options:
        flag, _, rest = option.partition("=")
        name, _, path = rest.partition("=")
        kind = {"--input": "inputs", "--output": "outputs"}[flag]
        context.setdefault(kind, {})[name] = os.path.join(work, path)
        if kind == "outputs":
            os.makedirs(context[kind][name], exist_ok=True)
    context["metrics_file"] = os.path.join(state, "metrics.jsonl")
    open(context["metrics_file"], "a").close()
    with open(context_file, "w", encoding="utf-8") as handle:
        json.dump(context, handle, indent=1)
    env = dict(os.environ)
    env["AMLPIPE_RUN_CONTEXT"] = context_file
    paths = [os.path.join(state, "amlpipe.zip"), work]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    sys.stdout.flush()
    code = subprocess.call([sys.executable, *program], cwd=work, env=env)
    return 128 - code if code < 0 else code

if __name__ == "__main__":
    sys.exit(main())
'''

_ZIP_LOCK = threading.Lock()
_zip_path: Path | None = None


def package_zip() -> Path:
    """A zip of this package's modules (built once per process, in a temporary folder)."""
    global _zip_path
    with _ZIP_LOCK:
        if _zip_path is None or not _zip_path.is_file():
            root = Path(__file__).resolve().parents[1]
            target = Path(tempfile.mkdtemp(prefix="amlpipe-node-")) / "amlpipe.zip"
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(root.rglob("*.py")):
                    archive.write(path, f"{root.name}/{path.relative_to(root).as_posix()}")
            _zip_path = target
        return _zip_path


def launch_files(scratch: Path, step_id: str, params: Mapping[str, Any]) -> dict[str, Path]:
    """The files of :data:`STATE_DIR` (relative path on the node -> local file, written into ``scratch``)."""
    scratch.mkdir(parents=True, exist_ok=True)
    launcher = scratch / "launch.py"
    launcher.write_text(LAUNCHER_SOURCE, encoding="utf-8")
    context = scratch / "context.json"
    context.write_text(json.dumps({"step_id": step_id, "params": dict(params)}, indent=1), encoding="utf-8")
    return {LAUNCHER: launcher, PACKAGE_ZIP: package_zip(), CONTEXT_FILE: context}


def launch_arguments(input_names: Sequence[str], output_names: Sequence[str], program: Sequence[str]) -> list[str]:
    """The launcher's arguments: where each input and output is on the node (placeholders the job
    spec resolves), then the program (``script.py args`` or ``-m module args``)."""
    return [
        LAUNCHER,
        *(f"--input={name}={{inputs.{name}}}" for name in input_names),
        *(f"--output={name}={{outputs.{name}}}" for name in output_names),
        "--",
        *program,
    ]


def batch_python_job(
    *,
    python: str,
    code: Mapping[str, Path],
    program: Sequence[str],
    input_names: Sequence[str],
    output_names: Sequence[str],
    pool_id: str,
    scratch: Path,
    step_id: str,
    params: Mapping[str, Any],
    job_name: str,
    output_hint: str,
) -> AzureBatchStep:
    """The Azure Batch task that runs ``python <launcher> ... -- <program>`` in a working folder holding
    ``code`` (relative path -> local file) and the launcher's files, on the existing pool ``pool_id``."""
    job = AzureBatchStep(
        executable=python,
        source_directory=None,
        arguments=launch_arguments(input_names, output_names, program),
        params=dict(params),
        pool=PoolSpec(pool_id),
        job_name=job_name,
        local=False,
        extra_files={**code, **launch_files(scratch, step_id, params)},
    )
    job.output_hint = output_hint
    return job
