"""databricks: converted by `amlpipe convert` from databricks.py."""

# Airflow connections this DAG needs (create them before it runs):
#   amlpipe_default: amlpipe_local / amlpipe_azure_blob (replaces the workspace's default datastore)
#   mydatabricks: amlpipe_databricks (replaces DatabricksStep compute target 'mydatabricks')

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_provider_amlpipe import DataPath, DatabricksStepOperator, Output

with DAG(
    dag_id="databricks",
    schedule=None,
    params={"my_pipeline_param": Param("pipeline_param1", type="string")},
    tags=["amlpipe", "converted"],
):
    # TODO(amlpipe convert): spark_version: AML's default '4.0.x-scala2.11' is retired; pick a current runtime
    # [databricks.py:23]
    dbNbStep = DatabricksStepOperator(
        task_id="DBNotebookInWS",
        notebook_path="/Users/someone@example.com/DBNotebookInWS",
        notebook_params={"myparam": "testparam", "myparam2": "{{ params.my_pipeline_param }}"},
        num_workers=1,
        run_name="DB_Notebook_demo",
        allow_reuse=True,
        compute="mydatabricks",
        spark_version="4.0.x-scala2.11",
        node_type="Standard_D3_v2",
        inputs={"input": DataPath(datastore="amlpipe_default", path="dbtest")},
        outputs=[Output("output")],
    )
    # TODO(amlpipe convert): spark_version: AML's default '4.0.x-scala2.11' is retired; pick a current runtime
    # [databricks.py:36]
    dbPythonInLocalMachineStep = DatabricksStepOperator(
        task_id="DBPythonInLocalMachine",
        python_script_name="train-db-local.py",
        source_directory="databricks",
        num_workers=1,
        run_name="DB_Python_Local_demo",
        allow_reuse=True,
        compute="mydatabricks",
        spark_version="4.0.x-scala2.11",
        node_type="Standard_D3_v2",
        python_script_params=["--input", "{inputs.output}"],
        inputs={"output": dbNbStep.output["output"]},
    )
