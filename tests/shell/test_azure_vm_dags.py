"""The Azure VM provisioning operators and the setup/teardown example DAG under ``dag.test()``,
against the local ARM Microsoft.Compute server (deferrable and in the worker)."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from support.arm_compute_server import ArmComputeServer, running_arm_compute_server
from support.dagtools import run_dag, write_dag
from support.paths import REPO
from support.session import DAGS_FOLDER

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.operators.azure_vm import (
    AzureVMDeallocateOperator,
    AzureVMPowerOffOperator,
    AzureVMScaleSetScaleOperator,
    AzureVMStartOperator,
)

pytestmark = pytest.mark.usefixtures("airflow_db")

TOKEN = secrets.token_urlsafe(16)
RG = "rg-dags"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmComputeServer]:
    with running_arm_compute_server(token=TOKEN) as state:
        state.operation_seconds = 0.3
        state.add_vm(RG, "amlpipe-vm", power="deallocated")
        state.add_vm(RG, "other-vm")
        state.add_scale_set(RG, "workers", capacity=1)
        connection = {
            "conn_type": "amlpipe_azure_vm",
            "host": state.endpoint,
            "extra": {
                "subscription_id": state.subscription_id,
                "resource_group": RG,
                "static_token": TOKEN,
                "allow_insecure_loopback": True,
            },
        }
        monkeypatch.setenv("AIRFLOW_CONN_AZURE_VM_DEFAULT", json.dumps(connection))
        monkeypatch.setenv("AMLPIPE_EXAMPLE_POLL_SECONDS", "0.1")
        yield state


@pytest.fixture
def example(server: ArmComputeServer) -> str:
    shutil.copy(REPO / "dags" / "azure_vm_setup_teardown.py", DAGS_FOLDER / "azure_vm_setup_teardown.py")
    return "azure_vm_setup_teardown"


# -- parse-time checks (no I/O) ---------------------------------------------------------------------------


def test_bad_arguments_fail_when_the_dag_is_parsed() -> None:
    with pytest.raises(ConfigurationError, match="neither given"):
        AzureVMStartOperator(task_id="t")
    with pytest.raises(ConfigurationError, match="both given"):
        AzureVMDeallocateOperator(task_id="t", vm_name="a", scale_set_name="b")
    with pytest.raises(ConfigurationError) as caught:
        AzureVMScaleSetScaleOperator(task_id="t", vm_name="a", capacity=2)
    assert caught.value.field == "vm_name"
    with pytest.raises(ConfigurationError) as caught:
        AzureVMScaleSetScaleOperator(task_id="t", scale_set_name="s", capacity=-1)
    assert caught.value.field == "capacity"
    with pytest.raises(ConfigurationError) as caught:
        AzureVMPowerOffOperator(task_id="t", vm_name="a", poll_interval=0.01)
    assert caught.value.field == "poll_interval"
    with pytest.raises(ConfigurationError) as caught:
        AzureVMStartOperator(task_id="t", vm_name="a", instance_ids=["0"])
    assert caught.value.field == "instance_ids"
    with pytest.raises(ConfigurationError) as caught:
        AzureVMStartOperator(task_id="t", vm_name="a", deferrable="yes")  # type: ignore[arg-type]
    assert caught.value.field == "deferrable"
    templated = AzureVMScaleSetScaleOperator(task_id="t", scale_set_name="s", capacity="{{ params.n }}")
    assert templated.capacity == "{{ params.n }}"


def test_deferrable_defaults_to_airflows_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert AzureVMStartOperator(task_id="t", vm_name="a").deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert AzureVMStartOperator(task_id="t", vm_name="a").deferrable is False
    assert AzureVMStartOperator(task_id="t", vm_name="a", deferrable=True).deferrable is True


# -- operators under dag.test() ------------------------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "in-worker"])
def test_operators_start_scale_power_off_and_deallocate(
    server: ArmComputeServer, deferrable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_amlpipe.triggers.azure_vm import AzureVmOperationTrigger

    followed: list[str] = []
    original = AzureVmOperationTrigger.run

    def counting_run(self: AzureVmOperationTrigger) -> Any:
        followed.append(self.operation["action"])
        return original(self)

    monkeypatch.setattr(AzureVmOperationTrigger, "run", counting_run)
    dag_id = f"vm_ops_{'deferred' if deferrable else 'worker'}"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe.operators.azure_vm import (
            AzureVMDeallocateOperator, AzureVMPowerOffOperator, AzureVMScaleSetScaleOperator, AzureVMStartOperator,
        )

        common = dict(azure_vm_conn_id="azure_vm_default", deferrable={deferrable}, poll_interval=0.1)
        with DAG(dag_id={dag_id!r}, schedule=None, catchup=False, params={{"n": 3}}):
            start = AzureVMStartOperator(task_id="start", vm_name="amlpipe-vm", **common)
            scale = AzureVMScaleSetScaleOperator(
                task_id="scale", scale_set_name="workers", capacity="{{{{ params.n }}}}", **common
            )
            stop_one = AzureVMDeallocateOperator(
                task_id="stop_one", scale_set_name="workers", instance_ids=["2"], **common
            )
            off = AzureVMPowerOffOperator(task_id="off", vm_name="other-vm", resource_group={RG!r}, **common)
            start >> scale >> stop_one >> off
        """,
    )
    result = run_dag(dag_id)
    assert result.state == "success", result.task_states
    assert server.power_state(RG, "amlpipe-vm") == "running"
    assert server.power_state(RG, "other-vm") == "stopped"
    assert server.scale_sets[(RG.lower(), "workers")].instances == ["running", "running", "deallocated"]
    assert result.xcom("scale", "return_value") == {
        "action": "scale",
        "resource_type": "virtualMachineScaleSets",
        "resource_group": RG,
        "name": "workers",
        "status": "Succeeded",
        "capacity": 3,
        "previous_capacity": 1,
    }
    assert result.xcom("start", "return_value")["status"] == "Succeeded"
    assert server.operations[("amlpipe-vm", "start")] == 1  # one request, however it was followed
    polls = [r for r in server.requests if "/operations/" in r.path]
    assert polls  # the operations were followed until they ended
    # Deferred: each operation was followed in the triggerer; else in the worker.
    assert followed == (["start", "scale", "deallocate", "power_off"] if deferrable else [])


