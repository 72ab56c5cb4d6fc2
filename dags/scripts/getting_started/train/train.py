"""Getting started, step "train": learn survival rates per (sex, class) from the passenger list."""

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--passengers", required=True)
parser.add_argument("--model", required=True)
args = parser.parse_args()

with open(args.passengers, newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))

counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
for row in rows:
    key = f"{row['Sex']}/{row['Pclass']}"
    counts[key][0] += int(row["Survived"])
    counts[key][1] += 1
rates = {key: round(survived / total, 4) for key, (survived, total) in sorted(counts.items())}

correct = sum((rates[f"{r['Sex']}/{r['Pclass']}"] >= 0.5) == (r["Survived"] == "1") for r in rows)
accuracy = correct / len(rows)
Path(args.model, "model.json").write_text(json.dumps({"survival_rate": rates}, indent=2) + "\n", encoding="utf-8")
print(f"trained on {len(rows)} passengers; {len(rates)} groups; training accuracy {accuracy:.3f}")
runtime.log_metric("train_accuracy", round(accuracy, 4))
