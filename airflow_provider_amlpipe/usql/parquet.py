"""``Extractors.Parquet()`` / ``Outputters.Parquet(...)``: options, type mappings and the file schema (dialect-neutral
parts; the SQL is DuckDB's). After the U-SQL Winter 2017/18 release notes ("Built-in Parquet Extractor and Outputter",
a preview enabled by ``SET @@FeaturePreviews = "EnableParquetUdos:on";``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import duckdb

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.consts import NotConstant, fold
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.types import UType

#: The codecs ``columnOptions`` may name (``~codec``); DuckDB's COMPRESSION names are the same.
CODECS = ("uncompressed", "snappy", "brotli", "gzip")
#: ``columnOptions`` DateTime precisions -> the DuckDB type written (days: Parquet DATE; values are truncated).
DATETIME_UNITS = {"micro": "TIMESTAMP", "milli": "TIMESTAMP_MS", "days": "DATE"}
#: The documented defaults: decimals are written as DECIMAL(28, 8) (the 2018 preview wrote scale 0, which the
#: notes call temporary), row groups hold at most 256 MB / 10485760 rows.
DEFAULT_PRECISION, DEFAULT_SCALE = 28, 8
DEFAULT_ROW_GROUP_MB, DEFAULT_ROW_GROUP_ROWS = 256, 10485760
#: DuckDB's vector size: its writer rounds row groups up to a multiple of it.
_DUCKDB_VECTOR = 2048
_OPTION = re.compile(r"(\d+)(?::(\d+|micro|milli|days))?(?:\.(\d+))?(?:~([A-Za-z0-9]+))?")
#: DuckDB's type of a Parquet column -> the U-SQL types it extracts into (the notes' table; Parquet ``INT32/DATE``,
#: ``TIMESTAMP_*`` and ``INT96`` are all DateTime; any BYTE_ARRAY is a string or a byte[]).
_READABLE = {
    "BOOLEAN": ("bool",), "TINYINT": ("sbyte",), "UTINYINT": ("byte",), "SMALLINT": ("short",),
    "USMALLINT": ("ushort",), "INTEGER": ("int",), "UINTEGER": ("uint",), "BIGINT": ("long",),
    "UBIGINT": ("ulong",), "FLOAT": ("float",), "DOUBLE": ("double",), "DATE": ("DateTime",),
    "TIMESTAMP": ("DateTime",), "TIMESTAMP_MS": ("DateTime",), "TIMESTAMP_NS": ("DateTime",),
    "TIMESTAMP_S": ("DateTime",), "TIMESTAMP WITH TIME ZONE": ("DateTime",), "VARCHAR": ("string", "byte[]"),
    "BLOB": ("string", "byte[]"), "JSON": ("string", "byte[]"),
}  # fmt: skip
#: U-SQL types the Parquet UDOs do not support (the notes' Limitations), with the fix.
_UNSUPPORTED = {"char": "string", "Guid": "string", "SqlArray": "byte[] or string", "SqlMap": "byte[] or string"}


@dataclass(frozen=True)
class ColumnOption:
    """One ``columnOptions`` item: ``index[:precision|:unit][.scale][~codec]``."""

    index: int
    precision: int | None = None
    scale: int | None = None
    unit: str | None = None  # DateTime precision: micro, milli, days
    codec: str | None = None


@dataclass(frozen=True)
class ParquetFormat:
    """The options of ``Outputters.Parquet(...)``."""

    row_group_mb: int = DEFAULT_ROW_GROUP_MB
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS
    columns: Mapping[int, ColumnOption] = field(default_factory=dict)

    def codec(self, ncols: int) -> tuple[str, list[str]]:
        """The one codec of the file (DuckDB compresses all columns of a file alike) and notes on what differs
        from the options: the first codec other than ``uncompressed`` the options name, else ``uncompressed``.
        Compression changes the file's size, never the values read back."""
        named = [c.codec for c in self.columns.values() if c.codec is not None]
        chosen = next((c for c in named if c != "uncompressed"), "uncompressed")
        notes = []
        if any(c != chosen for c in named) or (chosen != "uncompressed" and len(named) < ncols):
            notes.append(f"columnOptions names per-column codecs ({', '.join(dict.fromkeys(named))}); DuckDB writes "
                         f"one codec per file, so every column is {chosen}")  # fmt: skip
        return chosen, notes

    def duckdb_row_group_rows(self) -> tuple[int, list[str]]:
        """DuckDB's ROW_GROUP_SIZE for ``rowGroupRows`` (a maximum in U-SQL): the largest multiple of DuckDB's
        vector size not above it, as DuckDB rounds row groups up to one; at least one vector."""
        rows = max(_DUCKDB_VECTOR, self.row_group_rows // _DUCKDB_VECTOR * _DUCKDB_VECTOR)
        notes = []
        if self.row_group_rows < _DUCKDB_VECTOR:
            notes.append(f"rowGroupRows {self.row_group_rows}: DuckDB writes row groups of {_DUCKDB_VECTOR} rows "
                         "or more")  # fmt: skip
        if self.row_group_mb != DEFAULT_ROW_GROUP_MB:
            notes.append(f"rowGroupSize {self.row_group_mb} MB is not enforced locally (row groups are cut by rows)")
        return rows, notes


def parquet_format(udo: n.Udo, source: str, constants: Mapping[str, object]) -> ParquetFormat:
    """Evaluate and check the options of ``Extractors.Parquet()`` (none) or ``Outputters.Parquet(...)``."""
    construct = f"{udo.family}.Parquet"
    values: dict[str, object] = {}
    for name, expr, pos in udo.options:

        def err(msg: str, pos: n.Pos = pos) -> UsqlError:
            return UsqlError(source, pos.line, pos.column, construct, msg)

        if udo.family == "Extractors":
            raise err("Extractors.Parquet() takes no parameters (it reads the types from the file)")
        if name not in ("rowGroupSize", "rowGroupRows", "columnOptions"):
            raise err(f"unknown parameter {name!r} (supported: columnOptions, rowGroupRows, rowGroupSize)")
        try:
            v = fold(expr, constants)
        except NotConstant:
            raise err(f"parameter {name!r} must be a constant") from None
        if name == "columnOptions":
            values["columns"] = _column_options(v, err)
        else:
            low, high = (1, 1024) if name == "rowGroupSize" else (1, 100_000_000)
            if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
                raise err(f"{name} must be an int in [{low}..{high}], not {v!r}")
            values["row_group_mb" if name == "rowGroupSize" else "row_group_rows"] = v
    return ParquetFormat(**values)  # type: ignore[arg-type]


def _column_options(v: object, err: Callable[[str], UsqlError]) -> dict[int, ColumnOption]:
    if v is None:
        return {}
    if not isinstance(v, str):
        raise err(f'columnOptions must be a string such as "1.8,2~snappy", not {v!r}')
    out: dict[int, ColumnOption] = {}
    for item in (x.strip() for x in v.split(",")):
        m = _OPTION.fullmatch(item)
        if m is None:
            raise err(f"columnOptions item {item!r} is not index[:precision|:micro|:milli|:days][.scale][~codec]")
        index, prec_or_unit, scale, codec = m.groups()
        unit = prec_or_unit if prec_or_unit in DATETIME_UNITS else None
        precision = int(prec_or_unit) if prec_or_unit is not None and unit is None else None
        if precision is not None and not 1 <= precision <= 28:
            raise err(f"columnOptions {item!r}: the decimal precision must be in [1..28]")
        if unit is not None and scale is not None:
            raise err(f"columnOptions {item!r}: a DateTime precision takes no decimal scale")
        if scale is not None and int(scale) > (precision or DEFAULT_PRECISION):
            raise err(f"columnOptions {item!r}: the decimal scale must not exceed the precision")
        if codec is not None and codec.lower() not in CODECS:
            raise err(f"columnOptions {item!r}: unknown compression {codec!r} (supported: {', '.join(CODECS)})")
        if int(index) in out:
            raise err(f"columnOptions names column {index} twice")
        out[int(index)] = ColumnOption(int(index), precision, None if scale is None else int(scale), unit,
                                       None if codec is None else codec.lower())  # fmt: skip
    return out


def unsupported_type(ty: UType) -> str | None:
    """What to convert a column of type ``ty`` to, if the Parquet UDOs do not support the type, else None."""
    return _UNSUPPORTED.get(ty.name)


def output_value(col: str, ty: UType, opt: ColumnOption | None) -> str:
    """The SQL of a column as written to Parquet: decimals as DECIMAL(precision, scale) (rounded), DateTime as a
    timestamp (µs or ms) or a date (truncated), the other types as they are (DuckDB writes U-SQL's Parquet types).
    ValueError names an option that does not apply to the type."""
    opt = opt or ColumnOption(0)
    if ty.name != "decimal" and (opt.precision is not None or opt.scale is not None):
        raise ValueError(f"a decimal precision/scale does not apply to a column of type {ty}")
    if ty.name != "DateTime" and opt.unit is not None:
        raise ValueError(f"the DateTime precision {opt.unit!r} does not apply to a column of type {ty}")
    if ty.name == "decimal":
        precision = opt.precision or DEFAULT_PRECISION
        scale = opt.scale if opt.scale is not None else min(DEFAULT_SCALE, precision)
        return f"CAST(struct_extract({col}, 'v') AS DECIMAL({precision},{scale}))"
    if ty.name == "DateTime":
        return f"CAST({col} AS {DATETIME_UNITS[opt.unit or 'micro']})"
    return col


def file_schema(path: str) -> dict[str, str]:
    """Column name -> DuckDB type of a Parquet file; OSError if DuckDB cannot read it as Parquet."""
    con = duckdb.connect()
    try:
        rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()
    except duckdb.Error as ex:
        raise OSError(str(ex).splitlines()[0]) from None
    finally:
        con.close()
    return {str(r[0]): str(r[1]) for r in rows}


def extract_value(col: str, parquet_type: str, ty: UType) -> str | None:
    """The SQL converting a Parquet column DuckDB reads as ``parquet_type`` to U-SQL type ``ty``, or None if the
    notes' type table does not allow it. Any BYTE_ARRAY reads as a string (invalid UTF-8: a runtime error) or byte[]."""
    if parquet_type.startswith("DECIMAL("):
        allowed: tuple[str, ...] = ("decimal",)
    else:
        allowed = _READABLE.get(parquet_type, ())
    if ty.name not in allowed:
        return None
    if ty.name == "string":
        return f"decode({col})" if parquet_type == "BLOB" else f"CAST({col} AS VARCHAR)"
    if ty.name == "byte[]":
        return col if parquet_type == "BLOB" else f"encode(CAST({col} AS VARCHAR))"
    if parquet_type == "TIMESTAMP WITH TIME ZONE":  # instants: their UTC time (a cast would use the session's zone)
        return f"timezone('UTC', {col})"
    return f"CAST({col} AS {ty.duckdb()})"
