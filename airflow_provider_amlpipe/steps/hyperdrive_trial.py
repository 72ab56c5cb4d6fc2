"""A sweep's trial as a script step: fingerprinted, reused, run and committed by the step base.

A trial is the sweep's script step with its hyperparameters appended as ``--name value``
arguments, so its fingerprint is that step's (code, arguments, environment, inputs, outputs): a
trial that already completed -- in an earlier run, or in another sweep with the same trial -- is
served from its record instead of run. It runs in a thread of the sweep's worker, on
:class:`~airflow_provider_amlpipe.compute.local.LocalProcessBackend`, or as a job on a remote compute
(:class:`TrialRemote`: an Azure Batch task, through the remote-job base
:class:`~airflow_provider_amlpipe.steps.remote_run.RemoteStepRun`, whose metrics file is copied into
the trial's workspace as it grows). The controller tails that file while the trial runs and calls
:meth:`ScriptTrialHandle.terminate` to kill the process or cancel the job. A terminated or failed
trial commits nothing, so it is never reused as finished.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.compute.batch_pool import KIND as BATCH_KIND
from airflow_provider_amlpipe.compute.local import LocalProcessBackend
from airflow_provider_amlpipe.compute.remote import LineSink, remote_job_id
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError
from airflow_provider_amlpipe.hashing import sha256_json
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.steps.node_launch import METRICS_FILE, batch_python_job
from airflow_provider_amlpipe.steps.python_script import PythonScriptStep
from airflow_provider_amlpipe.steps.remote_run import RemoteStepRun, RemoteTarget
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


@dataclass(frozen=True)
class TrialRemote:
    """Where trials run when not on this worker: an Azure Batch connection and one of its pools."""

    target: RemoteTarget
    pool_id: str
    #: Seconds between a running trial's status checks (and reads of its metrics file).
    poll_interval: float = 2.0

    def check(self) -> None:
        """Refuse a connection whose service cannot run a trial (before any trial starts)."""
        compute = self.target.open()
        try:
            kind = compute.backend.kind
        finally:
            compute.backend.close()
        if kind != BATCH_KIND:
            raise ConfigurationError(
                "trial.compute",
                f"{self.target.name!r} is a {kind} connection; trials run on this worker or on Azure Batch",
                "pass an amlpipe_azure_batch connection (with trial pool_id=...), or compute='local'",
            )


@dataclass
class TrialTemplate:
    """What every trial of a sweep shares: the script step, its fingerprint parts, inputs and outputs."""

    step: PythonScriptStep
    parts: dict[str, Any]  # the script step's fingerprint parts, hashed once per sweep
    sweep: StepPlan
    outputs: list[Output]
    dataset_names: dict[str, str]
    remote: TrialRemote | None = None

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
        self._backend: LocalProcessBackend | RemoteStepRun | None = None
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
        log = self.launcher.log

        def sink(stream: str, line: str) -> None:
            log.info("[trial %d %s] %s", self.number, stream, line)

        remote = self.launcher.template.remote
        backend = LocalProcessBackend() if remote is None else self._remote_backend(remote, sink, workspace)
        self._backend = backend
        try:
            if self._terminate.is_set():
                raise StepFailedError("terminated before it started")
            if isinstance(backend, LocalProcessBackend):
                backend.run(self.step.invocation(workspace), sink)
            else:
                assert remote is not None
                self._run_remote(backend, remote, workspace)
        finally:
            self._backend = None
            with self._lock:
                self._read_file()  # the workspace goes once the run ends: keep its last metrics
                self._metrics_file = None

    def _remote_backend(self, remote: TrialRemote, sink: LineSink, workspace: StepWorkspace) -> RemoteStepRun:
        # The job's metrics file is copied into the workspace's as it grows: tailed as a local trial's.
        mirror = {METRICS_FILE: workspace.metrics_file}
        return RemoteStepRun(remote.target, BATCH_KIND, self.launcher.log, sink, remote.poll_interval, mirror)

    def _run_remote(self, run: RemoteStepRun, remote: TrialRemote, workspace: StepWorkspace) -> None:
        step, plan = self.step, self.plan
        script = step.script_name if step.folder is not None else step.script_path.name
        job = batch_python_job(
            python=step.vm_python,
            code=step.code_files(),
            program=[script, *step.arguments],
            input_names=list(plan.inputs),
            output_names=[o.name for o in plan.outputs],
            pool_id=remote.pool_id,
            scratch=workspace.root / "node",
            step_id=plan.step_id,
            params=step.params,
            job_name=f"{plan.step_id} {self.number}",
            output_hint=step.output_hint,
        )
        sweep = {k: plan.producer.get(k) for k in ("dag_id", "task_id", "run_id", "map_index")}
        # Stable across retries of the sweep's task: a retry reattaches to a trial's job still running.
        job_id = remote_job_id(plan.fingerprint.digest, sha256_json(sweep))
        optional = tuple(o.name for o in plan.outputs if not o.required)
        run.run(
            plan,
            job,
            job_id,
            self.launcher.runner.store,
            workspace.root / "remote",
            workspace.root / "outputs",
            optional,
        )

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
