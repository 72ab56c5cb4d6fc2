"""A local Azure Resource Manager server for ``Microsoft.Compute`` VMs and VM scale sets.

Enough of ARM for azure-mgmt-compute 39's ``ComputeManagementClient`` (api-version 2026-04-01, any
dated api-version is accepted and recorded) to drive existing Linux VMs and scale sets:

* VMs (registered by the test with :meth:`ArmComputeServer.add_vm`): ``GET virtualMachines/{name}``
  (``$expand=instanceView`` adds the instance view), ``GET …/instanceView`` (``PowerState/running``,
  ``deallocated``, ``stopped`` and the transitional ``starting`` / ``deallocating`` / ``stopping``
  while an operation runs, with ``ProvisioningState/updating`` then ``succeeded``), ``POST …/start``,
  ``…/deallocate``, ``…/powerOff``, and ``POST …/runCommand``.
* Run Command (``RunShellScript``; ``script`` lines given or not) **really runs** the script: the
  lines are joined into ``script.sh`` in a fresh ``run-command/download/<seq>/`` folder of the VM's
  own directory and run with ``/bin/sh script.sh`` there, as the Linux agent does; every entry of
  ``parameters`` becomes an environment variable (``name=value``). The result, at the operation's
  ``Location`` and in its status (``properties.output``), is what Azure answers for a Linux VM: a
  single ``InstanceViewStatus`` ``{"code": "ProvisioningState/succeeded", "level": "Info",
  "displayStatus": "Provisioning succeeded", "message": "Enable succeeded: \\n[stdout]\\n…\\n[stderr]\\n…"}``
  holding the last 4096 bytes of each stream. As on Azure, a non-zero exit code of the script does
  **not** fail the operation and is not reported (the caller must read it from the output); the test
  hook :attr:`ArmComputeServer.run_commands` keeps it. Run Command on a VM that is not running
  answers ``409 OperationNotAllowed`` ("The operation requires the VM to be running (or set to run)."),
  and a second one while one runs ``409 Conflict``. ``RunPowerShellScript`` and other command ids
  fail with ``400 InvalidParameter`` (these are Linux VMs).
* Scale sets (:meth:`ArmComputeServer.add_scale_set`): ``GET virtualMachineScaleSets/{name}``
  (``sku.capacity``), ``GET …/instanceView`` (``statusesSummary`` of the instances' power states),
  ``PATCH`` / ``PUT`` (a new ``sku.capacity``; ``PUT`` of an unknown name creates it, ``201``),
  ``POST …/start``, ``…/deallocate``, ``…/powerOff`` (all instances, or ``instanceIds`` in the body).

Long-running operations behave as ARM's do, so the SDK's ``LROPoller`` (``begin_*``) really polls:
``POST`` actions answer ``202 Accepted`` with ``Azure-AsyncOperation`` (the operation status,
``{"status": "InProgress" | "Succeeded" | "Failed" | "Canceled", …}``), ``Location`` (the same
operation with ``monitor=true``: ``202`` until done, then ``200`` with the result) and
``Retry-After``; ``PATCH`` / ``PUT`` answer ``200`` / ``201`` with the resource in
``provisioningState: Updating`` plus ``Azure-AsyncOperation``. Each operation takes
``operation_seconds`` (Run Command: as long as its script, at least that); a power operation on a
resource with one still running preempts it (the older one ends ``Canceled`` with
``OperationPreempted``, as on Azure; a running script is killed). Errors are ARM's
``{"error": {"code", "message"}}``: ``404 ResourceNotFound`` for an unknown VM or scale set,
``404 ResourceGroupNotFound``, ``404 SubscriptionNotFound``, ``401`` for a missing or wrong token.

Client set-up (``http://127.0.0.1:PORT``)::

    from azure.mgmt.compute import ComputeManagementClient

    client = ComputeManagementClient(
        credential,                       # any TokenCredential; its token must be server.token if one is set
        server.subscription_id,
        base_url=server.endpoint,         # instead of https://management.azure.com
        credential_scopes=["https://management.azure.com/.default"],
        per_call_policies=[AllowHttpPolicy()],  # allow the bearer token over http (see below)
        polling_interval=0.05,            # LRO poll period when the server's Retry-After is 0
        retry_backoff_factor=0.01,        # injected 5xx are retried quickly
    )

azure-core's ``BearerTokenCredentialPolicy`` (the ARM challenge policy derives from it) refuses to
send a token to a non-https URL ("Bearer token authentication is not permitted for non-TLS protected
(non-https) URLs"); :class:`AllowHttpPolicy` sets ``enforce_https = False`` in every request's
context, including the poller's status requests. (``enforce_https=False`` given to each ``begin_*`` /
``get`` call works too; given to the constructor it does nothing.) The poller waits ``Retry-After``
seconds between polls when the header is non-zero, else ``polling_interval``.

Test hooks: ``operation_seconds``, ``retry_after`` (the ``Retry-After`` value sent, seconds; the SDK
accepts fractions), ``inject`` (status codes for the next requests), ``requests`` (every request
received), ``operations`` (a ``Counter`` of ``(resource name, operation)``, e.g. ``("vm1", "start")``),
``run_commands`` (every script run: VM, script, parameters, exit code, stdout, stderr),
:meth:`vm_dir` (a VM's directory; ``$HOME`` of its scripts is ``<vm_dir>/root``).

Not implemented: creating / deleting VMs, managed Run Command resources (``runCommands/{name}``),
VM scale set VMs' own endpoints, async run command (``asyncExecution``), run-as users, Windows VMs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from azure.core.pipeline.policies import SansIOHTTPPolicy

from support.loopback_http import RecordedRequest, ServiceHandler, admit, hosting, parse_request

API_VERSION = "2026-04-01"
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_TAIL = 4096  # what the Linux Run Command handler keeps of each stream
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_POWER = {  # action -> (transitional power state, final power state)
    "start": ("starting", "running"),
    "deallocate": ("deallocating", "deallocated"),
    "powerOff": ("stopping", "stopped"),
}
_DISPLAY = {
    "running": "VM running",
    "deallocated": "VM deallocated",
    "stopped": "VM stopped",
    "starting": "VM starting",
    "deallocating": "VM deallocating",
    "stopping": "VM stopping",
}


class AllowHttpPolicy(SansIOHTTPPolicy):
    """Client side: let azure-core send bearer tokens to an ``http://`` loopback test server."""

    def on_request(self, request: Any) -> None:
        request.context["enforce_https"] = False


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class RunCommandRecord:
    vm: str
    script: str
    parameters: dict[str, str]
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass
class _Operation:
    op_id: str
    name: str
    started: str
    done_at: float | None  # monotonic time it completes, or None while a script decides
    on_complete: Callable[[], None] | None = None
    status: str = "InProgress"
    ended: str | None = None
    error: dict[str, str] | None = None
    output: Any = None  # the result (body of the final Location GET)
    monitor_url: str = ""


