"""datastore_schedule_aml: converted by `amlpipe convert` from datastore_schedule.aml.py.

- publish: the DAG is the published pipeline; trigger it over REST at POST /api/v2/dags/{dag_id}/dagRuns or
  AML's body at POST /amlpipe/aml/pipelines/{dag_id}/submit (docs/migrating-from-aml.md)
- datastore schedule: polling_interval is in seconds here (AML's minutes x 60)
"""

# Airflow connections this DAG needs (create them before it runs):
#   landing: amlpipe_local / amlpipe_azure_blob / amlpipe_adls_gen2 (replaces AML datastore 'landing')

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import (
    PythonScriptStepOperator,
    changed_data_path_input,
    data_path_param,
    datastore_change_asset,
)

with DAG(
    dag_id="datastore_schedule_aml",
    schedule=[datastore_change_asset("landing", "incoming", polling_interval=300)],
    catchup=False,
    params={"input_data": data_path_param("landing", "incoming/sample.csv")},
    tags=["amlpipe", "converted"],
):
    ingest = PythonScriptStepOperator(
        task_id="ingest",
        script_name="ingest.py",
        allow_reuse=False,
        arguments=["--data", "{inputs.input_data}"],
        inputs={"input_data": changed_data_path_input("input_data")},
    )
