"""One mapping method per AML step class: its arguments onto the operator's."""

from __future__ import annotations

from typing import Any

from airflow_provider_amlpipe.convert.analysis import Obj
from airflow_provider_amlpipe.convert.model import SWEEP, Call, Step
from airflow_provider_amlpipe.convert.values import MapperBase, data_name, data_root, describe

#: What AML's DatabricksStep gave a new cluster when the code named none.
AML_SPARK_VERSION = "4.0.x-scala2.11"

AML_NODE_TYPE = "Standard_D3_v2"

#: DatabricksStep's library lists (besides ``jar_libraries``) and the AML class of their items.
DATABRICKS_LIBRARIES = {
    "pypi_libraries": "PyPiLibrary",
    "maven_libraries": "MavenLibrary",
    "egg_libraries": "EggLibrary",
    "rcran_libraries": "RCranLibrary",
}

#: AML library class -> (the Databricks API's library kind, the AML field holding its value).
LIBRARY_SHAPES = {
    "JarLibrary": ("jar", "library"),
    "EggLibrary": ("egg", "library"),
    "PyPiLibrary": ("pypi", "package"),
    "MavenLibrary": ("maven", "coordinates"),
    "RCranLibrary": ("cran", "package"),
}

#: Where each step kind's compute target goes: a connection of this type, or the worker (None).
COMPUTE_CONN = {"DatabricksStep": "amlpipe_databricks", "AzureBatchStep": "amlpipe_azure_batch"}

PARALLEL_CONFIG = (
    "entry_script", "source_directory", "mini_batch_size", "partition_keys", "error_threshold",
    "allowed_failed_count", "allowed_failed_percent", "output_action", "append_row_file_name",
    "process_count_per_node", "run_invocation_timeout", "run_max_try",
)  # fmt: skip


