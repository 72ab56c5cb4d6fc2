"""The HyperDrive step: a hyperparameter sweep whose trials are script steps, as one reusable step.

The sweep as a whole is a step (fingerprint: the trial's script step, the sampling, the policy,
the primary metric and goal, the run limits, inputs, outputs); an unchanged sweep is served from
its record. Its run opens the Optuna study (:mod:`~airflow_provider_amlpipe.sweep.storage`), lets
the :class:`~airflow_provider_amlpipe.sweep.controller.SweepController` run trials through
:mod:`~airflow_provider_amlpipe.steps.hyperdrive_trial`, then writes the ``metrics`` output (every
trial: hyperparameters, metric history, status, times) and the best trial's outputs, which the
step base commits as the sweep's versions.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from typing import Any

import optuna

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError
from airflow_provider_amlpipe.hashing import Hasher, sha256_json
from airflow_provider_amlpipe.steps.hyperdrive_trial import ScriptTrialLauncher, TrialRemote, TrialTemplate
from airflow_provider_amlpipe.steps.python_script import PythonScriptStep
from airflow_provider_amlpipe.steps.runner import StepLog, StepPlan, StepRunner, StepWorkspace
from airflow_provider_amlpipe.sweep import report
from airflow_provider_amlpipe.sweep.controller import COMPLETED, SweepController, SweepResult, SweepSettings
from airflow_provider_amlpipe.sweep.policies import TerminationPolicy, best_of
from airflow_provider_amlpipe.sweep.sampling import ParameterSampling, check_flag_clash
from airflow_provider_amlpipe.sweep.storage import StudyStore

KIND = "hyperdrive"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"
#: Fingerprint parts that only bound how many trials run: a rerun with a larger budget keeps the study.
_BUDGET_PARTS = ("max_total_runs", "max_duration_minutes")


@dataclass
class HyperDriveStep:
    """A sweep: everything that defines its result (the operator builds it)."""

    trial: PythonScriptStep
    sampling: ParameterSampling
    policy: TerminationPolicy
    settings: SweepSettings
    trial_outputs: list[Output]
    metrics_output: str
    optuna_storage: str | None = None
    allow_trial_reuse: bool = True
    lease_ttl: float = 60.0
    #: Where trials run when not on this worker (an Azure Batch pool).
    remote: TrialRemote | None = None
    _controller: SweepController | None = field(default=None, repr=False)
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False)

    output_hint = "did every trial write its outputs (runtime.output_path)?"

    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        self.trial.validate(input_names, [o.name for o in self.trial_outputs])
        check_flag_clash(self.sampling, self.trial.arguments)

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        s = self.settings
        return {
            "kind": KIND,
            "trial": self.trial.fingerprint_parts(hasher),
            "sampling": self.sampling.identity(),
            "policy": self.policy.identity(),
            "primary_metric_name": s.primary_metric_name,
            "goal": s.goal,
            "max_total_runs": s.max_total_runs,
            "max_concurrent_runs": s.max_concurrent_runs,
            "max_duration_minutes": s.max_duration_minutes,
            "metrics_output": self.metrics_output,
        }

    def stop(self) -> None:
        """Terminate the running trials (``on_kill``)."""
        self._stopped.set()
        if self._controller is not None:
            self._controller.stop()

    # -- the run ---------------------------------------------------------------------------------------
    def run(
        self,
        runner: StepRunner,
        plan: StepPlan,
        workspace: StepWorkspace,
        trial_dataset_names: dict[str, str],
        log: StepLog,
        *,
        fresh: bool = False,
    ) -> SweepResult:
        """Run the sweep in ``workspace`` and fill its outputs; the caller commits them.

        ``fresh`` (the sweep runs because reuse is off or ``regenerate_outputs`` was asked for) runs
        every trial again, in a study of this run's own, rather than continuing the sweep's study.
        """
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self.remote is not None:
            self.remote.check()
        parts = plan.fingerprint.parts
        name = study_name(parts) + (f"-{sha256_json(plan.producer)[:8]}" if fresh else "")
        study_store = StudyStore(runner.store, name, workspace.root / "study", self.optuna_storage)
        seed = self.sampling.seed if self.sampling.seed is not None else sampling_seed(parts)
        concurrent = self.settings.max_concurrent_runs
        study = study_store.open(lambda done: self.sampling.sampler(seed + done, concurrent), self.settings.goal)
        log.info("Optuna study %r in %s", study.study_name, study_store.describe())
        template = TrialTemplate(self.trial, parts["trial"], plan, self.trial_outputs, trial_dataset_names, self.remote)
        launcher = ScriptTrialLauncher(
            runner, template, log, allow_reuse=self.allow_trial_reuse, lease_ttl=self.lease_ttl, regenerate=fresh
        )
        controller = SweepController(
            study, self.sampling, self.policy, self.settings, launcher, log, on_trial_end=study_store.save
        )
        launcher.on_done = controller.wake
        self._controller = controller
        if self._stopped.is_set():
            controller.stop()
        try:
            result = controller.run()
        finally:
            self._controller = None
            study_store.save()
        if self._stopped.is_set():
            raise StepFailedError("the sweep was stopped")
        best = self._check(result)
        self._write_outputs(runner.store, launcher, result, workspace, study_store, log, plan.step_id)
        metrics = [
            {"name": "best_trial", "value": best.number, "step": None},
            {"name": "best_value", "value": _best_value(result), "step": None},
            {"name": "best_hyperparameters", "value": best.hyperparameters, "step": None},
            {"name": "trials", "value": len(result.trials), "step": None},
        ]
        with open(workspace.metrics_file, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(m) + "\n" for m in metrics)
        return result

    def _check(self, result: SweepResult) -> Any:
        best = result.best()
        if best is not None:
            return best
        metric = self.settings.primary_metric_name
        if not any(t.status == COMPLETED for t in result.trials):
            errors = "; ".join(f"trial {t.number}: {t.status} ({t.reason})" for t in result.trials[:5])
            raise StepFailedError(f"no trial completed: {errors or 'no trial ran'}")
        logged = ", ".join(result.logged_metric_names()) or "none"
        raise ConfigurationError(
            "primary_metric_name",
            f"no trial logged the primary metric {metric!r}; the trials logged: {logged}",
            f"log it in the trial script with runtime.log_metric({metric!r}, value), or name one of the logged metrics",
        )

    def _write_outputs(
        self,
        store: Datastore,
        launcher: ScriptTrialLauncher,
        result: SweepResult,
        workspace: StepWorkspace,
        study_store: StudyStore,
        log: StepLog,
        title: str,
    ) -> None:
        best = result.best()
        assert best is not None
        metric, goal = self.settings.primary_metric_name, self.settings.goal
        document = {
            "primary_metric_name": metric,
            "primary_metric_goal": goal,
            "best_trial": best.number,
            "best_value": _best_value(result),
            "best_hyperparameters": best.hyperparameters,
            "max_total_runs": self.settings.max_total_runs,
            "max_concurrent_runs": self.settings.max_concurrent_runs,
            "study": {"name": study_store.study_name, "storage": study_store.describe()},
            "trials": [t.to_json(metric, goal) for t in result.trials],
        }
        folder = workspace.outputs[self.metrics_output]
        (folder / METRICS_FILE).write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
        (folder / REPORT_FILE).write_text(report.render(document, f"Sweep {title}"), encoding="utf-8")
        if not self.trial_outputs:
            return
        # Served (or, if its record is gone, run again) through the step base: outputs verified intact.
        launcher.regenerate = False
        handle = launcher.start(best.number, best.hyperparameters)
        handle.thread.join()
        outcome = handle.outcome()
        if outcome.status != COMPLETED:
            raise StepFailedError(f"the best trial's outputs could not be served: {outcome.error}")
        for output in self.trial_outputs:
            ref = outcome.outputs[output.name]
            source = objects.materialize(store, ref["digest"], workspace.root / "best" / output.name)
            shutil.copytree(source, workspace.outputs[output.name], dirs_exist_ok=True)
        log.info("best trial %d: %s = %s with %s", best.number, metric, document["best_value"], best.hyperparameters)


def _best_value(result: SweepResult) -> float:
    best = result.best()
    assert best is not None
    return best_of(best.curve(result.settings.primary_metric_name), result.settings.goal)


def study_name(parts: dict[str, Any]) -> str:
    """The Optuna study of a sweep: its fingerprint without the run budget, so a larger budget
    continues the same study."""
    return "amlpipe-" + sha256_json({k: v for k, v in parts.items() if k not in _BUDGET_PARTS})[:24]


def sampling_seed(parts: dict[str, Any]) -> int:
    """The sampler's default seed: from the trial, its inputs and the space -- not the policy or the
    budget -- so sweeps that differ only there sample the same trials and reuse them."""
    basis = {"trial": parts["trial"], "inputs": parts.get("inputs"), "space": parts["sampling"]["space"]}
    return int(sha256_json(basis)[:8], 16)
