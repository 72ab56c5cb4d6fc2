"""An existing Azure VM as a remote job backend: a Python script step run through Run Command.

Plain Python (no Airflow). The step's job spec (rendered by
:meth:`~airflow_provider_amlpipe.steps.python_script.PythonScriptStep.remote_spec`) names the VM,
the interpreter, and two secrets: a read SAS URL of the job's manifest blob (what to download,
the script, its arguments, the outputs' blob prefixes) and a container write SAS URL (outputs). The
Run Command script (:func:`render_script`) is a POSIX sh wrapper holding no secret: it writes the
stdlib-only :mod:`~airflow_provider_amlpipe.compute.azure_vm_bootstrap` program and the ``runtime``
module into the run's folder and ``exec``\\ s the bootstrap, which stages in, runs the script,
uploads the outputs and exits with the script's exit code. The secrets and the step's params travel
only as Run Command parameters (``env``), so never in the script text, in logs nor in
:class:`~airflow_provider_amlpipe.compute.remote.RemoteJob` details.

The run id is the remote step's job id: resubmitting it reattaches to the run on the VM (see
:mod:`~airflow_provider_amlpipe.compute.azure_vm_script`); :meth:`AzureVmJobBackend.cleanup`
deletes the run's folder, so a later try runs again. Run Command returns a script's output only
when it ended (its last 3 KB of stdout, 4 KB of stderr): :meth:`AzureVmJobBackend.read_logs` shows
them once, then.
"""

from __future__ import annotations

import base64
import json
import logging
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe import runtime
from airflow_provider_amlpipe.compute import azure_vm_bootstrap as bootstrap
from airflow_provider_amlpipe.compute.azure_vm import AzureComputeClient
from airflow_provider_amlpipe.compute.azure_vm_script import (
    CANCELLED as RUN_CANCELLED,
)
from airflow_provider_amlpipe.compute.azure_vm_script import (
    RUNNING as RUN_RUNNING,
)
from airflow_provider_amlpipe.compute.azure_vm_script import (
    SUCCEEDED as RUN_SUCCEEDED,
)
from airflow_provider_amlpipe.compute.azure_vm_script import (
    RunCommandOperation,
)
from airflow_provider_amlpipe.compute.remote import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    JobFilesNotSupportedError,
    JobStatus,
    LineSink,
    RemoteJob,
    tail_lines,
)
from airflow_provider_amlpipe.errors import AmlPipeError

log = logging.getLogger(__name__)

KIND = "Azure VM"
DEFAULT_PYTHON = "python3"
_LIB = f"{bootstrap.STATE_DIR}/lib/airflow_provider_amlpipe"


def _b64_file(text: str, dest: str) -> str:
    payload = base64.b64encode(text.encode()).decode()
    return f"printf %s '{payload}' | base64 -d > {shlex.quote(dest)}"


def render_script(python: str = DEFAULT_PYTHON) -> str:
    """The Run Command script: write the bootstrap and the runtime module, run the bootstrap with ``python``.

    Holds no secret and nothing of one run: what to run comes from the manifest, through ``env``.
    """
    py = shlex.quote(python)
    missing = f"amlpipe: {python} is not on this VM's PATH: install Python 3 on the VM, or name its interpreter"
    return "\n".join(
        [
            "# amlpipe: a Python script step. Its URLs and params arrive as environment variables, never in this text.",
            "set -u",
            f"command -v {py} >/dev/null 2>&1 || {{ echo {shlex.quote(missing)} >&2; exit 127; }}",
            f"mkdir -p {_LIB}/runtime",
            f": > {_LIB}/__init__.py",
            _b64_file(Path(runtime.__file__).read_text(encoding="utf-8"), f"{_LIB}/runtime/__init__.py"),
            _b64_file(Path(bootstrap.__file__).read_text(encoding="utf-8"), f"{bootstrap.STATE_DIR}/bootstrap.py"),
            f"exec {py} {bootstrap.STATE_DIR}/bootstrap.py",
            "",
        ]
    )


def job_env(spec: Mapping[str, Any]) -> dict[str, str]:
    """What travels as Run Command parameters: the two SAS URLs and the step's params."""
    return {
        bootstrap.MANIFEST_ENV: str(spec["manifest_url"]),
        bootstrap.UPLOAD_ENV: str(spec["upload_url"]),
        bootstrap.PARAMS_ENV: json.dumps(spec.get("params") or {}),
    }


