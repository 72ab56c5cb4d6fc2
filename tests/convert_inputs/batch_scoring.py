from azureml.core import Dataset, Environment, Experiment, Workspace
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep

ws = Workspace.from_config()
datastore = ws.get_default_datastore()
compute_target = ComputeTarget(ws, "cpu-cluster")

iris_data = Dataset.Tabular.from_delimited_files(path=(datastore, "iris/iris.csv"))
iris_ds = iris_data.register(ws, "iris_data")
named_iris_ds = iris_ds.as_named_input("iris_data")

output_folder = OutputFileDatasetConfig(name="inferences")

predict_env = Environment.from_pip_requirements(name="predict", file_path="requirements.txt")
parallel_run_config = ParallelRunConfig(
    source_directory="scoring",
    entry_script="iris_score.py",
    mini_batch_size="1KB",
    error_threshold=5,
    output_action="append_row",
    append_row_file_name="iris_outputs.txt",
    environment=predict_env,
    compute_target=compute_target,
    node_count=2,
    run_invocation_timeout=600,
)

distributed_csv_iris_step = ParallelRunStep(
    name="parallel-run-iris",
    inputs=[named_iris_ds],
    output=output_folder,
    parallel_run_config=parallel_run_config,
    arguments=["--model_name", "iris"],
    allow_reuse=True,
)

pipeline = Pipeline(workspace=ws, steps=[distributed_csv_iris_step])
pipeline_run = Experiment(ws, "iris-prs").submit(pipeline)
pipeline_run.wait_for_completion(show_output=True)
