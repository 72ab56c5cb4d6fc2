"""Content hashing of files and folders, with a stat cache so unchanged files are read once.

The stat cache maps a file's path to its SHA-256 together with the stat it had when it was read
(size, mtime_ns, ctime_ns, inode) and when that was, in a small SQLite file shared by every
process on the machine. Only content digests ever leave this module: a fingerprint or manifest
never depends on where, or when, a file was hashed.

What the cache trusts, and why it is sound: a file's ``ctime`` changes on every write, rename,
``chmod`` and ``utime`` -- and unlike ``mtime`` no user can set it back -- so an entry whose
recorded stat still matches describes the same bytes, *provided* the file was not written again
within the same timestamp tick as the stat that was recorded ("racily clean", as git calls it). An
entry is therefore trusted only when the file's newest timestamp is older than the moment it was
hashed by more than the file system's timestamp resolution (:data:`RACY_NS`, or two seconds on
file systems with whole-second timestamps); otherwise the file is read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pathspec

_CHUNK = 1 << 20
IGNORE_FILES = (".amlignore", ".gitignore")
_ALWAYS_IGNORED = (".git/", "__pycache__/", "*.pyc", ".amlignore", ".gitignore")
#: Timestamps this close to the moment a file was hashed may hide a write in the same tick.
RACY_NS = 20_000_000
_COARSE_RACY_NS = 2_000_000_000
_BULK_LOOKUP = 64  # from this many files on, one range query instead of one query per file
#: Files up to this size are hashed in batches per worker thread (hashlib keeps the GIL on small buffers).
_SMALL_FILE = 256 * 1024
_BATCH_BYTES = 8 * _CHUNK


def default_stat_cache_path() -> Path:
    """Where the machine-wide stat cache lives (``AMLPIPE_STAT_CACHE`` overrides it)."""
    env = os.environ.get("AMLPIPE_STAT_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "amlpipe" / "statcache.sqlite"


_Row = tuple[int, int, int, int, str, int]  # size, mtime_ns, ctime_ns, inode, digest, hashed_at_ns


def _trusted(row: _Row, st: os.stat_result) -> bool:
    size, mtime_ns, ctime_ns, inode, _digest, hashed_at = row
    if (size, mtime_ns, ctime_ns, inode) != (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino):
        return False
    newest = max(mtime_ns, ctime_ns)
    resolution = _COARSE_RACY_NS if newest % 1_000_000_000 == 0 else RACY_NS
    return newest + resolution < hashed_at


class StatCache:
    """path -> (stat when hashed, SHA-256, when hashed), persisted in SQLite (see the module docstring)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_stat_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS file_digests (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                " ctime_ns INTEGER, inode INTEGER, digest TEXT, hashed_at_ns INTEGER)"
            )

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, path: str, st: os.stat_result) -> str | None:
        """The cached digest of ``path`` if its stat still matches and is not racy, else ``None``."""
        row = (
            self._connect()
            .execute(
                "SELECT size, mtime_ns, ctime_ns, inode, digest, hashed_at_ns FROM file_digests WHERE path = ?",
                (path,),
            )
            .fetchone()
        )
        return str(row[4]) if row and _trusted(row, st) else None

    def rows_under(self, folder: str) -> dict[str, _Row]:
        """Every entry below ``folder`` (an absolute path), in one range query."""
        low, high = folder.rstrip(os.sep) + os.sep, folder.rstrip(os.sep) + chr(ord(os.sep) + 1)
        cursor = self._connect().execute(
            "SELECT path, size, mtime_ns, ctime_ns, inode, digest, hashed_at_ns FROM file_digests"
            " WHERE path >= ? AND path < ?",
            (low, high),
        )
        return {row[0]: row[1:] for row in cursor}

    def put_many(self, rows: Iterable[tuple[str, os.stat_result, str]], *, hashed_at_ns: int | None = None) -> None:
        """Remember many digests in one transaction; ``hashed_at_ns``: when the stats were taken (default now)."""
        when = hashed_at_ns if hashed_at_ns is not None else time.time_ns()
        values = [(p, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, d, when) for p, st, d in rows]
        if not values:
            return
        conn = self._connect()
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO file_digests VALUES (?, ?, ?, ?, ?, ?, ?)", values)
        conn.execute("COMMIT")


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (hashlib releases the GIL)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(value: object) -> str:
    """SHA-256 of a value's canonical JSON encoding (sorted keys, no whitespace)."""
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FileEntry:
    """One file of a tree: its path relative to the tree's root, size and content digest."""

    path: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


