"""Dataset versions (gap-free under concurrency, immutable, deduplicated) and content hashing."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.registry import DatasetRegistry
from airflow_provider_amlpipe.hashing import Hasher, StatCache, list_tree, tree_digest


def _register(args: tuple[str, str, int]) -> tuple[int, str]:
    root, work, index = args
    folder = Path(work) / f"out-{index}"
    folder.mkdir(parents=True)
    (folder / "value.txt").write_text(f"content {index}")
    store = LocalDatastore("s", root)
    hasher = Hasher(StatCache(Path(work) / f"sc-{index}.sqlite"))
    ref, created = DatasetRegistry(store).register("ds", objects.publish(store, folder, hasher), {"i": index})
    assert created
    return ref.version, ref.digest


def test_concurrent_processes_get_gap_free_unique_versions(tmp_path: Path) -> None:
    root, work = str(tmp_path / "store"), str(tmp_path / "work")
    # spawn, not fork: the worker process runs DuckDB's threads from earlier tests, and a forked child can inherit
    # a lock one of them held (it then hangs forever).
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        results = pool.map(_register, [(root, work, i) for i in range(8)])
    assert sorted(v for v, _ in results) == list(range(1, 9))
    assert len({d for _, d in results}) == 8
    registry = DatasetRegistry(LocalDatastore("s", root))
    assert [v["version"] for v in registry.list_versions("ds")] == list(range(1, 9))
    for version, digest in results:
        assert registry.get("ds", version).digest == digest


def test_identical_content_mints_no_version_and_versions_are_immutable(tmp_path: Path) -> None:
    store = LocalDatastore("s", tmp_path / "store")
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    registry = DatasetRegistry(store)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("one")
    first, created = registry.register("ds", objects.publish(store, out, hasher), {})
    again, created_again = registry.register("ds", objects.publish(store, out, hasher), {})
    assert (first.version, created, again.version, created_again) == (1, True, 1, False)
    (out / "a.txt").write_text("two")
    second, _ = registry.register("ds", objects.publish(store, out, hasher), {})
    assert second.version == 2 and second.digest != first.digest
    # A visible version cannot be replaced: create-if-absent refuses the key.
    assert store.write_bytes("registry/ds/versions/0000000001.json", b"{}", if_absent=True) is False
    assert registry.get("ds", 1).digest == first.digest
    assert registry.get("ds").version == 2
    assert objects.materialize(store, first.digest, tmp_path / "unused").joinpath("a.txt").read_text() == "one"


def test_ignore_files_follow_aml_rules(tmp_path: Path) -> None:
    (tmp_path / "keep.py").write_text("x")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_text("x")
    (tmp_path / "notes.log").write_text("x")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "keep.cpython-311.pyc").write_text("x")
    (tmp_path / ".gitignore").write_text("*.log\n")
    assert list_tree(tmp_path, honour_ignore_files=True) == ["data/big.bin", "keep.py"]
    (tmp_path / ".amlignore").write_text("data/\n")  # .amlignore wins over .gitignore
    assert list_tree(tmp_path, honour_ignore_files=True) == ["keep.py", "notes.log"]
    assert len(list_tree(tmp_path)) == 6


def test_stat_cache_serves_unchanged_files_and_notices_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text(f"file {i}")
    time.sleep(0.05)  # older than the racy window: a cached digest of these files is trusted
    hasher = Hasher(StatCache(tmp_path.parent / f"{tmp_path.name}-sc.sqlite"))
    before = tree_digest(hasher.hash_tree(tmp_path))

    reads: list[Path] = []
    import airflow_provider_amlpipe.hashing as hashing

    real = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda p, *a: reads.append(Path(p)) or real(p, *a))
    assert tree_digest(hasher.hash_tree(tmp_path)) == before
    assert reads == []  # nothing re-read
    target = tmp_path / "f3.txt"
    old = target.stat()
    target.write_text("FILE 3")  # same size ...
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))  # ... and the mtime put back
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    after = tree_digest(hasher.hash_tree(tmp_path))
    assert after != before  # ctime, which no one can set back, gave it away
    assert [p.name for p in reads] == ["f3.txt"]


def test_stat_cache_does_not_trust_files_written_in_the_tick_they_were_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow_provider_amlpipe.hashing as hashing

    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.txt").write_text("aaaa")
    hasher.hash_tree(folder)  # hashed within the racy window of its last write
    reads: list[Path] = []
    real = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda p, *a: reads.append(Path(p)) or real(p, *a))
    time.sleep(0.05)
    hasher.hash_tree(folder)
    assert [p.name for p in reads] == ["a.txt"]  # racily clean: read again ...
    hasher.hash_tree(folder)
    assert [p.name for p in reads] == ["a.txt"]  # ... once; now the entry is older than the write


def test_marker_mode_datapaths_change_with_the_file_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow_provider_amlpipe.hashing as hashing
    from airflow_provider_amlpipe.data.refs import DataPath
    from airflow_provider_amlpipe.steps.inputs import resolve_inputs

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.csv").write_text("a,b\n")
    store = LocalDatastore("data", tmp_path / "data")
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    monkeypatch.setattr(hashing, "sha256_file", lambda p, *a: pytest.fail(f"read {p}"))

    def digest() -> str:
        raw = {"raw": DataPath("data", "raw.csv", fingerprint_mode="marker")}
        return resolve_inputs(raw, lambda _: store, hasher, "data")["raw"].digest

    before = digest()
    assert before.startswith("marker:") and digest() == before
    (tmp_path / "data" / "raw.csv").write_text("a,b\n1,2\n")
    assert digest() != before
