import os

import azureml.core
from azureml.core import Datastore, Experiment, Workspace
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.core.compute_target import ComputeTargetException
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep
from azureml.widgets import RunDetails

print("SDK version:", azureml.core.VERSION)

ws = Workspace.from_config()
def_blob_store = ws.get_default_datastore()
def_blob_store.upload_files(["./20news.pkl"], target_path="20newsgroups", overwrite=True)

aml_compute_target = "cpu-cluster"
try:
    aml_compute = AmlCompute(ws, aml_compute_target)
    print("found existing compute target.")
except ComputeTargetException:
    provisioning_config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", min_nodes=1, max_nodes=4)
    aml_compute = ComputeTarget.create(ws, aml_compute_target, provisioning_config)
    aml_compute.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

source_directory = "./scripts/train"
step1 = PythonScriptStep(
    name="train_step",
    script_name="train.py",
    compute_target=aml_compute,
    source_directory=source_directory,
    allow_reuse=True,
)

source_directory = "./scripts/compare"
step2 = PythonScriptStep(
    name="compare_step",
    script_name="compare.py",
    compute_target=aml_compute,
    source_directory=source_directory,
)

source_directory = "./scripts/extract"
step3 = PythonScriptStep(
    name="extract_step",
    script_name="extract.py",
    compute_target=aml_compute,
    source_directory=source_directory,
)

step3.run_after(step2)

steps = [step1, step2, step3]
pipeline1 = Pipeline(workspace=ws, steps=steps)
pipeline1.validate()

pipeline_run1 = Experiment(ws, "Hello_World1").submit(pipeline1, regenerate_outputs=False)
RunDetails(pipeline_run1).show()
pipeline_run1.wait_for_completion()
step_runs = pipeline_run1.get_children()
for step_run in step_runs:
    status = step_run.get_status()
    print("Script:", step_run.name, "status:", status)
