"""AML notebook "style transfer" (ParallelRunStep), ported: style every frame of a video, in parallel.

``make_video`` generates a short clip with sound (ffmpeg test patterns); ``split`` cuts it into PNG
frames and its audio track with ffmpeg; ``train_style`` trains a small feed-forward style network on
PyTorch (CPU) for a few dozen steps, towards a style image it generates itself, with perceptual
losses from a fixed random convolutional network -- no pretrained weights are downloaded (the AML
notebook used pretrained models, which this machine cannot fetch); ``stylize`` is a ParallelRun step
whose entry script runs the network on each frame (one frame per mini-batch, ``summary_only``, as in
the notebook); ``stitch`` puts the styled frames and the audio back into an mp4 at the input's frame
rate. ffmpeg is the binary shipped in the imageio-ffmpeg wheel; PyTorch and it come with the
``style-transfer`` extra.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import Output, ParallelRunConfig, ParallelRunStepOperator, PythonScriptStepOperator

SCRIPTS = Path(__file__).parent / "scripts" / "style_transfer"

with DAG(
    dag_id="aml_style_transfer",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example"],
    doc_md=__doc__,
):
    make_video = PythonScriptStepOperator(
        task_id="make_video",
        source_directory=str(SCRIPTS / "video"),
        script_name="make_video.py",
        arguments=["--video", "{outputs.video}"],
        outputs=[Output("video")],
        step_params={"seconds": 2, "fps": 10},
    )
    split = PythonScriptStepOperator(
        task_id="split",
        source_directory=str(SCRIPTS / "split"),
        script_name="split.py",
        arguments=["--video", "{inputs.video}", "--frames", "{outputs.frames}", "--audio", "{outputs.audio}"],
        inputs={"video": make_video.output},
        outputs=[Output("frames"), Output("audio")],
    )
    train_style = PythonScriptStepOperator(
        task_id="train_style",
        source_directory=str(SCRIPTS / "train"),
        script_name="train_style.py",
        arguments=["--frames", "{inputs.frames}", "--model", "{outputs.model}"],
        inputs={"frames": split.output["frames"]},
        outputs=[Output("model")],
        step_params={"steps": 80},
    )
    stylize = ParallelRunStepOperator(
        task_id="stylize",
        parallel_run_config=ParallelRunConfig(
            entry_script="stylize.py",
            source_directory=str(SCRIPTS / "stylize"),
            mini_batch_size="1",
            error_threshold=1,
            output_action="summary_only",
            process_count_per_node=2,
            run_invocation_timeout=120,
        ),
        inputs={"frames": split.output["frames"]},
        side_inputs={"model": train_style.output},
        arguments=["--model", "{inputs.model}", "--output_dir", "{outputs.styled}"],
        output=Output("styled"),
    )
    stitch = PythonScriptStepOperator(
        task_id="stitch",
        source_directory=str(SCRIPTS / "stitch"),
        script_name="stitch.py",
        arguments=["--frames", "{inputs.frames}", "--audio", "{inputs.audio}", "--video", "{outputs.video}"],
        inputs={"frames": stylize.output, "audio": split.output["audio"]},
        outputs=[Output("video")],
    )
