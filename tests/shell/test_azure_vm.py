"""The Azure VM core client, hook and trigger, driven against the local ARM Microsoft.Compute server.

Real azure-mgmt-compute clients (sync and aio) talk to tests/support/arm_compute_server.py over loopback
http; Run Command really runs the wrapper and the script in the VM's folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.arm_compute_server import ArmComputeServer, running_arm_compute_server

from airflow_provider_amlpipe.compute.azure_vm import (
    AzureComputeClient,
    AzureComputeError,
    ComputeNotFoundError,
)
from airflow_provider_amlpipe.compute.azure_vm_lro import LroState
from airflow_provider_amlpipe.compute.azure_vm_script import RunCommandOperation, parse_report
from airflow_provider_amlpipe.compute.azure_vm_settings import AzureVmSettings, parse_azure_vm_connection
from airflow_provider_amlpipe.errors import ConfigurationError

TOKEN = secrets.token_urlsafe(16)
RG = "rg-compute"


@pytest.fixture
def server() -> Iterator[ArmComputeServer]:
    with running_arm_compute_server(token=TOKEN) as state:
        state.operation_seconds = 0.2
        state.add_vm(RG, "vm1")
        state.add_vm(RG, "vm-off", power="deallocated")
        state.add_scale_set(RG, "pool-ss", capacity=2)
        yield state


def conn_extra(server: ArmComputeServer, **extra: Any) -> dict[str, Any]:
    return {
        "subscription_id": server.subscription_id,
        "resource_group": RG,
        "static_token": TOKEN,
        "allow_insecure_loopback": True,
        **extra,
    }


def settings_for(server: ArmComputeServer, **extra: Any) -> AzureVmSettings:
    return parse_azure_vm_connection(
        "vm_test", "amlpipe_azure_vm", server.endpoint, None, None, conn_extra(server, **extra)
    )


def make_client(server: ArmComputeServer, **options: Any) -> AzureComputeClient:
    options = {
        "polling_interval": 0.05,
        "run_command_wait": 0.3,
        "busy_timeout": 20.0,
        "retry_backoff_factor": 0.01,
        **options,
    }
    return AzureComputeClient(settings_for(server), **options)


@pytest.fixture
def client(server: ArmComputeServer) -> Iterator[AzureComputeClient]:
    with make_client(server) as c:
        yield c


def _leftovers(server: ArmComputeServer) -> list[str]:
    """Command lines of processes still running from the server's VM folders (detached runners, watchdogs)."""
    found = []
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                with open(f"/proc/{proc}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(server.root) in cmdline:
                found.append(cmdline)
    return found


def _processes_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- connection settings (nothing is sent) -------------------------------------------------------------


def test_settings_service_principal_default_credential_and_secrets_not_in_repr() -> None:
    sp = parse_azure_vm_connection(
        "c",
        "amlpipe_azure_vm",
        None,
        None,
        "s3cret-value",
        {"subscription_id": "sub", "tenant_id": "t", "client_id": "x"},
    )
    assert (sp.credential_kind, sp.tenant_id, sp.client_id, sp.client_secret) == (
        "service_principal",
        "t",
        "x",
        "s3cret-value",
    )
    assert sp.base_url == "https://management.azure.com"
    assert sp.credential_scopes == ("https://management.azure.com/.default",)
    assert "s3cret" not in repr(sp)
    via_login = parse_azure_vm_connection(
        "c", "amlpipe_azure_vm", None, "login-id", "pw", {"subscription_id": "sub", "tenant_id": "t"}
    )
    assert via_login.client_id == "login-id"
    default = parse_azure_vm_connection(
        "c", "amlpipe_azure_vm", None, None, None, {"subscription_id": "s", "credential": "default"}
    )
    assert default.credential_kind == "default"
    identity = parse_azure_vm_connection(
        "c", "amlpipe_azure_vm", None, None, None, {"subscription_id": "s", "managed_identity_client_id": "mi"}
    )
    assert (identity.credential_kind, identity.managed_identity_client_id) == ("default", "mi")
    gov = parse_azure_vm_connection(
        "c",
        "amlpipe_azure_vm",
        "https://management.usgovcloudapi.net/",
        None,
        None,
        {"subscription_id": "s", "credential": "default", "staging_datastore": "blob", "staging_prefix": "/x/y"},
    )
    assert gov.credential_scopes == ("https://management.usgovcloudapi.net/.default",)
    assert (gov.staging_datastore, gov.staging_prefix) == ("blob", "x/y/")


@pytest.mark.parametrize(
    ("host", "login", "password", "extra", "field", "fix"),
    [
        (None, None, None, {"subscription_id": "s"}, "credential", "extra.credential to 'default'"),
        (None, None, "pw-Zq9", {"subscription_id": "s"}, "extra.tenant_id", "credential to 'default'"),
        (None, None, None, {"subscription_id": "s", "tenant_id": "t", "client_id": "c"}, "Password", "set them"),
        (None, None, None, {"credential": "default"}, "extra.subscription_id", "set extra.subscription_id"),
        (None, None, None, {"subscription_id": "s", "credential": "magic"}, "extra.credential", "'default'"),
        ("http://example.com", None, None, {"subscription_id": "s", "credential": "default"}, "Host", "use https"),
        (
            "http://127.0.0.1:9",
            None,
            None,
            {"subscription_id": "s", "credential": "default"},
            "Host",
            "allow_insecure_loopback",
        ),
        ("ftp://x", None, None, {"subscription_id": "s", "credential": "default"}, "Host", "management.azure.com"),
    ],
)
def test_bad_connections_name_the_field_and_the_fix(
    host: str | None, login: str | None, password: str | None, extra: dict[str, Any], field: str, fix: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_azure_vm_connection("vm_conn", "amlpipe_azure_vm", host, login, password, extra)
    assert "vm_conn" in caught.value.field and field in caught.value.field
    assert fix in caught.value.fix
    assert "pw-Zq9" not in str(caught.value)


def test_wrong_connection_type_and_missing_resource_group() -> None:
    with pytest.raises(ConfigurationError, match="amlpipe_azure_vm"):
        parse_azure_vm_connection(
            "c", "amlpipe_adla", None, None, None, {"subscription_id": "s", "credential": "default"}
        )
    settings = parse_azure_vm_connection(
        "c", "amlpipe_azure_vm", None, None, None, {"subscription_id": "s", "credential": "default"}
    )
    with pytest.raises(ConfigurationError) as caught:
        settings.resource_group_for(None)
    assert caught.value.field == "resource_group" and "extra.resource_group" in caught.value.fix
    assert settings.resource_group_for("rg") == "rg"


# -- look-ups and missing resources --------------------------------------------------------------------


def test_get_vm_and_scale_set(client: AzureComputeClient) -> None:
    vm = client.get_vm("vm1")
    assert (vm.name, vm.resource_group, vm.power_state, vm.vm_size) == ("vm1", RG, "running", "Standard_D2s_v3")
    assert client.get_vm("vm-off").power_state == "deallocated"
    ss = client.get_scale_set("pool-ss")
    assert (ss.capacity, ss.sku, ss.power_states) == (2, "Standard_D2s_v3", {"running": 2})


def test_missing_vm_scale_set_group_and_subscription_are_named(
    server: ArmComputeServer, client: AzureComputeClient
) -> None:
    with pytest.raises(ComputeNotFoundError) as caught:
        client.get_vm("nope")
    assert caught.value.field == "vm_name"
    assert "VM 'nope' (resource group 'rg-compute') was not found" in str(caught.value)
    with pytest.raises(ComputeNotFoundError) as caught:
        client.begin_start(client.target(scale_set_name="no-ss"))
    assert caught.value.field == "scale_set_name" and "scale set 'no-ss'" in str(caught.value)
    with pytest.raises(ComputeNotFoundError) as caught:
        client.begin_deallocate(client.target(vm_name="vm1", resource_group="other-rg"))
    assert caught.value.field == "resource_group" and "'other-rg'" in str(caught.value)
    with pytest.raises(ComputeNotFoundError) as caught:
        client.begin_scale(client.target(scale_set_name="gone"), 3)
    assert caught.value.field == "scale_set_name"
    # Nothing was asked of ARM for a missing target: no power operation, no update.
    assert not any(r.method in ("POST", "PATCH", "PUT") for r in server.requests)
    other = parse_azure_vm_connection(
        "vm_test", "amlpipe_azure_vm", server.endpoint, None, None, conn_extra(server, subscription_id="11111111-2222")
    )
    with AzureComputeClient(other) as wrong, pytest.raises(ComputeNotFoundError) as caught:
        wrong.get_vm("vm1")
    assert "extra.subscription_id" in caught.value.field


def test_target_needs_exactly_one_name(client: AzureComputeClient) -> None:
    with pytest.raises(ConfigurationError, match="neither"):
        client.target()
    with pytest.raises(ConfigurationError, match="both"):
        client.target(vm_name="a", scale_set_name="b")
    with pytest.raises(ConfigurationError, match="a VM has no capacity"):
        client.begin_scale(client.target(vm_name="vm1"), 2)
    with pytest.raises(ConfigurationError, match="capacity"):
        client.begin_scale(client.target(scale_set_name="pool-ss"), -1)


def test_refused_credentials_are_a_clear_error_without_the_token(server: ArmComputeServer) -> None:
    settings = parse_azure_vm_connection(
        "vm_test", "amlpipe_azure_vm", server.endpoint, None, None, conn_extra(server, static_token="wrong-token-x")
    )
    with AzureComputeClient(settings, retry_total=0) as bad, pytest.raises(AzureComputeError) as caught:
        bad.get_vm("vm1")
    assert "refused the credentials of connection 'vm_test'" in str(caught.value)
    assert "wrong-token-x" not in str(caught.value) and TOKEN not in str(caught.value)


# -- power operations and scaling as JSON states ---------------------------------------------------------


def test_power_operations_are_json_states_another_client_can_follow(
    server: ArmComputeServer, client: AzureComputeClient
) -> None:
    server.operation_seconds = 0.4
    state = client.begin_deallocate(client.target(vm_name="vm1"))
    assert (state.action, state.status, state.name, state.resource_group) == ("deallocate", "InProgress", "vm1", RG)
    wire = json.dumps(state.to_dict())
    assert TOKEN not in wire
    with make_client(server) as other:  # e.g. a trigger or a retry in another process
        resumed = other.wait(LroState.from_dict(json.loads(wire)), timeout=10)
    assert resumed.succeeded and resumed.ended_at is not None
    assert server.power_state(RG, "vm1") == "deallocated"

    done = client.wait(client.begin_start(client.target(vm_name="vm1")), timeout=10)
    assert done.succeeded and server.power_state(RG, "vm1") == "running"
    lines: list[str] = []
    client.wait(client.begin_power_off(client.target(vm_name="vm1"), skip_shutdown=True), timeout=10, sink=lines.append)
    assert server.power_state(RG, "vm1") == "stopped"
    assert lines[-1] == "power_off of VM 'vm1' (resource group 'rg-compute'): Succeeded"
    assert server.operations[("vm1", "deallocate")] == 1 and server.operations[("vm1", "powerOff")] == 1


def test_scale_set_capacity_start_and_deallocate(server: ArmComputeServer, client: AzureComputeClient) -> None:
    target = client.target(scale_set_name="pool-ss")
    state = client.begin_scale(target, 4)
    assert state.details == {"capacity": 4, "previous_capacity": 2}
    assert client.wait(state, timeout=10).succeeded
    assert client.get_scale_set("pool-ss").capacity == 4
    patch = next(r for r in server.requests if r.method == "PATCH")
    assert patch.body["sku"] == {"name": "Standard_D2s_v3", "capacity": 4}

    client.wait(client.begin_deallocate(target, instance_ids=["1", "3"]), timeout=10)
    assert client.get_scale_set("pool-ss").power_states == {"deallocated": 2, "running": 2}
    client.wait(client.begin_start(target), timeout=10)
    assert client.get_scale_set("pool-ss").power_states == {"running": 4}
    client.wait(client.begin_scale(target, 0), timeout=10)
    assert client.get_scale_set("pool-ss").capacity == 0


def test_transient_errors_while_polling_are_retried(server: ArmComputeServer, client: AzureComputeClient) -> None:
    state = client.begin_deallocate(client.target(vm_name="vm1"))
    server.inject = [503, 500, 502]
    assert client.wait(state, timeout=10).succeeded


def test_a_tampered_operation_url_is_refused_before_the_token_is_sent(client: AzureComputeClient) -> None:
    state = client.begin_start(client.target(vm_name="vm-off"))
    forged = LroState.from_dict({**state.to_dict(), "status_url": "https://evil.example.com/op?x=1"})
    with pytest.raises(ValueError, match="not on the ARM endpoint"):
        client.poll(forged)


def test_the_async_client_follows_a_state_the_sync_client_started(
    server: ArmComputeServer, client: AzureComputeClient
) -> None:
    from airflow_provider_amlpipe.compute.azure_vm_aio import AsyncAzureComputeClient

    server.operation_seconds = 0.3
    state = client.begin_start(client.target(vm_name="vm-off"))

    async def follow() -> LroState:
        async with AsyncAzureComputeClient(settings_for(server)) as aclient:
            followed = LroState.from_dict(state.to_dict())
            while not followed.done:
                await aclient.poll(followed)
                await asyncio.sleep(0.05)
            return followed

    assert asyncio.run(follow()).succeeded
    assert server.power_state(RG, "vm-off") == "running"


# -- Run Command -------------------------------------------------------------------------------------


def test_run_command_exit_code_streams_and_environment(server: ArmComputeServer, client: AzureComputeClient) -> None:
    script = 'echo "hello $WHO"; echo "in $(pwd)"; echo warn >&2; exit 3\n'
    op = client.begin_run_command(
        "vm1", script, run_id="run-1", env={"WHO": "Ada", "SAS_URL": "https://x?sig=abc"}, timeout_seconds=600
    )
    client.wait(op, timeout=20)
    time.sleep(0.2)
    assert _leftovers(server) == []  # the runner and its timeout watchdog ended with the script
    out = client.run_command_output(op)
    assert (out.state, out.exit_code) == ("failed", 3)
    assert out.stdout.splitlines()[0] == "hello Ada"
    assert out.stdout.splitlines()[1].endswith("/.amlpipe/runs/run-1/work")
    assert out.stderr == "warn\n"
    assert server.run_commands[0].parameters == {"WHO": "Ada", "SAS_URL": "https://x?sig=abc"}
    # The environment is never in the operation's JSON (it may hold secrets), nor on the VM's disk.
    assert "sig=abc" not in json.dumps(op.to_dict())
    run_dir = server.vm_dir(RG, "vm1") / "root" / ".amlpipe" / "runs" / "run-1"
    assert not any("sig=abc" in p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file())

    ok = client.wait(client.begin_run_command("vm1", "echo fine", run_id="run-2"), timeout=20)
    assert client.run_command_output(ok).succeeded and client.run_command_output(ok).exit_code == 0


def test_resubmitting_a_run_id_replays_instead_of_running_twice(
    server: ArmComputeServer, client: AzureComputeClient
) -> None:
    script = 'echo ran >> "$HOME/count"; echo "run $(wc -l < "$HOME/count")"\n'
    first = client.run_command_output(client.wait(client.begin_run_command("vm1", script, run_id="same"), timeout=20))
    again = client.run_command_output(client.wait(client.begin_run_command("vm1", script, run_id="same"), timeout=20))
    assert first == again and first.stdout == "run 1\n"
    assert (server.vm_dir(RG, "vm1") / "root" / "count").read_text() == "ran\n"
    other = client.wait(client.begin_run_command("vm1", script, run_id="other"), timeout=20)
    assert client.run_command_output(other).stdout == "run 2\n"


def test_a_retry_reattaches_to_a_running_script(server: ArmComputeServer, client: AzureComputeClient) -> None:
    script = 'echo ran >> "$HOME/count"; sleep 1.5; echo finished\n'
    first = client.begin_run_command("vm1", script, run_id="slow")
    # A retry in another process: the VM is busy with our first command, so it waits, then attaches.
    with make_client(server) as retry:
        second = retry.begin_run_command("vm1", script, run_id="slow")
        retry.wait(second, timeout=20)
    client.wait(first, timeout=20)
    assert client.run_command_output(first) == retry.run_command_output(second)
    assert client.run_command_output(first).stdout == "finished\n"
    assert (server.vm_dir(RG, "vm1") / "root" / "count").read_text() == "ran\n"
    assert second.commands >= 1 and first.commands >= 2  # attach commands followed the run


def test_a_running_operation_round_trips_through_json(server: ArmComputeServer, client: AzureComputeClient) -> None:
    op = client.begin_run_command("vm1", "sleep 1; echo late", run_id="json-rt")
    wire = json.dumps(op.to_dict())
    with make_client(server) as other:
        resumed = other.wait(RunCommandOperation.from_dict(json.loads(wire)), timeout=20)
        assert other.run_command_output(resumed).stdout == "late\n"
    with pytest.raises(AzureComputeError, match="has not ended"):
        client.run_command_output(RunCommandOperation.from_dict(json.loads(wire)))


def test_cancel_stops_the_whole_process_tree(server: ArmComputeServer, client: AzureComputeClient) -> None:
    op = client.begin_run_command("vm1", "sleep 60 & echo $!; wait\n", run_id="to-cancel")
    time.sleep(0.5)
    client.poll(op)
    assert op.state == "running"
    client.cancel_run_command(op, timeout=20)
    out = client.run_command_output(op)
    assert out.state == "cancelled"
    child = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while _processes_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_alive(child)
    # Cancelling an ended run keeps its outcome; resubmitting the id does not run it again.
    assert client.cancel_run_command(op).state == "cancelled"
    replay = client.wait(client.begin_run_command("vm1", "echo again", run_id="to-cancel"), timeout=20)
    assert replay.state == "cancelled"


def test_cancel_and_delete_give_up_naming_the_run_while_the_vm_stays_busy(
    server: ArmComputeServer, client: AzureComputeClient
) -> None:
    # Azure runs one command at a time: another client's start command waits on the VM for its script.
    with make_client(server, run_command_wait=30.0) as holder:
        holder.begin_run_command("vm1", "sleep 30", run_id="holds-the-vm")
        with pytest.raises(AzureComputeError, match="deleting run 'other' on VM 'vm1': the VM stayed busy"):
            client.delete_run("vm1", "other", timeout=0.5)
        lone = RunCommandOperation("vm1", RG, "lone")  # no command of its own in flight
        with pytest.raises(AzureComputeError, match="cancel of run 'lone' on VM 'vm1': the VM stayed busy"):
            client.cancel_run_command(lone, timeout=0.5)
        assert lone.mode == "cancel" and lone.lro is None and not lone.done


def test_a_script_over_its_timeout_is_stopped(client: AzureComputeClient) -> None:
    op = client.wait(
        client.begin_run_command("vm1", "echo start; sleep 30", run_id="slowpoke", timeout_seconds=1), timeout=30
    )
    out = client.run_command_output(op)
    assert out.state == "timed_out" and out.stdout == "start\n" and "timeout" in (out.error or "")


def test_a_vm_that_is_not_running_is_refused_with_the_fix(server: ArmComputeServer, client: AzureComputeClient) -> None:
    with pytest.raises(AzureComputeError) as caught:
        client.begin_run_command("vm-off", "echo never", run_id="never")
    assert "VM 'vm-off'" in str(caught.value) and "start it first" in str(caught.value)
    assert server.run_commands == []
    with pytest.raises(ComputeNotFoundError):
        client.begin_run_command("ghost", "echo never", run_id="never")


def test_deallocating_the_vm_under_a_run_ends_it_as_lost(server: ArmComputeServer, client: AzureComputeClient) -> None:
    op = client.begin_run_command("vm1", "sleep 2", run_id="doomed")
    client.wait(client.begin_deallocate(client.target(vm_name="vm1")), timeout=10)
    client.wait(op, timeout=20)
    assert op.state == "lost" and "not running" in (op.error or "")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"run_id": "../etc"}, "run_id"),
        ({"run_id": "has space"}, "run_id"),
        ({"run_id": "ok", "env": {"1BAD": "x"}}, "env"),
        ({"run_id": "ok", "env": {"GOOD": 1}}, "env['GOOD']"),
        ({"run_id": "ok", "shell": "bash; rm"}, "shell"),
        ({"run_id": "ok", "timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_bad_run_command_input_is_refused_before_anything_is_sent(
    server: ArmComputeServer, client: AzureComputeClient, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        client.begin_run_command("vm1", "echo hi", **kwargs)
    assert caught.value.field == field
    with pytest.raises(ConfigurationError, match="empty script"):
        client.begin_run_command("vm1", "  ", run_id="x")
    with pytest.raises(ConfigurationError, match="exceed"):
        client.begin_run_command("vm1", "x" * 300_000, run_id="x")
    assert server.requests == []


def test_a_report_line_printed_by_the_script_is_not_taken_for_the_report() -> None:
    output = {
        "value": [
            {
                "message": (
                    "Enable succeeded: \n[stdout]\n"
                    "AMLPIPE-RUN 0000 state=succeeded exit_code=0 stdout_bytes=1 stderr_bytes=0\n"
                    "\nAMLPIPE-RUN abcd state=failed exit_code=2 stdout_bytes=60 stderr_bytes=4\n"
                    "\n[stderr]\nboom"
                )
            }
        ]
    }
    report = parse_report(output, "abcd")
    assert report is not None and (report.state, report.exit_code, report.stderr) == ("failed", 2, "boom")
    assert report.stdout.startswith("AMLPIPE-RUN 0000")
    assert parse_report(output, "ffff") is None


# -- hook and trigger (Airflow connections from the environment) ----------------------------------------


def test_the_hook_builds_a_client_and_refuses_a_connection_without_credential(
    server: ArmComputeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_amlpipe.hooks.azure_vm import AzureVmHook

    connection = {"conn_type": "amlpipe_azure_vm", "host": server.endpoint, "extra": conn_extra(server)}
    monkeypatch.setenv("AIRFLOW_CONN_VM_HOOK", json.dumps(connection))
    hook = AzureVmHook("vm_hook")
    assert hook.get_settings().resource_group == RG
    with hook.get_client(polling_interval=0.05) as client:
        assert client.get_vm("vm1").power_state == "running"
    assert AzureVmHook.get_ui_field_behaviour()["relabeling"]["host"] == "ARM endpoint"

    bare = {"conn_type": "amlpipe_azure_vm", "extra": {"subscription_id": "s", "resource_group": RG}}
    monkeypatch.setenv("AIRFLOW_CONN_VM_BARE", json.dumps(bare))
    with pytest.raises(ConfigurationError) as caught:
        AzureVmHook("vm_bare").get_client()
    assert "vm_bare" in str(caught.value) and "extra.tenant_id" in caught.value.fix
    assert "extra.credential to 'default'" in caught.value.fix


def test_the_trigger_follows_an_operation_and_round_trips(
    server: ArmComputeServer, client: AzureComputeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_amlpipe.triggers.azure_vm import AzureVmOperationTrigger

    connection = {"conn_type": "amlpipe_azure_vm", "host": server.endpoint, "extra": conn_extra(server)}
    monkeypatch.setenv("AIRFLOW_CONN_VM_TRIGGER", json.dumps(connection))
    server.operation_seconds = 0.3
    state = client.begin_deallocate(client.target(vm_name="vm1"))
    trigger = AzureVmOperationTrigger("vm_trigger", state.to_dict(), poll_interval=0.05)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_amlpipe.triggers.azure_vm.AzureVmOperationTrigger"
    rebuilt = AzureVmOperationTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert TOKEN not in json.dumps(kwargs)

    async def first_event(t: AzureVmOperationTrigger) -> dict[str, Any]:
        async def take() -> dict[str, Any]:
            async for event in t.run():
                return dict(event.payload)
            raise AssertionError("no event")

        return await asyncio.wait_for(take(), 20)

    payload = asyncio.run(first_event(rebuilt))
    assert payload["status"] == "done" and payload["operation"]["status"] == "Succeeded"
    assert server.power_state(RG, "vm1") == "deallocated"
    assert TOKEN not in json.dumps(payload)

    bad = {"conn_type": "amlpipe_azure_vm", "extra": {"subscription_id": "s"}}
    monkeypatch.setenv("AIRFLOW_CONN_VM_TRIGGER_BAD", json.dumps(bad))
    payload = asyncio.run(first_event(AzureVmOperationTrigger("vm_trigger_bad", state.to_dict(), 0.05)))
    assert payload["status"] == "error" and "credential" in payload["message"]


def test_delete_run_forgets_an_ended_run_but_not_a_running_one(
    server: ArmComputeServer, client: AzureComputeClient
) -> None:
    script = 'echo ran >> "$HOME/count"\n'
    client.wait(client.begin_run_command("vm1", script, run_id="forget-me"), timeout=20)
    client.delete_run("vm1", "forget-me")
    assert not (server.vm_dir(RG, "vm1") / "root" / ".amlpipe" / "runs" / "forget-me").exists()
    client.wait(client.begin_run_command("vm1", script, run_id="forget-me"), timeout=20)
    assert (server.vm_dir(RG, "vm1") / "root" / "count").read_text() == "ran\nran\n"  # a new run under the id

    running = client.begin_run_command("vm1", "sleep 3", run_id="busy-run")
    with pytest.raises(AzureComputeError, match="still running"):
        client.delete_run("vm1", "busy-run")
    client.cancel_run_command(running, timeout=20)
    client.delete_run("vm1", "busy-run")
