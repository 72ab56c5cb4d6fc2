"""Errors raised by the provider's core.

Every error a user can cause names the offending field and says how to fix it, so that
the message alone is enough to correct a DAG without reading our source.
"""

from __future__ import annotations


class AmlPipeError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(AmlPipeError, ValueError):
    """Bad user input, detected before anything is executed or written."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem}. Fix: {fix}")


class NotFoundError(AmlPipeError, LookupError):
    """A key, dataset or version that does not exist in a datastore."""


class StepFailedError(AmlPipeError, RuntimeError):
    """The step's own work failed (for example a script exited non-zero)."""


class IntegrityError(AmlPipeError):
    """Stored data no longer matches the manifest recorded when it was committed."""


class TransientStoreError(AmlPipeError, OSError):
    """A datastore operation failed in a way that may succeed if tried again (a timeout, a 503)."""


class LeaseLostError(StepFailedError):
    """The step's lease could not be renewed or was taken over: its results must not be committed."""
