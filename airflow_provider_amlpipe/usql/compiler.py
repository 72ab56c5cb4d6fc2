"""``compile_script``: U-SQL text -> :class:`CompiledScript` (parse, then emit DuckDB SQL)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.dialects.duckdb.emitter import DuckDbEmitter, EmittedStatement
from airflow_provider_amlpipe.usql.dialects.duckdb.prelude import PRELUDE
from airflow_provider_amlpipe.usql.jobinfo import JobInfo
from airflow_provider_amlpipe.usql.parser import parse


@dataclass(frozen=True)
class CompiledScript:
    """A compiled script: the parsed statements (:mod:`nodes`) and the DuckDB statements they became."""

    source_name: str
    script: n.Script
    statements: tuple[EmittedStatement, ...]
    prelude: str = PRELUDE

    @property
    def outputs(self) -> tuple[Path, ...]:
        """The files the script writes, in statement order."""
        return tuple(s.output_path for s in self.statements if s.output_path is not None)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the compiler accepted without a local effect (``EXPIRATION``, INDEX clauses, IF branches taken...)."""
        return tuple(s.sql.removeprefix("-- note: ") for s in self.statements if s.sql.startswith("-- note: "))

    def to_sql(self) -> str:
        """The whole DuckDB script: helper macros, then one statement per U-SQL statement."""
        body = "\n\n".join(f"-- {self.source_name}:{s.line}\n{s.sql}" for s in self.statements)
        return f"{self.prelude}\n\n{body}\n"


def default_catalog_dir() -> Path:
    """The catalog folder when none is given: ``$AMLPIPE_USQL_CATALOG``, else ``~/.cache/amlpipe/usql-catalog``."""
    env = os.environ.get("AMLPIPE_USQL_CATALOG")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "amlpipe" / "usql-catalog"


def compile_script(
    text: str,
    *,
    source_name: str = "script.usql",
    params: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    catalog_dir: Path | None = None,
    path_map: Mapping[str, str | Path] | None = None,
    job_info: JobInfo | None = None,
) -> CompiledScript:
    """Compile U-SQL to DuckDB SQL.

    ``params`` override the defaults of ``DECLARE EXTERNAL`` variables (an unknown name is an
    error); relative paths in the script resolve against ``base_dir`` (default: the current
    directory). Raises :class:`~airflow_provider_amlpipe.usql.errors.UsqlError` for any problem
    in the script, with its position. ``catalog_dir`` holds the local U-SQL catalog (one DuckDB file per
    database; default: :func:`default_catalog_dir`); it is only read or written by scripts that use
    databases or tables. ``path_map`` maps path prefixes (``wasb://container@account/``, ``adl://...``,
    ``/Samples/``) to local folders, so a script written for Azure runs on a local copy (see :mod:`.paths`).
    ``job_info`` gives the values of ``@@JobInfo`` (default: :meth:`JobInfo.local`, the local run's).
    """
    script = parse(text, source_name)
    catalog = (catalog_dir or default_catalog_dir()).absolute()
    base = (base_dir or Path.cwd()).absolute()
    emitter = DuckDbEmitter(source_name, params or {}, base, catalog_dir=catalog, path_map=path_map, job_info=job_info)
    return CompiledScript(source_name, script, tuple(emitter.emit(script)))
