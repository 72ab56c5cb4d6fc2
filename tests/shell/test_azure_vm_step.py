"""PythonScriptStepOperator on an Azure VM: DAGs against the local ARM server (Run Command really
runs the sh wrapper and the Python bootstrap) with inputs and outputs staged through Azurite,
deferred and inline; reuse, failures with the remote stderr, a missing VM, no secret in logs."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.arm_compute_server import ArmComputeServer, running_arm_compute_server
from support.azurite_server import ACCOUNT_KEY
from support.dagtools import logs_of, run_dag, write_dag
from support.stores import BlobContainer, leases_released, local_store
from support.worker_kill import kill_worker_then_retry

from airflow_provider_amlpipe.compute import azure_vm_bootstrap as bootstrap
from airflow_provider_amlpipe.compute.azure_vm_job import render_script
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.steps.python_script import _argument_parts

pytestmark = [pytest.mark.usefixtures("airflow_db")]

RG = "rg-steps"
TOKEN = "vm-step-token-" + uuid.uuid4().hex[:8]

PREP = """\
import sys
from pathlib import Path
Path(sys.argv[1], "rows.csv").write_text("id,name\\n1,ada\\n2,grace\\n")
"""
TRAIN = """\
import os
import sys
from pathlib import Path

import helper
from airflow_provider_amlpipe import runtime

rows_dir, out_dir, mode = Path(sys.argv[2]), Path(sys.argv[4]), sys.argv[5]
assert rows_dir.is_absolute() and out_dir.is_absolute(), sys.argv
assert rows_dir == runtime.input_path("rows") and out_dir == runtime.output_path("model")
assert not any(k.startswith("AMLPIPE_JOB_") for k in os.environ), "secrets leaked to the script"
assert not (Path(__file__).parent / "scratch.tmp").exists(), "an .amlignore'd file was shipped"
rows = (rows_dir / "rows.csv").read_text().splitlines()[1:]
with open(Path.home() / "train-executions", "a") as counter:  # outside the run's folder
    counter.write("ran\\n")
if mode == "slow":
    import time
    time.sleep(6)
print(f"training on {len(rows)} rows with factor {runtime.param('factor')}")
runtime.log_metric("rows", len(rows))
if mode == "fail":
    print("CUDA out of memory on the VM", file=sys.stderr)
    sys.exit(3)
(out_dir / "nested").mkdir()
(out_dir / "model.txt").write_text(f"{helper.NAME}:{len(rows) * runtime.param('factor')}\\n")
(out_dir / "nested" / "weights.bin").write_bytes(bytes(range(256)))
"""


@pytest.fixture
def server() -> Iterator[ArmComputeServer]:
    with running_arm_compute_server(token=TOKEN) as state:
        state.operation_seconds = 0.1
        state.add_vm(RG, "train-vm")
        yield state


@pytest.fixture
def staging(azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> BlobContainer:
    return BlobContainer(azurite_connection_string, "vm_staging", monkeypatch, "vmstep")


def vm_connection(monkeypatch: pytest.MonkeyPatch, server: ArmComputeServer, **extra: Any) -> None:
    connection = {
        "conn_type": "amlpipe_azure_vm",
        "host": server.endpoint,
        "extra": {
            "subscription_id": server.subscription_id,
            "resource_group": RG,
            "static_token": TOKEN,
            "allow_insecure_loopback": True,
            **extra,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_VM_TEST", json.dumps(connection))


def vm_dag(
    dag_id: str, tmp_path: Path, *, datastore: str, deferrable: bool = True, mode: str = "ok", vm: str = "train-vm"
) -> None:
    """A local Python step writing rows, then a Python step on the VM training on them."""
    src = tmp_path / "train_src"
    src.mkdir(exist_ok=True)
    (src / "train.py").write_text(TRAIN)
    (src / "helper.py").write_text('NAME = "linear"\n')
    (src / "scratch.tmp").write_text("not code\n")
    (src / ".amlignore").write_text("*.tmp\n")
    prep = tmp_path / "prep_src"
    prep.mkdir(exist_ok=True)
    (prep / "prep.py").write_text(PREP)
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            prep = PythonScriptStepOperator(
                task_id="prep", source_directory={str(prep)!r}, script_name="prep.py",
                arguments=["{{outputs.rows}}"], outputs=[Output("rows")], datastore={datastore!r},
            )
            PythonScriptStepOperator(
                task_id="train", source_directory={str(src)!r}, script_name="train.py",
                arguments=["--rows", "{{inputs.rows}}", "--out", "{{outputs.model}}", {mode!r}],
                inputs={{"rows": prep.output}}, outputs=[Output("model")], step_params={{"factor": 3}},
                compute="vm_test", vm_name={vm!r}, deferrable={deferrable}, poll_interval=0.2,
                datastore={datastore!r},
            )
        """,
    )


def runs_on_vm(server: ArmComputeServer) -> list[str]:
    runs = server.vm_dir(RG, "train-vm") / "root" / ".amlpipe" / "runs"
    return sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []


def no_secret_in(text: str) -> bool:
    return ACCOUNT_KEY not in text and "sig=" not in text and TOKEN not in text


