"""hyperdrive: converted by `amlpipe convert` from hyperdrive.py."""

# Airflow connections this DAG needs (create them before it runs):
#   amlpipe_default: amlpipe_local / amlpipe_azure_blob (replaces the workspace's default datastore)

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import (
    DataPath,
    HyperDriveStepOperator,
    Output,
    PythonEnvironment,
    PythonScriptStepOperator,
    ScriptTrial,
)
from airflow_provider_amlpipe.sweep import BanditPolicy, PrimaryMetricGoal, RandomParameterSampling, choice, loguniform

with DAG(dag_id="hyperdrive", schedule=None, tags=["amlpipe", "converted"]):
    # TODO(amlpipe convert): output 'saved_model' was the best trial's model file
    # 'outputs/model/saved_model.pb': the trial script must write it into {outputs.saved_model} (the best
    # trial's outputs are the sweep's) [hyperdrive.py:57]
    hd_step = HyperDriveStepOperator(
        task_id="hyperdrive_module",
        trial=ScriptTrial(
            script_name="tf_mnist.py",
            source_directory="./hyperdrive",
            arguments=["--data-folder", "{inputs.dataset}"],
            environment=PythonEnvironment(requirements="requirements.txt"),
            inputs={"dataset": DataPath(datastore="amlpipe_default", path="mnist")},
        ),
        hyperparameter_sampling=RandomParameterSampling(
            {
                "--batch-size": choice(25, 50, 100),
                "--first-layer-neurons": choice(10, 50, 200, 300, 500),
                "--second-layer-neurons": choice(10, 50, 200, 500),
                "--learning-rate": loguniform(-6, -1),
            }
        ),
        policy=BanditPolicy(evaluation_interval=2, slack_factor=0.1),
        primary_metric_name="validation_acc",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=4,
        max_concurrent_runs=4,
        outputs=[Output("saved_model")],
        metrics_output="metrics_data",
    )
    register_model_step = PythonScriptStepOperator(
        task_id="register_model",
        script_name="register_model.py",
        source_directory="./hyperdrive",
        arguments=["--saved-model", "{inputs.saved_model}", "--metrics", "{inputs.metrics_data}"],
        inputs={"saved_model": hd_step.output["saved_model"], "metrics_data": hd_step.output["metrics_data"]},
    )
