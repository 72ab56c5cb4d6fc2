"""Waits, in the triggerer, for an ARM operation on a VM or scale set (start, deallocate, scale…) to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_amlpipe.compute.azure_vm_lro import LroState


class AzureVmOperationTrigger(BaseTrigger):
    """Fires when the operation ``operation`` (an :class:`LroState` as a dict) ends.

    The event is ``{"status": "done", "operation": <LroState dict>}`` whatever the outcome (the
    resumed task reads ``operation["status"]``), or ``{"status": "error", "message": …, "operation":
    …}`` when it cannot be followed (credentials refused, bad connection). The state holds no
    secret: ARM operation URLs carry ids only, and the token is fetched here from the connection.
    """

    def __init__(self, azure_vm_conn_id: str, operation: dict[str, Any], poll_interval: float = 10.0) -> None:
        super().__init__()
        self.azure_vm_conn_id = azure_vm_conn_id
        self.operation = operation
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "azure_vm_conn_id": self.azure_vm_conn_id,
                "operation": self.operation,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_amlpipe.compute.azure_vm_aio import AsyncAzureComputeClient
        from airflow_provider_amlpipe.errors import AmlPipeError
        from airflow_provider_amlpipe.hooks.azure_vm import aazure_vm_settings

        state = LroState.from_dict(self.operation)
        try:
            settings = await aazure_vm_settings(self.azure_vm_conn_id)
            async with AsyncAzureComputeClient(settings) as client:
                last = None
                while True:
                    await client.poll(state)
                    if state.status != last:
                        self.log.info("%s", state.describe())
                        last = state.status
                    if state.done:
                        break
                    # ARM's Retry-After when it sends one, else ours.
                    await asyncio.sleep(state.retry_after or self.poll_interval)
        except (AmlPipeError, ValueError) as exc:
            yield TriggerEvent({"status": "error", "message": str(exc), "operation": state.to_dict()})
            return
        yield TriggerEvent({"status": "done", "operation": state.to_dict()})
