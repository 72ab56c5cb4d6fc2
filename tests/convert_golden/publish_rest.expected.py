"""publish_rest: converted by `amlpipe convert` from publish_rest.py.

- publish: the DAG is the published pipeline; trigger it over REST at POST /api/v2/dags/{dag_id}/dagRuns or
  AML's body at POST /amlpipe/aml/pipelines/{dag_id}/submit (docs/migrating-from-aml.md)
- regenerate_outputs=True: trigger the DAG with conf {"amlpipe": {"regenerate_outputs": true}} to rerun every
  step
"""

# Airflow connections this DAG needs (create them before it runs):
#   amlpipe_default: amlpipe_local / amlpipe_azure_blob (replaces the workspace's default datastore)

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_provider_amlpipe import DataPath, Output, PythonScriptStepOperator

with DAG(
    dag_id="publish_rest",
    schedule=None,
    params={"pipeline_arg": Param(10, type="integer")},
    tags=["amlpipe", "converted"],
):
    trainStep = PythonScriptStepOperator(
        task_id="trainStep",
        script_name="train.py",
        source_directory="publish_rest",
        allow_reuse=True,
        arguments=["--input_data", "{inputs.titanic}", "--output_train", "{outputs.processed_data1}"],
        inputs={"titanic": DataPath(datastore="amlpipe_default", path="titanic/Titanic.csv")},
        outputs=[Output("processed_data1")],
    )
    # TODO(amlpipe convert): Dataset
    # from_files(path='https://dprepdata.blob.core.windows.net/demo/Titanic.csv'): only one (datastore, path) is
    # converted; copy web or multi-path data into a datastore and read it with DataPath [publish_rest.py:30]
    extractStep = PythonScriptStepOperator(
        task_id="extractStep",
        script_name="extract.py",
        source_directory="publish_rest",
        arguments=[
            "--input_extract",
            "{inputs.processed_data1}",
            "--output_extract",
            "{outputs.processed_data2}",
            "--pipeline_param",
            "{{ params.pipeline_arg }}",
            "--web",
        ],
        inputs={"processed_data1": trainStep.output["processed_data1"]},
        outputs=[Output("processed_data2", register_as="compare_result")],
    )
