"""``DatabricksStepOperator``: AML's DatabricksStep as an Airflow operator."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_amlpipe.compute.databricks_cluster import check_secret_conf, new_cluster, storage_key_conf
from airflow_provider_amlpipe.compute.remote import RemoteCompute
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.databricks import DatabricksHook, DatabricksSettings, local_dbfs_root
from airflow_provider_amlpipe.operators.remote import LOCAL, RemoteStepOperator
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.databricks import JAR, NOTEBOOK, SCRIPT, SCRIPT_PATH, TASK_FIELDS, DatabricksStep

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.databricks import DatabricksJobBackend

#: The arguments that describe a new cluster: refused together with ``existing_cluster_id``.
NEW_CLUSTER_FIELDS = (
    "spark_version",
    "node_type",
    "num_workers",
    "min_workers",
    "max_workers",
    "instance_pool_id",
    "spark_env_variables",
    "spark_conf",
    "init_scripts",
    "cluster_log_dbfs_path",
)
LIBRARY_KINDS = ("jar", "whl", "egg", "pypi", "maven", "cran", "requirements")


class DatabricksStepOperator(RemoteStepOperator):
    """Run a Databricks notebook, Python script or jar as a reusable, data-versioned step.

    Exactly one task kind, as in AML's ``DatabricksStep``:

    :param notebook_path: a notebook (Databricks ``.py`` source format or ``.ipynb``); locally a file,
        relative to the DAG file's folder. ``notebook_params`` are its widgets' values (templated).
    :param python_script_name: a script in ``source_directory`` (the folder is part of the fingerprint);
        ``python_script_params`` its arguments (templated; ``{inputs.X}`` / ``{outputs.X}`` allowed).
    :param python_script_path: a script by path (on a workspace: DBFS / a volume; locally: a file).
    :param main_class_name: the main class of a jar task; ``jar_params`` its arguments, ``jar_libraries``
        the jars (locally: files; the first is the one ``spark-submit`` runs, the others go on the class path).

    The pipeline's data reaches the task as AML passed it: a notebook gets one widget per input and
    output, named after it, holding its path; a script or jar gets ``--NAME path`` arguments after its own.

    The cluster, as in AML (checked, not part of the fingerprint): ``existing_cluster_id`` (with
    ``permit_cluster_restart``), or a new cluster's ``spark_version``, ``node_type``, ``num_workers`` or
    ``min_workers``/``max_workers``, ``spark_env_variables``, ``spark_conf``, ``init_scripts``,
    ``instance_pool_id``, ``cluster_log_dbfs_path``; ``libraries`` (Databricks library specs such as
    ``{"pypi": {"package": "x"}}``); ``timeout_seconds``; ``run_name``. Locally, ``spark_conf`` and
    ``spark_env_variables`` apply to the local Spark session and ``timeout_seconds`` stops the run.

    :param compute: ``"local"`` (the default: PySpark in local mode on this worker) or the id of an
        ``amlpipe_databricks`` connection: the step is then a one-time run (Jobs API 2.2 ``runs/submit``,
        idempotent per task instance) on the step's cluster or the connection's ``cluster_id``; inputs and
        outputs reach it as ``abfss://`` (or ``wasbs://``) URIs of the staging Blob container, so every input
        must be on Azure storage. A workspace ``python_script_path`` / jar (``dbfs:/``, ``/Volumes/``,
        ``/Workspace/``) is used in place and fingerprinted by its content; local code is uploaded per run.

    See :class:`AmlStepOperator` for ``inputs``, ``outputs``, ``datastore``, ``allow_reuse``.
    """

    template_fields: Sequence[str] = (
        *RemoteStepOperator.template_fields,
        "notebook_params",
        "python_script_params",
        "jar_params",
    )
    remote_kind = "Databricks"
    remote_job_pages = True
    ui_color = "#f6d7cf"

    def __init__(
        self,
        *,
        notebook_path: str | None = None,
        notebook_params: Mapping[str, Any] | None = None,
        python_script_name: str | None = None,
        source_directory: str | None = None,
        python_script_path: str | None = None,
        python_script_params: Sequence[Any] | None = None,
        main_class_name: str | None = None,
        jar_params: Sequence[Any] | None = None,
        jar_libraries: Sequence[Any] | None = None,
        existing_cluster_id: str | None = None,
        spark_version: str | None = None,
        node_type: str | None = None,
        num_workers: int | None = None,
        min_workers: int | None = None,
        max_workers: int | None = None,
        instance_pool_id: str | None = None,
        spark_env_variables: Mapping[str, Any] | None = None,
        spark_conf: Mapping[str, Any] | None = None,
        init_scripts: Sequence[Any] | None = None,
        cluster_log_dbfs_path: str | None = None,
        libraries: Sequence[Mapping[str, Any]] | None = None,
        timeout_seconds: int | None = None,
        permit_cluster_restart: bool = False,
        run_name: str | None = None,
        compute: str = LOCAL,
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[Output | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(compute=compute, inputs=inputs, outputs=outputs, **kwargs)
        given = {
            NOTEBOOK: notebook_path,
            SCRIPT: python_script_name,
            SCRIPT_PATH: python_script_path,
            JAR: main_class_name,
        }
        kinds = [kind for kind, value in given.items() if value is not None]
        names = ", ".join(TASK_FIELDS.values())
        if len(kinds) != 1:
            problem = (
                "no task given"
                if not kinds
                else f"{' and '.join(TASK_FIELDS[k] for k in kinds)} given together: a step runs one task"
            )
            raise ConfigurationError(
                "/".join(TASK_FIELDS.values()), problem, f"pass exactly one of {names} (one step per task)"
            )
        self.task_kind = kinds[0]
        field_name = TASK_FIELDS[self.task_kind]
        value = given[self.task_kind]
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(field_name, f"expected a non-empty string, got {value!r}", f"pass {field_name}")
        if source_directory is not None and self.task_kind != SCRIPT:
            raise ConfigurationError(
                "source_directory",
                "source_directory is only used with python_script_name (the script in that folder)",
                "pass python_script_name='<script>.py' with it, or drop source_directory",
            )
        if not self.remote and self.task_kind == SCRIPT_PATH and value.startswith(("/Volumes/", "/Workspace/")):
            raise ConfigurationError(
                "python_script_path",
                f"{value!r} is a workspace path, which compute='local' cannot read",
                "pass a local file path, a dbfs:/ path (the local DBFS root), or python_script_name + source_directory",
            )
        self.notebook_path = notebook_path
        self.python_script_name = python_script_name
        self.python_script_path = python_script_path
        self.main_class_name = main_class_name
        self.source_directory = self._resolve_source_directory(source_directory)
        if self.task_kind == SCRIPT:
            self._check_code_at_parse(self.source_directory, python_script_name, "Python script")
        self.notebook_params = _check_params("notebook_params", notebook_params, self.task_kind == NOTEBOOK)
        self.python_script_params = _check_args(
            "python_script_params", python_script_params, self.task_kind in (SCRIPT, SCRIPT_PATH)
        )
        self.jar_params = _check_args("jar_params", jar_params, self.task_kind == JAR)
        self.jar_libraries = _check_jars(jar_libraries, self.task_kind == JAR)
        data_names = {"an input": list(self.inputs), "an output": [o.name for o in self.outputs]}
        if self.task_kind == NOTEBOOK:
            # Inputs and outputs are widgets too: one name must mean one thing.
            config.check_name_clashes(
                "notebook_params",
                {"a notebook parameter": list(self.notebook_params), **data_names},
                "rename one of them: each input and output is a widget of that name",
            )
        else:
            config.check_name_clashes("inputs", data_names, "rename one of them: each is a --NAME argument")
            args.check(self.python_script_params or self.jar_params, self.inputs, [o.name for o in self.outputs])
        # The cluster: checked with compute="local" too, so the same DAG runs on a workspace by changing compute=.
        new_cluster = {
            "spark_version": spark_version, "node_type": node_type, "num_workers": num_workers,
            "min_workers": min_workers, "max_workers": max_workers, "instance_pool_id": instance_pool_id,
            "spark_env_variables": spark_env_variables, "spark_conf": spark_conf, "init_scripts": init_scripts,
            "cluster_log_dbfs_path": cluster_log_dbfs_path,
        }  # fmt: skip
        set_fields = [k for k in NEW_CLUSTER_FIELDS if new_cluster[k] is not None]
        if existing_cluster_id is not None:
            if not isinstance(existing_cluster_id, str) or not existing_cluster_id.strip():
                raise ConfigurationError(
                    "existing_cluster_id",
                    f"expected a cluster id, got {existing_cluster_id!r}",
                    "pass the cluster's id",
                )
            if set_fields:
                raise ConfigurationError(
                    "existing_cluster_id",
                    f"given together with new-cluster field(s) {', '.join(set_fields)}",
                    "either run on the existing cluster (drop those fields) or describe a new cluster"
                    " (drop existing_cluster_id)",
                )
        self.existing_cluster_id = existing_cluster_id
        for name in ("spark_version", "node_type", "instance_pool_id", "cluster_log_dbfs_path", "run_name"):
            text = new_cluster.get(name, run_name if name == "run_name" else None)
            if text is not None and (not isinstance(text, str) or not text.strip()):
                raise ConfigurationError(name, f"expected a non-empty string, got {text!r}", f"pass {name}='...'")
        self.spark_version, self.node_type, self.instance_pool_id = spark_version, node_type, instance_pool_id
        self.cluster_log_dbfs_path, self.run_name = cluster_log_dbfs_path, run_name
        self.num_workers = _check_count("num_workers", num_workers, minimum=0)
        self.min_workers = _check_count("min_workers", min_workers, minimum=0)
        self.max_workers = _check_count("max_workers", max_workers, minimum=1)
        if self.num_workers is not None and (self.min_workers is not None or self.max_workers is not None):
            raise ConfigurationError(
                "num_workers",
                "given together with autoscale bounds min_workers/max_workers",
                "pass num_workers for a fixed size, or min_workers and max_workers to autoscale, not both",
            )
        if (self.min_workers is None) != (self.max_workers is None):
            raise ConfigurationError(
                "min_workers/max_workers", "autoscaling needs both bounds", "pass min_workers and max_workers together"
            )
        if self.min_workers is not None and self.max_workers is not None and self.min_workers > self.max_workers:
            raise ConfigurationError(
                "min_workers",
                f"min_workers={self.min_workers} is above max_workers={self.max_workers}",
                "pass min_workers <= max_workers",
            )
        self.spark_env_variables = _check_strings("spark_env_variables", spark_env_variables)
        self.spark_conf = _check_strings("spark_conf", spark_conf)
        check_secret_conf("spark_conf", self.spark_conf)
        if self.remote and existing_cluster_id is None and set_fields:
            self._check_new_cluster()
        self.init_scripts = _check_list("init_scripts", init_scripts)
        self.libraries = _check_libraries(libraries)
        self.timeout_seconds = _check_count("timeout_seconds", timeout_seconds, minimum=1)
        self.permit_cluster_restart = config.check_bool("permit_cluster_restart", permit_cluster_restart)
        self._databricks_hook: DatabricksHook | None = None
        self._remote_compute: RemoteCompute | None = None

    def _check_new_cluster(self) -> None:
        """A new cluster on a workspace needs a runtime, a node type (or pool) and a size."""
        if self.spark_version is None:
            raise ConfigurationError(
                "spark_version", "a new cluster needs a Databricks runtime", "pass spark_version='15.4.x-scala2.12'"
            )
        if self.node_type is None and self.instance_pool_id is None:
            raise ConfigurationError(
                "node_type",
                "a new cluster needs a node type or an instance pool",
                "pass node_type= or instance_pool_id=",
            )
        if self.num_workers is None and self.min_workers is None:
            raise ConfigurationError(
                "num_workers",
                "a new cluster needs a size",
                "pass num_workers= (0: a single-node cluster), or min_workers= and max_workers= to autoscale",
            )

    def _hook(self) -> DatabricksHook:
        if self._databricks_hook is None:
            self._databricks_hook = DatabricksHook(self.compute)
        return self._databricks_hook

    def _cluster(self, settings: DatabricksSettings, account: str | None, suffix: str) -> dict[str, Any]:
        """The run's cluster: the step's existing or new cluster, else the connection's default cluster."""
        if self.existing_cluster_id is not None:
            return {"existing_cluster_id": self.existing_cluster_id}
        if self.spark_version is None:
            if settings.cluster_id is None:
                raise ConfigurationError(
                    "existing_cluster_id",
                    f"no cluster: the step names none and connection {self.compute!r} has no extra.cluster_id",
                    "pass existing_cluster_id=, describe a new cluster (spark_version, node_type, num_workers),"
                    " or set extra.cluster_id on the connection",
                )
            if self.spark_conf or self.spark_env_variables or self.init_scripts:
                raise ConfigurationError(
                    "spark_conf/spark_env_variables/init_scripts",
                    f"set for the connection's existing cluster {settings.cluster_id!r}, which they cannot change",
                    "describe a new cluster for them (spark_version, node_type, num_workers), or drop them",
                )
            return {"existing_cluster_id": settings.cluster_id}
        conf = dict(settings.storage_spark_conf)
        if settings.storage_key_secret is not None and account is not None:
            conf.update(storage_key_conf(account, suffix, settings.storage_key_secret))
        conf.update(self.spark_conf)
        return {
            "new_cluster": new_cluster(
                spark_version=self.spark_version, node_type=self.node_type, instance_pool_id=self.instance_pool_id,
                num_workers=self.num_workers, min_workers=self.min_workers, max_workers=self.max_workers,
                spark_conf=conf, spark_env_variables=self.spark_env_variables, init_scripts=self.init_scripts,
                cluster_log_dbfs_path=self.cluster_log_dbfs_path,
            )
        }  # fmt: skip

    def step_definition(self) -> DatabricksStep:
        definition = self._local_definition()
        if not self.remote:
            return definition
        settings = self._hook().get_settings()
        compute = self.remote_compute()
        # Code that lives in the workspace is fingerprinted by its content, read through the API.
        for ref in workspace_code(self.task_kind, self.python_script_path, self.jar_libraries):
            content = cast("DatabricksJobBackend", compute.backend).read_bytes(ref)
            definition.remote_code[ref] = hashlib.sha256(content).hexdigest()
        staging = compute.staging.datastore or self.datastore
        account, suffix = blob_account(staging)
        definition.cluster = self._cluster(settings, account, suffix)
        definition.permit_cluster_restart = self.permit_cluster_restart
        definition.libraries = list(self.libraries)
        definition.uri_scheme = settings.uri_scheme
        return definition

    def _local_definition(self) -> DatabricksStep:
        folder = self._dag_folder()
        return DatabricksStep(
            dbfs_root=None if self.remote else str(local_dbfs_root()),
            task_kind=self.task_kind,
            notebook_path=self.notebook_path,
            notebook_params={str(k): _text(v) for k, v in self.notebook_params.items()},
            python_script_name=self.python_script_name,
            source_directory=self._resolve_source_directory(self.source_directory),
            python_script_path=self.python_script_path,
            python_script_params=args.normalize(self.python_script_params),
            main_class_name=self.main_class_name,
            jar_params=args.normalize(self.jar_params),
            jar_libraries=list(self.jar_libraries),
            params=self.step_params,
            spark_conf=dict(self.spark_conf),
            spark_env_variables=dict(self.spark_env_variables),
            timeout_seconds=self.timeout_seconds,
            base_dir=None if folder is None else str(folder),
            job_name=self.run_name or f"{self.dag_id}.{self.task_id}",
        )

    def remote_compute(self) -> RemoteCompute:
        # One client per execution: the definition reads workspace code through it before the run is submitted.
        if self._remote_compute is None:
            self._remote_compute = self._hook().get_remote_compute()
        return self._remote_compute


