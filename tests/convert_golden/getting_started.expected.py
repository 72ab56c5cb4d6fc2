"""getting_started: converted by `amlpipe convert` from getting_started.py."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import PythonScriptStepOperator

with DAG(dag_id="getting_started", schedule=None, tags=["amlpipe", "converted"]):
    step1 = PythonScriptStepOperator(
        task_id="train_step", script_name="train.py", source_directory="./scripts/train", allow_reuse=True
    )
    step2 = PythonScriptStepOperator(
        task_id="compare_step", script_name="compare.py", source_directory="./scripts/compare"
    )
    step3 = PythonScriptStepOperator(
        task_id="extract_step", script_name="extract.py", source_directory="./scripts/extract"
    )
    step2 >> step3