# -- in DAGs ----------------------------------------------------------------------------------------


@pytest.mark.azurite
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "inline"])
def test_a_local_step_then_a_vm_step_runs_commits_and_reruns_reused(
    server: ArmComputeServer,
    staging: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    dag_id = f"t_vm_step_{'deferred' if deferrable else 'inline'}"
    vm_connection(monkeypatch, server, staging_datastore=staging.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    vm_dag(dag_id, tmp_path, datastore=datastore, deferrable=deferrable)
    first = run_dag(dag_id)
    logs = logs_of(capfd)
    assert first.state == "success", (first.task_states, logs[-4000:])
    assert first.ran() == {"prep", "train"}
    ref = first.xcom("train", "model")
    assert store.read_bytes(f"{ref['path']}/model.txt") == b"linear:6\n"  # code, input and param reached the VM
    assert store.read_bytes(f"{ref['path']}/nested/weights.bin") == bytes(range(256))
    assert sorted(k[len(ref["path"]) + 1 :] for k in store.list(ref["path"])) == ["model.txt", "nested/weights.bin"]
    # The VM's output reached the task log, once.
    assert logs.count("[stdout] training on 2 rows with factor 3") == 1
    assert '"name": "rows", "value": 2' in logs  # metrics are shown
    # One run was started; the script text carried no secret, the parameters did.
    starts = [r for r in server.run_commands if r.parameters]
    assert len(starts) == 1
    assert set(starts[0].parameters) == {bootstrap.MANIFEST_ENV, bootstrap.UPLOAD_ENV, bootstrap.PARAMS_ENV}
    assert all(no_secret_in(r.script) for r in server.run_commands)
    assert no_secret_in(logs)
    # Cleaned up: the staging folder, the run's folder on the VM; the lease is free.
    assert staging.keys() == []
    assert runs_on_vm(server) == []
    assert leases_released(store)

    commands = len(server.run_commands)
    second = run_dag(dag_id)
    assert second.state == "success" and second.ran() == set()
    assert len(server.run_commands) == commands  # reused: nothing sent to the VM


@pytest.mark.azurite
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "inline"])
def test_a_failing_script_fails_the_step_with_its_stderr_tail(
    server: ArmComputeServer,
    staging: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    dag_id = f"t_vm_step_fail_{'deferred' if deferrable else 'inline'}"
    vm_connection(monkeypatch, server, staging_datastore=staging.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    vm_dag(dag_id, tmp_path, datastore=datastore, deferrable=deferrable, mode="fail")
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states == {"prep": "success", "train": "failed"}
    assert "StepFailedError" in logs and "exit code 3" in logs
    assert "CUDA out of memory on the VM" in logs  # the stderr tail
    assert no_secret_in(logs)
    assert staging.keys() == [] and runs_on_vm(server) == []
    assert leases_released(store)
    records = [json.loads(store.read_bytes(k)) for k in store.list("reuse/records") if k.endswith(".json")]
    assert all(r.get("producer", {}).get("task_id") != "train" for r in records)


@pytest.mark.azurite
def test_a_missing_vm_fails_before_anything_is_staged_or_sent(
    server: ArmComputeServer,
    staging: BlobContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dag_id = "t_vm_step_no_vm"
    vm_connection(monkeypatch, server, staging_datastore=staging.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    vm_dag(dag_id, tmp_path, datastore=datastore, vm="no-such-vm")
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["train"] == "failed"
    assert "vm_name: VM 'no-such-vm' (resource group 'rg-steps') was not found" in logs
    assert "input 'rows'" not in logs  # nothing staged, not even uploaded then deleted
    assert server.run_commands == []
    assert staging.keys() == []
    assert leases_released(store)


@pytest.mark.azurite
def test_a_local_datastore_without_staging_is_refused_before_any_run_command(
    server: ArmComputeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    dag_id = "t_vm_step_no_staging"
    vm_connection(monkeypatch, server)
    datastore, _store = local_store(dag_id, tmp_path, monkeypatch)
    vm_dag(dag_id, tmp_path, datastore=datastore)
    result = run_dag(dag_id)
    logs = logs_of(capfd)
    assert result.task_states["train"] == "failed"
    assert "compute (connection 'vm_test') extra.staging_datastore: not set" in logs
    assert server.run_commands == []


# -- refused where the DAG is defined -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "problem"),
    [
        ({"compute": "vm_test"}, "compute", "vm_name names no VM"),
        ({"compute": "vm_test", "vm_name": ""}, "vm_name", "expected a name"),
        (
            {"compute": "vm_test", "vm_name": "v", "environment": "requirements"},
            "environment.requirements",
            "not on a VM",
        ),
    ],
)
def test_bad_vm_arguments_are_refused_when_the_dag_is_parsed(
    tmp_path: Path, kwargs: dict[str, Any], field: str, problem: str
) -> None:
    from airflow_provider_amlpipe import PythonScriptStepOperator
    from airflow_provider_amlpipe.compute.environment import PythonEnvironment

    (tmp_path / "s.py").write_text("")
    (tmp_path / "req.txt").write_text("")
    if kwargs.get("environment") == "requirements":
        kwargs = {**kwargs, "environment": PythonEnvironment(requirements="req.txt")}
    with pytest.raises(ConfigurationError, match=problem) as caught:
        PythonScriptStepOperator(task_id="t", script_name="s.py", source_directory=str(tmp_path), **kwargs)
    assert caught.value.field == field


# -- the pieces -----------------------------------------------------------------------------------------


def test_arguments_become_text_and_paths_the_vm_makes_absolute(tmp_path: Path) -> None:
    paths = {"inputs.rows": "inputs/rows", "outputs.model": "outputs/model"}
    parts = [_argument_parts(a, paths) for a in ["--rows={inputs.rows}", "{outputs.model}", "", "5"]]
    assert parts == [["--rows=", {"path": "inputs/rows"}], [{"path": "outputs/model"}], [""], ["5"]]
    assert bootstrap.argv_of(parts, tmp_path) == [
        f"--rows={tmp_path}/inputs/rows",
        f"{tmp_path}/outputs/model",
        "",
        "5",
    ]


def test_the_run_command_script_is_posix_sh_and_holds_no_secret() -> None:

    script = render_script("python3")
    assert "sig=" not in script and "http" not in script
    assert subprocess.run(["sh", "-n", "-c", script], capture_output=True).returncode == 0
    assert bootstrap.blob_url("https://a.blob.core.windows.net/c?sv=1&sig=x", "p/o u/f.txt") == (
        "https://a.blob.core.windows.net/c/p/o%20u/f.txt?sv=1&sig=x"
    )
    assert bootstrap.public("https://a/c/k?sv=1&sig=x") == "https://a/c/k"


@pytest.mark.azurite
def test_the_job_state_holds_no_secret_and_killing_the_deferred_task_cancels_the_run(
    server: ArmComputeServer, staging: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import functools

    from airflow_provider_amlpipe.compute.azure_vm import AzureComputeClient
    from airflow_provider_amlpipe.compute.staging import staging_layout
    from airflow_provider_amlpipe.hooks import azure_vm as hook_module
    from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver
    from airflow_provider_amlpipe.steps.python_script import PythonScriptStep, VmTarget
    from airflow_provider_amlpipe.triggers.remote_job import RemoteJobTrigger

    # Each Run Command waits this long on the VM for the run (60 s by default): short for a test.
    quick = functools.partial(AzureComputeClient, run_command_wait=0.3, polling_interval=0.05)
    monkeypatch.setattr(hook_module, "AzureComputeClient", quick)
    vm_connection(monkeypatch, server, staging_datastore=staging.conn_id)
    src = tmp_path / "slow_src"
    src.mkdir()
    (src / "slow.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(120)\n")
    step = PythonScriptStep("slow.py", str(src), ["{outputs.out}"], {"token": "s3cret-param"}, vm=VmTarget("train-vm"))
    store = DatastoreResolver()(staging.conn_id)
    layout = staging_layout("amlpipe-staging/", "kill-1", {}, ["out"])
    spec = step.remote_spec(layout, store, "kill-1")  # type: ignore[arg-type]
    compute = hook_module.AzureVmHook("vm_test").get_remote_compute("train-vm")
    job = compute.backend.submit("kill-1", spec, lambda *_: None)
    run = server.vm_dir(RG, "train-vm") / "root" / ".amlpipe" / "runs" / "kill-1"
    deadline = time.monotonic() + 30
    while "started" not in ((run / "stdout").read_text() if (run / "stdout").exists() else ""):
        assert time.monotonic() < deadline, "the script did not start"
        compute.backend.status(job)
        time.sleep(0.1)
    state = json.dumps(job.to_dict())
    assert no_secret_in(state) and "s3cret-param" not in state  # what travels in the trigger
    compute.backend.close()
    trigger = RemoteJobTrigger("vm_test", compute.factory, job.to_dict(), 0.1)
    asyncio.run(trigger.on_kill())
    assert runs_on_vm(server) == []  # cancelled, then its folder deleted
    assert [r for r in server.run_commands if "s3cret-param" in r.script] == []


@pytest.mark.slow
@pytest.mark.azurite
def test_a_retry_of_a_worker_killed_while_deferred_reattaches_to_the_run(
    server: ArmComputeServer, staging: BlobContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag_id = "t_vm_step_retry"
    vm_connection(monkeypatch, server, staging_datastore=staging.conn_id)
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    env = {**os.environ}  # the connections set above
    vm_dag(dag_id, tmp_path, datastore=datastore, deferrable=True, mode="slow")
    retry = kill_worker_then_retry(
        dag_id, "train", env, tmp_path / "victim.log", lambda: any(r.parameters for r in server.run_commands)
    )
    output = retry.stdout
    assert retry.returncode == 0 and "Task failed" not in output, output[-4000:]
    executions = server.vm_dir(RG, "train-vm") / "root" / "train-executions"
    assert executions.read_text() == "ran\n"  # the retry reattached: the script ran once
    assert no_secret_in(output)
    assert staging.keys() == [] and runs_on_vm(server) == []
    assert leases_released(store)
