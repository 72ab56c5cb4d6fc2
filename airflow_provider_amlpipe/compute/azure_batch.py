"""Azure Batch as a remote job backend: one step run is one task in its own Batch job.

Plain Python (no Airflow), on azure-batch 15's ``BatchClient``. The step's job spec (rendered by
:class:`~airflow_provider_amlpipe.steps.azure_batch.AzureBatchStep`) names the pool, the
resource files (code and inputs, as SAS URLs), the output files (to a container SAS URL) and the
command's parts; this backend makes the pool when asked, submits the job and its task under ids
derived from the run's id (a retry finds them and reattaches), turns the task's state into a
:class:`~airflow_provider_amlpipe.compute.remote.JobStatus`, streams ``stdout.txt`` /
``stderr.txt`` with ranged reads, terminates the task on cancel and deletes job and pool as the
step asked.

Command lines: Batch runs them without a shell. To create the output folders first, the
executable is wrapped in ``/bin/sh -c`` on Linux nodes and ``cmd /c`` on Windows nodes (known
from the pool's node agent), with every argument quoted for that shell.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
from collections.abc import Mapping
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.policies import SansIOHTTPPolicy

from airflow_provider_amlpipe.compute.batch_pool import KIND
from airflow_provider_amlpipe.compute.remote import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    JobStatus,
    LineSink,
    RemoteJob,
    tail_lines,
)
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError

log = logging.getLogger(__name__)

TASK_ID = "step"
#: Batch job ids tried for one run: a retry after a failed task runs under the next one.
MAX_JOB_GENERATIONS = 8
_LOG_FILES = {"stdout": "stdout.txt", "stderr": "stderr.txt"}
_PLACEHOLDER = re.compile(r"\{((?:inputs|outputs)\.[^{}]*)\}")
_DELETE_POLL_SECONDS = 5


class AllowHttpPolicy(SansIOHTTPPolicy):
    """Lets a bearer token go to a plain-http loopback endpoint (a local test server only)."""

    def on_request(self, request: Any) -> None:
        request.context.options["enforce_https"] = False


def batch_job_id(run_id: str, generation: int = 0) -> str:
    """The Batch job id of a run (≤ 64 characters of ``[A-Za-z0-9_-]``)."""
    return f"amlpipe-{run_id}" if generation == 0 else f"amlpipe-{run_id}-{generation}"


def is_windows(node_agent_sku_id: str | None) -> bool:
    return bool(node_agent_sku_id) and str(node_agent_sku_id).lower().startswith("batch.node.windows")


def command_line(spec: Mapping[str, Any], windows: bool) -> str:
    """The task's command line: make the output folders, then run the executable with its arguments."""
    sep = "\\" if windows else "/"
    paths = {key: value.replace("/", sep) for key, value in spec["paths"].items()}
    argv = [_PLACEHOLDER.sub(lambda m: paths[m.group(1)], str(a)) for a in spec["arguments"]]
    executable = str(spec["executable"])
    outputs = [d.replace("/", sep) for d in spec["output_dirs"]]
    if windows:
        run = subprocess.list2cmdline([executable.replace("/", sep), *argv])
        mkdirs = "".join(f"mkdir {subprocess.list2cmdline([d])} 2>nul & " for d in outputs)
        return f'cmd /c "{mkdirs}{run}"'
    program = executable if not spec.get("bundled") or executable.startswith("/") else f"./{executable}"
    run = "exec " + " ".join(shlex.quote(a) for a in [program, *argv])
    mkdirs = f"mkdir -p -- {' '.join(shlex.quote(d) for d in outputs)} && " if outputs else ""
    return f"/bin/sh -c {shlex.quote(mkdirs + run)}"


