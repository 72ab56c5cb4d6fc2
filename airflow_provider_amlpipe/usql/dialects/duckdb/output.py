"""The DuckDB emitter's OUTPUT: the built-in text outputters (one formatted line per row, ``COPY ... TO``) and
Parquet output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import parquet
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs import Scope, lit, q
from airflow_provider_amlpipe.usql.emit_model import EmittedStatement
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.options import TextFormat, text_format
from airflow_provider_amlpipe.usql.translator import Translator
from airflow_provider_amlpipe.usql.types import UType


class OutputStatements:
    """OUTPUT of :class:`~.emitter.DuckDbEmitter` (a mixin of it)."""

    source: str
    out: list[EmittedStatement]
    err: Callable[[n.Pos, str, str], UsqlError]
    _note: Callable[[n.Pos, str], None]
    constants: dict[str, object]
    x: Translator
    path: Callable[..., Path]
    query: Callable[[n.Query], tuple[str, list[tuple[str, UType]]]]
    _format_value: Callable[[str, UType, TextFormat, n.Output], str]
    _order_fetch: Callable[[tuple[n.SortItem, ...], n.Expr | None, n.Expr | None, Scope], str]

    # ------------------------------------------------------------ OUTPUT
    def output(self, o: n.Output) -> None:
        if o.outputter.name == "Parquet":
            self._output_parquet(o)
            return
        fmt = text_format(o.outputter, self.source, self.constants, escape_character=True)
        target = self.path(o.path, "OUTPUT")
        if o.expiration is not None:
            self._expiration(o.expiration, target)
        sql, cols = self.query(o.source)
        scope = Scope([(None, c, ty) for c, ty in cols])
        parts = []
        for c, ty in cols:
            parts.append(self._format_value(q(c), ty, fmt, o))
        sep = " || " + lit(fmt.delimiter) + " || "
        line = sep.join(parts) if parts else "''"
        names = [fmt.escape(c) for c, _ in cols]
        header = fmt.delimiter.join(('"' + c.replace('"', '""') + '"' if fmt.quoting else c) for c in names)
        body = f"SELECT {line} AS {q(header)}\nFROM (\n{sql}\n) AS usql_out"
        if o.order_by or o.offset is not None or o.fetch is not None:
            body += self._order_fetch(o.order_by, o.offset, o.fetch, scope)
        new_line = fmt.row_delimiter or "\r\n"
        # DuckDB reads the escapes \r and \n in NEW_LINE; any other character is written as is
        nl = new_line.replace("\r", "\\r").replace("\n", "\\n").replace("'", "''")
        stmt = (f"COPY (\n{body}\n) TO {lit(str(target))} (FORMAT csv, HEADER {str(fmt.output_header).lower()}, "
                f"QUOTE '', ESCAPE '', NEW_LINE '{nl}');")  # fmt: skip
        encoding = None if fmt.encoding == "utf-8" else fmt.encoding
        self.out.append(EmittedStatement("output", stmt, o.pos.line, o.pos.column, target, output_encoding=encoding,
                                         output_row_delimiter=new_line))  # fmt: skip

    def _output_parquet(self, o: n.Output) -> None:
        """``Outputters.Parquet(...)``: ``COPY ... (FORMAT parquet)`` with the columns in U-SQL's Parquet types."""
        pf = parquet.parquet_format(o.outputter, self.source, self.constants)
        target = self.path(o.path, "OUTPUT")
        if o.expiration is not None:
            self._expiration(o.expiration, target)
        sql, cols = self.query(o.source)
        construct = "Outputters.Parquet"
        for index in pf.columns:
            if index >= len(cols):
                raise self.err(o.outputter.pos, construct, f"columnOptions names column {index}, but the rowset has "
                               f"{len(cols)} columns (numbered from 0)")  # fmt: skip
        exprs = []
        for i, (c, ty) in enumerate(cols):
            fix = parquet.unsupported_type(ty) if ty.name != "unknown" else "a typed value"
            if fix is not None:
                raise self.err(o.pos, construct, f"column {c!r} of type {ty} cannot be written to Parquet (the "
                               f"reference: not supported); convert it to {fix}")  # fmt: skip
            try:
                exprs.append(f"{parquet.output_value(q(c), ty, pf.columns.get(i))} AS {q(c)}")
            except ValueError as ex:
                raise self.err(o.outputter.pos, construct, f"columnOptions for column {i} ({c!r}): {ex}") from None
        body = f"SELECT {', '.join(exprs)}\nFROM (\n{sql}\n) AS usql_out"
        if o.order_by or o.offset is not None or o.fetch is not None:
            body += self._order_fetch(o.order_by, o.offset, o.fetch, Scope([(None, c, ty) for c, ty in cols]))
        codec, notes = pf.codec(len(cols))
        rows, row_notes = pf.duckdb_row_group_rows()
        for note in [*notes, *row_notes]:
            self._note(o.pos, note)
        stmt = f"COPY (\n{body}\n) TO {lit(str(target))} (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {rows});"
        self.out.append(EmittedStatement("output", stmt, o.pos.line, o.pos.column, target))

    def _expiration(self, e: n.Expr, target: Path) -> None:
        """``EXPIRATION`` sets the file's expiry on ADLS; locally nothing expires, so it is only recorded."""
        _, ty = self.x.tr(e, Scope())
        if ty.name not in ("DateTime", "TimeSpan"):
            raise self.err(e.pos, "EXPIRATION", f"EXPIRATION takes a DateTime or a TimeSpan, not {ty}")
        self._note(e.pos, f"EXPIRATION of {target} is not applied locally (the file is kept)")

    # render hooks of Emitter._format_value
    @staticmethod
    def _char_code_text(col: str) -> str:
        """A char as its UTF-16 code (charFormat "uint16")."""
        return f"CAST(unicode({col}) AS VARCHAR)"

    @staticmethod
    def _quoted_text(v: str) -> str:
        """A text value in double quotes, inner quotes doubled (null stays null)."""
        return f"""'"' || replace({v}, '"', '""') || '"'"""
