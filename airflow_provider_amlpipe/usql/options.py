"""Built-in extractor/outputter options: names, defaults and checks (dialect-neutral)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.consts import Encoding, NotConstant, fold
from airflow_provider_amlpipe.usql.errors import UsqlError

_DELIMS = {"Csv": ",", "Tsv": "\t"}
#: Extractor encodings -> DuckDB's read_csv names (ASCII files are UTF-8 files), or the Python codec of the
#: ones DuckDB cannot read (see :data:`DUCKDB_ENCODINGS`: those files are re-encoded to UTF-8 before reading).
_EXTRACTOR_ENCODINGS = {"UTF8": "utf-8", "ASCII": "utf-8", "Unicode": "utf-16", "BigEndianUnicode": "utf-16-be",
                        "UTF32": "utf-32-le", "UTF7": "utf-7"}  # fmt: skip
#: The extractor encodings DuckDB's ``read_csv`` reads itself.
DUCKDB_ENCODINGS = frozenset({"utf-8", "utf-16"})
#: Outputter encodings -> Python codecs; the reference's list, written without a BOM (as documented).
_OUTPUTTER_ENCODINGS = {"UTF8": "utf-8", "ASCII": "ascii", "Unicode": "utf-16-le", "BigEndianUnicode": "utf-16-be",
                        "UTF32": "utf-32-le"}  # fmt: skip
#: Outputter codecs for which a character the encoding cannot represent is a runtime error. The reference (Outputter
#: Parameters, encoding): code pages write such a character as ``?``, while "a code point that is invalid for the
#: specified encoding" fails the output; for 7-bit ASCII every non-ASCII code point is invalid. (The UTF encodings
#: represent every character DuckDB's strings can hold.)
STRICT_OUTPUT_ENCODINGS = frozenset({"ascii"})
#: The code pages ``Encoding.GetEncoding(...)`` may name (the reference's list).
_CODE_PAGES = range(1250, 1259)


@dataclass(frozen=True)
class TextFormat:
    """Options of ``Extractors.X(...)`` or ``Outputters.X(...)`` with U-SQL's documented defaults."""

    kind: str
    delimiter: str = ","
    quoting: bool = True
    null_escape: str | None = None
    row_delimiter: str | None = None  # None: extractor accepts \r\n, \r, \n; outputter writes \r\n
    encoding: str = "utf-8"  # the Python codec; extractors: DuckDB's name for those in DUCKDB_ENCODINGS
    silent: bool = False
    skip_first_n_rows: int = 0
    output_header: bool = False
    date_time_format: str = "O"
    char_format: str = "uint16"
    escape_character: str | None = None  # outputters: written before itself and every delimiter char in values

    def escaped_chars(self) -> tuple[str, ...]:
        """What ``escapeCharacter`` is written before: itself, then the column and row delimiter characters."""
        if self.escape_character is None:
            return ()
        chars = [self.escape_character, self.delimiter, *(self.row_delimiter or "\r\n")]
        return tuple(dict.fromkeys(chars))

    def escape(self, text: str) -> str:
        """``text`` with ``escapeCharacter`` before each character of :meth:`escaped_chars`."""
        chars = self.escaped_chars()
        return "".join(f"{self.escape_character}{c}" if c in chars else c for c in text)


_EXTRACTOR_OPTS = {"delimiter", "quoting", "nullEscape", "rowDelimiter", "encoding", "silent", "skipFirstNRows",
                   "charFormat", "escapeCharacter"}  # fmt: skip
_OUTPUTTER_OPTS = {"delimiter", "quoting", "nullEscape", "rowDelimiter", "encoding", "outputHeader",
                   "dateTimeFormat", "charFormat", "escapeCharacter"}  # fmt: skip


