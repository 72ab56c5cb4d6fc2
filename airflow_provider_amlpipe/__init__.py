"""airflow-provider-amlpipe: Azure Machine Learning Pipelines' ideas for Apache Airflow.

Steps of several kinds on mixed compute, named and strictly versioned data between them, and
step reuse, so a rerun executes only what changed. The public names are importable from here
lazily, so ``import airflow_provider_amlpipe.runtime`` in a step's script does not load Airflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AdlaStepOperator": "airflow_provider_amlpipe.operators.adla",
    "AzureBatchStepOperator": "airflow_provider_amlpipe.operators.azure_batch",
    "AzureVMDeallocateOperator": "airflow_provider_amlpipe.operators.azure_vm",
    "AzureVMPowerOffOperator": "airflow_provider_amlpipe.operators.azure_vm",
    "AzureVMScaleSetScaleOperator": "airflow_provider_amlpipe.operators.azure_vm",
    "AzureVMStartOperator": "airflow_provider_amlpipe.operators.azure_vm",
    "DataPath": "airflow_provider_amlpipe.data.refs",
    "DataTransferStepOperator": "airflow_provider_amlpipe.operators.transfer",
    "DatabricksStepOperator": "airflow_provider_amlpipe.operators.databricks",
    "DatastoreChangeSensor": "airflow_provider_amlpipe.sensors.datastore_change",
    "DataRef": "airflow_provider_amlpipe.data.refs",
    "DatasetInput": "airflow_provider_amlpipe.data.refs",
    "HyperDriveStepOperator": "airflow_provider_amlpipe.operators.hyperdrive",
    "Output": "airflow_provider_amlpipe.data.refs",
    "ParallelRunConfig": "airflow_provider_amlpipe.parallel.config",
    "ParallelRunStepOperator": "airflow_provider_amlpipe.operators.parallel_run",
    "PythonEnvironment": "airflow_provider_amlpipe.compute.environment",
    "PythonScriptStepOperator": "airflow_provider_amlpipe.operators.python_script",
    "ScriptTrial": "airflow_provider_amlpipe.operators.hyperdrive",
    "StepCommitOperator": "airflow_provider_amlpipe.operators.commit",
    "ScheduleRecurrence": "airflow_provider_amlpipe.schedules",
    "SqlDataReference": "airflow_provider_amlpipe.transfer.refs",
    "StepReuseSensor": "airflow_provider_amlpipe.sensors.reuse",
    "changed_data_path_input": "airflow_provider_amlpipe.params",
    "data_path_input": "airflow_provider_amlpipe.params",
    "data_path_param": "airflow_provider_amlpipe.params",
    "datastore_change_asset": "airflow_provider_amlpipe.schedules",
    "recurrence_timetable": "airflow_provider_amlpipe.schedules",
    "step": "airflow_provider_amlpipe.decorators",
}

__all__ = [
    "AdlaStepOperator",
    "AzureBatchStepOperator",
    "AzureVMDeallocateOperator",
    "AzureVMPowerOffOperator",
    "AzureVMScaleSetScaleOperator",
    "AzureVMStartOperator",
    "DataPath",
    "DataRef",
    "DataTransferStepOperator",
    "DatabricksStepOperator",
    "DatasetInput",
    "DatastoreChangeSensor",
    "HyperDriveStepOperator",
    "Output",
    "ParallelRunConfig",
    "ParallelRunStepOperator",
    "PythonEnvironment",
    "PythonScriptStepOperator",
    "ScheduleRecurrence",
    "ScriptTrial",
    "SqlDataReference",
    "StepCommitOperator",
    "StepReuseSensor",
    "__version__",
    "changed_data_path_input",
    "data_path_input",
    "data_path_param",
    "datastore_change_asset",
    "recurrence_timetable",
    "step",
]

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.environment import PythonEnvironment
    from airflow_provider_amlpipe.data.refs import DataPath, DataRef, DatasetInput, Output
    from airflow_provider_amlpipe.decorators import step
    from airflow_provider_amlpipe.operators.adla import AdlaStepOperator
    from airflow_provider_amlpipe.operators.azure_batch import AzureBatchStepOperator
    from airflow_provider_amlpipe.operators.azure_vm import (
        AzureVMDeallocateOperator,
        AzureVMPowerOffOperator,
        AzureVMScaleSetScaleOperator,
        AzureVMStartOperator,
    )
    from airflow_provider_amlpipe.operators.commit import StepCommitOperator
    from airflow_provider_amlpipe.operators.databricks import DatabricksStepOperator
    from airflow_provider_amlpipe.operators.hyperdrive import HyperDriveStepOperator, ScriptTrial
    from airflow_provider_amlpipe.operators.parallel_run import ParallelRunStepOperator
    from airflow_provider_amlpipe.operators.python_script import PythonScriptStepOperator
    from airflow_provider_amlpipe.operators.transfer import DataTransferStepOperator
    from airflow_provider_amlpipe.parallel.config import ParallelRunConfig
    from airflow_provider_amlpipe.params import changed_data_path_input, data_path_input, data_path_param
    from airflow_provider_amlpipe.schedules import ScheduleRecurrence, datastore_change_asset, recurrence_timetable
    from airflow_provider_amlpipe.sensors.datastore_change import DatastoreChangeSensor
    from airflow_provider_amlpipe.sensors.reuse import StepReuseSensor
    from airflow_provider_amlpipe.transfer.refs import SqlDataReference


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'airflow_provider_amlpipe' has no attribute {name!r}")
