"""DateTime, TimeSpan and DayOfWeek: their constants, TimeSpan parts, static calls and arithmetic."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed
from airflow_provider_amlpipe.usql.types import UType

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_amlpipe.usql.errors import UsqlError


#: TimeSpan is held as a BIGINT count of microseconds; the units of its parts and of TimeSpan.FromX.
_SPAN_US = {"Days": 86_400_000_000, "Hours": 3_600_000_000, "Minutes": 60_000_000, "Seconds": 1_000_000,
            "Milliseconds": 1000}  # fmt: skip
#: The modulus of each TimeSpan part (``Hours`` is 0..23, as in .NET).
_SPAN_MOD = {"Hours": 24, "Minutes": 60, "Seconds": 60, "Milliseconds": 1000}
_DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
TIMESPAN = UType("TimeSpan", False)

_CULTURE_COMPARE = ("string comparison with Compare/CompareTo is culture-sensitive in .NET (\"abc\" precedes \"ABC\", "
                    "ignorable characters) and is not supported; String.CompareOrdinal(a, b) compares ordinally "
                    "(by character code)")  # fmt: skip


class DateTimeMembers:
    """Methods of :class:`~.exprs.ExprTranslator`: DateTime and TimeSpan calls, parts and arithmetic."""

    # provided by ExprTranslator
    _args: Callable[[n.Call, Scope, tuple[int, ...], str], list[Typed]]
    err: Callable[[n.Pos, str, str], UsqlError]

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

    def _date_static_call(self, cls: str, name: str, e: n.Call, scope: Scope) -> Typed | None:
        """``DateTime.SpecifyKind/Compare``, ``TimeSpan.FromDays/.../FromTicks``; None for other methods."""
        unit = name.removeprefix("From")
        if cls == "TimeSpan" and unit in _SPAN_US:
            ((x, _),) = self._args(e, scope, (1,), f"TimeSpan.{name}")
            # .NET Framework rounds to whole milliseconds (half away from zero)
            ms = f"trunc(CAST({x} AS DOUBLE) * {_SPAN_US[unit] // 1000} + CASE WHEN {x} >= 0 THEN 0.5 ELSE -0.5 END)"
            return f"(CAST({ms} AS BIGINT) * 1000)", TIMESPAN
        if cls == "TimeSpan" and name == "FromTicks":
            ((x, _),) = self._args(e, scope, (1,), "TimeSpan.FromTicks")
            return f"(CAST({x} AS BIGINT) // 10)", TIMESPAN
        if cls == "DateTime" and name == "SpecifyKind":
            (d, dt), (_, kt) = self._args(e, scope, (2,), "DateTime.SpecifyKind")
            if dt.name != "DateTime" or kt.name != "DateTimeKind":
                raise self.err(e.pos, "DateTime.SpecifyKind", "SpecifyKind takes a DateTime and a DateTimeKind")
            return d, dt  # the kind does not change the value
        if name == "Compare":
            (a, at), (b, bt) = self._args(e, scope, (2,), f"{cls}.Compare")
            return self._compare(a, at, b, bt, e)
        if cls == "DateTime" and name == "DaysInMonth":
            (y, _), (m, _) = self._args(e, scope, (2,), "DateTime.DaysInMonth")
            return f"CAST(day(last_day(make_date(CAST({y} AS INTEGER), CAST({m} AS INTEGER), 1))) AS INTEGER)", t.INT
        if cls == "DateTime" and name == "IsLeapYear":
            ((y, _),) = self._args(e, scope, (1,), "DateTime.IsLeapYear")
            return f"(({y}) % 4 = 0 AND (({y}) % 100 <> 0 OR ({y}) % 400 = 0))", t.BOOL
        return None

    def _compare(self, a: str, at: UType, b: str, bt: UType, e: n.Call) -> Typed:
        """``Compare(a, b)`` / ``a.CompareTo(b)`` of DateTimes or TimeSpans: -1, 0 or 1."""
        if at.name == bt.name == "string":
            raise self.err(e.pos, "Compare", _CULTURE_COMPARE)
        if at.name != bt.name or at.name not in ("DateTime", "TimeSpan"):
            raise self.err(e.pos, "Compare", f"Compare of {at} and {bt} is not supported")
        if at.name == "DateTime":
            a, b = f"epoch_us({a})", f"epoch_us({b})"
        return f"CAST(sign({a} - {b}) AS INTEGER)", t.INT

    def _date_arithmetic(self, op: str, a: str, at: UType, b: str, bt: UType, pos: n.Pos) -> Typed:
        """DateTime - DateTime = TimeSpan; DateTime +/- TimeSpan; TimeSpan +/- TimeSpan (microseconds)."""
        nullable = at.nullable or bt.nullable
        if at.name == bt.name == "DateTime":
            return f"(epoch_us({a}) - epoch_us({b}))", TIMESPAN.with_nullable(nullable)
        if at.name == "DateTime" and bt.name == "TimeSpan":
            return f"({a} {op} to_microseconds({b}))", t.DATETIME.with_nullable(nullable)
        if at.name == bt.name == "TimeSpan":
            return f"({a} {op} {b})", TIMESPAN.with_nullable(nullable)
        raise self.err(pos, "operator", f"{at} {op} {bt} is not defined")

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
