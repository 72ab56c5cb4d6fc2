"""Content hashing of files and folders, with a stat cache so unchanged files are read once.

The stat cache maps a file to its SHA-256 together with the stat it had when it was read (size,
mtime_ns, ctime_ns, inode), in a small SQLite file shared by every process on the machine. Only
content digests ever leave this module: a fingerprint or manifest never depends on where, or when,
a file was hashed.

What the cache trusts, and why it is sound: a file's ``ctime`` changes on every write, rename,
``chmod`` and ``utime`` -- and unlike ``mtime`` no user can set it back -- so an entry whose
recorded stat still matches describes the same bytes, *provided* the file was not written again
within the same timestamp tick as the stat that was recorded ("racily clean", as git calls it). An
entry is therefore kept only when the file's newest timestamp is older than the moment its bytes
began to be read by more than the file system's timestamp resolution (:data:`RACY_NS`, or two
seconds on file systems with whole-second timestamps); a racily clean file is read again next time.
Every file is ``stat``-ed on every lookup: a file rewritten in place changes neither its folder's
timestamps nor its listing, so no folder-level shortcut could notice it.

Layout, chosen for folders of many small files: one row per *folder* (its absolute path) holding
``{name: ((size, mtime_ns, ctime_ns, inode), sha256)}`` for its files, ``marshal``-encoded. A tree is
loaded with one range query; a folder with no changes costs one ``scandir``, a ``stat`` per file and
a tuple comparison per file, and nothing is written back.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import marshal
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pathspec

_CHUNK = 1 << 20
IGNORE_FILES = (".amlignore", ".gitignore")
_ALWAYS_IGNORED = (".git/", "__pycache__/", "*.pyc", ".amlignore", ".gitignore")
#: Timestamps this close to the moment a file was hashed may hide a write in the same tick.
RACY_NS = 20_000_000
_COARSE_RACY_NS = 2_000_000_000
#: Files up to this size are hashed in the calling thread: for them hashlib keeps the GIL and a
#: thread hand-off costs more than the hashing. Larger files go to a thread pool (hashlib releases
#: the GIL on large buffers, so they hash in parallel).
_SMALL_FILE = 256 * 1024
_TAIL = 64 * 1024
#: With more folders than this, a lookup loads the rows of the whole tree in one query.
_FEW_FOLDERS = 8
#: Bumped when the encoding of a folder row changes; rows of another version are ignored.
_ROW_VERSION = 2

Signature = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode
#: One folder's rows: file name -> (size, mtime_ns, ctime_ns, inode when hashed, SHA-256). Flat, not
#: (signature, digest): decoding and comparing 100,000 rows is measurably cheaper (0.07 s against 0.11 s).
FolderRows = dict[str, tuple[int, int, int, int, str]]
#: A file to read: (absolute path, signature, its folder's rows to record it in, name, index in the output).
_Miss = tuple[str, Signature, FolderRows, str, int]
#: A listed folder: (absolute path, path relative to the tree's root ("" or ending in "/"),
#: [(file name, stat)]).
ListedFolder = tuple[str, str, list[tuple[str, os.stat_result]]]


def default_stat_cache_path() -> Path:
    """Where the machine-wide stat cache lives (``AMLPIPE_STAT_CACHE`` overrides it)."""
    env = os.environ.get("AMLPIPE_STAT_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "amlpipe" / "statcache.sqlite"


def signature(st: os.stat_result) -> Signature:
    """What must be unchanged for a cached digest to describe a file's bytes."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def racily_clean(sig: Signature, hashed_at_ns: int) -> bool:
    """Whether a file with this signature, read from ``hashed_at_ns`` on, may have been written again
    in the same timestamp tick (then its digest is not kept: see the module docstring)."""
    newest = max(sig[1], sig[2])
    resolution = _COARSE_RACY_NS if newest % 1_000_000_000 == 0 else RACY_NS
    return newest + resolution >= hashed_at_ns


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a scan allocates a tuple per file.

    A tree of 100,000 files creates several hundred thousand long-lived containers; each young
    generation collection would walk them again (measurably: ~10 % of a warm scan). Nothing
    allocated here forms cycles, and the previous state is restored afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class StatCache:
    """Folder -> {file name: (signature, SHA-256)}, persisted in SQLite (see the module docstring)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_stat_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS folder_digests (path TEXT PRIMARY KEY, v INTEGER, entries BLOB)")
            # The per-file table of earlier versions: a cache, so it is simply dropped (looked for first, so
            # that opening the cache never takes the write lock once it is gone).
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'file_digests'").fetchone():
                conn.execute("DROP TABLE IF EXISTS file_digests")

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def load(self, folder: str, *, below: bool = True) -> dict[str, bytes]:
        """The encoded rows of ``folder`` (absolute) and, with ``below``, of every folder under it,
        in one query; decode a folder's with :meth:`decode` when it is visited."""
        folder = folder.rstrip(os.sep) or os.sep
        if not below:
            query, args = "SELECT path, entries FROM folder_digests WHERE path = ? AND v = ?", (folder, _ROW_VERSION)
        else:
            low = folder.rstrip(os.sep) + os.sep
            high = folder.rstrip(os.sep) + chr(ord(os.sep) + 1)
            query = "SELECT path, entries FROM folder_digests WHERE (path = ? OR (path >= ? AND path < ?)) AND v = ?"
            args = (folder, low, high, _ROW_VERSION)  # type: ignore[assignment]
        return {str(path): blob for path, blob in self._connect().execute(query, args)}

    @staticmethod
    def decode(blob: bytes | None) -> FolderRows:
        """A folder's rows; a row that does not decode is treated as empty (everything is read again)."""
        if not blob:
            return {}
        try:
            rows = marshal.loads(blob)
        except (EOFError, ValueError, TypeError):
            return {}
        # Checked with C-level maps: a generator over 100,000 rows costs more than decoding them.
        if not isinstance(rows, dict) or (
            rows and ({*map(type, rows.values())} != {tuple} or {*map(len, rows.values())} != {5})
        ):
            return {}
        return rows

    def store(self, folders: dict[str, FolderRows]) -> None:
        """Replace the rows of these folders, in one transaction (a folder without rows is removed)."""
        if not folders:
            return
        conn = self._connect()
        conn.execute("BEGIN")
        try:
            for folder, rows in folders.items():
                if rows:
                    conn.execute(
                        "INSERT OR REPLACE INTO folder_digests VALUES (?, ?, ?)",
                        (folder, _ROW_VERSION, marshal.dumps(rows)),
                    )
                else:
                    conn.execute("DELETE FROM folder_digests WHERE path = ?", (folder,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def get(self, path: str, st: os.stat_result) -> str | None:
        """The cached digest of the file ``path`` (absolute) if its stat still matches, else ``None``."""
        folder, _, name = path.rpartition(os.sep)
        row = self.decode(self.load(folder or os.sep, below=False).get(folder or os.sep)).get(name)
        return row[4] if row is not None and row[:4] == signature(st) else None

    def put_many(self, rows: Iterable[tuple[str, os.stat_result, str]], *, hashed_at_ns: int | None = None) -> None:
        """Remember many digests (absolute path, stat, SHA-256); ``hashed_at_ns``: when their bytes began
        to be read (default now). Racily clean ones are left out, as they would not be trusted."""
        when = hashed_at_ns if hashed_at_ns is not None else time.time_ns()
        by_folder: dict[str, FolderRows] = {}
        for path, st, digest in rows:
            sig = signature(st)
            if not racily_clean(sig, when):
                folder, _, name = path.rpartition(os.sep)
                by_folder.setdefault(folder or os.sep, {})[name] = (*sig, digest)
        if not by_folder:
            return
        loaded: dict[str, bytes] = {}
        for folder in by_folder:
            loaded.update(self.load(folder, below=False))
        self.store({folder: {**self.decode(loaded.get(folder)), **new} for folder, new in by_folder.items()})


def sha256_file(path: str | os.PathLike[str], size_hint: int = -1) -> str:
    """SHA-256 of a file's bytes.

    ``size_hint`` (its size from a recent ``stat``) lets a small file be read with one ``read`` into
    a buffer of its size; larger ones are read in 1 MiB chunks (hashlib releases the GIL on those).
    The file is read to its end whatever the hint says.
    """
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        if 0 <= size_hint <= _SMALL_FILE:
            # One buffer of the expected size (+1 to see growth), not a 1 MiB one per small file.
            chunk = os.read(fd, size_hint + 1)
            digest.update(chunk)
            # A short read means the end of a regular file, but confirm it (a network or FUSE file system
            # may return less), with a buffer small enough not to cost an mmap per file.
            while chunk := os.read(fd, _TAIL):
                digest.update(chunk)
            return digest.hexdigest()
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def sha256_json(value: object) -> str:
    """SHA-256 of a value's canonical JSON encoding (sorted keys, no whitespace)."""
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class FileEntry(NamedTuple):
    """One file of a tree: its path relative to the tree's root, size and content digest.

    A named tuple, not a dataclass: trees of 100,000 files build one per file, and a frozen
    dataclass costs about ten times as much to create.
    """

    path: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


class Hasher:
    """Hashes files and trees, consulting the stat cache first.

    Misses are read in the calling thread when small and on ``workers`` threads when large
    (see :data:`_SMALL_FILE`), large ones first so both proceed together.
    """

    def __init__(self, cache: StatCache | None = None, workers: int | None = None) -> None:
        self.cache = cache if cache is not None else StatCache()
        self.workers = workers or min(4, os.cpu_count() or 1)

    def hash_files(self, root: Path, relpaths: Sequence[str]) -> list[FileEntry]:
        """Digest each file (paths relative to ``root``), in the given order."""
        # Resolve the root once: the cache key is the file's path under it. A symlink inside the tree
        # keys by its own path, while its stat (which follows the link) still guards the digest.
        base = str(root.resolve())
        grouped: dict[str, ListedFolder] = {}
        with _gc_paused():
            for rel in relpaths:
                rel_dir, _, name = rel.rpartition("/")
                prefix = f"{rel_dir}/" if rel_dir else ""
                folder = grouped.get(prefix)
                if folder is None:
                    folder = grouped[prefix] = (os.path.join(base, rel_dir) if rel_dir else base, prefix, [])
                folder[2].append((name, os.stat(os.path.join(base, rel))))
            digests = {entry[0]: entry for entry in self._digest(base, list(grouped.values()), complete=False)}
        return [FileEntry(*digests[rel]) for rel in relpaths]

    def hash_tree(self, root: Path, *, honour_ignore_files: bool = False) -> list[FileEntry]:
        """Every file under ``root`` (sorted by path), optionally minus ignored ones."""
        base = str(root.resolve())
        spec = _ignore_spec(Path(base)) if honour_ignore_files else None
        with _gc_paused():
            return self.hash_listing(base, _scan(base, spec))

    def hash_listing(self, root: str, folders: list[ListedFolder]) -> list[FileEntry]:
        """Every file of a listing of the tree at ``root`` (absolute; folders under it, each with every
        file it holds, as a walk found them), sorted by path. The listing is taken as complete: rows of
        files no longer there are dropped."""
        with _gc_paused():
            return [FileEntry(*entry) for entry in sorted(self._digest(root, folders, complete=True))]

    def listing_digest(self, root: str, folders: list[ListedFolder]) -> str:
        """``tree_digest(self.hash_listing(root, folders))``, without a :class:`FileEntry` per file."""
        with _gc_paused():
            return _entries_digest(sorted(self._digest(root, folders, complete=True)))

    def _digest(self, root: str, folders: list[ListedFolder], *, complete: bool) -> list[tuple[str, int, str]]:
        """(rel path, size, SHA-256) of every file of ``folders``, in listing order; the cache is consulted
        per folder and updated only for folders where something was read (or, if ``complete``, vanished)."""
        if not folders:
            return []
        # One range query for the whole tree when there are several folders; else one row.
        whole_tree = complete or len(folders) > _FEW_FOLDERS
        encoded = self.cache.load(root) if whole_tree else {}
        out: list[tuple[str, int, str]] = []
        misses: list[_Miss] = []
        changed: dict[str, FolderRows] = {}
        sep = os.sep
        for folder, prefix, files in folders:
            blob = encoded.get(folder) if whole_tree else self.cache.load(folder, below=False).get(folder)
            rows = self.cache.decode(blob)
            kept: FolderRows = {} if complete else rows
            stale = False
            for name, st in files:
                row = rows.get(name)
                if (
                    row is not None
                    and row[0] == st.st_size
                    and row[1] == st.st_mtime_ns
                    and row[2] == st.st_ctime_ns
                    and row[3] == st.st_ino
                ):
                    out.append((prefix + name, row[0], row[4]))
                    if complete:
                        kept[name] = row
                else:
                    misses.append((folder + sep + name, signature(st), kept, name, len(out)))
                    out.append((prefix + name, st.st_size, ""))  # its digest once read, below
                    stale = True
            if stale or (complete and len(kept) != len(rows)):
                changed[folder] = kept
        if complete:
            # Folders that were cached under this tree but are no longer part of it: drop their rows.
            listed = {folder for folder, _, _ in folders}
            changed.update((folder, {}) for folder in encoded if folder not in listed)
        if misses:
            # Before any byte is read: a write from now on is never recorded as clean.
            started = time.time_ns()
            for (_, sig, rows, name, index), digest in zip(misses, self._read(misses), strict=True):
                out[index] = (out[index][0], sig[0], digest)
                if not racily_clean(sig, started):
                    rows[name] = (*sig, digest)
        self.cache.store(changed)
        return out

    def _read(self, misses: list[_Miss]) -> list[str]:
        """The digests of ``misses``: large files on the pool (submitted first, so they hash while this
        thread reads the small ones). Small files stay in this thread: for them hashlib keeps the GIL,
        and measured on 100,000 files of 100-2,000 bytes, batches of them on two threads took 1.3x as
        long as one thread (the threads mostly wait for each other's GIL)."""
        large = [i for i, m in enumerate(misses) if m[1][0] > _SMALL_FILE]
        if not large or self.workers == 1:
            return [sha256_file(path, sig[0]) for path, sig, *_ in misses]
        digests: list[str] = [""] * len(misses)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [(i, pool.submit(sha256_file, misses[i][0], misses[i][1][0])) for i in large]
            for i, (path, sig, *_) in enumerate(misses):
                if sig[0] <= _SMALL_FILE:
                    digests[i] = sha256_file(path, sig[0])
            for i, future in futures:
                digests[i] = future.result()
        return digests


def list_tree(root: Path, *, honour_ignore_files: bool = False) -> list[str]:
    """Relative posix paths of the files under ``root``, sorted.

    With ``honour_ignore_files``, AML's rule applies: ``.amlignore`` if present, else
    ``.gitignore``, both read from ``root`` (plus caches and VCS folders, never code).
    """
    return [rel for rel, _ in walk_tree(root, honour_ignore_files=honour_ignore_files)]


def walk_tree(root: Path, *, honour_ignore_files: bool = False) -> list[tuple[str, os.stat_result]]:
    """``(relative posix path, stat)`` of every file under ``root``, sorted by path."""
    spec = _ignore_spec(root) if honour_ignore_files else None
    found = [(prefix + name, st) for _, prefix, files in _scan(str(root), spec) for name, st in files]
    found.sort(key=lambda item: item[0])
    return found


#: ``O_DIRECTORY`` where the platform has it: opening something that is not a folder fails at once.
_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)


@contextlib.contextmanager
def open_folder(folder: str) -> Iterator[int]:
    """A file descriptor of ``folder``, for ``os.scandir(fd)`` and ``os.stat(name, dir_fd=fd)``; closed on leaving.

    Walks of trees of many small files spend most of their time in ``stat``. ``DirEntry.stat()`` of a
    ``scandir(path)`` entry (like ``os.stat(full_path)``) makes the kernel resolve every component of the
    file's path again; ``os.stat(name, dir_fd=fd)`` resolves one (docs/performance.md, "Fourth round").
    Keep it open for one folder at a time: one per level of a walk would hold as many as the tree is deep.
    """
    fd = os.open(folder, _FOLDER_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def _scan(root: str, spec: pathspec.GitIgnoreSpec | None) -> list[ListedFolder]:
    """Every folder under ``root`` with its files and their ``stat``.

    One ``scandir`` per folder and one ``stat`` per file, by name in the open folder (following
    links to files, as reading them does); links to folders are not descended into (as
    ``os.walk``). No ``Path`` object per file: trees of 100,000 small files are common inputs.
    """
    found: list[ListedFolder] = []
    pending = [(root, "")]
    while pending:
        folder, rel_dir = pending.pop()
        files: list[tuple[str, os.stat_result]] = []
        with open_folder(folder) as fd, os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                if entry.is_dir():
                    if entry.is_symlink():
                        continue
                    if spec is None or not spec.match_file(f"{rel_dir}{name}/"):
                        pending.append((os.path.join(folder, name), f"{rel_dir}{name}/"))
                    continue
                if spec is not None and spec.match_file(rel_dir + name):
                    continue
                files.append((name, os.stat(name, dir_fd=fd)))
        found.append((folder, rel_dir, files))
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
    """One digest over a tree's (path, size, sha256) entries: the SHA-256 of their canonical JSON,
    ``[["path",size,"sha256"],...]`` (what :func:`sha256_json` gives)."""
    return _entries_digest([(e.path, e.size, e.sha256) for e in entries])


#: What JSON must escape in a string (with ``ensure_ascii=False``): quotes, backslashes, control characters.
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def _entries_digest(entries: list[tuple[str, int, str]]) -> str:
    """``sha256_json(entries)``, built by string formatting when no path needs escaping.

    ``json.dumps`` of 100,000 entries takes longer than every other step of a warm lookup but the
    ``stat`` calls; the formatted text is byte-for-byte what it would produce (tested), and any path
    that would need escaping (or size that is not an ``int``) sends the whole list through
    ``json.dumps`` instead. The columns are checked through ``zip`` and ``map``, not a Python loop.
    """
    if not entries:
        return sha256_json(entries)
    paths, sizes, _ = zip(*entries, strict=True)
    if _JSON_ESCAPED.search("".join(paths)) or {*map(type, sizes)} != {int}:
        return sha256_json(entries)
    text = "[" + ",".join([f'["{path}",{size},"{sha}"]' for path, size, sha in entries]) + "]"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
