"""The DBFS-script variant of AML's "use Databricks as compute target": uploaded to DBFS before the run,
named by ``python_script_path``; the step passes each input and output as ``--NAME path`` after the
script's own arguments. Spark reads the input and ``dbutils`` writes the output, so the same script runs
on a cluster (``abfss://`` URIs) and locally (paths)."""

import argparse

from pyspark.dbutils import DBUtils
from pyspark.sql import SparkSession

parser = argparse.ArgumentParser()
parser.add_argument("--arg1", default="")
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
args = parser.parse_args()

print("In train-db-dbfs.py, arg1 =", args.arg1)
spark = SparkSession.builder.getOrCreate()
lines = spark.read.text(args.input.rstrip("/") + "/testdata.txt")
counts = lines.selectExpr("explode(split(value, ' ')) AS word").groupBy("word").count()
rows = sorted(f"{r.word},{r['count']}" for r in counts.collect())
DBUtils(spark).fs.put(args.output.rstrip("/") + "/word_counts.csv", "word,count\n" + "\n".join(rows) + "\n", True)
print(f"wrote {len(rows)} words")
