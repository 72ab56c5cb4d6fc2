"""Databricks as a remote job backend: one step run is one Jobs API 2.2 one-time run (``runs/submit``).

Plain Python (no Airflow), on databricks-sdk's ``WorkspaceClient``. The step's job spec (rendered by
:class:`~airflow_provider_amlpipe.steps.databricks.DatabricksStep`) names the task kind, the code files
to upload, the parameters (with the staged data's ``abfss://`` / ``wasbs://`` URIs already in them) and the
cluster; this backend uploads the code into the job's own workspace folder, submits the run with the job id
as its ``idempotency_token`` (so a retry that submits again gets the same run and nothing runs twice),
turns the run's state into a :class:`~airflow_provider_amlpipe.compute.remote.JobStatus`, shows the run's
output (stdout, the notebook's exit value, the error and its trace) when it ends, cancels it and deletes
the uploaded code afterwards.

Databricks keeps an idempotency token's run for good: a retry after that run was *cancelled or failed*
would only be told about it again. So a run found already ended unsuccessfully before this submission was
sent is an earlier attempt's, and the run is submitted again under the next token (``<job id>.1``...).
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied, Unauthenticated
from databricks.sdk.service.jobs import Run, RunOutput, SubmitTask
from databricks.sdk.service.workspace import ImportFormat, Language

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
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError

KIND = "Databricks"
TASK_KEY = "step"
#: Idempotency tokens tried for one step run: a retry after a failed or cancelled run runs under the next.
MAX_RUN_GENERATIONS = 8
#: Life-cycle states after which a run does not change any more.
_ENDED = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}
_RUNNING_CLUSTER_STATES = {"RUNNING", "RESIZING"}
EXIT_VALUE_PREFIX = "Notebook exit value: "
T = TypeVar("T")


def run_token(job_id: str, generation: int) -> str:
    """The idempotency token of a step run's ``generation``-th submission (≤ 64 characters)."""
    return job_id if generation == 0 else f"{job_id}.{generation}"


def job_state(run: Run) -> JobStatus:
    """A run's state as a :class:`JobStatus` (without its output: see :meth:`DatabricksJobBackend.status`)."""
    state = run.state
    life_cycle = state.life_cycle_state.value if state and state.life_cycle_state else "PENDING"
    result = state.result_state.value if state and state.result_state else None
    message = (state.state_message or "") if state else ""
    detail = f"{life_cycle}: {message}" if message else life_cycle
    if life_cycle not in _ENDED:
        return JobStatus(RUNNING, detail)
    if result in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
        return JobStatus(SUCCEEDED, result)
    if result == "CANCELED":
        return JobStatus(CANCELLED, detail)
    return JobStatus(FAILED, f"{life_cycle} {result or ''}".strip() + (f": {message}" if message else ""))


