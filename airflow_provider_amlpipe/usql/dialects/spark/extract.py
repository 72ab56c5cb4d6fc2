"""EXTRACT of :class:`~.emitter.SparkEmitter` (a mixin of it): a raw ``USING csv`` view with every field read as
text, then a typed view converting the fields with C# parsing rules; a file set is a glob, its virtual columns come
from each row's file path with the pattern's regex."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_amlpipe.usql import filesets
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.dialects.spark.values import (
    _WS,
    bq,
    slit,
    strict_parse,
    try_parse,
)
from airflow_provider_amlpipe.usql.emitter import Emitter
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.options import TextFormat, text_format
from airflow_provider_amlpipe.usql.types import UType


class SparkExtract(Emitter):
    """EXTRACT and file sets of :class:`~.emitter.SparkEmitter`."""

    raw_counter: int
    add: Callable[[str, n.Pos], None]
    untranslatable: Callable[[n.Pos, str, str], UsqlError]
    spark_path: Callable[..., str]

    def extract(self, e: n.Extract) -> tuple[str, list[tuple[str, UType]]]:
        fmt = text_format(e.extractor, self.source, self.constants)
        paths = [self.spark_path(p, "EXTRACT", allow_file_set=True) for p in e.paths]
        file_set = self._file_set(paths, e)
        cols = self.extract_columns(e)
        fs_cols = _helper_prefix("usql_fs", [c for c, _ in cols])  # the file path and the regex groups
        virtual = self._spark_virtual_columns(file_set, fs_cols, dict(cols), e) if file_set else {}
        read_cols = [(c, ty) for c, ty in cols if c not in virtual]
        if not read_cols:
            raise self.err(e.pos, "EXTRACT", "EXTRACT needs at least one column read from the file(s)")
        options = self._csv_options(fmt, e)
        schema = ", ".join(f"{bq(c)} STRING" for c, _ in read_cols)
        raws = []
        for path in [file_set.glob] if file_set else paths:
            self.raw_counter += 1
            raw = f"usql_raw_{self.raw_counter}"
            raws.append(raw)
            opts = ", ".join([f"path {slit(path)}", *options])
            self.add(f"CREATE OR REPLACE TEMPORARY VIEW {bq(raw)} ({schema})\nUSING csv OPTIONS ({opts});", e.pos)
        fields = ", ".join(f"CASE WHEN {bq(c)} = '{_EMPTY}' THEN '' ELSE {bq(c)} END AS {bq(c)}" for c, _ in read_cols)
        src = "\nUNION ALL\n".join(f"SELECT {fields} FROM {bq(r)}" for r in raws)
        where = ""
        if file_set:
            with_path = f"SELECT {fields}, {_FILE_PATH} AS {bq(fs_cols + '_path')} FROM {bq(raws[0])}"
            src = self._spark_file_groups(file_set, fs_cols, with_path)
            where = "\nWHERE " + self._file_condition(file_set, fs_cols, dict(cols))
        exprs = [virtual.get(c) or self.x.extracted_column(self._convert_field(bq(c), c, ty, fmt), bq(c), ty)
                 for c, ty in cols]  # fmt: skip
        select = ",\n  ".join(f"{x} AS {bq(c)}" for x, (c, _) in zip(exprs, cols, strict=True))
        return f"SELECT\n  {select}\nFROM (\n{src}\n) AS usql_fields{where}", cols

    def _csv_options(self, fmt: TextFormat, e: n.Extract) -> list[str]:
        """The csv data source's OPTIONS (but the path) for an extractor."""
        if fmt.skip_first_n_rows > 1:
            raise self.untranslatable(e.extractor.pos, "skipFirstNRows",
                                      "Spark's csv reader can skip one header line per file, not more")  # fmt: skip
        if fmt.encoding != "utf-8":
            raise self.untranslatable(e.extractor.pos, "encoding", "only UTF-8/ASCII input is translated")
        options = [
            "header " + ("'true'" if fmt.skip_first_n_rows == 1 else "'false'"),
            f"sep {slit(fmt.delimiter)}",
            "quote '\"', escape '\"'" if fmt.quoting else "quote '', escape ''",
            f"nullValue {slit(fmt.null_escape or '')}",
            f"emptyValue '{_EMPTY}'",
            "mode " + ("'DROPMALFORMED'" if fmt.silent else "'FAILFAST'"),
            "multiLine 'true'",
            "ignoreLeadingWhiteSpace 'false'",
            "ignoreTrailingWhiteSpace 'false'",
            "encoding 'UTF-8'",
        ]
        if fmt.row_delimiter in ("\n", "\r"):
            options.append(f"lineSep {slit(fmt.row_delimiter)}")
        return options

    # ------------------------------------------------------------ file sets
    def _file_set(self, paths: list[str], e: n.Extract) -> _SparkFileSet | None:
        """The EXTRACT's file set, or None if it reads plain files."""
        file_set = None
        for path, pe in zip(paths, e.paths, strict=True):
            if not filesets.is_file_set(path):
                continue
            if len(paths) > 1:
                raise self.err(pe.pos, "file set", "a file set pattern must be the only path of its EXTRACT")
            file_set = self._spark_file_set(path, pe.pos)
        return file_set

    def _spark_file_set(self, pattern: str, pos: n.Pos) -> _SparkFileSet:
        """Parse a pattern; its regex matches the (decoded) end of a file's URI from the first placeholder's segment.

        The glob already fixes the segments before that one, and a placeholder never spans a ``/``, so matching
        the end selects the same files as a full match of the whole path would, whatever Spark prefixes the path
        with (``file:``, ``abfss://container@account...``, the working directory of a relative path).
        """
        try:
            fs = filesets.parse_file_set(pattern, repeated_parts=True)
        except filesets.FileSetError as ex:
            raise self.err(pos, "file set", str(ex)) from None
        if "\\" in pattern:
            raise self.untranslatable(pos, "file set", "a '\\' (Spark's glob reads it as an escape character)")
        first = pattern.index("{")
        scheme = pattern.find("://")
        if scheme >= 0 and not 0 <= pattern.find("/", scheme + 3) < first:
            raise self.untranslatable(pos, "file set", "a placeholder in the scheme or host of a URI cannot be globbed")
        tail = pattern[pattern.rfind("/", 0, first) + 1 :]
        if any(seg in (".", "..") for seg in tail.split("/")):
            raise self.untranslatable(pos, "file set", "'.' or '..' after a placeholder (Spark reports resolved paths)")
        regex = "/" + filesets.parse_file_set(tail, repeated_parts=True).regex.removeprefix("^")
        return _SparkFileSet(fs.glob, regex, fs)

    @staticmethod
    def _spark_file_groups(fs: _SparkFileSet, prefix: str, rows: str) -> str:
        """``rows`` (with the file path ``<prefix>_path``) and each regex group i as ``<prefix>_g<i>``."""
        count = max((h.group for h in fs.parsed.placeholders), default=0)
        path = bq(prefix + "_path")
        groups = "".join(f", regexp_extract({path}, {slit(fs.regex)}, {i}) AS {bq(f'{prefix}_g{i}')}"
                         for i in range(1, count + 1))  # fmt: skip
        return f"SELECT *{groups} FROM (\n{rows}\n) AS usql_files"

    @staticmethod
    def _spark_group(prefix: str, group: int) -> str:
        return bq(f"{prefix}_g{group}")

    def _spark_date(self, prefix: str, holders: list[filesets.Placeholder]) -> str:
        """The DateTime of a column's date parts (missing: month/day 1, time 0); NULL if they form no date."""
        slots = ["'0001'", "'01'", "'01'", "'00'", "'00'", "'00'"]
        for h in reversed(holders):  # the first of repeated parts wins (the file condition makes them agree)
            if h.part is not None:
                slot = filesets.DATE_PARTS[h.part][1]
                group = self._spark_group(prefix, h.group)
                slots[slot] = group if slot == 0 else f"lpad({group}, 2, '0')"
        y, mo, d, hh, mi, ss = slots
        return f"try_cast(concat({y}, '-', {mo}, '-', {d}, ' ', {hh}, ':', {mi}, ':', {ss}) AS TIMESTAMP_NTZ)"

    def _spark_virtual_columns(
        self, fs: _SparkFileSet, prefix: str, types: dict[str, UType], e: n.Extract
    ) -> dict[str, str]:
        """Spark SQL of each virtual column, from the groups of the pattern's regex in the file's path."""
        self._check_virtual_columns(fs.parsed, types, e)
        out: dict[str, str] = {}
        for name, holders in fs.parsed.columns.items():
            if any(h.part is not None for h in holders):
                out[name] = self._spark_date(prefix, holders)
            else:
                raw = self._spark_group(prefix, holders[0].group)
                value = self._spark_virtual_value(raw, name, types[name], e)
                out[name] = self.x.extracted_column(value, raw, types[name])
        return out

    def _spark_virtual_value(self, raw: str, name: str, ty: UType, e: n.Extract) -> str:
        """The text a ``{name}`` placeholder matched as the column's type; NULL if it does not convert."""
        if ty.name in ("string", "char"):
            return raw
        if ty.name == "byte[]":
            raise self.untranslatable(e.paths[0].pos, "file set", f"the byte[] virtual column {name!r}")
        return try_parse(raw, ty.name)

    def _file_condition(self, fs: _SparkFileSet, prefix: str, types: dict[str, UType]) -> str:
        """Which rows' files are in the set, as on the DuckDB path: the path matches the pattern (the glob also
        finds, e.g., 2024/xx/ for {date:MM}), repeated date parts agree and the parts form a date; and a ``{name}``
        text that does not convert to its column's type fails the query. A CASE, so the checks run in order."""
        keep = [
            f"try_cast({self._spark_group(prefix, a.group)} AS INT) = "
            f"try_cast({self._spark_group(prefix, b.group)} AS INT)"
            for a, b in fs.parsed.repeated_parts
        ]
        checks = []
        for name, holders in fs.parsed.columns.items():
            ty = types[name]
            if any(h.part is not None for h in holders):
                keep.append(f"{self._spark_date(prefix, holders)} IS NOT NULL")
            elif ty.name not in ("string", "char"):
                raw = self._spark_group(prefix, holders[0].group)
                bad = f"{try_parse(raw, ty.name)} IS NULL" + (f" AND trim({raw}) <> ''" if ty.nullable else "")
                message = slit(f"conversion error: a file name part of {{{name}}} is not a valid {ty}")
                checks.append(f"CASE WHEN {bad} THEN raise_error({message}) ELSE TRUE END")
        cond = f"CASE WHEN NOT ({bq(prefix + '_path')} RLIKE {slit(fs.regex)}) THEN FALSE"
        if keep:
            cond += f"\n  WHEN NOT coalesce({' AND '.join(keep)}, FALSE) THEN FALSE"
        return cond + f"\n  ELSE {' AND '.join(checks) or 'TRUE'} END"

    @staticmethod
    def _convert_field(v: str, name: str, ty: UType, fmt: TextFormat) -> str:
        """Text field -> typed value with the built-in extractors' rules (C# Parse; empty -> null if nullable)."""
        if ty.name == "string":
            return v
        what = f"conversion error in column {name}"
        empty = f"({v} IS NULL OR trim(BOTH {_WS} FROM {v}) = '')"
        required = slit(f"conversion error: null or empty value for the non-nullable column {name}")
        if ty.name == "char" and fmt.char_format == "string":
            return v if ty.nullable else f"CASE WHEN {v} IS NULL THEN raise_error({required}) ELSE {v} END"
        target = "int" if ty.name == "char" else ty.name
        if ty.name == "byte[]":
            conv = f"coalesce(try_to_binary(trim({v}), 'hex'), raise_error(concat({slit(what + ': ')}, {v})))"
        elif fmt.silent and ty.nullable:
            conv = try_parse(v, target)
        else:
            conv = strict_parse(v, target, what)
        if ty.name == "char":
            conv = char_of_code(conv)
        if ty.nullable:
            return f"CASE WHEN {empty} THEN NULL ELSE {conv} END"
        return f"CASE WHEN {empty} THEN raise_error({required}) ELSE {conv} END"


