"""Benchmark fingerprint hashing (``Hasher`` + ``StatCache``) against ``sha256sum``.

Usage::

    python bench/bench_hashing.py [--dir D] [--total-gb 1.0] [--files 10000] [--keep]

The script generates a synthetic corpus (by default 1 GiB in 10,000 files in nested folders:
many small files plus about 1% multi-MiB ones), warms the OS page cache by running
``sha256sum`` over it once, then times, side by side on the same files and in the same run:

* ``sha256sum``: ``find ROOT -type f -print0 | xargs -0 sha256sum > /dev/null`` (one process);
* ``ours_cold``: ``Hasher(StatCache(<fresh path>)).hash_tree(root)``, every file read;
* ``ours_warm``: the same ``Hasher`` again, its stat cache populated (no content reads);
* ``sha256sum_again``: the baseline once more, to estimate run-to-run noise;
* ``sha256sum_parallel``: ``xargs -P $(nproc)``, for reference, since ``Hasher`` uses threads.

Each measurement is repeated (3 times by default, alternating order) and medians are reported,
as a table on stdout and as JSON in ``bench/results/hashing-<date>.json``, with the ratio of
best-of-N times too (other load on the machine only ever adds time, so minimums are the robust
figure on a busy machine; the CPU used by other processes meanwhile is reported alongside).
Because the page cache is warm for every measurement, the comparison is CPU/overhead-bound, not
disk-bound. Only the time *ratios* against the baseline are meaningful across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _machine import cpu_model, host_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from airflow_provider_amlpipe.hashing import (  # noqa: E402
    FileEntry,
    Hasher,
    StatCache,
    tree_digest,
)

MIB = 1 << 20
GIB = 1 << 30
BLOCK_SIZE = 4 * MIB
SMALL_MIN, SMALL_MAX = 128, 128 * 1024
LARGE_FRACTION = 0.01
CORPUS_VERSION = 1
MEASUREMENTS = (
    "sha256sum",
    "ours_cold",
    "ours_warm",
    "sha256sum_again",
    "sha256sum_parallel",
)


@dataclass
class CorpusInfo:
    """What was generated (or reused): where, how many files and bytes, and the size spread."""

    root: Path
    files: int
    total_bytes: int
    large_files: int
    min_size: int
    median_size: int
    max_size: int
    generated: bool
    generation_s: float

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view (the root is recorded for information only)."""
        return {
            "root": str(self.root),
            "files": self.files,
            "total_bytes": self.total_bytes,
            "total_gib": round(self.total_bytes / GIB, 3),
            "large_files_ge_1mib": self.large_files,
            "min_size": self.min_size,
            "median_size": self.median_size,
            "max_size": self.max_size,
            "generated_this_run": self.generated,
            "generation_s": round(self.generation_s, 3),
        }


