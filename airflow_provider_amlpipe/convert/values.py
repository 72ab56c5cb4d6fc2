"""The mapping's state and its data rules: references, inputs, arguments, values, Params, connections.

:class:`MapperBase` is specialised by :mod:`.kinds` (one method per AML step class) and :mod:`.mapping`
(the pipeline: which steps, their order, the schedule).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.convert.analysis import AmlName, Analyzer, Obj, Unknown
from airflow_provider_amlpipe.convert.model import (
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

#: PipelineData arguments with no counterpart on ``Output``, and why that is faithful.
OUTPUT_DROPPED = {
    "output_mode": "a step writes its output to the local folder {outputs.NAME}; it is committed after",
    "output_overwrite": "every run commits a new version; nothing is overwritten",
    "is_directory": "an output is a folder",
    "pipeline_output_name": "a step's outputs are its XCom and dataset versions",
    "output_name": "the output is named by its PipelineData name",
}

#: Step arguments whose values are templated, so a PipelineParameter may become ``{{ params.x }}``.
TEMPLATED = ("arguments", "step_params", "notebook_params", "python_script_params", "jar_params")

PARAM_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


class MapperBase:
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
        #: The step being mapped: its inputs so far, and its outputs (id of the data object -> name).
        self.inputs: dict[str, Any] = {}
        self.output_names: dict[int, str] = {}

    def todo(self, line: int, message: str, step: Step | None = None) -> None:
        issue = Issue(line, message, todo=True)
        self.an.issues.append(issue)
        if step is not None:
            self.placed.add(issue)
            step.todos.append(f"{message} [{self.where(line)}]")

    def note(self, line: int, message: str, *, in_dag: bool = False) -> None:
        self.an.issues.append(Issue(line, message, todo=False, in_dag=in_dag))

    def output(self, data: Obj) -> Call:
        root = data_root(data)
        call = Call("Output", args=[data_name(data)])
        register = root.fields.get("register_as", data.fields.get("register_as"))
        if isinstance(register, str):
            call.kwargs["register_as"] = register
        if root.fields.get("destination") is not None:
            self.note(root.line, "OutputFileDatasetConfig destination dropped: outputs are versioned by the provider")
        if root.fields.get("output_path_on_compute") is not None:
            self.todo(root.line, f"output {data_name(root)!r}: output_path_on_compute: the script must write"
                      " into the folder {outputs.NAME} instead", self.steps.get(id(self.current)))  # fmt: skip
        for name, value in root.fields.items():
            if name in OUTPUT_DROPPED and value is not None:
                self.note(root.line, f"{root.fields.get('aml')}({name}=...) dropped: {OUTPUT_DROPPED[name]}")
        return call

    def _declared_outputs(self, outputs: Any) -> list[Obj]:
        items = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        seen: list[Obj] = [i for i in items if isinstance(i, Obj) and i.kind == "data"]
        roots = {id(data_root(i)) for i in seen}
        # Outputs used only in ``arguments`` (AML added those implicitly).
        for key in self.output_names:
            if key not in roots:
                seen.append(next(o for o in self.an.objects if id(o) == key))
        return seen

    def arguments(self, value: Any, step: Step) -> Any:
        if not isinstance(value, (list, tuple)):
            return self.value(value, "arguments", step)
        result: list[Any] = []
        for item in value:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Obj) and item[0].kind == "param":
                item = item[0]
            if isinstance(item, Obj) and item.kind == "data" and id(data_root(item)) in self.output_names:
                result.append(f"{{outputs.{self.output_names[id(data_root(item))]}}}")
            elif isinstance(item, Obj) and item.kind == "data" and id(data_root(item)) not in self.producers:
                # AML added an argument's PipelineData to the step's outputs when no step produced it.
                self.output_names[id(data_root(item))] = data_name(item)
                result.append(f"{{outputs.{data_name(item)}}}")
            elif isinstance(item, Obj) and (item.kind != "param" or is_path_param(item)):
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
            self.todo(self.current.line if self.current else 0, f"input {describe(item)}: not understood", step)
            return "", None
        name = item.fields.get("input_name")
        root = data_root(item)
        if item.kind == "data":
            produced = self.producers.get(id(root))
            if produced is None or produced[0] is self.current:
                self.todo(item.line, f"input {data_name(item)!r}: no step of the pipeline produces it", step)
                return "", None
            producer = self.steps[id(produced[0])]
            return name or produced[1], StepOutputRef(producer.var, produced[1])
        if item.kind == "step_output":
            transfer = self.steps.get(id(item.fields["step"]))
            if transfer is None:
                self.todo(item.line, "get_output() of a step outside the pipeline", step)
                return "", None
            return name or f"{transfer.task_id}_output", Code(f"{transfer.var}.output")
        if item.kind == "param" and is_path_param(item):
            param = self.param(item, step)
            func = "changed_data_path_input" if param == self.changed_param else "data_path_input"
            return name or param, Call(func, args=[param])
        if item.kind == "registered_dataset":
            call = Call("DatasetInput", args=[self.value(item.fields.get("name"), "name", step)])
            version = item.fields.get("version")
            if version not in (None, "latest"):
                call.kwargs["version"] = self.value(version, "version", step)
            return name or identifier(item.var or str(call.args[0])), call
        path = self.data_path(item, step)
        if path is None:
            return "", None
        default = item.fields.get("data_reference_name") or root.fields.get("name") or item.var or "data"
        return name or identifier(str(default)), path

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
                    f"Dataset {item.fields.get('factory')}(path={describe(path)}): only one (datastore, path) is"
                    " converted; copy web or multi-path data into a datastore and read it with DataPath",
                    step,
                )
                return None
        if item.kind == "data_ref":
            return self._data_path_call(item.fields.get("datastore"), item.fields.get("path_on_datastore"), item, step)
        if item.kind == "data_path":
            return self._data_path_call(item.fields.get("datastore"), item.fields.get("path_on_datastore"), item, step)
        self.todo(item.line, f"input {describe(item)}: not a data reference", step)
        return None

    def _data_path_call(self, store: Any, path: Any, item: Obj, step: Step) -> Call | None:
        conn = self.datastore_conn(store)
        path_value = self.value(path, "path", step)
        if conn is None or not isinstance(path_value, str):
            self.todo(item.line, f"data reference {describe(store)} / {path!r}: datastore or path unknown", step)
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

    def value(self, value: Any, field: str, step: Step | None) -> Any:
        """A literal for the DAG; an AML object or unknown expression is a TODO (``None``)."""
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        if isinstance(value, (list, tuple)):
            return [self.value(v, field, step) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v, field, step) for k, v in value.items()}
        if isinstance(value, Obj) and value.kind == "param" and not is_path_param(value):
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
        self.todo(line, f"{field}={describe(value)}: not known statically; set it by hand", step)
        return None

    def param(self, obj: Obj, step: Step | None) -> str:
        name = obj.fields.get("name")
        if not isinstance(name, str):
            self.todo(obj.line, "PipelineParameter without a literal name", step)
            name = identifier(obj.var or "param")
        if name in self.model.params:
            return name
        default = obj.fields.get("default_value")
        if is_path_param(obj):
            store, path = store_and_path(default)
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
            self.todo(obj.line, f"PipelineParameter {name!r}: default {describe(default)} not a literal", None)
            self.model.params[name] = Call("Param", module=SDK, args=[None])
        return name


def data_root(obj: Obj) -> Obj:
    base = obj.fields.get("base")
    return base if isinstance(base, Obj) else obj


def store_and_path(obj: Any) -> tuple[Any, Any]:
    """The (datastore, path) of a DataPath, DataReference or a Dataset over one datastore path."""
    if not isinstance(obj, Obj):
        return None, None
    if obj.kind == "dataset":
        path = obj.fields.get("path")
        path = path[0] if isinstance(path, list) and len(path) == 1 else path
        if isinstance(path, tuple) and len(path) == 2:
            return path
        return store_and_path(path)
    return obj.fields.get("datastore"), obj.fields.get("path_on_datastore")


def data_name(obj: Obj) -> str:
    root = data_root(obj)
    name = root.fields.get("name")
    return identifier(name if isinstance(name, str) else root.var or "output")


def is_path_param(obj: Obj) -> bool:
    default = obj.fields.get("default_value")
    return obj.kind == "param" and isinstance(default, Obj) and default.kind in ("data_path", "dataset")


def data_objects(fields: dict[str, Any]) -> list[Obj]:
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


def identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    return name if name and not name[0].isdigit() else f"_{name}"


def describe(value: Any) -> str:
    if isinstance(value, Obj):
        return f"{value.fields.get('aml', value.kind)} (line {value.line})"
    if isinstance(value, Unknown):
        return f"`{value.text}`"
    if isinstance(value, AmlName):
        return f"`{value.path}`"
    return repr(value)
