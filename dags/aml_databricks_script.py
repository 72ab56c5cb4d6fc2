"""AML notebook "use Databricks as compute target", ported: the local Python script variant.

``train.py`` from ``source_directory`` (part of the step's fingerprint) gets the input folder and the
output folder as ``--input`` and ``--output`` arguments after its own ``python_script_params``, as AML's
DatabricksStep passed them; it counts the words of ``testdata.txt`` with Spark and writes a CSV.

With ``compute="local"`` (the default, and the only compute so far) it runs on PySpark in local mode on
the worker.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import DatabricksStepOperator, DataPath, Output

with DAG(
    dag_id="aml_databricks_script",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example", "databricks"],
    doc_md=__doc__,
):
    DatabricksStepOperator(
        task_id="DBPythonInLocalMachine",
        python_script_name="train.py",
        source_directory=str(Path(__file__).parent / "scripts" / "databricks" / "train"),
        python_script_params=["--min-count", "1"],
        inputs={"input": DataPath(datastore="amlpipe_samples", path="databricks")},
        outputs=[Output("output")],
        spark_version="15.4.x-scala2.12",
        node_type="Standard_D3_v2",
        num_workers=1,
        run_name="DB_Python_Local_demo",
        allow_reuse=True,
    )
