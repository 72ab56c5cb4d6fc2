"""The contract every remote job backend implements, and the loop that waits for one.

Plain Python (no Airflow). A remote step kind (ADLA, Azure Batch, an Azure VM...) renders a
*job spec* (plain JSON) from its step definition and the staged data's URLs; a
:class:`RemoteJobBackend` submits it under an id derived from the step's fingerprint and its task
instance (so a retry reattaches instead of running the work twice), reports its status, streams
its logs, cancels it and cleans up after it. What a backend must remember between those calls
lives in a :class:`RemoteJob`, which round-trips through JSON: it travels in a trigger's event
while the task is deferred, so the triggerer, the worker that submitted and the worker that
resumes can all be different processes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_amlpipe.compute.staging import StagingSettings
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
JOB_STATES = (RUNNING, SUCCEEDED, FAILED, CANCELLED)
#: Lines of a failed job's stderr shown in the error (and so in the task log).
STDERR_TAIL_LINES = 30
_JOB_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "airflow-provider-amlpipe/remote-job")

LineSink = Callable[[str, str], None]
"""Receives ``(stream, line)``: ``stream`` is ``stdout`` or ``stderr`` (or a status channel)."""


@dataclass
class RemoteJob:
    """A submitted job: its id, the backend kind, and what the backend needs to find it again.

    ``details`` is the backend's own plain-JSON state (pool and job ids, whether it created the
    pool...); ``log_offsets`` how much of each log stream was already shown. Never holds secrets:
    it is written to the metadata database as part of a trigger.
    """

    kind: str
    job_id: str
    details: dict[str, Any] = field(default_factory=dict)
    log_offsets: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "job_id": self.job_id,
            "details": dict(self.details),
            "log_offsets": dict(self.log_offsets),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RemoteJob:
        return cls(
            kind=str(data["kind"]),
            job_id=str(data["job_id"]),
            details=dict(data.get("details") or {}),
            log_offsets={str(k): int(v) for k, v in (data.get("log_offsets") or {}).items()},
        )


@dataclass(frozen=True)
class JobStatus:
    """Where a job is: ``state`` is one of :data:`JOB_STATES`; ``errors`` explain a failure
    (the service's messages and the tail of the job's stderr)."""

    state: str
    detail: str = ""
    errors: tuple[str, ...] = ()
    exit_code: int | None = None

    @property
    def ended(self) -> bool:
        return self.state != RUNNING

    @property
    def succeeded(self) -> bool:
        return self.state == SUCCEEDED

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "errors": list(self.errors), "exit_code": self.exit_code}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobStatus:
        state = str(data.get("state", FAILED))
        return cls(
            state=state if state in JOB_STATES else FAILED,
            detail=str(data.get("detail", "")),
            errors=tuple(str(e) for e in data.get("errors") or ()),
            exit_code=data.get("exit_code"),
        )


class RemoteJobBackend(Protocol):
    """A service that runs one kind of job.

    Every method may be called from a different process than :meth:`submit` was (a retry, the
    triggerer, the resumed task): all a method needs is in the :class:`RemoteJob`. Methods raise
    :class:`~airflow_provider_amlpipe.errors.ConfigurationError` for what the user must fix and
    :class:`~airflow_provider_amlpipe.errors.StepFailedError` for a job that cannot run.
    """

    kind: str

    def check(self, spec: Mapping[str, Any]) -> None:
        """Refuse a spec the service would reject (a missing pool...), before anything is uploaded."""

    def submit(self, job_id: str, spec: Mapping[str, Any], sink: LineSink) -> RemoteJob:
        """Submit ``spec`` as ``job_id``, or reattach to the job already submitted under it."""

    def status(self, job: RemoteJob) -> JobStatus:
        """The job's state now; for a failed job, its error messages and stderr tail."""

    def read_logs(self, job: RemoteJob, sink: LineSink) -> None:
        """Send the log lines written since the last call to ``sink`` (advancing ``job.log_offsets``)."""

    def read_file(self, job: RemoteJob, path: str, offset: int = 0) -> bytes:
        """The bytes of ``path`` (relative to the job's working folder) from ``offset`` on, while the job
        runs or after it ended (until :meth:`cleanup`); ``b""`` when the file does not exist (yet) or
        has nothing past ``offset``. A sweep follows a remote trial's metrics file with it.

        A service that cannot read a job's files raises :class:`JobFilesNotSupportedError`.
        """

    def cancel(self, job: RemoteJob) -> None:
        """Stop the job (best effort; a job that already ended stays as it is)."""

    def cleanup(self, job: RemoteJob) -> None:
        """Remove what the job left on the service, as its spec asked (job, pool...); best effort."""

    def close(self) -> None:
        """Release the backend's connections."""


