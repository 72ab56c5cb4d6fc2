"""Sweep controller overhead per trial, against a bare Optuna loop running the same trial script.

Both sides run the example DAG's trial (dags/scripts/hyperdrive/train: an MLPClassifier on the
bundled digits, a few epochs, ``validation_acc`` logged per epoch) as one subprocess per trial,
over the same space with Optuna's ``RandomSampler``:

- **baseline**: ``study.optimize`` whose objective writes the run context, runs the script with
  ``subprocess.run`` and returns the best logged value -- the least a script-based Optuna loop does;
- **sweep**: :class:`~airflow_provider_amlpipe.steps.hyperdrive.HyperDriveStep` through the step
  base, as the operator runs it (no Airflow): each trial fingerprinted, leased, run through the
  local backend while its metrics are tailed, its output committed as a version and its record
  written; the study kept in the datastore; the best model committed at the end.

The two alternate, ``--repeats`` times each, on a fresh datastore every time (nothing reused), and
the script checks that both ran the same trials (same seed, same distributions).
Reported: wall seconds per trial (medians over repeats) and the ratio sweep / baseline, and the same
for CPU seconds (this process and its children: the trials), which other load on a shared machine
disturbs far less than wall time.
``--quick`` swaps the network for a script that only logs a quadratic objective three times, which
shows the sweep's fixed cost per trial (a lower bound of any real trial's duration).
Run: ``python bench/bench_sweep.py [--trials 8] [--repeats 3] [--concurrent 1] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import optuna
from _machine import cpu_model

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.hashing import Hasher, StatCache
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.runtime import CONTEXT_ENV
from airflow_provider_amlpipe.steps.hyperdrive import HyperDriveStep
from airflow_provider_amlpipe.steps.python_script import PythonScriptStep
from airflow_provider_amlpipe.steps.runner import Run, StepPlan, StepRunner, StepWorkspace
from airflow_provider_amlpipe.sweep import NoTerminationPolicy, RandomParameterSampling, choice, loguniform
from airflow_provider_amlpipe.sweep.controller import SweepSettings

TRAIN = Path(__file__).resolve().parent.parent / "dags" / "scripts" / "hyperdrive" / "train"
QUICK = """\
import argparse, math
from airflow_provider_amlpipe import runtime
parser = argparse.ArgumentParser()
for name in ("--batch-size", "--first-layer-neurons", "--second-layer-neurons", "--epochs", "--model"):
    parser.add_argument(name)
parser.add_argument("--learning-rate", type=float)
args = parser.parse_args()
for epoch in range(1, 4):
    runtime.log_metric("validation_acc", epoch / 3 - (math.log(args.learning_rate) + 3) ** 2 / 100, step=epoch)