def is_workspace_path(path: str) -> bool:
    """Whether a path names a file in a Databricks workspace (DBFS, a volume, workspace files)."""
    return path.startswith(("dbfs:", "/Volumes/", "/Workspace/"))


def workspace_code(task_kind: str, script_path: str | None, jars: Sequence[str]) -> list[str]:
    """The code files of a step that live in the workspace rather than on this machine."""
    paths = [script_path] if task_kind == SCRIPT_PATH and script_path else list(jars) if task_kind == JAR else []
    return [p for p in paths if is_workspace_path(p)]


def blob_account(conn_id: str) -> tuple[str | None, str]:
    """The storage account and endpoint suffix of an ``amlpipe_azure_blob`` datastore (``None`` if not Blob)."""
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
    from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver

    store = DatastoreResolver()(conn_id)
    if not isinstance(store, AzureBlobDatastore):
        return None, ""
    return store.account_name, store.endpoint_suffix


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_params(field: str, value: object, used: bool) -> dict[str, Any]:
    if value is None:
        return {}
    if not used:
        raise ConfigurationError(field, "only used with notebook_path", f"drop {field}, or run a notebook")
    params = config.check_mapping(field, value, "{'myparam': 'testparam'}")
    for key, item in params.items():
        if not isinstance(key, str) or not key:
            raise ConfigurationError(field, f"widget name {key!r} is not a string", "use string names")
        if not isinstance(item, (str, int, float, bool)):
            raise ConfigurationError(
                f"{field}[{key!r}]", f"a widget's value is text, got {config.a_type(item)}", "pass a string or number"
            )
    return params


