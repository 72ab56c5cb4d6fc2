"""Benchmark the reuse decision over a DataPath folder of many small files, against ``sha256sum`` and DVC.

Usage::

    python bench/bench_small_files.py [--counts 1000,10000,100000] [--repeats 3] [--dir D] [--keep]

For each file count, a deterministic tree of files of 100 to 2,000 bytes (100 per folder, two folder
levels) is generated, put under DVC (``dvc add``, untimed) when DVC is available, read once by
``sha256sum`` (untimed: warms the OS page cache and gives reference digests), and then, side by side
in the same run, repeated with alternating order:

* ``sha256sum``: ``find ROOT -type f -print0 | xargs -0 sha256sum > /dev/null`` -- the baseline;
* ``ours_cold``: the input resolution a step does for ``DataPath(store, "tree")`` on a local
  datastore (walk, ``stat``, hash, fingerprint digest) with an empty stat cache: every byte read;
* ``ours_warm``: the same with the stat cache a first cold run filled: no content read;
* ``dvc_cold``: ``dvc status`` after deleting DVC's hash state (it re-hashes every file);
* ``dvc_warm``: ``dvc status`` with its state filled (DVC's own stat cache);
* ``dvc_startup``: ``dvc status`` in an empty DVC project: the part of DVC's times that is its start-up;
* ``sha256sum_again``: the baseline once more; its ratio estimates the run's noise.

Ours run inside this process (a task's process already exists when it decides); the others are
processes, so their times include start-up (``dvc_startup`` tells DVC's). Medians, best-of-N and
ratios to the ``sha256sum`` median go to stdout and to ``bench/results/small-files-<date>.json``.

DVC runs from its own virtualenv (default ``bench/.venv-dvc``: ``python -m venv bench/.venv-dvc &&
bench/.venv-dvc/bin/pip install dvc``); without it the DVC rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _machine import cpu_model, host_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path and "--child" not in sys.argv:  # a child imports its baseline's code
    sys.path.insert(0, str(REPO_ROOT))

from airflow_provider_amlpipe.data.datastore import LocalDatastore  # noqa: E402
from airflow_provider_amlpipe.data.refs import DataPath  # noqa: E402
from airflow_provider_amlpipe.hashing import FileEntry, Hasher, StatCache, tree_digest  # noqa: E402
from airflow_provider_amlpipe.steps.inputs import resolve_inputs  # noqa: E402

CORPUS_VERSION = 1
MIN_SIZE, MAX_SIZE = 100, 2000
PER_FOLDER = 100
DEFAULT_DVC = REPO_ROOT / "bench" / ".venv-dvc" / "bin" / "dvc"
MEASUREMENTS = (
    "sha256sum",
    "ours_cold",
    "ours_warm",
    "dvc_cold",
    "dvc_warm",
    "dvc_startup",
    "baseline_cold",
    "baseline_warm",
    "sha256sum_again",
)


def relpath_for(index: int) -> str:
    """File ``index``'s place: 100 files per folder, ten folders per top-level folder."""
    folder = index // PER_FOLDER
    return f"g{folder // 10:04d}/f{folder % 10}/file{index:07d}.bin"


def ensure_corpus(workdir: Path, files: int, seed: int) -> tuple[Path, int, bool]:
    """``workdir/tree`` with ``files`` files (reused when its marker matches); (root, bytes, generated)."""
    root = workdir / "tree"
    marker = workdir / "corpus.json"
    wanted = {"version": CORPUS_VERSION, "files": files, "seed": seed, "sizes": [MIN_SIZE, MAX_SIZE]}
    rng = random.Random(seed)
    sizes = [rng.randint(MIN_SIZE, MAX_SIZE) for _ in range(files)]
    if marker.is_file() and json.loads(marker.read_text()) == wanted and root.is_dir():
        return root, sum(sizes), False
    shutil.rmtree(workdir, ignore_errors=True)
    root.mkdir(parents=True)
    block = rng.randbytes(1 << 16)
    made: set[str] = set()
    for index, size in enumerate(sizes):
        rel = relpath_for(index)
        folder = os.path.dirname(rel)
        if folder not in made:
            (root / folder).mkdir(parents=True, exist_ok=True)
            made.add(folder)
        header = f"{seed}:{index}\n".encode()
        start = (index * 7919) % (len(block) - size)
        with open(root / rel, "wb") as handle:
            handle.write(header + block[start : start + size - len(header)])
    os.sync()  # no writeback during the timed runs
    marker.write_text(json.dumps(wanted))
    return root, sum(sizes), True


