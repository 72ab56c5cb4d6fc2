"""Content hashing of files and folders, with a stat cache so unchanged files are read once.

The stat cache maps (path, size, mtime_ns, inode) to a file's SHA-256, in a small SQLite file
shared by every process on the machine. Only content digests ever leave this module: a
fingerprint or manifest never depends on where, or when, a file was hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pathspec

_CHUNK = 1 << 20
IGNORE_FILES = (".amlignore", ".gitignore")
_ALWAYS_IGNORED = (".git/", "__pycache__/", "*.pyc", ".amlignore", ".gitignore")


def default_stat_cache_path() -> Path:
    """Where the machine-wide stat cache lives (``AMLPIPE_STAT_CACHE`` overrides it)."""
    env = os.environ.get("AMLPIPE_STAT_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "amlpipe" / "statcache.sqlite"


class StatCache:
    """(path, size, mtime_ns, inode) -> SHA-256 hex digest, persisted in SQLite."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_stat_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, inode INTEGER, digest TEXT)"
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
        """The cached digest of ``path`` if its stat still matches, else ``None``."""
        row = (
            self._connect()
            .execute("SELECT size, mtime_ns, inode, digest FROM digests WHERE path = ?", (path,))
            .fetchone()
        )
        if row and (row[0], row[1], row[2]) == (st.st_size, st.st_mtime_ns, st.st_ino):
            return str(row[3])
        return None

    def put_many(self, rows: Iterable[tuple[str, os.stat_result, str]]) -> None:
        """Remember many digests in one transaction."""
        values = [(p, st.st_size, st.st_mtime_ns, st.st_ino, d) for p, st, d in rows]
        if not values:
            return
        conn = self._connect()
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)", values)
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
        stats = [os.stat(key) for key in keys]
        digests: list[str | None] = [self.cache.get(key, st) for key, st in zip(keys, stats, strict=True)]
        misses = [i for i, d in enumerate(digests) if d is None]
        if misses:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                computed = list(pool.map(lambda i: sha256_file(Path(keys[i])), misses))
            for i, digest in zip(misses, computed, strict=True):
                digests[i] = digest
            self.cache.put_many((keys[i], stats[i], str(digests[i])) for i in misses)
        return [FileEntry(rel, st.st_size, str(d)) for rel, st, d in zip(relpaths, stats, digests, strict=True)]

    def hash_tree(self, root: Path, *, honour_ignore_files: bool = False) -> list[FileEntry]:
        """Every file under ``root`` (sorted by path), optionally minus ignored ones."""
        return self.hash_files(root, list_tree(root, honour_ignore_files=honour_ignore_files))


def list_tree(root: Path, *, honour_ignore_files: bool = False) -> list[str]:
    """Relative posix paths of the files under ``root``, sorted.

    With ``honour_ignore_files``, AML's rule applies: ``.amlignore`` if present, else
    ``.gitignore``, both read from ``root`` (plus caches and VCS folders, never code).
    """
    spec = _ignore_spec(root) if honour_ignore_files else None
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if spec is not None:
            dirnames[:] = [d for d in dirnames if not spec.match_file((rel_dir / d).as_posix() + "/")]
        for filename in filenames:
            rel = (rel_dir / filename).as_posix()
            if spec is not None and spec.match_file(rel):
                continue
            found.append(rel)
    found.sort()
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
    """The ``code`` fingerprint part of a script step: its whole folder (minus ignored files), or
    just the script when it has no ``source_directory``."""
    if source_directory is not None:
        return tree_digest(hasher.hash_tree(source_directory, honour_ignore_files=True))
    return tree_digest(hasher.hash_files(script.parent, [script.name]))
