from azureml.core import Datastore, Experiment, Workspace
from azureml.core.compute import BatchCompute, ComputeTarget
from azureml.data.data_reference import DataReference
from azureml.pipeline.core import Pipeline, PipelineData
from azureml.pipeline.steps import AzureBatchStep

ws = Workspace.from_config()
batch_compute_name = "mybatchcompute"
batch_compute = ComputeTarget.attach(
    ws, batch_compute_name, BatchCompute.attach_configuration(resource_group="rg", account_name="batchaccount")
)
blob_datastore = Datastore.register_azure_blob_container(
    workspace=ws, datastore_name="input_datastore", container_name="input", account_name="storage"
)
input_data = DataReference(datastore=blob_datastore, data_reference_name="input", path_on_datastore="input.txt")
output = PipelineData("output", datastore=ws.get_default_datastore())

step = AzureBatchStep(
    name="Azure Batch Job",
    pool_id="MyPoolName",
    inputs=[input_data],
    outputs=[output],
    executable="azurebatch.cmd",
    arguments=["--input", input_data, "--output", output],
    compute_target=batch_compute,
    source_directory="batch_binaries",
    create_pool=True,
    delete_batch_job_after_finish=True,
    delete_batch_pool_after_finish=False,
    is_positive_exit_code_failure=True,
    vm_image_urn="urn:MicrosoftWindowsServer:WindowsServer:2012-R2-Datacenter",
    run_task_as_admin=False,
    target_compute_nodes=1,
    vm_size="standard_d1_v2",
)

pipeline = Pipeline(workspace=ws, steps=[step])
pipeline_run = Experiment(ws, "azurebatch_experiment").submit(pipeline)
