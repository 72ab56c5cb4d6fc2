"""adla: converted by `amlpipe convert` from adla.py."""

# Airflow connections this DAG needs (create them before it runs):
#   adls_datastore: amlpipe_adls_gen2 (replaces AML datastore 'adls_datastore')

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output

with DAG(dag_id="adla", schedule=None, tags=["amlpipe", "converted"]):
    adla_step = AdlaStepOperator(
        task_id="extract_employee_names",
        script_name="sample_script.usql",
        source_directory="adla",
        inputs={"employee_data": DataPath(datastore="adls_datastore", path="adla_sample/sample_input.csv")},
        outputs=[Output("sample_output")],
        datastore="adls_datastore",
    )
