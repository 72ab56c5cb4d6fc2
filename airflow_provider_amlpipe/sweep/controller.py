"""The sweep controller: asks Optuna for trials, runs them up to a concurrency cap, follows their
metrics while they run, stops those the policy terminates, and tells Optuna how each ended.

How a trial runs is the launcher's business (:class:`TrialLauncher`); the controller only starts,
polls and terminates handles, so it is tested on synthetic trials and drives script steps in use.
Trials already in the study from an earlier run of the same sweep are taken as they ended: those
that completed or were terminated count towards ``max_total_runs``; failed, cancelled or abandoned
ones are asked again with the same parameters (a failed trial is never taken as finished).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from airflow_provider_amlpipe.sweep.policies import TerminationPolicy, best_of
from airflow_provider_amlpipe.sweep.sampling import ParameterSampling

COMPLETED = "completed"
TERMINATED = "terminated"
FAILED = "failed"
CANCELLED = "cancelled"
#: What a trial's entry keeps in the study's user attribute :data:`RUN_ATTR` (to rebuild it in a later run).
_ATTRS = ("status", "metrics", "started_at", "ended_at", "reason", "reused", "outputs")
#: The user attribute holding how a trial ran; ``hyperparameters`` holds the values it was given.
RUN_ATTR = "amlpipe_run"


class SweepLog(Protocol):
    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


@dataclass
class TrialOutcome:
    """How a trial's run ended, as its launcher saw it."""

    status: str  # COMPLETED or FAILED (the controller knows when it terminated or cancelled one)
    error: str | None = None
    reused: bool = False
    #: The trial's committed outputs (``{name: DataRef dict}``) when it completed.
    outputs: dict[str, Any] = field(default_factory=dict)


class TrialHandle(Protocol):
    """A started trial."""

    def poll_metrics(self) -> list[dict[str, Any]]:
        """The metrics the trial logged since the last call (``runtime.log_metric`` lines)."""
        ...

    def done(self) -> bool: ...

    def outcome(self) -> TrialOutcome:
        """How it ended (only once :meth:`done`)."""
        ...

    def terminate(self) -> None:
        """Stop it now (the process is killed / the job cancelled); :meth:`done` becomes true soon."""
        ...


class TrialLauncher(Protocol):
    def start(self, number: int, hyperparameters: dict[str, Any]) -> TrialHandle: ...


@dataclass
class TrialEntry:
    """One trial of the sweep, as reported in the ``metrics`` output."""

    number: int
    hyperparameters: dict[str, Any]
    status: str = "running"
    metrics: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float | None = None
    reason: str | None = None
    reused: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)

    def curve(self, metric: str) -> list[float]:
        """The primary metric's values in the order logged (one per interval)."""
        return [float(m["value"]) for m in self.metrics if m.get("name") == metric and _is_number(m.get("value"))]

    def to_json(self, metric: str, goal: str) -> dict[str, Any]:
        curve = self.curve(metric)
        return {
            "number": self.number,
            "hyperparameters": self.hyperparameters,
            "status": self.status,
            "value": best_of(curve, goal) if curve else None,
            "intervals": len(curve),
            "metrics": self.metrics,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_seconds": None if self.ended_at is None else round(self.ended_at - self.started_at, 3),
            "reason": self.reason,
            "reused": self.reused,
        }


@dataclass
class SweepSettings:
    """What the controller enforces."""

    primary_metric_name: str
    goal: str
    max_total_runs: int
    max_concurrent_runs: int
    max_duration_minutes: float | None = None
    poll_interval: float = 0.2


@dataclass
class SweepResult:
    trials: list[TrialEntry]
    settings: SweepSettings

    def finished(self) -> list[TrialEntry]:
        """Completed trials that logged the primary metric (the candidates for best)."""
        metric = self.settings.primary_metric_name
        return [t for t in self.trials if t.status == COMPLETED and t.curve(metric)]

    def best(self) -> TrialEntry | None:
        """The completed trial with the best primary metric (its best value); the first on a tie."""
        metric, goal = self.settings.primary_metric_name, self.settings.goal
        candidates = self.finished()
        if not candidates:
            return None
        sign = 1.0 if goal == "maximize" else -1.0
        return max(candidates, key=lambda t: (sign * best_of(t.curve(metric), goal), -t.number))

    def logged_metric_names(self) -> list[str]:
        return sorted({str(m.get("name")) for t in self.trials for m in t.metrics})


