"""Data dependency, step "train": clean the raw passenger list (impute ages by class median)."""

import argparse
import csv
import statistics
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--raw", required=True, help="the raw passenger CSV (a file)")
parser.add_argument("--out", required=True, help="folder for processed_data1")
args = parser.parse_args()

with open(args.raw, newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))

medians = {}
for pclass in ("1", "2", "3"):
    ages = [float(r["Age"]) for r in rows if r["Pclass"] == pclass and r["Age"]]
    medians[pclass] = round(statistics.median(ages), 1)
imputed = 0
for row in rows:
    if not row["Age"]:
        row["Age"] = str(medians[row["Pclass"]])
        imputed += 1

with open(Path(args.out, "clean.csv"), "w", newline="", encoding="utf-8") as handle:
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
print(f"cleaned {len(rows)} rows; imputed {imputed} ages with class medians {medians}")
