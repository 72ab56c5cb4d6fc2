"""misc_aml: converted by `amlpipe convert` from misc.aml.py.

- regenerate_outputs=True: trigger the DAG with conf {"amlpipe": {"regenerate_outputs": true}} to rerun every
  step
- pipeline_parameters {'epochs': 7}: trigger the DAG with these as its conf
"""

# Airflow connections this DAG needs (create them before it runs):
#   samples: amlpipe_local / amlpipe_azure_blob / amlpipe_adls_gen2 (replaces AML datastore 'samples')

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_provider_amlpipe import DataPath, DatasetInput, Output, PythonEnvironment, PythonScriptStepOperator

with DAG(
    dag_id="misc_aml",
    schedule=None,
    params={"epochs": Param(5, type="integer"), "rate": Param(0.5, type="number")},
    tags=["amlpipe", "converted"],
):
    # TODO(amlpipe convert): output 'scored': output_path_on_compute: the script must write into the folder
    # {outputs.NAME} instead [misc.aml.py:13]
    score = PythonScriptStepOperator(
        task_id="score_step",
        script_name="score.py",
        source_directory="score",
        allow_reuse=False,
        arguments=[
            "--raw",
            "{inputs.raw}",
            "--model",
            "{inputs.passengers}",
            "--out",
            "{outputs.scored}",
            "--epochs",
            "{{ params.epochs }}",
        ],
        step_params={"rate": "{{ params.rate }}", "mode": "fast"},
        environment=PythonEnvironment(requirements="requirements.txt"),
        inputs={
            "raw": DataPath(datastore="samples", path="raw/passengers.csv"),
            "passengers": DatasetInput("passengers", version=3),
        },
        outputs=[Output("scored")],
        datastore="samples",
    )
