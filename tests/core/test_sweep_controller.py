"""The sweep controller on synthetic trials: concurrency cap, termination, budgets, earlier runs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import optuna

from airflow_provider_amlpipe.sweep import (
    BanditPolicy,
    GridParameterSampling,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
    choice,
)
from airflow_provider_amlpipe.sweep.controller import (
    COMPLETED,
    FAILED,
    SweepController,
    SweepSettings,
    TrialOutcome,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
LOG = logging.getLogger("test-sweep")

CURVES = {
    "good": [0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
    "mid": [0.5, 0.58, 0.66, 0.74, 0.82, 0.9],
    "bad": [0.1, 0.12, 0.14, 0.16, 0.18, 0.2],
    "crash": [0.3],
}


class FakeTrial:
    """Logs one value of its curve per poll; ``crash`` fails after its first value."""

    def __init__(self, launcher: FakeLauncher, curve: str, crash: bool = False) -> None:
        self.launcher = launcher
        self.curve = list(CURVES[curve])
        self.crash = crash or curve == "crash"
        self.logged = 0
        self.terminated = False
        self._outcome: TrialOutcome | None = None

    def poll_metrics(self) -> list[dict[str, Any]]:
        if self._outcome is not None or self.terminated:
            return []
        value = self.curve[self.logged]
        self.logged += 1
        if self.logged == len(self.curve):
            self._end(TrialOutcome(FAILED, "boom") if self.crash else TrialOutcome(COMPLETED))
        return [{"name": "acc", "value": value, "step": self.logged}, {"name": "loss", "value": 1 - value}]

    def _end(self, outcome: TrialOutcome) -> None:
        self._outcome = outcome
        with self.launcher.lock:
            self.launcher.running -= 1

    def done(self) -> bool:
        return self._outcome is not None

    def outcome(self) -> TrialOutcome:
        assert self._outcome is not None
        return self._outcome

    def terminate(self) -> None:
        if self._outcome is None:
            self.terminated = True
            self._end(TrialOutcome(FAILED, "killed"))


class FakeLauncher:
    def __init__(self, fail: frozenset[int] = frozenset()) -> None:
        self.fail = fail
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.started: list[str] = []

    def start(self, number: int, hyperparameters: dict[str, Any]) -> FakeTrial:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started.append(hyperparameters["curve"])
        return FakeTrial(self, hyperparameters["curve"], crash=number in self.fail)


def sweep(
    study: optuna.Study, space: list[str], policy: Any, total: int, concurrent: int, launcher: FakeLauncher
) -> Any:
    sampling = GridParameterSampling({"curve": choice(*space)}, seed=1)
    settings = SweepSettings("acc", "maximize", total, concurrent, None, poll_interval=0.001)
    return SweepController(study, sampling, policy, settings, launcher, LOG).run()


def new_study() -> optuna.Study:
    return optuna.create_study(
        direction="maximize", sampler=GridParameterSampling({"curve": choice("x")}).sampler(1, 1)
    )


def test_runs_the_budget_within_the_concurrency_cap_and_finds_the_best() -> None:
    launcher = FakeLauncher()
    space = ["good", "mid", "bad"]
    study = optuna.create_study(
        direction="maximize", sampler=GridParameterSampling({"curve": choice(*space)}, seed=1).sampler(1, 2)
    )
    result = sweep(study, space, NoTerminationPolicy(), 3, 2, launcher)
    assert launcher.peak == 2
    assert sorted(launcher.started) == sorted(space)
    assert [t.status for t in result.trials] == [COMPLETED] * 3
    best = result.best()
    assert best is not None and best.hyperparameters == {"curve": "good"}
    assert study.best_value == 0.95
    # Optuna holds each trial's curve as intermediate values, one step per interval.
    frozen = {t.user_attrs["hyperparameters"]["curve"]: t for t in study.trials}
    assert frozen["bad"].intermediate_values == {i + 1: v for i, v in enumerate(CURVES["bad"])}


def test_bandit_terminates_the_bad_trial_once_the_delay_has_passed() -> None:
    launcher = FakeLauncher()
    space = ["good", "bad"]
    study = optuna.create_study(
        direction="maximize", sampler=GridParameterSampling({"curve": choice(*space)}, seed=1).sampler(1, 2)
    )
    result = sweep(study, space, BanditPolicy(slack_factor=0.1, delay_evaluation=3), 2, 2, launcher)
    bad = next(t for t in result.trials if t.hyperparameters["curve"] == "bad")
    assert bad.status == "terminated"
    assert len(bad.curve("acc")) == 3  # stopped at the first evaluated interval, not before
    assert "bandit" in (bad.reason or "")
    assert {t.state for t in study.trials} == {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}


def test_a_crashed_trial_fails_and_the_sweep_goes_on() -> None:
    launcher = FakeLauncher()
    space = ["crash", "mid"]
    study = optuna.create_study(
        direction="maximize", sampler=GridParameterSampling({"curve": choice(*space)}, seed=1).sampler(1, 1)
    )
    result = sweep(study, space, None or NoTerminationPolicy(), 2, 1, launcher)
    statuses = {t.hyperparameters["curve"]: t.status for t in result.trials}
    assert statuses == {"crash": FAILED, "mid": COMPLETED}
    assert launcher.peak == 1


def test_a_larger_budget_keeps_the_finished_trials_and_retries_failed_ones() -> None:
    space = ["good", "mid", "bad", "crash"]
    sampling = GridParameterSampling({"curve": choice(*space)}, seed=5)
    study = optuna.create_study(direction="maximize", sampler=sampling.sampler(5, 1))
    first = FakeLauncher(fail=frozenset({0}))
    result = sweep(study, space, NoTerminationPolicy(), 2, 1, first)
    assert [t.status for t in result.trials] == [FAILED, COMPLETED]
    failed_curve = first.started[0]
    second = FakeLauncher()
    result = sweep(study, space, NoTerminationPolicy(), 3, 1, second)
    # The completed trial is taken as it was; the failed one runs again, plus one new trial.
    assert len(second.started) == 2
    assert second.started[0] == failed_curve
    assert sum(1 for t in result.trials if t.reused) == 1


def test_max_duration_cancels_running_trials() -> None:
    class Slow(FakeLauncher):
        def start(self, number: int, hyperparameters: dict[str, Any]) -> FakeTrial:
            trial = super().start(number, hyperparameters)
            trial.curve = trial.curve * 1000
            return trial

    launcher = Slow()
    space = ["good"]
    sampling = GridParameterSampling({"curve": choice(*space)})
    study = optuna.create_study(direction="maximize", sampler=sampling.sampler(1, 1))
    settings = SweepSettings("acc", "maximize", 1, 1, 0.002, poll_interval=0.001)  # 0.12 s
    started = time.monotonic()
    result = SweepController(study, sampling, NoTerminationPolicy(), settings, launcher, LOG).run()
    assert time.monotonic() - started < 5
    assert [t.status for t in result.trials] == ["cancelled"]
    assert result.best() is None


def test_median_and_truncation_stop_the_poor_trial_in_a_sweep() -> None:
    space = ["good", "mid", "bad"]
    for policy in (
        MedianStoppingPolicy(delay_evaluation=2),
        TruncationSelectionPolicy(truncation_percentage=34, delay_evaluation=2),
    ):
        launcher = FakeLauncher()
        sampling = GridParameterSampling({"curve": choice(*space)}, seed=1)
        study = optuna.create_study(direction="maximize", sampler=sampling.sampler(1, 3))
        result = sweep(study, space, policy, 3, 3, launcher)
        statuses = {t.hyperparameters["curve"]: (t.status, len(t.curve("acc"))) for t in result.trials}
        assert statuses == {"good": (COMPLETED, 6), "mid": (COMPLETED, 6), "bad": ("terminated", 2)}, policy


def test_stop_terminates_the_running_trials() -> None:
    class Endless(FakeLauncher):
        def start(self, number: int, hyperparameters: dict[str, Any]) -> FakeTrial:
            trial = super().start(number, hyperparameters)
            trial.curve = trial.curve * 10_000
            return trial

    launcher = Endless()
    sampling = GridParameterSampling({"curve": choice("good", "mid")})
    study = optuna.create_study(direction="maximize", sampler=sampling.sampler(1, 2))
    settings = SweepSettings("acc", "maximize", 2, 2, None, poll_interval=0.001)
    controller = SweepController(study, sampling, NoTerminationPolicy(), settings, launcher, LOG)
    threading.Timer(0.2, controller.stop).start()
    result = controller.run()
    assert [t.status for t in result.trials] == ["cancelled", "cancelled"]
    assert launcher.running == 0
