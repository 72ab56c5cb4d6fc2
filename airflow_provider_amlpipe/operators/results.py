"""What a finished step hands to Airflow: XComs, its status, asset events -- one place for every step kind.

:class:`StepResultOperator` is the base of every task that publishes a step's results: the step
operators and the commit task of a guarded task. XCom writes are kept to what the documented uses
need: each output under its own key (for ``step.output["name"]``), the ``amlpipe_status``, and --
only for a step with several outputs -- the ``{name: DataRef}`` return value (a single-output
step's ``step.output`` *is* its output's key, see :class:`StepOutputs`). The "Reused outputs from"
link reads the status kept on the operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import AssetAlias, BaseOperator, BaseOperatorLink, Context, XComArg
from airflow.sdk.definitions.xcom_arg import PlainXComArg

from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.shell.assets import dataset_alias, dataset_asset, is_dataset_alias
from airflow_provider_amlpipe.shell.links import STATUS_ATTRIBUTE, STATUS_XCOM_KEY, ReusedFromLink
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.runner import StepResult

#: Where a prepared task keeps its dataset aliases between ``prepare_for_execution`` and ``pre_execute``.
_HELD_OUTLETS = "_amlpipe_dataset_outlets"


class StepOutputs(PlainXComArg):
    """``step.output``: like Airflow's, but ``step.output["name"]`` must name a declared output.

    Airflow would only notice a typo when the downstream task renders (``XComNotFound``); the
    outputs are declared, so the mistake is reported where the DAG is written.
    """

    declared: tuple[str, ...] = ()

    def __getitem__(self, item: str) -> XComArg:
        operator = self.operator
        declared = list(self.declared)
        if isinstance(item, str) and item not in (*declared, STATUS_XCOM_KEY, "return_value"):
            raise ConfigurationError(
                f"{operator.task_id}.output[{item!r}]",
                f"task {operator.task_id!r} declares no output {item!r} (its outputs: {', '.join(declared) or 'none'})",
                f"use one of its output names, or declare outputs=[..., {item!r}] on {operator.task_id!r}",
            )
        return super().__getitem__(item)


def step_outputs(operator: BaseOperator, declared: Sequence[str]) -> XComArg:
    """The ``output`` of a task that publishes step results: one output's key when there is exactly
    one (what it pushes instead of a return value), else the ``{name: DataRef}`` return value."""
    arg = StepOutputs(operator=operator, key=declared[0] if len(declared) == 1 else "return_value")
    arg.declared = tuple(declared)
    return arg


class StepResultOperator(BaseOperator):
    """Base of the tasks that publish a step's results: its outputs' XComs, its status, asset events.

    Subclasses set ``datastore`` and ``outputs`` (a list of ``Output``) before calling
    :meth:`declare_dataset_outlets`.
    """

    operator_extra_links: tuple[BaseOperatorLink, ...] = (ReusedFromLink(),)
    datastore: str
    outputs: list[Output]

    @property
    def output(self) -> XComArg:
        """This step's XCom: ``.output["name"]`` is the DataRef of its output ``name``; for a step with
        one output, ``.output`` is that DataRef too."""
        return step_outputs(self, [o.name for o in self.outputs])

    def declare_dataset_outlets(self, step_task_id: str) -> None:
        """One ``AssetAlias`` outlet per output's dataset: what new versions are emitted through."""
        names = config.dataset_names(self.outputs, self.dag_id, step_task_id)
        self.outlets = [*self.outlets, *(dataset_alias(self.datastore, dataset) for dataset in names.values())]

    def prepare_for_execution(self) -> StepResultOperator:
        """The copy Airflow runs, holding back the dataset aliases until :meth:`pre_execute`.

        Before it runs a task with outlets, Airflow asks its API server which of them are inactive
        Assets (a round trip per task instance). That check skips aliases, so for a step whose only
        outlets are its aliases the request cannot find anything; without outlets at that moment
        Airflow does not send it. The aliases are back before ``execute``, so the events a step emits
        through them, and the outlets Airflow reports when the task succeeds, are unchanged.
        """
        prepared = super().prepare_for_execution()
        aliases = [o for o in prepared.outlets if is_dataset_alias(o)]
        if aliases:
            setattr(prepared, _HELD_OUTLETS, list(prepared.outlets))
            prepared.outlets = [o for o in prepared.outlets if not is_dataset_alias(o)]
        return prepared

    def pre_execute(self, context: Any) -> None:
        """Restore the outlets :meth:`prepare_for_execution` held back."""
        self._restore_outlets()

    def _restore_outlets(self) -> None:
        held: list[AssetAlias] | None = self.__dict__.pop(_HELD_OUTLETS, None)
        if held is not None:
            self.outlets = held

    def publish(self, context: Context, result: StepResult, reason: str) -> dict[str, Any] | None:
        """Push ``result``'s XComs and status, emit asset events for new versions; return what
        ``execute`` should return (``None`` for a single-output step, whose output key is its ``output``)."""
        self._restore_outlets()  # also when a subclass's pre_execute did not call ours: events need them
        ti = context["ti"]
        for name, ref in result.outputs.items():
            ti.xcom_push(key=name, value=ref)
        status = result.status(reason)
        ti.xcom_push(key=STATUS_XCOM_KEY, value=status)
        setattr(self, STATUS_ATTRIBUTE, status)  # what ReusedFromLink reads when the task ends
        if self.has_dag():
            events = context["outlet_events"]
            for name, ref in result.outputs.items():
                if result.is_new(name):
                    extra = {"version": ref["version"], "digest": ref["digest"], "run_id": context["run_id"]}
                    alias = dataset_alias(self.datastore, ref["name"])
                    events[alias].add(dataset_asset(self.datastore, ref["name"]), extra=extra)
        for metric in status["metrics"]:
            self.log.info("metric %s = %s", metric.get("name"), metric.get("value"))
        return None if len(result.outputs) == 1 else result.outputs
