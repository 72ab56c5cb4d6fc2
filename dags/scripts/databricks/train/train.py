"""The local-script variant of AML's "use Databricks as compute target": the step passes each input
and output as ``--NAME path``, as AML's DatabricksStep did."""

import argparse
from pathlib import Path

from pyspark.sql import SparkSession

parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
parser.add_argument("--min-count", type=int, default=1)
args = parser.parse_args()

print("In train.py")
print("As a data scientist, this is where I use my training code.")
spark = SparkSession.builder.getOrCreate()
lines = spark.read.text(str(Path(args.input) / "testdata.txt"))
counts = lines.selectExpr("explode(split(value, ' ')) AS word").groupBy("word").count()
rows = sorted(f"{r.word},{r['count']}" for r in counts.collect() if r["count"] >= args.min_count)
Path(args.output, "word_counts.csv").write_text("word,count\n" + "\n".join(rows) + "\n")
print(f"wrote {len(rows)} words")
