# Databricks notebook source
# MAGIC %md
# MAGIC # DataBricksStep-test
# MAGIC The demo notebook of AML's "use Databricks as compute target": it reads the `input` widget's
# MAGIC `testdata.txt` and writes `output.txt` under the `output` widget's folder. The step passes each
# MAGIC input and output as a widget named after it; `myparam` comes from `notebook_params`.

# COMMAND ----------

print("In direct print")
p = dbutils.widgets.get("myparam")
print("Param -'myparam':", p)
i = dbutils.widgets.get("input")
print("Param -'input':", i)
o = dbutils.widgets.get("output")
print("Param -'output':", o)

# COMMAND ----------

df = spark.read.text(i + "/testdata.txt")
display(df)

# COMMAND ----------

words = df.selectExpr("explode(split(value, ' ')) AS word").groupBy("word").count()
rows = sorted(f"{r.word},{r['count']}" for r in words.collect())
dbutils.fs.mkdirs(o)
dbutils.fs.put(o + "/output.txt", "\n".join(rows) + "\n", overwrite=True)

# COMMAND ----------

dbutils.notebook.exit(f"{len(rows)} words written to output.txt")
