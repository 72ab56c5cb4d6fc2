"""Getting started, step "extract": derive model features from the passenger list."""

import argparse
import csv
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--passengers", required=True)
parser.add_argument("--features", required=True)
args = parser.parse_args()

with open(args.passengers, newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))

out = Path(args.features, "features.csv")
with open(out, "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["PassengerId", "title", "family_size", "is_alone", "is_child"])
    for row in rows:
        title = row["Name"].split(",", 1)[1].split()[0].rstrip(".")
        family = int(row["SibSp"]) + int(row["Parch"]) + 1
        child = row["Age"] != "" and float(row["Age"]) < 12
        writer.writerow([row["PassengerId"], title, family, int(family == 1), int(child)])
print(f"extracted features of {len(rows)} passengers to {out.name}")
