"""The base every step operator shares: resolve, fingerprint, reuse or wait or run, commit, push."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol

from airflow.sdk import BaseOperator, Context, XComArg
from airflow.sdk.definitions.xcom_arg import PlainXComArg

from airflow_provider_amlpipe.compute.base import ComputeBackend, Invocation
from airflow_provider_amlpipe.compute.local import LocalProcessBackend
from airflow_provider_amlpipe.data.refs import Output, is_template
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.hooks.datastore import DEFAULT_CONN_ID, DatastoreResolver
from airflow_provider_amlpipe.operators.results import StepResultOperator
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.reuse.store import DEFAULT_LEASE_TTL, check_lease_ttl
from airflow_provider_amlpipe.shell import lineage
from airflow_provider_amlpipe.shell.lineage import LINEAGE_ATTRIBUTE
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.inputs import resolve_inputs
from airflow_provider_amlpipe.steps.runner import (
    Decision,
    Reused,
    Run,
    StepPlan,
    StepResult,
    StepRunner,
    StepWorkspace,
    Wait,
)
from airflow_provider_amlpipe.triggers.step_lease import StepLeaseTrigger

REGENERATE_CONF_KEY = "amlpipe"
REGENERATE_OPTION = "regenerate_outputs"
#: The keys the ``amlpipe`` section of DAG-run conf may hold.
CONF_KEYS = (REGENERATE_OPTION,)
#: Below this, waiting on an identical step would poll its datastore in a busy loop (seconds).
MIN_POLL_INTERVAL = 0.1
#: How long a step waits on its worker for an identical running one before deferring.
DEFAULT_WAIT_BEFORE_DEFER = 15.0
#: The slowest poll of that wait: a lease or record read each 0.1 s costs little, and a waiter
#: then notices the end of a short step within a fraction of its duration.
WAIT_POLL_MAX = 0.1
#: Fingerprint parts that hold rendered user values, where a templated secret could land.
_USER_VALUE_PARTS = ("arguments", "params")
_PARAMS_IN_TEMPLATE = re.compile(r"\bparams\b")


class StepDefinition(Protocol):
    """What a step kind provides to the shared lifecycle."""

    def validate(self, input_names: list[str], output_names: list[str]) -> None: ...

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]: ...

    def invocation(self, workspace: StepWorkspace) -> Invocation: ...


def resolved_later(value: object) -> bool:
    """Whether Airflow replaces ``value`` when the task runs (an XComArg or another resolvable)."""
    return isinstance(value, XComArg) or (
        callable(getattr(value, "resolve", None)) and callable(getattr(value, "iter_references", None))
    )


def check_run_conf(conf: Mapping[str, Any] | None, dag_params: Collection[str] = ()) -> Mapping[str, Any]:
    """The ``amlpipe`` section of DAG-run conf, checked: an object holding only known keys.

    ``regenerate_outputs`` at the top level (a common slip) is refused unless the DAG declares a
    Param of that name.
    """
    conf = conf or {}
    if REGENERATE_OPTION in conf and REGENERATE_OPTION not in dag_params:
        raise ConfigurationError(
            f"dag_run.conf.{REGENERATE_OPTION}",
            f"{REGENERATE_OPTION!r} is at the top level of the run's conf, where amlpipe does not read it",
            f'nest it: {{"{REGENERATE_CONF_KEY}": {{"{REGENERATE_OPTION}": ...}}}}',
        )
    if REGENERATE_CONF_KEY not in conf:
        return {}
    section = conf[REGENERATE_CONF_KEY]
    if not isinstance(section, Mapping):
        raise ConfigurationError(
            f"dag_run.conf.{REGENERATE_CONF_KEY}",
            f"expected an object, got {section!r}",
            f'pass {{"{REGENERATE_CONF_KEY}": {{"{REGENERATE_OPTION}": true}}}}',
        )
    unknown = sorted(str(k) for k in section if k not in CONF_KEYS)
    if unknown:
        raise ConfigurationError(
            f"dag_run.conf.{REGENERATE_CONF_KEY}",
            f"unknown key(s) {', '.join(map(repr, unknown))}",
            f"use only {', '.join(map(repr, CONF_KEYS))}",
        )
    return section


def regenerate_requested(
    conf: Mapping[str, Any] | None,
    task_id: str,
    task_ids: Collection[str] | None = None,
    dag_params: Collection[str] = (),
) -> bool:
    """Whether DAG-run conf ``{"amlpipe": {"regenerate_outputs": true | [task ids]}}`` names this task.

    With ``task_ids`` (the DAG's), a listed id that is not one of them is an error rather than a
    silent no-op.
    """
    section = check_run_conf(conf, dag_params)
    value = section.get(REGENERATE_OPTION, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        unknown = sorted(set(value) - set(task_ids)) if task_ids is not None else []
        if unknown:
            raise ConfigurationError(
                f"dag_run.conf.{REGENERATE_CONF_KEY}.{REGENERATE_OPTION}",
                f"{', '.join(map(repr, unknown))} {'is not a task' if len(unknown) == 1 else 'are not tasks'}"
                f" of this DAG (its tasks: {', '.join(sorted(task_ids or ()))})",
                "list task ids of this DAG, or pass true to regenerate every step",
            )
        return task_id in value
    raise ConfigurationError(
        f"dag_run.conf.{REGENERATE_CONF_KEY}.{REGENERATE_OPTION}",
        f"expected true/false or a list of task ids, got {value!r}",
        'pass true, or a list such as ["train"]',
    )


def regenerate_for(task: BaseOperator, context: Context, task_id: str | None = None) -> bool:
    """:func:`regenerate_requested` for ``task`` in this run (``task_id``: the step it decides for)."""
    dag = task.dag if task.has_dag() else None
    return regenerate_requested(
        getattr(context.get("dag_run"), "conf", None),
        task_id or task.task_id,
        task_ids=None if dag is None else list(dag.task_ids),
        dag_params=() if dag is None else list(dag.params),
    )


def redact_secrets(value: Any) -> Any:
    """``value`` with each secret Airflow's masker knows (connection passwords, sensitive Variables
    read through templates) replaced by ``***``.

    Only the masker's registered values are replaced. Its other rule, hiding everything under a
    key that merely sounds sensitive ("token", "secret"), is not applied: a parameter such as
    ``tokenizer`` must still change the fingerprint.
    """
    from airflow.sdk._shared.secrets_masker import redact

    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_secrets(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_secrets(item) for item in value]
    return value


def build_plan(
    task: BaseOperator,
    context: Context,
    parts: dict[str, Any],
    raw_inputs: Mapping[str, Any],
    outputs: Sequence[Output],
    stores: DatastoreResolver,
    hasher: Hasher,
    *,
    step_task_id: str | None = None,
) -> StepPlan:
    """Resolve inputs and compose the fingerprint of ``task``'s step.

    ``step_task_id`` names the task the step belongs to when that is not ``task`` itself (a
    reuse sensor plans for the task it guards).
    """
    ti = context["ti"]
    task_id = step_task_id or task.task_id
    map_index = getattr(ti, "map_index", -1)
    # Names first: a dataset name the datastore cannot hold must fail before any input is read.
    dataset_names = config.dataset_names(outputs, task.dag_id, task_id)
    inputs = resolve_inputs(raw_inputs, stores, hasher, getattr(task, "datastore", DEFAULT_CONN_ID))
    producer = {
        "dag_id": task.dag_id,
        "task_id": task_id,
        "run_id": context["run_id"],
        "try_number": ti.try_number,
        "map_index": map_index,
    }
    # The script gets the real values; what is fingerprinted and recorded must not hold secrets.
    parts = {name: redact_secrets(value) if name in _USER_VALUE_PARTS else value for name, value in parts.items()}
    parts = {
        **parts,
        "inputs": {name: item.digest for name, item in sorted(inputs.items())},
        "outputs": {o.name: dataset_names[o.name] for o in outputs},
    }
    suffix = f".{map_index}" if map_index not in (-1, None) else ""
    step_id = f"{task.dag_id}.{task_id}{suffix}"
    return StepPlan(step_id, inputs, list(outputs), dataset_names, Fingerprint(parts), producer)


class WaitsForIdenticalSteps(Protocol):
    """What :func:`decide_or_defer` needs of the task that decides (a step operator or a reuse sensor)."""

    datastore: str
    wait_before_defer: float
    poll_interval: float

    @property
    def log(self) -> Any: ...

    def defer(self, *, trigger: Any, method_name: str) -> NoReturn: ...


def decide_or_defer(
    task: WaitsForIdenticalSteps, runner: StepRunner, plan: StepPlan, decide: Callable[[], Decision]
) -> Reused | Run:
    """``decide()`` until it says reuse or run. While an identical step runs elsewhere, wait for it on
    this worker up to ``task.wait_before_defer`` seconds and decide again when it ends; if it is still
    running then, defer ``task`` to the triggerer, which resumes it in ``execute_resume``."""
    while True:
        decision = decide()
        if not isinstance(decision, Wait):
            return decision
        fingerprint = plan.fingerprint.digest
        task.log.info(
            "An identical step (fingerprint %s) is running now (lease %s held by %s); waiting for it.",
            fingerprint[:12],
            decision.busy.number,
            decision.busy.owner,
        )
        poll = min(WAIT_POLL_MAX, task.poll_interval)
        outcome = runner.reuse.wait_briefly(fingerprint, decision.busy.number, task.wait_before_defer, poll)
        if outcome is None:
            trigger = StepLeaseTrigger(task.datastore, fingerprint, decision.busy.number, task.poll_interval)
            task.defer(trigger=trigger, method_name="execute_resume")
        task.log.info("The identical step ended while this worker waited (%s); deciding again.", outcome)


class AmlStepOperator(StepResultOperator):
    """Base of the step operators.

    :param inputs: name -> an upstream step's output (``upstream.output["name"]``), a ``DataPath``
        or a ``DatasetInput``. Names are what scripts and placeholders use.
    :param outputs: a list of the step's ``Output`` declarations (or plain names).
    :param step_params: values the step reads (``runtime.param`` in a script; ``@@name@@`` in
        U-SQL); plain JSON, templated, part of the fingerprint. Airflow's own ``params`` reach a
        step only through templates, such as ``step_params={"epochs": "{{ params.epochs }}"}``.
    :param datastore: connection id of the datastore that keeps outputs, records and the registry.
    :param allow_reuse: serve earlier outputs when nothing that defines the step changed.
    :param lease_ttl: seconds a running step's lease survives without a heartbeat (at least
        ``MIN_LEASE_TTL``).
    :param poll_interval: seconds between checks while waiting for an identical running step.
    :param wait_before_defer: seconds to wait on the worker for an identical running step before
        deferring to the triggerer (a short step then costs about its own duration instead of a
        triggerer round trip); ``0`` defers at once.
    """

    template_fields: Sequence[str] = ("inputs", "step_params")
    ui_color = "#d5e8f7"

    def __init__(
        self,
        *,
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[Output | str] | None = None,
        step_params: Mapping[str, Any] | None = None,
        datastore: str = DEFAULT_CONN_ID,
        allow_reuse: bool = True,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        poll_interval: float = 5.0,
        wait_before_defer: float = DEFAULT_WAIT_BEFORE_DEFER,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.inputs = config.check_mapping("inputs", inputs, "{'raw': DataPath('my_store', 'raw/data.csv')}")
        config.check_input_declarations(self.inputs, resolved_later)
        _check_whole_step_inputs(self.inputs)
        self.outputs = config.check_outputs(outputs)
        self.step_params = config.check_step_params(step_params, resolved_later)
        self.datastore = check_conn_id("datastore", datastore)
        self.allow_reuse = config.check_bool("allow_reuse", allow_reuse)
        self.lease_ttl = check_lease_ttl(lease_ttl)
        self.poll_interval = config.check_seconds("poll_interval", poll_interval, MIN_POLL_INTERVAL)
        self.wait_before_defer = config.check_seconds("wait_before_defer", wait_before_defer, 0.0)
        self._backend: Any = None  # what on_kill stops: a running process or remote job
        self._check_task_params()
        if self.has_dag():
            self.declare_dataset_outlets(self.task_id)

    def _check_task_params(self) -> None:
        """Refuse Airflow ``params`` given to this task that nothing of the step can ever see.

        A user coming from AML writes ``params={"epochs": 5}`` and reads ``runtime.param("epochs")``
        in the script: Airflow takes ``params`` as its own (template variables), so the script
        would silently get ``None``. DAG-level params are Airflow's business and are not checked.
        """
        params = getattr(self, "params", None)
        if not params or not hasattr(params, "get_param"):
            return
        task_level = sorted(k for k in params if getattr(params.get_param(k), "source", None) == "task")
        if not task_level or _uses_params([getattr(self, f, None) for f in self.template_fields]):
            return
        shown = ", ".join(f"{k!r}: ..." for k in task_level)
        raise ConfigurationError(
            "params",
            f"{', '.join(map(repr, task_level))} {'was' if len(task_level) == 1 else 'were'} passed as Airflow"
            " params, which no template of this task uses, so the step never sees them (runtime.param and"
            " @@name@@ read step_params)",
            f"pass step_params={{{shown}}} (AML's params), or use them in a template, such as"
            f" step_params={{'{task_level[0]}': '{{{{ params.{task_level[0]} }}}}'}}",
        )

    # code paths ----------------------------------------------------------------------------------
    def _dag_folder(self) -> Path | None:
        """The folder of the file that defines this task's DAG (``dag.folder``), when known."""
        fileloc = getattr(self.dag, "fileloc", None) if self.has_dag() else None
        return Path(fileloc).parent if fileloc and os.path.isabs(fileloc) else None

    def _resolve_source_directory(self, source_directory: object) -> str | None:
        """``source_directory`` made absolute against the DAG file's folder (as users expect of a
        relative path written in a DAG file), not against the worker's current directory."""
        if source_directory is None:
            return None
        if not isinstance(source_directory, (str, os.PathLike)) or not str(source_directory).strip():
            raise ConfigurationError(
                "source_directory",
                f"expected a folder path, got {source_directory!r}",
                "pass the folder holding the script, absolute or relative to the DAG file's folder",
            )
        path = Path(source_directory).expanduser()
        if path.is_absolute():
            return str(path)
        folder = self._dag_folder()
        # Without a DAG yet, it stays relative and is resolved when the task runs (the DAG is known then).
        return str(folder / path) if folder is not None else str(source_directory)

    def _check_code_at_parse(self, source_directory: str | None, script_name: object, what: str) -> None:
        """Cheap checks of a step's code where it is defined: a script name, and (when its folder is
        on this machine) that the script is there. No file is read or hashed."""
        if not isinstance(script_name, str) or not script_name.strip():
            raise ConfigurationError("script_name", f"expected a file name, got {script_name!r}", f"name the {what}")
        if source_directory is None or not Path(source_directory).is_absolute():
            return
        folder = Path(source_directory)
        if folder.is_dir():
            if not is_template(script_name) and not (folder / script_name).is_file():
                raise ConfigurationError(
                    "script_name",
                    f"{what} {script_name!r} does not exist in source_directory {str(folder)!r}",
                    "correct the name (relative to source_directory) or add the file",
                )
        elif folder.exists():
            raise ConfigurationError(
                "source_directory",
                f"{str(folder)!r} is a file, not a folder",
                "point it at the folder holding the script",
            )
        else:
            # The code may be deployed to workers only; the task fails when it runs if it is missing there too.
            self.log.warning(
                "%s: source_directory %r does not exist on this machine; the task fails unless it exists where"
                " it runs.",
                self.task_id,
                str(folder),
            )

    # what subclasses provide -------------------------------------------------------------------
    def step_definition(self) -> StepDefinition:
        raise NotImplementedError

    def compute_backend(self) -> ComputeBackend:
        return LocalProcessBackend()

    # lifecycle ---------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any] | None:
        return self._decide_and_act(context)

    def execute_resume(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Resumed after waiting on an identical step: decide again (usually: reuse its outputs)."""
        self.log.info("The identical step we waited for ended (%s); deciding again.", (event or {}).get("status"))
        return self._decide_and_act(context)

    def _decide_and_act(self, context: Context) -> dict[str, Any] | None:
        # What templates rendered, and the run's conf, are checked before anything is read or written.
        self.step_params = config.check_step_params(self.step_params, field="step_params (rendered)")
        self.inputs = config.check_mapping("inputs (rendered)", self.inputs, "{'raw': DataPath(...)}")
        regenerate = regenerate_for(self, context)
        stores = DatastoreResolver()
        hasher = Hasher()
        store = stores(self.datastore)
        definition = self.step_definition()
        definition.validate(list(self.inputs), [o.name for o in self.outputs])
        parts = definition.fingerprint_parts(hasher)
        plan = build_plan(self, context, parts, self.inputs, self.outputs, stores, hasher)
        setattr(self, LINEAGE_ATTRIBUTE, {"inputs": lineage.input_datasets(plan.inputs), "outputs": []})
        runner = StepRunner(store, hasher, self.log)
        lease = self.lease_options(context)
        decision = decide_or_defer(
            self,
            runner,
            plan,
            lambda: runner.decide(plan, allow_reuse=self.allow_reuse, regenerate=regenerate, **lease),
        )
        fingerprint = plan.fingerprint.digest
        if isinstance(decision, Reused):
            producer = decision.record.get("producer", {})
            self.log.info(
                "REUSED: fingerprint %s matches record %s of run %s (task %s); nothing executed. Outputs: %s",
                fingerprint[:12],
                decision.record.get("record"),
                producer.get("run_id"),
                producer.get("task_id"),
                ", ".join(f"{n}={r['name']}:{r['version']}" for n, r in decision.outputs.items()) or "none",
            )
            return self._push(context, runner.served(plan, decision), "reused: fingerprint unchanged")
        self.log.info("RUNNING: fingerprint %s; %s.", fingerprint[:12], decision.reason)
        return self.run_step(context, runner, plan, decision, definition)

    def lease_options(self, context: Context) -> dict[str, Any]:
        """How this step holds its lease while it runs (subclasses that defer override it)."""
        return {"lease_ttl": self.lease_ttl}

    def run_step(
        self, context: Context, runner: StepRunner, plan: StepPlan, decision: Run, definition: StepDefinition
    ) -> dict[str, Any] | None:
        """Run the step on this worker and commit it (remote, deferrable backends override this)."""
        result = runner.run(
            plan, decision, self.step_params, lambda ws: self._execute_step(definition, ws), stop=self.on_kill
        )
        return self._push(context, result, decision.reason)

    def _execute_step(self, definition: StepDefinition, workspace: StepWorkspace) -> None:
        backend = self.compute_backend()
        self._backend = backend
        try:
            backend.run(definition.invocation(workspace), lambda stream, line: self.log.info("[%s] %s", stream, line))
        finally:
            self._backend = None

    def on_kill(self) -> None:
        if self._backend is not None:
            self._backend.terminate()

    def _push(self, context: Context, result: StepResult, reason: str) -> dict[str, Any] | None:
        store = DatastoreResolver()(self.datastore)
        kept = getattr(self, LINEAGE_ATTRIBUTE, None) or {"inputs": []}
        setattr(self, LINEAGE_ATTRIBUTE, {**kept, "outputs": lineage.output_datasets(result.outputs, store.url)})
        return self.publish(context, result, reason)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """What the step read and wrote, for Airflow's OpenLineage provider (see :mod:`..lineage`)."""
        kept = getattr(self, LINEAGE_ATTRIBUTE, None)
        return None if kept is None else lineage.operator_lineage(kept)


def check_conn_id(field: str, value: object) -> str:
    """A connection id: a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(field, f"expected a connection id, got {value!r}", f"pass {field}='<connection id>'")
    return value


def _check_whole_step_inputs(inputs: Mapping[str, Any]) -> None:
    """``inputs={"x": upstream.output}`` is one DataRef only when ``upstream`` has one output."""
    for name, value in inputs.items():
        operator = getattr(value, "operator", None)
        if isinstance(value, PlainXComArg) and isinstance(operator, AmlStepOperator) and value.key == "return_value":
            outputs = [o.name for o in operator.outputs]
            if len(outputs) != 1:
                raise ConfigurationError(
                    f"inputs[{name!r}]",
                    f"got all outputs of step {operator.task_id!r}, which has {len(outputs)}"
                    f" ({', '.join(outputs) or 'none'})",
                    f"pick one: {operator.task_id}.output['<output name>']",
                )


def _uses_params(values: Sequence[Any]) -> bool:
    """Whether any template among ``values`` (searched through containers and templated objects) reads ``params``."""
    for value in values:
        if isinstance(value, str):
            if is_template(value) and _PARAMS_IN_TEMPLATE.search(value):
                return True
        elif isinstance(value, Mapping):
            if _uses_params(list(value.values())):
                return True
        elif isinstance(value, (list, tuple, set)):
            if _uses_params(list(value)):
                return True
        elif (
            hasattr(value, "template_fields")
            and not isinstance(value, BaseOperator)
            and _uses_params([getattr(value, f, None) for f in value.template_fields])
        ):
            return True
    return False
