"""The stat cache at scale: per-folder rows, what it trusts, and that a changed file is never served.

Timing is never asserted; what is asserted is which files are read and which digests come out.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

import airflow_provider_amlpipe.hashing as hashing
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.refs import DataPath
from airflow_provider_amlpipe.hashing import (
    FileEntry,
    Hasher,
    StatCache,
    racily_clean,
    sha256_json,
    tree_digest,
)
from airflow_provider_amlpipe.steps.inputs import resolve_inputs


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = hashing.sha256_file

    def counting(path: str | os.PathLike[str], *args: int) -> str:
        reads.append(Path(path).name)
        return real(path, *args)

    monkeypatch.setattr(hashing, "sha256_file", counting)
    return reads


def _tree(root: Path, folders: int = 12, per_folder: int = 5) -> dict[str, bytes]:
    """A tree of small files in nested folders, old enough to be outside the racy window."""
    files = {}
    for f in range(folders):
        for i in range(per_folder):
            rel = f"d{f % 3}/s{f}/file{i}.bin"
            data = f"{rel}\n".encode() * (i + 1)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
            files[rel] = data
    (root / "top.txt").write_bytes(b"top")
    files["top.txt"] = b"top"
    time.sleep(0.05)  # older than RACY_NS: their digests may be kept
    return files


def _expected(files: dict[str, bytes]) -> list[FileEntry]:
    return [FileEntry(rel, len(data), hashlib.sha256(data).hexdigest()) for rel, data in sorted(files.items())]


def test_a_tree_is_read_once_then_served_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _tree(tmp_path / "t")
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    reads = _count_reads(monkeypatch)
    assert hasher.hash_tree(tmp_path / "t") == _expected(files)
    assert len(reads) == len(files)
    reads.clear()
    assert hasher.hash_tree(tmp_path / "t") == _expected(files)
    assert hasher.hash_files(tmp_path / "t", sorted(files)) == _expected(files)  # > 8 folders: one tree query
    assert hasher.hash_files(tmp_path / "t", ["d0/s0/file1.bin"]) == _expected(files)[1:2]  # one folder's row
    assert reads == []
    # One row per folder, not per file.
    with sqlite3.connect(tmp_path / "sc.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM folder_digests").fetchone()[0] == 13


def test_only_the_changed_file_of_a_folder_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _tree(tmp_path / "t")
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    hasher.hash_tree(tmp_path / "t")
    reads = _count_reads(monkeypatch)
    target = tmp_path / "t" / "d1" / "s4" / "file2.bin"
    old = target.stat()
    new = b"X" * old.st_size  # same size, rewritten in place: its folder's mtime does not change
    folder_mtime = target.parent.stat().st_mtime_ns
    target.write_bytes(new)
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))  # and its mtime put back
    assert target.parent.stat().st_mtime_ns == folder_mtime
    files["d1/s4/file2.bin"] = new
    assert hasher.hash_tree(tmp_path / "t") == _expected(files)
    assert reads == ["file2.bin"]  # ctime gave it away; nothing else was read


def test_added_and_removed_files_and_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "t"
    files = _tree(root)
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    hasher.hash_tree(root)
    (root / "d0" / "s0" / "file0.bin").unlink()
    del files["d0/s0/file0.bin"]
    for rel in [r for r in files if r.startswith("d2/s2/")]:
        (root / rel).unlink()
        del files[rel]
    (root / "d2" / "s2").rmdir()
    (root / "new").mkdir()
    (root / "new" / "n.bin").write_bytes(b"new")
    files["new/n.bin"] = b"new"
    time.sleep(0.05)
    reads = _count_reads(monkeypatch)
    assert hasher.hash_tree(root) == _expected(files)
    assert reads == ["n.bin"]
    with sqlite3.connect(tmp_path / "sc.sqlite") as conn:
        folders = {
            Path(p).relative_to(root.resolve()).as_posix() for (p,) in conn.execute("SELECT path FROM folder_digests")
        }
    assert "d2/s2" not in folders and "new" in folders  # a folder no longer listed keeps no row (when re-listed)


def test_a_same_size_rewrite_within_the_same_timestamp_tick_is_detected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The racily-clean rule: a file hashed within RACY_NS of its last change is not trusted, so a
    rewrite that leaves size, mtime, ctime and inode all as they were is still noticed."""
    folder = tmp_path / "d"
    folder.mkdir()
    target = folder / "a.txt"
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    target.write_bytes(b"aaaa")
    first = hasher.hash_tree(folder)
    before = target.stat()
    target.write_bytes(b"bbbb")  # same size, at once: on most file systems in the same timestamp tick
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime as it was, too
    assert hasher.hash_tree(folder) == [FileEntry("a.txt", 4, hashlib.sha256(b"bbbb").hexdigest())]
    assert first == [FileEntry("a.txt", 4, hashlib.sha256(b"aaaa").hexdigest())]


