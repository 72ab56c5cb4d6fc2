from azureml.core import Datastore, Workspace
from azureml.data.datapath import DataPath, DataPathComputeBinding
from azureml.pipeline.core import Pipeline, PipelineParameter, Schedule
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
landing = Datastore.get(ws, "landing")
input_param = PipelineParameter(name="input_data", default_value=DataPath(datastore=landing, path_on_datastore="incoming/sample.csv"))
binding = (input_param, DataPathComputeBinding(mode="mount"))
ingest = PythonScriptStep(
    name="ingest", script_name="ingest.py", arguments=["--data", binding], inputs=[binding], allow_reuse=False
)
pipeline = Pipeline(ws, [ingest])
published = pipeline.publish(name="ingest")
Schedule.create(
    ws, name="on-upload", pipeline_id=published.id, experiment_name="ingest", datastore=landing,
    path_on_datastore="incoming", polling_interval=5, data_path_parameter_name="input_data",
)
