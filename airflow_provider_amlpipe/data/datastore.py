"""The datastore contract and its local-folder implementation.

A datastore is a flat namespace of keys ('/'-separated relative paths) holding bytes. Everything
stateful in this package -- step outputs, the dataset registry, reuse records and leases -- is
built on these few operations, and on one primitive above all: :meth:`Datastore.create` with
``if_absent=True``, which writes a complete object only when no object of that key exists.
That single primitive yields gap-free version numbers, single-flight leases and commit-once
records without a lock server.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_amlpipe.data.names import validate_key
from airflow_provider_amlpipe.errors import NotFoundError


@dataclass(frozen=True)
class ObjectStat:
    """What a datastore knows about one object without reading it.

    ``marker`` changes whenever the object's bytes change (an ETag on Blob, size+mtime on disk);
    it is what the cheap "marker" fingerprint mode of external inputs relies on.
    """

    size: int
    marker: str


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

    def is_prefix(self, prefix: str) -> bool:
        """Whether any object exists under ``prefix`` treated as a folder."""
        return next(iter(self.list(prefix)), None) is not None

    def has_folder(self, prefix: str) -> bool:
        """Whether ``prefix`` is a folder, even one holding no objects (to tell "empty" from "absent")."""
        return self.is_prefix(prefix)

    def describe(self) -> str:
        """A short human description, for logs and errors."""
        return f"{type(self).__name__}({self.name})"


class LocalDatastore(Datastore):
    """A datastore in a local (or shared network) folder.

    Atomicity comes from the file system: objects are written to a temporary file in the same
    folder and then renamed into place (replace) or hard-linked into place (create-if-absent,
    which fails with ``EEXIST`` when the key exists, so exactly one writer wins).
    """

    def __init__(self, name: str, root: str | os.PathLike[str]) -> None:
        super().__init__(name)
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def _temp_beside(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.parent / f".tmp-{uuid.uuid4().hex}-{path.name}"

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFoundError(f"{self.describe()}: no object {key!r}") from exc

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        path = self._path(key)
        tmp = self._temp_beside(path)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return self._place(tmp, path, if_absent=if_absent)

    def _place(self, tmp: Path, path: Path, *, if_absent: bool) -> bool:
        try:
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
        return self._path(key).is_file()

    def stat(self, key: str) -> ObjectStat:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFoundError(f"{self.describe()}: no object {key!r}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise NotFoundError(f"{self.describe()}: {key!r} is a folder, not an object")
        return ObjectStat(size=st.st_size, marker=f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}")

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix)
        if base.is_file():
            yield prefix
            return
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for filename in sorted(filenames):
                if filename.startswith(".tmp-"):
                    continue
                yield f"{rel_dir}/{filename}"

    def has_folder(self, prefix: str) -> bool:
        return self._path(prefix).is_dir()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def upload_file(self, local_path: Path, key: str, *, move: bool = False) -> None:
        path = self._path(key)
        tmp = self._temp_beside(path)
        try:
            if not move:
                raise OSError("copy requested")
            os.rename(local_path, tmp)  # free on the same file system
        except OSError:
            # Never a hard link: a later write to the caller's file would alter a stored version.
            shutil.copyfile(local_path, tmp)
        self._place(tmp, path, if_absent=False)

    def download_file(self, key: str, local_path: Path) -> None:
        local_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = local_path.parent / f".tmp-{uuid.uuid4().hex}-{local_path.name}"
        try:
            shutil.copyfile(self._path(key), tmp)
            os.replace(tmp, local_path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFoundError(f"{self.describe()}: no object {key!r}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return str(self._path(key))

    def describe(self) -> str:
        return f"local datastore {self.name!r} at {self.root}"


def new_temp_dir(prefix: str = "amlpipe-") -> Path:
    """A fresh private temporary folder (callers remove it)."""
    return Path(tempfile.mkdtemp(prefix=prefix))
