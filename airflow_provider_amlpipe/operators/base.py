"""The base every step operator shares: resolve, fingerprint, reuse or wait or run, commit, push."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from airflow.sdk import Asset, BaseOperator, Context

from airflow_provider_amlpipe.assets import dataset_asset
from airflow_provider_amlpipe.compute.base import ComputeBackend, Invocation
from airflow_provider_amlpipe.compute.local import LocalProcessBackend
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.datastore import DEFAULT_CONN_ID, DatastoreResolver
from airflow_provider_amlpipe.links import STATUS_ATTRIBUTE, STATUS_XCOM_KEY, ReusedFromLink
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.reuse.hashing import Hasher
from airflow_provider_amlpipe.reuse.store import DEFAULT_LEASE_TTL
from airflow_provider_amlpipe.steps.inputs import resolve_inputs
from airflow_provider_amlpipe.steps.runner import (
    Reused,
    Run,
    StepPlan,
    StepResult,
    StepRunner,
    StepWorkspace,
    Wait,
    check_unique_outputs,
    reused_result,
)
from airflow_provider_amlpipe.triggers.step_lease import StepLeaseTrigger

REGENERATE_CONF_KEY = "amlpipe"


class StepDefinition(Protocol):
    """What a step kind provides to the shared lifecycle."""

    def validate(self, input_names: list[str], output_names: list[str]) -> None: ...

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]: ...

    def invocation(self, workspace: StepWorkspace) -> Invocation: ...


def regenerate_requested(conf: Mapping[str, Any] | None, task_id: str) -> bool:
    """Whether DAG-run conf ``{"amlpipe": {"regenerate_outputs": true | [task ids]}}`` names this task."""
    section = (conf or {}).get(REGENERATE_CONF_KEY) or {}
    if not isinstance(section, Mapping):
        raise ConfigurationError(
            "dag_run.conf.amlpipe",
            f"expected an object, got {section!r}",
            'pass {"amlpipe": {"regenerate_outputs": true}}',
        )
    value = section.get("regenerate_outputs", False)
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return task_id in value
    raise ConfigurationError(
        "dag_run.conf.amlpipe.regenerate_outputs",
        f"expected true/false or a list of task ids, got {value!r}",
        'pass true, or a list such as ["train"]',
    )


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
    inputs = resolve_inputs(raw_inputs, stores, hasher, getattr(task, "datastore", DEFAULT_CONN_ID))
    producer = {
        "dag_id": task.dag_id,
        "task_id": task_id,
        "run_id": context["run_id"],
        "try_number": ti.try_number,
        "map_index": map_index,
    }
    dataset_names = {o.name: o.register_as or f"{task.dag_id}.{task_id}.{o.name}" for o in outputs}
    parts = {
        **parts,
        "inputs": {name: item.digest for name, item in sorted(inputs.items())},
        "outputs": {o.name: dataset_names[o.name] for o in outputs},
    }
    suffix = f".{map_index}" if map_index not in (-1, None) else ""
    step_id = f"{task.dag_id}.{task_id}{suffix}"
    return StepPlan(step_id, inputs, list(outputs), dataset_names, Fingerprint(parts), producer)


class AmlStepOperator(BaseOperator):
    """Base of the step operators.

    :param inputs: name -> an upstream step's output (``upstream.output["name"]``), a ``DataPath``
        or a ``DatasetInput``. Names are what scripts and placeholders use.
    :param outputs: the step's ``Output`` declarations (or plain names).
    :param datastore: connection id of the datastore that keeps outputs, records and the registry.
    :param allow_reuse: serve earlier outputs when nothing that defines the step changed.
    :param lease_ttl: seconds a running step's lease survives without a heartbeat.
    :param poll_interval: seconds between checks while waiting for an identical running step.
    """

    template_fields: Sequence[str] = ("inputs", "step_params")
    operator_extra_links = (ReusedFromLink(),)
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.inputs = dict(inputs or {})
        self.outputs = [o if isinstance(o, Output) else Output(o) for o in (outputs or [])]
        check_unique_outputs(self.outputs)
        self.step_params = dict(step_params or {})
        self.datastore = datastore
        self.allow_reuse = allow_reuse
        self.lease_ttl = lease_ttl
        self.poll_interval = poll_interval
        self._backend: Any = None  # what on_kill stops: a running process or remote job
        if self.has_dag():
            self.outlets = [*self.outlets, *self._output_assets().values()]

    def _output_assets(self) -> dict[str, Asset]:
        return {
            o.name: dataset_asset(self.datastore, o.register_as or f"{self.dag_id}.{self.task_id}.{o.name}")
            for o in self.outputs
        }

    # what subclasses provide -------------------------------------------------------------------
    def step_definition(self) -> StepDefinition:
        raise NotImplementedError

    def compute_backend(self) -> ComputeBackend:
        return LocalProcessBackend()

    # lifecycle ---------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        return self._decide_and_act(context)

    def execute_resume(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resumed after waiting on an identical step: decide again (usually: reuse its outputs)."""
        self.log.info("The identical step we waited for ended (%s); deciding again.", (event or {}).get("status"))
        return self._decide_and_act(context)

    def _decide_and_act(self, context: Context) -> dict[str, Any]:
        stores = DatastoreResolver()
        hasher = Hasher()
        store = stores(self.datastore)
        definition = self.step_definition()
        definition.validate(list(self.inputs), [o.name for o in self.outputs])
        parts = definition.fingerprint_parts(hasher)
        plan = build_plan(self, context, parts, self.inputs, self.outputs, stores, hasher)
        runner = StepRunner(store, hasher, self.log)
        dag_run = context.get("dag_run")
        regenerate = regenerate_requested(getattr(dag_run, "conf", None), self.task_id)
        decision = runner.decide(
            plan, allow_reuse=self.allow_reuse, regenerate=regenerate, **self.lease_options(context)
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
            return self._push(context, reused_result(plan, decision), "reused: fingerprint unchanged")
        if isinstance(decision, Wait):
            self.log.info(
                "An identical step (fingerprint %s) is running now (lease %s held by %s); waiting for it.",
                fingerprint[:12],
                decision.busy.number,
                decision.busy.owner,
            )
            self.defer(
                trigger=StepLeaseTrigger(self.datastore, fingerprint, decision.busy.number, self.poll_interval),
                method_name="execute_resume",
            )
        assert isinstance(decision, Run)
        self.log.info("RUNNING: fingerprint %s; %s.", fingerprint[:12], decision.reason)
        return self.run_step(context, runner, plan, decision, definition)

    def lease_options(self, context: Context) -> dict[str, Any]:
        """How this step holds its lease while it runs (subclasses that defer override it)."""
        return {"lease_ttl": self.lease_ttl}

    def run_step(
        self, context: Context, runner: StepRunner, plan: StepPlan, decision: Run, definition: StepDefinition
    ) -> dict[str, Any]:
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

    def _push(self, context: Context, result: StepResult, reason: str) -> dict[str, Any]:
        ti = context["ti"]
        for name, ref in result.outputs.items():
            ti.xcom_push(key=name, value=ref)
        record = result.record
        status = {
            "reused": result.reused,
            "reason": reason,
            "fingerprint": result.fingerprint,
            "record": record.get("record"),
            "producer": record.get("producer", {}),
            "duration_seconds": record.get("duration_seconds"),
            "versions": {name: ref["version"] for name, ref in result.outputs.items()},
            "datasets": {name: ref["name"] for name, ref in result.outputs.items()},
            "new_versions": result.new_versions,
            "metrics": record.get("metrics", []),
        }
        ti.xcom_push(key=STATUS_XCOM_KEY, value=status)
        setattr(self, STATUS_ATTRIBUTE, status)  # what ReusedFromLink reads when the task ends
        if self.has_dag():
            events = context["outlet_events"]
            for name, asset in self._output_assets().items():
                ref = result.outputs[name]
                events[asset].extra = {"version": ref["version"], "digest": ref["digest"], "reused": result.reused}
        for metric in status["metrics"]:
            self.log.info("metric %s = %s", metric.get("name"), metric.get("value"))
        return result.outputs
