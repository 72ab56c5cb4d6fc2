"""The sweep's report page: the primary metric per trial over its intervals, parallel coordinates
of hyperparameters and value, and a table of trials -- the best trial highlighted.

One self-contained HTML document (inline SVG, no script, no external asset) rendered from the
``metrics.json`` document, so it opens anywhere: from the sweep's ``metrics`` output, or served.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 760, 340, 60
_STATUS_COLOURS = {"completed": "#4a78b5", "terminated": "#e08a2c", "failed": "#c0392b", "cancelled": "#999999"}
_BEST = "#1e9e4a"


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    if high == low:
        return (start + end) / 2
    return start + (value - low) / (high - low) * (end - start)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _curve(trial: dict[str, Any], metric: str) -> list[float]:
    return [float(m["value"]) for m in trial["metrics"] if m.get("name") == metric and _number(m.get("value"))]


def _style(trial: dict[str, Any], best: int | None) -> str:
    if trial["number"] == best:
        return f'stroke="{_BEST}" stroke-width="3.5"'
    colour = _STATUS_COLOURS.get(trial["status"], "#777777")
    dash = ' stroke-dasharray="5 3"' if trial["status"] != "completed" else ""
    return f'stroke="{colour}" stroke-width="1.5" stroke-opacity="0.8"{dash}'


def _title(trial: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in trial["hyperparameters"].items())
    return escape(f"trial {trial['number']} ({trial['status']}): value {trial['value']}; {params}")


def curves_svg(document: dict[str, Any]) -> str:
    """The primary metric of every trial against its interval (one polyline per trial)."""
    metric, best = document["primary_metric_name"], document.get("best_trial")
    curves = {t["number"]: _curve(t, metric) for t in document["trials"]}
    values = [v for c in curves.values() for v in c]
    longest = max((len(c) for c in curves.values()), default=1)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    lines = []
    # The best trial last, so it is drawn on top.
    for trial in sorted(document["trials"], key=lambda t: t["number"] == best):
        curve = curves[trial["number"]]
        if not curve:
            continue
        points = " ".join(
            f"{_scale(i + 1, 1, max(longest, 2), PAD, WIDTH - PAD):.1f},{_scale(v, low, high, HEIGHT - PAD, PAD):.1f}"
            for i, v in enumerate(curve)
        )
        lines.append(
            f'<polyline class="trial" data-trial="{trial["number"]}" fill="none" {_style(trial, best)}'
            f' points="{points}"><title>{_title(trial)}</title></polyline>'
        )
    axes = (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">interval (each time {escape(metric)} is'
        f" logged)</text>"
        f'<text x="{PAD - 6}" y="{PAD}" text-anchor="end">{high:.4g}</text>'
        f'<text x="{PAD - 6}" y="{HEIGHT - PAD}" text-anchor="end">{low:.4g}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 16}" text-anchor="end">{longest}</text>'
    )
    return (
        f'<svg id="curves" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"'
        f' font-size="12" role="img">{axes}{"".join(lines)}</svg>'
    )


def _axis(values: list[Any]) -> tuple[list[Any], bool]:
    """The axis's ticks: sorted distinct values; numbers spanning decades go on a log scale."""
    distinct = sorted(set(values), key=lambda v: (not _number(v), v if _number(v) else str(v)))
    numeric = all(_number(v) for v in distinct)
    log = numeric and len(distinct) > 1 and min(distinct) > 0 and max(distinct) / min(distinct) >= 100
    return distinct, log


def _position(value: Any, ticks: list[Any], log: bool) -> float:
    """Where ``value`` lies on its axis, 0 (bottom) to 1 (top)."""
    if all(_number(v) for v in ticks) and len(ticks) > 1:
        low, high = float(ticks[0]), float(ticks[-1])
        if log:
            return _scale(math.log(value), math.log(low), math.log(high), 0, 1)
        return _scale(float(value), low, high, 0, 1)
    return _scale(ticks.index(value), 0, len(ticks) - 1, 0, 1) if len(ticks) > 1 else 0.5


