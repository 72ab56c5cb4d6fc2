"""The ADLA job API backend: a U-SQL script submitted as an Azure Data Lake Analytics job.

Plain Python (never imports Airflow). :class:`AdlaJobsClient` speaks the job service's REST
protocol (api-version ``2016-11-01``): ``PUT /Jobs/{id}`` submits, ``GET /Jobs/{id}`` reads
:class:`JobInfo`, ``POST /Jobs/{id}/CancelJob`` cancels. :class:`AdlaJobBackend` is the remote
job backend the ADLA step runs on (:mod:`airflow_provider_amlpipe.compute.remote`).

Job ids are deterministic (:func:`~airflow_provider_amlpipe.compute.remote.remote_job_id`): a
retried task asks for the same id, the service answers ``409 Conflict``, and the retry reattaches
to the job already submitted instead of running the script twice. A job under that id that ended
unsuccessfully, or that ran a different script, is not reused: the next id of a deterministic
chain (:func:`next_job_id`) is tried instead.

Security: requests carry a bearer token for :data:`ADLA_SCOPE`, so plain ``http`` is refused
unless the host is loopback *and* the caller passed ``verify_https=False`` explicitly (for local
test servers). Tokens are never logged nor written to the sink.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import tenacity

from airflow_provider_amlpipe.compute.remote import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    JobFilesNotSupportedError,
    JobStatus,
    JobWaiter,
    LineSink,
    RemoteJob,
    raise_for_status,
)
from airflow_provider_amlpipe.errors import AmlPipeError, ConfigurationError
from airflow_provider_amlpipe.extras import is_loopback

log = logging.getLogger(__name__)

ADLA_SCOPE = "https://datalake.azure.net/.default"
"""The token audience of the job service (not the ARM management endpoint)."""
DEFAULT_API_VERSION = "2016-11-01"
ADLA_DNS_SUFFIX = "azuredatalakeanalytics.net"
ENDED = "Ended"
SUCCEEDED_RESULT = "Succeeded"
CANCELLED_RESULT = "Cancelled"
DEFAULT_PRIORITY = 1000
MAX_JOB_GENERATIONS = 50
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class TokenCredential(Protocol):
    """What this module needs of an azure-identity credential."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


class AdlaError(AmlPipeError):
    """The job service refused a request or answered something unexpected."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class AdlaAuthError(AdlaError):
    """The job service rejected our credentials (401/403)."""


class AdlaJobNotFoundError(AdlaError):
    """No job with that id exists in the account (404)."""


class _TransientHttpError(AdlaError):
    """A 408/429/5xx answer: retried, then surfaced as :class:`AdlaError`."""


@dataclass(frozen=True)
class StaticTokenCredential:
    """A credential that always returns the same bearer token. **For tests only.**

    Real accounts need a token from azure-identity (service principal, managed identity, ...),
    which expires and is renewed; a fixed token is only useful against a local test server.
    """

    token: str = field(repr=False)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


@dataclass(frozen=True)
class JobInfo:
    """The part of ADLA's ``JobInformation`` a step needs."""

    job_id: str
    name: str
    state: str
    result: str
    errors: list[str] = field(default_factory=list)
    script: str | None = field(default=None, repr=False)
    degree_of_parallelism: int | None = None
    priority: int | None = None

    @property
    def ended(self) -> bool:
        """Whether the job reached its final state (refer to :attr:`result`)."""
        return self.state == ENDED

    @property
    def succeeded(self) -> bool:
        return self.ended and self.result == SUCCEEDED_RESULT

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobInfo:
        """Parse a ``JobInformation`` document."""
        properties = body.get("properties") or {}
        errors = [_render_error(e) for e in body.get("errorMessage") or [] if isinstance(e, dict)]
        return cls(
            job_id=str(body.get("jobId", "")),
            name=str(body.get("name", "")),
            state=str(body.get("state", "")),
            result=str(body.get("result", "None")),
            errors=errors,
            script=properties.get("script") if isinstance(properties, dict) else None,
            degree_of_parallelism=body.get("degreeOfParallelism"),
            priority=body.get("priority"),
        )