class AzureBatchJobBackend:
    """Runs Batch step specs on one Batch account (a
    :class:`~airflow_provider_amlpipe.compute.remote.RemoteJobBackend`)."""

    kind = KIND

    def __init__(self, client: BatchClient, account_url: str) -> None:
        self.client = client
        self.account_url = account_url

    # -- before submitting ---------------------------------------------------------------------

    def check(self, spec: Mapping[str, Any]) -> None:
        """Refuse an unknown pool the step may not create (before anything is uploaded)."""
        pool = spec["pool"]
        if pool["create"]:
            return
        self._existing_pool(pool["pool_id"])

    def _existing_pool(self, pool_id: str) -> bm.BatchPool:
        try:
            return self.client.get_pool(pool_id)
        except ResourceNotFoundError:
            raise ConfigurationError(
                "pool_id",
                f"pool {pool_id!r} does not exist in the Batch account {self.account_url}",
                "create the pool, correct pool_id, or pass create_pool=True with vm_size and vm_image_urn",
            ) from None

    def _ensure_pool(self, pool: Mapping[str, Any], sink: LineSink) -> bool:
        """Whether the step's pool runs Windows; the pool is created first when asked and missing."""
        if pool["create"]:
            image = pool["image"]
            options = bm.BatchPoolCreateOptions(
                id=pool["pool_id"],
                vm_size=pool["vm_size"],
                virtual_machine_configuration=bm.VirtualMachineConfiguration(
                    image_reference=bm.BatchVmImageReference(
                        publisher=image["publisher"],
                        offer=image["offer"],
                        sku=image["sku"],
                        version=image.get("version") or None,
                    ),
                    node_agent_sku_id=pool["node_agent_sku_id"],
                ),
                target_dedicated_nodes=pool["target_compute_nodes"],
            )
            try:
                self.client.create_pool(options)
                sink("status", f"created Batch pool {pool['pool_id']!r} ({pool['target_compute_nodes']} node(s))")
                return is_windows(pool["node_agent_sku_id"])
            except ResourceExistsError:
                pass  # created by an earlier try of this step, or by another step
        existing = self._existing_pool(pool["pool_id"])
        config = existing.virtual_machine_configuration
        return is_windows(config.node_agent_sku_id if config is not None else None)

    # -- the job --------------------------------------------------------------------------------

    def submit(self, job_id: str, spec: Mapping[str, Any], sink: LineSink) -> RemoteJob:
        """Create the pool (if asked), the job and its task; reattach to a task already there.

        A task under the run's job id that failed or was terminated is not reused: the next job id
        of the run (``amlpipe-<id>-<n>``) is tried, so a retry after a failure runs again.
        """
        pool = spec["pool"]
        windows = self._ensure_pool(pool, sink)
        task = self._task_options(spec, windows)
        for generation in range(MAX_JOB_GENERATIONS):
            candidate = batch_job_id(job_id, generation)
            details = {
                "batch_job_id": candidate,
                "task_id": TASK_ID,
                "pool_id": pool["pool_id"],
                "delete_job": bool(spec["delete_job"]),
                "delete_pool": bool(spec["delete_pool"]),
                "positive_exit_code_failure": bool(spec["positive_exit_code_failure"]),
            }
            if self._submit_under(candidate, spec, task, sink):
                return RemoteJob(self.kind, job_id, details)
        raise StepFailedError(f"{MAX_JOB_GENERATIONS} Batch job ids of run {job_id} are all taken by failed tasks")

    def _submit_under(
        self, batch_job: str, spec: Mapping[str, Any], task: bm.BatchTaskCreateOptions, sink: LineSink
    ) -> bool:
        try:
            self.client.create_job(
                bm.BatchJobCreateOptions(
                    id=batch_job,
                    display_name=str(spec["display_name"])[:1024],
                    # Not all_tasks_complete_mode=terminatejob: a job without tasks yet counts as complete, so
                    # the service could end it before its task is added. cleanup() ends or deletes it.
                    pool_info=bm.BatchPoolInfo(pool_id=spec["pool"]["pool_id"]),
                )
            )
        except ResourceExistsError as exc:
            if _code(exc) != "JobExists":
                sink("status", f"Batch job {batch_job}: {_code(exc)}; trying the next id")
                return False
        try:
            self.client.create_task(batch_job, task)
        except ResourceExistsError as exc:
            if _code(exc) != "TaskExists":  # JobCompleted, JobBeingDeleted...
                sink("status", f"Batch job {batch_job}: {_code(exc)}; trying the next id")
                return False
            existing = self.client.get_task(batch_job, TASK_ID)
            info = existing.execution_info
            if existing.state == "completed" and not (info is not None and info.result == "success"):
                sink("status", f"Batch job {batch_job}: its task ended unsuccessfully; submitting under the next id")
                return False
            sink("status", f"Batch job {batch_job} already submitted; reattaching ({existing.state})")
            return True
        sink("status", f"Batch job {batch_job} submitted to pool {spec['pool']['pool_id']!r} at {self.account_url}")
        return True

    @staticmethod
    def _task_options(spec: Mapping[str, Any], windows: bool) -> bm.BatchTaskCreateOptions:
        condition = "tasksuccess" if spec["positive_exit_code_failure"] else "taskcompletion"
        resources = [
            bm.ResourceFile(**{k: v for k, v in r.items() if not (windows and k == "file_mode")})
            for r in spec["resource_files"]
        ]
        outputs = [
            bm.OutputFile(
                file_pattern=o["file_pattern"],
                destination=bm.OutputFileDestination(
                    container=bm.OutputFileBlobContainerDestination(container_url=o["container_url"], path=o["path"])
                ),
                upload_options=bm.OutputFileUploadConfiguration(upload_condition=condition),
            )
            for o in spec["output_files"]
        ]
        identity = None
        if spec["run_as_admin"]:
            identity = bm.UserIdentity(auto_user=bm.AutoUserSpecification(scope="task", elevation_level="admin"))
        return bm.BatchTaskCreateOptions(
            id=TASK_ID,
            display_name=str(spec["display_name"])[:1024],
            command_line=command_line(spec, windows),
            resource_files=resources,
            output_files=outputs,
            user_identity=identity,
        )

    def status(self, job: RemoteJob) -> JobStatus:
        batch_job, task_id = job.details["batch_job_id"], job.details["task_id"]
        task = self.client.get_task(batch_job, task_id)
        if task.state != "completed":
            if task.state == "running":
                return JobStatus(RUNNING, "running")
            return JobStatus(RUNNING, f"{task.state}: waiting for a node of pool {job.details['pool_id']!r}")
        job.details["ended"] = True  # read_logs then flushes a last line without its newline
        info = task.execution_info
        exit_code = info.exit_code if info is not None else None
        failure = info.failure_info if info is not None else None
        if info is not None and info.result == "success":
            return JobStatus(SUCCEEDED, "exit code 0", exit_code=exit_code)
        code = (failure.code if failure is not None else None) or "unknown"
        if code == "FailureExitCode" and not job.details.get("positive_exit_code_failure", True):
            return JobStatus(
                SUCCEEDED, f"exit code {exit_code} (is_positive_exit_code_failure=False)", exit_code=exit_code
            )
        errors = []
        if failure is not None:
            errors.append(f"{failure.code}: {failure.message or ''}".rstrip(": "))
            errors.extend(f"{d.name}: {d.value}" for d in failure.details or [] if d.name)
        errors.extend(tail_lines(self._read_all(batch_job, task_id, _LOG_FILES["stderr"])))
        state = CANCELLED if code == "TaskEnded" else FAILED
        return JobStatus(state, code, tuple(errors), exit_code)

    def _read_all(self, batch_job: str, task_id: str, name: str) -> str:
        try:
            return b"".join(self.client.download_task_file(batch_job, task_id, name)).decode("utf-8", "replace")
        except HttpResponseError:
            return ""  # the task never reached a node (a resource file failed): no log exists

    def read_logs(self, job: RemoteJob, sink: LineSink) -> None:
        """Send the complete lines added to the task's stdout / stderr since the last call."""
        batch_job, task_id = job.details["batch_job_id"], job.details["task_id"]
        ended = bool(job.details.get("ended"))
        for stream, name in _LOG_FILES.items():
            offset = job.log_offsets.get(stream, 0)
            try:
                data = b"".join(self.client.download_task_file(batch_job, task_id, name, ocp_range=f"bytes={offset}-"))
            except HttpResponseError as exc:
                # 416: nothing new; 404 / 409 TaskNotStarted: no file yet. Logs never fail the step.
                if exc.status_code not in (404, 409, 416):
                    log.debug("could not read %s of Batch job %s: %s", name, batch_job, exc)
                continue
            used = len(data) if ended else data.rfind(b"\n") + 1
            for line in data[:used].decode("utf-8", "replace").splitlines():
                sink(stream, line)
            job.log_offsets[stream] = offset + used

    def read_file(self, job: RemoteJob, path: str, offset: int = 0) -> bytes:
        """``path`` under the task's working directory (``wd/``), from ``offset`` (a ranged read)."""
        batch_job, task_id = job.details["batch_job_id"], job.details["task_id"]
        try:
            return b"".join(
                self.client.download_task_file(batch_job, task_id, f"wd/{path}", ocp_range=f"bytes={offset}-")
            )
        except HttpResponseError as exc:
            # 416: nothing past offset; 404 / 409 TaskNotStarted: no such file yet.
            if exc.status_code in (404, 409, 416):
                return b""
            raise

    def cancel(self, job: RemoteJob) -> None:
        try:
            self.client.terminate_task(job.details["batch_job_id"], job.details["task_id"])
        except (ResourceExistsError, ResourceNotFoundError):
            pass  # already completed, or gone
        except HttpResponseError as exc:
            log.warning("could not terminate the task of Batch job %s: %s", job.details["batch_job_id"], exc)

    def cleanup(self, job: RemoteJob) -> None:
        """Delete the Batch job (or, when it is kept, end it so it stops counting as active) and the
        pool if the step asked for it; best effort, not awaited."""
        details = job.details
        batch_job, pool_id = details["batch_job_id"], details["pool_id"]
        if details.get("delete_job", True):
            self._best_effort(
                lambda: self.client.begin_delete_job(batch_job, polling_interval=_DELETE_POLL_SECONDS),
                f"delete Batch job {batch_job}",
            )
        else:
            # azure-batch 15.1 sends no request body without options, which the service rejects; the
            # options model is not exported from azure.batch.models.
            reason = bm._models.BatchJobTerminateOptions(termination_reason="amlpipe step ended")
            self._best_effort(
                lambda: self.client.begin_terminate_job(batch_job, reason, polling_interval=_DELETE_POLL_SECONDS),
                f"end Batch job {batch_job}",
            )
        if details.get("delete_pool"):
            self._best_effort(
                lambda: self.client.begin_delete_pool(pool_id, polling_interval=_DELETE_POLL_SECONDS),
                f"delete Batch pool {pool_id!r}",
            )

    @staticmethod
    def _best_effort(call: Any, action: str) -> None:
        try:
            call()
            log.info("requested: %s", action)
        except (ResourceNotFoundError, ResourceExistsError):
            pass  # already gone, or already ended
        except HttpResponseError as exc:
            log.warning("could not %s: %s", action, exc)

    def close(self) -> None:
        self.client.close()


def _code(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", None) or exc.status_code)
