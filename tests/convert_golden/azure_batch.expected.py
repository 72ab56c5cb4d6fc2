"""azure_batch: converted by `amlpipe convert` from azure_batch.py."""

# Airflow connections this DAG needs (create them before it runs):
#   input_datastore: amlpipe_azure_blob (replaces AML datastore 'input_datastore')
#   mybatchcompute: amlpipe_azure_batch (replaces AzureBatchStep compute target 'mybatchcompute')
#   amlpipe_default: amlpipe_local / amlpipe_azure_blob (replaces the workspace's default datastore)

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import AzureBatchStepOperator, DataPath, Output

with DAG(dag_id="azure_batch", schedule=None, tags=["amlpipe", "converted"]):
    step = AzureBatchStepOperator(
        task_id="Azure_Batch_Job",
        executable="azurebatch.cmd",
        source_directory="batch_binaries",
        pool_id="MyPoolName",
        create_pool=True,
        vm_size="standard_d1_v2",
        vm_image_urn="urn:MicrosoftWindowsServer:WindowsServer:2012-R2-Datacenter",
        target_compute_nodes=1,
        delete_batch_job_after_finish=True,
        delete_batch_pool_after_finish=False,
        is_positive_exit_code_failure=True,
        run_task_as_admin=False,
        arguments=["--input", "{inputs.input}", "--output", "{outputs.output}"],
        compute="mybatchcompute",
        inputs={"input": DataPath(datastore="input_datastore", path="input.txt")},
        outputs=[Output("output")],
    )