def _render_error(error: dict[str, Any]) -> str:
    message = str(error.get("message") or error.get("description") or error.get("errorId") or "unknown error")
    parts = [message]
    if error.get("errorId") and error["errorId"] not in message:
        parts.insert(0, f"[{error['errorId']}]")
    details = error.get("details")
    if details and details != message:
        parts.append(f"({details})")
    return " ".join(parts)


def next_job_id(job_id: uuid.UUID) -> uuid.UUID:
    """The next id of the chain that starts at ``job_id`` (used when that id is taken by a job
    that failed, was cancelled, or ran another script)."""
    return uuid.uuid5(job_id, "next")


def validate_endpoint(endpoint: str, *, verify_https: bool = True) -> str:
    """Check the account endpoint and return it without a trailing slash.

    ``https`` is required; plain ``http`` (and ``verify_https=False``) only for a loopback host,
    and then only when ``verify_https=False`` is passed explicitly. Nothing is sent before this.
    """
    parsed = urllib.parse.urlsplit(endpoint.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(
            "compute (ADLA endpoint)",
            f"{endpoint!r} is not an http(s) URL",
            f"use https://<account>.{ADLA_DNS_SUFFIX}",
        )
    loopback = is_loopback(parsed.hostname)
    if parsed.scheme == "http" and not (loopback and not verify_https):
        fix = (
            "set verify_https=False (connection extra allow_insecure_loopback: true) for a local test server"
            if loopback
            else "use https: bearer tokens are never sent over plain http to another host"
        )
        raise ConfigurationError("compute (ADLA endpoint)", f"plain http to {parsed.hostname!r} is refused", fix)
    if not verify_https and not loopback:
        raise ConfigurationError(
            "compute (ADLA endpoint)",
            f"TLS verification cannot be disabled for {parsed.hostname!r}",
            "remove verify_https=False / allow_insecure_loopback; it is only for loopback test servers",
        )
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


class AdlaJobsClient:
    """A client of an ADLA account's job service (``https://<account>.azuredatalakeanalytics.net``).

    Requests that fail with 408/429/5xx or a connection error are retried with exponential
    back-off (``retries`` attempts in all). Other failures raise :class:`AdlaError`
    (:class:`AdlaAuthError` for 401/403, :class:`AdlaJobNotFoundError` for 404).
    """

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        *,
        api_version: str = DEFAULT_API_VERSION,
        verify_https: bool = True,
        timeout: float = 60.0,
        retries: int = 5,
        retry_wait_max: float = 20.0,
    ) -> None:
        self.endpoint = validate_endpoint(endpoint, verify_https=verify_https)
        self.api_version = api_version
        self._credential = credential
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()
        self._http = httpx.Client(timeout=timeout, verify=verify_https, follow_redirects=False)
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((_TransientHttpError, httpx.TransportError)),
            stop=tenacity.stop_after_attempt(max(1, retries)),
            wait=tenacity.wait_exponential(multiplier=0.5, max=retry_wait_max),
            reraise=True,
        )

    def __repr__(self) -> str:
        return f"AdlaJobsClient({self.endpoint!r}, api_version={self.api_version!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdlaJobsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the job service's operations -------------------------------------------------------

    def create_job(
        self,
        job_id: uuid.UUID,
        name: str,
        script: str,
        degree_of_parallelism: int = 1,
        priority: int = DEFAULT_PRIORITY,
        runtime_version: str | None = None,
    ) -> tuple[JobInfo, bool]:
        """Submit a U-SQL job under ``job_id``; ``(info, created)``.

        A job that already exists under that id (``409 Conflict``, e.g. a resubmit after an
        Airflow retry) is not an error: its current information is returned with ``created=False``.
        """
        if degree_of_parallelism < 1:
            raise ConfigurationError(
                "degree_of_parallelism", f"{degree_of_parallelism} is not positive", "use 1 or more"
            )
        if priority < 1:
            raise ConfigurationError("priority", f"{priority} is not positive", "use 1 or more (lower runs first)")
        properties: dict[str, Any] = {"type": "USql", "script": script}
        if runtime_version:
            properties["runtimeVersion"] = runtime_version
        body = {
            "type": "USql",
            "name": name,
            "degreeOfParallelism": degree_of_parallelism,
            "priority": priority,
            "properties": properties,
        }
        response = self._request("PUT", f"Jobs/{job_id}", json=body, ok=(200, 201, 409))
        if response.status_code == 409:
            return self.get_job(job_id), False
        return JobInfo.from_json(response.json()), True

    def get_job(self, job_id: uuid.UUID | str) -> JobInfo:
        """The job's current state, result and error messages."""
        return JobInfo.from_json(self._request("GET", f"Jobs/{job_id}").json())

    def cancel_job(self, job_id: uuid.UUID | str) -> None:
        """Ask the service to cancel the job (it then ends with result ``Cancelled``)."""
        self._request("POST", f"Jobs/{job_id}/CancelJob")

    # -- plumbing ---------------------------------------------------------------------------

    def _bearer(self) -> str:
        with self._token_lock:
            if self._token is None or self._token[1] - 120 < time.time():
                access = self._credential.get_token(ADLA_SCOPE)
                self._token = (str(access.token), float(access.expires_on))
            return self._token[0]

    def _request(
        self, method: str, path: str, *, json: dict[str, Any] | None = None, ok: tuple[int, ...] = (200, 201, 202, 204)
    ) -> httpx.Response:
        url = f"{self.endpoint}/{path}"

        def attempt() -> httpx.Response:
            headers = {"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"}
            response = self._http.request(
                method, url, params={"api-version": self.api_version}, json=json, headers=headers
            )
            if response.status_code in ok:
                return response
            raise self._error(method, path, response)

        try:
            return self._retrying(attempt)
        except _TransientHttpError as exc:
            raise AdlaError(f"{exc} (gave up after retries)", exc.status_code) from None
        except httpx.TransportError as exc:
            raise AdlaError(f"{method} {self.endpoint}/{path}: cannot reach the job service: {exc}") from exc

    def _error(self, method: str, path: str, response: httpx.Response) -> AdlaError:
        status = response.status_code
        detail = _service_message(response)
        where = f"{method} {self.endpoint}/{path}"
        if status in (401, 403):
            return AdlaAuthError(
                f"{where}: the job service rejected the credentials (HTTP {status}: {detail}); check the ADLA "
                "connection's tenant/client id and secret, or the identity's role on the account",
                status,
            )
        if status == 404:
            return AdlaJobNotFoundError(f"{where}: no such job (HTTP 404: {detail})", status)
        if status in _TRANSIENT_STATUS:
            return _TransientHttpError(f"{where}: HTTP {status}: {detail}", status)
        return AdlaError(f"{where}: HTTP {status}: {detail}", status)


