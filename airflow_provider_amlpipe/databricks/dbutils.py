"""A local stand-in for Databricks' ``dbutils``: widgets, notebook.exit, fs over local paths, secrets.

It runs inside the child process of a local Databricks run (see ``local_runner``), and can be built on its
own for tests. Names and signatures follow Databricks' ``dbutils`` so notebooks run unchanged:

* ``widgets``: ``get``/``getAll``/``getArgument`` read the run's parameters; ``text``/``dropdown``/
  ``combobox``/``multiselect`` declare a widget whose value is the parameter of that name, else its default;
  reading a widget that is neither a parameter nor declared raises :class:`InputWidgetNotDefined`, as on
  Databricks.
* ``notebook.exit(value)`` ends the notebook; the value (a string) is the run's output.
* ``fs``: ``ls``/``cp``/``mv``/``rm``/``mkdirs``/``put``/``head`` on ``dbfs:/...`` paths (under the run's local
  DBFS root folder; ``/dbfs/...`` too), ``file:/...`` paths and plain local paths (relative ones under the
  run's working folder; unlike on Databricks, where a plain path is a DBFS path).
* ``secrets.get(scope, key)`` from the secrets given to the runner; the runner redacts their values in the
  run's output.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class InputWidgetNotDefined(Exception):
    """Reading a widget that no parameter set and no ``dbutils.widgets.*`` call declared."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No input widget named {name} is defined")
        self.name = name