@dataclass
class Samples:
    """Seconds per repetition of one measurement: wall clock, its own CPU, and interference.

    ``other_cpu`` is CPU the rest of the machine used meanwhile, ``steal`` CPU the hypervisor
    gave to another tenant: either one inflates wall times on a small machine.
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    other_cpu: list[float] = field(default_factory=list)
    steal: list[float] = field(default_factory=list)


def plan_sizes(files: int, total_bytes: int, seed: int) -> list[int]:
    """File sizes summing to ``total_bytes``: log-uniform small files plus ~1% multi-MiB ones."""
    rng = random.Random(seed)
    n_large = max(1, round(files * LARGE_FRACTION))
    n_small = files - n_large
    if n_small < 0:
        raise ValueError("need at least one file")
    ratio = SMALL_MAX / SMALL_MIN
    small = [int(SMALL_MIN * ratio ** rng.random()) for _ in range(n_small)]
    remaining = total_bytes - sum(small)
    if remaining < n_large * MIB:
        raise ValueError(
            f"{total_bytes} bytes is too little for {files} files: the large files would be under 1 MiB each"
        )
    weights = [rng.uniform(0.25, 1.75) for _ in range(n_large)]
    scale = remaining / sum(weights)
    large = [max(MIB, int(w * scale)) for w in weights]
    large[-1] += total_bytes - sum(small) - sum(large)
    sizes = small + large
    rng.shuffle(sizes)
    return sizes


def relpath_for(index: int) -> str:
    """Nested location of file ``index``: 16 top folders x 8 sub-folders, a third one deeper."""
    parts = [f"d{index % 16:02d}", f"s{(index // 16) % 8:02d}"]
    if index % 3 == 0:
        parts.append(f"deep{(index // 128) % 4}")
    parts.append(f"f{index:06d}.bin")
    return "/".join(parts)


def write_corpus(root: Path, sizes: list[int], seed: int) -> None:
    """Write the files: a unique header each, then slices of one shared random 4 MiB block."""
    block = memoryview(random.Random(seed).randbytes(BLOCK_SIZE))
    made: set[Path] = set()
    for index, size in enumerate(sizes):
        path = root / relpath_for(index)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        header = f"amlpipe-bench seed={seed} file={index}\n".encode()[:size]
        remaining = size - len(header)
        pos = (index * 7919 * 64) % BLOCK_SIZE
        with open(path, "wb") as handle:
            handle.write(header)
            while remaining > 0:
                n = min(remaining, BLOCK_SIZE - pos)
                handle.write(block[pos : pos + n])
                remaining -= n
                pos = 0


def ensure_corpus(workdir: Path, files: int, total_bytes: int, seed: int) -> CorpusInfo:
    """Reuse ``workdir/tree`` if its marker matches these parameters, else (re)generate it."""
    root = workdir / "tree"
    marker = workdir / "corpus.json"
    wanted = {
        "version": CORPUS_VERSION,
        "files": files,
        "total_bytes": total_bytes,
        "seed": seed,
    }
    sizes = plan_sizes(files, total_bytes, seed)
    generated = False
    started = time.perf_counter()
    existing = json.loads(marker.read_text()) if marker.is_file() else None
    if existing != wanted or not root.is_dir():
        if root.exists():
            shutil.rmtree(root)
        marker.unlink(missing_ok=True)
        root.mkdir(parents=True)
        write_corpus(root, sizes, seed)
        os.sync()  # so that writeback does not run during the timed measurements
        marker.write_text(json.dumps(wanted))
        generated = True
    ordered = sorted(sizes)
    return CorpusInfo(
        root=root,
        files=len(sizes),
        total_bytes=sum(sizes),
        large_files=sum(1 for s in sizes if s >= MIB),
        min_size=ordered[0],
        median_size=ordered[len(ordered) // 2],
        max_size=ordered[-1],
        generated=generated,
        generation_s=time.perf_counter() - started if generated else 0.0,
    )


def children_cpu() -> float:
    """User + system CPU seconds of all waited-for child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_sha256sum(root: Path, *, parallel: int = 1, capture: bool = False) -> tuple[float, float, str]:
    """Time ``find ROOT -type f -print0 | xargs -0 [-P N] sha256sum``; return (wall, cpu, stdout)."""
    xargs = ["xargs", "-0"]
    if parallel > 1:
        xargs += ["-P", str(parallel), "-n", "256"]
    cpu0 = children_cpu()
    start = time.perf_counter()
    find = subprocess.Popen(["find", str(root), "-type", "f", "-print0"], stdout=subprocess.PIPE)
    summer = subprocess.Popen(
        [*xargs, "sha256sum"],
        stdin=find.stdout,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
    )
    assert find.stdout is not None
    find.stdout.close()
    out, _ = summer.communicate()
    find.wait()
    wall = time.perf_counter() - start
    if find.returncode or summer.returncode:
        raise RuntimeError(f"find/xargs sha256sum failed: {find.returncode}, {summer.returncode}")
    return wall, children_cpu() - cpu0, out or ""


def timed_hash(hasher: Hasher, root: Path) -> tuple[float, float, list[FileEntry]]:
    """Time ``hasher.hash_tree(root)``; return (wall, process CPU, entries)."""
    cpu0 = time.process_time()
    start = time.perf_counter()
    entries = hasher.hash_tree(root)
    return time.perf_counter() - start, time.process_time() - cpu0, entries


def verify(entries: list[FileEntry], sha256sum_out: str, root: Path) -> None:
    """Fail loudly unless our digests equal ``sha256sum``'s for every file."""
    prefix = str(root) + "/"
    theirs = {}
    for line in sha256sum_out.splitlines():
        digest, _, path = line.partition("  ")
        theirs[path.removeprefix(prefix)] = digest
    ours = {e.path: e.sha256 for e in entries}
    if ours != theirs:
        raise SystemExit(f"digest mismatch: {len(set(ours.items()) ^ set(theirs.items()))} entries")


