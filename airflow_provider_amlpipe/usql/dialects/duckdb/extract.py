"""The DuckDB emitter's EXTRACT: the built-in text extractors (``read_csv`` and C# parsing rules), Parquet input,
file sets and their virtual columns, file-property columns, UTF-8 copies of inputs in other encodings."""

from __future__ import annotations

import glob
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import parquet
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs import STRICT_INTEGER, lit, parse_string_as, q
from airflow_provider_amlpipe.usql.emit_model import EmittedStatement, InputCopy
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.filesets import (
    DATE_PARTS,
    FileSet,
    FileSetError,
    Placeholder,
    is_file_set,
    parse_file_set,
)
from airflow_provider_amlpipe.usql.options import DUCKDB_ENCODINGS, TextFormat, text_format
from airflow_provider_amlpipe.usql.translator import Translator
from airflow_provider_amlpipe.usql.types import UType

#: The same as a DuckDB regex whose group 1 is the signed digits.
_INTEGER_GROUP = "'^[\\t-\\r ]*([+-]?[0-9]+)[\\t-\\r ]*$'"


class ExtractInputs:
    """EXTRACT of :class:`~.emitter.DuckDbEmitter` (a mixin of it)."""

    source: str
    out: list[EmittedStatement]
    err: Callable[[n.Pos, str, str], UsqlError]
    extract_columns: Callable[[n.Extract], list[tuple[str, UType]]]
    _note: Callable[[n.Pos, str], None]
    constants: dict[str, object]
    copy_root: Path | None
    path: Callable[..., Path]
    _check_virtual_columns: Callable[[FileSet, dict[str, UType], n.Extract], None]
    x: Translator

    def extract(self, e: n.Extract) -> tuple[str, list[tuple[str, UType]]]:
        return self.extract_with_properties(e, {})

    def extract_with_properties(self, e: n.Extract, props: Mapping[str, str]) -> tuple[str, list[tuple[str, UType]]]:
        """SQL and columns of an EXTRACT; ``props`` maps file-property columns to their property (``URI`` ...)."""
        for hint in e.hints:
            self._note(e.pos, f"{hint} ignored (an optimizer hint; it does not change the result)")
        is_parquet = e.extractor.name == "Parquet"
        if is_parquet:
            parquet.parquet_format(e.extractor, self.source, self.constants)  # checks that there are no options
        fmt = TextFormat("Parquet") if is_parquet else text_format(e.extractor, self.source, self.constants)
        paths = [self.path(p, "EXTRACT", allow_file_set=True) for p in e.paths]
        file_set: FileSet | None = None
        for p, pe in zip(paths, e.paths, strict=False):
            if is_file_set(str(p)):
                if len(paths) > 1:
                    raise self.err(pe.pos, "file set", "a file set pattern must be the only path of its EXTRACT")
                try:
                    file_set = parse_file_set(str(p), repeated_parts=True)
                except FileSetError as ex:
                    raise self.err(pe.pos, "file set", str(ex)) from None
            elif not p.exists():
                raise self.err(pe.pos, "EXTRACT", f"input file {str(p)!r} does not exist{_root_hint(p)}")
        # checked on the original files: UTF-8 copies (below) are made at run time
        empty_set = file_set is not None and next(glob.iglob(file_set.glob), None) is None
        if is_parquet:
            return self._extract_parquet(e, props, paths, file_set, empty_set)
        if fmt.encoding not in DUCKDB_ENCODINGS and not empty_set:
            if props:  # the run reads copies: their properties are not the input's
                raise self.err(e.pos, "FILE.property()", f"file-property columns need an input encoding DuckDB "
                               f"reads directly, not {fmt.encoding}")  # fmt: skip
            paths, file_set = self._utf8_copies(paths, file_set, fmt.encoding, e.pos)
            fmt = replace(fmt, encoding="utf-8")
        cols = self.extract_columns(e)
        virtual = self._virtual_columns(file_set, dict(cols), e) if file_set is not None else {}
        virtual.update({c: f"usql_fp.usql_fp_{prop.lower()}" for c, prop in props.items()})
        files_join = self._file_properties_join(paths, file_set) if props and not empty_set else ""
        read_cols = [(c, ty) for c, ty in cols if c not in virtual]
        if not read_cols:
            raise self.err(e.pos, "EXTRACT", "EXTRACT needs at least one column read from the file(s)")
        options = [
            "columns={" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c, _ in read_cols) + "}",
            "auto_detect=false",
            "header=false",
            f"delim={lit(fmt.delimiter)}",
            "quote='\"', escape='\"'" if fmt.quoting else "quote='', escape=''",
            "allow_quoted_nulls=false",
            "strict_mode=true",
            f"skip={fmt.skip_first_n_rows}",
            f"encoding={lit(fmt.encoding)}",
        ]
        if fmt.silent:
            options.append("ignore_errors=true")
        if fmt.null_escape is not None:
            options.append(f"nullstr={lit(fmt.null_escape)}")
        if fmt.row_delimiter is not None:
            options.append("new_line=" + lit(fmt.row_delimiter.replace("\r", "\\r").replace("\n", "\\n")))
        helper_names = _helper_names([c for c, _ in cols])
        helpers: list[str] = []
        exprs: list[str] = []
        for c, ty in cols:
            if c in virtual:
                exprs.append(virtual[c])
                continue
            expr, helper = self._extract_field(q(c), c, ty, fmt, q(helper_names[c]))
            exprs.append(self.x.extracted_column(expr, q(c), ty))
            if helper is not None:
                helpers.append(f"{helper} AS {q(helper_names[c])}")
        select = ",\n  ".join(f"{x} AS {q(c)}" for x, (c, _) in zip(exprs, cols, strict=True))
        extra = "".join(", " + h for h in helpers)
        if file_set is None:
            files = "[" + ", ".join(lit(str(p)) for p in paths) + "]"
            reader = f"read_csv({files}, {', '.join(options)}{', filename=' + lit('usql_file') if props else ''})"
            if helpers:
                # the fast paths (TRY_CAST of the raw text) as columns under the conversions: once per field
                reader = f"(SELECT *{extra}\nFROM {reader}) AS usql_src"
            return f"SELECT\n  {select}\nFROM {reader}{files_join}", cols
        if empty_set:
            # An empty file set is an empty rowset (DuckDB's read_csv would fail on a glob that matches nothing).
            empty = ", ".join(f"CAST(NULL AS {self.x.column_type_sql(ty)}) AS {q(c)}" for c, ty in cols)
            return f"SELECT {empty}\nWHERE FALSE", cols
        # Virtual columns and the file conditions are expressions of usql_file alone, which DuckDB can turn into
        # file filters: a later WHERE on virtual columns and constants skips the files it excludes unread.
        match = " AND ".join(
            [f"regexp_full_match(usql_file, {lit(file_set.regex)})", *self._file_checks(file_set, dict(cols))]
        )
        src = (
            f"(SELECT *{extra}\nFROM read_csv({lit(file_set.glob)}, {', '.join(options)}, filename='usql_file')\n"
            f"WHERE {match}) AS usql_fs"
        )
        return f"SELECT\n  {select}\nFROM {src}{files_join}", cols

    def _extract_parquet(
        self, e: n.Extract, props: Mapping[str, str], paths: list[Path], file_set: FileSet | None, empty_set: bool
    ) -> tuple[str, list[tuple[str, UType]]]:
        """``Extractors.Parquet()``: ``read_parquet`` with each column converted to its declared type. The file's
        schema (of a file set: its first file) is read at compile time, as EXTRACT's inputs must exist then: a
        missing column or a type the reference's table does not map to the declared one is a compile-time error."""
        cols = self.extract_columns(e)
        construct = "Extractors.Parquet"
        for (name, ty), (_, tr, _) in zip(cols, e.columns, strict=True):
            fix = parquet.unsupported_type(ty)
            if fix is not None:
                raise self.err(tr.pos, construct, f"column {name!r}: {ty} cannot be extracted from Parquet (the "
                               f"reference: not supported); extract a {fix} and convert it")  # fmt: skip
        virtual = self._virtual_columns(file_set, dict(cols), e) if file_set is not None else {}
        virtual.update({c: f"usql_fp.usql_fp_{prop.lower()}" for c, prop in props.items()})
        read_cols = [(c, ty) for c, ty in cols if c not in virtual]
        if not read_cols:
            raise self.err(e.pos, "EXTRACT", "EXTRACT needs at least one column read from the file(s)")
        if empty_set:
            empty = ", ".join(f"CAST(NULL AS {self.x.column_type_sql(ty)}) AS {q(c)}" for c, ty in cols)
            return f"SELECT {empty}\nWHERE FALSE", cols
        files = sorted(glob.glob(file_set.glob)) if file_set is not None else [str(p) for p in paths]
        if file_set is not None:  # the first file in the set (DuckDB reads the schema of the first file of a glob)
            files = [f for f in files if re.fullmatch(file_set.regex, f)] or files
        try:
            schema = parquet.file_schema(files[0])
        except OSError as ex:
            raise self.err(e.paths[0].pos, construct, f"cannot read {files[0]!r} as Parquet: {ex}") from None
        exprs = {}
        for (name, ty), (_, tr, pos) in zip(cols, e.columns, strict=True):
            if name in virtual:
                exprs[name] = virtual[name]
                continue
            if name not in schema:
                raise self.err(pos, construct, f"column {name!r} is not in the Parquet file {files[0]!r} (its "
                               f"columns: {', '.join(schema)})")  # fmt: skip
            v = parquet.extract_value(q(name), schema[name], ty)
            if v is None:
                raise self.err(tr.pos, construct, f"column {name!r} is {schema[name]} in {files[0]!r}, which "
                               f"does not extract into {ty} (see the Parquet type table in docs/usql.md)")  # fmt: skip
            if not ty.nullable:  # the reference fails on a nullable Parquet column; DuckDB marks most columns so
                message = lit(f"Extractors.Parquet: column {name!r} holds a null, but {ty} is not nullable")
                v = f"CASE WHEN {q(name)} IS NULL THEN error({message}) ELSE {v} END"
            # no scale: the reader divides a decimal's unscaled integer by 10^scale, and .NET's decimal division
            # keeps only the digits the quotient needs (345.67800000 reads as 345.678)
            exprs[name] = self.x.column_sql(v, ty)
        select = ",\n  ".join(f"{exprs[c]} AS {q(c)}" for c, _ in cols)
        use_file = file_set is not None or bool(props)
        listing = lit(file_set.glob) if file_set is not None else "[" + ", ".join(lit(str(p)) for p in paths) + "]"
        reader = f"read_parquet({listing}{', filename=' + lit('usql_file') if use_file else ''})"
        if file_set is not None:
            match = " AND ".join(
                [f"regexp_full_match(usql_file, {lit(file_set.regex)})", *self._file_checks(file_set, dict(cols))]
            )
            reader = f"(SELECT * FROM {reader}\nWHERE {match}) AS usql_fs"
        files_join = self._file_properties_join(paths, file_set) if props else ""
        return f"SELECT\n  {select}\nFROM {reader}{files_join}", cols

    @staticmethod
    def _file_properties_join(paths: list[Path], file_set: FileSet | None) -> str:
        """A join of the rows' ``usql_file`` to the properties of the input files, read at compile time (as U-SQL's
        FILE functions are): URI (the ``file://`` URI of the local path), MODIFIED and CREATED (the file's mtime and
        ctime as UTC DateTimes) and LENGTH (bytes)."""
        files = sorted(glob.glob(file_set.glob)) if file_set is not None else [str(p) for p in paths]
        rows = []
        for f in dict.fromkeys(files):
            st = os.stat(f)
            stamps = [datetime.fromtimestamp(x, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
                      for x in (st.st_mtime, st.st_ctime)]  # fmt: skip
            uri = Path(f).absolute().as_uri()
            rows.append(f"({lit(f)}, {lit(uri)}, TIMESTAMP {lit(stamps[0])}, TIMESTAMP {lit(stamps[1])}, "
                        f"CAST({st.st_size} AS BIGINT))")  # fmt: skip
        values = ", ".join(rows)
        names = "usql_fp_path, usql_fp_uri, usql_fp_modified, usql_fp_created, usql_fp_length"
        return f"\nJOIN (VALUES {values}) AS usql_fp({names}) ON usql_fp.usql_fp_path = usql_file"

    def _utf8_copies(
        self, paths: list[Path], file_set: FileSet | None, codec: str, pos: n.Pos
    ) -> tuple[list[Path], FileSet | None]:
        """Inputs in an encoding DuckDB cannot read are read from UTF-8 copies, which the runner makes right before
        the statement (an ``input`` statement each, see :class:`InputCopy`). Returns the copies' paths and file set
        (the original pattern under the copies' folder, so the virtual columns come out the same)."""
        if self.copy_root is None:
            self.copy_root = Path(tempfile.gettempdir()) / f"usql-input-{uuid.uuid4().hex[:12]}"
        copies: list[Path] = []
        for p in paths:
            folder = self.copy_root / str(sum(st.kind == "input" for st in self.out) + 1)
            source, regex = (file_set.glob, file_set.regex) if file_set else (str(p), None)
            copy = InputCopy(source, codec, folder, self.copy_root, regex)
            copies.append(folder / p.relative_to(p.anchor))
            note = f"-- input: {p} is {codec}; the run reads a UTF-8 copy made in {folder}"
            self.out.append(EmittedStatement("input", note, pos.line, pos.column, input_copy=copy))
        return copies, (parse_file_set(str(copies[0]), repeated_parts=True) if file_set else None)

    @staticmethod
    def _file_group(fs: FileSet, group: int) -> str:
        """The text of a pattern's capture group in the file name."""
        return f"regexp_extract(usql_file, {lit(fs.regex)}, {group})"

    def _file_checks(self, fs: FileSet, types: dict[str, UType]) -> list[str]:
        """Conditions on the file name beyond the pattern: repeated date parts agree, date parts form a date
        (else the file is not in the set), ``{name}`` texts convert to their columns' types (else an error)."""
        checks = [
            f"TRY_CAST({self._file_group(fs, a.group)} AS INTEGER) = TRY_CAST({self._file_group(fs, b.group)} AS "
            "INTEGER)"
            for a, b in fs.repeated_parts
        ]
        for name, holders in fs.columns.items():
            ty = types[name]
            if any(h.part is not None for h in holders):
                checks.append(f"{self._date_from_parts(fs, holders)} IS NOT NULL")
            elif ty.name not in ("string", "char"):
                raw = self._file_group(fs, holders[0].group)
                bad = f"{self._virtual_value(raw, ty)} IS NULL" + ("" if not ty.nullable else f" AND trim({raw}) <> ''")
                message = lit(f"conversion error: a file name part of {{{name}}} is not a valid {ty}")
                checks.append(f"CASE WHEN {bad} THEN error({message}) ELSE true END")
        return checks

    def _date_from_parts(self, fs: FileSet, holders: list[Placeholder]) -> str:
        """The DateTime of a column's date parts (missing parts: month/day 1, time 0); NULL if no valid date.

        ``try_strptime`` of the parts' text rather than ``make_timestamp``, which DuckDB does not turn into
        a file filter (and which raises on 2024/02/30)."""
        slots = ["'1'", "'1'", "'1'", "'0'", "'0'", "'0'"]
        for h in reversed(holders):  # the first of repeated parts wins (they agree)
            if h.part is not None:
                slots[DATE_PARTS[h.part][1]] = self._file_group(fs, h.group)
        y, mo, d, hh, mi, ss = slots
        text = f"{y} || '-' || {mo} || '-' || {d} || ' ' || {hh} || ':' || {mi} || ':' || {ss}"
        return f"try_strptime({text}, '%Y-%m-%d %H:%M:%S')"

    def _virtual_columns(self, fs: FileSet, types: dict[str, UType], e: n.Extract) -> dict[str, str]:
        """SQL of each virtual column bound by the file set pattern, from the capture groups in ``usql_file``."""
        self._check_virtual_columns(fs, types, e)
        out: dict[str, str] = {}
        for name, holders in fs.columns.items():
            if any(h.part is not None for h in holders):
                out[name] = self._date_from_parts(fs, holders)
                continue
            raw = self._file_group(fs, holders[0].group)
            out[name] = self.x.extracted_column(self._virtual_value(raw, types[name]), raw, types[name])
        return out

    @staticmethod
    def _virtual_value(raw: str, ty: UType) -> str:
        """The text of a ``{name}`` placeholder as the column's type, NULL if it does not convert.

        Never raises (the check in :meth:`_file_checks` does), so DuckDB can use it in file filters."""
        if ty.name in ("string", "char"):
            return raw
        if ty.name == "DateTime":
            formats = "['%m/%d/%Y %I:%M:%S %p', '%m/%d/%Y %H:%M:%S', '%m/%d/%Y']"
            return f"coalesce(TRY_CAST(trim({raw}) AS TIMESTAMP), try_strptime(trim({raw}), {formats}))"
        if ty.is_integral:
            # int.Parse's format without a CASE (a CASE keeps DuckDB from using the expression as a file filter)
            digits = f"nullif(regexp_extract({raw}, {_INTEGER_GROUP}, 1), '')"
            return f"TRY_CAST({digits} AS {ty.duckdb()})"
        return parse_string_as(raw, ty.name, try_=True)

    @staticmethod
    def _extract_field(v: str, name: str, ty: UType, fmt: TextFormat, helper: str) -> tuple[str, str | None]:
        """Text field -> typed value with the built-in extractors' rules (C# Parse; empty -> null if nullable).

        Returns the conversion and the SQL of a helper column (named ``helper``, computed below the conversion,
        so once per field) that it reads, or None. The helper is the fast path, ``TRY_CAST`` of the raw text:
        most fields are canonical (an ISO DateTime, a number; an integer that prints back as the same text), so
        only the other fields take the slow path (trims, empty-value checks, C#'s integer format, the en-US
        DateTime formats). The result is what the slow path alone gives: a raw text that casts also casts
        trimmed, to the same value.
        """
        if ty.name == "string":
            return v, None
        try_ = fmt.silent and ty.nullable
        cast = "TRY_CAST" if try_ else "CAST"
        checked = v
        if ty.nullable and fmt.null_escape is None and not try_:
            # only a quoted "" reads as '' here (an unquoted empty field is NULL): the reference's nullEscape table
            # makes it a conversion error for nullable non-string types ("a zero-length string with quotes will be
            # a zero-length string"); with a nullEscape DuckDB reads both as '' (see docs/usql.md)
            checked = f"usql_not_quoted_empty({v}, {lit(name)})"
        src = f"NULLIF(trim({checked}), '')" if ty.nullable else f"usql_required({v}, {lit(name)})"
        if ty.name == "char":
            if fmt.char_format == "string":
                return (checked if ty.nullable else f"usql_required({v}, {lit(name)})"), None
            return f"chr({cast}(trim({src}) AS INTEGER))", None
        if ty.name == "byte[]":
            return f"unhex({src})", None
        duck = ty.duckdb()
        fast = f"TRY_CAST({v} AS {duck})"
        if ty.is_integral:
            # C#'s int.Parse takes only [ws][sign]digits[ws]; DuckDB's cast alone would round "2.5", read "1e3"
            if try_:
                slow = f"TRY_CAST(CASE WHEN regexp_full_match({v}, {STRICT_INTEGER}) THEN {v} END AS {duck})"
            else:
                slow = f"CAST(usql_int_text({src}, {lit(f'{ty.name} (column {name})')}) AS {duck})"
            return f"CASE WHEN CAST({helper} AS VARCHAR) = {v} THEN {helper} ELSE {slow} END", fast
        if ty.name == "DateTime":
            if try_:
                slow = (
                    f"coalesce(TRY_CAST(trim({src}) AS TIMESTAMP), try_strptime(trim({src}), '%m/%d/%Y %I:%M:%S %p'))"
                )
            else:
                slow = f"usql_parse_datetime({src})"
        else:
            slow = f"{cast}(trim({src}) AS {duck})"
        # a CASE, not coalesce(): DuckDB's common-subexpression pass would hoist the slow path's trim()s out
        # of a coalesce() and run them on every row; it leaves CASE branches alone
        return f"CASE WHEN {helper} IS NOT NULL THEN {helper} ELSE {slow} END", fast


def _root_hint(p: Path) -> str:
    """For a missing ``/Samples/...``-style input: how to run a script written for ADLA, whose ``/`` is the
    account's Data Lake Store root (Data Lake Tools' local runs used a "DataRoot" folder for it)."""
    if not p.is_absolute() or len(p.parts) < 2 or Path(p.anchor, p.parts[1]).exists():
        return ""
    return (
        " (a script written for ADLA means its Data Lake Store's root by '/':"
        " map it to a local folder with --map-path /=DIR)"
    )


def _helper_names(columns: list[str]) -> dict[str, str]:
    """A helper column name per column, ``usql_h<i>``, distinct from every column name."""
    prefix = "usql_h"
    while any(c.startswith(prefix) for c in columns):
        prefix += "_"
    return {c: f"{prefix}{i}" for i, c in enumerate(columns)}
