"""blocked_aml: converted by `amlpipe convert` from blocked.aml.py.

- publish: the DAG is the published pipeline; trigger it over REST at POST /api/v2/dags/{dag_id}/dagRuns or
  AML's body at POST /amlpipe/aml/pipelines/{dag_id}/submit (docs/migrating-from-aml.md)
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_amlpipe import PythonScriptStepOperator

with DAG(dag_id="blocked_aml", schedule=None, catchup=False, tags=["amlpipe", "converted"]):
    # TODO(amlpipe convert): ScheduleRecurrence(frequency='Day', interval=2, hours=[22], minutes=[30]):
    # start_time: every 2 days needs a start to count from. Fix: give start_time="YYYY-MM-DDThh:mm:ss"
    # [blocked.aml.py:17]
    # TODO(amlpipe convert): Dataset from_files(path='https://example.com/images/*.jpg'): only one (datastore,
    # path) is converted; copy web or multi-path data into a datastore and read it with DataPath
    # [blocked.aml.py:7]
    # TODO(amlpipe convert): step 'score' written commented out: inputs could not be converted
    # [blocked.aml.py:11]
    # score = ParallelRunStepOperator(
    #     task_id="score",
    #     parallel_run_config=ParallelRunConfig(
    #         entry_script="score.py",
    #         source_directory="scoring",
    #         mini_batch_size="5",
    #         error_threshold=10,
    #         output_action="append_row",
    #     ),
    #     output=Output("scores"),
    # )
    # TODO(amlpipe convert): step 'report' written commented out: it reads from or runs after score, not
    # converted [blocked.aml.py:12]
    # report = PythonScriptStepOperator(
    #     task_id="report",
    #     script_name="report.py",
    #     arguments=["--scores", "{inputs.scores}"],
    #     inputs={"scores": score.output["scores"]},
    # )
    other = PythonScriptStepOperator(task_id="other", script_name="other.py")
