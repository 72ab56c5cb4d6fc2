from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence, TimeZone
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
train_step = PythonScriptStep(name="train", script_name="train.py", source_directory="scripts/train")
pipeline = Pipeline(workspace=ws, steps=[train_step])
published_pipeline = pipeline.publish(name="My_New_Pipeline", description="My Published Pipeline Description")

recurrence = ScheduleRecurrence(
    frequency="Week", interval=1, week_days=["Monday"], hours=[22], minutes=[30], time_zone=TimeZone.PacificStandardTime,
    start_time="2025-01-01T00:00:00",
)
schedule = Schedule.create(
    workspace=ws,
    name="My_Schedule",
    pipeline_id=published_pipeline.id,
    experiment_name="Schedule_Run",
    recurrence=recurrence,
    description="Schedule Run",
)
schedules = Schedule.list(ws)
schedule.disable(wait_for_provisioning=True)
