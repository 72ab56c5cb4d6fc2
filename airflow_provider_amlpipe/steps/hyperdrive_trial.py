"""A sweep's trial as a script step: fingerprinted, reused, run and committed by the step base.

A trial is the sweep's script step with its hyperparameters appended as ``--name value``
arguments, so its fingerprint is that step's (code, arguments, environment, inputs, outputs): a
trial that already completed -- in an earlier run, or in another sweep with the same trial -- is
served from its record instead of run. It runs on :class:`~airflow_provider_amlpipe.compute.local.
LocalProcessBackend` in a thread of the sweep's worker; the controller tails its metrics file while
it runs and calls :meth:`ScriptTrialHandle.terminate` to kill it. A terminated or failed trial
commits nothing, so it is never reused as finished.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.compute.local import LocalProcessBackend
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import StepFailedError
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.steps.python_script import PythonScriptStep
from airflow_provider_amlpipe.steps.runner import Reused, Run, StepLog, StepPlan, StepRunner, StepWorkspace, Wait
from airflow_provider_amlpipe.sweep.controller import COMPLETED, FAILED, TrialOutcome
from airflow_provider_amlpipe.sweep.expressions import argument_text, flag

#: Seconds between checks while an identical trial runs elsewhere.
_WAIT_POLL = 0.2


def hyperparameter_arguments(hyperparameters: dict[str, Any]) -> list[str]:
    """``--name value`` for each hyperparameter, as AML passes them."""
    arguments: list[str] = []
    for name, value in hyperparameters.items():
        arguments.extend((flag(name), argument_text(value)))
    return arguments


@dataclass
class TrialTemplate:
    """What every trial of a sweep shares: the script step, its fingerprint parts, inputs and outputs."""

    step: PythonScriptStep
    parts: dict[str, Any]  # the script step's fingerprint parts, hashed once per sweep
    sweep: StepPlan
    outputs: list[Output]
    dataset_names: dict[str, str]

    def plan(self, number: int, hyperparameters: dict[str, Any]) -> tuple[PythonScriptStep, StepPlan]:
        arguments = [*self.step.arguments, *hyperparameter_arguments(hyperparameters)]
        step = replace(self.step, arguments=arguments)
        parts = {
            **self.parts,
            "arguments": arguments,
            "inputs": {name: item.digest for name, item in sorted(self.sweep.inputs.items())},
            "outputs": {o.name: self.dataset_names[o.name] for o in self.outputs},
        }
        producer = {**self.sweep.producer, "trial": number}
        plan = StepPlan(
            f"{self.sweep.step_id}.trial",
            self.sweep.inputs,
            list(self.outputs),
            self.dataset_names,
            Fingerprint(parts),
            producer,
        )
        return step, plan


class ScriptTrialLauncher:
    """Starts trials as script steps through ``runner`` (see the module's docstring)."""

    def __init__(
        self,
        runner: StepRunner,
        template: TrialTemplate,
        log: StepLog,
        *,
        allow_reuse: bool,
        lease_ttl: float,
        regenerate: bool = False,
    ) -> None:
        self.runner = runner
        self.template = template
        self.log = log
        self.allow_reuse = allow_reuse
        self.lease_ttl = lease_ttl
        #: Run every trial, superseding earlier records of the same trial (``regenerate_outputs``).
        self.regenerate = regenerate
        #: Called from a trial's thread when it ends (the controller's ``wake``).
        self.on_done: Callable[[], None] | None = None

    def start(self, number: int, hyperparameters: dict[str, Any]) -> ScriptTrialHandle:
        step, plan = self.template.plan(number, hyperparameters)
        handle = ScriptTrialHandle(self, number, step, plan)
        handle.thread.start()
        return handle


class ScriptTrialHandle:
    """One trial running in a thread of the sweep's worker."""

    def __init__(self, launcher: ScriptTrialLauncher, number: int, step: PythonScriptStep, plan: StepPlan) -> None:
        self.launcher = launcher
        self.number = number
        self.step = step
        self.plan = plan
        self.thread = threading.Thread(target=self._run, name=f"amlpipe-trial-{number}", daemon=True)
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._metrics_file: Path | None = None
        self._offset = 0
        self._partial = b""
        self._backend: LocalProcessBackend | None = None
        self._terminate = threading.Event()
        self._outcome: TrialOutcome | None = None

    # -- what the controller calls --------------------------------------------------------------------
    def poll_metrics(self) -> list[dict[str, Any]]:
        with self._lock:
            self._read_file()
            pending, self._pending = self._pending, []
        return pending

    def done(self) -> bool:
        return self._outcome is not None

    def outcome(self) -> TrialOutcome:
        assert self._outcome is not None
        return self._outcome

    def terminate(self) -> None:
        self._terminate.set()
        backend = self._backend
        if backend is not None:
            backend.terminate()

    # -- the trial's thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._outcome = self._decide_and_run()
        except Exception as exc:  # the trial failed; the sweep goes on
            self._outcome = TrialOutcome(FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            if self.launcher.on_done is not None:
                self.launcher.on_done()

    def _decide_and_run(self) -> TrialOutcome:
        launcher = self.launcher
        runner = launcher.runner
        while True:
            decision = runner.decide(
                self.plan,
                allow_reuse=launcher.allow_reuse,
                regenerate=launcher.regenerate,
                lease_ttl=launcher.lease_ttl,
            )
            if not isinstance(decision, Wait):
                break
            if self._terminate.is_set():
                return TrialOutcome(FAILED, "terminated while an identical trial ran elsewhere")
            runner.reuse.wait_briefly(self.plan.fingerprint.digest, decision.busy.number, 5.0, _WAIT_POLL)
        if isinstance(decision, Reused):
            result = runner.served(self.plan, decision)
            with self._lock:
                self._pending.extend(decision.record.get("metrics", []))
            return TrialOutcome(COMPLETED, reused=True, outputs=result.outputs)
        assert isinstance(decision, Run)
        result = runner.run(self.plan, decision, self.step.params, self._execute, stop=self.terminate)
        return TrialOutcome(COMPLETED, outputs=result.outputs)

    def _execute(self, workspace: StepWorkspace) -> None:
        with self._lock:
            self._metrics_file = workspace.metrics_file
        backend = LocalProcessBackend()
        self._backend = backend
        try:
            if self._terminate.is_set():
                raise StepFailedError("terminated before it started")
            log = self.launcher.log
            backend.run(
                self.step.invocation(workspace),
                lambda stream, line: log.info("[trial %d %s] %s", self.number, stream, line),
            )
        finally:
            self._backend = None
            with self._lock:
                self._read_file()  # the workspace goes once the run ends: keep its last metrics
                self._metrics_file = None

    def _read_file(self) -> None:
        """New complete lines of the metrics file (the caller holds the lock)."""
        path = self._metrics_file
        if path is None:
            return
        try:
            with open(path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            try:
                metric = json.loads(line)
            except ValueError:
                continue  # not a runtime.log_metric line; the step's own reader warns about it
            if isinstance(metric, dict) and isinstance(metric.get("name"), str) and "value" in metric:
                self._pending.append(metric)