def text_format(
    udo: n.Udo, source: str, constants: Mapping[str, object], *, escape_character: bool = False
) -> TextFormat:
    """Evaluate and check the options of a built-in UDO; errors name the option.

    ``escape_character``: the caller writes outputs with ``escapeCharacter`` (otherwise it is refused)."""
    allowed = _EXTRACTOR_OPTS if udo.family == "Extractors" else _OUTPUTTER_OPTS
    construct = f"{udo.family}.{udo.name}"
    values: dict[str, object] = {"kind": udo.name, "delimiter": _DELIMS.get(udo.name, ",")}

    def err(pos: n.Pos, msg: str) -> UsqlError:
        return UsqlError(source, pos.line, pos.column, construct, msg)

    if udo.name == "Parquet":  # the DuckDB emitter reads/writes Parquet itself and never gets here
        raise err(udo.pos, f"{construct} is not supported by this translation (local runs support it)")
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
            values["row_delimiter"] = _row_delimiter(v, udo.family, partial(err, pos))
        elif name == "encoding":
            values["encoding"] = _encoding(v, udo.family, partial(err, pos))
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
            if udo.family == "Extractors":
                # DuckDB's CSV escape only escapes the quote inside quoted fields; U-SQL's escapes delimiters anywhere
                raise err(pos, "escapeCharacter is not supported locally by the extractors: the local CSV reader "
                          "cannot unescape delimiters (outputters support it); quote such values instead")  # fmt: skip
            if not escape_character:
                raise err(pos, "escapeCharacter is not supported by this translation (local runs support it)")
            if not isinstance(v, str) or len(v) != 1:
                raise err(pos, "escapeCharacter must be a single char such as '\\\\'")
            values["escape_character"] = v
    return TextFormat(**values)  # type: ignore[arg-type]


def _row_delimiter(v: object, family: str, err: Callable[[str], UsqlError]) -> str | None:
    """A ``rowDelimiter`` value. The reference types it ``string (max length=1)`` (one UCS-4 character; ``"\\r\\n"``
    is the default): outputters write any one character; DuckDB's CSV reader splits rows only at ``\\r\\n``,
    ``\\r`` or ``\\n``."""
    if v is None:
        return None
    if family == "Extractors":
        if v not in ("\n", "\r", "\r\n"):
            raise err('rowDelimiter must be "\\r\\n", "\\r" or "\\n" for the local extractors (the local CSV '
                      f"reader cannot split rows at {v!r})")  # fmt: skip
        return str(v)
    if not isinstance(v, str) or (len(v) != 1 and v != "\r\n"):
        raise err(f'rowDelimiter must be one character such as "\\n" (or "\\r\\n", the default), not {v!r}')
    return v


def _encoding(v: object, family: str, err: Callable[[str], UsqlError]) -> str:
    """The codec of an ``encoding:`` value: ``Encoding.X`` or ``Encoding.GetEncoding(1252 | "windows-1252")``."""
    if not isinstance(v, Encoding):
        raise err(f"encoding must be an Encoding such as Encoding.UTF8, not {v!r}")
    name = str(v)
    if name == "Default":
        raise err("Encoding.Default is not supported by U-SQL (it is the machine's ANSI code page); "
                  "use Encoding.UTF8 or Encoding.GetEncoding(1252)")  # fmt: skip
    table = _EXTRACTOR_ENCODINGS if family == "Extractors" else _OUTPUTTER_ENCODINGS
    if name in table:
        return table[name]
    page = _code_page(name)
    if page is None:
        names = ", ".join("Encoding." + ("[ASCII]" if k == "ASCII" else k) for k in table)
        pages = f" or Encoding.GetEncoding({_CODE_PAGES[0]}..{_CODE_PAGES[-1]})"
        raise err(f"encoding {_encoding_text(name)} is not supported locally by the {family.lower()} "
                  f"(use {names}{pages})")  # fmt: skip
    return f"cp{page}"


def _code_page(name: str) -> int | None:
    """The code page of ``GetEncoding(<arg>)`` if it is one the reference lists, else None."""
    arg = name.removeprefix("GetEncoding(").removesuffix(")") if name.startswith("GetEncoding(") else None
    if arg is None:
        return None
    digits = arg.lower().removeprefix("windows-")
    page = int(digits) if digits.isdigit() else None
    return page if page in _CODE_PAGES else None


def _encoding_text(name: str) -> str:
    return name if name.startswith("GetEncoding(") else "Encoding." + name
