"""Data dependency, step "compare": fit a group-rate model on the features and score it."""

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--features", required=True, help="folder of processed_data2")
parser.add_argument("--reference", required=True, help="reference passenger list (a DataPath parameter)")
parser.add_argument("--out", required=True)
args = parser.parse_args()

with open(Path(args.features, "features.csv"), newline="", encoding="utf-8") as handle:
    features = list(csv.DictReader(handle))
with open(args.reference, newline="", encoding="utf-8") as handle:
    reference = {r["PassengerId"]: r["Survived"] == "1" for r in csv.DictReader(handle)}

# Even ids train, odd ids test: a fixed split, so reruns are byte-identical.
counts: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
for r in features:
    if int(r["PassengerId"]) % 2 == 0:
        key = (r["sex"], r["pclass"], r["child"], r["fare_band"])
        counts[key][0] += int(r["Survived"])
        counts[key][1] += 1
overall = sum(c[0] for c in counts.values()) / max(sum(c[1] for c in counts.values()), 1)
tested = correct = 0
for r in features:
    pid = r["PassengerId"]
    if int(pid) % 2 == 1 and pid in reference:
        survived, total = counts.get((r["sex"], r["pclass"], r["child"], r["fare_band"]), (0, 0))
        rate = survived / total if total else overall
        correct += (rate >= 0.5) == reference[pid]
        tested += 1
accuracy = correct / tested if tested else 0.0
result = {"groups": len(counts), "tested": tested, "accuracy": round(accuracy, 4)}
Path(args.out, "comparison.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
print(json.dumps(result))
runtime.log_metric("accuracy", result["accuracy"])
