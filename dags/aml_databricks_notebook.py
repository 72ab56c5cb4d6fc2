"""AML notebook "use Databricks as compute target", ported: the notebook variant.

The demo notebook (Databricks ``.py`` source format) gets the input folder holding ``testdata.txt`` and
the output folder as widgets named ``input`` and ``output`` (as AML's DatabricksStep passed them) and
``myparam`` from ``notebook_params``; it writes ``output.txt``, which is committed as a version. Its
``dbutils.notebook.exit`` value appears in the task log.

With ``compute="local"`` (the default, and the only compute so far) it runs on PySpark in local mode on
the worker, with a ``dbutils`` stand-in; the cluster arguments are checked but only say where it would run
on a Databricks workspace (the Jobs API backend comes later).
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import DatabricksStepOperator, DataPath, Output

NOTEBOOKS = Path(__file__).parent / "scripts" / "databricks"

with DAG(
    dag_id="aml_databricks_notebook",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example", "databricks"],
    doc_md=__doc__,
):
    DatabricksStepOperator(
        task_id="DBNotebookInWS",
        notebook_path=str(NOTEBOOKS / "DataBricksStep-test.py"),
        notebook_params={"myparam": "testparam"},
        inputs={"input": DataPath(datastore="amlpipe_samples", path="databricks")},
        outputs=[Output("output")],
        spark_version="15.4.x-scala2.12",
        node_type="Standard_D3_v2",
        num_workers=1,
        run_name="DB_Notebook_demo",
        allow_reuse=True,
    )