#: What the csv reader returns for a quoted empty field (``""``), so that it stays an empty string: Spark
#: would otherwise read it as null, like an unquoted empty field (U-SQL: ``""`` is "", nothing is null).
#: U+FDD0 is a Unicode noncharacter, not expected in text data.
_EMPTY = "\\uFDD0"


#: The path of the file a row comes from: ``input_file_name()`` is a URI with the path percent-encoded
#: (``file:///d/a%20b.csv``); ``url_decode`` would read ``+`` as a space, so ``+`` is escaped first.
#: (``_metadata.file_path`` does not reach through the temporary view of the raw file.)
_FILE_PATH = "url_decode(replace(input_file_name(), '+', '%2B'))"


@dataclass(frozen=True)
class _SparkFileSet:
    """A file set pattern for Spark: the glob for the csv data source and the regex its files' paths must match."""

    glob: str
    regex: str  # matches the end of a decoded path; group i is the pattern's placeholder group i
    parsed: filesets.FileSet


def _helper_prefix(prefix: str, columns: list[str]) -> str:
    """``prefix`` with underscores appended until no column name starts with it (helper columns use it)."""
    while any(c.startswith(prefix) for c in columns):
        prefix += "_"
    return prefix


def char_of_code(code: str) -> str:
    """A UTF-16 code (0..65535) -> the one-character string, as C# ``(char)n``; other codes fail the query."""
    return (f"CASE WHEN {code} IS NULL THEN NULL WHEN {code} BETWEEN 0 AND 65535 THEN "
            f"decode(unhex(lpad(hex({code}), 4, '0')), 'UTF-16BE') ELSE raise_error("
            f"concat('not a char code: ', CAST({code} AS STRING))) END")  # fmt: skip