def _check_args(field: str, value: object, used: bool) -> list[str]:
    if value is None:
        return []
    if not used:
        owner = "main_class_name" if field == "jar_params" else "python_script_name or python_script_path"
        raise ConfigurationError(field, f"only used with {owner}", f"drop {field}")
    try:
        return args.normalize(value)  # type: ignore[arg-type]
    except ConfigurationError as error:
        raise ConfigurationError(field, error.problem, error.fix) from None


def _check_jars(value: object, used: bool) -> list[str]:
    if value is None or (isinstance(value, Sequence) and not isinstance(value, str) and not value):
        if used:
            raise ConfigurationError(
                "jar_libraries",
                "a jar task needs the jar holding main_class_name",
                "pass jar_libraries=['path/to/app.jar'] (locally: files, the first is run by spark-submit)",
            )
        return []
    if not used:
        raise ConfigurationError("jar_libraries", "only used with main_class_name", "drop jar_libraries")
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigurationError("jar_libraries", f"expected a list, got {config.a_type(value)}", "pass a list of jars")
    jars = []
    for index, item in enumerate(value):
        path = item.get("jar") if isinstance(item, Mapping) else item
        if not isinstance(path, str) or not path.strip():
            raise ConfigurationError(
                f"jar_libraries[{index}]", f"expected a jar path or {{'jar': path}}, got {item!r}", "pass a path"
            )
        jars.append(path)
    return jars