def test_a_racily_clean_entry_is_never_stored(tmp_path: Path) -> None:
    """Even when every field of the stat is unchanged, a digest taken within the racy window is not served:
    the cache is made to see the same (size, mtime, ctime, inode) for two different contents."""
    folder = tmp_path / "d"
    folder.mkdir()
    target = folder / "a.txt"
    target.write_bytes(b"aaaa")
    cache = StatCache(tmp_path / "sc.sqlite")
    st = target.stat()
    cache.put_many([(str(target.resolve()), st, "0" * 64)], hashed_at_ns=max(st.st_mtime_ns, st.st_ctime_ns) + 1)
    assert cache.get(str(target.resolve()), st) is None  # within the window: not kept
    cache.put_many([(str(target.resolve()), st, "1" * 64)], hashed_at_ns=max(st.st_mtime_ns, st.st_ctime_ns) + 10**9)
    assert cache.get(str(target.resolve()), st) == "1" * 64


def test_the_racy_window_widens_for_whole_second_timestamps() -> None:
    fine = (10, 5 * 10**9 + 123, 5 * 10**9 + 123, 1)
    coarse = (10, 5 * 10**9, 5 * 10**9, 1)  # a file system that keeps whole seconds
    assert racily_clean(fine, 5 * 10**9 + 123 + hashing.RACY_NS)
    assert not racily_clean(fine, 5 * 10**9 + 124 + hashing.RACY_NS)
    assert racily_clean(coarse, 5 * 10**9 + 10**9 + 500_000_000)  # 1.5 s later: still within two seconds
    assert not racily_clean(coarse, 5 * 10**9 + 2 * 10**9 + 1)


def test_a_local_datapath_folder_is_listed_once_and_digests_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    files = _tree(root / "in")
    (root / "in" / ".tmp-upload").write_bytes(b"partial")  # a store's temporary file: not an input file
    store = LocalDatastore("s", root)
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    stats: list[str] = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: stats.append(str(p)) or real_stat(p, *a, **k))

    def digest() -> str:
        return resolve_inputs({"x": DataPath("s", "in")}, lambda _: store, hasher, "s")["x"].digest

    expected = tree_digest(_expected(files))
    assert digest() == expected
    # One stat per file, the walk's (by name in its open folder); hashing used them, no second stat by path.
    stat_of_files = [p for p in stats if p.endswith(".bin")]
    assert len(stat_of_files) == len([rel for rel in files if rel.endswith(".bin")]) and not [
        p for p in stat_of_files if os.sep in p
    ]
    # The same digest as hashing the listed keys one by one.
    keys = sorted(store.list("in"))
    assert tree_digest(hasher.hash_files(root / "in", [k[len("in/") :] for k in keys])) == expected
    reads = _count_reads(monkeypatch)
    assert digest() == expected and reads == []


