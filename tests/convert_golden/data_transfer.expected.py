"""data_transfer: converted by `amlpipe convert` from data_transfer.py."""

# Airflow connections this DAG needs (create them before it runs):
#   blob_datastore: amlpipe_azure_blob (replaces AML datastore 'blob_datastore')
#   adls_datastore: amlpipe_local / amlpipe_azure_blob / amlpipe_adls_gen2 (replaces AML datastore 'adls_datastore')
#   postgres_datastore: postgres (replaces AML datastore 'postgres_datastore')

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import DataPath, DataTransferStepOperator, SqlDataReference

with DAG(dag_id="data_transfer", schedule=None, tags=["amlpipe", "converted"]):
    transfer_adls_to_blob = DataTransferStepOperator(
        task_id="transfer_blob_to_adls",
        source_reference_type="directory",
        destination_reference_type="directory",
        source_data_reference=DataPath(datastore="blob_datastore", path="testdata"),
        destination_data_reference=DataPath(datastore="adls_datastore", path="testdata"),
    )
    sql_to_blob = DataTransferStepOperator(
        task_id="sql_to_blob",
        source_data_reference=SqlDataReference("postgres_datastore", sql_query="select * from passengers"),
        destination_data_reference=DataPath(datastore="blob_datastore", path="passengers.csv"),
    )
    transfer_adls_to_blob >> sql_to_blob
