"""DuckDB's DateTime arithmetic and TimeSpan values (parts, TimeSpan.FromX, new TimeSpan)."""

from __future__ import annotations

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.exprs_common import Typed
from airflow_provider_amlpipe.usql.translate_base import TIMESPAN
from airflow_provider_amlpipe.usql.translator import Translator
from airflow_provider_amlpipe.usql.types import UType

#: TimeSpan is held as a BIGINT count of microseconds; the units of its parts and of TimeSpan.FromX.
_SPAN_US = {"Days": 86_400_000_000, "Hours": 3_600_000_000, "Minutes": 60_000_000, "Seconds": 1_000_000,
            "Milliseconds": 1000}  # fmt: skip
#: The modulus of each TimeSpan part (``Hours`` is 0..23, as in .NET).
_SPAN_MOD = {"Hours": 24, "Minutes": 60, "Seconds": 60, "Milliseconds": 1000}

#: C#'s TimeSpan.ToString(), [-][d.]hh:mm:ss[.fffffff], of microseconds ({0}).
TIMESPAN_TEXT = (
    "CASE WHEN {0} IS NOT NULL THEN printf('%s%s%02d:%02d:%02d%s', CASE WHEN {0} < 0 THEN '-' ELSE '' END, "
    "CASE WHEN abs({0}) >= 86400000000 THEN CAST(abs({0}) // 86400000000 AS VARCHAR) || '.' ELSE '' END, "
    "abs({0}) // 3600000000 % 24, abs({0}) // 60000000 % 60, abs({0}) // 1000000 % 60, CASE WHEN abs({0}) % 1000000 "
    "<> 0 THEN '.' || lpad(CAST(abs({0}) % 1000000 * 10 AS VARCHAR), 7, '0') ELSE '' END) END"
)


class DateTimeMembers(Translator):
    """DuckDB's TimeSpan (a BIGINT count of microseconds) and DateTime arithmetic."""

    def _timespan_property(self, sql: str, typ: UType, e: n.Member) -> Typed:
        """``TotalDays``... (double), ``Days``, ``Hours``... (int parts, truncated as in .NET), ``Ticks``."""
        name = e.name
        total = name.removeprefix("Total")
        if name.startswith("Total") and total in _SPAN_US:
            return f"({sql} / {_SPAN_US[total]}.0)", UType("double", typ.nullable)
        if name in _SPAN_US:
            part = f"({sql} // {_SPAN_US[name]})"
            if name in _SPAN_MOD:
                part = f"({part} % {_SPAN_MOD[name]})"
            return f"CAST({part} AS INTEGER)", UType("int", typ.nullable)
        if name == "Ticks":
            return f"({sql} * 10)", UType("long", typ.nullable)
        raise self.err(e.pos, "member", f"TimeSpan.{name} is not supported")

    def _timespan_from(self, unit: str, x: str, e: n.Call) -> str:
        if unit == "Ticks":
            return f"(CAST({x} AS BIGINT) // 10)"
        # .NET Framework rounds to whole milliseconds (half away from zero)
        ms = f"trunc(CAST({x} AS DOUBLE) * {_SPAN_US[unit] // 1000} + CASE WHEN {x} >= 0 THEN 0.5 ELSE -0.5 END)"
        return f"(CAST({ms} AS BIGINT) * 1000)"

    @staticmethod
    def _compare_sql(a: str, at: UType, b: str, bt: UType) -> str:
        if at.name == "DateTime":
            a, b = f"epoch_us({a})", f"epoch_us({b})"
        return f"CAST(sign({a} - {b}) AS INTEGER)"

    def _date_arithmetic_sql(self, op: str, a: str, at: UType, b: str, bt: UType, pos: n.Pos) -> str:
        if at.name == bt.name == "DateTime":
            return f"(epoch_us({a}) - epoch_us({b}))"
        if at.name == "DateTime":
            return f"({a} {op} to_microseconds({b}))"
        return f"({a} {op} {b})"

    def _date_add(self, unit: str, s: str, value: Typed, pos: n.Pos) -> str:
        if unit in ("Months", "Years"):
            return f"({s} + to_{unit.lower()}(CAST({value[0]} AS INTEGER)))"
        return f"({s} + to_microseconds(CAST(round({value[0]} * {_SPAN_US[unit]}) AS BIGINT)))"

    def _new_timespan(self, e: n.New, args: list[Typed]) -> Typed:
        """``new TimeSpan(ticks)``, ``(h, m, s)``, ``(d, h, m, s[, ms])`` as microseconds."""
        vals = [f"CAST({x} AS BIGINT)" for x, _ in args]
        if len(args) == 1:
            return f"({vals[0]} // 10)", TIMESPAN
        units = {3: ["Hours", "Minutes", "Seconds"], 4: ["Days", "Hours", "Minutes", "Seconds"],
                 5: ["Days", "Hours", "Minutes", "Seconds", "Milliseconds"]}.get(len(args))  # fmt: skip
        if units is None:
            raise self.err(e.pos, "new TimeSpan", "new TimeSpan takes (ticks), (h, m, s), (d, h, m, s[, ms])")
        return "(" + " + ".join(f"{v} * {_SPAN_US[u]}" for v, u in zip(vals, units, strict=True)) + ")", TIMESPAN
