"""unsupported_aml: converted by `amlpipe convert` from unsupported.aml.py."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import Output, PythonScriptStepOperator

with DAG(dag_id="unsupported_aml", schedule=None, tags=["amlpipe", "converted"]):
    # TODO(amlpipe convert): `steps.AutoMLStep`: no counterpart in this provider; port this part by hand
    # [unsupported.aml.py:8]
    # TODO(amlpipe convert): `PythonScriptStep(name=name, script_name="x.py")` is inside `def`/`class`
    # 'make_step': the converter follows module-level statements only; write it out, or port it by hand
    # [unsupported.aml.py:13]
    prep = PythonScriptStepOperator(
        task_id="prep", script_name="prep.py", arguments=["--out", "{outputs.prepared}"], outputs=[Output("prepared")]
    )
    report = PythonScriptStepOperator(task_id="report", script_name="report.py")
    prep >> report
