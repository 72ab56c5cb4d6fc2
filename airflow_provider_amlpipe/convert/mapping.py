"""From the analysed AML objects to the :class:`~.model.PipelineModel`: which steps, their order, the schedule."""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_amlpipe.convert.analysis import Obj
from airflow_provider_amlpipe.convert.kinds import StepKinds
from airflow_provider_amlpipe.convert.model import PROVIDER, Call, Code, PipelineModel, Step
from airflow_provider_amlpipe.convert.values import (
    DEFAULT_DATASTORE,
    RecurrenceCheck,
    data_name,
    data_objects,
    data_root,
    describe,
    identifier,
)

__all__ = ["Mapper", "RecurrenceCheck"]

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

OPERATORS = {
    "PythonScriptStep": "PythonScriptStepOperator",
    "AdlaStep": "AdlaStepOperator",
    "DatabricksStep": "DatabricksStepOperator",
    "AzureBatchStep": "AzureBatchStepOperator",
    "DataTransferStep": "DataTransferStepOperator",
    "HyperDriveStep": "HyperDriveStepOperator",
    "ParallelRunStep": "ParallelRunStepOperator",
}


class Mapper(StepKinds):
    """Maps an analysed input: :meth:`build` returns the model."""

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
                self.producers[id(data_root(produced))] = (obj, name)
        used: set[str] = set()
        for index, obj in enumerate(chosen):
            var = identifier(obj.var or f"step_{index + 1}")
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
                    for data in data_objects(value.fields):
                        producer = self._producer_among_all(data)
                        if producer is not None:
                            add(producer)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    add(item)
            elif value is not None:
                self.todo(getattr(value, "line", 0), f"Pipeline steps: {describe(value)} is not a step")

        for pipeline in pipelines:
            add(pipeline.fields.get("steps"))
        order = {id(o): i for i, o in enumerate(self.an.objects)}
        return sorted(found, key=lambda o: order[id(o)])

    def _producer_among_all(self, data: Obj) -> Obj | None:
        for obj in self.an.objects:
            if obj.kind == "step" and any(data_root(d) is data_root(data) for d, _ in self._outputs_of(obj)):
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
        return [(i, data_name(i)) for i in items if isinstance(i, Obj) and i.kind == "data"]

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
                self.output_names[id(data_root(item))] = name
        for item in [outputs] if aml == "ParallelRunStep" else (outputs or []):
            if not (isinstance(item, Obj) and item.kind == "data") and item is not None:
                self.todo(obj.line, f"output {describe(item)} is not PipelineData / OutputFileDatasetConfig", step)
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
                self.todo(obj.line, f"run_after({describe(before)}): not a step of the pipeline", step)
            elif target.var not in step.upstream():
                step.after.append(target.var)

    def _output_datastore(self, obj: Obj, step: Step, outputs: Any) -> None:
        items = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        conns = [self.datastore_conn(data_root(i).fields.get("datastore")) for i in items if isinstance(i, Obj)]
        stores = {c for c in conns if c is not None and c != DEFAULT_DATASTORE}
        if len(stores) == 1:
            step.kwargs["datastore"] = stores.pop()
        elif len(stores) > 1:
            self.todo(obj.line, f"outputs on several datastores {sorted(stores)}: a step writes to one", step)

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
