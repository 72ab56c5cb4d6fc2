"""``run_script``: compile, then execute on an in-memory DuckDB that streams the files itself."""

from __future__ import annotations

import codecs
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from airflow_provider_amlpipe.usql.compiler import CompiledScript, compile_script
from airflow_provider_amlpipe.usql.emit_model import InputCopy
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.jobinfo import JobInfo
from airflow_provider_amlpipe.usql.options import STRICT_OUTPUT_ENCODINGS


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
    copies: set[Path] = set()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute("SET preserve_insertion_order = true")
        con.execute(compiled.prelude)
        for st in compiled.statements:
            if st.kind == "comment":
                continue
            if st.input_copy is not None:
                copies.add(st.input_copy.root)
                try:
                    _utf8_copies(st.input_copy)
                except (OSError, UnicodeDecodeError) as e:
                    raise UsqlError(compiled.source_name, st.line, st.column, "runtime", str(e)) from None
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
                if st.output_encoding is not None:
                    try:
                        _transcode(tmp, st.output_encoding, st.output_row_delimiter)
                    except OutputEncodingError as e:
                        tmp.unlink(missing_ok=True)
                        raise UsqlError(compiled.source_name, st.line, st.column, "encoding",
                                        f"{st.output_path}: {e}; no output was written") from None  # fmt: skip
                pending.append((tmp, st.output_path))
                rows[st.output_path] = int(result[0][0]) if result and result[0] else 0
        for tmp, final in pending:
            os.replace(tmp, final)
        pending.clear()
    finally:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        con.close()
        for root in copies:
            shutil.rmtree(root, ignore_errors=True)
    return RunReport(rows, compiled)


class OutputEncodingError(ValueError):
    """An output holds a character its encoding cannot represent (see ``STRICT_OUTPUT_ENCODINGS``)."""


def _transcode(path: Path, codec: str, row_delimiter: str) -> None:
    """Re-encode DuckDB's UTF-8 output file in place, in chunks, without a BOM (the outputters write none).

    Characters a code page cannot represent become ``?``, as .NET's encoders write them; in the codecs of
    ``STRICT_OUTPUT_ENCODINGS`` they raise :class:`OutputEncodingError` naming the line and character."""
    strict = codec in STRICT_OUTPUT_ENCODINGS
    out = path.with_name(path.name + ".enc")
    lines = 0  # row delimiters before the current chunk
    try:
        with (
            path.open(encoding="utf-8", newline="") as src,
            out.open("w", encoding=codec, errors="strict" if strict else "replace", newline="") as dst,
        ):
            while chunk := src.read(1 << 20):
                try:
                    dst.write(chunk)
                except UnicodeEncodeError as e:
                    raise _encoding_error(chunk, e.start, lines, codec, row_delimiter) from None
                lines += chunk.count(row_delimiter[-1])
        os.replace(out, path)
    finally:
        out.unlink(missing_ok=True)


def _encoding_error(chunk: str, at: int, lines: int, codec: str, row_delimiter: str) -> OutputEncodingError:
    """The error for ``chunk[at]``: its line number in the file and that line's text (the offending value)."""
    end = row_delimiter[-1]
    start = chunk.rfind(end, 0, at) + 1
    stop = chunk.find(end, at)
    line = chunk[start : stop if stop >= 0 else len(chunk)].removesuffix(row_delimiter[:-1])
    shown = line if len(line) <= 80 else line[:77] + "..."
    c = chunk[at]
    return OutputEncodingError(
        f"line {lines + chunk.count(end, 0, at) + 1} holds {c!r} (U+{ord(c):04X}), which the {codec} encoding "
        f"cannot represent: {shown!r}"
    )


def _utf8_copies(copy: InputCopy) -> None:
    """Make the UTF-8 copies of an input's files (see :class:`InputCopy`)."""
    if copy.regex is None:
        files = [Path(copy.source)]
    else:
        match = re.compile(copy.regex).fullmatch
        files = [Path(f) for f in sorted(glob.glob(copy.source)) if match(f)]
    for f in files:
        _decode_to_utf8(f, copy.folder / f.relative_to(f.anchor), copy.codec)


def _decode_to_utf8(src: Path, dst: Path, codec: str) -> None:
    """Re-encode ``src`` from ``codec`` to UTF-8, in chunks. A byte order mark at the start is dropped (as the .NET
    readers do); bytes that are not valid in ``codec`` raise a ``UnicodeDecodeError`` naming the file and offset."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    dst.parent.mkdir(parents=True, exist_ok=True)
    offset = 0
    start = True
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        while True:
            chunk = fin.read(1 << 20)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                at = offset - pending + e.start
                raise UnicodeDecodeError(
                    codec, e.object, e.start, e.end, f"{src}: the bytes at offset {at} are not valid {codec}"
                ) from None
            if start and text:
                text, start = text.removeprefix("\ufeff"), False
            fout.write(text)
            if not chunk:
                return
            offset += len(chunk)


def _sql_str(p: Path) -> str:
    return str(p).replace("'", "''")


def run_script(
    text: str,
    *,
    source_name: str = "script.usql",
    params: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    catalog_dir: Path | None = None,
    path_map: Mapping[str, str | Path] | None = None,
    job_info: JobInfo | None = None,
) -> RunReport:
    """Compile and run a U-SQL script locally on DuckDB; returns rows written per output path.

    ``catalog_dir``: the local U-SQL catalog (databases and tables); ``path_map``: path prefix -> local
    folder, e.g. ``{"wasb://container@account/": "data/"}``; ``job_info``: the values of ``@@JobInfo``; see
    :func:`compile_script`."""
    compiled = compile_script(
        text,
        source_name=source_name,
        params=params,
        base_dir=base_dir,
        catalog_dir=catalog_dir,
        path_map=path_map,
        job_info=job_info,
    )
    return execute(compiled)
