"""Azure VM compute as setup / teardown: start a VM, run a script on it, deallocate it whatever happens.

AML pipelines attached long-lived compute; in Airflow the compute's life is part of the DAG.
``AzureVMStartOperator`` is a *setup* task and ``AzureVMDeallocateOperator`` its *teardown*: the
teardown runs when the work is done **even if the work failed**, so a failed run never leaves a
VM billed, and the DAG run still fails. The VM and its resource group come from the
``azure_vm_default`` connection (type ``amlpipe_azure_vm``: ``extra.subscription_id``,
``extra.resource_group``, a service principal or ``extra.credential: "default"``); see
docs/azure-vm.md.

The work here runs a shell script on the VM through Run Command with
:class:`~airflow_provider_amlpipe.compute.azure_vm.AzureComputeClient`: the run id is derived from
the task instance, so an Airflow retry reattaches to the run instead of running the script twice.
Trigger with ``{"fail": true}`` to see the teardown release the VM after a failed step.
"""

from __future__ import annotations

import hashlib
import os

from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_amlpipe.operators.azure_vm import AzureVMDeallocateOperator, AzureVMStartOperator

CONN_ID = "azure_vm_default"
# Seconds between polls of Azure; a local test server sets it low.
POLL_SECONDS = float(os.environ.get("AMLPIPE_EXAMPLE_POLL_SECONDS", "10"))

SCRIPT = """\
echo "hello from $(hostname) as $(id -un)"
echo "working in $(pwd)"
if [ "$FAIL" = 1 ]; then
  echo "failing on purpose" >&2
  exit 3
fi
"""

with DAG(
    dag_id="azure_vm_setup_teardown",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example", "azure-vm"],
    doc_md=__doc__,
    params={
        "vm_name": Param("amlpipe-vm", type="string", description="An existing Linux VM."),
        "fail": Param(False, type="boolean", description="Make the step fail (the VM is still deallocated)."),
    },
):
    start_vm = AzureVMStartOperator(
        task_id="start_vm", vm_name="{{ params.vm_name }}", azure_vm_conn_id=CONN_ID, poll_interval=POLL_SECONDS
    )

    @task
    def run_on_vm() -> dict[str, object]:
        """Run SCRIPT on the VM; fail the task when the script fails."""
        from airflow_provider_amlpipe.hooks.azure_vm import AzureVmHook

        context = get_current_context()
        ti, vm_name, fail = context["ti"], context["params"]["vm_name"], context["params"]["fail"]
        # Stable across retries of this task instance (not the try number): a retry reattaches.
        key = f"{ti.dag_id}\n{ti.task_id}\n{ti.run_id}\n{ti.map_index}"
        run_id = "airflow-" + hashlib.sha256(key.encode()).hexdigest()[:32]
        with AzureVmHook(CONN_ID).get_client(polling_interval=POLL_SECONDS) as client:
            op = client.begin_run_command(
                vm_name, SCRIPT, run_id=run_id, env={"FAIL": "1" if fail else "0"}, timeout_seconds=3600
            )
            client.wait(op, sink=print)
            result = client.run_command_output(op)
        print(result.stdout)
        if result.stderr:
            print(result.stderr)
        if not result.succeeded:
            raise RuntimeError(f"the script on {vm_name} ended {result.state} (exit code {result.exit_code})")
        return {"run_id": run_id, "exit_code": result.exit_code}

    release_vm = AzureVMDeallocateOperator(
        task_id="release_vm", vm_name="{{ params.vm_name }}", azure_vm_conn_id=CONN_ID, poll_interval=POLL_SECONDS
    )

    work = run_on_vm()
    start_vm >> work >> release_vm.as_teardown(setups=start_vm)
