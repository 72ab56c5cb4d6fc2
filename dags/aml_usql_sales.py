"""A bigger U-SQL step: a file set with virtual columns, a join and CROSS APPLY EXPLODE, on DuckDB.

Daily per-store order files (``data/sales/<yyyy>/<MM>/<dd>/<store>.csv``) are read as one file
set whose ``date`` and ``store`` columns come from the path; each order line is joined with the
product list and exploded over the product's tags. ``min_revenue`` is a DAG Param passed to the
script as ``@@min_revenue@@``; change it in the trigger conf and only this step reruns.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output

with DAG(
    dag_id="aml_usql_sales",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example", "usql"],
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
        outputs=[Output("daily_tags", register_as="sales_by_tag"), Output("best_tags")],
        step_params={"min_revenue": "{{ params.min_revenue }}"},
    )
