"""What each AML constructor and method call builds (an :class:`~.analysis.Obj`), or why it is reported.

Arguments are bound to AML's parameter names (positional ones by AML's signatures below), so the
mapping to operators in :mod:`.mapping` reads them by name.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from airflow_provider_amlpipe.convert.analysis import INTERACTIVE, AmlName, Analyzer, Obj, Unknown

#: AML's positional parameters, by constructor (only those code passes positionally in practice).
POSITIONAL: dict[str, tuple[str, ...]] = {
    "Workspace": ("subscription_id", "resource_group", "workspace_name"),
    "Experiment": ("workspace", "name"),
    "Datastore": ("workspace", "name"),
    "Datastore.get": ("workspace", "datastore_name"),
    "ComputeTarget": ("workspace", "name"),
    "ComputeTarget.create": ("workspace", "name", "provisioning_configuration"),
    "ComputeTarget.attach": ("workspace", "name", "attach_configuration"),
    "PipelineData": ("name", "datastore", "output_name", "output_mode", "output_path_on_compute"),
    "OutputFileDatasetConfig": ("name", "destination", "source"),
    "DataReference": ("datastore", "data_reference_name", "path_on_datastore", "mode", "path_on_compute"),
    "DataPath": ("datastore", "path_on_datastore", "name"),
    "DataPathComputeBinding": ("mode", "path_on_compute", "overwrite"),
    "PipelineParameter": ("name", "default_value"),
    "PythonScriptStep": ("script_name", "name", "arguments", "compute_target", "runconfig"),
    "Pipeline": ("workspace", "steps", "description"),
    "StepSequence": ("steps",),
    "ScheduleRecurrence": ("frequency", "interval", "start_time", "time_zone", "hours", "minutes", "week_days"),
    "Schedule.create": ("workspace", "name", "pipeline_id", "experiment_name", "recurrence", "description"),
    "Dataset.get_by_name": ("workspace", "name", "version"),
    "from_files": ("path", "validate"),
    "from_delimited_files": ("path", "validate"),
    "from_parquet_files": ("path", "validate"),
    "from_json_lines_files": ("path", "validate"),
    "RandomParameterSampling": ("parameter_space",),
    "GridParameterSampling": ("parameter_space",),
    "BayesianParameterSampling": ("parameter_space",),
    "BanditPolicy": ("evaluation_interval", "slack_factor", "slack_amount", "delay_evaluation"),
    "MedianStoppingPolicy": ("evaluation_interval", "delay_evaluation"),
    "TruncationSelectionPolicy": ("truncation_percentage", "evaluation_interval", "delay_evaluation"),
    "TrainingOutput": ("type", "model_file"),
    "DatasetConsumptionConfig": ("name", "dataset", "mode", "path_on_compute"),
    "JarLibrary": ("library",),
    "EggLibrary": ("library",),
    "PyPiLibrary": ("package", "repo"),
    "MavenLibrary": ("coordinates", "repo", "exclusions"),
    "RCranLibrary": ("package", "repo"),
    "ScriptRunConfig": ("source_directory", "script", "arguments", "run_config"),
    "Estimator": ("source_directory",),
    "Environment": ("name",),
    "Environment.from_pip_requirements": ("name", "file_path"),
    "Environment.from_conda_specification": ("name", "file_path"),
    "Environment.get": ("workspace", "name", "version"),
    "SqlDataReference": ("datastore", "data_reference_name", "sql_table", "sql_query", "sql_stored_procedure"),
    "RunDetails": ("run_instance",),
    "as_named_input": ("name",),
    "as_input": ("name",),
    "register_on_complete": ("name", "description", "tags"),
    "run_after": ("step",),
    "submit": ("config", "tags"),
    "path": ("path", "data_reference_name", "mode"),
    "register": ("workspace", "name"),
    "add_pip_package": ("pip_package",),
    "add_conda_package": ("conda_package",),
}

STEPS = (
    "PythonScriptStep",
    "AdlaStep",
    "DatabricksStep",
    "AzureBatchStep",
    "DataTransferStep",
    "HyperDriveStep",
    "ParallelRunStep",
)
SAMPLINGS = ("RandomParameterSampling", "GridParameterSampling", "BayesianParameterSampling")
POLICIES = ("BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy", "NoTerminationPolicy")
EXPRESSIONS = (
    "choice",
    "randint",
    "uniform",
    "quniform",
    "loguniform",
    "qloguniform",
    "normal",
    "qnormal",
    "lognormal",
    "qlognormal",
)
COMPUTE_KINDS = {
    "AmlCompute": "aml",
    "ComputeInstance": "aml",
    "DatabricksCompute": "databricks",
    "AdlaCompute": "adla",
    "BatchCompute": "batch",
    "DataFactoryCompute": "datafactory",
    "RemoteCompute": "remote",
    "HDInsightCompute": "hdinsight",
    "KustoCompute": "kusto",
    "SynapseCompute": "synapse",
}
ESTIMATORS = ("Estimator", "TensorFlow", "PyTorch", "SKLearn", "Chainer")
DATASET_FACTORIES = {
    "from_files": "file",
    "from_delimited_files": "tabular",
    "from_parquet_files": "tabular",
    "from_json_lines_files": "tabular",
}
#: Datastore registrations: the Airflow connection type that replaces each.
REGISTRATIONS = {
    "register_azure_blob_container": "amlpipe_azure_blob",
    "register_azure_data_lake_gen2": "amlpipe_adls_gen2",
    "register_azure_file_share": "amlpipe_local",
    "register_azure_sql_database": "mssql",
    "register_azure_postgre_sql": "postgres",
    "register_azure_my_sql": "mysql",
}
#: Objects whose every unhandled method is interactive (inspects or drives a run): dropped with a note.
INTERACTIVE_KINDS = (
    "workspace", "experiment", "run", "published", "schedule", "schedule_def", "compute", "widget", "endpoint",
    "auth",
)  # fmt: skip


def bind(key: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """AML's arguments by name: positional ones named by :data:`POSITIONAL` (``_argN`` if unknown)."""
    names = POSITIONAL.get(key, ())
    bound = {names[i] if i < len(names) else f"_arg{i}": value for i, value in enumerate(args)}
    bound.update(kwargs)
    return bound


