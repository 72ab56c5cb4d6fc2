from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, PipelineData, StepSequence
from azureml.pipeline.steps import AutoMLStep, PythonScriptStep

ws = Workspace.from_config()
prepared = PipelineData("prepared")
prep = PythonScriptStep(name="prep", script_name="prep.py", outputs=[prepared], arguments=["--out", prepared])
automl = AutoMLStep(name="automl", automl_config=None, inputs=[prepared])
report = PythonScriptStep(name="report", script_name="report.py", hash_paths=["."], version="2")


def make_step(name):
    return PythonScriptStep(name=name, script_name="x.py")


pipeline = Pipeline(ws, StepSequence(steps=[prep, report]))
