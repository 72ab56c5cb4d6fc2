from azureml.core import Dataset, Workspace
from azureml.pipeline.core import Pipeline, PipelineData
from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence
from azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep, PythonScriptStep

ws = Workspace.from_config()
images = Dataset.File.from_files(path="https://example.com/images/*.jpg").as_named_input("images")
scores = PipelineData("scores")
config = ParallelRunConfig(entry_script="score.py", source_directory="scoring", mini_batch_size="5",
                           error_threshold=10, output_action="append_row", node_count=1)
score = ParallelRunStep(name="score", parallel_run_config=config, inputs=[images], output=scores)
report = PythonScriptStep(name="report", script_name="report.py", arguments=["--scores", scores], inputs=[scores])
other = PythonScriptStep(name="other", script_name="other.py")
pipeline = Pipeline(ws, [report, other])
published = pipeline.publish("scoring")
every_other_day = ScheduleRecurrence(frequency="Day", interval=2, hours=[22], minutes=[30])
Schedule.create(ws, name="nightly", pipeline_id=published.id, experiment_name="scoring", recurrence=every_other_day)
