from azureml.core import Dataset, Datastore, Environment, Workspace
from azureml.core.runconfig import RunConfiguration
from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
store = Datastore.get(ws, "samples")
registered = Dataset.get_by_name(ws, name="passengers", version=3).as_named_input("passengers")
raw = store.path("raw/passengers.csv", data_reference_name="raw")
env = Environment.from_pip_requirements("train-env", "requirements.txt")
run_config = RunConfiguration()
run_config.environment = env
scored = PipelineData("scored", datastore=store, output_mode="upload", output_path_on_compute="scored.csv")
epochs = PipelineParameter("epochs", 5)
rate = PipelineParameter(name="rate", default_value=0.5)
score = PythonScriptStep(
    "score.py",
    name="score step",
    arguments=["--raw", raw, "--model", registered, "--out", scored, "--epochs", epochs],
    inputs=[raw, registered],
    outputs=[scored],
    params={"rate": rate, "mode": "fast"},
    runconfig=run_config,
    source_directory="score",
    allow_reuse=False,
)
Pipeline(ws, [score]).submit("scoring", regenerate_outputs=True, pipeline_parameters={"epochs": 7})