open(args.model + "/model.txt", "w").write(str(args.learning_rate))
"""
LOG = logging.getLogger("bench")
EPOCHS = "3"
FIXED = ["--first-layer-neurons", "50", "--second-layer-neurons", "50", "--epochs", EPOCHS]


#: Both sides' samplers: the same seed over the same distributions draws the same trials.
SEED = 1


def space() -> RandomParameterSampling:
    return RandomParameterSampling(
        {"--batch-size": choice(25, 50, 100), "--learning-rate": loguniform(-6, -1)}, seed=SEED
    )


def baseline(trials: int, concurrent: int, work: Path) -> tuple[float, list[dict[str, Any]]]:
    """Seconds for a bare Optuna loop over the same script, and the trials it ran."""
    ran: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        batch = trial.suggest_categorical("--batch-size", [25, 50, 100])
        rate = trial.suggest_float("--learning-rate", math.exp(-6), math.exp(-1), log=True)
        ran.append({"--batch-size": batch, "--learning-rate": rate})
        run = Path(tempfile.mkdtemp(dir=work))
        (run / "model").mkdir()
        context = {"outputs": {"model": str(run / "model")}, "inputs": {}, "metrics_file": str(run / "m.jsonl")}
        (run / "context.json").write_text(json.dumps(context))
        argv = [sys.executable, str(TRAIN / "train.py"), *FIXED, "--model", str(run / "model")]
        argv += ["--batch-size", str(batch), "--learning-rate", repr(rate)]
        env = {**os.environ, CONTEXT_ENV: str(run / "context.json"), "PYTHONPATH": str(TRAIN)}
        subprocess.run(argv, cwd=run, env=env, check=True, capture_output=True)
        values = [json.loads(line)["value"] for line in (run / "m.jsonl").read_text().splitlines()]
        return float(max(values))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=SEED))
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=concurrent)
    return time.perf_counter() - started, ran


def sweep(trials: int, concurrent: int, work: Path) -> tuple[float, list[dict[str, Any]]]:
    """Seconds for the HyperDrive step over the same script, through the step base, and its trials."""
    ran: list[dict[str, Any]] = []
    store = LocalDatastore("bench", work / "store")
    hasher = Hasher(StatCache(work / "statcache.sqlite"))
    runner = StepRunner(store, hasher, LOG)
    trial = PythonScriptStep("train.py", str(TRAIN), [*FIXED, "--model", "{outputs.model}"], {})
    step = HyperDriveStep(
        trial,
        space(),
        NoTerminationPolicy(),
        SweepSettings("validation_acc", "maximize", trials, concurrent),
        [Output("model")],
        "metrics",
    )
    started = time.perf_counter()
    parts = {**step.fingerprint_parts(hasher), "inputs": {}, "outputs": {"model": "b.model", "metrics": "b.metrics"}}
    outputs = [Output("model"), Output("metrics")]
    plan = StepPlan("bench.sweep", {}, outputs, {"model": "b.model", "metrics": "b.metrics"}, Fingerprint(parts))
    decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=60)
    assert isinstance(decision, Run)

    def execute(workspace: StepWorkspace) -> None:
        result = step.run(runner, plan, workspace, {"model": "b.trials.model"}, LOG)
        assert sum(1 for t in result.trials if t.status == "completed" and not t.reused) == trials
        ran.extend(t.hyperparameters for t in result.trials)

    runner.run(plan, decision, {}, execute)
    return time.perf_counter() - started, ran


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a trivial trial script instead of the network")
    args = parser.parse_args()
    global TRAIN
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bases: list[float] = []
    sweeps: list[float] = []
    base_cpu: list[float] = []
    sweep_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="amlpipe-bench-sweep-") as tmp:
        if args.quick:
            TRAIN = Path(tmp) / "quick"
            TRAIN.mkdir()
            (TRAIN / "train.py").write_text(QUICK)
        for repeat in range(args.repeats):
            trials_of = {}
            for name, fn, into, cpu_into in (
                ("baseline", baseline, bases, base_cpu),
                ("sweep", sweep, sweeps, sweep_cpu),
            ):
                work = Path(tmp) / f"{name}-{repeat}"
                work.mkdir()
                cpu_before = cpu_seconds()
                seconds, trials_of[name] = fn(args.trials, args.concurrent, work)
                cpu_into.append(cpu_seconds() - cpu_before)
                into.append(seconds)
            key = lambda t: sorted(t.items())  # noqa: E731
            if sorted(map(key, trials_of["baseline"])) != sorted(map(key, trials_of["sweep"])):
                sys.exit(f"the two sides ran different trials: {trials_of}")
    per_trial = {
        "baseline_s_per_trial": round(statistics.median(bases) / args.trials, 4),
        "sweep_s_per_trial": round(statistics.median(sweeps) / args.trials, 4),
    }
    result = {
        "date": date.today().isoformat(),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "trials": args.trials,
        "concurrent": args.concurrent,
        "trial_script": "quick" if args.quick else "dags/scripts/hyperdrive/train (MLPClassifier, 3 epochs)",
        "repeats": args.repeats,
        "baseline_runs_s": [round(x, 3) for x in bases],
        "sweep_runs_s": [round(x, 3) for x in sweeps],
        **per_trial,
        "overhead_ms_per_trial": round((per_trial["sweep_s_per_trial"] - per_trial["baseline_s_per_trial"]) * 1000, 1),
        "ratio_sweep_to_baseline": round(statistics.median(sweeps) / statistics.median(bases), 3),
        # Other processes share the machine: the fastest run of each side is the least disturbed.
        "ratio_fastest_runs": round(min(sweeps) / min(bases), 3),
        "baseline_cpu_s_per_trial": round(statistics.median(base_cpu) / args.trials, 4),
        "sweep_cpu_s_per_trial": round(statistics.median(sweep_cpu) / args.trials, 4),
        "cpu_overhead_ms_per_trial": round(
            (statistics.median(sweep_cpu) - statistics.median(base_cpu)) / args.trials * 1000, 1
        ),
        "cpu_ratio_sweep_to_baseline": round(statistics.median(sweep_cpu) / statistics.median(base_cpu), 3),
    }
    print(json.dumps(result, indent=2))
    out = (
        Path(__file__).parent
        / "results"
        / f"sweep{'-quick' if args.quick else ''}-c{args.concurrent}-{result['date']}.json"
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
