"""Reuse-decision overhead per step: what a reused step costs, in milliseconds.

Measures, on a realistic step (a 40-file source folder, two upstream inputs of 10 x 1 MiB files
each, one output of 10 x 1 MiB files) in a local datastore:

- plan: hashing the code (stat cache warm), resolving inputs, composing the fingerprint;
- decide: looking up the record and verifying the outputs against their manifest;
- cold: the first decision with an empty stat cache (every byte read once).

The baseline, run side by side in the same process and machine, is the cheapest possible
execution of a step: spawning ``python -c pass``. Reported: medians and the ratio to it.
Run: ``python bench/bench_reuse_decision.py [--iterations 200]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.data.registry import DatasetRegistry
from airflow_provider_amlpipe.hashing import Hasher, StatCache
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.steps.inputs import resolve_inputs
from airflow_provider_amlpipe.steps.python_script import PythonScriptStep
from airflow_provider_amlpipe.steps.runner import Reused, Run, StepPlan, StepRunner, StepWorkspace

MiB = 1 << 20
LOG = logging.getLogger("bench")


def make_tree(root: Path, files: int, size: int, seed: int) -> Path:
    root.mkdir(parents=True)
    block = os.urandom(size)
    for i in range(files):
        (root / f"f{i:03d}.bin").write_bytes(f"{seed}-{i}".encode() + block)
    return root


def setup(work: Path) -> tuple[LocalDatastore, dict[str, object], PythonScriptStep]:
    store = LocalDatastore("bench", work / "store")
    hasher = Hasher(StatCache(work / "setup.sqlite"))
    registry = DatasetRegistry(store)
    refs = {}
    for name in ("a", "b"):
        manifest = objects.publish(store, make_tree(work / f"in-{name}", 10, MiB, hash(name)), hasher)
        refs[name] = registry.register(f"bench.{name}", manifest, {})[0].to_dict()
    src = work / "src"
    src.mkdir()
    for i in range(40):
        (src / f"module_{i}.py").write_text(f"VALUE = {i}\n" * 200)
    (src / "step.py").write_text("print('hi')\n")
    step = PythonScriptStep("step.py", str(src), ["--in", "{inputs.a}", "--out", "{outputs.out}"], {"lr": 0.1})
    return store, refs, step


def plan(store: LocalDatastore, refs: dict[str, object], step: PythonScriptStep, hasher: Hasher) -> StepPlan:
    inputs = resolve_inputs(refs, lambda _: store, hasher, "bench")
    parts = {
        **step.fingerprint_parts(hasher),
        "inputs": {n: i.digest for n, i in sorted(inputs.items())},
        "outputs": {"out": "bench.out"},
    }
    return StepPlan("bench.step", inputs, [Output("out")], {"out": "bench.out"}, Fingerprint(parts), {})


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amlpipe-bench-") as tmp:
        work = Path(tmp)
        store, refs, step = setup(work)
        cold_hasher = Hasher(StatCache(work / "cold.sqlite"))
        runner = StepRunner(store, cold_hasher, LOG)
        first = plan(store, refs, step, cold_hasher)
        decision = runner.decide(first, allow_reuse=True, regenerate=False, lease_ttl=60)
        assert isinstance(decision, Run)

        def write_outputs(workspace: StepWorkspace) -> None:
            for i in range(10):
                (workspace.outputs["out"] / f"o{i}.bin").write_bytes(os.urandom(MiB))

        runner.run(first, decision, {}, write_outputs)

        cold_cache = Hasher(StatCache(work / "cold2.sqlite"))
        cold_ms = timed(
            lambda: StepRunner(store, cold_cache, LOG).decide(
                plan(store, refs, step, cold_cache), allow_reuse=True, regenerate=False, lease_ttl=60
            )
        )
        warm = Hasher(StatCache(work / "cold2.sqlite"))
        warm_runner = StepRunner(store, warm, LOG)
        plans, decides, spawns = [], [], []
        for _ in range(args.iterations):
            started = time.perf_counter()
            step_plan = plan(store, refs, step, warm)
            planned = time.perf_counter()
            hit = warm_runner.decide(step_plan, allow_reuse=True, regenerate=False, lease_ttl=60)
            decided = time.perf_counter()
            if not isinstance(hit, Reused):
                sys.exit("expected a reuse hit")
            plans.append((planned - started) * 1000)
            decides.append((decided - planned) * 1000)
            spawns.append(timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)))
        result = {
            "date": date.today().isoformat(),
            "nproc": os.cpu_count(),
            "iterations": args.iterations,
            "plan_ms_median": round(statistics.median(plans), 3),
            "decide_ms_median": round(statistics.median(decides), 3),
            "total_ms_median": round(statistics.median(p + d for p, d in zip(plans, decides, strict=True)), 3),
            "cold_first_decision_ms": round(cold_ms, 1),
            "baseline_python_spawn_ms_median": round(statistics.median(spawns), 3),
        }
        result["ratio_total_to_spawn"] = round(result["total_ms_median"] / result["baseline_python_spawn_ms_median"], 3)
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"reuse-decision-{result['date']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
