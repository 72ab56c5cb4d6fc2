"""unsupported_aml: converted by `amlpipe convert` from unsupported.aml.py."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import Output, PythonScriptStepOperator

with DAG(dag_id="unsupported_aml", schedule=None, tags=["amlpipe", "converted"]):
    prep = PythonScriptStepOperator(
        task_id="prep", script_name="prep.py", arguments=["--out", "{outputs.prepared}"], outputs=[Output("prepared")]
    )
    # TODO(amlpipe convert): PythonScriptStep(hash_paths=...): no counterpart in PythonScriptStepOperator; port
    # it by hand [/work/main/.wt-convert/tests/convert_golden/unsupported.aml.py:9]
    # TODO(amlpipe convert): PythonScriptStep(version=...): no counterpart in PythonScriptStepOperator; port it
    # by hand [/work/main/.wt-convert/tests/convert_golden/unsupported.aml.py:9]
    report = PythonScriptStepOperator(task_id="report", script_name="report.py")
    prep >> report