class NotebookExit(BaseException):
    """Raised by ``dbutils.notebook.exit``: ends the notebook with ``value`` as its output.

    A ``BaseException`` so that a notebook's ``except Exception`` does not swallow it.
    """

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class SecretNotFound(KeyError):
    def __init__(self, scope: str, key: str) -> None:
        super().__init__(f"Secret does not exist with scope: {scope} and key: {key}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class FileInfo:
    """One entry of ``dbutils.fs.ls``: a folder's ``name`` ends with ``/``; ``modificationTime`` in ms."""

    path: str
    name: str
    size: int
    modificationTime: int

    def isDir(self) -> bool:
        return self.name.endswith("/")

    def isFile(self) -> bool:
        return not self.isDir()


class Widgets:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = {str(k): str(v) for k, v in params.items()}
        self._declared: dict[str, str] = {}

    def _declare(self, name: str, default: str) -> None:
        self._declared[name] = self._params.get(name, str(default))

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:
        self._declare(name, defaultValue)

    def dropdown(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:
        if str(defaultValue) not in [str(c) for c in choices]:
            raise ValueError(f"Default value {defaultValue} is not in choices {list(choices)} of widget {name}")
        self._declare(name, defaultValue)

    def combobox(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:
        self._declare(name, defaultValue)

    def multiselect(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:
        self.dropdown(name, defaultValue, choices, label)

    def get(self, name: str) -> str:
        if name in self._params:
            return self._params[name]
        if name in self._declared:
            return self._declared[name]
        raise InputWidgetNotDefined(name)

    def getArgument(self, name: str, optional: str | None = None) -> str | None:
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return optional

    def getAll(self) -> dict[str, str]:
        return {**self._declared, **self._params}

    def remove(self, name: str) -> None:
        self._declared.pop(name, None)

    def removeAll(self) -> None:
        self._declared.clear()


class Notebook:
    def exit(self, value: Any) -> None:
        raise NotebookExit("" if value is None else str(value))

    def run(self, path: str, timeout_seconds: int = 0, arguments: Mapping[str, str] | None = None) -> str:
        raise NotImplementedError(
            f"dbutils.notebook.run({path!r}) is not supported by the local Databricks runner; "
            "run that notebook as its own step"
        )


class Fs:
    """``dbutils.fs`` over the local file system; ``dbfs:/`` paths live under ``dbfs_root``."""

    def __init__(self, dbfs_root: Path, workdir: Path) -> None:
        self._root = dbfs_root.resolve()
        self._workdir = workdir

    def local_path(self, path: str) -> Path:
        """The local path behind ``path``: ``dbfs:/x`` and ``/dbfs/x`` under the DBFS root (never out of it)."""
        path = str(path)
        for prefix in ("dbfs:", "/dbfs/"):
            if path.startswith(prefix):
                rest = path[len(prefix) :].lstrip("/")
                local = (self._root / rest).resolve()
                if local != self._root and self._root not in local.parents:
                    raise ValueError(f"{path}: outside of DBFS")
                return local
        if path.startswith("file:"):
            path = "/" + path[len("file:") :].lstrip("/")
        return self._workdir / path

    def _shown(self, original: str, local: Path) -> str:
        if original.startswith(("dbfs:", "/dbfs/")):
            return "dbfs:/" + local.relative_to(self._root).as_posix().lstrip(".")
        if original.startswith("file:"):
            return "file:" + str(local)
        return str(local)

    def _existing(self, path: str) -> Path:
        local = self.local_path(path)
        if not local.exists():
            raise FileNotFoundError(f"File {path} does not exist.")
        return local

    def ls(self, dir: str) -> list[FileInfo]:
        local = self._existing(dir)
        entries = sorted(local.iterdir()) if local.is_dir() else [local]
        out = []
        for entry in entries:
            st = entry.stat()
            is_dir = entry.is_dir()
            shown = self._shown(dir, entry)
            out.append(
                FileInfo(
                    path=shown + ("/" if is_dir else ""),
                    name=entry.name + ("/" if is_dir else ""),
                    size=0 if is_dir else st.st_size,
                    modificationTime=int(st.st_mtime * 1000),
                )
            )
        return out

    def mkdirs(self, dir: str) -> bool:
        self.local_path(dir).mkdir(parents=True, exist_ok=True)
        return True

    def put(self, file: str, contents: str, overwrite: bool = False) -> bool:
        local = self.local_path(file)
        if local.exists() and not overwrite:
            raise FileExistsError(f"File already exists: {file} (pass overwrite=True)")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(contents, encoding="utf-8")
        return True

    def head(self, file: str, maxBytes: int = 65536) -> str:
        local = self._existing(file)
        if local.is_dir():
            raise IsADirectoryError(f"{file} is a directory")
        with local.open("rb") as f:
            return f.read(maxBytes).decode("utf-8", errors="replace")

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        src, dst = self._existing(from_), self.local_path(to)
        if src.is_dir():
            if not recurse:
                raise IsADirectoryError(f"{from_} is a directory (pass recurse=True)")
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            if dst.is_dir():
                dst = dst / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        return True

    def mv(self, from_: str, to: str, recurse: bool = False) -> bool:
        src, dst = self._existing(from_), self.local_path(to)
        if src.is_dir() and not recurse:
            raise IsADirectoryError(f"{from_} is a directory (pass recurse=True)")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dst))
        return True

    def rm(self, dir: str, recurse: bool = False) -> bool:
        local = self.local_path(dir)
        if not local.exists() and not local.is_symlink():
            return False
        if local.is_dir() and not local.is_symlink():
            if any(local.iterdir()) and not recurse:
                raise OSError(f"{dir} is a non-empty directory (pass recurse=True)")
            shutil.rmtree(local)
        else:
            local.unlink()
        return True


class Secrets:
    """``dbutils.secrets`` from a ``{scope: {key: value}}`` mapping."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        self._secrets = {scope: dict(keys) for scope, keys in secrets.items()}

    def get(self, scope: str, key: str) -> str:
        try:
            return self._secrets[scope][key]
        except KeyError:
            raise SecretNotFound(scope, key) from None

    def getBytes(self, scope: str, key: str) -> bytes:
        return self.get(scope, key).encode("utf-8")

    def listScopes(self) -> list[str]:
        return sorted(self._secrets)

    def list(self, scope: str) -> list[str]:
        if scope not in self._secrets:
            raise KeyError(f"Scope {scope} does not exist")
        return sorted(self._secrets[scope])


class DBUtils:
    """The ``dbutils`` global of a locally run notebook."""

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        dbfs_root: str | os.PathLike[str],
        workdir: str | os.PathLike[str] | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.widgets = Widgets(params or {})
        self.notebook = Notebook()
        self.fs = Fs(Path(dbfs_root), Path(workdir) if workdir is not None else Path.cwd())
        self.secrets = Secrets(secrets or {})

    def help(self) -> None:
        print("Local dbutils stand-in: widgets, notebook.exit, fs (ls/cp/mv/rm/mkdirs/put/head), secrets.get")
