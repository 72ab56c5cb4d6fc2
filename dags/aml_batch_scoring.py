"""AML notebook "batch scoring" (ParallelRunStep), ported: score images with a classifier, in parallel.

``train`` fits a scikit-learn classifier on half of the digits data set that ships with scikit-learn;
``make_images`` writes the other half as PNG files (the images to score) and their true labels;
``score`` is a ParallelRun step whose AML-style entry script loads the model in ``init()`` and labels
each mini-batch of PNG paths in ``run()``, the rows appended into one file in input order; ``check``
measures the accuracy against the true labels and fails below ``min_accuracy``.

Each image's label is recorded under the image's content and the model's: rerun with more images
(``step_params={"count": ...}`` of ``make_images``) and only the new ones are scored.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import Output, ParallelRunConfig, ParallelRunStepOperator, PythonScriptStepOperator

SCRIPTS = Path(__file__).parent / "scripts" / "batch_scoring"

with DAG(
    dag_id="aml_batch_scoring",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example"],
    doc_md=__doc__,
):
    train = PythonScriptStepOperator(
        task_id="train",
        source_directory=str(SCRIPTS / "train"),
        script_name="train.py",
        arguments=["--model", "{outputs.model}"],
        outputs=[Output("model")],
    )
    make_images = PythonScriptStepOperator(
        task_id="make_images",
        source_directory=str(SCRIPTS / "images"),
        script_name="make_images.py",
        arguments=["--images", "{outputs.images}", "--labels", "{outputs.labels}"],
        outputs=[Output("images"), Output("labels")],
        step_params={"count": 300},
    )
    score = ParallelRunStepOperator(
        task_id="score",
        parallel_run_config=ParallelRunConfig(
            entry_script="score.py",
            source_directory=str(SCRIPTS / "score"),
            mini_batch_size="20",
            error_threshold=0,
            output_action="append_row",
            append_row_file_name="parallel_run_step.txt",
            process_count_per_node=2,
            run_invocation_timeout=120,
        ),
        inputs={"digit_images": make_images.output["images"]},
        side_inputs={"model": train.output},
        arguments=["--model", "{inputs.model}"],
        output=Output("scores"),
    )
    check = PythonScriptStepOperator(
        task_id="check",
        source_directory=str(SCRIPTS / "check"),
        script_name="check.py",
        arguments=["--scores", "{inputs.scores}", "--labels", "{inputs.labels}", "--report", "{outputs.report}"],
        inputs={"scores": score.output, "labels": make_images.output["labels"]},
        outputs=[Output("report")],
        step_params={"min_accuracy": 0.9},
    )