def known_name(name: str) -> bool:
    """Whether ``name`` (from a ``from azureml... import *``) is one the rules know."""
    return (
        name in POSITIONAL
        or name in STEPS
        or name in SAMPLINGS
        or name in POLICIES
        or name in EXPRESSIONS
        or name in COMPUTE_KINDS
        or name in ("PrimaryMetricGoal", "HyperDriveConfig", "ParallelRunConfig", "TimeZone", "Schedule")
    )


def construct(an: Analyzer, func: AmlName, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """A call of an imported AML name: a constructor, a class method or a module function."""
    parts = func.path.split(".")
    short, qualified = parts[-1], ".".join(parts[-2:])
    handler = _CONSTRUCTORS.get(qualified) or _CONSTRUCTORS.get(short)
    if handler is None and short in DATASET_FACTORIES:
        handler = _dataset_factory
    if handler is None and len(parts) >= 2 and parts[-2] in COMPUTE_KINDS:
        handler = _compute_config
    if handler is None:
        an.todo(node, f"`{qualified}`: no counterpart in this provider; port this part by hand")
        return Unknown(an.text(node), node.lineno)
    return handler(an, node, bind(qualified if qualified in POSITIONAL else short, args, kwargs), func)


def method(an: Analyzer, owner: Obj, name: str, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """A method of an AML object the code built."""
    handler = _METHODS.get((owner.kind, name)) or _METHODS.get(("*", name))
    if handler is not None:
        return handler(an, owner, node, bind(name, args, kwargs))
    if owner.kind in INTERACTIVE_KINDS:
        an.note(node, f"`{an.text(node)}` dropped: {INTERACTIVE}")
        return an.new("run", node)
    an.todo(node, f"`{an.text(node)}`: {owner.kind}.{name}() has no counterpart; port it by hand")
    return Unknown(an.text(node), node.lineno)


def get_attribute(an: Analyzer, owner: Obj, name: str, node: ast.AST) -> Any:
    if owner.kind == "workspace" and name in ("datastores", "compute_targets"):
        return an.new(f"ws_{name}", node)
    if owner.kind == "step" and name == "name":
        return owner.fields.get("name", Unknown(an.text(node), getattr(node, "lineno", 0)))
    if owner.kind in ("pipeline", "published") and name == "id":
        return owner
    if owner.kind == "datastore" and name == "name":
        return owner.fields["name"]
    return Unknown(an.text(node), getattr(node, "lineno", 0))


def get_item(an: Analyzer, owner: Obj, key: Any, node: ast.AST) -> Any:
    if owner.kind in INTERACTIVE_KINDS and owner.kind not in ("workspace",):
        return an.new("run", node)  # find_step_run(...)[0], get_children()[1]: still a run
    if owner.kind == "ws_datastores" and isinstance(key, str):
        return an.new("datastore", node, name=key)
    if owner.kind == "ws_compute_targets" and isinstance(key, str):
        return an.new("compute", node, name=key, kind=None)
    return Unknown(an.text(node), getattr(node, "lineno", 0))


def set_attribute(an: Analyzer, owner: Obj, path: str, value: Any, node: ast.AST) -> None:
    """``run_config.environment.python.conda_dependencies = ...`` and the like."""
    if owner.kind in ("runconfig", "environment"):
        env = owner if owner.kind == "environment" else _runconfig_env(an, owner, node)
        tail = path.removeprefix("environment.") if owner.kind == "runconfig" else path
        if path == "environment" and isinstance(value, Obj) and value.kind == "environment":
            owner.fields["environment"] = value
            return
        if tail == "python.conda_dependencies" and isinstance(value, Obj):
            env.fields["conda"] = value
            return
        if path == "target" and owner.kind == "runconfig":
            owner.fields["target"] = value
            return
        if tail.startswith("spark."):
            an.note(node, f"`{path}` dropped: a Python step runs no Spark session of AML's")
            return
        if tail.startswith("docker."):
            an.note(node, f"`{path}` dropped: steps run in a PythonEnvironment on the worker, not in Docker")
            return
        if tail == "python.user_managed_dependencies":
            env.fields["user_managed"] = value
            return
    an.todo(node, f"`{an.text(node)}`: setting {owner.kind}.{path} has no counterpart; port it by hand")


def _runconfig_env(an: Analyzer, runconfig: Obj, node: ast.AST) -> Obj:
    env = runconfig.fields.get("environment")
    if not isinstance(env, Obj):
        env = an.new("environment", node)
        runconfig.fields["environment"] = env
    return env


# -- constructors ------------------------------------------------------------------------------
Constructor = Callable[[Analyzer, ast.Call, dict[str, Any], AmlName], Any]


def _simple(kind: str, note: str | None = None) -> Constructor:
    def build(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
        if note:
            an.note(node, note)
        return an.new(kind, node, **fields, aml=func.short)

    return build


def _dropped(reason: str, kind: str = "run") -> Constructor:
    def build(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
        an.note(node, f"`{an.text(node)}` dropped: {reason}")
        return an.new(kind, node)

    return build


def _datastore(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    name = fields.get("name", fields.get("datastore_name"))
    return an.new("datastore", node, name=name)


def _register_datastore(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    name = fields.get("datastore_name", fields.get("_arg1"))
    conn_type = REGISTRATIONS.get(func.short)
    if conn_type is None:
        an.todo(node, f"`Datastore.{func.short}`: no datastore connection type replaces it; port it by hand")
    else:
        an.note(
            node,
            f"datastore {name!r} is an Airflow connection of type {conn_type} here; create it (see the"
            " connections comment block) instead of registering it",
        )
    return an.new("datastore", node, name=name, conn_type=conn_type, registered=True)


def _compute(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    return an.new("compute", node, name=fields.get("name"), kind=COMPUTE_KINDS.get(func.short))


def _compute_config(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    parent = func.path.split(".")[-2]
    return an.new("compute_config", node, kind=COMPUTE_KINDS.get(parent), **fields)


def _compute_create(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    config = fields.get("provisioning_configuration", fields.get("attach_configuration"))
    kind = config.fields.get("kind") if isinstance(config, Obj) else None
    return an.new("compute", node, name=fields.get("name"), kind=kind)


def _dataset_factory(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    return an.new("dataset", node, kind=DATASET_FACTORIES[func.short], path=fields.get("path"), factory=func.short)


def _pipeline_data(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    return an.new("data", node, **fields, aml=func.short)


def _hyperdrive_config(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    return an.new("hyperdrive_config", node, **fields)


def _aml_constant(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    return an.new(func.short, node, **fields)


def _consumption(an: Analyzer, node: ast.Call, fields: dict[str, Any], func: AmlName) -> Any:
    """``DatasetConsumptionConfig(name, dataset_or_parameter, mode)``: that data, as input ``name``."""
    data = fields.get("dataset")
    if not isinstance(data, Obj):
        an.todo(node, f"`{an.text(node)}`: the dataset is not known statically")
        return Unknown(an.text(node), node.lineno)
    copy = an.new(data.kind, node, **data.fields)
    copy.fields["base"] = data.fields.get("base", data)
    copy.fields["input_name"] = fields.get("name")
    return copy


_CONSTRUCTORS: dict[str, Constructor] = {
    "Workspace": _simple("workspace"),
    "Workspace.from_config": _simple("workspace"),
    "Workspace.get": _simple("workspace"),
    "Workspace.create": _simple("workspace"),
    "Experiment": _simple("experiment"),
    "Datastore": _datastore,
    "Datastore.get": _datastore,
    **{f"Datastore.{name}": _register_datastore for name in REGISTRATIONS},
    "ComputeTarget": _compute,
    **dict.fromkeys(COMPUTE_KINDS, _compute),
    "ComputeTarget.create": _compute_create,
    "ComputeTarget.attach": _compute_create,
    "RunConfiguration": _simple("runconfig"),
    "CondaDependencies": _simple("conda"),
    "CondaDependencies.create": _simple("conda"),
    "Environment": _simple("environment"),
    "Environment.from_pip_requirements": _simple("environment"),
    "Environment.from_conda_specification": _simple("environment"),
    "Environment.get": _simple("environment"),
    "PipelineData": _pipeline_data,
    "OutputFileDatasetConfig": _pipeline_data,
    "DataReference": _simple("data_ref"),
    "DataPath": _simple("data_path"),
    "DataPathComputeBinding": _simple("binding"),
    "PipelineParameter": _simple("param"),
    "Dataset.get_by_name": _simple("registered_dataset"),
    "SqlDataReference": _simple("sql_ref"),
    **{name: _simple("step") for name in STEPS},
    "StepSequence": _simple("sequence"),
    "Pipeline": _simple("pipeline"),
    "PublishedPipeline.get": _dropped(
        "a published pipeline is the DAG itself here (trigger it over REST)", "published"
    ),
    "PipelineEndpoint.get": _dropped("a pipeline endpoint is the DAG itself here (trigger it over REST)", "endpoint"),
    "PipelineEndpoint.publish": _dropped(
        "a pipeline endpoint is the DAG itself here (trigger it over REST)", "endpoint"
    ),
    "Schedule.create": _simple("schedule_def"),
    "Schedule.list": _dropped("a DAG has one schedule, set in the DAG file", "schedule"),
    "Schedule.get": _dropped("a DAG has one schedule, set in the DAG file", "schedule"),
    "ScheduleRecurrence": _simple("recurrence"),
    "HyperDriveConfig": _hyperdrive_config,
    **{name: _simple("sampling") for name in SAMPLINGS},
    **{name: _simple("policy") for name in POLICIES},
    **{name: _aml_constant for name in EXPRESSIONS},
    "ScriptRunConfig": _simple("script_run_config"),
    **{name: _simple("estimator") for name in ESTIMATORS},
    "ParallelRunConfig": _simple("parallel_run_config"),
    "RunDetails": _dropped(INTERACTIVE, "widget"),
    **{
        name: _dropped("Airflow's REST API authenticates with its own tokens (docs/migrating-from-aml.md)", "auth")
        for name in ("InteractiveLoginAuthentication", "ServicePrincipalAuthentication", "MsiAuthentication")
    },
    "TrainingOutput": _simple("training_output"),
    **{
        name: _simple("db_library")
        for name in ("JarLibrary", "EggLibrary", "PyPiLibrary", "MavenLibrary", "RCranLibrary")
    },
    "DatasetConsumptionConfig": _consumption,
    "Run.get_context": _dropped("a step's script reads its run through airflow_provider_amlpipe.runtime"),
    **{name: _dropped(INTERACTIVE) for name in ("PipelineRun", "StepRun", "Run", "Run.get", "PipelineRun.get")},
    **{
        f"{owner}.{method}": _dropped("the DAG itself is the published pipeline and its schedule", "published")
        for owner in ("PublishedPipeline", "PipelineEndpoint", "Schedule")
        for method in ("list", "get_all", "get_schedules_for_pipeline_id", "get_schedules_for_pipeline_endpoint_id")
    },
}


# -- methods -----------------------------------------------------------------------------------
Method = Callable[[Analyzer, Obj, ast.Call, dict[str, Any]], Any]


def _same(note: str | None = None) -> Method:
    def same(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
        if note:
            an.note(node, note)
        return owner

    return same


def _derived(**extra: str) -> Method:
    """A copy of the data object with ``extra`` fields taken from the call (``as_named_input('x')``)."""

    def derived(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
        copy = an.new(owner.kind, node, **owner.fields)
        copy.fields["base"] = owner.fields.get("base", owner)
        copy.var = owner.var
        for target, source in extra.items():
            if source in fields:
                copy.fields[target] = fields[source]
        return copy

    return derived


def _mode(mode: str) -> Method:
    def set_mode(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
        copy = _derived()(an, owner, node, fields)
        copy.fields["mode"] = mode
        if fields.get("path_on_compute") is not None:
            an.note(node, "path_on_compute dropped: a step gets each input's local path as {inputs.NAME}")
        return copy

    return set_mode


def _run_after(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
    owner.fields.setdefault("_run_after", []).append(fields.get("step"))
    return None


def _get_output(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
    return an.new("step_output", node, step=owner)


def _submit(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
    pipeline = owner if owner.kind == "pipeline" else fields.get("config")
    if isinstance(pipeline, Obj) and pipeline.kind == "pipeline":
        pipeline.fields["submitted"] = True
        regenerate = fields.get("regenerate_outputs")
        if regenerate is True:
            an.note(
                node,
                'regenerate_outputs=True: trigger the DAG with conf {"amlpipe": {"regenerate_outputs": true}}'
                " to rerun every step",
                in_dag=True,
            )
        parameters = fields.get("pipeline_parameters")
        if isinstance(parameters, dict) and parameters:
            an.note(node, f"pipeline_parameters {parameters!r}: trigger the DAG with these as its conf", in_dag=True)
        an.note(node, "submit: the DAG runs when triggered (UI, `airflow dags trigger`, REST) or on its schedule")
    return an.new("run", node)


def _publish(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
    owner.fields["published"] = fields
    an.note(
        node,
        "publish: the DAG is the published pipeline; trigger it over REST at POST /api/v2/dags/{dag_id}/dagRuns"
        " or AML's body at POST /amlpipe/aml/pipelines/{dag_id}/submit (docs/migrating-from-aml.md)",
        in_dag=True,
    )
    return an.new("published", node, pipeline=owner)


def _add_package(field_name: str) -> Method:
    def add(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
        value = next(iter(fields.values()), None)
        owner.fields.setdefault(field_name, [])
        if isinstance(owner.fields[field_name], list):
            owner.fields[field_name].append(value)
        return None

    return add


def _datastore_path(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
    return an.new(
        "data_ref", node, datastore=owner, path_on_datastore=fields.get("path"),
        data_reference_name=fields.get("data_reference_name"),
    )  # fmt: skip


def _upload(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
    an.note(node, f"`{an.text(node)}` dropped: put the data in the datastore connection's storage once, by hand")
    return None


def _register_dataset(an: Analyzer, owner: Obj, node: ast.Call, fields: dict[str, Any]) -> Any:
    owner.fields["registered_as"] = fields.get("name")
    an.note(
        node,
        f"Dataset registered as {fields.get('name')!r}: the DAG reads its path directly; a step output"
        " registers a versioned dataset with Output(..., register_as=...)",
    )
    return owner


_METHODS: dict[tuple[str, str], Method] = {
    ("workspace", "get_default_datastore"): lambda an, o, n, f: an.new("datastore", n, name=None, default=True),
    ("workspace", "get_default_compute_target"): lambda an, o, n, f: an.new("compute", n, name=None, kind="aml"),
    ("datastore", "path"): _datastore_path,
    ("datastore", "as_mount"): _same(),
    ("datastore", "as_download"): _same(),
    ("datastore", "upload"): _upload,
    ("datastore", "upload_files"): _upload,
    ("data", "as_input"): _derived(input_name="name"),
    ("data", "as_dataset"): _derived(),
    ("data", "as_mount"): _mode("mount"),
    ("data", "as_download"): _mode("download"),
    ("data", "as_upload"): _mode("upload"),
    ("data", "register_on_complete"): lambda an, o, n, f: _register_output(o, f),
    ("data", "read_delimited_files"): _derived(),
    ("data", "read_parquet_files"): _derived(),
    ("data", "parse_delimited_files"): _derived(),
    ("data", "parse_parquet_files"): _derived(),
    ("dataset", "as_named_input"): _derived(input_name="name"),
    ("registered_dataset", "as_named_input"): _derived(input_name="name"),
    ("dataset", "as_mount"): _mode("mount"),
    ("dataset", "as_download"): _mode("download"),
    ("registered_dataset", "as_mount"): _mode("mount"),
    ("registered_dataset", "as_download"): _mode("download"),
    ("dataset", "register"): _register_dataset,
    ("param", "as_mount"): _mode("mount"),
    ("param", "as_download"): _mode("download"),
    ("data_ref", "as_mount"): _mode("mount"),
    ("data_ref", "as_download"): _mode("download"),
    ("step", "run_after"): _run_after,
    ("step", "get_output"): _get_output,
    ("step", "validate"): _same("validate() dropped: the DAG is checked when Airflow parses it"),
    ("sequence", "validate"): _same("validate() dropped: the DAG is checked when Airflow parses it"),
    ("pipeline", "validate"): lambda an, o, n, f: an.note(
        n, "validate() dropped: the DAG is checked when Airflow parses it (`airflow dags list-import-errors`)"
    ),
    ("pipeline", "submit"): _submit,
    ("experiment", "submit"): _submit,
    ("pipeline", "publish"): _publish,
    ("conda", "add_pip_package"): _add_package("pip_packages"),
    ("conda", "add_conda_package"): _add_package("conda_packages"),
}


def _register_output(owner: Obj, fields: dict[str, Any]) -> Obj:
    owner.fields["register_as"] = fields.get("name")
    return owner
