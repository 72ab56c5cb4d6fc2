from azureml.core import Dataset, Experiment, Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter, PublishedPipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
def_blob_store = ws.get_default_datastore()
aml_compute = ws.get_default_compute_target("CPU")
source_directory = "publish_rest"

web_path = "https://dprepdata.blob.core.windows.net/demo/Titanic.csv"
titanic_ds = Dataset.File.from_files(path=(def_blob_store, "titanic/Titanic.csv"))
web_ds = Dataset.File.from_files(web_path)
processed_data1 = OutputFileDatasetConfig(name="processed_data1")

trainStep = PythonScriptStep(
    script_name="train.py",
    arguments=["--input_data", titanic_ds.as_named_input("titanic").as_mount(), "--output_train", processed_data1],
    compute_target=aml_compute,
    source_directory=source_directory,
    allow_reuse=True,
)

processed_data2 = OutputFileDatasetConfig(name="processed_data2").register_on_complete(name="compare_result")
pipeline_param = PipelineParameter(name="pipeline_arg", default_value=10)
extractStep = PythonScriptStep(
    script_name="extract.py",
    arguments=[
        "--input_extract", processed_data1.as_input(), "--output_extract", processed_data2,
        "--pipeline_param", pipeline_param, "--web", web_ds.as_named_input("web").as_download(),
    ],
    compute_target=aml_compute,
    source_directory=source_directory,
)

pipeline1 = Pipeline(workspace=ws, steps=[extractStep])
pipeline1.publish(name="My_New_Pipeline", description="My Published Pipeline Description", continue_on_step_failure=True)
pipeline_run = Experiment(ws, "Tutorial-Pipeline").submit(pipeline1, regenerate_outputs=True)
published = PublishedPipeline.get(ws, "some-id")
