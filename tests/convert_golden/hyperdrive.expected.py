"""hyperdrive: converted by `amlpipe convert` from hyperdrive.py."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import HyperDriveStepOperator, PythonEnvironment, PythonScriptStepOperator, ScriptTrial
from airflow_provider_amlpipe.sweep import BanditPolicy, PrimaryMetricGoal, RandomParameterSampling, choice, loguniform

with DAG(dag_id="hyperdrive", schedule=None, tags=["amlpipe", "converted"]):
    # TODO(amlpipe convert): `core.TrainingOutput`: no counterpart in this provider; port this part by hand
    # [hyperdrive.py:54]
    hd_step = HyperDriveStepOperator(
        task_id="hyperdrive_module",
        trial=ScriptTrial(
            script_name="tf_mnist.py",
            source_directory="./hyperdrive",
            arguments=["--data-folder", "mnist"],
            environment=PythonEnvironment(requirements="requirements.txt"),
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
        metrics_output="metrics_data",
    )
    register_model_step = PythonScriptStepOperator(
        task_id="register_model",
        script_name="register_model.py",
        source_directory="./hyperdrive",
        arguments=["--metrics", "{inputs.metrics_data}"],
        inputs={"metrics_data": hd_step.output["metrics_data"]},
    )