def own_cpu() -> float:
    """CPU seconds of this process and of its waited-for children so far."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_process(argv: list[str], cwd: Path | None = None, capture: bool = False) -> tuple[float, str]:
    """Wall seconds of a command (and its stdout if ``capture``); fails loudly on a non-zero exit."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, done.stdout if capture else ""


def run_sha256sum(root: Path, capture: bool = False) -> tuple[float, str]:
    """``find ROOT -type f -print0 | xargs -0 sha256sum``: (wall seconds, stdout if ``capture``)."""
    start = time.perf_counter()
    find = subprocess.Popen(["find", str(root), "-type", "f", "-print0"], stdout=subprocess.PIPE)
    summer = subprocess.Popen(
        ["xargs", "-0", "sha256sum"],
        stdin=find.stdout,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
    )
    assert find.stdout is not None
    find.stdout.close()
    out, _ = summer.communicate()
    find.wait()
    if find.returncode or summer.returncode:
        raise SystemExit("find | xargs sha256sum failed")
    return time.perf_counter() - start, out or ""


def expected_digest(root: Path, sha256sum_out: str) -> str:
    """The tree digest our resolution must give, built from ``sha256sum``'s digests."""
    prefix = str(root) + "/"
    entries = []
    for line in sha256sum_out.splitlines():
        digest, _, path = line.partition("  ")
        entries.append(FileEntry(path.removeprefix(prefix), os.stat(path).st_size, digest))
    return tree_digest(sorted(entries))


class Dvc:
    """A DVC project at ``workdir`` tracking ``workdir/tree``, with its hash state in ``workdir/dvc-site``."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.site = workdir / "dvc-site"
        self.empty = workdir / "dvc-empty"

    def _init(self, folder: Path, site: Path) -> None:
        run_process([str(self.binary), "init", "--no-scm", "-q", "-f"], cwd=folder)
        run_process([str(self.binary), "config", "core.analytics", "false"], cwd=folder)
        run_process([str(self.binary), "config", "--local", "core.site_cache_dir", str(site)], cwd=folder)

    def setup(self) -> float:
        """``dvc init`` and ``dvc add tree`` (once per corpus); return the ``add`` seconds (0 if reused)."""
        self.empty.mkdir(exist_ok=True)
        if not (self.empty / ".dvc").is_dir():
            self._init(self.empty, self.empty / "site")
        if (self.workdir / "tree.dvc").is_file():
            return 0.0
        self._init(self.workdir, self.site)
        # Copies, never links, so the tree's files stay ordinary files that everyone else reads too.
        run_process([str(self.binary), "config", "cache.type", "copy"], cwd=self.workdir)
        wall, _ = run_process([str(self.binary), "add", "-q", "tree"], cwd=self.workdir)
        return wall

    def forget_hashes(self) -> None:
        """Delete DVC's state of hashed files, so the next status reads every file again."""
        for hashes in self.site.glob("repo/*/hashes"):
            shutil.rmtree(hashes)

    def status(self, folder: Path | None = None) -> float:
        wall, out = run_process([str(self.binary), "status"], cwd=folder or self.workdir, capture=True)
        if folder is None and "up to date" not in out:
            raise SystemExit(f"dvc status did not find the tree unchanged: {out[:500]}")
        return wall


def child_decide(workdir: Path, cache: Path) -> None:
    """(``--child``) Time one resolution with whatever ``airflow_provider_amlpipe`` is first on the path
    (a baseline checkout's); print the seconds and the digest as JSON."""
    store = LocalDatastore("bench", workdir)
    hasher = Hasher(StatCache(cache))
    start = time.perf_counter()
    got = resolve_inputs({"x": DataPath("bench", "tree")}, lambda _: store, hasher, "bench")["x"].digest
    wall = time.perf_counter() - start
    import airflow_provider_amlpipe

    print(json.dumps({"wall": wall, "digest": got, "code": airflow_provider_amlpipe.__file__}))


