"""A U-SQL step run on Spark: its Spark SQL translation (``translate --to spark``) as a Databricks run.

ADLA is retired; this is its users' path to Databricks. The script is the same, with the same ``@@name@@``
inputs, outputs and parameters; what runs is the translation, by a small runner
(:mod:`airflow_provider_amlpipe.databricks.sql_script`) that executes each statement with ``spark.sql``
and turns each output folder Spark writes into the single file U-SQL's ``OUTPUT`` wrote. On a workspace the
data is passed as ``abfss://`` URIs of the staging container; locally (``engine="spark"``) the same runner
runs on PySpark in local mode, so the translation is exercised end to end.

A construct the translation refuses fails the step before anything is submitted, naming it and its line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_amlpipe.compute.base import Invocation
from airflow_provider_amlpipe.databricks import sql_script
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.steps.adla import AdlaScriptStep, local_input
from airflow_provider_amlpipe.steps.databricks import local_invocation
from airflow_provider_amlpipe.steps.runner import StepWorkspace

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.staging import StagingLayout
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore

KIND = "usql_spark"
RUNNER = Path(sql_script.__file__)


@dataclass
class UsqlSparkStep(AdlaScriptStep):
    """A U-SQL script run as Spark SQL (on a Databricks cluster, or on local PySpark)."""

    #: On a workspace: the run's cluster (Jobs API fields) and how staged data is addressed.
    cluster: dict[str, Any] = field(default_factory=dict)
    uri_scheme: str = "abfss"
    timeout_seconds: int | None = None

    def translate(self, input_names: list[str], output_names: list[str]) -> str:
        """The script's Spark SQL, a marker where each input's and output's path goes (filled in by the
        runner from its arguments, so the SQL does not change from run to run)."""
        from airflow_provider_amlpipe.usql import UsqlError, translate_to_spark

        values = {name: str(value) for name, value in self.params.items()}
        values.update({name: sql_script.marker(name) for name in [*input_names, *output_names]})
        try:
            return translate_to_spark(self.render_with(values), source_name=self.script_name)
        except UsqlError as error:
            raise ConfigurationError(
                "script_name",
                f"the U-SQL script cannot run on Spark: {error.render()}",
                "rewrite that construct, or run the step on DuckDB (compute='local' without engine='spark')",
            ) from None

    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        super().validate(input_names, output_names)
        self.translate(input_names, output_names)  # a refused construct fails before anything is staged

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        # Another engine may compute other bytes (float formatting...): not interchangeable with DuckDB's outputs.
        return {**super().fingerprint_parts(hasher), "kind": KIND}

    @staticmethod
    def runner_arguments(inputs: Mapping[str, str], outputs: Mapping[str, str]) -> list[str]:
        """``--input NAME=PATH`` / ``--output NAME=PATH`` for the runner."""
        return [
            *(arg for name, path in inputs.items() for arg in ("--input", f"{name}={path}")),
            *(arg for name, path in outputs.items() for arg in ("--output", f"{name}={path}")),
        ]

    def invocation(self, workspace: StepWorkspace) -> Invocation:
        sql = workspace.root / "script.sql"
        sql.write_text(self.translate(list(workspace.inputs), list(workspace.outputs)), encoding="utf-8")
        inputs = {name: str(local_input(path)) for name, path in workspace.inputs.items()}
        outputs = {name: str(folder / name) for name, folder in workspace.outputs.items()}
        task = {
            "kind": "python",
            "path": str(RUNNER),
            "args": ["--sql", str(sql), *self.runner_arguments(inputs, outputs)],
        }
        return local_invocation(workspace, task, {}, {}, self.timeout_seconds)

    def remote_spec(self, layout: StagingLayout, store: AzureBlobDatastore, job_id: str) -> dict[str, Any]:
        """The Databricks run: the runner and the translated script uploaded, the data's URIs as arguments."""
        uris = self.remote_values(layout, store, self.uri_scheme)
        inputs = {name: uris[name] for name in layout.inputs}
        outputs = {name: uris[name] for name in layout.outputs}
        return {
            "run_name": self.job_name or "amlpipe",
            "timeout_seconds": self.timeout_seconds,
            "cluster": self.cluster,
            "permit_cluster_restart": False,
            "libraries": [],
            "code": {
                "code/sql_script.py": {"path": str(RUNNER), "as": "file"},
                "code/script.sql": {"text": self.translate(list(inputs), list(outputs)), "as": "file"},
            },
            "remote_paths": {},
            "task_kind": "python",
            "entry": {"code": "code/sql_script.py"},
            "parameters": self.runner_arguments(inputs, outputs),
        }
