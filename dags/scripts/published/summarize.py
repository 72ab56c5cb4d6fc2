"""Counts the rows of the input CSV and keeps the first ``--top`` of them (the step of the published pipeline)."""

import argparse
import csv
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True)
parser.add_argument("--top", type=int, required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

source = Path(args.input)
files = sorted(source.rglob("*.csv")) if source.is_dir() else [source]
rows = [row for path in files for row in csv.reader(path.open(encoding="utf-8"))]
print(f"read {len(rows)} rows from {len(files)} file(s)")
with Path(args.out, "top.csv").open("w", encoding="utf-8", newline="") as handle:
    csv.writer(handle).writerows(rows[: args.top])
Path(args.out, "count.txt").write_text(f"{len(rows)}\n", encoding="utf-8")
