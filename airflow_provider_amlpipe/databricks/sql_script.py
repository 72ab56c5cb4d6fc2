"""Runs a Spark SQL script on a Spark cluster: the translation of a U-SQL step (``translate --to spark``).

``python sql_script.py [--sql FILE] [--input NAME=URI]... [--output NAME=URI]...``: puts each input's and
output's URI where the script has its marker (``__AMLPIPE_PATH_<NAME>__``, inside string literals: the
script itself names no storage, so the same file serves every run), runs each statement with ``spark.sql``,
then turns each output -- a folder Spark wrote with ``INSERT OVERWRITE DIRECTORY`` -- into the single file
U-SQL's ``OUTPUT`` wrote, as ADLA did. ``FILE`` defaults to ``script.sql`` beside this file, where the step
uploads it. Self-contained (PySpark and ``dbutils`` only): on a Databricks cluster this file is
uploaded with the script and the provider is not installed there.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def statements(sql: str) -> list[str]:
    """The statements of an emitted script: each ends with ``;`` at the end of a line (the emitter's layout,
    which escapes line breaks inside literals); comment lines are dropped."""
    out = []
    for chunk in sql.split(";\n"):
        body = "\n".join(line for line in chunk.splitlines() if not line.startswith("--")).strip().rstrip(";")
        if body:
            out.append(body)
    return out


def marker(name: str) -> str:
    """What stands for the path of input or output ``name`` in a script."""
    return f"__AMLPIPE_PATH_{name}__"


def place_paths(sql: str, paths: dict[str, str]) -> str:
    """``sql`` with each marker replaced by its path, escaped for a single-quoted Spark SQL literal."""
    for name, path in paths.items():
        sql = sql.replace(marker(name), path.replace("\\", "\\\\").replace("'", "\\'"))
    return sql


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = dict(item.split("=", 1) for item in items)
    return {name.strip(): value for name, value in pairs.items()}


def merge(dbutils: Any, path: str) -> None:
    """Replace the folder ``path`` (Spark's part files) by one file of their concatenated bytes."""
    parts = sorted(f.path for f in dbutils.fs.ls(path) if f.name.startswith("part-"))
    staged = path.rstrip("/") + ".merging"
    if len(parts) == 1:
        dbutils.fs.mv(parts[0], staged)
    else:  # COALESCE(1) writes one part; none for no rows, several only if a cluster ignores the hint
        dbutils.fs.put(staged, "".join(dbutils.fs.head(p, 1 << 31) for p in parts), True)
    dbutils.fs.rm(path, True)
    dbutils.fs.mv(staged, path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sql", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "script.sql"))
    parser.add_argument("--input", action="append", default=[], help="NAME=URI of an input")
    parser.add_argument("--output", action="append", default=[], help="NAME=URI of an output (made a single file)")
    args = parser.parse_args(argv)
    outputs = _pairs(args.output)
    from pyspark.dbutils import DBUtils
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    dbutils = DBUtils(spark)
    with open(args.sql, encoding="utf-8") as file:
        script = statements(place_paths(file.read(), {**_pairs(args.input), **outputs}))
    for number, statement in enumerate(script, 1):
        print(f"statement {number}/{len(script)}: {statement.splitlines()[0][:100]}", flush=True)
        spark.sql(statement)
    for path in outputs.values():
        merge(dbutils, path)
        print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