class Hasher:
    """Hashes files and trees, consulting the stat cache first and hashing misses in parallel."""

    def __init__(self, cache: StatCache | None = None, workers: int | None = None) -> None:
        self.cache = cache if cache is not None else StatCache()
        self.workers = workers or min(4, os.cpu_count() or 1)

    def hash_files(self, root: Path, relpaths: Sequence[str]) -> list[FileEntry]:
        """Digest each file (paths relative to ``root``), in the given order."""
        # Resolve the root once: the cache key is the file's path under it. A symlink inside the tree
        # keys by its own path, while its stat (which follows the link) still guards the digest.
        base = str(root.resolve())
        keys = [os.path.join(base, rel) for rel in relpaths]
        return self._digest(base, relpaths, keys, [os.stat(key) for key in keys])

    def _digest(
        self, base: str, relpaths: Sequence[str], keys: list[str], stats: list[os.stat_result]
    ) -> list[FileEntry]:
        started = time.time_ns()  # before any content is read: a write from now on is never cached as clean
        if len(keys) >= _BULK_LOOKUP:
            rows = self.cache.rows_under(base)
            digests: list[str | None] = []
            for key, st in zip(keys, stats, strict=True):
                row = rows.get(key)
                digests.append(row[4] if row is not None and _trusted(row, st) else None)
        else:
            digests = [self.cache.get(key, st) for key, st in zip(keys, stats, strict=True)]
        misses = [i for i, d in enumerate(digests) if d is None]
        if misses:
            for i, digest in self._hash_misses(keys, stats, misses):
                digests[i] = digest
            self.cache.put_many(((keys[i], stats[i], str(digests[i])) for i in misses), hashed_at_ns=started)
        return [FileEntry(rel, st.st_size, str(d)) for rel, st, d in zip(relpaths, stats, digests, strict=True)]

    def _hash_misses(
        self, keys: list[str], stats: list[os.stat_result], misses: list[int]
    ) -> Iterable[tuple[int, str]]:
        """Hash the files at ``misses``: small files in batches per thread, large ones one per task."""
        batches: list[list[int]] = []
        current: list[int] = []
        current_bytes = 0
        for i in misses:
            size = stats[i].st_size
            if size > _SMALL_FILE:
                batches.append([i])
                continue
            current.append(i)
            current_bytes += size
            if current_bytes >= _BATCH_BYTES or len(current) >= 512:
                batches.append(current)
                current, current_bytes = [], 0
        if current:
            batches.append(current)

        def run(batch: list[int]) -> list[tuple[int, str]]:
            return [(i, sha256_file(Path(keys[i]))) for i in batch]

        if len(batches) == 1 or self.workers == 1:
            return [pair for batch in batches for pair in run(batch)]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return [pair for done in pool.map(run, batches) for pair in done]

    def hash_tree(self, root: Path, *, honour_ignore_files: bool = False) -> list[FileEntry]:
        """Every file under ``root`` (sorted by path), optionally minus ignored ones."""
        base = str(root.resolve())
        walked = walk_tree(Path(base), honour_ignore_files=honour_ignore_files)
        relpaths = [rel for rel, _ in walked]
        return self._digest(base, relpaths, [os.path.join(base, rel) for rel in relpaths], [st for _, st in walked])


def list_tree(root: Path, *, honour_ignore_files: bool = False) -> list[str]:
    """Relative posix paths of the files under ``root``, sorted.

    With ``honour_ignore_files``, AML's rule applies: ``.amlignore`` if present, else
    ``.gitignore``, both read from ``root`` (plus caches and VCS folders, never code).
    """
    return [rel for rel, _ in walk_tree(root, honour_ignore_files=honour_ignore_files)]


def walk_tree(root: Path, *, honour_ignore_files: bool = False) -> list[tuple[str, os.stat_result]]:
    """``(relative posix path, stat)`` of every file under ``root``, sorted by path.

    One ``scandir`` per folder and one ``stat`` per file (following links to files, as reading them
    does); no ``Path`` object per file, since trees of 100,000 small files are common inputs.
    """
    spec = _ignore_spec(root) if honour_ignore_files else None
    found: list[tuple[str, os.stat_result]] = []
    pending = [(str(root), "")]
    while pending:
        folder, rel_dir = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = f"{rel_dir}{entry.name}"
                if entry.is_dir():
                    if entry.is_symlink():
                        continue  # as os.walk: links to folders are not descended into
                    if spec is None or not spec.match_file(rel + "/"):
                        pending.append((entry.path, rel + "/"))
                    continue
                if spec is not None and spec.match_file(rel):
                    continue
                found.append((rel, entry.stat()))
    found.sort(key=lambda item: item[0])
    return found


def _ignore_spec(root: Path) -> pathspec.GitIgnoreSpec:
    lines = list(_ALWAYS_IGNORED)
    for name in IGNORE_FILES:
        candidate = root / name
        if candidate.is_file():
            lines.extend(candidate.read_text(encoding="utf-8").splitlines())
            break
    return pathspec.GitIgnoreSpec.from_lines(lines)


def tree_digest(entries: Iterable[FileEntry]) -> str:
    """One digest over a tree's (path, size, sha256) entries."""
    return sha256_json([[e.path, e.size, e.sha256] for e in entries])


def code_digest(hasher: Hasher, source_directory: Path | None, script: Path) -> str:
    """The ``code`` fingerprint part of a script step: its whole folder (minus ignored files) and
    the script itself when it lies outside that folder (``../x.py``, an absolute path), or just
    the script when there is no ``source_directory``."""
    script_entry = hasher.hash_files(script.parent, [script.name])
    if source_directory is None:
        return tree_digest(script_entry)
    folder = tree_digest(hasher.hash_tree(source_directory, honour_ignore_files=True))
    if script.resolve().is_relative_to(source_directory.resolve()):
        return folder
    return sha256_json([folder, str(script.resolve()), tree_digest(script_entry)])
