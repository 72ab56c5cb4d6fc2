"""What the sync and the aio Azure compute clients share of ARM (plain Python, no Airflow import).

The errors a client raises, the :class:`ComputeTarget` an operation acts on, the keyword arguments
of ``ComputeManagementClient`` (sync or aio) for a connection, azure-core exceptions translated into
errors that name the resource and the fix, and one poll's answer folded into an
:class:`~.azure_vm_lro.LroState`. Tokens and connection secrets are never put into a message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from airflow_provider_amlpipe.compute.azure_vm_lro import VM, LroState, apply_poll
from airflow_provider_amlpipe.compute.azure_vm_settings import AzureVmSettings
from airflow_provider_amlpipe.errors import AmlPipeError, ConfigurationError

# The logger of the client these helpers were split from: what users configured for it still applies.
log = logging.getLogger("airflow_provider_amlpipe.compute.azure_vm")


class AzureComputeError(AmlPipeError):
    """ARM refused a request, or an operation could not be followed."""

    def __init__(self, message: str, status_code: int | None = None, code: str | None = None) -> None:
        self.status_code = status_code
        self.code = code
        super().__init__(message)


class ComputeNotFoundError(ConfigurationError):
    """The VM, scale set, resource group or subscription named does not exist (or is not visible)."""


class VmBusyError(AzureComputeError):
    """The VM is running another Run Command (Azure allows one at a time)."""


@dataclass(frozen=True)
class ComputeTarget:
    """A VM or a scale set: ``resource_type`` is ``virtualMachines`` or ``virtualMachineScaleSets``."""

    resource_type: str
    resource_group: str
    name: str

    @property
    def is_vm(self) -> bool:
        return self.resource_type == VM

    @property
    def label(self) -> str:
        kind = "VM" if self.is_vm else "scale set"
        return f"{kind} {self.name!r} (resource group {self.resource_group!r})"


def _allow_http_policy() -> Any:
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class AllowLoopbackHttp(SansIOHTTPPolicy):
        """Lets azure-core send the bearer token over http (only built for a checked loopback endpoint)."""

        def on_request(self, request: Any) -> None:
            request.context["enforce_https"] = False

    return AllowLoopbackHttp()


def client_options(settings: AzureVmSettings, polling_interval: float, retry_total: int, backoff: float) -> dict:
    """Keyword arguments of ``ComputeManagementClient`` (sync or aio) for a connection."""
    options: dict[str, Any] = {
        "base_url": settings.base_url,
        "credential_scopes": list(settings.credential_scopes),
        "polling_interval": polling_interval,
        "retry_total": retry_total,
        "retry_backoff_factor": backoff,
    }
    if settings.insecure_http:  # parse_azure_vm_connection allowed it: loopback, asked for
        options["per_call_policies"] = [_allow_http_policy()]
    return options


def translate_error(exc: Exception, doing: str, target: ComputeTarget | None, settings: AzureVmSettings) -> Exception:
    """An azure-core exception as an error that names what was asked, the resource and the fix."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    where = f"connection {settings.conn_id!r}"
    if isinstance(exc, ResourceNotFoundError) or (isinstance(exc, HttpResponseError) and exc.status_code == 404):
        code = getattr(getattr(exc, "error", None), "code", None) or ""
        if code == "SubscriptionNotFound":
            return ComputeNotFoundError(
                f"compute ({where}) extra.subscription_id",
                f"subscription {settings.subscription_id!r} was not found",
                "check the subscription id, and that the connection's identity has access to it",
            )
        if target is not None and code == "ResourceGroupNotFound":
            return ComputeNotFoundError(
                "resource_group",
                f"resource group {target.resource_group!r} was not found in subscription {settings.subscription_id!r}",
                f"pass the resource group of {target.label.split(' (')[0]} (resource_group= or extra.resource_group"
                f" of {where})",
            )
        if target is not None:
            field = "vm_name" if target.is_vm else "scale_set_name"
            return ComputeNotFoundError(
                field,
                f"{target.label} was not found in subscription {settings.subscription_id!r}",
                f"check {field} and resource_group (default: extra.resource_group of {where})",
            )
    if isinstance(exc, ClientAuthenticationError):
        return AzureComputeError(
            f"{doing}: Azure refused the credentials of {where} ({_short(exc)}); check its tenant id, client id"
            " and secret (or the managed identity), and the identity's role on the VM (e.g. Virtual Machine"
            " Contributor)",
            getattr(exc, "status_code", None),
        )
    if isinstance(exc, HttpResponseError):
        code = getattr(getattr(exc, "error", None), "code", None)
        return AzureComputeError(f"{doing}: {_short(exc)}", exc.status_code, code)
    if isinstance(exc, ServiceRequestError):
        return AzureComputeError(f"{doing}: cannot reach Azure Resource Manager at {settings.base_url}: {_short(exc)}")
    return exc


def _short(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    code, message = getattr(error, "code", None), getattr(error, "message", None)
    status = getattr(exc, "status_code", None)
    if code or message:
        text = ": ".join(str(x) for x in (code, message) if x)
        return f"HTTP {status} {text}" if status else text
    return str(getattr(exc, "message", None) or exc).splitlines()[0][:500]


def apply_poll_error(
    state: LroState, url: str, exc: Exception, target: ComputeTarget, settings: AzureVmSettings, want_result: bool
) -> None:
    """A poll that raised (sync or async client): a resource that is gone ends the operation;
    anything else is logged and polled again."""
    error = translate_error(exc, f"polling {state.describe()}", target, settings)
    if isinstance(error, ComputeNotFoundError):
        apply_poll(state, url, 404, {}, None, want_result)
    else:
        log.warning("%s (will poll again)", error)


def apply_poll_response(state: LroState, url: str, response: Any, settings: AzureVmSettings, want_result: bool) -> bool:
    """Record one poll's answer (sync or async client) in ``state``; ``True`` when the operation
    succeeded and its result must be read now with one more poll."""
    if response.status_code in (401, 403):
        raise AzureComputeError(
            f"polling {state.describe()}: Azure refused the credentials of connection "
            f"{settings.conn_id!r} (HTTP {response.status_code})",
            response.status_code,
        )
    if response.status_code >= 500 or response.status_code in (408, 429):
        log.warning("polling %s: HTTP %s (will poll again)", state.describe(), response.status_code)
        return False
    apply_poll(state, url, response.status_code, response.headers, json_body(response), want_result)
    return bool(not state.done and state.status_url is None and state.location_url and url != state.location_url)


def json_body(response: Any) -> Any:
    """The JSON body of an ARM answer (sync or aio response), or ``None``: no body, not text, not JSON."""
    try:
        text = response.text()
    except Exception:  # a body that is not text: nothing to read
        return None
    if not text:
        return None
    try:
        import json

        return json.loads(text)
    except ValueError:
        return None
