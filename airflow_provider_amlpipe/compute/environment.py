"""Python environments for script steps: an interpreter, or a cached venv built from requirements."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError


def env_cache_root() -> Path:
    env = os.environ.get("AMLPIPE_ENV_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "amlpipe" / "envs"


@dataclass(frozen=True)
class PythonEnvironment:
    """Which Python runs a script step.

    ``interpreter``: a path or command (default: the worker's own interpreter).
    ``requirements``: a requirements file (relative to the step's ``source_directory`` or
    absolute); a venv with those packages is built once per distinct file and reused.
    ``system_site_packages``: let that venv see the interpreter's packages (default true, so
    scripts can ``import airflow_provider_amlpipe.runtime`` and anything already installed).
    """

    interpreter: str | None = None
    requirements: str | None = None
    system_site_packages: bool = True

    def validate(self, source_directory: Path | None) -> None:
        """Cheap checks where a step is defined: field types, and a requirements file that should be
        in a ``source_directory`` present on this machine. Nothing is run or read."""
        for name in ("interpreter", "requirements"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (str, os.PathLike)) or not str(value).strip()):
                raise ConfigurationError(
                    f"environment.{name}", f"expected a path, got {value!r}", f"pass a path, or leave {name} out"
                )
        if not isinstance(self.system_site_packages, bool):
            raise ConfigurationError(
                "environment.system_site_packages",
                f"expected True or False, got {self.system_site_packages!r}",
                "pass system_site_packages=True or False",
            )
        relative = self.requirements is not None and not Path(self.requirements).is_absolute()
        if relative and source_directory is not None and source_directory.is_dir():
            self._requirements_path(source_directory)  # raises naming the missing file

    def _requirements_path(self, source_directory: Path | None) -> Path | None:
        if self.requirements is None:
            return None
        path = Path(self.requirements)
        if not path.is_absolute() and source_directory is not None:
            path = source_directory / path
        if not path.is_file():
            raise ConfigurationError(
                "environment.requirements",
                f"requirements file {str(path)!r} does not exist",
                "point it at an existing file",
            )
        return path

    def _base_interpreter(self) -> str:
        return self.interpreter or sys.executable

    def identity(self, source_directory: Path | None) -> dict[str, str]:
        """What of this environment can change a result: interpreter version, requirements bytes."""
        identity = {"python": _interpreter_version(self._base_interpreter())}
        requirements = self._requirements_path(source_directory)
        if requirements is not None:
            identity["requirements_sha256"] = hashlib.sha256(requirements.read_bytes()).hexdigest()
            identity["system_site_packages"] = str(self.system_site_packages)
        return identity

    def python(self, source_directory: Path | None) -> str:
        """The interpreter to run, building the requirements venv first if needed."""
        requirements = self._requirements_path(source_directory)
        if requirements is None:
            return self._base_interpreter()
        key = hashlib.sha256(repr(sorted(self.identity(source_directory).items())).encode()).hexdigest()[:16]
        return str(
            _ensure_venv(self._base_interpreter(), requirements, env_cache_root() / key, self.system_site_packages)
        )


def _interpreter_version(interpreter: str) -> str:
    if interpreter == sys.executable:
        return sys.version.split()[0]
    try:
        out = subprocess.run(
            [interpreter, "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ConfigurationError(
            "environment.interpreter",
            f"cannot run interpreter {interpreter!r}: {exc}",
            "give a working python executable",
        ) from exc
    return out.stdout.strip()


def _ensure_venv(base: str, requirements: Path, target: Path, system_site_packages: bool) -> Path:
    python = target / "bin" / "python"
    ready = target / ".amlpipe-ready"
    if ready.exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per machine; the others wait then reuse
        if ready.exists():
            return python
        cmd = [base, "-m", "venv", str(target)]
        if system_site_packages:
            cmd.insert(3, "--system-site-packages")
        for step in (cmd, [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)]):
            result = subprocess.run(step, capture_output=True, text=True)
            if result.returncode != 0:
                raise StepFailedError(f"building the environment failed: {' '.join(step)}\n{result.stderr[-2000:]}")
        ready.touch()
    return python