def run_baseline(repo: Path, workdir: Path, cache: Path, want: str) -> float:
    """One ``--child`` resolution with the code of ``repo`` (its own timing, after its imports)."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    script = [sys.executable, str(Path(__file__).resolve()), "--child", str(workdir), str(cache)]
    done = subprocess.run(script, env=env, capture_output=True, text=True, check=False, cwd=repo)
    if done.returncode:
        raise SystemExit(f"baseline child failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(result["code"]).resolve().is_relative_to(repo.resolve()):
        raise SystemExit(f"the baseline child imported {result['code']}, not the code in {repo}")
    if result["digest"] != want:
        raise SystemExit("the baseline's digest differs from sha256sum's")
    return float(result["wall"])


def bench_count(
    files: int, workdir: Path, repeats: int, seed: int, dvc_binary: Path | None, baseline_repo: Path | None = None
) -> dict[str, Any]:
    """Every measurement for one corpus size."""
    root, total_bytes, generated = ensure_corpus(workdir, files, seed)
    dvc = Dvc(dvc_binary, workdir) if dvc_binary is not None else None
    dvc_add_s = dvc.setup() if dvc is not None else 0.0
    warmup_s, reference = run_sha256sum(root, capture=True)
    want = expected_digest(root, reference)
    time.sleep(0.1)  # every file older than the stat cache's racy window (as real inputs are)

    store = LocalDatastore("bench", workdir)
    caches = workdir / "statcache"
    shutil.rmtree(caches, ignore_errors=True)
    caches.mkdir()
    warm_cache: Path | None = None

    def decide(cache: Path) -> float:
        hasher = Hasher(StatCache(cache))
        start = time.perf_counter()
        got = resolve_inputs({"x": DataPath("bench", "tree")}, lambda _: store, hasher, "bench")["x"].digest
        wall = time.perf_counter() - start
        if got != want:
            raise SystemExit(f"digest of {files} files differs from sha256sum's")
        return wall

    def cold(rep: int) -> float:
        nonlocal warm_cache
        cache = caches / f"cold-{rep}.sqlite"
        wall = decide(cache)
        warm_cache = warm_cache or cache
        return wall

    def warm(_rep: int) -> float:
        assert warm_cache is not None
        return decide(warm_cache)

    def dvc_cold(_rep: int) -> float:
        assert dvc is not None
        dvc.forget_hashes()
        return dvc.status()

    steps: list[tuple[str, Callable[[int], float]]] = [
        ("sha256sum", lambda _: run_sha256sum(root)[0]),
        ("ours_cold", cold),
        ("ours_warm", warm),
    ]
    if dvc is not None:
        dvc.status()  # fills DVC's state if a cold run left it empty
        steps += [
            ("dvc_cold", dvc_cold),
            ("dvc_warm", lambda _: dvc.status()),
            ("dvc_startup", lambda _: dvc.status(dvc.empty)),
        ]
    if baseline_repo is not None:
        baseline_warm_cache = caches / "baseline-warm.sqlite"

        def baseline_cold(rep: int) -> float:
            cache = caches / f"baseline-cold-{rep}.sqlite"
            wall = run_baseline(baseline_repo, workdir, cache, want)
            if rep == 0:
                shutil.copy(cache, baseline_warm_cache)
            return wall

        steps += [
            ("baseline_cold", baseline_cold),
            ("baseline_warm", lambda _: run_baseline(baseline_repo, workdir, baseline_warm_cache, want)),
        ]
    steps.append(("sha256sum_again", lambda _: run_sha256sum(root)[0]))
    walls: dict[str, list[float]] = {name: [] for name, _ in steps}
    other: dict[str, list[float]] = {name: [] for name, _ in steps}
    orders = []
    for rep in range(repeats):
        # Forward, then reversed, ...; warm only ever after a cold run has filled a cache.
        order = steps if rep % 2 == 0 else [steps[0], steps[1], *reversed(steps[2:])]
        orders.append([name for name, _ in order])
        for name, step in order:
            busy0, _ = host_cpu()
            cpu0 = own_cpu()
            wall = step(rep)
            own = own_cpu() - cpu0
            busy1, _ = host_cpu()
            walls[name].append(wall)
            other[name].append(max(0.0, busy1 - busy0 - own))  # CPU of other processes meanwhile
        if dvc is not None:
            dvc.status()  # leave DVC's state filled for the next dvc_warm whatever the order

    base = statistics.median(walls["sha256sum"])
    base_min = min(walls["sha256sum"])
    results: dict[str, Any] = {}
    for name, runs in walls.items():
        med = statistics.median(runs)
        results[name] = {
            "runs_s": [round(x, 4) for x in runs],
            "median_s": round(med, 4),
            "min_s": round(min(runs), 4),
            "per_file_us": round(med / files * 1e6, 2),
            "ratio_vs_sha256sum": round(med / base, 3),
            "min_ratio_vs_sha256sum": round(min(runs) / base_min, 3),
        }
        results[name]["other_cpu_s"] = [round(x, 2) for x in other[name]]
    if dvc is not None:
        for kind in ("cold", "warm"):
            results[f"ours_{kind}"][f"ratio_vs_dvc_{kind}"] = round(
                results[f"ours_{kind}"]["median_s"] / results[f"dvc_{kind}"]["median_s"], 3
            )
    return {
        "files": files,
        "total_bytes": total_bytes,
        "generated_this_run": generated,
        "dvc_add_s": round(dvc_add_s, 2),
        "warmup_sha256sum_s": round(warmup_s, 3),
        "orders": orders,
        "measurements": results,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{result['files']:,} files, {result['total_bytes'] / 1e6:.1f} MB (100-2,000 B each), page cache warm")
    header = f"{'measurement':<17}{'median s':>10}{'min s':>9}{'us/file':>9}{'÷ sha256sum':>13}{'min÷min':>9}"
    print(header + f"{'÷ dvc':>8}")
    print("-" * (len(header) + 8))
    for name in MEASUREMENTS:
        m = result["measurements"].get(name)
        if m is None:
            continue
        vs_dvc = m.get("ratio_vs_dvc_cold", m.get("ratio_vs_dvc_warm"))
        print(
            f"{name:<17}{m['median_s']:>10.3f}{m['min_s']:>9.3f}{m['per_file_us']:>9.1f}"
            f"{m['ratio_vs_sha256sum']:>13.3f}{m['min_ratio_vs_sha256sum']:>9.3f}"
            + (f"{vs_dvc:>8.3f}" if vs_dvc is not None else "")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--counts", default="1000,10000,100000", help="file counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="work dir (default: a new temp dir); refused inside the repo")
    parser.add_argument("--keep", action="store_true", help="keep corpora and DVC projects for a later run")
    parser.add_argument("--dvc", type=Path, default=DEFAULT_DVC, help=f"the dvc executable (default {DEFAULT_DVC})")
    parser.add_argument("--no-dvc", action="store_true", help="skip the DVC rows")
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument(
        "--baseline-repo",
        type=Path,
        help="also time the resolution with the code of this checkout (e.g. `git archive <commit>` unpacked)",
    )
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_decide(*args.child)
        return 0
    counts = [int(c) for c in args.counts.split(",")]
    workdir: Path = (args.dir or Path(tempfile.mkdtemp(prefix="amlpipe-bench-small-"))).resolve()
    if workdir == REPO_ROOT or REPO_ROOT in workdir.parents:
        print(f"refusing to generate corpora inside the repository: {workdir}")
        return 2
    dvc_binary = None if args.no_dvc or not args.dvc.exists() else args.dvc
    if dvc_binary is None and not args.no_dvc:
        print(f"no DVC at {args.dvc}: DVC rows skipped (see this script's docstring)")
    dvc_version = run_process([str(dvc_binary), "--version"], capture=True)[1].strip() if dvc_binary else None
    busy0, steal0 = host_cpu()
    results = []
    try:
        for files in counts:
            result = bench_count(files, workdir / f"n{files}", args.repeats, args.seed, dvc_binary, args.baseline_repo)
            print_table(result)
            results.append(result)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    busy1, steal1 = host_cpu()
    now = datetime.now(timezone.utc)
    payload = {
        "benchmark": "small-files-reuse-decision",
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/bench_small_files.py", *(sys.argv[1:] if argv is None else argv)]),
        "repeats": args.repeats,
        "baseline": "find ROOT -type f -print0 | xargs -0 sha256sum > /dev/null (one process)",
        "ours": "resolve_inputs({'x': DataPath(store, 'tree')}) on a LocalDatastore, in this process",
        "baseline_repo": str(args.baseline_repo) if args.baseline_repo else None,
        "machine": {
            "nproc": os.cpu_count(),
            "cpu_model": cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "dvc": dvc_version,
        },
        "machine_cpu_s_during_run": round(busy1 - busy0, 1),
        "steal_s_during_run": round(steal1 - steal0, 2),
        "results": results,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"small-files-{now.date().isoformat()}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
