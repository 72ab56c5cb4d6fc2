"""From the analysed AML objects to the :class:`~.model.PipelineModel`: operators, data links, Params."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.convert.analysis import AmlName, Analyzer, Obj, Unknown
from airflow_provider_amlpipe.convert.model import (
    PROVIDER,
    SDK,
    SWEEP,
    Call,
    Code,
    Connection,
    Issue,
    PipelineModel,
    Step,
    StepOutputRef,
)
from airflow_provider_amlpipe.convert.rules import EXPRESSIONS

DEFAULT_DATASTORE = "amlpipe_default"
#: Checks ScheduleRecurrence keyword arguments: the problem, or None (the Airflow shell provides it).
RecurrenceCheck = Callable[[dict[str, Any]], "str | None"]
#: What AML's DatabricksStep gave a new cluster when the code named none.
AML_SPARK_VERSION = "4.0.x-scala2.11"
AML_NODE_TYPE = "Standard_D3_v2"
#: Step arguments passed on under the same name, by AML step class.
SAME_NAME: dict[str, tuple[str, ...]] = {
    "PythonScriptStep": ("script_name", "source_directory", "allow_reuse"),
    "AdlaStep": (
        "script_name", "source_directory", "degree_of_parallelism", "priority", "runtime_version", "allow_reuse",
    ),
    "DatabricksStep": (
        "notebook_path", "notebook_params", "python_script_name", "source_directory", "python_script_path",
        "main_class_name", "existing_cluster_id", "spark_version",
        "node_type", "num_workers", "min_workers", "max_workers", "instance_pool_id", "spark_env_variables",
        "spark_conf", "init_scripts", "cluster_log_dbfs_path", "timeout_seconds", "permit_cluster_restart",
        "run_name", "allow_reuse",
    ),
    "AzureBatchStep": (
        "executable", "source_directory", "pool_id", "create_pool", "vm_size", "vm_image_urn", "target_compute_nodes",
        "delete_batch_job_after_finish", "delete_batch_pool_after_finish", "is_positive_exit_code_failure",
        "run_task_as_admin", "allow_reuse",
    ),
    "DataTransferStep": ("source_reference_type", "destination_reference_type", "allow_reuse"),
    "HyperDriveStep": ("allow_reuse",),
    "ParallelRunStep": ("allow_reuse",),
}  # fmt: skip
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
#: Calls in a step's arguments that name code of their own.
CODE_HOLDERS = ("ScriptTrial", "ParallelRunConfig")
#: What each operator cannot do without (``a|b``: one of them).
REQUIRED = {
    "PythonScriptStepOperator": ("script_name",),
    "AdlaStepOperator": ("script_name",),
    "DatabricksStepOperator": ("notebook_path|python_script_name|python_script_path|main_class_name",),
    "AzureBatchStepOperator": ("executable",),
    "DataTransferStepOperator": ("source_data_reference", "destination_data_reference"),
    "HyperDriveStepOperator": (
        "trial", "hyperparameter_sampling", "primary_metric_name", "primary_metric_goal", "max_total_runs",
    ),
    "ParallelRunStepOperator": ("parallel_run_config", "inputs", "output"),
}  # fmt: skip
#: Step kinds whose code AML took from the pipeline's default folder when the step named none.
DEFAULT_SOURCE_KINDS = ("PythonScriptStep", "AdlaStep", "AzureBatchStep")
#: ``Pipeline(...)`` arguments the mapping reads (``submitted`` / ``published`` are set by the rules).
PIPELINE_FIELDS = (
    "aml", "workspace", "steps", "description", "default_source_directory", "continue_on_step_failure",
    "default_datastore", "resolve_closure", "submitted", "published",
)  # fmt: skip
#: Step arguments with nothing to do here, and why.
DROPPED = {
    "hash_paths": "the whole source_directory is fingerprinted (AML had deprecated hash_paths)",
    "version": "a step's fingerprint covers its whole definition",
}
#: PipelineData arguments with no counterpart on ``Output``, and why that is faithful.
OUTPUT_DROPPED = {
    "output_mode": "a step writes its output to the local folder {outputs.NAME}; it is committed after",
    "output_overwrite": "every run commits a new version; nothing is overwritten",
    "is_directory": "an output is a folder",
    "pipeline_output_name": "a step's outputs are its XCom and dataset versions",
    "output_name": "the output is named by its PipelineData name",
}
OPERATORS = {
    "PythonScriptStep": "PythonScriptStepOperator",
    "AdlaStep": "AdlaStepOperator",
    "DatabricksStep": "DatabricksStepOperator",
    "AzureBatchStep": "AzureBatchStepOperator",
    "DataTransferStep": "DataTransferStepOperator",
    "HyperDriveStep": "HyperDriveStepOperator",
    "ParallelRunStep": "ParallelRunStepOperator",
}
#: Step arguments whose values are templated, so a PipelineParameter may become ``{{ params.x }}``.
TEMPLATED = ("arguments", "step_params", "notebook_params", "python_script_params", "jar_params")
PARAM_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
#: Where each step kind's compute target goes: a connection of this type, or the worker (None).
COMPUTE_CONN = {"DatabricksStep": "amlpipe_databricks", "AzureBatchStep": "amlpipe_azure_batch"}
PARALLEL_CONFIG = (
    "entry_script", "source_directory", "mini_batch_size", "partition_keys", "error_threshold",
    "allowed_failed_count", "allowed_failed_percent", "output_action", "append_row_file_name",
    "process_count_per_node", "run_invocation_timeout", "run_max_try",
)  # fmt: skip


class Mapper:
    """Builds the model; every problem becomes an :class:`Issue` on the analyzer (so it has a line)."""

    def __init__(
        self,
        an: Analyzer,
        dag_id: str,
        rebase: Callable[[str], str],
        where: Callable[[int], str],
        check_recurrence: RecurrenceCheck | None = None,
        locate: Callable[[str], Path] | None = None,
    ) -> None:
        self.an = an
        self.check_recurrence = check_recurrence
        #: Where a folder named in the DAG is on this machine (to see a step's script is there).
        self.locate = locate
        self.where = where
        self.rebase = rebase
        self.model = PipelineModel(dag_id=dag_id, source="")
        self.steps: dict[int, Step] = {}  # id(Obj) -> Step
        self.producers: dict[int, tuple[Obj, str]] = {}  # id(data root) -> (step obj, output name)
        self.changed_param: str | None = None
        self.current: Obj | None = None
        #: Pipeline(default_source_directory=...): the folder of steps that name none.
        self.default_source: str | None = None
        #: The TODOs written at a step; the others go at the top of the DAG.
        self.placed: set[Issue] = set()

    # -- reporting ---------------------------------------------------------------------------
    def todo(self, line: int, message: str, step: Step | None = None) -> None:
        issue = Issue(line, message, todo=True)
        self.an.issues.append(issue)
        if step is not None:
            self.placed.add(issue)
            step.todos.append(f"{message} [{self.where(line)}]")

    def note(self, line: int, message: str, *, in_dag: bool = False) -> None:
        self.an.issues.append(Issue(line, message, todo=False, in_dag=in_dag))

    # -- the pipeline ------------------------------------------------------------------------
    def build(self) -> PipelineModel:
        objs = self.an.objects
        self._schedule([o for o in objs if o.kind == "schedule_def"])
        for pipeline in (o for o in objs if o.kind == "pipeline"):
            self._pipeline_settings(pipeline)
        chosen = self._pipeline_steps([o for o in objs if o.kind == "pipeline"]) or [
            o for o in objs if o.kind == "step" and "base" not in o.fields
        ]
        for obj in chosen:
            for produced, name in self._outputs_of(obj):
                self.producers[id(_root(produced))] = (obj, name)
        used: set[str] = set()
        for index, obj in enumerate(chosen):
            var = _identifier(obj.var or f"step_{index + 1}")
            while var in used or var in ("dag", "DAG", "Param"):
                var += "_"
            used.add(var)
            aml = obj.fields.get("aml", "")
            task_id = obj.fields.get("name")
            task_id = re.sub(r"[^A-Za-z0-9_.-]", "_", task_id) if isinstance(task_id, str) else var
            self.steps[id(obj)] = Step(var, OPERATORS[aml], task_id, obj.line)
        for obj in chosen:
            self._step(obj)
        self.model.steps = [self.steps[id(o)] for o in chosen]
        self._block_incomplete(self.model.steps)
        return self.model

    def _block_incomplete(self, steps: list[Step]) -> None:
        """Comment out a step missing what its operator requires, and every step that reads from it or runs
        after it: the DAG still parses, and nothing is guessed."""
        for step in steps:
            for name in [k for k, v in step.kwargs.items() if v is None]:
                del step.kwargs[name]  # unknown: left to the operator's default, reported already
            required = REQUIRED[step.operator]
            missing = [r for r in required if r not in step.kwargs and "|" not in r]
            for choice in (r for r in required if "|" in r):
                if not any(c in step.kwargs for c in choice.split("|")):
                    missing.append(choice.replace("|", " / "))
            trial = step.kwargs.get("trial")
            if isinstance(trial, Call) and trial.kwargs.get("script_name") is None:
                missing.append("trial script")
            if missing:
                step.blocked = f"{', '.join(missing)} could not be converted"
            absent = self._absent_code(step)
            if absent and not step.blocked:
                step.blocked = f"{absent} is not there (the operator checks it when the DAG is parsed)"
        blocked = {s.var for s in steps if s.blocked}
        changed = True
        while changed:
            changed = False
            for step in steps:
                reads = (step.upstream() | set(step.after)) & blocked
                if step.blocked is None and reads:
                    step.blocked = f"it reads from or runs after {', '.join(sorted(reads))}, not converted"
                    blocked.add(step.var)
                    changed = True
        for step in steps:
            if step.blocked:
                self.todo(step.line, f"step {step.task_id!r} written commented out: {step.blocked}", step)

    def _absent_code(self, step: Step) -> str | None:
        """The step's script, when the folder it would be in exists without it (a notebook's ``%%writefile``)."""
        if self.locate is None:
            return None
        places = [step.kwargs]
        places += [v.kwargs for v in step.kwargs.values() if isinstance(v, Call) and v.func in CODE_HOLDERS]
        for kwargs in places:
            folder = kwargs.get("source_directory", ".")
            for key in ("script_name", "entry_script", "python_script_name"):
                script = kwargs.get(key)
                if isinstance(folder, str) and isinstance(script, str):
                    where = self.locate(folder)
                    if where.is_dir() and not (where / script).exists():
                        return f"{key} {script!r} in {folder!r}"
        return None

    def _pipeline_settings(self, pipeline: Obj) -> None:
        """``Pipeline(...)``'s arguments besides its steps."""
        fields = pipeline.fields
        if isinstance(fields.get("description"), str):
            self.model.dag_kwargs["description"] = fields["description"]
        folder = fields.get("default_source_directory")
        if isinstance(folder, str):
            self.default_source = folder
        if fields.get("continue_on_step_failure") is not None:
            self.note(
                pipeline.line,
                "continue_on_step_failure: in Airflow the steps that do not depend on a failed one go on; its"
                " downstream steps are upstream_failed",
            )
        store = fields.get("default_datastore")
        conn = self.datastore_conn(store) if store is not None else None
        if conn is not None and conn != DEFAULT_DATASTORE:
            self.model.dag_kwargs.setdefault("default_args", {"datastore": conn})
        for name, value in fields.items():
            if value is not None and name not in PIPELINE_FIELDS:
                self.todo(pipeline.line, f"Pipeline({name}=...): no counterpart; port it by hand", None)

    def _pipeline_steps(self, pipelines: list[Obj]) -> list[Obj]:
        """The steps of the pipelines, with every step they read from or run after (AML's closure)."""
        found: list[Obj] = []

        def add(value: Any) -> None:
            if isinstance(value, Obj) and value.kind == "sequence":
                steps = value.fields.get("steps")
                previous: Obj | None = None
                for step in steps if isinstance(steps, list) else []:
                    if previous is not None and isinstance(step, Obj):
                        step.fields.setdefault("_run_after", []).append(previous)
                    add(step)
                    previous = step if isinstance(step, Obj) else previous
            elif isinstance(value, Obj) and value.kind == "step":
                if value not in found:
                    found.append(value)
                    for before in value.fields.get("_run_after", []):
                        add(before)
                    for data in _data_objects(value.fields):
                        producer = self._producer_among_all(data)
                        if producer is not None:
                            add(producer)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    add(item)
            elif value is not None:
                self.todo(getattr(value, "line", 0), f"Pipeline steps: {_describe(value)} is not a step")

        for pipeline in pipelines:
            add(pipeline.fields.get("steps"))
        order = {id(o): i for i, o in enumerate(self.an.objects)}
        return sorted(found, key=lambda o: order[id(o)])

    def _producer_among_all(self, data: Obj) -> Obj | None:
        for obj in self.an.objects:
            if obj.kind == "step" and any(_root(d) is _root(data) for d, _ in self._outputs_of(obj)):
                return obj
        if data.kind == "step_output":
            return data.fields["step"]
        return None

    def _outputs_of(self, obj: Obj) -> list[tuple[Obj, str]]:
        fields = obj.fields
        aml = fields.get("aml")
        items: list[Any] = []
        if aml == "ParallelRunStep":
            items = [fields.get("output")]
        elif aml == "DataTransferStep":
            return [(obj, "output")]
        else:
            outputs = fields.get("outputs")
            items = list(outputs) if isinstance(outputs, (list, tuple)) else []
            if aml == "HyperDriveStep":
                items += [fields.get("metrics_output"), fields.get("model_output")]
        # An OutputFileDatasetConfig itself (not its .as_input()) in arguments is an output, as AML took it.
        arguments = fields.get("arguments")
        for item in arguments if isinstance(arguments, (list, tuple)) else []:
            if (
                isinstance(item, Obj)
                and item.fields.get("aml") == "OutputFileDatasetConfig"
                and "base" not in item.fields
            ):
                items.append(item)
        return [(i, _data_name(i)) for i in items if isinstance(i, Obj) and i.kind == "data"]

    # -- one step ----------------------------------------------------------------------------
    def _step(self, obj: Obj) -> None:
        step = self.steps[id(obj)]
        self.current = obj
        fields = dict(obj.fields)
        aml = fields.pop("aml")
        fields.pop("name", None)
        run_after = fields.pop("_run_after", [])
        self.inputs: dict[str, Any] = {}
        self.output_names: dict[int, str] = {}
        kwargs = step.kwargs
        kwargs["task_id"] = step.task_id
        outputs = fields.pop("output", None) if aml == "ParallelRunStep" else fields.pop("outputs", None)
        for item, name in self._outputs_of(obj):
            if aml != "DataTransferStep":
                self.output_names[id(_root(item))] = name
        for item in [outputs] if aml == "ParallelRunStep" else (outputs or []):
            if not (isinstance(item, Obj) and item.kind == "data") and item is not None:
                self.todo(obj.line, f"output {_describe(item)} is not PipelineData / OutputFileDatasetConfig", step)
        for name in SAME_NAME[aml]:
            if name in fields:
                value = self.value(fields.pop(name), name, step)
                if name == "source_directory" and isinstance(value, str):
                    value = self.rebase(value)
                if value is not None or name in ("allow_reuse",):
                    kwargs[name] = value
        if "source_directory" not in kwargs and aml in DEFAULT_SOURCE_KINDS:
            # AML ran it from the pipeline's default folder, else the script's own folder.
            folder = self.rebase(self.default_source or ".")
            if folder != ".":
                kwargs["source_directory"] = folder
        getattr(self, f"_map_{aml}")(obj, step, fields)
        if self.inputs and aml not in ("HyperDriveStep",):
            kwargs["inputs"] = self.inputs
        if self.output_names and aml not in ("ParallelRunStep", "HyperDriveStep", "DataTransferStep"):
            kwargs["outputs"] = [self.output(o) for o in self._declared_outputs(outputs)]
        self._output_datastore(obj, step, outputs)
        for leftover, value in fields.items():
            if value is None or leftover.startswith("_"):
                continue
            if leftover in DROPPED:
                self.note(obj.line, f"{aml}({leftover}=...) dropped: {DROPPED[leftover]}")
                continue
            self.todo(obj.line, f"{aml}({leftover}=...): no counterpart in {step.operator}; port it by hand", step)
        for before in run_after:
            target = self.steps.get(id(before)) if isinstance(before, Obj) else None
            if target is None:
                self.todo(obj.line, f"run_after({_describe(before)}): not a step of the pipeline", step)
            elif target.var not in step.upstream():
                step.after.append(target.var)

    def _declared_outputs(self, outputs: Any) -> list[Obj]:
        items = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        seen: list[Obj] = [i for i in items if isinstance(i, Obj) and i.kind == "data"]
        roots = {id(_root(i)) for i in seen}
        # Outputs used only in ``arguments`` (AML added those implicitly).
        for key in self.output_names:
            if key not in roots:
                seen.append(next(o for o in self.an.objects if id(o) == key))
        return seen

    def output(self, data: Obj) -> Call:
        root = _root(data)
        call = Call("Output", args=[_data_name(data)])
        register = root.fields.get("register_as", data.fields.get("register_as"))
        if isinstance(register, str):
            call.kwargs["register_as"] = register
        if root.fields.get("destination") is not None:
            self.note(root.line, "OutputFileDatasetConfig destination dropped: outputs are versioned by the provider")
        if root.fields.get("output_path_on_compute") is not None:
            self.todo(root.line, f"output {_data_name(root)!r}: output_path_on_compute: the script must write"
                      " into the folder {outputs.NAME} instead", self.steps.get(id(self.current)))  # fmt: skip
        for name, value in root.fields.items():
            if name in OUTPUT_DROPPED and value is not None:
                self.note(root.line, f"{root.fields.get('aml')}({name}=...) dropped: {OUTPUT_DROPPED[name]}")
        return call

    def _output_datastore(self, obj: Obj, step: Step, outputs: Any) -> None:
        items = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        conns = [self.datastore_conn(_root(i).fields.get("datastore")) for i in items if isinstance(i, Obj)]
        stores = {c for c in conns if c is not None and c != DEFAULT_DATASTORE}
        if len(stores) == 1:
            step.kwargs["datastore"] = stores.pop()
        elif len(stores) > 1:
            self.todo(obj.line, f"outputs on several datastores {sorted(stores)}: a step writes to one", step)

    # -- the kinds ---------------------------------------------------------------------------
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
            self.todo(getattr(item, "line", 0), f"{_describe(item)}: expected {aml}({field_name}=...)", step)
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
                self.todo(obj.line, f"{name}={_describe(value)}: expected a DataReference or SqlDataReference", step)
        if fields.pop("compute_target", None) is not None:
            self.note(obj.line, "Data Factory compute dropped: the copy runs on the Airflow worker")

    def _map_ParallelRunStep(self, obj: Obj, step: Step, fields: dict[str, Any]) -> None:
        inputs = fields.pop("inputs", None)
        config = fields.pop("parallel_run_config", None)
        kwargs = step.kwargs
        if not isinstance(config, Obj) or config.kind != "parallel_run_config":
            self.todo(obj.line, f"parallel_run_config={_describe(config)}: not a ParallelRunConfig", step)
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
            self.todo(config.line, f"node_count={node_count!r}: a ParallelRun step runs on one node here", step)
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
            training = _root(output).fields.get("training_output") if isinstance(output, Obj) else None
            kind = training.fields.get("type") if isinstance(training, Obj) else None
            if kind == "Metrics" and metrics is None:
                metrics = output
            elif kind == "Model":
                model_file = training.fields.get("model_file") if isinstance(training, Obj) else None
                self.todo(output.line, f"output {_data_name(output)!r} was the best trial's model file"
                          f" {model_file!r}: the trial script must write it into {{outputs.{_data_name(output)}}}"
                          " (the best trial's outputs are the sweep's)", step)  # fmt: skip
        if isinstance(metrics, Obj):
            self.output_names.pop(id(_root(metrics)), None)
        if not isinstance(config, Obj) or config.kind != "hyperdrive_config":
            self.todo(obj.line, f"hyperdrive_config={_describe(config)}: not a HyperDriveConfig", step)
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
            self.todo(obj.line, f"HyperDriveConfig run_config={_describe(run)}: expected a ScriptRunConfig", step)
        if self.inputs:
            trial.kwargs["inputs"] = self.inputs
        kwargs["trial"] = trial
        for name in ("hyperparameter_sampling", "policy"):
            value = cfg.pop(name, None)
            if isinstance(value, Obj) and value.kind in ("sampling", "policy"):
                kwargs[name] = self.sweep_object(value, step)
            elif value is not None:
                self.todo(config.line, f"{name}={_describe(value)}: not understood", step)
        for name in ("primary_metric_name", "primary_metric_goal", "max_total_runs", "max_concurrent_runs",
                     "max_duration_minutes"):  # fmt: skip
            if name in cfg:
                kwargs[name] = self.value(cfg.pop(name), name, step)
        cfg.pop("aml", None)
        for leftover, value in cfg.items():
            if value is not None:
                self.todo(config.line, f"HyperDriveConfig({leftover}=...): no counterpart", step)
        metrics_root = _root(metrics) if isinstance(metrics, Obj) else None
        declared = self._declared_outputs(obj.fields.get("outputs"))
        trial_outputs = [o for o in declared if _root(o) is not metrics_root]
        if trial_outputs:
            kwargs["outputs"] = [self.output(o) for o in trial_outputs]
        if isinstance(metrics, Obj):
            kwargs["metrics_output"] = _data_name(metrics)
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
                self.todo(value.line, f"parameter_space={_describe(space)}: not a dict", step)
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
            self.todo(obj.line, f"compute_target={_describe(compute)}: not understood", step)

    def _environment(self, obj: Obj, step: Step, value: Any, kwargs: dict[str, Any]) -> None:
        if value is None:
            return
        env = value.fields.get("environment", value) if isinstance(value, Obj) else value
        if not isinstance(env, Obj) or env.kind not in ("environment", "runconfig"):
            self.todo(obj.line, f"environment={_describe(value)}: not understood", step)
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

    # -- data ------------------------------------------------------------------------------
    def arguments(self, value: Any, step: Step) -> Any:
        if not isinstance(value, (list, tuple)):
            return self.value(value, "arguments", step)
        result: list[Any] = []
        for item in value:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Obj) and item[0].kind == "param":
                item = item[0]
            if isinstance(item, Obj) and item.kind == "data" and id(_root(item)) in self.output_names:
                result.append(f"{{outputs.{self.output_names[id(_root(item))]}}}")
            elif isinstance(item, Obj) and item.kind == "data" and id(_root(item)) not in self.producers:
                # AML added an argument's PipelineData to the step's outputs when no step produced it.
                self.output_names[id(_root(item))] = _data_name(item)
                result.append(f"{{outputs.{_data_name(item)}}}")
            elif isinstance(item, Obj) and (item.kind != "param" or _is_path_param(item)):
                name = self.add_input(item, step)
                result.append(f"{{inputs.{name}}}" if name else None)
            else:
                result.append(self.value(item, "arguments", step))
        return [r for r in result if r is not None]

    def add_input(self, item: Any, step: Step) -> str | None:
        name, ref = self.input_ref(item, step)
        if ref is None:
            return None
        self.inputs.setdefault(name, ref)
        return name

    def input_ref(self, item: Any, step: Step) -> tuple[str, Any]:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Obj):
            item = item[0]  # (PipelineParameter, DataPathComputeBinding)
        if not isinstance(item, Obj):
            self.todo(self.current.line if self.current else 0, f"input {_describe(item)}: not understood", step)
            return "", None
        name = item.fields.get("input_name")
        root = _root(item)
        if item.kind == "data":
            produced = self.producers.get(id(root))
            if produced is None or produced[0] is self.current:
                self.todo(item.line, f"input {_data_name(item)!r}: no step of the pipeline produces it", step)
                return "", None
            producer = self.steps[id(produced[0])]
            return name or produced[1], StepOutputRef(producer.var, produced[1])
        if item.kind == "step_output":
            transfer = self.steps.get(id(item.fields["step"]))
            if transfer is None:
                self.todo(item.line, "get_output() of a step outside the pipeline", step)
                return "", None
            return name or f"{transfer.task_id}_output", Code(f"{transfer.var}.output")
        if item.kind == "param" and _is_path_param(item):
            param = self.param(item, step)
            func = "changed_data_path_input" if param == self.changed_param else "data_path_input"
            return name or param, Call(func, args=[param])
        if item.kind == "registered_dataset":
            call = Call("DatasetInput", args=[self.value(item.fields.get("name"), "name", step)])
            version = item.fields.get("version")
            if version not in (None, "latest"):
                call.kwargs["version"] = self.value(version, "version", step)
            return name or _identifier(item.var or str(call.args[0])), call
        path = self.data_path(item, step)
        if path is None:
            return "", None
        default = item.fields.get("data_reference_name") or root.fields.get("name") or item.var or "data"
        return name or _identifier(str(default)), path

    def data_path(self, item: Obj, step: Step) -> Call | None:
        """A DataReference, DataPath, datastore path or Dataset.*.from_* as ``DataPath(datastore, path)``."""
        if item.kind == "dataset":
            path = item.fields.get("path")
            if isinstance(path, list) and len(path) == 1:
                path = path[0]
            if isinstance(path, Obj) and path.kind in ("data_path", "data_ref"):
                item = path
            elif isinstance(path, tuple) and len(path) == 2:
                store, where = path
                return self._data_path_call(store, where, item, step)
            else:
                self.todo(
                    item.line,
                    f"Dataset {item.fields.get('factory')}(path={_describe(path)}): only one (datastore, path) is"
                    " converted; copy web or multi-path data into a datastore and read it with DataPath",
                    step,
                )
                return None
        if item.kind == "data_ref":
            return self._data_path_call(item.fields.get("datastore"), item.fields.get("path_on_datastore"), item, step)
        if item.kind == "data_path":
            return self._data_path_call(item.fields.get("datastore"), item.fields.get("path_on_datastore"), item, step)
        self.todo(item.line, f"input {_describe(item)}: not a data reference", step)
        return None

    def _data_path_call(self, store: Any, path: Any, item: Obj, step: Step) -> Call | None:
        conn = self.datastore_conn(store)
        path_value = self.value(path, "path", step)
        if conn is None or not isinstance(path_value, str):
            self.todo(item.line, f"data reference {_describe(store)} / {path!r}: datastore or path unknown", step)
            return None
        return Call("DataPath", kwargs={"datastore": conn, "path": path_value})

    def transfer_ref(self, value: Any, step: Step) -> Any:
        if isinstance(value, Obj) and value.kind == "sql_ref":
            conn = self.datastore_conn(value.fields.get("datastore"))
            call = Call("SqlDataReference", args=[conn])
            for name in ("sql_table", "sql_query", "sql_stored_procedure"):
                if value.fields.get(name) is not None:
                    call.kwargs[name] = self.value(value.fields[name], name, step)
            return call if conn else None
        if isinstance(value, Obj) and value.kind in ("data_ref", "data_path"):
            return self.data_path(value, step)
        return None

    def datastore_conn(self, store: Any) -> str | None:
        """The connection id for an AML datastore (an object, or its name as PipelineData's ``datastore``)."""
        fields: dict[str, Any] = {"name": store} if isinstance(store, str) else {}
        if isinstance(store, Obj) and store.kind == "datastore":
            fields = store.fields
        if fields.get("default"):
            self.connection(
                DEFAULT_DATASTORE, "amlpipe_local / amlpipe_azure_blob", "the workspace's default datastore"
            )
            return DEFAULT_DATASTORE
        name = fields.get("name")
        if not isinstance(name, str):
            return None
        conn_type = fields.get("conn_type") or "amlpipe_local / amlpipe_azure_blob / amlpipe_adls_gen2"
        self.connection(name, conn_type, f"AML datastore {name!r}")
        return name

    def connection(self, conn_id: str, conn_type: str, replaces: str) -> None:
        self.model.connections.setdefault(conn_id, Connection(conn_id, conn_type, replaces))

    # -- values ----------------------------------------------------------------------------
    def value(self, value: Any, field: str, step: Step | None) -> Any:
        """A literal for the DAG; an AML object or unknown expression is a TODO (``None``)."""
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        if isinstance(value, (list, tuple)):
            return [self.value(v, field, step) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v, field, step) for k, v in value.items()}
        if isinstance(value, Obj) and value.kind == "param" and not _is_path_param(value):
            name = self.param(value, step)
            if field in TEMPLATED:
                return f"{{{{ params.{name} }}}}"
            self.todo(value.line, f"{field}: PipelineParameter {name!r} in a field that is not templated;"
                      " its default is used", step)  # fmt: skip
            return self.value(value.fields.get("default_value"), field, step)
        if isinstance(value, Obj) and value.kind in EXPRESSIONS:
            positional = sorted((int(k[4:]), a) for k, a in value.fields.items() if k.startswith("_arg"))
            keywords = {k: self.value(a, field, step) for k, a in value.fields.items() if not k.startswith("_arg")}
            return Call(
                value.kind, module=SWEEP, args=[self.value(a, field, step) for _, a in positional], kwargs=keywords
            )
        if isinstance(value, AmlName):
            parent = value.path.split(".")[-2] if "." in value.path else ""
            if parent == "TimeZone":
                return value.short
            if parent == "PrimaryMetricGoal":
                return Code(f"PrimaryMetricGoal.{value.short}", ((SWEEP, "PrimaryMetricGoal"),))
        line = getattr(value, "line", 0) or (self.current.line if self.current else 0)
        self.todo(line, f"{field}={_describe(value)}: not known statically; set it by hand", step)
        return None

    def param(self, obj: Obj, step: Step | None) -> str:
        name = obj.fields.get("name")
        if not isinstance(name, str):
            self.todo(obj.line, "PipelineParameter without a literal name", step)
            name = _identifier(obj.var or "param")
        if name in self.model.params:
            return name
        default = obj.fields.get("default_value")
        if _is_path_param(obj):
            store, path = _store_and_path(default)
            conn = self.datastore_conn(store)
            if conn is None or not isinstance(path, str):
                self.todo(obj.line, f"PipelineParameter {name!r}: its data path is not known statically", step)
                self.model.params[name] = Call("Param", module=SDK, args=[None])
            else:
                self.model.params[name] = Call("data_path_param", args=[conn, path])
        elif type(default) in PARAM_TYPES:
            self.model.params[name] = Call(
                "Param", module=SDK, args=[default], kwargs={"type": PARAM_TYPES[type(default)]}
            )
        else:
            self.todo(obj.line, f"PipelineParameter {name!r}: default {_describe(default)} not a literal", None)
            self.model.params[name] = Call("Param", module=SDK, args=[None])
        return name

    # -- schedule --------------------------------------------------------------------------
    def _schedule(self, schedules: list[Obj]) -> None:
        dag = self.model.dag_kwargs
        dag["schedule"] = None
        if not schedules:
            return
        first, rest = schedules[0], schedules[1:]
        for other in rest:
            self.todo(other.line, "another Schedule: a DAG has one schedule; make another DAG for it", None)
        fields = first.fields
        recurrence = fields.get("recurrence")
        if isinstance(recurrence, Obj) and recurrence.kind == "recurrence":
            call = Call("ScheduleRecurrence")
            for name, value in recurrence.fields.items():
                if name != "aml":
                    call.kwargs[name] = self.value(value, name, None)
            problem = self.check_recurrence(call.kwargs) if self.check_recurrence else None
            if None in call.kwargs.values() or problem:
                shown = ", ".join(f"{k}={v!r}" for k, v in call.kwargs.items())
                self.todo(first.line, f"ScheduleRecurrence({shown}): {problem or 'not known statically'}", None)
            else:
                self.model.constants["RECURRENCE"] = call
                dag["schedule"] = Code("recurrence_timetable(RECURRENCE)", ((PROVIDER, "recurrence_timetable"),))
                dag["start_date"] = Code("RECURRENCE.start_date")
        elif fields.get("datastore") is not None:
            conn = self.datastore_conn(fields.get("datastore"))
            minutes = fields.get("polling_interval", 5)
            path = fields.get("path_on_datastore")
            if conn is None or not isinstance(path, str) or not isinstance(minutes, (int, float)):
                self.todo(
                    first.line,
                    "datastore schedule: datastore, path_on_datastore or polling_interval unknown",
                    None,
                )
            else:
                dag["schedule"] = [
                    Call("datastore_change_asset", args=[conn, path], kwargs={"polling_interval": minutes * 60})
                ]
                self.note(
                    first.line,
                    "datastore schedule: polling_interval is in seconds here (AML's minutes x 60)",
                    in_dag=True,
                )
            parameter = fields.get("data_path_parameter_name")
            if isinstance(parameter, str):
                self.changed_param = parameter
        else:
            self.todo(first.line, "Schedule.create without a recurrence or datastore: not understood", None)
        if fields.get("pipeline_parameters"):
            self.todo(
                first.line,
                "Schedule pipeline_parameters: set them as the Params' defaults, or make a DAG per schedule",
                None,
            )
        dag["catchup"] = False