def _check_count(field: str, value: object, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(field, f"expected a whole number from {minimum}, got {value!r}", f"pass {field}=<int>")
    return value


def _check_strings(field: str, value: object) -> dict[str, str]:
    if value is None:
        return {}
    mapping = config.check_mapping(field, value, "{'KEY': 'value'}")
    for key, item in mapping.items():
        if not isinstance(key, str) or not isinstance(item, (str, int, float, bool)):
            raise ConfigurationError(f"{field}[{key!r}]", f"expected text, got {config.a_type(item)}", "pass strings")
    return {k: _text(v) for k, v in mapping.items()}


def _check_list(field: str, value: object) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ConfigurationError(field, f"expected a list, got {config.a_type(value)}", f"pass {field}=[...]")
    return list(value)


def _check_libraries(value: object) -> list[dict[str, Any]]:
    libraries = []
    for index, item in enumerate(_check_list("libraries", value)):
        if not isinstance(item, Mapping) or len(item) != 1 or next(iter(item)) not in LIBRARY_KINDS:
            raise ConfigurationError(
                f"libraries[{index}]",
                f"{item!r} is not a Databricks library",
                f"pass one of {', '.join(LIBRARY_KINDS)}, e.g. {{'pypi': {{'package': 'requests'}}}}",
            )
        libraries.append(dict(item))
    return libraries
