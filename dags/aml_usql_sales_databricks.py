"""The ``aml_usql_sales`` U-SQL script moved to Databricks: ADLA is retired, the script stays.

The same ``daily_tags.usql`` as ``aml_usql_sales``, with the same ``@@name@@`` inputs, outputs and
parameter, runs as its Spark SQL translation: on a Databricks cluster when ``compute`` names an
``amlpipe_databricks`` connection (the data passed as ``abfss://`` URIs of the staging container), and here,
by default, on PySpark in local mode (``engine="spark"``) -- the same runner a cluster executes. Its rows
equal the DuckDB path's (``aml_usql_sales``); the order of rows in an output without ``ORDER BY`` may differ.

To run it on a workspace: create an ``amlpipe_databricks`` connection with ``extra.cluster_id`` and an
``amlpipe_azure_blob`` staging datastore, put the sample data on Blob, and set the environment variable
``AMLPIPE_DATABRICKS_COMPUTE`` to the connection's id where the DAG is parsed.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output

# An environment variable, not an Airflow Variable: DAG files should not query the metadata DB at parse time.
COMPUTE = os.environ.get("AMLPIPE_DATABRICKS_COMPUTE", "local")

with DAG(
    dag_id="aml_usql_sales_databricks",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example", "usql", "databricks"],
    doc_md=__doc__,
    params={"min_revenue": Param(50, type="number", description="drop day/store/tag groups below this")},
):
    AdlaStepOperator(
        task_id="daily_tags",
        source_directory=str(Path(__file__).parent / "scripts" / "usql_sales"),
        script_name="daily_tags.usql",
        inputs={
            "orders": DataPath(datastore="amlpipe_samples", path="sales"),
            "products": DataPath(datastore="amlpipe_samples", path="products.csv"),
        },
        outputs=[Output("daily_tags"), Output("best_tags")],
        step_params={"min_revenue": "{{ params.min_revenue }}"},
        compute=COMPUTE,
        engine="spark" if COMPUTE == "local" else None,
    )