@dataclass
class _Vm:
    resource_group: str
    name: str
    location: str
    vm_size: str
    power: str = "running"
    vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    pending: _Operation | None = None
    run: _Operation | None = None
    proc: subprocess.Popen[bytes] | None = None
    seq: int = 0


@dataclass
class _ScaleSet:
    resource_group: str
    name: str
    location: str
    sku: dict[str, Any]
    instances: list[str]  # power state per instance id (its index)
    properties: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pending: _Operation | None = None
    updating: _Operation | None = None
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class ArmComputeServer:
    """The server's state; :func:`running_arm_compute_server` starts it on a free loopback port."""

    def __init__(self, subscription_id: str, token: str | None, root: Path) -> None:
        self.subscription_id = subscription_id
        self.token = token
        self.root = root
        self.endpoint = ""
        self.operation_seconds = 0.2
        self.retry_after = 0.0
        self.inject: list[int] = []
        self.requests: list[RecordedRequest] = []
        self.operations: Counter[tuple[str, str]] = Counter()
        self.run_commands: list[RunCommandRecord] = []
        self.resource_groups: set[str] = set()
        self.vms: dict[tuple[str, str], _Vm] = {}
        self.scale_sets: dict[tuple[str, str], _ScaleSet] = {}
        self.ops: dict[str, _Operation] = {}
        self.lock = threading.RLock()
        self._threads: list[threading.Thread] = []

    # -- test set-up -------------------------------------------------------------------------

    def add_vm(
        self,
        resource_group: str,
        name: str,
        power: str = "running",
        location: str = "westeurope",
        vm_size: str = "Standard_D2s_v3",
    ) -> None:
        """Register an existing Linux VM (``power``: running, deallocated or stopped)."""
        with self.lock:
            self.resource_groups.add(resource_group.lower())
            self.vms[(resource_group.lower(), name.lower())] = _Vm(resource_group, name, location, vm_size, power)
        self.vm_dir(resource_group, name).joinpath("root").mkdir(parents=True, exist_ok=True)

    def add_scale_set(
        self,
        resource_group: str,
        name: str,
        capacity: int = 1,
        location: str = "westeurope",
        sku: str = "Standard_D2s_v3",
    ) -> None:
        """Register an existing Uniform scale set with ``capacity`` running instances."""
        with self.lock:
            self.resource_groups.add(resource_group.lower())
            self.scale_sets[(resource_group.lower(), name.lower())] = _ScaleSet(
                resource_group,
                name,
                location,
                {"name": sku, "tier": "Standard", "capacity": capacity},
                ["running"] * capacity,
            )

    def vm_dir(self, resource_group: str, name: str) -> Path:
        return self.root / "vms" / resource_group.lower() / name.lower()

    def power_state(self, resource_group: str, name: str) -> str:
        with self.lock:
            self._advance()
            return self.vms[(resource_group.lower(), name.lower())].power

    # -- protocol entry point ----------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, Any]:
        path, query, parsed = parse_request(raw_path, body)
        injected = admit(self, RecordedRequest(method, path, query, headers.get("authorization"), parsed))
        try:
            if injected is not None:
                raise ArmError(injected, "InjectedFailure", f"injected HTTP {injected}")
            self._authenticate(headers)
            version = (query.get("api-version") or [""])[0]
            if not version:
                raise ArmError(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
            if not _API_VERSION.match(version):
                raise ArmError(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid.")
            if body and not isinstance(parsed, dict):
                raise ArmError(
                    400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
                )
            with self.lock:
                self._advance()
                return self._route(method, path, query, parsed or {}, version)
        except ArmError as exc:
            return exc.status, {}, {"error": {"code": exc.code, "message": exc.message}}
        except Exception as exc:  # a server bug: answer like ARM's internal errors, keep serving
            return 500, {}, {"error": {"code": "InternalServerError", "message": f"{type(exc).__name__}: {exc}"}}

    def _authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization")
        if not auth:
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or not token or (self.token is not None and token != self.token):
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")

    def _route(self, method: str, path: str, query: dict, body: dict, version: str) -> tuple[int, dict, Any]:
        segs = [unquote(s) for s in path.strip("/").split("/")]
        if len(segs) < 2 or segs[0].lower() != "subscriptions":
            raise ArmError(404, "InvalidResourceType", f"No route for {path}")
        if segs[1] != self.subscription_id:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{segs[1]}' could not be found.")
        low = [s.lower() for s in segs]
        # /subscriptions/{s}/providers/Microsoft.Compute/locations/{loc}/operations/{id}
        if low[2:4] == ["providers", "microsoft.compute"] and len(segs) == 8 and low[4] == "locations":
            return self._operation(segs[7], query, version)
        if len(segs) < 8 or low[2] != "resourcegroups" or low[4:6] != ["providers", "microsoft.compute"]:
            raise ArmError(404, "InvalidResourceType", f"No route for {path}")
        group, kind, name, rest = segs[3], low[6], segs[7], low[8:]
        if group.lower() not in self.resource_groups:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
        if kind == "virtualmachines":
            vm = self.vms.get((group.lower(), name.lower()))
            if vm is None:
                raise self._not_found("virtualMachines", name, group)
            if not rest and method == "GET":
                expand = (query.get("$expand") or [""])[0]
                return 200, {}, self._vm_view(vm, with_instance_view=expand.lower() == "instanceview")
            if rest == ["instanceview"] and method == "GET":
                return 200, {}, self._vm_instance_view(vm)
            if len(rest) == 1 and method == "POST" and rest[0] in ("start", "deallocate", "poweroff"):
                return self._vm_power(vm, segs[8], version)
            if rest == ["runcommand"] and method == "POST":
                return self._run_command(vm, body, version)
        if kind == "virtualmachinescalesets":
            key = (group.lower(), name.lower())
            vmss = self.scale_sets.get(key)
            if not rest and method == "PUT":
                return self._put_scale_set(group, name, vmss, body, version)
            if vmss is None:
                raise self._not_found("virtualMachineScaleSets", name, group)
            if not rest and method == "GET":
                return 200, {}, self._vmss_view(vmss)
            if not rest and method == "PATCH":
                return self._update_scale_set(vmss, body, version)
            if rest == ["instanceview"] and method == "GET":
                return 200, {}, self._vmss_instance_view(vmss)
            if len(rest) == 1 and method == "POST" and rest[0] in ("start", "deallocate", "poweroff"):
                return self._vmss_power(vmss, segs[8], body, version)
        raise ArmError(
            405 if method not in ("GET", "HEAD") else 404,
            "UnsupportedOperation",
            f"{method} {path} is not supported by this test server.",
        )

    @staticmethod
    def _not_found(kind: str, name: str, group: str) -> ArmError:
        return ArmError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.Compute/{kind}/{name}' under resource"
            f" group '{group}' was not found. For more details please go to"
            " https://aka.ms/ARMResourceNotFoundFix",
        )

    # -- operations --------------------------------------------------------------------------

    def _op_urls(self, location: str, op: _Operation, version: str) -> dict[str, str]:
        base = (
            f"{self.endpoint}/subscriptions/{self.subscription_id}/providers/Microsoft.Compute/locations/"
            f"{location}/operations/{op.op_id}?p={uuid.uuid4()}&api-version={version}"
        )
        op.monitor_url = base.replace("?p=", "?monitor=true&p=")
        return {
            "Azure-AsyncOperation": base,
            "Location": op.monitor_url,
            "Retry-After": f"{self.retry_after:g}",
        }

    def _start_op(
        self, resource: str, name: str, on_complete: Callable[[], None] | None, duration: float | None = None
    ) -> _Operation:
        seconds = self.operation_seconds if duration is None else duration
        op = _Operation(str(uuid.uuid4()), name, _now(), time.monotonic() + seconds, on_complete)
        self.ops[op.op_id] = op
        self.operations[(resource, name)] += 1
        return op

    def _finish(self, op: _Operation, status: str = "Succeeded", error: dict[str, str] | None = None) -> None:
        if op.status != "InProgress":
            return
        op.status, op.ended, op.error = status, _now(), error
        if status == "Succeeded" and op.on_complete is not None:
            op.on_complete()

    def _advance(self) -> None:
        now = time.monotonic()
        for op in list(self.ops.values()):
            if op.status == "InProgress" and op.done_at is not None and now >= op.done_at:
                self._finish(op)

    def _operation(self, op_id: str, query: dict, version: str) -> tuple[int, dict, Any]:
        op = self.ops.get(op_id)
        if op is None:
            raise ArmError(404, "NotFound", f"The operation '{op_id}' was not found.")
        if (query.get("monitor") or [""])[0] == "true":  # the Location URL
            if op.status == "InProgress":
                return 202, {"Location": op.monitor_url, "Retry-After": f"{self.retry_after:g}"}, None
            if op.status != "Succeeded":
                return 409 if op.status == "Canceled" else 500, {}, {"error": op.error}
            return 200, {}, op.output
        status: dict[str, Any] = {"startTime": op.started, "status": op.status, "name": op.op_id}
        if op.ended:
            status["endTime"] = op.ended
        if op.error:
            status["error"] = op.error
        if op.status == "Succeeded" and op.output is not None:
            status["properties"] = {"output": op.output}
        return 200, {} if op.status != "InProgress" else {"Retry-After": f"{self.retry_after:g}"}, status

    # -- VMs ---------------------------------------------------------------------------------

    def _vm_id(self, vm: _Vm) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{vm.resource_group}/providers/"
            f"Microsoft.Compute/virtualMachines/{vm.name}"
        )

    def _busy(self, op: _Operation | None) -> bool:
        return op is not None and op.status == "InProgress"

    def _vm_view(self, vm: _Vm, with_instance_view: bool = False) -> dict[str, Any]:
        props: dict[str, Any] = {
            "vmId": vm.vm_id,
            "hardwareProfile": {"vmSize": vm.vm_size},
            "storageProfile": {
                "imageReference": {
                    "publisher": "Canonical",
                    "offer": "0001-com-ubuntu-server-jammy",
                    "sku": "22_04-lts-gen2",
                    "version": "latest",
                },
                "osDisk": {
                    "osType": "Linux",
                    "name": f"{vm.name}_OsDisk_1",
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "diskSizeGB": 30,
                },
                "dataDisks": [],
            },
            "osProfile": {
                "computerName": vm.name,
                "adminUsername": "azureuser",
                "linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True},
            },
            "networkProfile": {"networkInterfaces": [{"id": f"{self._vm_id(vm)}-nic"}]},
            "provisioningState": "Updating" if self._busy(vm.pending) or self._busy(vm.run) else "Succeeded",
        }
        if with_instance_view:
            props["instanceView"] = self._vm_instance_view(vm)
        return {
            "id": self._vm_id(vm),
            "name": vm.name,
            "type": "Microsoft.Compute/virtualMachines",
            "location": vm.location,
            "properties": props,
        }

    def _vm_instance_view(self, vm: _Vm) -> dict[str, Any]:
        busy = self._busy(vm.pending) or self._busy(vm.run)
        provisioning = "updating" if busy else "succeeded"
        power = vm.power
        if self._busy(vm.pending):
            power = _POWER[vm.pending.name][0]
        statuses = [
            {
                "code": f"ProvisioningState/{provisioning}",
                "level": "Info",
                "displayStatus": f"Provisioning {provisioning}",
                "time": _now(),
            },
            {"code": f"PowerState/{power}", "level": "Info", "displayStatus": _DISPLAY[power]},
        ]
        agent_ready = vm.power == "running"
        return {
            "computerName": vm.name,
            "osName": "ubuntu",
            "osVersion": "22.04",
            "vmAgent": {
                "vmAgentVersion": "2.9.1.1",
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Ready" if agent_ready else "Not Ready",
                        "message": "Guest Agent is running"
                        if agent_ready
                        else "VM status blob is found but not yet populated.",
                        "time": _now(),
                    }
                ],
            },
            "statuses": statuses,
        }

    def _vm_power(self, vm: _Vm, action: str, version: str) -> tuple[int, dict, Any]:
        action = {"start": "start", "deallocate": "deallocate", "poweroff": "powerOff"}[action.lower()]
        preempted = {
            "code": "OperationPreempted",
            "message": "Operation execution has been preempted by a more recent operation.",
        }
        if self._busy(vm.pending):
            self._finish(vm.pending, "Canceled", preempted)
        if action != "start" and self._busy(vm.run):
            self._kill(vm)
            self._finish(vm.run, "Canceled", preempted)
        final = _POWER[action][1]

        def complete() -> None:
            vm.power = final

        vm.pending = self._start_op(vm.name, action, complete)
        return 202, self._op_urls(vm.location, vm.pending, version), None

    def _run_command(self, vm: _Vm, body: dict[str, Any], version: str) -> tuple[int, dict, Any]:
        command_id = body.get("commandId")
        if not command_id:
            raise ArmError(400, "InvalidParameter", "Required parameter 'commandId' is missing (null).")
        if command_id != "RunShellScript":
            raise ArmError(
                400,
                "InvalidParameter",
                f"Command '{command_id}' is not supported on a Linux VM; this test server supports RunShellScript.",
            )
        starting = self._busy(vm.pending) and vm.pending.name == "start"
        if not starting and (vm.power != "running" or self._busy(vm.pending)):
            raise ArmError(409, "OperationNotAllowed", "The operation requires the VM to be running (or set to run).")
        if self._busy(vm.run):
            raise ArmError(
                409,
                "Conflict",
                "Run command extension execution is in progress. Please wait for"
                " completion before invoking a run command.",
            )
        script = "\n".join(body.get("script") or []) + "\n"
        parameters = {p["name"]: str(p.get("value", "")) for p in body.get("parameters") or [] if p.get("name")}
        record = RunCommandRecord(vm.name, script, parameters)
        self.run_commands.append(record)
        op = self._start_op(vm.name, "runCommand", None)
        op.done_at = None  # the script decides
        vm.run = op
        folder = self.vm_dir(vm.resource_group, vm.name) / "run-command" / "download" / str(vm.seq)
        vm.seq += 1
        thread = threading.Thread(target=self._execute, args=(vm, op, record, folder), daemon=True)
        self._threads.append(thread)
        thread.start()
        return 202, self._op_urls(vm.location, op, version), None

    def _execute(self, vm: _Vm, op: _Operation, record: RunCommandRecord, folder: Path) -> None:
        started = time.monotonic()
        while True:  # a VM "set to run" (starting) runs the script once it is up
            with self.lock:
                self._advance()
                if vm.power == "running" or op.status != "InProgress":
                    break
            time.sleep(0.02)
        if op.status != "InProgress":
            return
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "script.sh").write_text(record.script)
        home = self.vm_dir(vm.resource_group, vm.name) / "root"
        env = {"PATH": _PATH, "HOME": str(home), "LANG": "C.UTF-8", "USER": "root", **record.parameters}
        with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
            # Started and recorded under the lock that requests hold: a deallocate either comes first (and the
            # script never starts) or finds the process to kill -- never a script running unrecorded.
            with self.lock:
                if op.status != "InProgress":
                    return
                proc = subprocess.Popen(
                    ["/bin/sh", "script.sh"],
                    cwd=folder,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
                vm.proc = proc
            proc.wait()
        record.exit_code = proc.returncode
        record.stdout = (folder / "stdout").read_bytes()[-_TAIL:].decode(errors="replace")
        record.stderr = (folder / "stderr").read_bytes()[-_TAIL:].decode(errors="replace")
        remaining = self.operation_seconds - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        with self.lock:
            vm.proc = None
            op.output = {
                "value": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                        "message": f"Enable succeeded: \n[stdout]\n{record.stdout}\n[stderr]\n{record.stderr}",
                    }
                ]
            }
            self._finish(op)

    @staticmethod
    def _kill(vm: _Vm) -> None:
        if vm.proc is not None and vm.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(vm.proc.pid, signal.SIGKILL)

    # -- scale sets --------------------------------------------------------------------------

    def _vmss_id(self, vmss: _ScaleSet) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{vmss.resource_group}/providers/"
            f"Microsoft.Compute/virtualMachineScaleSets/{vmss.name}"
        )

    def _vmss_view(self, vmss: _ScaleSet) -> dict[str, Any]:
        busy = self._busy(vmss.pending) or self._busy(vmss.updating)
        props = {
            "singlePlacementGroup": True,
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": vmss.name[:9], "adminUsername": "azureuser"},
                "storageProfile": {
                    "imageReference": {
                        "publisher": "Canonical",
                        "offer": "0001-com-ubuntu-server-jammy",
                        "sku": "22_04-lts-gen2",
                        "version": "latest",
                    }
                },
            },
            "overprovision": False,
            "orchestrationMode": "Uniform",
            **vmss.properties,
            "provisioningState": "Updating" if busy else "Succeeded",
            "uniqueId": vmss.unique_id,
        }
        view = {
            "id": self._vmss_id(vmss),
            "name": vmss.name,
            "type": "Microsoft.Compute/virtualMachineScaleSets",
            "location": vmss.location,
            "sku": dict(vmss.sku),
            "properties": props,
        }
        if vmss.tags:
            view["tags"] = dict(vmss.tags)
        return view

    def _vmss_instance_view(self, vmss: _ScaleSet) -> dict[str, Any]:
        counts = Counter(vmss.instances)
        busy = self._busy(vmss.pending) or self._busy(vmss.updating)
        provisioning = "updating" if busy else "succeeded"
        return {
            "virtualMachine": {
                "statusesSummary": [{"code": f"PowerState/{p}", "count": n} for p, n in sorted(counts.items())]
            },
            "statuses": [
                {
                    "code": f"ProvisioningState/{provisioning}",
                    "level": "Info",
                    "displayStatus": f"Provisioning {provisioning}",
                    "time": _now(),
                }
            ],
        }

    def _resize(self, vmss: _ScaleSet, capacity: int) -> None:
        while len(vmss.instances) < capacity:
            vmss.instances.append("running")
        del vmss.instances[capacity:]
        vmss.sku["capacity"] = capacity

    def _update_scale_set(
        self, vmss: _ScaleSet, body: dict[str, Any], version: str, status: int = 200
    ) -> tuple[int, dict, Any]:
        sku = body.get("sku") or {}
        capacity = sku.get("capacity")
        if capacity is not None and (not isinstance(capacity, int) or capacity < 0 or capacity > 1000):
            raise ArmError(400, "InvalidParameter", "The value of parameter sku.capacity is invalid.")
        if self._busy(vmss.updating):
            raise ArmError(409, "OperationNotAllowed", "Another operation on this scale set is in progress.")
        if sku.get("name"):
            vmss.sku["name"] = sku["name"]
        if isinstance(body.get("tags"), dict):
            vmss.tags = body["tags"]

        def complete() -> None:
            if capacity is not None:
                self._resize(vmss, capacity)

        vmss.updating = self._start_op(vmss.name, "update", complete)
        headers = self._op_urls(vmss.location, vmss.updating, version)
        del headers["Location"]
        return status, {"Azure-AsyncOperation": headers["Azure-AsyncOperation"]}, self._vmss_view(vmss)

    def _put_scale_set(
        self, group: str, name: str, vmss: _ScaleSet | None, body: dict[str, Any], version: str
    ) -> tuple[int, dict, Any]:
        if vmss is not None:
            return self._update_scale_set(vmss, body, version)
        if not body.get("location") or not (body.get("sku") or {}).get("name"):
            raise ArmError(400, "InvalidParameter", "location and sku.name are required to create a scale set.")
        vmss = _ScaleSet(
            group, name, body["location"], {"name": body["sku"]["name"], "tier": "Standard", "capacity": 0}, []
        )
        vmss.properties = {k: v for k, v in (body.get("properties") or {}).items() if k != "provisioningState"}
        self.scale_sets[(group.lower(), name.lower())] = vmss
        return self._update_scale_set(vmss, body, version, status=201)

    def _vmss_power(self, vmss: _ScaleSet, action: str, body: dict[str, Any], version: str) -> tuple[int, dict, Any]:
        action = {"start": "start", "deallocate": "deallocate", "poweroff": "powerOff"}[action.lower()]
        ids = body.get("instanceIds") or [str(i) for i in range(len(vmss.instances))]
        if any(not str(i).isdigit() or int(i) >= len(vmss.instances) for i in ids):
            raise ArmError(400, "InvalidParameter", f"Instance ids {ids} are not in the scale set.")
        if self._busy(vmss.pending):
            self._finish(
                vmss.pending,
                "Canceled",
                {
                    "code": "OperationPreempted",
                    "message": "Operation execution has been preempted by a more recent operation.",
                },
            )
        final = _POWER[action][1]

        def complete() -> None:
            for i in ids:
                if int(i) < len(vmss.instances):
                    vmss.instances[int(i)] = final

        vmss.pending = self._start_op(vmss.name, action, complete)
        return 202, self._op_urls(vmss.location, vmss.pending, version), None

    # -- lifecycle ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        with self.lock:
            for vm in self.vms.values():
                self._kill(vm)
        for thread in self._threads:
            thread.join(10)


def _handler(state: ArmComputeServer) -> type[ServiceHandler]:
    class Handler(ServiceHandler):
        json_type = "application/json; charset=utf-8"

        def service_headers(self, request: dict[str, str]) -> list[tuple[str, str]]:
            correlation = request.get("x-ms-client-request-id") or str(uuid.uuid4())
            return [("x-ms-request-id", str(uuid.uuid4())), ("x-ms-correlation-request-id", correlation)]

        def _serve(self) -> None:
            self.dispatch(state.handle)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

    return Handler


@contextmanager
def running_arm_compute_server(
    subscription_id: str = "00000000-0000-0000-0000-00000000c0de", token: str | None = None
) -> Iterator[ArmComputeServer]:
    """Serve ARM for Microsoft.Compute on ``127.0.0.1`` at a free port; ``state.endpoint`` is its URL.

    ``token`` (if given) is the only bearer token accepted, else any non-empty one is. At exit the
    server stops, running scripts are killed and the VMs' folders are removed.
    """
    root = Path(tempfile.mkdtemp(prefix="arm-compute-server-"))
    state = ArmComputeServer(subscription_id, token, root)
    with hosting(state, _handler(state), root):
        yield state
