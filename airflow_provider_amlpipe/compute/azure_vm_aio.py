"""Following ARM long-running operations from an event loop (a trigger), with azure-mgmt-compute's aio client.

Plain Python (no Airflow import). Needs aiohttp (``azure-core[aio]``). Polls the same
:class:`~.azure_vm_lro.LroState` the sync client started, one ``GET`` per :meth:`poll`.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_amlpipe.compute.azure_vm_arm import (
    ComputeTarget,
    apply_poll_error,
    apply_poll_response,
    client_options,
)
from airflow_provider_amlpipe.compute.azure_vm_lro import LroState, apply_poll, check_same_origin, next_poll_url
from airflow_provider_amlpipe.compute.azure_vm_settings import AzureVmSettings


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
            apply_poll_error(state, url, exc, target, self.settings, want_result)
            return state
        if apply_poll_response(state, url, response, self.settings, want_result):
            return await self.poll(state)  # succeeded: read the result now
        return state