def run_benchmark(
    corpus: CorpusInfo, workdir: Path, repeats: int, nproc: int, workers: int | None
) -> tuple[int, dict[str, Any]]:
    """Warm the page cache, then run every measurement ``repeats`` times, alternating order."""
    root = corpus.root
    cache_dir = workdir / "statcache"
    if cache_dir.exists():
        shutil.rmtree(cache_dir)
    cache_dir.mkdir()

    # Warm-up: reads every file into the OS page cache and gives reference digests.
    warmup_s, _, reference = run_sha256sum(root, capture=True)

    samples = {name: Samples() for name in MEASUREMENTS}
    warm_hasher: Hasher | None = None
    expected_digest = ""

    def record(name: str, wall: float, cpu: float) -> None:
        samples[name].wall.append(wall)
        samples[name].cpu.append(cpu)

    def baseline(name: str, parallel: int = 1) -> Callable[[int], None]:
        def run(_rep: int) -> None:
            wall, cpu, _ = run_sha256sum(root, parallel=parallel)
            record(name, wall, cpu)

        return run

    def cold(rep: int) -> None:
        nonlocal warm_hasher, expected_digest
        cache_path = cache_dir / f"cold-{rep}.sqlite"
        cpu0 = time.process_time()
        start = time.perf_counter()
        hasher = Hasher(StatCache(cache_path), workers=workers)
        entries = hasher.hash_tree(root)
        record("ours_cold", time.perf_counter() - start, time.process_time() - cpu0)
        if warm_hasher is None:
            verify(entries, reference, root)
            expected_digest = tree_digest(entries)
            warm_hasher = hasher
        elif tree_digest(entries) != expected_digest:
            raise SystemExit("cold tree digest changed between repetitions")

    def warm(_rep: int) -> None:
        assert warm_hasher is not None
        wall, cpu, entries = timed_hash(warm_hasher, root)
        record("ours_warm", wall, cpu)
        if tree_digest(entries) != expected_digest:
            raise SystemExit("warm tree digest differs from the cold one")

    steps: list[tuple[str, Callable[[int], None]]] = [
        ("sha256sum", baseline("sha256sum")),
        ("ours_cold", cold),
        ("ours_warm", warm),
        ("sha256sum_again", baseline("sha256sum_again")),
        ("sha256sum_parallel", baseline("sha256sum_parallel", parallel=nproc)),
    ]
    orders: list[list[str]] = []
    for rep in range(repeats):
        # Forward on even repetitions, reversed on odd ones (warm only once a cache exists).
        order = steps if rep % 2 == 0 or warm_hasher is None else list(reversed(steps))
        orders.append([name for name, _ in order])
        for name, step in order:
            busy0, steal0 = host_cpu()
            step(rep)
            busy1, steal1 = host_cpu()
            sample = samples[name]
            sample.other_cpu.append(max(0.0, busy1 - busy0 - sample.cpu[-1]))
            sample.steal.append(steal1 - steal0)

    base = statistics.median(samples["sha256sum"].wall)
    base_min = min(samples["sha256sum"].wall)
    results: dict[str, dict[str, Any]] = {}
    for name, sample in samples.items():
        med = statistics.median(sample.wall)
        results[name] = {
            "runs_s": [round(x, 4) for x in sample.wall],
            "median_s": round(med, 4),
            "min_s": round(min(sample.wall), 4),
            "max_s": round(max(sample.wall), 4),
            "median_cpu_s": round(statistics.median(sample.cpu), 4),
            "other_cpu_s": [round(x, 2) for x in sample.other_cpu],
            "steal_s": [round(x, 2) for x in sample.steal],
            "mb_per_s": round(corpus.total_bytes / 1e6 / med, 1),
            "files_per_s": round(corpus.files / med, 1),
            "time_ratio_vs_sha256sum": round(med / base, 4),
            "min_time_ratio_vs_sha256sum": round(min(sample.wall) / base_min, 4),
        }
    assert warm_hasher is not None
    return warm_hasher.workers, {
        "warmup_sha256sum_s": round(warmup_s, 4),
        "orders": orders,
        "total_other_cpu_s": round(sum(sum(x.other_cpu) for x in samples.values()), 2),
        "total_steal_s": round(sum(sum(x.steal) for x in samples.values()), 2),
        "measurements": results,
        "tree_digest": expected_digest,
        "verified_against_sha256sum": True,
    }


