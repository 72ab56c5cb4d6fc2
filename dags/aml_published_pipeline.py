"""AML notebook "publish and run using REST endpoint", ported: a pipeline triggered over REST with parameters.

AML published a pipeline and ran it with ``POST <endpoint>`` and a body naming parameter values
(``ParameterAssignments``) and data paths (``DataPathAssignments``). Here the DAG is the published pipeline:

- ``top`` is AML's ``PipelineParameter`` (an Airflow Param with a JSON schema, checked before a run starts);
- ``test_data`` is a ``DataPath`` parameter (:func:`data_path_param`, AML's shape
  ``{"DataStoreName": ..., "RelativePath": ...}``) that the step reads through :func:`data_path_input`.

Trigger it with Airflow's REST API::

    POST /api/v2/dags/aml_published_pipeline/dagRuns
    {"logical_date": null, "conf": {"top": 3, "test_data": {"DataStoreName": "amlpipe_samples",
                                                            "RelativePath": "passengers.csv"}}}

or, unchanged AML client code, through the provider's plugin on the api-server::

    POST /amlpipe/aml/pipelines/aml_published_pipeline/submit
    {"ExperimentName": "rest-demo", "ParameterAssignments": {"top": 3},
     "DataPathAssignments": {"test_data": {"DataStoreName": "amlpipe_samples", "RelativePath": "passengers.csv"}}}

    GET /amlpipe/aml/pipelines/aml_published_pipeline/runs/<Id>    -> {"Status": "Completed", ...}

An unchanged rerun reuses the step; another ``top`` or data path reruns it.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_amlpipe import Output, PythonScriptStepOperator, data_path_input, data_path_param

with DAG(
    dag_id="aml_published_pipeline",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example", "rest"],
    doc_md=__doc__,
    params={
        "top": Param(5, type="integer", minimum=1, description="rows to keep (AML's PipelineParameter)"),
        "test_data": data_path_param("amlpipe_samples", "sample_input.csv", description="the input (a DataPath)"),
    },
):
    PythonScriptStepOperator(
        task_id="summarize",
        source_directory=str(Path(__file__).parent / "scripts" / "published"),
        script_name="summarize.py",
        arguments=["--input", "{inputs.test_data}", "--top", "{{ params.top }}", "--out", "{outputs.summary}"],
        inputs={"test_data": data_path_input("test_data")},
        outputs=[Output("summary")],
    )
