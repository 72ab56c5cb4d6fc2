"""AML notebook "use ADLA as compute target", ported: a U-SQL step, run locally on DuckDB.

Azure Data Lake Analytics was retired on 2024-02-29; ``AdlaStepOperator`` compiles the same
U-SQL script to DuckDB SQL. ``@@employee_data@@`` and ``@@sample_output@@`` are replaced by the
step's input and output paths, as AML's AdlaStep did. Like every step, it is reused when nothing
changed.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import AdlaStepOperator, DataPath, Output

with DAG(dag_id="aml_adla", schedule=None, catchup=False, tags=["amlpipe", "example", "usql"], doc_md=__doc__):
    AdlaStepOperator(
        task_id="adla_step",
        source_directory=str(Path(__file__).parent / "scripts" / "adla"),
        script_name="sample_script.usql",
        inputs={"employee_data": DataPath(datastore="amlpipe_samples", path="sample_input.csv")},
        outputs=[Output("sample_output")],
        degree_of_parallelism=1,
        priority=1000,
    )
