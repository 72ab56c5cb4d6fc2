from azureml.core import Datastore, Experiment, Workspace
from azureml.core.compute import AdlaCompute, ComputeTarget
from azureml.data.data_reference import DataReference
from azureml.pipeline.core import Pipeline, PipelineData
from azureml.pipeline.steps import AdlaStep

ws = Workspace.from_config()
adls_datastore = Datastore.register_azure_data_lake_gen2(
    workspace=ws, datastore_name="adls_datastore", filesystem="data", account_name="account"
)
adla_compute = ComputeTarget.attach(
    ws, "adla-compute", AdlaCompute.attach_configuration(resource_group="rg", account_name="adla")
)

script_folder = "adla"
employee_data = DataReference(
    datastore=adls_datastore, data_reference_name="employee_data", path_on_datastore="adla_sample/sample_input.csv"
)
sample_output = PipelineData("sample_output", datastore=adls_datastore)

adla_step = AdlaStep(
    name="extract_employee_names",
    script_name="sample_script.usql",
    source_directory=script_folder,
    inputs=[employee_data],
    outputs=[sample_output],
    compute_target=adla_compute,
)

pipeline = Pipeline(workspace=ws, steps=[adla_step])
pipeline_run = Experiment(ws, "adla_sample").submit(pipeline)
