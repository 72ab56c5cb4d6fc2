"""Azure VMs and VM scale sets through azure-mgmt-compute (plain Python, no Airflow import).

:class:`AzureComputeClient` wraps ``ComputeManagementClient`` for what pipelines need of existing
compute: look a VM or scale set up (a clear error naming it and its resource group when missing),
start / deallocate / power off / scale it, and run scripts on a Linux VM through Run Command.
Every action returns its state as plain JSON (:class:`~.azure_vm_lro.LroState`,
:class:`~.azure_vm_script.RunCommandOperation`), so a deferred task, a trigger or a retry can
follow it in another process; :meth:`AzureComputeClient.poll` advances one, :meth:`wait` polls to
the end. :class:`AsyncAzureComputeClient` polls the same states from a trigger's event loop.

This module holds the client, its lookups and its power and capacity operations; the Run Command
methods are in :mod:`.azure_vm_run_command`, and what the sync and aio clients share of ARM (the
errors, :class:`ComputeTarget`, error translation) in :mod:`.azure_vm_arm`. The client's errors and
:class:`ComputeTarget` are importable from here too, as they always were.

Transient failures (408/429/5xx, connection errors) are retried by azure-core's retry policy;
a poll that still fails leaves the state as it was, so the next poll tries again. Tokens and
connection secrets are never logged nor put into a state.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_provider_amlpipe.compute.azure_vm_arm import (
    AzureComputeError,
    ComputeNotFoundError,
    ComputeTarget,
    VmBusyError,
    apply_poll_error,
    apply_poll_response,
    client_options,
    json_body,
    translate_error,
)
from airflow_provider_amlpipe.compute.azure_vm_lro import (
    SCALE_SET,
    VM,
    LroState,
    apply_poll,
    check_same_origin,
    next_poll_url,
    start_state,
)
from airflow_provider_amlpipe.compute.azure_vm_run_command import RunCommands, poll_delay
from airflow_provider_amlpipe.compute.azure_vm_script import RunCommandOperation
from airflow_provider_amlpipe.compute.azure_vm_settings import AzureVmSettings
from airflow_provider_amlpipe.errors import ConfigurationError

# The errors the client raises and the target its methods take, where users import them from.
__all__ = [
    "AzureComputeClient",
    "AzureComputeError",
    "ComputeNotFoundError",
    "ComputeTarget",
    "ScaleSetInfo",
    "VmBusyError",
    "VmInfo",
]

Sink = Callable[[str], None]
Op = TypeVar("Op", LroState, RunCommandOperation)


@dataclass(frozen=True)
class VmInfo:
    """What a step needs to know of a VM."""

    name: str
    resource_group: str
    location: str
    vm_size: str | None
    power_state: str | None  # running, deallocated, stopped, starting, deallocating, stopping
    provisioning_state: str | None


@dataclass(frozen=True)
class ScaleSetInfo:
    """What a step needs to know of a scale set."""

    name: str
    resource_group: str
    location: str
    sku: str | None
    capacity: int | None
    provisioning_state: str | None
    power_states: dict[str, int]  # instances per power state


class AzureComputeClient(RunCommands):
    """Existing Azure VMs and scale sets of one connection: look up, start, stop, scale, run scripts.

    :param settings: from :func:`~.azure_vm_settings.parse_azure_vm_connection`.
    :param credential: overrides the connection's (tests, or a caller that already has one).
    :param polling_interval: seconds between polls when ARM sends no ``Retry-After``.
    :param run_command_wait: seconds each Run Command waits on the VM for a script to end before
        reporting "still running" (Run Command has a fixed start-up cost, so not too small).
    :param busy_timeout: how long :meth:`begin_run_command` retries while the VM runs another command.
    """

    def __init__(
        self,
        settings: AzureVmSettings,
        *,
        credential: Any = None,
        polling_interval: float = 10.0,
        run_command_wait: float = 60.0,
        busy_timeout: float = 900.0,
        retry_total: int = 6,
        retry_backoff_factor: float = 0.8,
    ) -> None:
        from azure.mgmt.compute import ComputeManagementClient

        self.settings = settings
        self.polling_interval = polling_interval
        self.run_command_wait = run_command_wait
        self.busy_timeout = busy_timeout
        self._credential = credential if credential is not None else settings.credential()
        self._sdk = ComputeManagementClient(
            self._credential,
            settings.subscription_id,
            **client_options(settings, polling_interval, retry_total, retry_backoff_factor),
        )

    def __repr__(self) -> str:
        return (
            f"AzureComputeClient(subscription={self.settings.subscription_id!r}, endpoint={self.settings.base_url!r})"
        )

    def close(self) -> None:
        self._sdk.close()
        closer = getattr(self._credential, "close", None)
        if callable(closer):
            closer()

    def __enter__(self) -> AzureComputeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sdk(self) -> Any:
        """The underlying ``ComputeManagementClient``, for what this class does not wrap."""
        return self._sdk

    # -- targets and lookups ----------------------------------------------------------------------

    def target(
        self, *, vm_name: str | None = None, scale_set_name: str | None = None, resource_group: str | None = None
    ) -> ComputeTarget:
        """The VM *or* scale set named (exactly one), in ``resource_group`` or the connection's."""
        if bool(vm_name) == bool(scale_set_name):
            raise ConfigurationError(
                "vm_name / scale_set_name",
                "both given" if vm_name else "neither given",
                "pass exactly one of vm_name='<VM>' or scale_set_name='<scale set>'",
            )
        group = self.settings.resource_group_for(resource_group)
        if vm_name:
            return ComputeTarget(VM, group, vm_name)
        return ComputeTarget(SCALE_SET, group, str(scale_set_name))

    @contextlib.contextmanager
    def _errors(self, doing: str, target: ComputeTarget | None) -> Iterator[None]:
        from azure.core.exceptions import AzureError

        try:
            yield
        except AzureError as exc:
            raise translate_error(exc, doing, target, self.settings) from None

    def get_vm(self, name: str, resource_group: str | None = None) -> VmInfo:
        """The VM and its power state; :class:`ComputeNotFoundError` names it and its resource group if missing."""
        target = self.target(vm_name=name, resource_group=resource_group)
        with self._errors(f"reading {target.label}", target):
            vm = self._sdk.virtual_machines.get(target.resource_group, name, expand="instanceView")
        statuses = getattr(getattr(vm, "instance_view", None), "statuses", None) or []
        power = next((s.code.split("/", 1)[1] for s in statuses if (s.code or "").startswith("PowerState/")), None)
        size = getattr(getattr(vm, "hardware_profile", None), "vm_size", None)
        size = getattr(size, "value", size)  # the SDK gives an enum for known sizes
        return VmInfo(vm.name or name, target.resource_group, vm.location, size, power, vm.provisioning_state)

    def get_scale_set(self, name: str, resource_group: str | None = None) -> ScaleSetInfo:
        """The scale set, its capacity and its instances' power states (:class:`ComputeNotFoundError` if missing)."""
        target = self.target(scale_set_name=name, resource_group=resource_group)
        sets = self._sdk.virtual_machine_scale_sets
        with self._errors(f"reading {target.label}", target):
            vmss = sets.get(target.resource_group, name)
            view = sets.get_instance_view(target.resource_group, name)
        summary = getattr(getattr(view, "virtual_machine", None), "statuses_summary", None) or []
        powers = {
            s.code.split("/", 1)[1]: int(s.count or 0) for s in summary if (s.code or "").startswith("PowerState/")
        }
        sku = vmss.sku
        return ScaleSetInfo(
            vmss.name or name,
            target.resource_group,
            vmss.location,
            getattr(sku, "name", None),
            getattr(sku, "capacity", None),
            vmss.provisioning_state,
            powers,
        )

    def check_exists(self, target: ComputeTarget) -> VmInfo | ScaleSetInfo:
        """Look the target up: :class:`ComputeNotFoundError` if it does not exist."""
        if target.is_vm:
            return self.get_vm(target.name, target.resource_group)
        return self.get_scale_set(target.name, target.resource_group)

    # -- power and capacity (long-running operations) ---------------------------------------------

    def begin_start(self, target: ComputeTarget, instance_ids: list[str] | None = None) -> LroState:
        """Start the VM (or the scale set's instances); the operation's state, to :meth:`poll`."""
        return self._power("start", target, instance_ids)

    def begin_deallocate(self, target: ComputeTarget, instance_ids: list[str] | None = None) -> LroState:
        """Deallocate the VM or scale set instances: compute is released and no longer billed."""
        return self._power("deallocate", target, instance_ids)

    def begin_power_off(
        self, target: ComputeTarget, instance_ids: list[str] | None = None, skip_shutdown: bool = False
    ) -> LroState:
        """Power off (stop) the VM or instances: still allocated and billed, but quick to start again."""
        return self._power("power_off", target, instance_ids, skip_shutdown=skip_shutdown)

    def begin_scale(self, target: ComputeTarget, capacity: int) -> LroState:
        """Set a scale set's capacity (number of instances); checks it exists first."""
        if target.is_vm:
            raise ConfigurationError(
                "scale_set_name", "a VM has no capacity to scale", "pass scale_set_name='<scale set>'"
            )
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ConfigurationError("capacity", f"expected a whole number from 0, got {capacity!r}", "pass capacity=N")
        from azure.mgmt.compute import models

        info = self.get_scale_set(target.name, target.resource_group)
        # The SKU's name travels with the new capacity: a PATCH of capacity alone is refused by some regions.
        update = models.VirtualMachineScaleSetUpdate(sku=models.Sku(name=info.sku, capacity=capacity))
        sets = self._sdk.virtual_machine_scale_sets
        state = self._begin(
            "scale",
            target,
            lambda **kw: sets.begin_update(target.resource_group, target.name, update, **kw),
        )
        state.details = {"capacity": capacity, "previous_capacity": info.capacity}
        return state

    def _power(self, action: str, target: ComputeTarget, instance_ids: list[str] | None, **extra: Any) -> LroState:
        self.check_exists(target)  # the clear "not found" error, before anything is asked of ARM
        method = {"start": "begin_start", "deallocate": "begin_deallocate", "power_off": "begin_power_off"}[action]
        if target.is_vm:
            if instance_ids:
                raise ConfigurationError("instance_ids", "a VM has no instances", "leave instance_ids out for a VM")
            call = getattr(self._sdk.virtual_machines, method)
            kwargs = {"skip_shutdown": True} if extra.get("skip_shutdown") else {}
            return self._begin(action, target, lambda **kw: call(target.resource_group, target.name, **kwargs, **kw))
        call = getattr(self._sdk.virtual_machine_scale_sets, method)
        from azure.mgmt.compute import models

        ids = models.VirtualMachineScaleSetVMInstanceIDs(instance_ids=list(instance_ids)) if instance_ids else None
        args = (target.resource_group, target.name) if ids is None else (target.resource_group, target.name, ids)
        kwargs = {"skip_shutdown": True} if extra.get("skip_shutdown") else {}
        return self._begin(action, target, lambda **kw: call(*args, **kwargs, **kw))

    def _begin(self, action: str, target: ComputeTarget, call: Callable[..., Any]) -> LroState:
        """Send the operation's first request through the SDK (no polling); its state from ARM's answer."""
        captured: list[Any] = []
        with self._errors(f"{action} of {target.label}", target):
            call(polling=False, raw_response_hook=captured.append)
        response = captured[-1].http_response
        return start_state(
            action,
            target.resource_type,
            target.resource_group,
            target.name,
            response.status_code,
            response.headers,
            json_body(response),
            self._resource_path(target),
        )

    def _resource_path(self, target: ComputeTarget) -> str:
        return (
            f"{self.settings.base_url}/subscriptions/{self.settings.subscription_id}/resourceGroups/"
            f"{target.resource_group}/providers/Microsoft.Compute/{target.resource_type}/{target.name}"
        )

    # -- following operations ---------------------------------------------------------------------

    def poll(self, op: Op) -> Op:
        """Advance an operation by one poll (no waiting); returns it (updated in place)."""
        if isinstance(op, RunCommandOperation):
            return self._poll_run(op)
        return self._poll_lro(op, want_result=op.action == "run_command")

    def wait(
        self, op: Op, *, timeout: float | None = None, poll_interval: float | None = None, sink: Sink | None = None
    ) -> Op:
        """Poll until the operation ends (or ``timeout`` seconds pass: :class:`AzureComputeError`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = self.polling_interval if poll_interval is None else poll_interval
        last = None
        while True:
            self.poll(op)
            line = _describe(op)
            if sink is not None and line != last:
                sink(line)
                last = line
            if op.done:
                return op
            if deadline is not None and time.monotonic() > deadline:
                raise AzureComputeError(f"gave up waiting after {timeout} s: {line}")
            time.sleep(poll_delay(op, interval))

    def _poll_lro(self, state: LroState, want_result: bool) -> LroState:
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        url = next_poll_url(state)
        if url is None:
            return state
        check_same_origin(url, self.settings.base_url)
        target = ComputeTarget(state.resource_type, state.resource_group, state.name)
        try:
            if url == state.resource_url:
                body = self._resource_body(target)
                apply_poll(state, url, 200, {}, body, want_result)
                return state
            response = self._sdk.send_request(HttpRequest("GET", url))
        except AzureError as exc:
            apply_poll_error(state, url, exc, target, self.settings, want_result)
            return state
        if apply_poll_response(state, url, response, self.settings, want_result):
            return self._poll_lro(state, want_result)  # succeeded: read the result now
        return state

    def _resource_body(self, target: ComputeTarget) -> dict[str, Any]:
        resource: Any
        if target.is_vm:
            resource = self._sdk.virtual_machines.get(target.resource_group, target.name)
        else:
            resource = self._sdk.virtual_machine_scale_sets.get(target.resource_group, target.name)
        return {"properties": {"provisioningState": resource.provisioning_state}}


def _describe(op: LroState | RunCommandOperation) -> str:
    if isinstance(op, LroState):
        return op.describe()
    text = f"run {op.run_id!r} on VM {op.vm!r}: {op.state}"
    if op.exit_code is not None:
        text += f" (exit code {op.exit_code})"
    return f"{text}: {op.error}" if op.error else text