class AzureVmJobBackend:
    """Runs Python script step specs on existing Linux VMs of one connection (a
    :class:`~airflow_provider_amlpipe.compute.remote.RemoteJobBackend`)."""

    kind = KIND

    def __init__(self, client: AzureComputeClient) -> None:
        self.client = client
        self._checked: set[tuple[str, str | None]] = set()

    def check_vm(self, vm_name: str, resource_group: str | None = None) -> None:
        """:class:`~airflow_provider_amlpipe.errors.ConfigurationError` naming ``vm_name`` if the VM does not exist."""
        if (vm_name, resource_group) in self._checked:
            return
        self.client.check_exists(self.client.target(vm_name=vm_name, resource_group=resource_group))
        self._checked.add((vm_name, resource_group))

    def check(self, spec: Mapping[str, Any]) -> None:
        self.check_vm(spec["vm_name"], spec.get("resource_group"))

    def submit(self, job_id: str, spec: Mapping[str, Any], sink: LineSink) -> RemoteJob:
        """Start the run ``job_id`` on the VM, or reattach to it (Run Command's wrapper keys runs by id)."""
        op = self.client.begin_run_command(
            spec["vm_name"],
            render_script(spec.get("python") or DEFAULT_PYTHON),
            run_id=job_id,
            env=job_env(spec),
            timeout_seconds=spec.get("timeout_seconds"),
            resource_group=spec.get("resource_group"),
        )
        sink(
            "status",
            f"Run Command sent to VM {op.vm!r} (resource group {op.resource_group!r}) for run {job_id}"
            " (a run already there under this id is reattached, not run again)",
        )
        return RemoteJob(self.kind, job_id, {"vm": op.vm, "resource_group": op.resource_group, "op": op.to_dict()})

    @staticmethod
    def _op(job: RemoteJob) -> RunCommandOperation:
        return RunCommandOperation.from_dict(job.details["op"])

    def status(self, job: RemoteJob) -> JobStatus:
        op = self.client.poll(self._op(job))
        job.details["op"] = op.to_dict()
        if not op.done:
            return JobStatus(RUNNING, f"running on VM {op.vm!r}")
        if op.state == RUN_SUCCEEDED:
            return JobStatus(SUCCEEDED, "exit code 0", exit_code=op.exit_code)
        errors = [op.error] if op.error else []
        errors.extend(tail_lines(op.stderr))
        state = CANCELLED if op.state == RUN_CANCELLED else FAILED
        return JobStatus(state, op.state, tuple(errors), op.exit_code)

    def read_file(self, job: RemoteJob, path: str, offset: int = 0) -> bytes:
        raise JobFilesNotSupportedError(self.kind, "Run Command returns a script's output only once it ended")

    def read_logs(self, job: RemoteJob, sink: LineSink) -> None:
        """The script's output once it ended (Run Command gives none before); never twice."""
        op = self._op(job)
        if op.state == RUN_RUNNING or "stdout" in job.log_offsets:
            return
        for stream, text, total in (("stdout", op.stdout, op.stdout_bytes), ("stderr", op.stderr, op.stderr_bytes)):
            shown = len(text.encode())
            if total > shown:
                sink(stream, f"(the first {total - shown} bytes are not shown: Run Command returns the end only)")
            for line in text.splitlines():
                sink(stream, line)
            job.log_offsets[stream] = total

    def cancel(self, job: RemoteJob) -> None:
        op = self._op(job)
        if op.done:
            return
        try:
            job.details["op"] = self.client.cancel_run_command(op).to_dict()
        except AmlPipeError as exc:
            log.warning("could not cancel run %s on VM %r: %s", job.job_id, job.details.get("vm"), exc)

    def cleanup(self, job: RemoteJob) -> None:
        """Delete the run's folder on the VM (code, inputs, outputs, logs); best effort."""
        try:
            self.client.delete_run(job.details["vm"], job.job_id, resource_group=job.details.get("resource_group"))
            log.info("deleted run %s from VM %r", job.job_id, job.details["vm"])
        except AmlPipeError as exc:
            log.warning("could not delete run %s from VM %r: %s", job.job_id, job.details.get("vm"), exc)

    def close(self) -> None:
        self.client.close()