def test_a_local_datapath_folder_in_marker_mode_matches_the_store_stats(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _tree(root / "in")
    store = LocalDatastore("s", root)
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    resolved = resolve_inputs({"x": DataPath("s", "in", fingerprint_mode="marker")}, lambda _: store, hasher, "s")
    markers = [[k, store.stat(k).size, store.stat(k).marker] for k in sorted(store.list("in"))]
    assert resolved["x"].digest == "marker:" + sha256_json(markers)


@pytest.mark.parametrize("bad", ["d0/bad\\name.txt", "d0/bad\\folder/ok.txt"])
def test_a_backslash_in_a_local_file_or_folder_name_is_refused(tmp_path: Path, bad: str) -> None:
    from airflow_provider_amlpipe.errors import ConfigurationError

    root = tmp_path / "store"
    _tree(root / "in")
    (root / "in" / bad).parent.mkdir(parents=True, exist_ok=True)
    (root / "in" / bad).write_text("x")
    store = LocalDatastore("s", root)
    with pytest.raises(ConfigurationError, match=r"in/d0/bad\\\\.*cannot be a file"):
        resolve_inputs({"x": DataPath("s", "in")}, lambda _: store, Hasher(StatCache(tmp_path / "sc.sqlite")), "s")


@pytest.mark.parametrize(
    "paths",
    [["a", "b/c", "é/ü", "x y", "日本語"], ['a"b', "c"], ["a\\b"], ["tab\there", "nl\nthere"], ["\x7f", "\u2028"]],
)
def test_tree_digest_is_the_canonical_json_of_its_entries(paths: list[str]) -> None:
    entries = [FileEntry(p, i * 1000, f"{i:064x}") for i, p in enumerate(paths)]
    encoded = json.dumps(
        [[e.path, e.size, e.sha256] for e in entries], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert tree_digest(entries) == hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def test_a_cache_file_of_the_per_file_layout_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "sc.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE file_digests (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,"
            " inode INTEGER, digest TEXT, hashed_at_ns INTEGER)"
        )
    files = _tree(tmp_path / "t", folders=1, per_folder=2)
    assert Hasher(StatCache(path)).hash_tree(tmp_path / "t") == _expected(files)


def test_a_damaged_row_means_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _tree(tmp_path / "t", folders=1, per_folder=3)
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    hasher.hash_tree(tmp_path / "t")
    with sqlite3.connect(tmp_path / "sc.sqlite") as conn:
        conn.execute("UPDATE folder_digests SET entries = x'00ff'")
    reads = _count_reads(monkeypatch)
    assert hasher.hash_tree(tmp_path / "t") == _expected(files)
    assert sorted(reads) == sorted(Path(r).name for r in files)


def test_small_and_large_files_hash_alike_on_one_or_several_threads(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    blobs = {f"small{i}": os.urandom(i * 97) for i in range(20)}
    blobs |= {f"large{i}": os.urandom(hashing._SMALL_FILE + 1 + i * 300_000) for i in range(3)}
    for name, data in blobs.items():
        (root / name).write_bytes(data)
    expected = [FileEntry(n, len(d), hashlib.sha256(d).hexdigest()) for n, d in sorted(blobs.items())]
    for workers in (1, 3):
        assert Hasher(StatCache(tmp_path / f"sc{workers}.sqlite"), workers=workers).hash_tree(root) == expected


def test_sha256_file_reads_a_file_that_grew_since_its_stat(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"x" * 5000)
    assert hashing.sha256_file(target, 10) == hashlib.sha256(b"x" * 5000).hexdigest()
    assert hashing.sha256_file(target, 10**9) == hashlib.sha256(b"x" * 5000).hexdigest()
    assert hashing.sha256_file(target) == hashlib.sha256(b"x" * 5000).hexdigest()


def test_a_local_datapath_folder_never_serves_a_changed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "store"
    files = _tree(root / "in")
    store = LocalDatastore("s", root)
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))

    def digest() -> str:
        return resolve_inputs({"x": DataPath("s", "in")}, lambda _: store, hasher, "s")["x"].digest

    assert digest() == tree_digest(_expected(files))
    target = root / "in" / "d2" / "s5" / "file3.bin"
    old = target.stat()
    files["d2/s5/file3.bin"] = b"Y" * old.st_size
    target.write_bytes(files["d2/s5/file3.bin"])  # same size, in place, mtime put back
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))
    reads = _count_reads(monkeypatch)
    assert digest() == tree_digest(_expected(files))
    assert reads == ["file3.bin"]
