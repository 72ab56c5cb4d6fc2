"""``run_script``: compile, then execute on an in-memory DuckDB that streams the files itself."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from airflow_provider_amlpipe.usql.compiler import CompiledScript, compile_script
from airflow_provider_amlpipe.usql.errors import UsqlError


@dataclass(frozen=True)
class RunReport:
    """What a run wrote: rows per output file (in statement order) and the compiled script."""

    rows_written: dict[Path, int] = field(default_factory=dict)
    compiled: CompiledScript | None = None


def _runtime_message(e: duckdb.Error) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    for prefix in ("Invalid Input Error: ", "Conversion Error: ", "Binder Error: "):
        msg = msg.replace(prefix, "")
    return msg


def execute(compiled: CompiledScript, *, threads: int | None = None) -> RunReport:
    """Run a compiled script. Each output is written to a temporary file and renamed when complete,
    so a failed run leaves earlier versions of the output files untouched (U-SQL's atomic OUTPUT)."""
    con = duckdb.connect(":memory:")
    rows: dict[Path, int] = {}
    pending: list[tuple[Path, Path]] = []
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute("SET preserve_insertion_order = true")
        con.execute(compiled.prelude)
        for st in compiled.statements:
            if st.kind == "comment":
                continue
            sql = st.sql
            tmp: Path | None = None
            if st.ensure_dir is not None:
                st.ensure_dir.mkdir(parents=True, exist_ok=True)
            if st.output_path is not None:
                st.output_path.parent.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(prefix=".usql-", dir=st.output_path.parent)
                os.close(fd)
                tmp = Path(name)
                sql = sql.replace(f"TO '{_sql_str(st.output_path)}'", f"TO '{_sql_str(tmp)}'", 1)
            try:
                result = con.execute(sql).fetchall()
            except duckdb.Error as e:
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
                raise UsqlError(compiled.source_name, st.line, st.column, "runtime", _runtime_message(e)) from None
            if st.drop_file is not None:
                for f in (st.drop_file, st.drop_file.with_name(st.drop_file.name + ".wal")):
                    f.unlink(missing_ok=True)
            if tmp is not None and st.output_path is not None:
                pending.append((tmp, st.output_path))
                rows[st.output_path] = int(result[0][0]) if result and result[0] else 0
        for tmp, final in pending:
            os.replace(tmp, final)
        pending.clear()
    finally:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        con.close()
    return RunReport(rows, compiled)


def _sql_str(p: Path) -> str:
    return str(p).replace("'", "''")


def run_script(
    text: str,
    *,
    source_name: str = "script.usql",
    params: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    catalog_dir: Path | None = None,
) -> RunReport:
    """Compile and run a U-SQL script locally on DuckDB; returns rows written per output path.

    ``catalog_dir``: the local U-SQL catalog (databases and tables); see :func:`compile_script`."""
    compiled = compile_script(text, source_name=source_name, params=params, base_dir=base_dir, catalog_dir=catalog_dir)
    return execute(compiled)
