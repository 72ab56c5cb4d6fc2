"""Data dependency, step "extract": turn cleaned passengers into model features."""

import argparse
import csv
from pathlib import Path

FARE_BANDS = (10, 30, 80)

parser = argparse.ArgumentParser()
parser.add_argument("--clean", required=True, help="folder of processed_data1")
parser.add_argument("--out", required=True, help="folder for processed_data2")
args = parser.parse_args()

with open(Path(args.clean, "clean.csv"), newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))


def band(fare: float) -> int:
    return sum(fare >= edge for edge in FARE_BANDS)


with open(Path(args.out, "features.csv"), "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["PassengerId", "Survived", "sex", "pclass", "child", "fare_band", "family_size"])
    for r in rows:
        family = int(r["SibSp"]) + int(r["Parch"]) + 1
        child = int(float(r["Age"]) < 12)
        writer.writerow([r["PassengerId"], r["Survived"], r["Sex"], r["Pclass"], child, band(float(r["Fare"])), family])
print(f"wrote features for {len(rows)} passengers (fare bands {FARE_BANDS})")
