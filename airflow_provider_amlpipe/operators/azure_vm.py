"""Provisioning operators for existing Azure VMs and VM scale sets: start, deallocate, power off, scale.

Meant as Airflow setup / teardown tasks around the steps that use the compute, so it is released
even when a step fails::

    start = AzureVMStartOperator(task_id="start_vm", vm_name="train-vm", azure_vm_conn_id="azure_vm")
    stop = AzureVMDeallocateOperator(task_id="release_vm", vm_name="train-vm", azure_vm_conn_id="azure_vm")
    start >> train >> stop.as_teardown(setups=start)

Each checks that the VM or scale set exists (an error naming it and its resource group if not)
before asking ARM for anything, then follows the long-running operation: in the triggerer when
``deferrable`` (default: Airflow's ``[operators] default_deferrable``), else in the worker. The
return value (XCom) is the operation's outcome: ``{"action", "resource_type", "resource_group",
"name", "status", …}`` (no secret).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_provider_amlpipe.compute.azure_vm_lro import LroState
from airflow_provider_amlpipe.data.refs import is_template
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.azure_vm import DEFAULT_AZURE_VM_CONN_ID
from airflow_provider_amlpipe.steps import config

MIN_POLL_INTERVAL = 0.1


def _default_deferrable() -> bool:
    from airflow.sdk import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


class _AzureVmOperationOperator(BaseOperator):
    """Common part: one ARM operation on a VM (``vm_name``) or a scale set (``scale_set_name``).

    :param vm_name: the VM (or give ``scale_set_name``).
    :param scale_set_name: the VM scale set (or give ``vm_name``).
    :param resource_group: default: the connection's ``extra.resource_group``.
    :param azure_vm_conn_id: an ``amlpipe_azure_vm`` connection.
    :param instance_ids: scale sets only: act on these instances (default: all).
    :param deferrable: wait for the operation in the triggerer (default: ``[operators] default_deferrable``).
    :param poll_interval: seconds between polls when ARM sends no ``Retry-After``.
    """

    template_fields: Sequence[str] = ("vm_name", "scale_set_name", "resource_group", "azure_vm_conn_id")
    ui_color = "#cfe6fb"
    action = ""  # set by subclasses: start | deallocate | power_off | scale

    def __init__(
        self,
        *,
        vm_name: str | None = None,
        scale_set_name: str | None = None,
        resource_group: str | None = None,
        azure_vm_conn_id: str = DEFAULT_AZURE_VM_CONN_ID,
        instance_ids: list[str] | None = None,
        deferrable: bool | None = None,
        poll_interval: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if bool(vm_name) == bool(scale_set_name):
            raise ConfigurationError(
                "vm_name / scale_set_name",
                "both given" if vm_name else "neither given",
                "pass exactly one of vm_name='<VM>' or scale_set_name='<scale set>'",
            )
        for field, value in (
            ("vm_name", vm_name),
            ("scale_set_name", scale_set_name),
            ("resource_group", resource_group),
        ):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigurationError(field, f"expected a name, got {value!r}", f"pass {field}='<name>'")
        if not isinstance(azure_vm_conn_id, str) or not azure_vm_conn_id.strip():
            raise ConfigurationError(
                "azure_vm_conn_id",
                f"expected a connection id, got {azure_vm_conn_id!r}",
                "pass azure_vm_conn_id='<id>'",
            )
        if instance_ids is not None:
            if vm_name:
                raise ConfigurationError("instance_ids", "a VM has no instances", "leave instance_ids out for a VM")
            if not isinstance(instance_ids, list) or not all(isinstance(i, (str, int)) for i in instance_ids):
                raise ConfigurationError(
                    "instance_ids", f"expected a list of instance ids, got {instance_ids!r}", "pass e.g. ['0', '1']"
                )
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
            raise ConfigurationError("poll_interval", f"expected seconds, got {poll_interval!r}", "pass e.g. 10")
        if poll_interval < MIN_POLL_INTERVAL:
            raise ConfigurationError(
                "poll_interval", f"{poll_interval} s is below {MIN_POLL_INTERVAL} s", f"use {MIN_POLL_INTERVAL} or more"
            )
        self.vm_name = vm_name
        self.scale_set_name = scale_set_name
        self.resource_group = resource_group
        self.azure_vm_conn_id = azure_vm_conn_id
        self.instance_ids = None if instance_ids is None else [str(i) for i in instance_ids]
        self.deferrable = _default_deferrable() if deferrable is None else config.check_bool("deferrable", deferrable)
        self.poll_interval = float(poll_interval)

    def _begin(self, client: Any, target: Any) -> LroState:
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any] | None:
        from airflow_provider_amlpipe.hooks.azure_vm import AzureVmHook

        hook = AzureVmHook(self.azure_vm_conn_id)
        with hook.get_client(polling_interval=self.poll_interval) as client:
            target = client.target(
                vm_name=self.vm_name, scale_set_name=self.scale_set_name, resource_group=self.resource_group
            )
            state = self._begin(client, target)  # checks that the target exists first
            self.log.info("%s: requested", state.describe())
            if not state.done and not self.deferrable:
                client.wait(state, sink=self.log.info)
        if not state.done:
            from airflow_provider_amlpipe.triggers.azure_vm import AzureVmOperationTrigger

            self.defer(
                trigger=AzureVmOperationTrigger(self.azure_vm_conn_id, state.to_dict(), self.poll_interval),
                method_name="execute_complete",
            )
        return self._finish(state)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resumed when the operation ended (or could not be followed)."""
        from airflow_provider_amlpipe.compute.azure_vm_arm import AzureComputeError

        if event.get("status") != "done":
            raise AzureComputeError(f"could not follow the operation: {event.get('message')}")
        return self._finish(LroState.from_dict(event["operation"]))

    def _finish(self, state: LroState) -> dict[str, Any]:
        from airflow_provider_amlpipe.compute.azure_vm_arm import AzureComputeError

        if not state.succeeded:
            raise AzureComputeError(f"{state.describe()}")
        self.log.info("%s", state.describe())
        return {
            "action": state.action,
            "resource_type": state.resource_type,
            "resource_group": state.resource_group,
            "name": state.name,
            "status": state.status,
            **state.details,
        }


