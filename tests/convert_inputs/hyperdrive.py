from azureml.core import Dataset, Environment, Experiment, ScriptRunConfig, Workspace
from azureml.core.compute import ComputeTarget
from azureml.pipeline.core import Pipeline, PipelineData, TrainingOutput
from azureml.pipeline.steps import HyperDriveStep, PythonScriptStep
from azureml.train.hyperdrive import (
    BanditPolicy,
    HyperDriveConfig,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
    loguniform,
)

ws = Workspace.from_config()
ds = ws.get_default_datastore()
compute_target = ComputeTarget(workspace=ws, name="gpu-cluster")
script_folder = "./hyperdrive"
dataset = Dataset.File.from_files(path=ds.path("mnist").as_mount())
data_folder = dataset.as_mount()

tf_env = Environment.from_pip_requirements(name="tf-env", file_path="requirements.txt")
src = ScriptRunConfig(
    source_directory=script_folder,
    script="tf_mnist.py",
    arguments=["--data-folder", data_folder],
    compute_target=compute_target,
    environment=tf_env,
)

ps = RandomParameterSampling(
    {
        "--batch-size": choice(25, 50, 100),
        "--first-layer-neurons": choice(10, 50, 200, 300, 500),
        "--second-layer-neurons": choice(10, 50, 200, 500),
        "--learning-rate": loguniform(-6, -1),
    }
)
early_termination_policy = BanditPolicy(evaluation_interval=2, slack_factor=0.1)
hd_config = HyperDriveConfig(
    run_config=src,
    hyperparameter_sampling=ps,
    policy=early_termination_policy,
    primary_metric_name="validation_acc",
    primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
    max_total_runs=4,
    max_concurrent_runs=4,
)

metrics_output_name = "metrics_output"
metrics_data = PipelineData(
    name="metrics_data",
    datastore=ds,
    pipeline_output_name=metrics_output_name,
    training_output=TrainingOutput("Metrics"),
)
model_output_name = "model_output"
saved_model = PipelineData(
    name="saved_model",
    datastore=ds,
    pipeline_output_name=model_output_name,
    training_output=TrainingOutput("Model", model_file="outputs/model/saved_model.pb"),
)

hd_step = HyperDriveStep(
    name="hyperdrive_module",
    hyperdrive_config=hd_config,
    inputs=[data_folder],
    outputs=[metrics_data, saved_model],
)

register_model_step = PythonScriptStep(
    script_name="register_model.py",
    name="register_model",
    source_directory=script_folder,
    arguments=["--saved-model", saved_model, "--metrics", metrics_data],
    inputs=[saved_model, metrics_data],
    compute_target=compute_target,
)
register_model_step.run_after(hd_step)

pipeline = Pipeline(workspace=ws, steps=[hd_step, register_model_step])
pipeline_run = Experiment(ws, "tf-hyperdrive").submit(pipeline)
pipeline_run.wait_for_completion()