class JobFilesNotSupportedError(ConfigurationError):
    """The service gives no access to a job's files while it runs (:meth:`RemoteJobBackend.read_file`)."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(
            "compute",
            f"{kind} cannot read a job's files while it runs ({why}), which following a trial's metrics needs",
            "run the trials on an Azure Batch connection, or with compute='local'",
        )


def remote_job_id(fingerprint: str, attempt_key: str) -> str:
    """The deterministic id of one step run on a remote service.

    ``attempt_key`` must be stable across Airflow retries of one task instance (dag, task, run,
    map index; *not* the try number), so a retry submits the same id and reattaches.
    """
    return str(uuid.uuid5(_JOB_ID_NAMESPACE, f"{fingerprint}\n{attempt_key}"))


def failure_message(job: RemoteJob, status: JobStatus) -> str:
    """What a failed job's error says: kind, id, state, and its messages and stderr tail."""
    detail = "\n".join(status.errors) or "(the service reported no error message)"
    head = f"{job.kind} job {job.job_id} {status.state}"
    if status.exit_code is not None:
        head += f" (exit code {status.exit_code})"
    if status.detail:
        head += f": {status.detail}"
    return f"{head}\n{detail}"


def describe_status(job: RemoteJob, status: JobStatus) -> str:
    """One log line for a job's state: ``ADLA job <id>: running (Compiling)``."""
    return f"{job.kind} job {job.job_id}: {status.state}" + (f" ({status.detail})" if status.detail else "")


def raise_for_status(job: RemoteJob, status: JobStatus) -> None:
    """Raise :class:`StepFailedError` unless the job succeeded."""
    if not status.succeeded:
        raise StepFailedError(failure_message(job, status))


def tail_lines(text: str, lines: int = STDERR_TAIL_LINES) -> list[str]:
    """The last ``lines`` non-empty lines of ``text``."""
    return [line for line in text.splitlines() if line.strip()][-lines:]


class JobWaiter:
    """Waits on a worker for a submitted job, streaming its logs; :meth:`stop` (``on_kill``,
    from any thread) cancels it and cuts the wait short."""

    def __init__(
        self,
        backend: RemoteJobBackend,
        job: RemoteJob,
        sink: LineSink,
        on_poll: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.job = job
        self.sink = sink
        #: Called at every poll while the job runs, and once after it ended (a sweep reads metrics there).
        self.on_poll = on_poll
        self._stop = threading.Event()

    def wait(self, poll_interval: float) -> JobStatus:
        """Poll until the job ends; its logs reach the sink as they are written."""
        last: tuple[str, str] | None = None
        while True:
            status = self.backend.status(self.job)
            self.backend.read_logs(self.job, self.sink)
            if self.on_poll is not None:
                self.on_poll()
            if (status.state, status.detail) != last:
                self.sink("status", describe_status(self.job, status))
                last = (status.state, status.detail)
            if status.ended:
                return status
            if self._stop.wait(poll_interval):
                self.backend.cancel(self.job)
                self._stop.clear()  # keep polling until the service reports the cancelled job ended

    def stop(self) -> None:
        self._stop.set()


@dataclass
class RemoteCompute:
    """A compute connection made usable: the backend, where its jobs stage data, and how the
    triggerer rebuilds the backend (``factory``: ``module:function``, an async function of the
    connection id, so no secret is serialized with a trigger)."""

    backend: RemoteJobBackend
    staging: StagingSettings
    factory: str
    #: Who reads the staging container, for errors ("an ADLA account").
    service: str
    #: Whether inputs on a datastore the service cannot read (a worker's folder) are uploaded to staging
    #: first; when ``False`` such an input is refused before anything runs (AML's Databricks step took data
    #: on Azure storage only).
    stages_local_inputs: bool = True
