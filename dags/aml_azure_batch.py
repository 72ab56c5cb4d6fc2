"""AML notebook "how to use Azure Batch to run a Windows executable", ported.

An executable shipped in ``source_directory`` copies its input file into its output folder. With
``compute="local"`` (the default here) it runs on this machine; point ``AMLPIPE_BATCH_COMPUTE`` at
an ``amlpipe_azure_batch`` connection to run the same step as a task on a Batch pool: the code and
the input reach the node as resource files (SAS URLs of the staging Blob container), the output
folder comes back as output files and is committed as a version, exactly like a local step's.

On a Windows pool (the notebook's case) use the batch file instead of the shell script::

    AzureBatchStepOperator(
        task_id="copy", executable="copy.cmd", source_directory=SCRIPTS,
        arguments=["{inputs.input}", "{outputs.output}"], inputs=..., outputs=[Output("output")],
        compute="azure_batch", pool_id="amlpipe-windows", create_pool=True, vm_size="standard_d2s_v3",
        vm_image_urn="MicrosoftWindowsServer:WindowsServer:2022-datacenter-core",
        delete_batch_pool_after_finish=True,
    )
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import AzureBatchStepOperator, DataPath, Output

SCRIPTS = str(Path(__file__).parent / "scripts" / "azure_batch")
COMPUTE = os.environ.get("AMLPIPE_BATCH_COMPUTE", "local")

with DAG(dag_id="aml_azure_batch", schedule=None, catchup=False, tags=["amlpipe", "example", "batch"], doc_md=__doc__):
    AzureBatchStepOperator(
        task_id="copy",
        executable="copy.sh",
        source_directory=SCRIPTS,
        arguments=["{inputs.input}", "{outputs.output}"],
        inputs={"input": DataPath(datastore="amlpipe_samples", path="sample_input.csv")},
        outputs=[Output("output")],
        compute=COMPUTE,
        pool_id=os.environ.get("AMLPIPE_BATCH_POOL", "amlpipe-linux"),
        create_pool=True,
        vm_size="standard_d2s_v3",
        vm_image_urn="canonical:0001-com-ubuntu-server-jammy:22_04-lts",
        delete_batch_job_after_finish=True,
        delete_batch_pool_after_finish=True,
    )
