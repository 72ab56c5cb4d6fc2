"""``HyperDriveStepOperator``: AML's HyperDriveStep (a hyperparameter sweep) on Optuna."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import Context, XComArg

from airflow_provider_amlpipe.compute.batch_pool import POOL_ID_RULE, check_pool_id
from airflow_provider_amlpipe.compute.environment import PythonEnvironment
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.operators.base import AmlStepOperator, StepDefinition, check_conn_id
from airflow_provider_amlpipe.operators.python_script import arguments_text
from airflow_provider_amlpipe.operators.results import StepOutputs
from airflow_provider_amlpipe.shell.links import SweepReportLink
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.python_script import PythonScriptStep
from airflow_provider_amlpipe.steps.remote_run import RemoteTarget
from airflow_provider_amlpipe.steps.runner import Run, StepPlan, StepRunner, StepWorkspace
from airflow_provider_amlpipe.sweep.policies import check_goal, check_policy
from airflow_provider_amlpipe.sweep.sampling import MAX_TOTAL_RUNS, check_flag_clash, check_sampling
from airflow_provider_amlpipe.sweep.storage_url import check_storage_url

if TYPE_CHECKING:
    from airflow_provider_amlpipe.steps.hyperdrive import HyperDriveStep
    from airflow_provider_amlpipe.steps.hyperdrive_trial import TrialRemote

LOCAL = "local"
#: XCom keys of the sweep's result, besides its outputs.
BEST_KEYS = ("best_hyperparameters", "best_value", "best_trial")


@dataclass
class ScriptTrial:
    """The script each trial runs (AML's ``ScriptRunConfig``): the sweep appends ``--name value``
    for every hyperparameter to ``arguments``. ``inputs`` are the operator's inputs (templated).

    ``compute``: ``"local"`` (a process on the sweep's worker) or an ``amlpipe_azure_batch`` connection
    id: each trial is then a task on the existing pool ``pool_id``, run by ``environment.interpreter``
    on the node (default ``python3``)."""

    script_name: str
    source_directory: str | None = None
    arguments: Sequence[Any] = ()
    inputs: Mapping[str, Any] | None = None
    environment: PythonEnvironment | None = None
    compute: str = "local"
    pool_id: str | None = None


class HyperDriveStepOperator(AmlStepOperator):
    """Run a hyperparameter sweep as one reusable step; each trial is itself a reusable script step.

    :param trial: a :class:`ScriptTrial` (the script, its folder, arguments, inputs, environment; where
        trials run: this worker, or an Azure Batch connection and pool).
    :param hyperparameter_sampling: ``RandomParameterSampling``, ``GridParameterSampling`` or
        ``BayesianParameterSampling`` over AML parameter expressions.
    :param policy: ``BanditPolicy``, ``MedianStoppingPolicy``, ``TruncationSelectionPolicy``,
        ``NoTerminationPolicy`` or ``None``.
    :param primary_metric_name: the metric trials log with ``runtime.log_metric``; a trial's value is
        its best logged value (AML's "best primary metric").
    :param primary_metric_goal: ``PrimaryMetricGoal.MAXIMIZE`` / ``MINIMIZE`` (or the strings).
    :param max_total_runs: trials in all (at most 1000); a grid stops at its size.
    :param max_concurrent_runs: trials at once (default: ``max_total_runs``, as in AML).
    :param max_duration_minutes: after this, running trials are cancelled and no more start.
    :param outputs: what each trial writes; the best trial's are committed as the sweep's versions.
    :param metrics_output: the output holding ``metrics.json`` (every trial's parameters, metric
        history, status and duration).
    :param optuna_storage: an Optuna RDB URL for the study; default: a journal in the datastore.
    :param allow_trial_reuse: serve trials that already completed (in any sweep) from their records.
    :param poll_interval: also the seconds between a remote trial's status checks and metrics reads.
    See :class:`AmlStepOperator` for ``datastore``, ``allow_reuse`` and the rest.
    """

    template_fields: Sequence[str] = (*AmlStepOperator.template_fields, "arguments")
    operator_extra_links = (*AmlStepOperator.operator_extra_links, SweepReportLink())
    ui_color = "#f3e3c3"

    def __init__(
        self,
        *,
        trial: ScriptTrial,
        hyperparameter_sampling: Any,
        primary_metric_name: str,
        primary_metric_goal: Any,
        max_total_runs: int,
        policy: Any = None,
        max_concurrent_runs: int | None = None,
        max_duration_minutes: float | None = 10080,
        outputs: Sequence[Output | str] | None = None,
        metrics_output: str = "metrics",
        optuna_storage: str | None = None,
        allow_trial_reuse: bool = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(trial, ScriptTrial):
            raise ConfigurationError(
                "trial", f"expected a ScriptTrial, got {trial!r}", "pass trial=ScriptTrial(script_name='train.py', ...)"
            )
        trial_outputs = config.check_outputs(outputs)
        if metrics_output in {o.name for o in trial_outputs}:
            raise ConfigurationError(
                "metrics_output", f"{metrics_output!r} is also a trial output", "give the metrics output its own name"
            )
        sweep_outputs = [*trial_outputs, Output(metrics_output)]
        super().__init__(inputs=trial.inputs, outputs=sweep_outputs, **kwargs)
        self.trial_outputs = trial_outputs
        self.metrics_output = metrics_output
        self.trial_compute = check_conn_id("trial.compute", trial.compute)
        self.trial_pool_id = _check_trial_pool(trial)
        self.script_name = trial.script_name
        self.source_directory = self._resolve_source_directory(trial.source_directory)
        self._check_code_at_parse(self.source_directory, trial.script_name, "trial script")
        self.arguments = args.normalize(arguments_text(trial.arguments))
        args.check(self.arguments, self.inputs, [o.name for o in trial_outputs])
        if trial.environment is not None and not isinstance(trial.environment, PythonEnvironment):
            raise ConfigurationError(
                "trial.environment",
                f"expected a PythonEnvironment, got {trial.environment!r}",
                "pass PythonEnvironment(interpreter=..., requirements=...)",
            )
        self.environment = trial.environment or PythonEnvironment()
        if self.trial_compute != LOCAL and self.environment.requirements is not None:
            raise ConfigurationError(
                "trial.environment.requirements",
                "a requirements venv is built on this worker only, not on a Batch node",
                "install the packages on the pool's nodes and name their interpreter:"
                " PythonEnvironment(interpreter='/path/on/the/node/python'), or use compute='local'",
            )
        folder = None if self.source_directory is None else Path(self.source_directory)
        self.environment.validate(folder if folder is not None and folder.is_absolute() else None)
        self.sampling = check_sampling(hyperparameter_sampling)
        self.policy = check_policy(policy)
        if self.sampling.method == "bayesian" and self.policy.kind != "no_termination":
            raise ConfigurationError(
                "policy",
                f"{type(self.policy).__name__} with Bayesian sampling: AML's Bayesian sampling supports no early"
                " termination",
                "pass policy=None (or NoTerminationPolicy()), or use RandomParameterSampling",
            )
        check_flag_clash(self.sampling, self.arguments)
        if not isinstance(primary_metric_name, str) or not primary_metric_name:
            raise ConfigurationError(
                "primary_metric_name", f"expected a metric name, got {primary_metric_name!r}", "pass the logged name"
            )
        self.primary_metric_name = primary_metric_name
        self.primary_metric_goal = check_goal(primary_metric_goal)
        self.max_total_runs = _check_count("max_total_runs", max_total_runs, 1, MAX_TOTAL_RUNS)
        concurrent = max_total_runs if max_concurrent_runs is None else max_concurrent_runs
        self.max_concurrent_runs = _check_count("max_concurrent_runs", concurrent, 1, self.max_total_runs)
        if max_duration_minutes is not None and (
            isinstance(max_duration_minutes, bool)
            or not isinstance(max_duration_minutes, (int, float))
            or not math.isfinite(max_duration_minutes)
            or max_duration_minutes <= 0
        ):
            raise ConfigurationError(
                "max_duration_minutes",
                f"expected a positive number of minutes, got {max_duration_minutes!r}",
                "pass max_duration_minutes=60, or None for no limit",
            )
        self.max_duration_minutes = max_duration_minutes
        self.optuna_storage = check_storage_url(optuna_storage)
        self.allow_trial_reuse = config.check_bool("allow_trial_reuse", allow_trial_reuse)
        self._sweep: HyperDriveStep | None = None

    @property
    def output(self) -> XComArg:
        """``.output["model"]``: the best trial's output; ``.output["best_hyperparameters"]`` etc. too."""
        arg = StepOutputs(operator=self, key="return_value")
        arg.declared = (*(o.name for o in self.outputs), *BEST_KEYS)
        return arg

    def step_definition(self) -> StepDefinition:
        # A sweep is not one invocation: run_step below runs it, the base only validates and fingerprints it.
        return cast(StepDefinition, self.sweep_definition())

    def sweep_definition(self) -> HyperDriveStep:
        # imported here: the sweep loads Optuna (0.3 s), which only a task that sweeps needs, not every parse
        from airflow_provider_amlpipe.steps.hyperdrive import HyperDriveStep
        from airflow_provider_amlpipe.sweep.controller import SweepSettings

        folder = self._dag_folder()
        trial = PythonScriptStep(
            script_name=self.script_name,
            source_directory=self._resolve_source_directory(self.source_directory),
            arguments=list(self.arguments),
            params=self.step_params,
            environment=self.environment,
            base_dir=None if folder is None else str(folder),
            step_id=f"{self.dag_id}.{self.task_id}",
            on_node=self.trial_compute != LOCAL,
        )
        settings = SweepSettings(
            self.primary_metric_name,
            self.primary_metric_goal,
            self.max_total_runs,
            self.max_concurrent_runs,
            self.max_duration_minutes,
        )
        return HyperDriveStep(
            trial,
            self.sampling,
            self.policy,
            settings,
            [Output(o.name) for o in self.trial_outputs],
            self.metrics_output,
            self.optuna_storage,
            self.allow_trial_reuse,
            self.lease_ttl,
            self._trial_remote(),
        )

    def _trial_remote(self) -> TrialRemote | None:
        if self.trial_compute == LOCAL:
            return None
        from airflow_provider_amlpipe.hooks.azure_batch import AzureBatchHook
        from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver
        from airflow_provider_amlpipe.steps.hyperdrive_trial import TrialRemote

        conn_id = self.trial_compute
        target = RemoteTarget(
            conn_id, lambda: AzureBatchHook(conn_id).get_remote_compute(), DatastoreResolver(), self.datastore
        )
        assert self.trial_pool_id is not None
        return TrialRemote(target, self.trial_pool_id, self.poll_interval)

    def run_step(
        self, context: Context, runner: StepRunner, plan: StepPlan, decision: Run, definition: StepDefinition
    ) -> dict[str, Any] | None:
        from airflow_provider_amlpipe.steps.hyperdrive import HyperDriveStep

        assert isinstance(definition, HyperDriveStep)
        self._sweep = definition
        trial_names = config.dataset_names(self.trial_outputs, self.dag_id, f"{self.task_id}.trials")

        def execute(workspace: StepWorkspace) -> None:
            # Without a lease, reuse is off or regenerate_outputs was asked for: trials run again too.
            definition.run(runner, plan, workspace, trial_names, self.log, fresh=decision.lease is None)

        try:
            result = runner.run(plan, decision, self.step_params, execute, stop=definition.stop)
        finally:
            self._sweep = None
        return self._push(context, result, decision.reason)

    def on_kill(self) -> None:
        if self._sweep is not None:
            self._sweep.stop()

    def _push(self, context: Context, result: Any, reason: str) -> dict[str, Any] | None:
        returned = super()._push(context, result, reason)
        metrics = {m.get("name"): m.get("value") for m in result.record.get("metrics", [])}
        ti = context["ti"]
        for key, metric in zip(BEST_KEYS, ("best_hyperparameters", "best_value", "best_trial"), strict=True):
            ti.xcom_push(key=key, value=metrics.get(metric))
        return returned


def _check_trial_pool(trial: ScriptTrial) -> str | None:
    """A remote trial's pool: required with a Batch connection, refused with ``compute="local"``."""
    if trial.compute == LOCAL:
        if trial.pool_id is not None:
            raise ConfigurationError(
                "trial.pool_id", "given with compute='local'", "pass compute='<Batch connection>', or drop pool_id"
            )
        return None
    return check_pool_id(
        "trial.pool_id",
        trial.pool_id,
        why=f"trials on {trial.compute!r} run as tasks on an existing pool",
        fix=f"pass pool_id='<pool>': {POOL_ID_RULE}",
    )


def _check_count(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            field,
            f"expected an integer from {low} to {high}, got {value!r}",
            f"pass an integer from {low} to {high}" + (" (max_total_runs)" if field == "max_concurrent_runs" else ""),
        )
    return value
