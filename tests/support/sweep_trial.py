"""The sweep tests' trial script: logs a metric curve set by ``--quality`` and records its start and end
in ``$AMLPIPE_TEST_EVENTS``, so tests can check concurrency and early termination."""

from __future__ import annotations

from typing import Any

TRIAL = """\
import argparse, json, os, time
from pathlib import Path
from airflow_provider_amlpipe import runtime
parser = argparse.ArgumentParser()
parser.add_argument("--quality", type=float, required=True)
parser.add_argument("--intervals", type=int, default=4)
parser.add_argument("--pause", type=float, default=0.05)
parser.add_argument("--metric", default="acc")
args = parser.parse_args()
events = Path(os.environ["AMLPIPE_TEST_EVENTS"])
with events.open("a") as f:
    f.write(json.dumps({"event": "start", "pid": os.getpid(), "quality": args.quality, "t": time.time()}) + "\\n")
for i in range(1, args.intervals + 1):
    runtime.log_metric(args.metric, args.quality * i / args.intervals, step=i * 10)
    time.sleep(args.pause)
(runtime.output_path("model") / "model.json").write_text(json.dumps({"quality": args.quality}))
with events.open("a") as f:
    f.write(json.dumps({"event": "end", "pid": os.getpid(), "quality": args.quality, "t": time.time()}) + "\\n")
"""


def peak_concurrency(processes: list[dict[str, Any]]) -> int:
    """The most trial processes that ran at once (from their recorded start and end times)."""
    edges = sorted([(p["start"], 1) for p in processes] + [(p["end"], -1) for p in processes])
    peak = running = 0
    for _, delta in edges:
        running += delta
        peak = max(peak, running)
    return peak
