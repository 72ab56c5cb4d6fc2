"""ParallelRun throughput against ``multiprocessing.Pool`` running the same ``run()`` on the same items.

Both sides use the same entry script (loaded by the same loader, ``init()`` once per worker), the
same mini-batches of ``--items`` small files and ``--workers`` spawned processes; ``run()`` reads each
file and does ``--work`` rounds of SHA-256 over it (CPU-bound, like scoring). Measured, alternating
the order each round, medians over ``--rounds``:

- ``pool``: ``multiprocessing.Pool(initializer=init).imap(run, batches)`` -- the baseline;
- ``worker_pool``: our ``WorkerPool`` over the same batches (with its retry, timeout and threshold
  bookkeeping; the items are listed and hashed before the clock starts);
- ``driver``: the whole step body, ``run_parallel``: items listed and hashed, records logged,
  ``append_row`` written in input order, summary and metrics.

Reported: seconds and items/s of each, and the throughput ratio to the baseline per round (the runs of
a round are back to back, so they share the machine's load) and its median (goal >= 0.9).
Run: ``python bench/bench_parallel.py [--items 2000] [--batch 10] [--workers 2] [--work 1000] [--rounds 9]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.parallel.config import MiniBatchSize
from airflow_provider_amlpipe.parallel.driver import DriverSpec, run_parallel
from airflow_provider_amlpipe.parallel.items import file_batches, file_items
from airflow_provider_amlpipe.parallel.pool import PoolSettings, WorkerPool
from airflow_provider_amlpipe.parallel.worker import WorkerSpec, as_rows, load_entry_script

SCRIPT = """
import argparse, hashlib, os

def init():
    global rounds
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=int)
    rounds = parser.parse_known_args()[0].work

def run(mini_batch):
    rows = []
    for path in mini_batch:
        with open(path, "rb") as handle:
            data = handle.read()
        for _ in range(rounds):
            data = hashlib.sha256(data).digest() + data[32:]
        rows.append(f"{os.path.basename(path)} {data[:8].hex()}")
    return rows
"""

_module: Any = None


def _init(spec: WorkerSpec) -> None:
    global _module
    _module = load_entry_script(spec)
    _module.init()


def _run(files: list[str]) -> list[str]:
    return as_rows(_module.run(files))


def baseline(spec: WorkerSpec, batches: list[list[str]], workers: int) -> tuple[float, list[str]]:
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init, initargs=(spec,)) as pool:
        rows = [row for batch in pool.imap(_run, batches) for row in batch]
    return time.perf_counter() - started, rows


def ours(spec: WorkerSpec, settings: PoolSettings, data: Path, batch: int) -> tuple[float, list[str]]:
    batches = file_batches(file_items([("data", data)], Hasher()), batch)
    started = time.perf_counter()
    done: dict[int, list[str]] = {}
    WorkerPool(spec, settings, lambda message: None).run(batches, lambda b, rows, files: done.__setitem__(b.id, rows))
    rows = [row for key in sorted(done) for row in done[key]]
    return time.perf_counter() - started, rows


def driver(spec: WorkerSpec, settings: PoolSettings, data: Path, work: Path, batch: int) -> tuple[float, list[str]]:
    out = work / "out"
    out.mkdir(exist_ok=True)
    for name in ("records.jsonl", "metrics.jsonl"):
        (work / name).unlink(missing_ok=True)
    driver_spec = DriverSpec(
        entry_script=spec.entry_script,
        source_directory=spec.source_directory,
        arguments=spec.arguments,
        dataset_type="file",
        inputs=[("data", str(data))],
        output_dir=str(out),
        output_action="append_row",
        append_row_file_name="rows.txt",
        pool=settings,
        mini_batch_size=MiniBatchSize(count=batch),
        record_log=str(work / "records.jsonl"),
        metrics_file=str(work / "metrics.jsonl"),
    )
    started = time.perf_counter()
    run_parallel(driver_spec, lambda message: None)
    return time.perf_counter() - started, (out / "rows.txt").read_text().splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=int, default=1000, help="SHA-256 rounds per item")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    from _machine import cpu_model, host_cpu

    with tempfile.TemporaryDirectory(prefix="amlpipe-bench-parallel-") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        for i in range(args.items):
            (data / f"item-{i:06d}.bin").write_bytes(os.urandom(512))
        (work / "entry.py").write_text(SCRIPT)
        spec = WorkerSpec(str(work / "entry.py"), str(work), ["--work", str(args.work)], {})
        settings = PoolSettings(
            processes=args.workers, run_invocation_timeout=600, run_max_try=3, error_threshold=0, progress_interval=5
        )
        names = sorted(str(p) for p in data.iterdir())
        batches = [names[i : i + args.batch] for i in range(0, len(names), args.batch)]
        baseline(spec, batches[:2], args.workers)  # warm the page cache and imports
        times: dict[str, list[float]] = {"pool": [], "worker_pool": [], "driver": []}
        busy_start, steal_start = host_cpu()
        for round_number in range(args.rounds):
            order = ["pool", "worker_pool", "driver"]
            if round_number % 2:
                order.reverse()
            results: dict[str, list[str]] = {}
            for name in order:
                if name == "pool":
                    seconds, results[name] = baseline(spec, batches, args.workers)
                elif name == "worker_pool":
                    seconds, results[name] = ours(spec, settings, data, args.batch)
                else:
                    seconds, results[name] = driver(spec, settings, data, work, args.batch)
                times[name].append(seconds)
            if not results["pool"] == results["worker_pool"] == results["driver"]:
                sys.exit("the three runs disagree on the rows")
        busy_end, steal_end = host_cpu()
    medians = {name: statistics.median(values) for name, values in times.items()}
    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "items": args.items,
        "mini_batch_size": args.batch,
        "workers": args.workers,
        "sha256_rounds_per_item": args.work,
        "rounds": args.rounds,
        "host_cpu_busy_s": round(busy_end - busy_start, 1),
        "host_cpu_steal_s": round(steal_end - steal_start, 1),
    }
    for name, seconds in medians.items():
        result[name] = {
            "seconds_median": round(seconds, 3),
            "items_per_s": round(args.items / seconds, 1),
            "all_seconds": [round(s, 3) for s in times[name]],
        }
    for name in ("worker_pool", "driver"):
        # Throughput ratio per round (the two ran back to back, under the same neighbours), then the median.
        paired = [pool / mine for pool, mine in zip(times["pool"], times[name], strict=True)]
        result[f"ratio_{name}_to_pool"] = round(statistics.median(paired), 3)
        result[f"ratio_{name}_to_pool_per_round"] = [round(r, 3) for r in paired]
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"parallel-{result['date']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
