"""data_dependency: converted by `amlpipe convert` from data_dependency.ipynb."""

# Airflow connections this DAG needs (create them before it runs):
#   workspaceblobstore: amlpipe_local / amlpipe_azure_blob / amlpipe_adls_gen2 (replaces AML datastore 'workspaceblobstore')

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_provider_amlpipe import DataPath, Output, PythonScriptStepOperator, data_path_input, data_path_param

with DAG(
    dag_id="data_dependency",
    schedule=None,
    params={
        "compare_data": data_path_param("workspaceblobstore", "20newsgroups/20news.pkl"),
        "pipeline_param": Param(10, type="integer"),
    },
    tags=["amlpipe", "converted"],
):
    # TODO(amlpipe convert): the cell writes 'note.txt' (%%writefile): save that cell as note.txt beside the
    # notebook [data_dependency.ipynb:cell 16:line 1]
    # TODO(amlpipe convert): conda dependencies (pip None, conda ['scikit-learn']): list them in a requirements
    # file in the source_directory and pass environment=PythonEnvironment(requirements='requirements.txt')
    # [data_dependency.ipynb:cell 9:line 1]
    trainStep = PythonScriptStepOperator(
        task_id="trainStep",
        script_name="train.py",
        source_directory="data_dependency",
        arguments=["--input_data", "{inputs.test_data}", "--output_train", "{outputs.processed_data1}"],
        inputs={"test_data": DataPath(datastore="workspaceblobstore", path="20newsgroups/20news.pkl")},
        outputs=[Output("processed_data1")],
        datastore="workspaceblobstore",
    )
    extractStep = PythonScriptStepOperator(
        task_id="extractStep",
        script_name="extract.py",
        source_directory="data_dependency",
        arguments=["--input_extract", "{inputs.processed_data1}", "--output_extract", "{outputs.processed_data2}"],
        inputs={"processed_data1": trainStep.output["processed_data1"]},
        outputs=[Output("processed_data2")],
        datastore="workspaceblobstore",
    )
    compareStep = PythonScriptStepOperator(
        task_id="compareStep",
        script_name="compare.py",
        source_directory="data_dependency",
        arguments=[
            "--compare_data1",
            "{inputs.compare_data}",
            "--compare_data2",
            "{inputs.processed_data2}",
            "--output_compare",
            "{outputs.processed_data3}",
            "--pipeline_param",
            "{{ params.pipeline_param }}",
        ],
        inputs={
            "compare_data": data_path_input("compare_data"),
            "processed_data2": extractStep.output["processed_data2"],
        },
        outputs=[Output("processed_data3")],
        datastore="workspaceblobstore",
    )