def test_a_missing_vm_fails_the_task_before_anything_is_asked(server: ArmComputeServer) -> None:
    write_dag(
        "vm_missing",
        """
        from airflow.sdk import DAG
        from airflow_provider_amlpipe.operators.azure_vm import AzureVMStartOperator

        with DAG(dag_id="vm_missing", schedule=None, catchup=False):
            AzureVMStartOperator(task_id="start", vm_name="no-such-vm", azure_vm_conn_id="azure_vm_default",
                                 deferrable=True, poll_interval=0.1)
        """,
    )
    result = run_dag("vm_missing")
    assert result.state == "failed" and result.task_states["start"] == "failed"
    assert not any(r.method == "POST" for r in server.requests)


# -- the example DAG: setup / step / teardown ---------------------------------------------------------------


@pytest.mark.slow
def test_example_starts_runs_and_releases_the_vm(server: ArmComputeServer, example: str) -> None:
    result = run_dag(example)
    assert result.state == "success", result.task_states
    assert result.task_states == {"start_vm": "success", "run_on_vm": "success", "release_vm": "success"}
    assert server.power_state(RG, "amlpipe-vm") == "deallocated"
    assert server.operations[("amlpipe-vm", "start")] == 1
    assert server.operations[("amlpipe-vm", "deallocate")] == 1
    assert result.xcom("run_on_vm", "return_value")["exit_code"] == 0


@pytest.mark.slow
def test_example_teardown_releases_the_vm_when_the_step_fails(server: ArmComputeServer, example: str) -> None:
    result = run_dag(example, conf={"fail": True})
    assert result.state == "failed"
    assert result.task_states == {"start_vm": "success", "run_on_vm": "failed", "release_vm": "success"}
    assert server.power_state(RG, "amlpipe-vm") == "deallocated"
    ran = [r for r in server.run_commands if "FAIL" in r.parameters]
    assert len(ran) == 1 and ran[0].parameters["FAIL"] == "1"