def _root(obj: Obj) -> Obj:
    base = obj.fields.get("base")
    return base if isinstance(base, Obj) else obj


def _store_and_path(obj: Any) -> tuple[Any, Any]:
    """The (datastore, path) of a DataPath, DataReference or a Dataset over one datastore path."""
    if not isinstance(obj, Obj):
        return None, None
    if obj.kind == "dataset":
        path = obj.fields.get("path")
        path = path[0] if isinstance(path, list) and len(path) == 1 else path
        if isinstance(path, tuple) and len(path) == 2:
            return path
        return _store_and_path(path)
    return obj.fields.get("datastore"), obj.fields.get("path_on_datastore")


def _data_name(obj: Obj) -> str:
    root = _root(obj)
    name = root.fields.get("name")
    return _identifier(name if isinstance(name, str) else root.var or "output")


def _is_path_param(obj: Obj) -> bool:
    default = obj.fields.get("default_value")
    return obj.kind == "param" and isinstance(default, Obj) and default.kind in ("data_path", "dataset")


def _data_objects(fields: dict[str, Any]) -> list[Obj]:
    found: list[Obj] = []

    def walk(value: Any) -> None:
        if isinstance(value, Obj) and value.kind in ("data", "step_output"):
            found.append(value)
        elif isinstance(value, Obj) and value.kind in ("hyperdrive_config", "parallel_run_config", "script_run_config"):
            walk(value.fields)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk({k: v for k, v in fields.items() if k not in ("outputs", "output", "_run_after")})
    return found


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    return name if name and not name[0].isdigit() else f"_{name}"


def _describe(value: Any) -> str:
    if isinstance(value, Obj):
        return f"{value.fields.get('aml', value.kind)} (line {value.line})"
    if isinstance(value, Unknown):
        return f"`{value.text}`"
    if isinstance(value, AmlName):
        return f"`{value.path}`"
    return repr(value)
