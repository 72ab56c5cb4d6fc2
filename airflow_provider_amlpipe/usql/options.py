"""Built-in extractor/outputter options: names, defaults and checks (dialect-neutral)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.consts import Encoding, NotConstant, fold
from airflow_provider_amlpipe.usql.errors import UsqlError

_DELIMS = {"Csv": ",", "Tsv": "\t"}
_ENCODINGS = {"UTF8": "utf-8", "ASCII": "utf-8", "Unicode": "utf-16", "Default": None}


@dataclass(frozen=True)
class TextFormat:
    """Options of ``Extractors.X(...)`` or ``Outputters.X(...)`` with U-SQL's documented defaults."""

    kind: str
    delimiter: str = ","
    quoting: bool = True
    null_escape: str | None = None
    row_delimiter: str | None = None  # None: extractor accepts \r\n, \r, \n; outputter writes \r\n
    encoding: str = "utf-8"
    silent: bool = False
    skip_first_n_rows: int = 0
    output_header: bool = False
    date_time_format: str = "O"
    char_format: str = "uint16"


_EXTRACTOR_OPTS = {"delimiter", "quoting", "nullEscape", "rowDelimiter", "encoding", "silent", "skipFirstNRows",
                   "charFormat", "escapeCharacter"}  # fmt: skip
_OUTPUTTER_OPTS = {"delimiter", "quoting", "nullEscape", "rowDelimiter", "encoding", "outputHeader",
                   "dateTimeFormat", "charFormat", "escapeCharacter"}  # fmt: skip


def text_format(udo: n.Udo, source: str, constants: Mapping[str, object]) -> TextFormat:
    """Evaluate and check the options of a built-in UDO; errors name the option."""
    allowed = _EXTRACTOR_OPTS if udo.family == "Extractors" else _OUTPUTTER_OPTS
    construct = f"{udo.family}.{udo.name}"
    values: dict[str, object] = {"kind": udo.name, "delimiter": _DELIMS.get(udo.name, ",")}

    def err(pos: n.Pos, msg: str) -> UsqlError:
        return UsqlError(source, pos.line, pos.column, construct, msg)

    for name, expr, pos in udo.options:
        if name not in allowed:
            raise err(pos, f"unknown parameter {name!r} (supported: {', '.join(sorted(allowed))})")
        try:
            v = fold(expr, constants)
        except NotConstant:
            raise err(pos, f"parameter {name!r} must be a constant") from None
        if name == "delimiter":
            if udo.name != "Text":
                raise err(pos, f"{construct}() does not take a delimiter; use {udo.family}.Text(delimiter: ...)")
            if not isinstance(v, str) or len(v) != 1:
                raise err(pos, "delimiter must be a single char such as ','")
            values["delimiter"] = v
        elif name in ("quoting", "silent", "outputHeader"):
            if not isinstance(v, bool):
                raise err(pos, f"{name} must be true or false")
            values[{"quoting": "quoting", "silent": "silent", "outputHeader": "output_header"}[name]] = v
        elif name == "nullEscape":
            if v is not None and not isinstance(v, str):
                raise err(pos, "nullEscape must be a string")
            values["null_escape"] = v
        elif name == "rowDelimiter":
            if v is not None and (not isinstance(v, str) or v not in ("\n", "\r", "\r\n")):
                raise err(pos, 'rowDelimiter must be "\\r\\n", "\\r" or "\\n" locally')
            values["row_delimiter"] = v
        elif name == "encoding":
            if not isinstance(v, Encoding) or str(v) not in _ENCODINGS or _ENCODINGS[str(v)] is None:
                raise err(pos, f"encoding {v} is not supported locally (use Encoding.UTF8, Encoding.[ASCII] or "
                          "Encoding.Unicode)")  # fmt: skip
            if udo.family == "Outputters" and str(v) == "Unicode":
                raise err(pos, "outputters write UTF-8 only locally")
            values["encoding"] = _ENCODINGS[str(v)]
        elif name == "skipFirstNRows":
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise err(pos, "skipFirstNRows must be a non-negative int")
            values["skip_first_n_rows"] = v
        elif name == "dateTimeFormat":
            if not isinstance(v, str):
                raise err(pos, "dateTimeFormat must be a string")
            values["date_time_format"] = v
        elif name == "charFormat":
            if v not in (None, "uint16", "string"):
                raise err(pos, 'charFormat must be "uint16" or "string"')
            values["char_format"] = v or "uint16"
        elif name == "escapeCharacter" and v is not None:
            raise err(pos, "escapeCharacter is not supported locally")
    return TextFormat(**values)  # type: ignore[arg-type]
