"""batch_scoring: converted by `amlpipe convert` from batch_scoring.py."""

# Airflow connections this DAG needs (create them before it runs):
#   amlpipe_default: amlpipe_local / amlpipe_azure_blob (replaces the workspace's default datastore)

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import DataPath, Output, ParallelRunConfig, ParallelRunStepOperator, PythonEnvironment

with DAG(dag_id="batch_scoring", schedule=None, tags=["amlpipe", "converted"]):
    # TODO(amlpipe convert): node_count=2: the AML cluster becomes this worker (one node); for 2 nodes pass
    # compute='<amlpipe_azure_batch connection>', pool_id=..., node_count=2 to ParallelRunConfig
    # [batch_scoring.py:18]
    distributed_csv_iris_step = ParallelRunStepOperator(
        task_id="parallel-run-iris",
        allow_reuse=True,
        parallel_run_config=ParallelRunConfig(
            entry_script="iris_score.py",
            source_directory="scoring",
            mini_batch_size="1KB",
            error_threshold=5,
            output_action="append_row",
            append_row_file_name="iris_outputs.txt",
            run_invocation_timeout=600,
            environment=PythonEnvironment(requirements="requirements.txt"),
        ),
        output=Output("inferences"),
        arguments=["--model_name", "iris"],
        dataset_type="tabular",
        inputs={"iris_data": DataPath(datastore="amlpipe_default", path="iris/iris.csv")},
    )
