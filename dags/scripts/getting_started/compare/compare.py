"""Getting started, step "compare" (runs after "train"): score simple baselines to beat."""

import argparse
import csv
import json
from pathlib import Path

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--passengers", required=True)
parser.add_argument("--report", required=True)
args = parser.parse_args()

with open(args.passengers, newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))
survived = [r["Survived"] == "1" for r in rows]
majority = max(sum(survived), len(rows) - sum(survived)) / len(rows)
by_sex = sum((r["Sex"] == "female") == s for r, s in zip(rows, survived, strict=True)) / len(rows)
report = {"passengers": len(rows), "majority_class_accuracy": round(majority, 4), "sex_only_accuracy": round(by_sex, 4)}
Path(args.report, "baselines.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
print(json.dumps(report))
runtime.log_metric("sex_only_accuracy", report["sex_only_accuracy"])
