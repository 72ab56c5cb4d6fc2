"""The Azure VM hook: turns an ``amlpipe_azure_vm`` connection into an :class:`AzureComputeClient`.

The connection's fields are described in
:mod:`airflow_provider_amlpipe.compute.azure_vm_settings`: ``extra.subscription_id``,
``extra.resource_group``, a service principal (``extra.tenant_id``, ``extra.client_id``, secret in
Password) or ``extra.credential: "default"`` (azure-identity's DefaultAzureCredential), Host for
another ARM endpoint, and ``extra.staging_datastore`` / ``extra.staging_prefix`` for VM script steps.
A connection with no credential is refused, naming the field and the fix, before anything is sent.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_amlpipe.compute.azure_vm import AzureComputeClient
from airflow_provider_amlpipe.compute.azure_vm_job import AzureVmJobBackend
from airflow_provider_amlpipe.compute.azure_vm_settings import (
    AZURE_VM_CONN_TYPE,
    AzureVmSettings,
    azure_vm_ui_field_behaviour,
    parse_azure_vm_connection,
)
from airflow_provider_amlpipe.compute.remote import RemoteCompute
from airflow_provider_amlpipe.hooks.base import ConnectionHook

DEFAULT_AZURE_VM_CONN_ID = "azure_vm_default"


def _settings_of(conn_id: str, conn: Any) -> AzureVmSettings:
    return parse_azure_vm_connection(
        conn_id, conn.conn_type, conn.host, conn.login, conn.password, conn.extra_dejson or {}
    )


class AzureVmHook(ConnectionHook):
    """Existing Azure VMs and VM scale sets of one subscription, from an ``amlpipe_azure_vm`` connection."""

    conn_name_attr = "azure_vm_conn_id"
    default_conn_name = DEFAULT_AZURE_VM_CONN_ID
    conn_type = AZURE_VM_CONN_TYPE
    hook_name = "AML Pipelines Azure VM compute"

    def __init__(self, azure_vm_conn_id: str = DEFAULT_AZURE_VM_CONN_ID) -> None:
        super().__init__()
        self.azure_vm_conn_id = azure_vm_conn_id
        self._settings: AzureVmSettings | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How Airflow's connection form shows this type (what get_provider_info declares, which Airflow reads)."""
        return azure_vm_ui_field_behaviour()

    def get_settings(self) -> AzureVmSettings:
        """The connection's checked settings (:class:`ConfigurationError` naming the field otherwise)."""
        if self._settings is None:
            self._settings = _settings_of(self.azure_vm_conn_id, self._connection())
        return self._settings

    def get_conn(self) -> AzureComputeClient:
        return self.get_client()

    def get_client(self, **options: Any) -> AzureComputeClient:
        """A new client (close it when done, or use it as a context manager); ``options`` go to its constructor."""
        return AzureComputeClient(self.get_settings(), **options)

    def get_remote_compute(self, vm_name: str | None = None, resource_group: str | None = None) -> RemoteCompute:
        """What the remote step base needs to run a Python script step on a VM of this connection.

        With ``vm_name``, the VM is looked up first: one that does not exist is a
        :class:`~airflow_provider_amlpipe.errors.ConfigurationError` naming it, before anything
        is staged or sent.
        """
        staging = self.get_staging_settings()
        backend = AzureVmJobBackend(self.get_client())
        if vm_name is not None:
            try:
                backend.check_vm(vm_name, resource_group)
            except BaseException:
                backend.close()
                raise
        return RemoteCompute(backend, staging, f"{__name__}:aazure_vm_backend", "an Azure VM")


async def aazure_vm_settings(conn_id: str) -> AzureVmSettings:
    """A connection's settings, fetched without blocking the triggerer's event loop."""
    conn = await BaseHook.aget_connection(conn_id)
    return _settings_of(conn_id, conn)


async def aazure_vm_backend(conn_id: str) -> AzureVmJobBackend:
    """A VM job backend of a connection, for :class:`~airflow_provider_amlpipe.triggers.remote_job.RemoteJobTrigger`."""
    return AzureVmJobBackend(AzureComputeClient(await aazure_vm_settings(conn_id)))
