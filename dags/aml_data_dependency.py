"""AML notebook "with data dependency steps", ported: train -> extract -> compare.

Steps are linked by data: each consumes the previous step's named output (an XComArg, which
also orders them). ``compare`` also reads a reference passenger list given by the DAG Param
``reference_path`` -- AML's PipelineParameter with a DataPath default -- which a REST trigger
can override::

    POST /api/v2/dags/aml_data_dependency/dagRuns
    {"logical_date": null, "conf": {"reference_path": "passengers.csv"}}
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_amlpipe import DataPath, Output, PythonScriptStepOperator

SCRIPTS = Path(__file__).parent / "scripts" / "data_dependency"

with DAG(
    dag_id="aml_data_dependency",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example"],
    doc_md=__doc__,
    params={
        "raw_path": Param("passengers.csv", type="string", description="raw passenger list in amlpipe_samples"),
        "reference_path": Param("passengers.csv", type="string", description="reference list for compare"),
    },
):
    train = PythonScriptStepOperator(
        task_id="train",
        source_directory=str(SCRIPTS / "train"),
        script_name="train.py",
        arguments=["--raw", "{inputs.raw_data}", "--out", "{outputs.processed_data1}"],
        inputs={"raw_data": DataPath(datastore="amlpipe_samples", path="{{ params.raw_path }}")},
        outputs=[Output("processed_data1")],
    )
    extract = PythonScriptStepOperator(
        task_id="extract",
        source_directory=str(SCRIPTS / "extract"),
        script_name="extract.py",
        arguments=["--clean", "{inputs.processed_data1}", "--out", "{outputs.processed_data2}"],
        inputs={"processed_data1": train.output["processed_data1"]},
        outputs=[Output("processed_data2")],
    )
    compare = PythonScriptStepOperator(
        task_id="compare",
        source_directory=str(SCRIPTS / "compare"),
        script_name="compare.py",
        arguments=[
            "--features",
            "{inputs.processed_data2}",
            "--reference",
            "{inputs.reference}",
            "--out",
            "{outputs.comparison}",
        ],
        inputs={
            "processed_data2": extract.output["processed_data2"],
            "reference": DataPath(datastore="amlpipe_samples", path="{{ params.reference_path }}"),
        },
        outputs=[Output("comparison", register_as="passenger_model_comparison")],
    )
