"""What a DAG file pays to import the provider: the step kinds that run on the worker load no cloud SDK.

A DAG file is parsed by the dag processor and again by every task process that runs one of its tasks, so a
0.4 s import of the Azure Storage SDK (what importing ``PythonScriptStepOperator`` cost while the remote
staging code imported it eagerly) is paid per task. The SDKs load when a datastore or compute of theirs is used.
"""

from __future__ import annotations

import os
import subprocess
import sys

#: Each name, imported alone in a fresh interpreter, must not load any of these.
SDKS = ("azure.storage.blob", "azure.storage.filedatalake", "azure.batch", "azure.mgmt.compute", "azure.identity",
        "databricks.sdk", "duckdb", "pyarrow", "optuna")  # fmt: skip
NAMES = ("PythonScriptStepOperator", "ParallelRunStepOperator", "AdlaStepOperator", "DatabricksStepOperator",
         "DataTransferStepOperator", "SqlDataReference", "HyperDriveStepOperator", "ScriptTrial",
         "AzureBatchStepOperator", "StepReuseSensor", "StepCommitOperator", "Output", "DataPath", "step")  # fmt: skip

#: Imports each name in turn in one fresh interpreter; prints ``name:sdk`` for each SDK a name loaded first.
_PROBE = """
import sys
import airflow_provider_amlpipe as p
import airflow_provider_amlpipe.sweep  # the sampling classes, policies and expressions a sweep's DAG file builds
names, sdks = sys.argv[1].split(","), sys.argv[2].split(",")
print(" ".join(f"import:{m}" for m in sdks if m in sys.modules))
for name in names:
    before = {m for m in sdks if m in sys.modules}
    getattr(p, name)
    print(" ".join(f"{name}:{m}" for m in sdks if m in sys.modules and m not in before))
"""


def test_importing_the_operators_loads_no_cloud_sdk() -> None:
    probe = [sys.executable, "-c", _PROBE, ",".join(NAMES), ",".join(SDKS)]
    result = subprocess.run(probe, capture_output=True, text=True, env=os.environ.copy(), check=True)
    assert result.stdout.split() == []