class DatabricksJobBackend:
    """Runs step jobs as one-time runs of a Databricks workspace.

    ``workspace_dir`` is the workspace folder under which each job gets ``<job id>/`` for its uploaded
    notebook, script folder or jars (deleted by :meth:`cleanup`). ``host`` names the workspace in errors.
    """

    kind = KIND

    def __init__(self, client: WorkspaceClient, host: str, workspace_dir: str, *, conn_id: str = "") -> None:
        self.client = client
        self.host = host
        self.workspace_dir = "/" + workspace_dir.strip("/")
        self.conn_id = conn_id
        self._outputs: dict[int, RunOutput] = {}
        #: Runs seen ended, by id: their output is shown once, without asking for the run again.
        self._ended: dict[int, Run] = {}

    # -- the RemoteJobBackend protocol ----------------------------------------------------------------

    def check(self, spec: Mapping[str, Any]) -> None:
        """Refuse a missing or stopped cluster and missing workspace files before anything is uploaded."""
        cluster_id = spec["cluster"].get("existing_cluster_id")
        if cluster_id:
            try:
                cluster = self._call(lambda: self.client.clusters.get(cluster_id))
            except StepFailedError as error:
                raise ConfigurationError(
                    "existing_cluster_id",
                    f"cluster {cluster_id!r} cannot be read in workspace {self.host}: {error}",
                    "pass the id of a cluster in this workspace (Compute > the cluster > More > View JSON)",
                ) from None
            state = cluster.state.value if cluster.state else "UNKNOWN"
            if state not in _RUNNING_CLUSTER_STATES and not spec.get("permit_cluster_restart"):
                raise ConfigurationError(
                    "permit_cluster_restart",
                    f"cluster {cluster_id!r} is {state} and permit_cluster_restart is False",
                    "start the cluster, or pass permit_cluster_restart=True to let the run start it",
                )
        for field, path in spec.get("remote_paths", {}).items():
            if not self.exists(path):
                raise ConfigurationError(
                    field, f"{path!r} does not exist in workspace {self.host}", "upload it there, or correct the path"
                )

    def submit(self, job_id: str, spec: Mapping[str, Any], sink: LineSink) -> RemoteJob:
        folder = f"{self.workspace_dir}/{job_id}"
        self._upload(folder, spec["code"])
        task = self._task(folder, spec)
        for generation in range(MAX_RUN_GENERATIONS):
            sent = time.time() * 1000
            with self._errors():
                waiter = self.client.jobs.submit(
                    run_name=spec["run_name"],
                    tasks=[SubmitTask.from_dict(task)],
                    idempotency_token=run_token(job_id, generation),
                    timeout_seconds=spec.get("timeout_seconds"),
                )
                run_id = int(waiter.run_id)
                run = self.client.jobs.get_run(run_id)
            state = job_state(run)
            earlier = state.ended and (run.end_time or 0) < sent
            if earlier and not state.succeeded:
                sink("status", f"Databricks run {run_id} (an earlier attempt) ended {state.detail}; submitting again")
                continue
            what = "reattached to" if earlier or (run.start_time or sent) < sent else "submitted"
            sink("status", f"Databricks run {run_id} {what}: {run.run_page_url or ''}".rstrip(": "))
            details = {"run_id": run_id, "folder": folder, "url": run.run_page_url or "", "generation": generation}
            return RemoteJob(KIND, job_id, details=details)
        raise StepFailedError(
            f"Databricks: the runs of job {job_id} failed {MAX_RUN_GENERATIONS} times; not submitting again"
        )

    def status(self, job: RemoteJob) -> JobStatus:
        run_id = int(job.details["run_id"])
        run = self._call(lambda: self.client.jobs.get_run(run_id))
        status = job_state(run)
        if not status.ended:
            return status
        self._ended[run_id] = run
        if status.succeeded:
            return status
        output = self._output(run)
        errors = [output.error] if output is not None and output.error else []
        if output is not None and output.error_trace:
            errors += tail_lines(output.error_trace)
        return JobStatus(status.state, status.detail, tuple(errors))

    def read_file(self, job: RemoteJob, path: str, offset: int = 0) -> bytes:
        raise JobFilesNotSupportedError(self.kind, "a run's output is only given once it ended")

    def read_logs(self, job: RemoteJob, sink: LineSink) -> None:
        """Databricks gives a run's output once it ended: its stdout, exit value, error and trace, once."""
        run_id = int(job.details["run_id"])
        if run_id not in self._ended or job.log_offsets.get("output"):
            return
        job.log_offsets["output"] = 1
        output = self._output(self._ended[run_id])
        if output is None:
            return
        for line in (output.logs or "").splitlines():
            sink("stdout", line)
        if output.logs_truncated:
            sink("stdout", "(Databricks truncated the run's output)")
        if output.notebook_output is not None and output.notebook_output.result is not None:
            sink("stdout", f"{EXIT_VALUE_PREFIX}{output.notebook_output.result}")
        for line in (output.error_trace or "").splitlines():
            sink("stderr", line)
        if output.error:
            sink("stderr", output.error)

    def cancel(self, job: RemoteJob) -> None:
        # Best effort: a run that ended or vanished needs no cancelling.
        with contextlib.suppress(DatabricksError):
            self.client.jobs.cancel_run(int(job.details["run_id"]))

    def cleanup(self, job: RemoteJob) -> None:
        folder = job.details.get("folder")
        if folder:
            # Best effort: nothing uploaded, or deleted already.
            with contextlib.suppress(DatabricksError):
                self.client.workspace.delete(folder, recursive=True)

    def close(self) -> None:
        """The SDK's client holds no connection that must be closed."""

    # -- helpers ---------------------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """Whether a workspace path, ``dbfs:/`` path or ``/Volumes/`` file exists."""
        try:
            if path.startswith("dbfs:"):
                self._call(lambda: self.client.dbfs.get_status(path))
            elif path.startswith("/Volumes/"):
                self._call(lambda: self.client.files.get_metadata(path))
            else:
                self._call(lambda: self.client.workspace.get_status(path))
        except _Missing:
            return False
        return True

    def read_bytes(self, path: str) -> bytes:
        """The content of a workspace file, ``dbfs:/`` file or ``/Volumes/`` file (to fingerprint it)."""
        if path.startswith("dbfs:"):
            with self._call(lambda: self.client.dbfs.download(path)) as stream:
                return bytes(stream.read())
        if path.startswith("/Volumes/"):
            contents = self._call(lambda: self.client.files.download(path)).contents
            return b"" if contents is None else bytes(contents.read())
        exported = self._call(lambda: self.client.workspace.export(path))
        return base64.b64decode(exported.content or "")

    def upload(self, local: Path, path: str) -> None:
        """Write a local file to a workspace path: ``dbfs:/``, ``/Volumes/`` or a workspace file."""
        with self._errors():
            if path.startswith("dbfs:"):
                with local.open("rb") as data:
                    self.client.dbfs.upload(path, data, overwrite=True)
            elif path.startswith("/Volumes/"):
                with local.open("rb") as data:
                    self.client.files.upload(path, data, overwrite=True)
            else:
                self.client.workspace.mkdirs(str(PurePosixPath(path).parent))
                content = base64.b64encode(local.read_bytes()).decode("ascii")
                self.client.workspace.import_(path, content=content, format=ImportFormat.RAW, overwrite=True)

    def _upload(self, folder: str, code: Mapping[str, Mapping[str, str]]) -> None:
        """Upload each ``rel -> {"path": local file | "text": content, "as": notebook | file}`` under ``folder``."""
        made: set[str] = set()
        for rel, item in code.items():
            target = PurePosixPath(folder, rel)
            local = Path(item.get("path", rel))
            data = item["text"].encode("utf-8") if "text" in item else local.read_bytes()
            content = base64.b64encode(data).decode("ascii")
            with self._errors():
                if str(target.parent) not in made:
                    self.client.workspace.mkdirs(str(target.parent))
                    made.add(str(target.parent))
                if item["as"] != "notebook":
                    self.client.workspace.import_(str(target), content=content, format=ImportFormat.RAW, overwrite=True)
                elif local.suffix == ".ipynb":
                    self.client.workspace.import_(
                        str(target.with_suffix("")), content=content, format=ImportFormat.JUPYTER, overwrite=True
                    )
                else:
                    self.client.workspace.import_(
                        str(target.with_suffix("")),
                        content=content,
                        format=ImportFormat.SOURCE,
                        language=Language.PYTHON,
                        overwrite=True,
                    )

    def _task(self, folder: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The run's one task (Jobs API 2.2 ``SubmitTask``), with uploaded code named in the workspace."""

        def place(ref: Mapping[str, str]) -> str:
            if "remote" in ref:
                return ref["remote"]
            return f"/Workspace{folder}/{ref['code']}"

        task: dict[str, Any] = {"task_key": TASK_KEY, **spec["cluster"]}
        task.pop("permit_cluster_restart", None)
        kind = spec["task_kind"]
        if kind == "notebook":
            path = str(PurePosixPath(folder, spec["entry"]["code"]).with_suffix(""))
            task["notebook_task"] = {
                "notebook_path": path,
                "source": "WORKSPACE",
                "base_parameters": dict(spec["parameters"]),
            }
        elif kind == "python":
            task["spark_python_task"] = {
                "python_file": place(spec["entry"]),
                "source": "WORKSPACE",
                "parameters": list(spec["parameters"]),
            }
        else:
            task["spark_jar_task"] = {
                "main_class_name": spec["main_class_name"],
                "parameters": list(spec["parameters"]),
            }
        libraries = [{"jar": place(jar)} for jar in spec.get("jars", [])] + list(spec.get("libraries", []))
        if libraries:
            task["libraries"] = libraries
        if spec.get("timeout_seconds"):
            task["timeout_seconds"] = spec["timeout_seconds"]
        return task

    def _output(self, run: Run) -> RunOutput | None:
        """The output of the run's task (``get-output`` takes a task run's id, not the run's)."""
        if run.run_id in self._outputs:
            return self._outputs[int(run.run_id)]
        tasks = run.tasks or []
        if not tasks or tasks[0].run_id is None:
            return None
        task_run_id = tasks[0].run_id
        try:
            output = self._call(lambda: self.client.jobs.get_run_output(task_run_id))
        except StepFailedError:
            return None  # the run ended before its task started (a cluster that never came up)
        self._outputs[int(run.run_id or 0)] = output
        return output

    def _call(self, call: Callable[[], T]) -> T:
        """Call the SDK; credentials refused → :class:`ConfigurationError` naming the connection,
        other API errors → :class:`StepFailedError` (the SDK already retried what can be retried)."""
        with self._errors():
            return call()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (PermissionDenied, Unauthenticated) as exc:
            raise ConfigurationError(
                f"compute (connection {self.conn_id!r})",
                f"workspace {self.host} refused the credentials: {exc}",
                "check the connection's personal access token or service principal and its permissions",
            ) from None
        except NotFound as exc:
            raise _Missing(str(exc)) from None
        except DatabricksError as exc:
            raise StepFailedError(f"Databricks workspace {self.host}: {exc}") from None


class _Missing(StepFailedError):
    """The API answered "not found"."""
