"""Where the repository and the tests' data live; no side effects, so benchmarks can import it too."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
SAMPLES = REPO / "dags" / "data"
USQL_CASES = TESTS / "usql" / "cases"
