from azureml.core import Experiment, Workspace
from azureml.core.compute import ComputeTarget, DatabricksCompute
from azureml.data.data_reference import DataReference
from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter
from azureml.pipeline.steps import DatabricksStep

ws = Workspace.from_config()
db_compute_name = "mydatabricks"
config = DatabricksCompute.attach_configuration(
    resource_group="rg", workspace_name="dbws", access_token="dapi-placeholder"
)
databricks_compute = ComputeTarget.attach(ws, db_compute_name, config)
databricks_compute.wait_for_completion(True)

def_blob_store = ws.get_default_datastore()
step_1_input = DataReference(
    datastore=def_blob_store, path_on_datastore="dbtest", data_reference_name="input"
)
step_1_output = PipelineData("output", datastore=def_blob_store)
notebook_path = "/Users/someone@example.com/DBNotebookInWS"
pipeline_param = PipelineParameter(name="my_pipeline_param", default_value="pipeline_param1")

dbNbStep = DatabricksStep(
    name="DBNotebookInWS",
    inputs=[step_1_input],
    outputs=[step_1_output],
    num_workers=1,
    notebook_path=notebook_path,
    notebook_params={"myparam": "testparam", "myparam2": pipeline_param},
    run_name="DB_Notebook_demo",
    compute_target=databricks_compute,
    allow_reuse=True,
)

python_script_name = "train-db-local.py"
dbPythonInLocalMachineStep = DatabricksStep(
    name="DBPythonInLocalMachine",
    num_workers=1,
    python_script_name=python_script_name,
    source_directory="databricks",
    run_name="DB_Python_Local_demo",
    compute_target=databricks_compute,
    allow_reuse=True,
    python_script_params=["--input", step_1_output],
    inputs=[step_1_output],
)

pipeline = Pipeline(workspace=ws, steps=[dbNbStep, dbPythonInLocalMachineStep])
pipeline_run = Experiment(ws, "DB_Notebook_demo").submit(pipeline)
