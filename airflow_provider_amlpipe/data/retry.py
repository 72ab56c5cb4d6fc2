"""Retrying datastore operations that failed transiently (tenacity), and telling such failures apart.

A create-if-absent write that is retried after its response was lost may find its own object:
callers that depend on who created an object (sequences, leases) recognise their own documents by
a token they wrote into them, so a retry never turns a success into a lost race.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TypeVar

import tenacity

from airflow_provider_amlpipe.errors import TransientStoreError

T = TypeVar("T")

_TRANSIENT_ERRNOS = frozenset(
    {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE, errno.ECONNRESET}
)
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
ATTEMPTS = 6


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: a flaky disk or network, a throttled or busy service."""
    if isinstance(exc, TransientStoreError):
        return True
    try:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    except ImportError:  # pragma: no cover - azure-core is a dependency
        pass
    else:
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            return True
        if isinstance(exc, HttpResponseError):
            return getattr(exc, "status_code", None) in _TRANSIENT_HTTP
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def retrying(fn: Callable[[], T], *, attempts: int = ATTEMPTS) -> T:
    """Call ``fn``, again after a short exponential back-off while it fails transiently."""
    for attempt in tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.05, max=2.0),
        reraise=True,
    ):
        with attempt:
            return fn()
    raise AssertionError("unreachable")  # pragma: no cover - tenacity re-raises
