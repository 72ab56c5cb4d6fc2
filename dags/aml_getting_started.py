"""AML notebook "getting started", ported: three Python script steps, parallel plus ordering.

``train`` and ``extract`` share no data, so they run in parallel; ``compare`` runs after ``train``
(AML's ``run_after``) via ``>>``. Each step lives in its own folder, as AML advises, so editing one
script changes only that step's fingerprint. Rerun the DAG and every unchanged step is reused.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import DataPath, Output, PythonScriptStepOperator

SCRIPTS = Path(__file__).parent / "scripts" / "getting_started"
PASSENGERS = DataPath(datastore="amlpipe_samples", path="passengers.csv")

with DAG(
    dag_id="aml_getting_started",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example"],
    doc_md=__doc__,
):
    train = PythonScriptStepOperator(
        task_id="train",
        source_directory=str(SCRIPTS / "train"),
        script_name="train.py",
        arguments=["--passengers", "{inputs.passengers}", "--model", Output("model")],
        inputs={"passengers": PASSENGERS},
        outputs=[Output("model")],
    )
    extract = PythonScriptStepOperator(
        task_id="extract",
        source_directory=str(SCRIPTS / "extract"),
        script_name="extract.py",
        arguments=["--passengers", "{inputs.passengers}", "--features", "{outputs.features}"],
        inputs={"passengers": PASSENGERS},
        outputs=[Output("features")],
    )
    compare = PythonScriptStepOperator(
        task_id="compare",
        source_directory=str(SCRIPTS / "compare"),
        script_name="compare.py",
        arguments=["--passengers", "{inputs.passengers}", "--report", "{outputs.report}"],
        inputs={"passengers": PASSENGERS},
        outputs=[Output("report")],
    )
    train >> compare
