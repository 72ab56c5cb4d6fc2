"""The sweep report page: one curve and one parallel-coordinates line per trial, the best highlighted."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from airflow_provider_amlpipe.sweep.report import curves_svg, parallel_svg, render


def document() -> dict[str, Any]:
    def trial(number: int, status: str, lr: float, bs: int, values: list[float]) -> dict[str, Any]:
        return {
            "number": number,
            "hyperparameters": {"--learning-rate": lr, "--batch-size": bs, "--act": "relu" if number % 2 else "tanh"},
            "status": status,
            "value": max(values) if status == "completed" else None,
            "metrics": [{"name": "acc", "value": v, "step": i} for i, v in enumerate(values)]
            + [{"name": "loss", "value": 1.0, "step": None}],
            "duration_seconds": 1.5,
            "reason": None if status == "completed" else "bandit: <behind>",
        }

    return {
        "primary_metric_name": "acc",
        "primary_metric_goal": "maximize",
        "best_trial": 2,
        "best_value": 0.9,
        "best_hyperparameters": {"--learning-rate": 0.01},
        "study": {"name": "amlpipe-x"},
        "trials": [
            trial(0, "completed", 0.001, 25, [0.2, 0.5, 0.6]),
            trial(1, "terminated", 0.3, 50, [0.1, 0.12]),
            trial(2, "completed", 0.01, 100, [0.4, 0.8, 0.9]),
            trial(3, "failed", 0.05, 25, []),
        ],
    }


def polylines(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall("{http://www.w3.org/2000/svg}polyline")


def test_every_trial_with_values_is_drawn_and_the_best_is_highlighted() -> None:
    doc = document()
    curves = polylines(curves_svg(doc))
    assert sorted(int(p.get("data-trial", "")) for p in curves) == [0, 1, 2]  # trial 3 logged nothing
    best = next(p for p in curves if p.get("data-trial") == "2")
    assert best.get("stroke-width") == "3.5"
    assert curves[-1] is best  # drawn last, on top
    assert len(best.get("points", "").split()) == 3
    terminated = next(p for p in curves if p.get("data-trial") == "1")
    assert terminated.get("stroke-dasharray")
    # Parallel coordinates: the completed trials (they have a value), through four axes each.
    parallel = polylines(parallel_svg(doc))
    assert sorted(int(p.get("data-trial", "")) for p in parallel) == [0, 2]
    assert all(len(p.get("points", "").split()) == 4 for p in parallel)


def test_the_page_is_escaped_and_lists_every_trial() -> None:
    page = render(document(), "Sweep <dag>.sweep")
    assert "<dag>" not in page and "&lt;dag&gt;" in page
    assert "bandit: &lt;behind&gt;" in page
    assert page.count("<tr") == 5  # header + 4 trials
    assert '<tr class="best"><td>2</td>' in page
