"""Azure Resource Manager long-running operations as plain JSON (no Airflow import).

An ARM action (``POST …/start``, ``PATCH`` of a scale set, ``POST …/runCommand``) answers at once
with where to follow it: ``Azure-AsyncOperation`` (a status document ``{"status": "InProgress" |
"Succeeded" | "Failed" | "Canceled"}``), ``Location`` (``202`` until done, then the result) or,
for a ``PATCH`` / ``PUT`` without either, the resource itself (its ``provisioningState``).
:class:`LroState` keeps exactly that, so an operation started on a worker can be followed by a
trigger in another process, or by a retry, from a trigger event or XCom: it is JSON and holds no
secret (operation URLs carry ids only; the bearer token is added by whoever polls).

This module is sans-I/O: :func:`next_poll_url` says what to ``GET`` next and :func:`apply_poll`
folds the answer into the state; the sync and async clients do the requests.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any

IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELED = "Canceled"
TERMINAL = (SUCCEEDED, FAILED, CANCELED)

VM = "virtualMachines"
SCALE_SET = "virtualMachineScaleSets"
KIND_LABEL = {VM: "VM", SCALE_SET: "scale set"}


@dataclass
class LroState:
    """One ARM long-running operation on a VM or scale set, and how far it got.

    :param action: what was asked: ``start``, ``deallocate``, ``power_off``, ``scale``, ``run_command``.
    :param resource_type: :data:`VM` or :data:`SCALE_SET`.
    :param status: ``InProgress`` until the operation ends ``Succeeded``, ``Failed`` or ``Canceled``.
    :param status_url: the ``Azure-AsyncOperation`` URL, if ARM gave one.
    :param location_url: the ``Location`` URL (the final result of actions that have one).
    :param resource_url: the resource, polled for ``provisioningState`` when ARM gave neither URL.
    :param result: the final body where the action has one (Run Command's output), else ``None``.
    :param error: ``"Code: message"`` of a failed or cancelled operation.
    """

    action: str
    resource_type: str
    resource_group: str
    name: str
    status: str = IN_PROGRESS
    status_url: str | None = None
    location_url: str | None = None
    resource_url: str | None = None
    result: Any = None
    error: str | None = None
    retry_after: float | None = None
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED

    @property
    def label(self) -> str:
        """``VM 'vm1' (resource group 'rg')``: how messages name the resource."""
        kind = KIND_LABEL.get(self.resource_type, self.resource_type)
        return f"{kind} {self.name!r} (resource group {self.resource_group!r})"

    def describe(self) -> str:
        """A one-line summary for logs."""
        text = f"{self.action} of {self.label}: {self.status}"
        return f"{text} ({self.error})" if self.error else text

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (for a trigger event, XCom or a retry); :meth:`from_dict` reverses it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LroState:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def start_state(
    action: str,
    resource_type: str,
    resource_group: str,
    name: str,
    status_code: int,
    headers: Any,
    body: Any,
    resource_url: str,
) -> LroState:
    """The state of an operation ARM just accepted, from its first answer (status, headers, JSON body)."""
    state = LroState(action, resource_type, resource_group, name)
    state.status_url = _header(headers, "Azure-AsyncOperation")
    state.location_url = _header(headers, "Location")
    state.retry_after = _retry_after(headers)
    if state.status_url is None and state.location_url is None:
        if status_code in (200, 201) and isinstance(body, dict):
            # A PATCH / PUT that ARM finished at once, or that is followed through the resource itself.
            _apply_provisioning(state, body)
            if not state.done:
                state.resource_url = resource_url
        elif status_code in (200, 204):
            _finish(state, SUCCEEDED, result=body)
        else:
            state.resource_url = resource_url
    return state


def next_poll_url(state: LroState) -> str | None:
    """The URL to ``GET`` next, or ``None`` when the operation is over."""
    if state.done:
        return None
    if state.status_url:
        return state.status_url
    return state.location_url or state.resource_url


def apply_poll(state: LroState, url: str, status_code: int, headers: Any, body: Any, want_result: bool) -> None:
    """Fold the answer to ``GET url`` (from :func:`next_poll_url`) into ``state``.

    ``want_result``: on success, also read the ``Location`` URL for the final body (Run Command's
    output), if the status document did not carry it.
    """
    state.retry_after = _retry_after(headers)
    if url == state.status_url:
        if status_code == 404:
            _finish(state, FAILED, error="OperationNotFound: ARM no longer knows this operation (expired?)")
            return
        status = str((body or {}).get("status") or IN_PROGRESS) if isinstance(body, dict) else IN_PROGRESS
        status = _normal_status(status)
        if status == SUCCEEDED:
            output = ((body.get("properties") or {}).get("output")) if isinstance(body, dict) else None
            if output is not None or not want_result or not state.location_url:
                _finish(state, SUCCEEDED, result=output)
            else:
                state.status_url = None  # the result is at Location: read it next
        elif status in (FAILED, CANCELED):
            _finish(state, status, error=_error_text(body) or status)
        return
    if url == state.location_url:
        if status_code == 202:
            return
        if status_code in (200, 201, 204):
            _finish(state, SUCCEEDED, result=body if status_code != 204 else None)
        else:
            outcome = CANCELED if status_code == 409 and "Preempted" in (_error_text(body) or "") else FAILED
            _finish(state, outcome, error=_error_text(body) or f"HTTP {status_code}")
        return
    if url == state.resource_url:
        if status_code == 200 and isinstance(body, dict):
            _apply_provisioning(state, body)
        elif status_code == 404:
            _finish(state, FAILED, error=f"ResourceNotFound: the {state.label} no longer exists")


def check_same_origin(url: str, base_url: str) -> None:
    """Refuse to send a bearer token to an operation URL on another host than the ARM endpoint.

    A state comes back from a trigger event or XCom: a tampered URL must not harvest the token.
    """
    got, want = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base_url)
    if (got.scheme, got.netloc.lower()) != (want.scheme, want.netloc.lower()):
        raise ValueError(f"operation URL {got.scheme}://{got.netloc} is not on the ARM endpoint {want.netloc}")


def _apply_provisioning(state: LroState, body: dict[str, Any]) -> None:
    provisioning = str((body.get("properties") or {}).get("provisioningState") or SUCCEEDED)
    normal = _normal_status(provisioning)
    if normal in TERMINAL:
        _finish(state, normal, result=None, error=None if normal == SUCCEEDED else f"provisioningState {provisioning}")


def _normal_status(status: str) -> str:
    for known in (*TERMINAL, "Cancelled"):
        if status.lower() == known.lower():
            return CANCELED if known == "Cancelled" else known
    return IN_PROGRESS


def _finish(state: LroState, status: str, result: Any = None, error: str | None = None) -> None:
    state.status = status
    state.result = result
    state.error = error
    state.ended_at = time.time()


def _error_text(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error") if isinstance(body.get("error"), dict) else None
    if error is None:
        return None
    code, message = error.get("code"), error.get("message")
    return ": ".join(str(x) for x in (code, message) if x) or None


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if headers is not None else None
    return str(value) if value else None


def _retry_after(headers: Any) -> float | None:
    value = _header(headers, "Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the caller's own interval applies
