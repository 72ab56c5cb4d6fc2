"""Compare the scored labels with the true ones; fail below the step's min_accuracy."""

import argparse
import csv
import json
from pathlib import Path

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--scores", required=True)
parser.add_argument("--labels", required=True)
parser.add_argument("--report", required=True)
args = parser.parse_args()

with open(Path(args.labels) / "labels.csv", newline="") as handle:
    truth = {row["file"]: int(row["label"]) for row in csv.DictReader(handle)}
predicted = {}
for line in (Path(args.scores) / "parallel_run_step.txt").read_text().splitlines():
    name, label = line.split(": ")
    if name in predicted:
        raise SystemExit(f"{name} was scored twice")
    predicted[name] = int(label)
if set(predicted) != set(truth):
    raise SystemExit(f"scored {len(predicted)} images, expected the {len(truth)} labelled ones")
accuracy = sum(predicted[name] == label for name, label in truth.items()) / len(truth)
runtime.log_metric("accuracy", accuracy)
(Path(args.report) / "accuracy.json").write_text(json.dumps({"images": len(truth), "accuracy": accuracy}))
minimum = float(runtime.param("min_accuracy", 0.9))
if accuracy < minimum:
    raise SystemExit(f"accuracy {accuracy:.3f} is below min_accuracy {minimum}")
