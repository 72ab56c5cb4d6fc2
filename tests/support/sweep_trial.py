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


def assert_bandit_stopped_the_poor_trial(sweep: Any, result: Any, intervals: int, stopped_before: int) -> None:
    """The two-trial grid (quality 1.0 and 0.2, ``intervals`` each) under a Bandit policy: the good trial completed
    all its intervals, the poor one was terminated by the policy after at least 3 and fewer than ``stopped_before``,
    its process killed, and the good one is the best."""
    metrics = sweep.read_output(result.xcom("sweep", "metrics"), "metrics.json")
    trials = {t["hyperparameters"]["--quality"]: t for t in metrics["trials"]}
    assert trials[1.0]["status"] == "completed" and trials[1.0]["intervals"] == intervals
    poor = trials[0.2]
    assert poor["status"] == "terminated" and "bandit" in poor["reason"]
    assert 3 <= poor["intervals"] < stopped_before
    processes = {p["quality"]: p for p in sweep.processes()}
    assert "end" not in processes[0.2]  # its process was killed
    assert result.xcom("sweep", "best_hyperparameters") == {"--quality": 1.0}