class StepKinds(MapperBase):
    """``_map_<AML class>(obj, step, fields)`` fills ``step.kwargs`` from the AML step's ``fields``."""

    def _map_PythonScriptStep(self, obj: Obj, step: Step, fields: dict[str, Any]) -> None:
        self._common(obj, step, fields)
        self._environment(obj, step, fields.pop("runconfig", None), step.kwargs)

    def _map_AdlaStep(self, obj: Obj, step: Step, fields: dict[str, Any]) -> None:
        compute = fields.pop("compute_target", None)
        if compute is not None:
            self.note(obj.line, "ADLA compute dropped: U-SQL runs on DuckDB on the worker (engine='spark' for Spark)")
        self._common(obj, step, fields)

    def _map_DatabricksStep(self, obj: Obj, step: Step, fields: dict[str, Any]) -> None:
        self._common(obj, step, fields)
        kwargs = step.kwargs
        if "existing_cluster_id" not in kwargs and "spark_version" not in kwargs:
            # AML's defaults for a new cluster; the runtime is retired on Databricks, so it is a TODO.
            kwargs["spark_version"] = AML_SPARK_VERSION
            self.todo(
                obj.line,
                f"spark_version: AML's default {AML_SPARK_VERSION!r} is retired; pick a current runtime",
                step,
            )
            if "node_type" not in kwargs and "instance_pool_id" not in kwargs:
                kwargs["node_type"] = AML_NODE_TYPE
        for name in ("python_script_params", "jar_params"):
            if fields.get(name) is not None:
                step.kwargs[name] = self.arguments(fields.pop(name), step)
        jars = fields.pop("jar_libraries", None) or []
        converted = [self._library("JarLibrary", j, step) for j in jars]
        if jars and None not in converted:
            kwargs["jar_libraries"] = [j["jar"] for j in converted if j is not None]
        libraries: list[Any] = []
        for name, aml in DATABRICKS_LIBRARIES.items():
            libraries += [self._library(aml, item, step) for item in fields.pop(name, None) or []]
        if libraries and None not in libraries:
            kwargs["libraries"] = libraries
        if "main_class_name" in kwargs and "jar_libraries" not in kwargs:
            kwargs["main_class_name"] = None  # a jar task without its jar: the step is written commented out

    def _library(self, aml: str, item: Any, step: Step) -> dict[str, Any] | None:
        """AML's ``PyPiLibrary(package=...)`` and the like as a library in the Databricks API's shape."""
        kind, field_name = LIBRARY_SHAPES[aml]
        fields = item.fields if isinstance(item, Obj) and item.fields.get("aml") == aml else None
        value = self.value(fields.get(field_name), field_name, step) if fields else None
        if fields is None or not isinstance(value, str):
            self.todo(getattr(item, "line", 0), f"{describe(item)}: expected {aml}({field_name}=...)", step)
            return None
        for other, given in fields.items():
            if other not in (field_name, "aml") and given is not None:
                self.todo(getattr(item, "line", 0), f"{aml}({other}=...): not converted", step)
        if kind in ("jar", "egg"):
            return {kind: value}
        return {kind: {("coordinates" if kind == "maven" else "package"): value}}

    def _map_AzureBatchStep(self, obj: Obj, step: Step, fields: dict[str, Any]) -> None:
        self._common(obj, step, fields)

    def _map_DataTransferStep(self, obj: Obj, step: Step, fields: dict[str, Any]) -> None:
        for name in ("source_data_reference", "destination_data_reference"):
            value = fields.pop(name, None)
            ref = self.transfer_ref(value, step)
            if ref is not None:
                step.kwargs[name] = ref
            else:
                self.todo(obj.line, f"{name}={describe(value)}: expected a DataReference or SqlDataReference", step)
        if fields.pop("compute_target", None) is not None:
            self.note(obj.line, "Data Factory compute dropped: the copy runs on the Airflow worker")

    def _map_ParallelRunStep(self, obj: Obj, step: Step, fields: dict[str, Any]) -> None:
        inputs = fields.pop("inputs", None)
        config = fields.pop("parallel_run_config", None)
        kwargs = step.kwargs
        if not isinstance(config, Obj) or config.kind != "parallel_run_config":
            self.todo(obj.line, f"parallel_run_config={describe(config)}: not a ParallelRunConfig", step)
        else:
            kwargs["parallel_run_config"] = self.parallel_config(config, step)
        tabular = False
        for item in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
            self.add_input(item, step)
            tabular = tabular or (isinstance(item, Obj) and item.fields.get("kind") == "tabular")
        side = fields.pop("side_inputs", None)
        if side:
            side_inputs: dict[str, Any] = {}
            for item in side:
                name, ref = self.input_ref(item, step)
                if ref is not None:
                    side_inputs[name] = ref
            kwargs["side_inputs"] = side_inputs
        output = next(iter(self.output_names.values()), None)
        kwargs["output"] = (
            self.output(next(o for o in self.an.objects if id(o) in self.output_names)) if output else None
        )
        if output is None:
            kwargs.pop("output")
            self.todo(obj.line, "ParallelRunStep has no output=PipelineData/OutputFileDatasetConfig", step)
        if fields.get("arguments") is not None:
            kwargs["arguments"] = self.arguments(fields.pop("arguments"), step)
        if tabular:
            kwargs["dataset_type"] = "tabular"
        elif isinstance(config, Obj) and config.fields.get("partition_keys"):
            self.todo(config.line, "partition_keys over a FileDataset (partitioned by folder): a ParallelRun"
                      " step partitions tables only here", step)  # fmt: skip
            kwargs["parallel_run_config"] = None

    def parallel_config(self, config: Obj, step: Step) -> Call:
        fields = dict(config.fields)
        fields.pop("aml", None)
        call = Call("ParallelRunConfig")
        for name in PARALLEL_CONFIG:
            if name in fields:
                value = self.value(fields.pop(name), name, step)
                call.kwargs[name] = (
                    self.rebase(value) if name == "source_directory" and isinstance(value, str) else value
                )
        node_count = fields.pop("node_count", 1)
        if node_count not in (1, None):
            self.todo(config.line, f"node_count={node_count!r}: the AML cluster becomes this worker (one node); for"
                      f" {node_count!r} nodes pass compute='<amlpipe_azure_batch connection>', pool_id=...,"
                      f" node_count={node_count!r} to ParallelRunConfig", step)  # fmt: skip
        fields.pop("compute_target", None)
        environment = fields.pop("environment", None)
        if environment is not None:
            self._environment(config, step, environment, call.kwargs)
        for leftover, value in fields.items():
            if value is not None:
                self.todo(config.line, f"ParallelRunConfig({leftover}=...): no counterpart", step)
        return call

    def _map_HyperDriveStep(self, obj: Obj, step: Step, fields: dict[str, Any]) -> None:
        kwargs = step.kwargs
        config = fields.pop("hyperdrive_config", None)
        for name in ("inputs",):
            for item in fields.pop(name, None) or []:
                self.add_input(item, step)
        metrics = fields.pop("metrics_output", None)
        for output in obj.fields.get("outputs") or []:
            training = data_root(output).fields.get("training_output") if isinstance(output, Obj) else None
            kind = training.fields.get("type") if isinstance(training, Obj) else None
            if kind == "Metrics" and metrics is None:
                metrics = output
            elif kind == "Model":
                model_file = training.fields.get("model_file") if isinstance(training, Obj) else None
                self.todo(output.line, f"output {data_name(output)!r} was the best trial's model file"
                          f" {model_file!r}: the trial script must write it into {{outputs.{data_name(output)}}}"
                          " (the best trial's outputs are the sweep's)", step)  # fmt: skip
        if isinstance(metrics, Obj):
            self.output_names.pop(id(data_root(metrics)), None)
        if not isinstance(config, Obj) or config.kind != "hyperdrive_config":
            self.todo(obj.line, f"hyperdrive_config={describe(config)}: not a HyperDriveConfig", step)
            return
        cfg = dict(config.fields)
        run = cfg.pop("run_config", None) or cfg.pop("estimator", None)
        trial = Call("ScriptTrial")
        script_arguments = fields.pop("estimator_entry_script_arguments", None)
        if isinstance(run, Obj) and run.kind in ("script_run_config", "estimator"):
            rf = dict(run.fields)
            rf.pop("aml", None)
            trial.kwargs["script_name"] = self.value(rf.pop("script", rf.pop("entry_script", None)), "script", step)
            source = self.value(rf.pop("source_directory", None), "source_directory", step)
            if isinstance(source, str):
                trial.kwargs["source_directory"] = self.rebase(source)
            arguments = rf.pop("arguments", None) or script_arguments or []
            params = rf.pop("script_params", None)
            if isinstance(params, dict):
                arguments = [x for k, v in params.items() for x in (k, v)]
            if arguments:
                trial.kwargs["arguments"] = self.arguments(arguments, step)
            rf.pop("compute_target", None)
            environment = rf.pop("environment", None) or rf.pop("run_config", None)
            if environment is not None:
                self._environment(run, step, environment, trial.kwargs)
            for leftover, value in rf.items():
                if value is not None:
                    self.todo(run.line, f"{run.kind}({leftover}=...): no counterpart in ScriptTrial", step)
        else:
            self.todo(obj.line, f"HyperDriveConfig run_config={describe(run)}: expected a ScriptRunConfig", step)
        if self.inputs:
            trial.kwargs["inputs"] = self.inputs
        kwargs["trial"] = trial
        for name in ("hyperparameter_sampling", "policy"):
            value = cfg.pop(name, None)
            if isinstance(value, Obj) and value.kind in ("sampling", "policy"):
                kwargs[name] = self.sweep_object(value, step)
            elif value is not None:
                self.todo(config.line, f"{name}={describe(value)}: not understood", step)
        for name in ("primary_metric_name", "primary_metric_goal", "max_total_runs", "max_concurrent_runs",
                     "max_duration_minutes"):  # fmt: skip
            if name in cfg:
                kwargs[name] = self.value(cfg.pop(name), name, step)
        cfg.pop("aml", None)
        for leftover, value in cfg.items():
            if value is not None:
                self.todo(config.line, f"HyperDriveConfig({leftover}=...): no counterpart", step)
        metrics_root = data_root(metrics) if isinstance(metrics, Obj) else None
        declared = self._declared_outputs(obj.fields.get("outputs"))
        trial_outputs = [o for o in declared if data_root(o) is not metrics_root]
        if trial_outputs:
            kwargs["outputs"] = [self.output(o) for o in trial_outputs]
        if isinstance(metrics, Obj):
            kwargs["metrics_output"] = data_name(metrics)
        model_output = fields.pop("model_output", None)
        if model_output is not None:
            self.todo(obj.line, "model_output: the best trial's outputs are the sweep's outputs here", step)

    def sweep_object(self, value: Obj, step: Step) -> Call:
        fields = {k: v for k, v in value.fields.items() if k != "aml"}
        aml = value.fields["aml"]
        call = Call(aml, module=SWEEP)
        if value.kind == "sampling":
            space = fields.pop("parameter_space", {})
            if isinstance(space, dict):
                call.args.append({k: self.value(v, "parameter_space", step) for k, v in space.items()})
            else:
                self.todo(value.line, f"parameter_space={describe(space)}: not a dict", step)
            fields.pop("properties", None)
        for name, item in fields.items():
            call.kwargs[name] = self.value(item, name, step)
        return call

    def _common(self, obj: Obj, step: Step, fields: dict[str, Any]) -> None:
        """inputs, arguments, params, compute: the same for most step kinds."""
        aml = obj.fields["aml"]
        for item in fields.pop("inputs", None) or []:
            self.add_input(item, step)
        if "arguments" in fields:
            arguments = self.arguments(fields.pop("arguments"), step)
            if arguments:
                step.kwargs["arguments"] = arguments
        params = fields.pop("params", None)
        if params:
            step.kwargs["step_params"] = self.value(params, "step_params", step)
        compute = fields.pop("compute_target", None)
        conn_type = COMPUTE_CONN.get(aml)
        if isinstance(compute, Obj) and compute.kind == "compute":
            name = compute.fields.get("name")
            if conn_type is not None and isinstance(name, str):
                step.kwargs["compute"] = name
                self.connection(name, conn_type, f"{aml} compute target {name!r}")
            elif conn_type is not None:
                self.todo(
                    obj.line, f"compute_target: its name is not known statically; pass compute=<{conn_type}>", step
                )
            else:
                self.note(
                    obj.line,
                    f"compute target {name or '(default)'!r} dropped: the step runs on the Airflow worker"
                    " (compute='local'); an Azure VM is an amlpipe_azure_vm connection with vm_name=",
                )
        elif isinstance(compute, str) and conn_type is not None:
            step.kwargs["compute"] = compute
            self.connection(compute, conn_type, f"{aml} compute target {compute!r}")
        elif isinstance(compute, str):
            self.note(
                obj.line, f"compute target {compute!r} dropped: the step runs on the Airflow worker (compute='local')"
            )
        elif compute is not None:
            self.todo(obj.line, f"compute_target={describe(compute)}: not understood", step)

    def _environment(self, obj: Obj, step: Step, value: Any, kwargs: dict[str, Any]) -> None:
        if value is None:
            return
        env = value.fields.get("environment", value) if isinstance(value, Obj) else value
        if not isinstance(env, Obj) or env.kind not in ("environment", "runconfig"):
            self.todo(obj.line, f"environment={describe(value)}: not understood", step)
            return
        if env.fields.get("aml") == "from_pip_requirements" and isinstance(env.fields.get("file_path"), str):
            kwargs["environment"] = Call("PythonEnvironment", kwargs={"requirements": env.fields["file_path"]})
            self.note(obj.line, "environment: the requirements file is read relative to the step's source_directory")
            return
        conda = env.fields.get("conda") or env.fields.get("conda_dependencies")
        if env.fields.get("aml") in ("from_conda_specification", "get"):
            self.todo(
                obj.line,
                "AML environment: give a pip requirements file, environment=PythonEnvironment(requirements=...)",
                step,
            )
        elif isinstance(conda, Obj):
            pip, packages = conda.fields.get("pip_packages"), conda.fields.get("conda_packages")
            self.todo(
                obj.line,
                f"conda dependencies (pip {pip!r}, conda {packages!r}): list them in a requirements file in the"
                " source_directory and pass environment=PythonEnvironment(requirements='requirements.txt')",
                step,
            )
        elif env.fields.get("user_managed") is True:
            self.note(obj.line, "user-managed dependencies: the step uses the worker's interpreter")