class SweepController:
    """Runs one sweep over ``study`` with ``launcher``."""

    def __init__(
        self,
        study: optuna.Study,
        sampling: ParameterSampling,
        policy: TerminationPolicy,
        settings: SweepSettings,
        launcher: TrialLauncher,
        log: SweepLog,
        clock: Callable[[], float] = time.time,
        on_trial_end: Callable[[], None] | None = None,
    ) -> None:
        self.study = study
        self.sampling = sampling
        self.policy = policy
        self.settings = settings
        self.launcher = launcher
        self.log = log
        self.clock = clock
        self.on_trial_end = on_trial_end
        self.trials: dict[int, TrialEntry] = {}
        self._running: dict[int, tuple[optuna.Trial, TrialHandle]] = {}
        self._terminating: dict[int, str] = {}
        self._stopped = False
        self._wake = threading.Event()
        #: Each trial's primary metric values so far (what the policy judges), kept as they are read.
        self._curves: dict[int, list[float]] = {}

    def wake(self) -> None:
        """Look at the trials now rather than after ``poll_interval`` (a launcher calls it when a
        trial ends, so the next one starts without waiting for the poll)."""
        self._wake.set()

    @property
    def budget(self) -> int:
        limit = self.sampling.max_runs()
        total = self.settings.max_total_runs
        return total if limit is None else min(total, limit)

    def stop(self) -> None:
        """Terminate every running trial and start no more (the task is being killed)."""
        self._stopped = True
        for number, (_, handle) in list(self._running.items()):
            self._terminating.setdefault(number, "the sweep was stopped")
            handle.terminate()

    def run(self) -> SweepResult:
        self._take_earlier_trials()
        deadline = None
        if self.settings.max_duration_minutes is not None:
            deadline = self.clock() + self.settings.max_duration_minutes * 60
        while True:
            if deadline is not None and self.clock() >= deadline and not self._stopped:
                self.log.info("max_duration_minutes reached: cancelling %d running trial(s)", len(self._running))
                self._stopped = True
                for number, (_, handle) in list(self._running.items()):
                    self._terminating.setdefault(number, "cancelled: max_duration_minutes reached")
                    handle.terminate()
            self._follow()
            self._launch()  # right after the follow, so a finished trial's slot is filled at once
            if not self._running and (self._stopped or self._done_count() >= self.budget):
                break
            self._wake.wait(self.settings.poll_interval)
            self._wake.clear()
        ordered = sorted(self.trials.values(), key=lambda t: t.number)
        return SweepResult(ordered, self.settings)

    # -- earlier runs --------------------------------------------------------------------------------
    def _take_earlier_trials(self) -> None:
        retry: list[FrozenTrial] = []
        for frozen in self.study.get_trials(deepcopy=False):
            attrs = frozen.user_attrs.get(RUN_ATTR, {})
            status = attrs.get("status")
            counted = frozen.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                frozen.state == TrialState.FAIL and status == COMPLETED
            )
            if counted and self._done_count() < self.budget:
                entry = TrialEntry(frozen.number, dict(frozen.user_attrs.get("hyperparameters", {})))
                for key in _ATTRS:
                    if key in attrs:
                        setattr(entry, key, attrs[key])
                entry.reused = True
                self.trials[frozen.number] = entry
                self._curves[frozen.number] = entry.curve(self.settings.primary_metric_name)
            elif not counted:
                if frozen.state in (TrialState.RUNNING, TrialState.WAITING):
                    self.study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
                if frozen.state != TrialState.WAITING and frozen.params:
                    retry.append(frozen)
        done = {_key(t.hyperparameters) for t in self.trials.values()}
        retried: dict[str, dict[str, Any]] = {}
        for frozen in retry:
            hyperparameters = frozen.user_attrs.get("hyperparameters", {})
            if _key(hyperparameters) not in done:
                retried.setdefault(_key(hyperparameters), dict(frozen.params))
        for params in retried.values():
            self.study.enqueue_trial(params, skip_if_exists=False)
        if self.trials or retried:
            self.log.info(
                "Study %r: %d trial(s) from earlier runs count towards max_total_runs=%d; %d will be tried again.",
                self.study.study_name,
                len(self.trials),
                self.budget,
                len(retried),
            )

    # -- the loop -------------------------------------------------------------------------------------
    def _done_count(self) -> int:
        return sum(1 for t in self.trials.values() if t.status != "running" and t.status != CANCELLED)

    def _launch(self) -> None:
        while (
            not self._stopped
            and len(self._running) < self.settings.max_concurrent_runs
            and self._done_count() + len(self._running) < self.budget
        ):
            trial = self.study.ask(self.sampling.distributions())
            values = self.sampling.values(trial.params)
            trial.set_user_attr("hyperparameters", values)
            entry = TrialEntry(trial.number, values, started_at=self.clock())
            self.trials[trial.number] = entry
            self.log.info("trial %d: starting with %s", trial.number, values)
            self._running[trial.number] = (trial, self.launcher.start(trial.number, values))

    def _follow(self) -> None:
        ended = []
        for number, (trial, handle) in list(self._running.items()):
            finished = handle.done()  # read before the metrics, so none logged before the end is missed
            self._read_metrics(self.trials[number], trial, handle)
            if finished:
                ended.append(number)
        # Again at each running trial's latest interval, now that every trial's news is in: a trial
        # that logs ahead of the others is judged once they caught up, as AML's periodic check does.
        for number, (_, handle) in list(self._running.items()):
            if number not in ended:
                self._judge(self.trials[number], handle)
        for number in ended:
            trial, handle = self._running.pop(number)
            self._finish(self.trials[number], trial, handle.outcome())
        for number, (_, handle) in self._running.items():
            if number in self._terminating:
                handle.terminate()  # again: a trial told to stop while its process was starting

    def _read_metrics(self, entry: TrialEntry, trial: optuna.Trial, handle: TrialHandle) -> None:
        metric = self.settings.primary_metric_name
        for record in handle.poll_metrics():
            if entry.number in self._terminating:
                break  # what a terminated trial logs after the decision is not part of its run
            entry.metrics.append(record)
            if record.get("name") != metric or not _is_number(record.get("value")):
                continue
            curve = self._curves.setdefault(entry.number, [])
            curve.append(float(record["value"]))
            trial.report(curve[-1], step=len(curve))
            self._judge(entry, handle)

    def _judge(self, entry: TrialEntry, handle: TrialHandle) -> None:
        """Apply the policy to ``entry`` at its latest interval; terminate it if the policy says so."""
        interval = len(self._curves.get(entry.number, ()))
        if entry.number in self._terminating or interval == 0:
            return
        finished = [n for n, t in self.trials.items() if t.status == COMPLETED]
        reason = self.policy.decide(entry.number, interval, self._curves, self.settings.goal, finished)
        if reason is not None:
            self.log.info("trial %d: terminated at interval %d (%s)", entry.number, interval, reason)
            self._terminating[entry.number] = reason
            handle.terminate()

    def _finish(self, entry: TrialEntry, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        entry.ended_at = self.clock()
        entry.reused = outcome.reused
        entry.outputs = outcome.outputs
        metric = self.settings.primary_metric_name
        curve = entry.curve(metric)
        reason = self._terminating.pop(entry.number, None)
        state: TrialState
        if reason is not None and outcome.status != COMPLETED:
            entry.status = CANCELLED if reason.startswith("cancelled") or self._stopped else TERMINATED
            entry.reason = reason
            state = TrialState.PRUNED if entry.status == TERMINATED else TrialState.FAIL
        elif outcome.status == COMPLETED:
            entry.status = COMPLETED
            if not curve:
                entry.reason = f"the trial never logged the primary metric {metric!r}"
            state = TrialState.COMPLETE if curve else TrialState.FAIL
        else:
            entry.status = FAILED
            entry.reason = outcome.error
            state = TrialState.FAIL
        # One attribute, not one per field: each is a write (and an fsync) to the study's storage.
        trial.set_user_attr(RUN_ATTR, {key: getattr(entry, key) for key in _ATTRS})
        value = best_of(curve, self.settings.goal) if state == TrialState.COMPLETE else None
        self.study.tell(trial, value, state=state)
        if self.on_trial_end is not None:
            self.on_trial_end()
        self.log.info(
            "trial %d: %s%s%s",
            entry.number,
            entry.status,
            "" if value is None else f", {metric} = {value:g}",
            " (reused)" if entry.reused else "",
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _key(hyperparameters: dict[str, Any]) -> str:
    return repr(sorted(hyperparameters.items()))
