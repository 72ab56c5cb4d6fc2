"""The ARM Microsoft.Compute test server, driven by the real azure-mgmt-compute ``ComputeManagementClient``."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as cm
from support.arm_compute_server import AllowHttpPolicy, ArmComputeServer, running_arm_compute_server

TOKEN = "arm-test-token-7d1"
RG = "rg-compute"


class _Token:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def server() -> Iterator[ArmComputeServer]:
    with running_arm_compute_server(token=TOKEN) as state:
        state.add_vm(RG, "vm1")
        state.add_vm(RG, "vm-off", power="deallocated")
        state.add_scale_set(RG, "pool-ss", capacity=2)
        yield state


def _client(server: ArmComputeServer, token: str = TOKEN, **kwargs: Any) -> ComputeManagementClient:
    return ComputeManagementClient(
        _Token(token),
        server.subscription_id,
        base_url=server.endpoint,
        credential_scopes=["https://management.azure.com/.default"],
        per_call_policies=[AllowHttpPolicy()],
        polling_interval=0.05,
        retry_backoff_factor=0.01,
        **kwargs,
    )


@pytest.fixture
def client(server: ArmComputeServer) -> ComputeManagementClient:
    return _client(server)


def _power(client: ComputeManagementClient, vm: str) -> str:
    statuses = client.virtual_machines.instance_view(RG, vm).statuses
    return next(s.code for s in statuses if s.code.startswith("PowerState/"))


def _run(client: ComputeManagementClient, vm: str, *lines: str, **parameters: str) -> cm.RunCommandResult:
    command = cm.RunCommandInput(
        command_id="RunShellScript",
        script=list(lines),
        parameters=[cm.RunCommandInputParameter(name=k, value=v) for k, v in parameters.items()],
    )
    return client.virtual_machines.begin_run_command(RG, vm, command).result()


# -- auth and errors ---------------------------------------------------------------------------


def test_bearer_token_over_http_needs_the_policy(server: ArmComputeServer) -> None:
    plain = ComputeManagementClient(_Token(), server.subscription_id, base_url=server.endpoint, retry_total=0)
    with pytest.raises(ServiceRequestError, match="non-TLS"):
        plain.virtual_machines.get(RG, "vm1")
    credential = _Token()
    client = ComputeManagementClient(
        credential, server.subscription_id, base_url=server.endpoint, per_call_policies=[AllowHttpPolicy()]
    )
    assert client.virtual_machines.get(RG, "vm1").name == "vm1"
    assert credential.scopes == [("https://management.azure.com/.default",)]
    assert server.requests[-1].authorization == f"Bearer {TOKEN}"
    assert server.requests[-1].query["api-version"] == ["2026-04-01"]
    with pytest.raises(ClientAuthenticationError) as caught:
        _client(server, token="wrong").virtual_machines.get(RG, "vm1")
    assert caught.value.error.code == "InvalidAuthenticationToken"


def test_unknown_resources_are_404(server: ArmComputeServer, client: ComputeManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        client.virtual_machines.get(RG, "nope")
    assert caught.value.error.code == "ResourceNotFound"
    assert "Microsoft.Compute/virtualMachines/nope" in caught.value.error.message
    with pytest.raises(ResourceNotFoundError) as caught:
        client.virtual_machines.begin_start(RG, "nope")
    assert caught.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as caught:
        client.virtual_machine_scale_sets.get("other-rg", "pool-ss")
    assert caught.value.error.code == "ResourceGroupNotFound"
    other = ComputeManagementClient(
        _Token(),
        "11111111-1111-1111-1111-111111111111",
        base_url=server.endpoint,
        per_call_policies=[AllowHttpPolicy()],
    )
    with pytest.raises(ResourceNotFoundError) as caught:
        other.virtual_machines.get(RG, "vm1")
    assert caught.value.error.code == "SubscriptionNotFound"


def test_injected_failures_are_retried(server: ArmComputeServer, client: ComputeManagementClient) -> None:
    server.inject = [503, 500]
    before = len(server.requests)
    assert client.virtual_machines.get(RG, "vm1").name == "vm1"
    assert len(server.requests) - before == 3


# -- VMs -----------------------------------------------------------------------------------------


def test_get_vm_with_instance_view(client: ComputeManagementClient) -> None:
    plain = client.virtual_machines.get(RG, "vm1")
    assert plain.instance_view is None and plain.provisioning_state == "Succeeded"
    assert plain.id.endswith(f"/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm1")
    expanded = client.virtual_machines.get(RG, "vm1", expand="instanceView")
    codes = [s.code for s in expanded.instance_view.statuses]
    assert codes == ["ProvisioningState/succeeded", "PowerState/running"]
    assert _power(client, "vm-off") == "PowerState/deallocated"


def test_deallocate_and_start_poll_to_completion(server: ArmComputeServer, client: ComputeManagementClient) -> None:
    server.operation_seconds = 0.4
    poller = client.virtual_machines.begin_deallocate(RG, "vm1")
    assert _power(client, "vm1") == "PowerState/deallocating"
    assert client.virtual_machines.get(RG, "vm1").provisioning_state == "Updating"
    poller.result()
    assert poller.status() == "Succeeded"
    assert _power(client, "vm1") == "PowerState/deallocated"
    polls = [r for r in server.requests if "/operations/" in r.path]
    assert len(polls) >= 3  # the status was polled while in progress, then the Location read
    assert polls[-1].query.get("monitor") == ["true"]

    client.virtual_machines.begin_start(RG, "vm1").result()
    assert _power(client, "vm1") == "PowerState/running"
    client.virtual_machines.begin_power_off(RG, "vm1").result()
    assert _power(client, "vm1") == "PowerState/stopped"
    assert server.operations[("vm1", "deallocate")] == 1
    assert server.operations[("vm1", "start")] == 1
    assert server.operations[("vm1", "powerOff")] == 1


def test_lro_headers_and_status_documents(server: ArmComputeServer) -> None:
    """The raw protocol: 202 + Azure-AsyncOperation + Location + Retry-After, then InProgress → Succeeded."""
    server.operation_seconds = 0.3
    server.retry_after = 1
    url = (
        f"{server.endpoint}/subscriptions/{server.subscription_id}/resourceGroups/{RG}/providers/"
        "Microsoft.Compute/virtualMachines/vm1/deallocate?api-version=2026-04-01"
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with urllib.request.urlopen(urllib.request.Request(url, method="POST", headers=headers)) as response:
        assert response.status == 202
        status_url = response.headers["Azure-AsyncOperation"]
        location = response.headers["Location"]
        assert response.headers["Retry-After"] == "1"
    assert "/providers/Microsoft.Compute/locations/westeurope/operations/" in status_url
    with urllib.request.urlopen(urllib.request.Request(status_url, headers=headers)) as response:
        assert json.load(response)["status"] == "InProgress"
    with urllib.request.urlopen(urllib.request.Request(location, headers=headers)) as response:
        assert response.status == 202
    time.sleep(0.35)
    with urllib.request.urlopen(urllib.request.Request(status_url, headers=headers)) as response:
        document = json.load(response)
    assert document["status"] == "Succeeded" and document["endTime"]
    with urllib.request.urlopen(urllib.request.Request(location, headers=headers)) as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(
            urllib.request.Request(url.replace("api-version=2026-04-01", "x=1"), method="POST", headers=headers)
        )
    assert caught.value.code == 400


def test_run_command_output_and_parameters(server: ArmComputeServer, client: ComputeManagementClient) -> None:
    result = _run(
        client,
        "vm1",
        'echo "hello $GREETING_NAME"',
        "echo warn >&2",
        "pwd",
        'echo kept > "$HOME/state.txt"',
        "exit 7",
        GREETING_NAME="Ada Lovelace",
    )
    (status,) = result.value
    assert (status.code, status.level, status.display_status) == (
        "ProvisioningState/succeeded",
        "Info",
        "Provisioning succeeded",
    )
    assert status.message.startswith("Enable succeeded: \n[stdout]\nhello Ada Lovelace\n")
    assert status.message.endswith("\n[stderr]\nwarn\n")
    assert "/run-command/download/0\n" in status.message
    record = server.run_commands[-1]
    assert record.exit_code == 7  # Azure does not report it: the operation still succeeds
    assert record.parameters == {"GREETING_NAME": "Ada Lovelace"}
    # The VM's disk persists between commands; each command gets a new download folder.
    second = _run(client, "vm1", 'cat "$HOME/state.txt"', "pwd").value[0].message
    assert "[stdout]\nkept\n" in second and "/run-command/download/1\n" in second
    assert server.operations[("vm1", "runCommand")] == 2


def test_run_command_output_is_the_tail(client: ComputeManagementClient) -> None:
    message = _run(client, "vm1", "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done").value[0].message
    out = message.split("[stdout]\n", 1)[1].split("\n[stderr]\n", 1)[0]
    assert len(out.encode()) == 4096 and out.endswith("line-1999\n")


def test_run_command_needs_a_running_vm(server: ArmComputeServer, client: ComputeManagementClient) -> None:
    with pytest.raises(ResourceExistsError) as caught:
        _run(client, "vm-off", "echo never")
    assert caught.value.status_code == 409
    assert caught.value.error.code == "OperationNotAllowed"
    assert "requires the VM to be running" in caught.value.error.message
    assert server.run_commands == []
    # A VM that is starting is "set to run": the command waits for it, then runs.
    server.operation_seconds = 0.3
    client.virtual_machines.begin_start(RG, "vm-off")
    assert "[stdout]\nup\n" in _run(client, "vm-off", "echo up").value[0].message


def test_one_run_command_at_a_time(server: ArmComputeServer, client: ComputeManagementClient) -> None:
    command = cm.RunCommandInput(command_id="RunShellScript", script=["sleep 0.5", "echo done"])
    first = client.virtual_machines.begin_run_command(RG, "vm1", command)
    with pytest.raises(ResourceExistsError) as caught:
        client.virtual_machines.begin_run_command(RG, "vm1", command)
    assert caught.value.error.code == "Conflict"
    assert "done" in first.result().value[0].message
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machines.begin_run_command(
            RG, "vm1", cm.RunCommandInput(command_id="RunPowerShellScript", script=["Write-Host hi"])
        )
    assert caught.value.status_code == 400


def test_deallocate_preempts_a_running_script(server: ArmComputeServer, client: ComputeManagementClient) -> None:
    command = cm.RunCommandInput(command_id="RunShellScript", script=["echo $$", "sleep 60"])
    running = client.virtual_machines.begin_run_command(RG, "vm1", command)
    folder = server.vm_dir(RG, "vm1") / "run-command" / "download" / "0"
    deadline = time.monotonic() + 10
    while not (folder / "stdout").exists() or not (folder / "stdout").read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pid = int((folder / "stdout").read_text())
    client.virtual_machines.begin_deallocate(RG, "vm1").result()
    with pytest.raises(HttpResponseError):
        running.result()
    assert running.status() == "Canceled"
    # Killed; on a loaded machine it may take a moment to be reaped (a zombie still answers kill(pid, 0)).
    deadline = time.monotonic() + 10
    with pytest.raises(ProcessLookupError):
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
    assert _power(client, "vm1") == "PowerState/deallocated"


# -- scale sets ----------------------------------------------------------------------------------


def test_scale_set_capacity_through_pollers(server: ArmComputeServer, client: ComputeManagementClient) -> None:
    ss = client.virtual_machine_scale_sets.get(RG, "pool-ss")
    assert (ss.sku.capacity, ss.provisioning_state) == (2, "Succeeded")

    server.operation_seconds = 0.3
    poller = client.virtual_machine_scale_sets.begin_update(
        RG, "pool-ss", cm.VirtualMachineScaleSetUpdate(sku=cm.Sku(capacity=5))
    )
    assert client.virtual_machine_scale_sets.get(RG, "pool-ss").provisioning_state == "Updating"
    updated = poller.result()
    assert (updated.sku.capacity, updated.provisioning_state) == (5, "Succeeded")
    summary = client.virtual_machine_scale_sets.get_instance_view(RG, "pool-ss").virtual_machine.statuses_summary
    assert [(s.code, s.count) for s in summary] == [("PowerState/running", 5)]

    # PUT with the whole model, as begin_create_or_update sends it.
    model = client.virtual_machine_scale_sets.get(RG, "pool-ss")
    model.sku.capacity = 1
    assert client.virtual_machine_scale_sets.begin_create_or_update(RG, "pool-ss", model).result().sku.capacity == 1
    assert server.operations[("pool-ss", "update")] == 2

    created = client.virtual_machine_scale_sets.begin_create_or_update(
        RG, "new-ss", cm.VirtualMachineScaleSet(location="westeurope", sku=cm.Sku(name="Standard_D2s_v3", capacity=3))
    ).result()
    assert created.sku.capacity == 3


def test_scale_set_start_and_deallocate(server: ArmComputeServer, client: ComputeManagementClient) -> None:
    sets = client.virtual_machine_scale_sets
    sets.begin_deallocate(RG, "pool-ss").result()
    summary = sets.get_instance_view(RG, "pool-ss").virtual_machine.statuses_summary
    assert [(s.code, s.count) for s in summary] == [("PowerState/deallocated", 2)]
    sets.begin_start(RG, "pool-ss", cm.VirtualMachineScaleSetVMInstanceIDs(instance_ids=["1"])).result()
    summary = sets.get_instance_view(RG, "pool-ss").virtual_machine.statuses_summary
    assert sorted((s.code, s.count) for s in summary) == [("PowerState/deallocated", 1), ("PowerState/running", 1)]
    with pytest.raises(HttpResponseError) as caught:
        sets.begin_start(RG, "pool-ss", cm.VirtualMachineScaleSetVMInstanceIDs(instance_ids=["9"]))
    assert caught.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        sets.begin_start(RG, "missing-ss")
    assert server.operations[("pool-ss", "deallocate")] == 1
