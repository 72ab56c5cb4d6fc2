"""Data transfer, downstream step "reconcile": the two databases' exports must tell the same story.

Reads the PostgreSQL query's Parquet export (totals per customer) and the MariaDB table's CSV export
(every order), recomputes the totals from the orders and reports any customer where they differ.
The transfer steps' outputs (their ``transfer.json`` manifests) arrive as inputs too: they make this
step run after the transfers, and again only when what they transferred changed.
"""

import argparse
import csv
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--totals", required=True)
parser.add_argument("--orders", required=True)
parser.add_argument("--manifests", nargs="+", required=True)
parser.add_argument("--report", required=True)
args = parser.parse_args()

expected = {r["customer"]: (r["orders"], r["total"]) for r in pq.read_table(args.totals).to_pylist()}
found: dict[str, list] = defaultdict(lambda: [0, Decimal(0)])
with open(args.orders, newline="", encoding="utf-8") as handle:
    for row in csv.DictReader(handle):
        found[row["customer"]][0] += 1
        found[row["customer"]][1] += Decimal(row["amount"] or 0)
mismatched = sorted(c for c in expected.keys() | found.keys() if tuple(found.get(c, (0, 0))) != expected.get(c))
transferred = [json.loads(Path(m, "transfer.json").read_text(encoding="utf-8")) for m in args.manifests]
report = {
    "customers": len(expected),
    "mismatched": mismatched,
    "rows_exported": sum(t.get("rows", 0) for t in transferred),
}
Path(args.report, "reconciliation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
print(json.dumps(report))
runtime.log_metric("mismatched_customers", len(mismatched))