class AzureVMStartOperator(_AzureVmOperationOperator):
    """Start an existing VM (``vm_name``) or a scale set's instances (``scale_set_name``).

    Use as a setup task (``.as_setup()``) before steps that need the compute running.
    """

    action = "start"

    def _begin(self, client: Any, target: Any) -> LroState:
        state: LroState = client.begin_start(target, self.instance_ids)
        return state


class AzureVMDeallocateOperator(_AzureVmOperationOperator):
    """Deallocate a VM or a scale set's instances: compute is released and no longer billed.

    Use as a teardown task (``.as_teardown(setups=start)``): it then runs even when a step failed.
    """

    action = "deallocate"

    def _begin(self, client: Any, target: Any) -> LroState:
        state: LroState = client.begin_deallocate(target, self.instance_ids)
        return state


class AzureVMPowerOffOperator(_AzureVmOperationOperator):
    """Power off (stop) a VM or a scale set's instances: still allocated (and billed), quicker to restart.

    :param skip_shutdown: stop at once, without a graceful OS shutdown.
    """

    action = "power_off"

    def __init__(self, *, skip_shutdown: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.skip_shutdown = config.check_bool("skip_shutdown", skip_shutdown)

    def _begin(self, client: Any, target: Any) -> LroState:
        state: LroState = client.begin_power_off(target, self.instance_ids, skip_shutdown=self.skip_shutdown)
        return state


class AzureVMScaleSetScaleOperator(_AzureVmOperationOperator):
    """Set a VM scale set's capacity (``capacity`` instances; 0 releases them all).

    :param capacity: the number of instances wanted (templated).
    """

    template_fields: Sequence[str] = (*_AzureVmOperationOperator.template_fields, "capacity")
    action = "scale"

    def __init__(self, *, capacity: int | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.vm_name:
            raise ConfigurationError(
                "vm_name", "a VM has no capacity to scale", "pass scale_set_name='<scale set>' instead"
            )
        if self.instance_ids is not None:
            raise ConfigurationError("instance_ids", "scaling acts on the whole scale set", "leave instance_ids out")
        if not (isinstance(capacity, str) and is_template(capacity)):
            _check_capacity(capacity)
        self.capacity = capacity

    def _begin(self, client: Any, target: Any) -> LroState:
        state: LroState = client.begin_scale(target, _check_capacity(self.capacity))
        return state


def _check_capacity(value: object) -> int:
    """A whole number from 0 (a rendered template may give it as a string of digits)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError("capacity", f"expected a whole number from 0, got {value!r}", "pass capacity=N")
    return value
