import functools

from azureml.core import Experiment, Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
targets = dict(ws.compute_targets)
for name in sorted(targets):
    targets[name].get_status()
steps = [PythonScriptStep(name=f"part_{i}", script_name="part.py", arguments=["--part", i]) for i in range(2)]
run = Experiment(ws, "parts").submit(Pipeline(ws, steps))
for child in run.get_children():
    print(child.get_details())
factory = functools.partial(PythonScriptStep, script_name="extra.py")
extra = factory(name="extra")

import requests
from azureml.pipeline.core import PipelineParameter
from azureml.pipeline.core.run import PipelineRun

published = Pipeline(ws, [PythonScriptStep(name="extra2", script_name="extra.py", compute_target="cpu-cluster")]).publish("p")
threshold = PipelineParameter("threshold", 0.5)
response = requests.post(published.endpoint, json={"ParameterAssignments": {"threshold": threshold.default_value}})
rest_run = PipelineRun(Experiment(ws, "parts"), response.json()["Id"])
rest_run.wait_for_completion()
