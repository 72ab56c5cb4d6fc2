"""The datastore contract and its local-folder implementation.

A datastore is a flat namespace of keys ('/'-separated relative paths) holding bytes. Everything
stateful in this package -- step outputs, the dataset registry, reuse records and leases -- is
built on these few operations, and on one primitive above all: :meth:`Datastore.create` with
``if_absent=True``, which writes a complete object only when no object of that key exists.
That single primitive yields gap-free version numbers, single-flight leases and commit-once
records without a lock server.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_amlpipe import faults
from airflow_provider_amlpipe.data.names import validate_key
from airflow_provider_amlpipe.errors import ConfigurationError, NotFoundError
from airflow_provider_amlpipe.hashing import open_folder


def etag(value: object) -> str:
    """An ETag as a change marker: without the quotes a response header has and a listing has not."""
    return str(value).strip('"')


def quoted_etag(marker: str) -> str:
    """An ETag (quoted or not) as a conditional request header carries it."""
    return f'"{etag(marker)}"'


@dataclass(frozen=True)
class ObjectStat:
    """What a datastore knows about one object without reading it.

    ``marker`` changes whenever the object's bytes change (an ETag on Blob; size, mtime, ctime and
    inode on disk, where ctime cannot be set back by a user); it is what the cheap "marker"
    fingerprint mode of external inputs and the verification of remote objects rely on.
    ``modified`` is when the object was last written (seconds since the epoch); ``regular`` is false
    for anything that is not a plain file (a symbolic link on disk). ``content_md5`` is the hex MD5
    the service stored with the object, where its listing tells it (Blob's Content-MD5): extra
    knowledge, not part of the object's identity, so it takes no part in comparisons.
    """

    size: int
    marker: str
    modified: float = 0.0
    regular: bool = True
    content_md5: str | None = field(default=None, compare=False)


class Datastore(ABC):
    """A named store of objects addressed by relative keys."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Return the object's bytes; raise :class:`NotFoundError` when absent."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Write the object atomically (readers see all of it or none of it).

        With ``if_absent`` the write happens only when no object of this key exists; the return
        value says whether this call created it. Without it the object is replaced.
        """

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object of this key exists."""

    @abstractmethod
    def stat(self, key: str) -> ObjectStat:
        """Size and change marker of one object; raise :class:`NotFoundError` when absent."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Keys of all objects under ``prefix`` (a folder: ``prefix/...``), in no set order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; absent objects are not an error."""

    @abstractmethod
    def upload_file(self, local_path: Path, key: str, *, move: bool = False) -> None:
        """Store a local file's bytes under ``key`` atomically, replacing any object there.

        With ``move`` the caller gives the file up: a store may take it over (rename) instead
        of copying it, and the local file may be gone afterwards.
        """

    @abstractmethod
    def download_file(self, key: str, local_path: Path) -> None:
        """Copy one object to a local file."""

    @abstractmethod
    def url(self, key: str) -> str:
        """Where a person or another tool finds this object (a path or a URL)."""

    def local_path(self, key: str) -> Path | None:
        """The object's path on this machine, when the store is a local folder; else ``None``."""
        return None

    def list_stats(self, prefix: str) -> dict[str, ObjectStat]:
        """Every object under ``prefix`` (a folder) with its stat, in as few requests as the store allows."""
        return {key: self.stat(key) for key in self.list(prefix)}

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix`` (a folder); return how many were removed."""
        keys = list(self.list(prefix))
        for key in keys:
            self.delete(key)
        return len(keys)

    def seal(self, prefix: str) -> None:
        """Make the objects under ``prefix`` read-only where the store can (committed versions)."""
        return None

    def is_prefix(self, prefix: str) -> bool:
        """Whether any object exists under ``prefix`` treated as a folder."""
        return next(iter(self.list(prefix)), None) is not None

    def has_folder(self, prefix: str) -> bool:
        """Whether ``prefix`` is a folder, even one holding no objects (to tell "empty" from "absent")."""
        return self.is_prefix(prefix)

    def describe(self) -> str:
        """A short human description, for logs and errors."""
        return f"{type(self).__name__}({self.name})"


TEMP_FOLDER = ".amlpipe-tmp"
#: One folder of a local listing: (absolute path, path relative to the listed folder ("" or ending
#: in "/"), [(file name, stat)]).
LocalFolder = tuple[str, str, list[tuple[str, os.stat_result]]]
#: A local listing: every folder under the listed one (itself first), each with its files.
LocalListing = list[LocalFolder]
_SEALED_FILE = 0o444
_SEALED_DIR = 0o555


class LocalDatastore(Datastore):
    """A datastore in a local (or shared network) folder.

    Atomicity comes from the file system: objects are written to a temporary file in the store's
    own temporary folder (``.amlpipe-tmp``, on the same file system, never inside an object's
    folder) and then renamed into place (replace) or hard-linked into place (create-if-absent,
    which fails with ``EEXIST`` when the key exists, so exactly one writer wins).

    Keys never lead outside the root: a symbolic link inside the store that points elsewhere is
    refused rather than followed.
    """

    def __init__(self, name: str, root: str | os.PathLike[str]) -> None:
        super().__init__(name)
        self.root = Path(root).expanduser().resolve()
        self._root_str = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _inside(self, path: Path, key: str) -> Path:
        """``path``, unless a symbolic link on the way leads outside the store (then an error)."""
        real = os.path.realpath(path)
        if real != self._root_str and not real.startswith(self._root_str + os.sep):
            raise ConfigurationError(
                "path",
                f"{key!r} in {self.describe()} is a symbolic link (or lies under one) leading outside the"
                f" datastore, to {real}",
                "copy the data into the datastore's folder, or point the datastore connection at a folder"
                " that contains it",
            )
        return path

    def local_path(self, key: str) -> Path | None:
        return self._inside(self._path(key), key)

    def _temp(self) -> Path:
        folder = self.root / TEMP_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        return folder / uuid.uuid4().hex

    def _parent_ready(self, path: Path) -> None:
        """Make ``path``'s folder exist and be writable (committed folders are sealed read-only)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            self._unseal_to(path.parent)
            path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            self._unseal_to(path.parent)

    def _unseal_to(self, folder: Path) -> None:
        """Give the owner write permission on every existing folder from the root down to ``folder``."""
        current = self.root
        for part in folder.relative_to(self.root).parts:
            current = current / part
            if not current.is_dir():
                return
            mode = stat.S_IMODE(current.stat().st_mode)
            if not mode & stat.S_IWUSR:
                os.chmod(current, mode | stat.S_IWUSR)

    def read_bytes(self, key: str) -> bytes:
        faults.point("datastore.read")
        try:
            return self._inside(self._path(key), key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFoundError(f"{self.describe()}: no object {key!r}") from exc

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        faults.point("datastore.write")
        path = self._path(key)
        tmp = self._temp()
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return self._place(tmp, path, if_absent=if_absent)

    def _place(self, tmp: Path, path: Path, *, if_absent: bool) -> bool:
        try:
            self._parent_ready(path)
            if not if_absent:
                os.replace(tmp, path)
                return True
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as exc:  # file systems without hard links
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                return self._place_exclusive_copy(tmp, path)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _place_exclusive_copy(tmp: Path, path: Path) -> bool:
        # O_EXCL creation is atomic for the name but the bytes arrive afterwards; readers of
        # such stores must tolerate a short window of a partial object, so it is the fallback.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(tmp.read_bytes())
        return True

    def exists(self, key: str) -> bool:
        path = self._path(key)
        return path.is_file() and self._inside(path, key) is not None

    @staticmethod
    def object_stat(st: os.stat_result) -> ObjectStat:
        """The :class:`ObjectStat` of a local file from its ``stat``."""
        marker = f"{st.st_size}-{st.st_mtime_ns}-{st.st_ctime_ns}-{st.st_ino}"
        return ObjectStat(st.st_size, marker, max(st.st_mtime, st.st_ctime), stat.S_ISREG(st.st_mode))

    def stat(self, key: str) -> ObjectStat:
        try:
            st = self._inside(self._path(key), key).stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFoundError(f"{self.describe()}: no object {key!r}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise NotFoundError(f"{self.describe()}: {key!r} is a folder, not an object")
        return self.object_stat(st)

    def list(self, prefix: str) -> Iterator[str]:
        faults.point("datastore.list")
        base = self._path(prefix)
        if base.is_file():
            self._inside(base, prefix)
            yield prefix
            return
        if not base.is_dir():
            return
        self._inside(base, prefix)
        yield from sorted(self._walk(base, prefix))

    def list_stats(self, prefix: str) -> dict[str, ObjectStat]:
        """Objects under ``prefix`` with their ``lstat``: a symbolic link is reported, never followed."""
        faults.point("datastore.list")
        base = self._path(prefix)
        if not base.is_dir():
            return {prefix: self.stat(prefix)} if base.is_file() else {}
        found: dict[str, ObjectStat] = {}
        pending = [(str(base), prefix)]
        while pending:
            folder, rel = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    key = f"{rel}/{entry.name}"
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, key))
                    else:
                        found[key] = self.object_stat(entry.stat(follow_symlinks=False))
        return found

    def _link_target(self, link: str, folder: str, key: str) -> Path | None:
        """Where the link ``key`` (in ``folder``) leads: inside the store, and never to a folder that
        contains it (a cycle); ``None`` when it leads nowhere."""
        target = self._inside(Path(link), key)
        if target.is_dir():
            real, here = os.path.realpath(link), os.path.realpath(folder)
            if here == real or here.startswith(real + os.sep):  # a link to an ancestor: a cycle
                raise ConfigurationError(
                    "path", f"{key!r} in {self.describe()} is a link to a folder that contains it", "remove the link"
                )
            return target
        return target if target.exists() else None

    def _walk(self, folder: Path, rel: str) -> Iterator[str]:
        """Keys of the files under ``folder``; symbolic links inside the store are followed (once)."""
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(".tmp-") or entry.name == TEMP_FOLDER:
                    continue
                key = f"{rel}/{entry.name}"
                if entry.is_symlink():
                    target = self._link_target(entry.path, str(folder), key)
                    if target is not None and target.is_dir():
                        yield from self._walk(target, key)
                    elif target is not None:
                        yield key
                elif entry.is_dir():
                    yield from self._walk(Path(entry.path), key)
                else:
                    yield key

    def listing(self, prefix: str) -> LocalListing | None:
        """The files under the folder ``prefix`` with their ``stat``, grouped by folder, in one walk.

        The same files as :meth:`list` (links inside the store followed, temporary files skipped),
        for callers that need each file's stat too: listing and then ``stat``-ing every key would
        walk the tree twice. ``None`` when ``prefix`` is not a folder.
        """
        faults.point("datastore.list")
        base = self._path(prefix)
        if not base.is_dir():
            return None
        self._inside(base, prefix)
        found: LocalListing = []
        self._walk_stats(str(base), "", prefix, found)
        return found

    def _walk_stats(self, folder: str, rel: str, prefix: str, found: LocalListing) -> None:
        """:meth:`_walk`, collecting ``(folder, rel, [(name, stat)])``; ``rel`` is "" or ends in "/"."""
        files: list[tuple[str, os.stat_result]] = []
        found.append((folder, rel, files))
        below: list[tuple[str, str]] = []
        with open_folder(folder) as fd, os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(".tmp-") or name == TEMP_FOLDER:
                    continue
                if entry.is_symlink():
                    path = os.path.join(folder, name)
                    target = self._link_target(path, folder, f"{prefix}/{rel}{name}")
                    if target is not None and target.is_dir():
                        below.append((path, f"{rel}{name}/"))
                    elif target is not None:
                        files.append((name, os.stat(name, dir_fd=fd)))
                elif entry.is_dir():
                    below.append((os.path.join(folder, name), f"{rel}{name}/"))
                else:
                    files.append((name, os.stat(name, dir_fd=fd)))
        for path, sub in below:
            self._walk_stats(path, sub, prefix, found)

    def has_folder(self, prefix: str) -> bool:
        return self._path(prefix).is_dir()

    def delete(self, key: str) -> None:
        faults.point("datastore.delete")
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except PermissionError:
            self._unseal_to(path.parent)
            path.unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        faults.point("datastore.delete")
        base = self._path(prefix)
        if not base.is_dir():
            existed = base.is_file()
            self.delete(prefix)
            return int(existed)
        count = 0
        for dirpath, dirnames, filenames in os.walk(base):
            os.chmod(dirpath, 0o755)
            count += len(filenames)
            for name in dirnames:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(dirpath, name), 0o755)
        self._unseal_to(base.parent)
        shutil.rmtree(base)
        return count

    def seal(self, prefix: str) -> None:
        """Files under ``prefix`` become read-only (0444), folders too (0555): a consumer that is not
        root cannot change a committed version it was handed in place."""
        base = self._path(prefix)
        if not base.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(base, topdown=False):
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), _SEALED_FILE, follow_symlinks=False)
            os.chmod(dirpath, _SEALED_DIR)

    def upload_file(self, local_path: Path, key: str, *, move: bool = False) -> None:
        faults.point("datastore.write")
        path = self._path(key)
        if move:
            self._parent_ready(path)
            try:
                os.replace(local_path, path)  # free on the same file system, and atomic
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        # Never a hard link: a later write to the caller's file would alter a stored version.
        tmp = self._temp()
        shutil.copyfile(local_path, tmp)
        self._place(tmp, path, if_absent=False)

    def download_file(self, key: str, local_path: Path) -> None:
        faults.point("datastore.read")
        with local_file_in_place(local_path) as tmp:
            try:
                shutil.copyfile(self._inside(self._path(key), key), tmp)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
                raise NotFoundError(f"{self.describe()}: no object {key!r}") from exc

    def url(self, key: str) -> str:
        return str(self._path(key))

    def describe(self) -> str:
        return f"local datastore {self.name!r} at {self.root}"


def local_listing(store: Datastore, prefix: str) -> LocalListing | None:
    """:meth:`LocalDatastore.listing` where ``store`` is a local folder; ``None`` for other stores
    (and where ``prefix`` is not a folder)."""
    return store.listing(prefix) if isinstance(store, LocalDatastore) else None


@contextlib.contextmanager
def local_file_in_place(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file beside ``dest`` (its folder made if need be) to write a download into; renamed to ``dest``
    when the block ends without error, removed otherwise -- so an interrupted download never leaves a truncated file
    under the final name."""
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The name's start only tells a person what it was for; all of it could pass the file system's name limit.
    tmp = target.parent / f".tmp-{uuid.uuid4().hex}-{target.name[:64]}"
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def new_temp_dir(prefix: str = "amlpipe-") -> Path:
    """A fresh private temporary folder (callers remove it)."""
    return Path(tempfile.mkdtemp(prefix=prefix))
