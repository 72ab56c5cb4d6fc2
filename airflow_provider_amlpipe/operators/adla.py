"""``AdlaStepOperator``: AML's AdlaStep; U-SQL run locally (DuckDB, or Spark), as an ADLA job, or as Spark SQL
on Databricks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_amlpipe.compute.remote import RemoteCompute
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.adla import ADLA_CONN_TYPE
from airflow_provider_amlpipe.hooks.databricks import DATABRICKS_CONN_TYPE
from airflow_provider_amlpipe.operators.remote import LOCAL, RemoteStepOperator
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.adla import AdlaScriptStep
from airflow_provider_amlpipe.steps.usql_spark import UsqlSparkStep

__all__ = ["LOCAL", "AdlaStepOperator"]

DUCKDB, SPARK = "duckdb", "spark"
ENGINES = (None, DUCKDB, SPARK)


class AdlaStepOperator(RemoteStepOperator):
    """Run a U-SQL script as a reusable, data-versioned step.

    :param script_name: the ``.usql`` file, relative to ``source_directory`` (without one: relative
        to the folder of the DAG file).
    :param source_directory: the script's folder; a relative path is relative to the folder of the
        file that defines the DAG (``dag.folder``), never to the worker's current directory.
    :param degree_of_parallelism: the ADLA job's AUs (remote compute); DuckDB uses the worker's cores.
    :param priority: the ADLA job's priority (remote compute; lower runs first).
    :param runtime_version: part of the fingerprint, as another runtime could give other results.
    :param compute: ``"local"`` (DuckDB, the default) or an ``amlpipe_adla`` connection id: the
        script is then submitted as a job of that Azure Data Lake Analytics account, its inputs and
        outputs staged as ``wasb://`` URIs in the connection's ``extra.staging_datastore`` (or the
        step's datastore when that is on Azure Blob); see docs/usql.md.
        Or an ``amlpipe_databricks`` connection id: the script's Spark SQL translation runs as a Databricks
        run on the connection's ``cluster_id``, the data passed as ``abfss://`` URIs (docs/databricks.md).
    :param engine: what runs the script: ``None`` (the default: DuckDB locally, the service's own engine on
        a connection), ``"duckdb"`` or ``"spark"`` -- with ``compute="local"``, the Spark SQL translation on
        PySpark in local mode, exactly as a Databricks run would execute it.
    :param deferrable: with remote compute, wait for the job in the triggerer (no worker slot held);
        default Airflow's ``[operators] default_deferrable``.

    ``step_params`` (AML's ``params``; Airflow reserves that name) gives values for ``@@name@@``
    placeholders (templated); inputs and outputs are substituted by name too.
    """

    template_fields: Sequence[str] = (*RemoteStepOperator.template_fields, "script_name")
    remote_kind = "ADLA"
    remote_job_pages = True  # on a Databricks connection (engine="spark"), a run page

    def __init__(
        self,
        *,
        script_name: str,
        source_directory: str | None = None,
        degree_of_parallelism: int | None = None,
        priority: int = 1000,
        runtime_version: str | None = None,
        engine: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[Output | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.script_name = script_name
        self.source_directory = self._resolve_source_directory(source_directory)
        self._check_code_at_parse(self.source_directory, script_name, "U-SQL script")
        self.degree_of_parallelism = _check_count("degree_of_parallelism", degree_of_parallelism, optional=True)
        self.priority = _check_count("priority", priority)
        if runtime_version is not None and (not isinstance(runtime_version, str) or not runtime_version.strip()):
            raise ConfigurationError(
                "runtime_version", f"expected a runtime name, got {runtime_version!r}", "pass a string, or leave it out"
            )
        self.runtime_version = runtime_version
        if engine not in ENGINES:
            raise ConfigurationError(
                "engine", f"{engine!r} is not an engine", "pass engine='duckdb' or engine='spark', or leave it out"
            )
        self.engine = engine
        # @@name@@ stands for a parameter, an input or an output: one name may only mean one of them.
        config.check_name_clashes(
            "step_params",
            {
                "a step parameter": [k for k in self.step_params],
                "an input": list(self.inputs),
                "an output": [o.name for o in self.outputs],
            },
            "rename one of them: @@name@@ must be unambiguous",
        )

    def _service(self) -> str:
        """Where the script runs: ``duckdb`` / ``spark`` (this worker), ``adla`` or ``databricks`` (a connection)."""
        if not self.remote:
            return self.engine or DUCKDB
        from airflow.sdk import BaseHook

        conn_type = BaseHook.get_connection(self.compute).conn_type
        self.remote_kind = "Databricks" if conn_type == DATABRICKS_CONN_TYPE else "ADLA"
        service = {ADLA_CONN_TYPE: "adla", DATABRICKS_CONN_TYPE: "databricks"}.get(conn_type or "")
        if service is None:
            raise ConfigurationError(
                f"compute (connection {self.compute!r})",
                f"connection type {conn_type!r} cannot run U-SQL",
                f"use an {ADLA_CONN_TYPE} or {DATABRICKS_CONN_TYPE} connection, or compute='local'",
            )
        wanted = {"adla": None, "databricks": SPARK}[service]
        if self.engine not in (None, wanted):
            raise ConfigurationError(
                "engine",
                f"engine={self.engine!r} cannot run on connection {self.compute!r} ({conn_type})",
                "leave engine out for a connection: ADLA runs U-SQL, Databricks runs its Spark translation",
            )
        return service

    def step_definition(self) -> AdlaScriptStep:
        folder = self._dag_folder()
        common: dict[str, Any] = {
            "script_name": self.script_name,
            "source_directory": self._resolve_source_directory(self.source_directory),
            "base_dir": None if folder is None else str(folder),
            "params": self.step_params,
            "runtime_version": self.runtime_version,
            "job_name": f"{self.dag_id}.{self.task_id}",
            "priority": self.priority,
            "degree_of_parallelism": self.degree_of_parallelism,
        }
        service = self._service()
        if service in (DUCKDB, "adla"):
            return AdlaScriptStep(**common)
        if service == SPARK:
            return UsqlSparkStep(**common)
        from airflow_provider_amlpipe.hooks.databricks import DatabricksHook

        settings = DatabricksHook(self.compute).get_settings()
        if settings.cluster_id is None:
            raise ConfigurationError(
                f"compute (connection {self.compute!r}) extra.cluster_id",
                "not set: a U-SQL step runs on the connection's cluster",
                "set extra.cluster_id to the id of a cluster of that workspace",
            )
        cluster = {"existing_cluster_id": settings.cluster_id}
        return UsqlSparkStep(**common, cluster=cluster, uri_scheme=settings.uri_scheme)

    def remote_compute(self) -> RemoteCompute:
        if self._service() == "databricks":
            from airflow_provider_amlpipe.hooks.databricks import DatabricksHook

            return DatabricksHook(self.compute).get_remote_compute()
        from airflow_provider_amlpipe.hooks.adla import AdlaHook

        return AdlaHook(self.compute).get_remote_compute()


def _check_count(field: str, value: object, *, optional: bool = False) -> int | None:
    """A whole number from 1 (not a bool); ``None`` where ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(field, f"expected a whole number from 1, got {value!r}", f"pass {field}=<int>")
    return value
