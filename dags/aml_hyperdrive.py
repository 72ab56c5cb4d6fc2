"""AML notebook "parameter tuning with HyperDrive", ported: a sweep, then register and score the best.

``sweep`` trains a small neural network (scikit-learn's ``MLPClassifier`` on the digits data that
ships with scikit-learn) once per trial, with Optuna sampling the batch size, the two layer sizes
and the learning rate at random as the notebook's ``RandomParameterSampling`` did. Each trial logs
``validation_acc`` per epoch; the Bandit policy stops trials that fall more than 10 % behind the
best. The best trial's model is the sweep's ``model`` output; ``register`` makes it a version of
the ``digits_mlp_model`` dataset and ``score`` measures it on held-out digits. Rerun the DAG and
every step is reused; raise ``max_total_runs`` and only the new trials run.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import HyperDriveStepOperator, Output, PythonScriptStepOperator, ScriptTrial
from airflow_provider_amlpipe.sweep import BanditPolicy, PrimaryMetricGoal, RandomParameterSampling, choice, loguniform

SCRIPTS = Path(__file__).parent / "scripts" / "hyperdrive"

with DAG(
    dag_id="aml_hyperdrive",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example"],
    doc_md=__doc__,
):
    sweep = HyperDriveStepOperator(
        task_id="sweep",
        trial=ScriptTrial(
            source_directory=str(SCRIPTS / "train"),
            script_name="train.py",
            arguments=["--epochs", "10", "--model", Output("model")],
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
        # The notebook ran all four at once on a cluster; two fit a small worker.
        max_concurrent_runs=2,
        outputs=[Output("model")],
    )
    register = PythonScriptStepOperator(
        task_id="register",
        source_directory=str(SCRIPTS / "register"),
        script_name="register.py",
        inputs={"model": sweep.output["model"]},
        step_params={"best_hyperparameters": sweep.output["best_hyperparameters"]},
        outputs=[Output("registered", register_as="digits_mlp_model")],
    )
    score = PythonScriptStepOperator(
        task_id="score",
        source_directory=str(SCRIPTS / "score"),
        script_name="score.py",
        inputs={"model": register.output},
        outputs=[Output("scores")],
    )