def _service_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            if code or message:
                return ": ".join(str(x) for x in (code, message) if x)[:500]
    return str(body)[:300]


class AdlaJobBackend:
    """Runs U-SQL scripts as ADLA jobs: a :class:`~airflow_provider_amlpipe.compute.remote.RemoteJobBackend`.

    A job spec is ``{"script", "name", "degree_of_parallelism", "priority", "runtime_version"}``.
    :meth:`run_script` submits one script and waits for it on this thread; :meth:`terminate`
    (``on_kill``) cancels it from any other.
    """

    kind = "ADLA"

    def __init__(self, client: AdlaJobsClient) -> None:
        self.client = client
        self._waiter: JobWaiter | None = None

    def check(self, spec: Mapping[str, Any]) -> None:
        """Nothing to check before submitting: the service validates the script itself."""

    def submit(self, job_id: str, spec: Mapping[str, Any], sink: LineSink) -> RemoteJob:
        """Submit the script under ``job_id``, or reattach to the job already there.

        An existing job under the id is reattached to when it ran the same script and has not
        ended unsuccessfully; otherwise the next id of the chain (:func:`next_job_id`) is tried.
        """
        script, name = str(spec["script"]), str(spec["name"])
        candidate = uuid.UUID(job_id)
        for _ in range(MAX_JOB_GENERATIONS):
            info, created = self.client.create_job(
                candidate,
                name,
                script,
                degree_of_parallelism=spec.get("degree_of_parallelism") or 1,
                priority=spec.get("priority") or DEFAULT_PRIORITY,
                runtime_version=spec.get("runtime_version"),
            )
            if created:
                sink("status", f"ADLA job {candidate} ({name}) submitted to {self.client.endpoint}")
                return RemoteJob(self.kind, str(candidate))
            same_script = info.script is None or info.script == script
            if same_script and (not info.ended or info.succeeded):
                sink("status", f"ADLA job {candidate} ({name}) already submitted; reattaching ({info.state})")
                return RemoteJob(self.kind, str(candidate))
            reason = "ran another script" if not same_script else f"ended with result {info.result}"
            sink("status", f"ADLA job {candidate} exists and {reason}; submitting under the next id")
            candidate = next_job_id(candidate)
        raise AdlaError(f"{MAX_JOB_GENERATIONS} job ids derived from {job_id} are all taken")

    def status(self, job: RemoteJob) -> JobStatus:
        info = self.client.get_job(job.job_id)
        if not info.ended:
            return JobStatus(RUNNING, info.state)
        if info.succeeded:
            return JobStatus(SUCCEEDED, info.result)
        state = CANCELLED if info.result == CANCELLED_RESULT else FAILED
        return JobStatus(state, f"{info.name} ended with result {info.result}", tuple(info.errors))

    def read_file(self, job: RemoteJob, path: str, offset: int = 0) -> bytes:
        raise JobFilesNotSupportedError(self.kind, "a U-SQL job has no working folder a client can read")

    def read_logs(self, job: RemoteJob, sink: LineSink) -> None:
        """ADLA keeps no log stream a client can read; state changes are all there is."""

    def cancel(self, job: RemoteJob) -> None:
        try:
            self.client.cancel_job(job.job_id)
        except AdlaError as exc:
            log.warning("could not cancel ADLA job %s: %s", job.job_id, exc)

    def cleanup(self, job: RemoteJob) -> None:
        """An ended ADLA job is kept by the service (its history); there is nothing to delete."""

    def close(self) -> None:
        self.client.close()

    def run_script(
        self,
        script_text: str,
        *,
        job_id: uuid.UUID,
        name: str,
        degree_of_parallelism: int | None = None,
        priority: int | None = None,
        runtime_version: str | None = None,
        sink: LineSink,
        poll_interval: float = 5.0,
    ) -> None:
        """Submit the script, wait for the job to end, raise :class:`StepFailedError` unless it succeeded."""
        spec = {
            "script": script_text,
            "name": name,
            "degree_of_parallelism": degree_of_parallelism,
            "priority": priority,
            "runtime_version": runtime_version,
        }
        job = self.submit(str(job_id), spec, sink)
        self._waiter = waiter = JobWaiter(self, job, sink)
        try:
            final = waiter.wait(poll_interval)
        finally:
            self._waiter = None
        for error in final.errors:
            sink("stderr", error)
        raise_for_status(job, final)

    def terminate(self) -> None:
        """Cancel the job :meth:`run_script` waits for (``on_kill``); it then ends as cancelled."""
        waiter = self._waiter
        if waiter is not None:
            waiter.stop()