def machine_info(nproc: int, workers: int) -> dict[str, Any]:
    """What the numbers were measured on."""
    sha_version = subprocess.run(
        ["sha256sum", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return {
        "nproc": nproc,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "sha256sum": sha_version[0] if sha_version else "",
        "hasher_workers": workers,
    }


def print_table(corpus: CorpusInfo, bench: dict[str, Any], machine: dict[str, Any]) -> None:
    """Human-readable summary of the medians."""
    print(
        f"\ncorpus: {corpus.files} files, {corpus.total_bytes / GIB:.2f} GiB "
        f"({corpus.total_bytes / 1e9:.2f} GB), {corpus.large_files} files >= 1 MiB, "
        f"median {corpus.median_size} B, max {corpus.max_size / MIB:.1f} MiB"
    )
    print(
        f"machine: nproc={machine['nproc']}, {machine['cpu_model']}, Python {machine['python']}, "
        f"{machine['openssl']}, Hasher workers={machine['hasher_workers']}"
    )
    print("OS page cache warm for every measurement (sha256sum warm-up run first): CPU-bound.\n")
    header = f"{'measurement':<20}{'median s':>10}{'min s':>9}{'max s':>9}{'cpu s':>9}"
    header += f"{'MB/s':>9}{'files/s':>11}{'t/sha256sum':>13}{'min/min':>9}"
    print(header)
    print("-" * len(header))
    measurements = bench["measurements"]
    for name in MEASUREMENTS:
        m = measurements[name]
        print(
            f"{name:<20}{m['median_s']:>10.3f}{m['min_s']:>9.3f}{m['max_s']:>9.3f}"
            f"{m['median_cpu_s']:>9.2f}{m['mb_per_s']:>9.1f}{m['files_per_s']:>11.0f}"
            f"{m['time_ratio_vs_sha256sum']:>13.3f}{m['min_time_ratio_vs_sha256sum']:>9.3f}"
        )
    print(
        f"\ninterference during the timed runs: other processes {bench['total_other_cpu_s']:.1f} CPU s,"
        f" hypervisor steal {bench['total_steal_s']:.1f} CPU s (both ~0 on a quiet machine)\n"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", type=Path, help="work dir for the corpus (default: a new temp dir)")
    parser.add_argument(
        "--total-gb",
        type=float,
        default=1.0,
        help="corpus size in GiB (2**30 bytes); default 1.0",
    )
    parser.add_argument("--files", type=int, default=10_000, help="number of files (default 10000)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions per measurement")
    parser.add_argument("--seed", type=int, default=1, help="seed of the deterministic corpus")
    parser.add_argument("--workers", type=int, default=None, help="Hasher workers (default: its own)")
    parser.add_argument("--keep", action="store_true", help="keep the corpus for a later run")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=REPO_ROOT / "bench" / "results",
        help="where hashing-<date>.json goes (default: bench/results)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate or reuse the corpus, benchmark, print and save the results, clean up."""
    args = parse_args(argv)
    workdir: Path = (args.dir or Path(tempfile.mkdtemp(prefix="amlpipe-bench-hashing-"))).resolve()
    if workdir == REPO_ROOT or REPO_ROOT in workdir.parents:
        print(f"refusing to put a {args.total_gb} GiB corpus inside the repository: {workdir}")
        return 2
    workdir.mkdir(parents=True, exist_ok=True)
    nproc = os.cpu_count() or 1
    try:
        corpus = ensure_corpus(workdir, args.files, int(args.total_gb * GIB), args.seed)
        action = f"generated in {corpus.generation_s:.1f} s" if corpus.generated else "reused"
        print(f"corpus {action}: {corpus.root}")
        workers, bench = run_benchmark(corpus, workdir, args.repeats, nproc, args.workers)
    finally:
        if not args.keep:
            for name in ("tree", "corpus.json", "statcache"):
                target = workdir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
            if args.dir is None or not any(workdir.iterdir()):
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            shutil.rmtree(workdir / "statcache", ignore_errors=True)

    machine = machine_info(nproc, workers)
    print_table(corpus, bench, machine)
    now = datetime.now(timezone.utc)
    measurements = bench["measurements"]
    ratios = {
        name: {
            "median": measurements[name]["time_ratio_vs_sha256sum"],
            "min": measurements[name]["min_time_ratio_vs_sha256sum"],
        }
        for name in MEASUREMENTS
        if name != "sha256sum"
    }
    payload = {
        "benchmark": "fingerprint-hashing",
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/bench_hashing.py", *(sys.argv[1:] if argv is None else argv)]),
        "repeats": args.repeats,
        "page_cache": "warm for every measurement (one untimed sha256sum pass first)",
        "baseline": "find ROOT -type f -print0 | xargs -0 sha256sum > /dev/null (single process)",
        "machine": machine,
        "corpus": {**corpus.as_dict(), "kept": args.keep},
        "time_ratios_vs_sha256sum": ratios,
        **bench,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"hashing-{now.date().isoformat()}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results written to {out}")
    if args.keep:
        print(f"corpus kept: rerun with --dir {workdir} --keep to reuse it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
