"""AML notebook "setup schedule for a published pipeline", ported: the datastore-change schedule.

AML's ``Schedule.create(..., datastore=..., path_on_datastore="incoming", polling_interval=5,
data_path_parameter_name="input_data")`` started the published pipeline when files were added to or changed in
the folder and gave the run the changed path as its data-path parameter. Here:

- ``schedule=[datastore_change_asset("amlpipe_default", "incoming", polling_interval=60)]``: the triggerer polls
  the folder (non-recursive, as AML) and starts **one run per settled set of changes** -- a burst of uploads is
  one run;
- the step's input is ``changed_data_path_input("input_data")``: the changed file (or the folder, for several)
  in a run started by a change, else the ``input_data`` Param (a manual or REST run, AML's default data path).

The time-based variant of the same notebook is ``aml_schedule``. Drop CSV files into ``incoming/`` of the
default datastore (``$AIRFLOW_HOME/amlpipe/datastore/incoming``) to start a run.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import (
    Output,
    PythonScriptStepOperator,
    changed_data_path_input,
    data_path_param,
    datastore_change_asset,
)

#: How often the triggerer looks, in seconds (AML's polling_interval was in minutes).
POLLING_INTERVAL = float(os.environ.get("AMLPIPE_EXAMPLE_POLLING_SECONDS", "60"))

with DAG(
    dag_id="aml_datastore_schedule",
    schedule=[datastore_change_asset("amlpipe_default", "incoming", polling_interval=POLLING_INTERVAL)],
    catchup=False,
    tags=["amlpipe", "example", "schedule"],
    doc_md=__doc__,
    params={"input_data": data_path_param("amlpipe_samples", "sample_input.csv", description="the data to count")},
):
    PythonScriptStepOperator(
        task_id="summarize",
        source_directory=str(Path(__file__).parent / "scripts" / "published"),
        script_name="summarize.py",
        arguments=["--input", "{inputs.input_data}", "--top", "3", "--out", "{outputs.summary}"],
        inputs={"input_data": changed_data_path_input("input_data")},
        outputs=[Output("summary")],
    )
