"""Following ARM long-running operations from an event loop (a trigger), with azure-mgmt-compute's aio client.

Plain Python (no Airflow import). Needs aiohttp (``azure-core[aio]``). Polls the same
:class:`~.azure_vm_lro.LroState` the sync client started, one ``GET`` per :meth:`poll`.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_amlpipe.compute.azure_vm import (
    AzureComputeError,
    ComputeNotFoundError,
    ComputeTarget,
    _json_body,
    client_options,
    translate_error,
)
from airflow_provider_amlpipe.compute.azure_vm_lro import LroState, apply_poll, check_same_origin, next_poll_url
from airflow_provider_amlpipe.compute.azure_vm_settings import AzureVmSettings

log = logging.getLogger(__name__)


class AsyncAzureComputeClient:
    """Polls VM / scale set operations without blocking the event loop. Use as ``async with``."""

    def __init__(self, settings: AzureVmSettings, *, credential: Any = None, retry_total: int = 6) -> None:
        from azure.mgmt.compute.aio import ComputeManagementClient

        self.settings = settings
        self._credential = credential if credential is not None else settings.async_credential()
        self._sdk = ComputeManagementClient(
            self._credential, settings.subscription_id, **client_options(settings, 10.0, retry_total, 0.8)
        )

    async def close(self) -> None:
        await self._sdk.close()
        closer = getattr(self._credential, "close", None)
        if callable(closer):
            await closer()

    async def __aenter__(self) -> AsyncAzureComputeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def poll(self, state: LroState) -> LroState:
        """Advance the operation by one poll (updated in place and returned)."""
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        url = next_poll_url(state)
        if url is None:
            return state
        want_result = state.action == "run_command"
        check_same_origin(url, self.settings.base_url)
        target = ComputeTarget(state.resource_type, state.resource_group, state.name)
        try:
            if url == state.resource_url:
                resource: Any
                if target.is_vm:
                    resource = await self._sdk.virtual_machines.get(target.resource_group, target.name)
                else:
                    resource = await self._sdk.virtual_machine_scale_sets.get(target.resource_group, target.name)
                body = {"properties": {"provisioningState": resource.provisioning_state}}
                apply_poll(state, url, 200, {}, body, want_result)
                return state
            response = await self._sdk.send_request(HttpRequest("GET", url))
            await response.read()
        except AzureError as exc:
            error = translate_error(exc, f"polling {state.describe()}", target, self.settings)
            if isinstance(error, ComputeNotFoundError):
                apply_poll(state, url, 404, {}, None, want_result)
                return state
            log.warning("%s (will poll again)", error)
            return state
        if response.status_code in (401, 403):
            raise AzureComputeError(
                f"polling {state.describe()}: Azure refused the credentials of connection "
                f"{self.settings.conn_id!r} (HTTP {response.status_code})",
                response.status_code,
            )
        if response.status_code >= 500 or response.status_code in (408, 429):
            log.warning("polling %s: HTTP %s (will poll again)", state.describe(), response.status_code)
            return state
        apply_poll(state, url, response.status_code, response.headers, _json_body(response), want_result)
        if not state.done and state.status_url is None and state.location_url and url != state.location_url:
            return await self.poll(state)
        return state