def parallel_svg(document: dict[str, Any]) -> str:
    """Parallel coordinates: one axis per hyperparameter and one for the value; one line per trial."""
    best = document.get("best_trial")
    trials = [t for t in document["trials"] if t["value"] is not None]
    names = list(document["trials"][0]["hyperparameters"]) if document["trials"] else []
    columns = [*names, document["primary_metric_name"]]
    rows = [[*(t["hyperparameters"].get(n) for n in names), t["value"]] for t in trials]
    axes = [_axis([row[i] for row in rows]) for i in range(len(columns))] if rows else []
    xs = [_scale(i, 0, max(len(columns) - 1, 1), PAD + 30, WIDTH - PAD - 30) for i in range(len(columns))]
    parts = []
    for x, column, (ticks, log) in zip(xs, columns, axes, strict=False):
        parts.append(f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD}" stroke="#333"/>')
        parts.append(f'<text x="{x:.1f}" y="{PAD - 14}" text-anchor="middle">{escape(column)}</text>')
        for tick in (ticks[0], ticks[-1]) if len(ticks) > 1 else ticks:
            y = _scale(_position(tick, ticks, log), 0, 1, HEIGHT - PAD, PAD)
            label = f"{tick:.3g}" if _number(tick) else str(tick)
            parts.append(f'<text x="{x + 4:.1f}" y="{y:.1f}" font-size="10">{escape(label)}</text>')
    for trial, row in sorted(zip(trials, rows, strict=True), key=lambda pair: pair[0]["number"] == best):
        points = " ".join(
            f"{x:.1f},{_scale(_position(value, ticks, log), 0, 1, HEIGHT - PAD, PAD):.1f}"
            for x, value, (ticks, log) in zip(xs, row, axes, strict=True)
        )
        parts.append(
            f'<polyline class="trial" data-trial="{trial["number"]}" fill="none" {_style(trial, best)}'
            f' points="{points}"><title>{_title(trial)}</title></polyline>'
        )
    return (
        f'<svg id="parallel" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"'
        f' font-size="12" role="img">{"".join(parts)}</svg>'
    )


def _table(document: dict[str, Any]) -> str:
    best = document.get("best_trial")
    names = list(document["trials"][0]["hyperparameters"]) if document["trials"] else []
    head = "".join(f"<th>{escape(h)}</th>" for h in ["trial", "status", "value", *names, "seconds", "why it stopped"])
    rows = []
    for t in document["trials"]:
        cells = [t["number"], t["status"], t["value"], *(t["hyperparameters"].get(n) for n in names)]
        cells += [t.get("duration_seconds"), t.get("reason") or ""]
        css = ' class="best"' if t["number"] == best else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return f'<table id="trials"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render(document: dict[str, Any], title: str = "Sweep") -> str:
    """The report page for a sweep's ``metrics.json`` document."""
    best = document.get("best_trial")
    summary = (
        f"best trial {best}: {escape(document['primary_metric_name'])} = {document.get('best_value')}"
        f" ({escape(document['primary_metric_goal'])}) with {escape(str(document.get('best_hyperparameters')))};"
        f" {len(document['trials'])} trials; study {escape(str(document.get('study', {}).get('name')))}"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; }}
tr.best {{ background: #dff3e5; font-weight: bold; }}
.legend span {{ margin-right: 1.2em; }}
</style></head>
<body>
<h1>{escape(title)}</h1>
<p id="summary">{summary}</p>
<p class="legend"><span style="color:{_BEST}">&#9644; best</span><span style="color:#4a78b5">&#9644; completed</span>
<span style="color:#e08a2c">&#9644; terminated</span><span style="color:#c0392b">&#9644; failed</span>
<span style="color:#999">&#9644; cancelled</span></p>
<h2>{escape(document["primary_metric_name"])} per trial</h2>
{curves_svg(document)}
<h2>Hyperparameters and value</h2>
{parallel_svg(document)}
<h2>Trials</h2>
{_table(document)}
</body></html>
"""
