"""Azure VMs and VM scale sets through azure-mgmt-compute (plain Python, no Airflow import).

:class:`AzureComputeClient` wraps ``ComputeManagementClient`` for what pipelines need of existing
compute: look a VM or scale set up (a clear error naming it and its resource group when missing),
start / deallocate / power off / scale it, and run scripts on a Linux VM through Run Command.
Every action returns its state as plain JSON (:class:`~.azure_vm_lro.LroState`,
:class:`~.azure_vm_script.RunCommandOperation`), so a deferred task, a trigger or a retry can
follow it in another process; :meth:`AzureComputeClient.poll` advances one, :meth:`wait` polls to
the end. :class:`AsyncAzureComputeClient` polls the same states from a trigger's event loop.

Transient failures (408/429/5xx, connection errors) are retried by azure-core's retry policy;
a poll that still fails leaves the state as it was, so the next poll tries again. Tokens and
connection secrets are never logged nor put into a state.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_provider_amlpipe.compute.azure_vm_lro import (
    SCALE_SET,
    VM,
    LroState,
    apply_poll,
    check_same_origin,
    next_poll_url,
    start_state,
)
from airflow_provider_amlpipe.compute.azure_vm_script import (
    CANCELLED,
    ERROR,
    LOST,
    MAX_SCRIPT_BYTES,
    RunCommandOperation,
    RunCommandOutput,
    check_env,
    check_run_id,
    check_shell,
    check_timeout,
    new_nonce,
    parse_report,
    render_wrapper,
)
from airflow_provider_amlpipe.compute.azure_vm_settings import AzureVmSettings
from airflow_provider_amlpipe.errors import AmlPipeError, ConfigurationError

log = logging.getLogger(__name__)

Sink = Callable[[str], None]
Op = TypeVar("Op", LroState, RunCommandOperation)


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
    apply_poll(state, url, response.status_code, response.headers, _json_body(response), want_result)
    return bool(not state.done and state.status_url is None and state.location_url and url != state.location_url)


def _json_body(response: Any) -> Any:
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


class AzureComputeClient:
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
            _json_body(response),
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
            time.sleep(_delay(op, interval))

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

    # -- Run Command ------------------------------------------------------------------------------

    def begin_run_command(
        self,
        vm: str,
        script: str,
        *,
        run_id: str,
        env: dict[str, str] | None = None,
        shell: str = "/bin/sh",
        timeout_seconds: float | None = None,
        resource_group: str | None = None,
    ) -> RunCommandOperation:
        """Run ``script`` on Linux VM ``vm`` under ``run_id``, idempotently; the operation, to :meth:`poll`.

        The script runs detached on the VM with ``shell``, ``env`` as its environment, in a fresh
        working folder; it is stopped after ``timeout_seconds``. Submitting a ``run_id`` that the VM
        already has does not run the script again: the operation reattaches to that run (still
        running, or replays how it ended). Retries while the VM runs another command, for up to
        ``busy_timeout`` seconds. A VM that is not running is an error naming the fix.
        """
        check_run_id(run_id)
        env = check_env(env)
        check_shell(shell)
        limit = check_timeout(timeout_seconds)
        if not isinstance(script, str) or not script.strip():
            raise ConfigurationError("script", "empty script", "pass the shell script to run")
        if len(script.encode()) > MAX_SCRIPT_BYTES:
            raise ConfigurationError(
                "script",
                f"{len(script.encode())} bytes exceed the {MAX_SCRIPT_BYTES} Run Command can carry",
                "stage large code as a file (e.g. through Blob) and run a small script that fetches it",
            )
        target = self.target(vm_name=vm, resource_group=resource_group)
        op = RunCommandOperation(vm, target.resource_group, run_id)
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                self._submit(op, "start", script=script, env=env, shell=shell, timeout_seconds=limit)
                return op
            except VmBusyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(min(max(self.polling_interval, 0.05), 30.0))

    def cancel_run_command(self, op: RunCommandOperation, *, timeout: float | None = None) -> RunCommandOperation:
        """Stop the run (its whole process tree) and mark it cancelled; returns the ended operation.

        Azure has no cancel for Run Command, and one command runs at a time: this waits for the
        command in flight (at most ``run_command_wait`` plus start-up), then sends a cancel command.
        A run that already ended keeps its outcome.
        """
        if op.done:
            return op
        deadline = time.monotonic() + (timeout if timeout is not None else self.busy_timeout)
        while op.lro is not None and not op.done:  # the command in flight must end first
            current = self._poll_lro(LroState.from_dict(op.lro), want_result=True)
            op.lro = current.to_dict()
            if current.done:
                self._take(op, current, resubmit=False)
                break
            if time.monotonic() > deadline:
                raise AzureComputeError(f"cancel of run {op.run_id!r} on VM {op.vm!r}: the VM stayed busy")
            time.sleep(_delay(current, min(self.polling_interval, 1.0)))
        if op.done:
            return op
        op.mode = "cancel"
        while op.lro is None and not op.done:
            self._submit_quietly(op, "cancel")
            if op.lro is None and not op.done:
                if time.monotonic() > deadline:
                    raise AzureComputeError(f"cancel of run {op.run_id!r} on VM {op.vm!r}: the VM stayed busy")
                time.sleep(min(self.polling_interval, 1.0))
        return self.wait(
            op, timeout=max(1.0, deadline - time.monotonic()), poll_interval=min(self.polling_interval, 1.0)
        )

    def delete_run(
        self, vm: str, run_id: str, *, resource_group: str | None = None, timeout: float | None = None
    ) -> None:
        """Delete an ended run's folder on the VM (its script, exit code and logs).

        Afterwards the run id is unknown to the VM: submitting it again runs the script again. A run
        still running is not deleted (:class:`AzureComputeError`); cancel it first.
        """
        check_run_id(run_id)
        target = self.target(vm_name=vm, resource_group=resource_group)
        op = RunCommandOperation(vm, target.resource_group, run_id, mode="forget")
        deadline = time.monotonic() + (timeout if timeout is not None else self.busy_timeout)
        while op.lro is None and not op.done:
            self._submit_quietly(op, "forget")
            if op.lro is None and not op.done:
                if time.monotonic() > deadline:
                    raise AzureComputeError(f"deleting run {run_id!r} on VM {vm!r}: the VM stayed busy")
                time.sleep(min(self.polling_interval, 1.0))
        current = LroState.from_dict(op.lro) if op.lro is not None else None
        while current is not None and not current.done:
            if time.monotonic() > deadline:
                raise AzureComputeError(f"deleting run {run_id!r} on VM {vm!r}: no answer in time")
            time.sleep(_delay(current, min(self.polling_interval, 1.0)))
            current = self._poll_lro(current, want_result=True)
        report = None if current is None else parse_report(current.result, op.nonce)
        if report is None or report.state == "running":
            state = "still running: cancel it first" if report is not None else "no report from the VM"
            raise AzureComputeError(f"run {run_id!r} on VM {vm!r} was not deleted ({state})")

    def run_command_output(self, op: RunCommandOperation) -> RunCommandOutput:
        """How the run ended: state, exit code, stdout and stderr tails (:class:`AzureComputeError` if running)."""
        if not op.done:
            raise AzureComputeError(f"run {op.run_id!r} on VM {op.vm!r} has not ended (state {op.state})")
        return RunCommandOutput(op.state, op.exit_code, op.stdout, op.stderr, op.error)

    def _poll_run(self, op: RunCommandOperation) -> RunCommandOperation:
        if op.done:
            return op
        if op.lro is None:
            self._submit_quietly(op, "cancel" if op.mode == "cancel" else "attach")
            return op
        current = self._poll_lro(LroState.from_dict(op.lro), want_result=True)
        op.lro = current.to_dict()
        if current.done:
            self._take(op, current, resubmit=True)
        return op

    def _take(self, op: RunCommandOperation, current: LroState, resubmit: bool) -> None:
        """A Run Command ended: read its report; if the run goes on, send the next attach command."""
        op.lro = None
        if not current.succeeded:
            # Preempted (a power operation) or failed: the next command finds out what became of the run.
            log.info("Run Command for run %r on VM %r ended %s", op.run_id, op.vm, current.describe())
        else:
            report = parse_report(current.result, op.nonce)
            if report is None:
                text = str(current.result)[-1500:]
                op.finish(ERROR, f"Run Command on VM {op.vm!r} gave no report for run {op.run_id!r}: {text}")
                return
            op.apply(report)
            if op.done:
                return
        if resubmit:
            self._submit_quietly(op, "cancel" if op.mode == "cancel" else "attach")

    def _submit_quietly(self, op: RunCommandOperation, mode: str) -> None:
        """Send an attach / cancel command; a busy VM is tried again at the next poll."""
        try:
            self._submit(op, mode)
        except VmBusyError:
            return

    def _submit(
        self,
        op: RunCommandOperation,
        mode: str,
        *,
        script: str | None = None,
        env: dict[str, str] | None = None,
        shell: str = "/bin/sh",
        timeout_seconds: int = 0,
    ) -> None:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.compute import models

        nonce = new_nonce()
        lines = render_wrapper(
            mode,
            op.run_id,
            nonce,
            script=script,
            shell=shell,
            timeout_seconds=timeout_seconds,
            wait_seconds=self.run_command_wait,
        )
        command = models.RunCommandInput(
            command_id="RunShellScript",
            script=lines,
            parameters=[models.RunCommandInputParameter(name=k, value=v) for k, v in (env or {}).items()] or None,
        )
        target = ComputeTarget(VM, op.resource_group, op.vm)
        vms = self._sdk.virtual_machines
        try:
            state = self._begin(
                "run_command",
                target,
                lambda **kw: vms.begin_run_command(op.resource_group, op.vm, command, **kw),
            )
        except AzureComputeError as exc:
            if exc.status_code == 409 and exc.code == "Conflict":
                raise VmBusyError(str(exc), 409, exc.code) from None
            if exc.status_code == 409 and exc.code == "OperationNotAllowed":
                if mode == "start":
                    raise AzureComputeError(
                        f"run {op.run_id!r}: VM {op.vm!r} (resource group {op.resource_group!r}) is not running."
                        " Fix: start it first (AzureVMStartOperator as a setup task)",
                        409,
                        exc.code,
                    ) from None
                op.finish(LOST if mode != "cancel" else CANCELLED, f"VM {op.vm!r} is not running any more: {exc}")
                return
            raise
        except HttpResponseError as exc:  # pragma: no cover - translated by _errors
            raise translate_error(exc, "run command", target, self.settings) from None
        op.lro, op.nonce, op.mode = state.to_dict(), nonce, mode
        op.commands += 1


def _describe(op: LroState | RunCommandOperation) -> str:
    if isinstance(op, LroState):
        return op.describe()
    text = f"run {op.run_id!r} on VM {op.vm!r}: {op.state}"
    if op.exit_code is not None:
        text += f" (exit code {op.exit_code})"
    return f"{text}: {op.error}" if op.error else text


def _delay(op: LroState | RunCommandOperation, interval: float) -> float:
    current = op if isinstance(op, LroState) else op.current
    if current is not None and current.retry_after:
        return max(current.retry_after, 0.05)
    return max(interval, 0.05)
