"""Databricks tasks run locally (``airflow_provider_amlpipe.databricks``): notebook parsing, the ``dbutils``
stand-in, and the child-process runner for notebooks, Python scripts and jars.

Runs that start a JVM (Spark, spark-submit) are ``slow``; the rest run a child interpreter without Spark
(the notebook's ``spark`` is only started on first use).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_amlpipe.databricks.dbutils import DBUtils, InputWidgetNotDefined, NotebookExit
from airflow_provider_amlpipe.databricks.local_runner import (
    CANCELED,
    FAILED,
    SUCCESS,
    TIMEDOUT,
    LocalRunner,
    run_jar,
    run_notebook,
    run_python_script,
)
from airflow_provider_amlpipe.databricks.notebook import NotebookError, parse_ipynb, parse_source, split_sql

HEADER = "# Databricks notebook source\n"
SEP = "\n# COMMAND ----------\n\n"

# The AML demo notebook ("use Databricks as compute target"): reads input/testdata.txt, writes output/output.txt.
DEMO_CELLS = [
    "# MAGIC %md\n# MAGIC # Word count\n# MAGIC Reads the `input` widget's file and writes `output`.\n",
    'dbutils.widgets.text("input", "input/testdata.txt")\n'
    'dbutils.widgets.text("output", "output")\n'
    'input_path = dbutils.widgets.get("input")\n'
    'output_dir = dbutils.widgets.get("output")\n'
    'print("input:", input_path)\n',
    "lines = spark.read.text(input_path)\n"
    'words = lines.selectExpr("explode(split(value, \' \')) AS word").groupBy("word").count()\n'
    'words.createOrReplaceTempView("words")\n'
    "display(words.orderBy('word'))\n"
    "rows = sorted(f'{r.word},{r[\"count\"]}' for r in words.collect())\n"
    "dbutils.fs.mkdirs(output_dir)\n"
    'dbutils.fs.put(output_dir + "/output.txt", "\\n".join(rows) + "\\n", overwrite=True)\n',
    "# MAGIC %sql\n# MAGIC CREATE OR REPLACE TEMP VIEW hello AS SELECT * FROM words WHERE word = 'hello';\n"
    "# MAGIC SELECT word, `count` AS n FROM hello -- the last statement's rows are shown\n",
    'n = spark.sql("SELECT n FROM (SELECT `count` AS n FROM hello)").first().n\n'
    'dbutils.notebook.exit(json.dumps({"hello": n}))\n',
]
DEMO_SOURCE = HEADER + "import json\n" + SEP + SEP.join(DEMO_CELLS)


def source_notebook(tmp_path: Path, *cells: str, name: str = "nb.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + SEP.join(cells), encoding="utf-8")
    return path


def ipynb(tmp_path: Path, cells: list[tuple[str, str]], name: str = "nb.ipynb") -> Path:
    document = {
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True)}
            | ({"outputs": [], "execution_count": None} if kind == "code" else {})
            for kind, text in cells
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
def rig(tmp_path: Path) -> dict[str, Path]:
    work = tmp_path / "work"
    (work / "input").mkdir(parents=True)
    (work / "input" / "testdata.txt").write_text("hello world\nhello spark\n", encoding="utf-8")
    return {"workdir": work, "dbfs_root": tmp_path / "dbfs"}


# ---------------------------------------------------------------- parsing


def test_source_format_cells_kinds_and_lines() -> None:
    cells = parse_source(DEMO_SOURCE)
    assert [c.kind for c in cells] == ["python", "md", "python", "python", "sql", "python"]
    sql = cells[4]
    assert sql.source.startswith("CREATE OR REPLACE TEMP VIEW hello")
    assert "# MAGIC" not in sql.source
    lines = DEMO_SOURCE.splitlines()
    # code_line is the file line where the cell's code starts (after the magic line for %sql)
    assert lines[sql.code_line - 1] == "# MAGIC " + sql.source.splitlines()[0]
    assert lines[cells[2].code_line - 1] == 'dbutils.widgets.text("input", "input/testdata.txt")'


def test_source_format_magic_python_and_titles() -> None:
    text = HEADER + "# DBTITLE 1,Setup\n# MAGIC %python\n# MAGIC x = 1\n# MAGIC\n# MAGIC y = x + 1\n"
    (cell,) = parse_source(text)
    assert (cell.kind, cell.source) == ("python", "x = 1\n\ny = x + 1\n")
    assert cell.code_line == 4


@pytest.mark.parametrize(
    ("magic", "hint"),
    [("sh", "subprocess"), ("scala", "only %python, %sql and %md"), ("run", "%run"), ("pip", "libraries")],
)
def test_unsupported_magic_is_refused_naming_the_cell(magic: str, hint: str) -> None:
    text = HEADER + "x = 1" + SEP + f"# MAGIC %{magic} something\n"
    with pytest.raises(NotebookError, match=rf"nb\.py: cell 2 \(line 5\) is a %{magic} cell: .*{hint}"):
        parse_source(text, name="nb.py")


def test_not_a_source_notebook() -> None:
    with pytest.raises(NotebookError, match="first line must be '# Databricks notebook source'"):
        parse_source("print(1)\n", name="plain.py")


def test_ipynb_code_cells_with_magics(tmp_path: Path) -> None:
    path = ipynb(tmp_path, [("markdown", "# Title"), ("code", "x = 1\n"), ("code", "%sql\nSELECT 1"), ("code", " ")])
    cells = parse_ipynb(path.read_text())
    assert [(c.kind, c.source, c.line) for c in cells] == [("python", "x = 1\n", 2), ("sql", "SELECT 1\n", 3)]
    with pytest.raises(NotebookError, match=r"cell 1 \(notebook cell 1\) is a %sh cell"):
        parse_ipynb(json.dumps({"cells": [{"cell_type": "code", "source": "%sh ls"}]}), name="x.ipynb")
    with pytest.raises(NotebookError, match="not a Jupyter notebook"):
        parse_ipynb("{}", name="x.ipynb")


def test_split_sql() -> None:
    text = "SELECT ';' AS a; -- a comment; with a semicolon\nSELECT \"x;y\" /* ; */ ;\n\n;SELECT `a;b`"
    assert split_sql(text) == ["SELECT ';' AS a", 'SELECT "x;y"', "SELECT `a;b`"]


# ---------------------------------------------------------------- dbutils, in process


def test_widgets(tmp_path: Path) -> None:
    dbutils = DBUtils({"input": "data/in.txt", "n": 3}, dbfs_root=tmp_path)
    dbutils.widgets.text("input", "default.txt")
    dbutils.widgets.text("output", "out")
    dbutils.widgets.dropdown("mode", "fast", ["fast", "slow"])
    assert dbutils.widgets.get("input") == "data/in.txt"  # the parameter wins over the default
    assert dbutils.widgets.get("output") == "out"
    assert dbutils.widgets.get("n") == "3"  # a parameter needs no declaration
    assert dbutils.widgets.getAll() == {"input": "data/in.txt", "output": "out", "mode": "fast", "n": "3"}
    with pytest.raises(InputWidgetNotDefined, match="No input widget named missing is defined"):
        dbutils.widgets.get("missing")
    assert dbutils.widgets.getArgument("missing", "d") == "d"
    with pytest.raises(ValueError, match="Default value x is not in choices"):
        dbutils.widgets.dropdown("bad", "x", ["a"])
    with pytest.raises(NotebookExit) as done:
        dbutils.notebook.exit(42)
    assert done.value.value == "42"


def test_fs_over_dbfs_root_and_local_paths(tmp_path: Path) -> None:
    root, work = tmp_path / "dbfs", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    fs = DBUtils(dbfs_root=root, workdir=work).fs
    assert fs.mkdirs("dbfs:/data/in")
    assert fs.put("dbfs:/data/in/a.txt", "hello\n")
    with pytest.raises(FileExistsError):
        fs.put("dbfs:/data/in/a.txt", "again")
    assert fs.put("/dbfs/data/in/a.txt", "hello dbfs\n", overwrite=True)
    assert (root / "data/in/a.txt").read_text() == "hello dbfs\n"
    assert fs.head("dbfs:/data/in/a.txt", 5) == "hello"
    listing = fs.ls("dbfs:/data")
    assert [(f.path, f.name, f.isDir()) for f in listing] == [("dbfs:/data/in/", "in/", True)]
    (info,) = fs.ls("dbfs:/data/in")
    assert (info.path, info.name, info.size, info.isFile()) == ("dbfs:/data/in/a.txt", "a.txt", 11, True)
    # plain paths are local (relative ones under the working folder)
    assert fs.cp("dbfs:/data/in/a.txt", "local/a.txt")
    assert (work / "local/a.txt").read_text() == "hello dbfs\n"
    with pytest.raises(IsADirectoryError):
        fs.cp("dbfs:/data/in", "dbfs:/copy")
    assert fs.cp("dbfs:/data/in", "dbfs:/copy", recurse=True)
    assert fs.mv("dbfs:/copy/a.txt", f"file:{work}/moved.txt")
    assert (work / "moved.txt").is_file() and not (root / "copy/a.txt").exists()
    with pytest.raises(OSError, match="non-empty"):
        fs.rm("dbfs:/data")
    assert fs.rm("dbfs:/data", recurse=True) and not (root / "data").exists()
    assert fs.rm("dbfs:/data") is False
    with pytest.raises(FileNotFoundError, match="File dbfs:/nothing does not exist"):
        fs.ls("dbfs:/nothing")
    with pytest.raises(ValueError, match="outside of DBFS"):
        fs.head("dbfs:/../secret")


def test_secrets(tmp_path: Path) -> None:
    secrets = DBUtils(dbfs_root=tmp_path, secrets={"scope": {"key": "s3cr3t"}}).secrets
    assert secrets.get("scope", "key") == "s3cr3t"
    assert secrets.listScopes() == ["scope"]
    with pytest.raises(KeyError, match="Secret does not exist with scope: scope and key: other"):
        secrets.get("scope", "other")


# ---------------------------------------------------------------- runs without a JVM


def test_exit_value_widgets_secrets_and_output_lines(tmp_path: Path, rig: dict[str, Path]) -> None:
    nb = source_notebook(
        tmp_path,
        'import sys\ndbutils.widgets.text("greeting", "hi")\n'
        'print(dbutils.widgets.get("greeting"), "from", sys.argv[0])',
        'token = dbutils.secrets.get("kv", "token")\nprint("token is", token)\nprint("warned", file=sys.stderr)',
        "# MAGIC %md\n# MAGIC skipped",
        "from pyspark.dbutils import DBUtils\nassert DBUtils(spark) is dbutils\n1 + 1",
        "try:\n    dbutils.notebook.exit({'rows': 3})\nexcept Exception:\n    print('swallowed')",
        "print('not reached')",
    )
    lines: list[tuple[str, str]] = []
    result = run_notebook(
        nb,
        {"greeting": "hello"},
        secrets={"kv": {"token": "t0k3n-value"}},
        sink=lambda stream, line: lines.append((stream, line)),
        **rig,
    )
    assert result.state == SUCCESS, result
    assert result.exit_value == "{'rows': 3}"
    assert ("stdout", f"hello from {nb}") in lines
    assert ("stdout", "token is [REDACTED]") in lines
    assert ("stderr", "warned") in lines
    assert ("stdout", "2") in lines  # a cell's last expression is shown
    assert not any("t0k3n-value" in line or line in ("not reached", "swallowed") for _, line in lines)
    assert "t0k3n-value" not in result.stdout_tail


def test_failing_cell_reports_error_and_trace_naming_the_cell(tmp_path: Path, rig: dict[str, Path]) -> None:
    nb = source_notebook(
        tmp_path,
        "def ratio(a, b):\n    return a / b",
        "# MAGIC %md\n# MAGIC text",
        "x = 1\ny = ratio(x, 0)",
        "print('not reached')",
    )
    result = run_notebook(nb, workdir=rig["workdir"], dbfs_root=rig["dbfs_root"])
    assert result.state == FAILED and result.cell == 3
    assert result.error == "ZeroDivisionError: division by zero (in cell 3, a %python cell starting at line 10)"
    assert result.trace is not None
    assert 'File "nb.py (cell 3)", line 11, in <module>\n    y = ratio(x, 0)' in result.trace
    assert 'File "nb.py (cell 1)", line 3, in ratio\n    return a / b' in result.trace
    assert "child.py" not in result.trace
    assert "not reached" not in result.stdout_tail


def test_missing_widget_fails_like_databricks(tmp_path: Path, rig: dict[str, Path]) -> None:
    nb = source_notebook(tmp_path, 'path = dbutils.widgets.get("input_path")')
    result = run_notebook(nb, {"other": "x"}, **rig)
    assert result.state == FAILED and result.cell == 1
    assert result.error is not None
    assert result.error.startswith("InputWidgetNotDefined: No input widget named input_path is defined")


def test_syntax_error_names_the_cell(tmp_path: Path, rig: dict[str, Path]) -> None:
    path = ipynb(tmp_path, [("code", "x = 1\n"), ("code", "def broken(:\n    pass\n")])
    result = run_notebook(path, **rig)
    assert result.state == FAILED and result.cell == 2
    assert result.error is not None and result.error.startswith("SyntaxError")
    assert 'File "nb.ipynb (cell 2)", line 1' in (result.trace or "")


def test_notebooks_do_not_share_state(tmp_path: Path, rig: dict[str, Path]) -> None:
    runner = LocalRunner(**rig)
    first = source_notebook(tmp_path, "import os\nos.environ['LEAK'] = '1'\nLEAKED = 1", name="a.py")
    second = source_notebook(
        tmp_path, "import os\ndbutils.notebook.exit(str(('LEAKED' in globals(), 'LEAK' in os.environ)))", name="b.py"
    )
    assert runner.run_notebook(first).ok
    assert runner.run_notebook(second).exit_value == "(False, False)"


def test_python_script_with_args(tmp_path: Path, rig: dict[str, Path]) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import argparse, pathlib, sys\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--input')\nparser.add_argument('--output')\n"
        "args = parser.parse_args()\n"
        "text = pathlib.Path(args.input).read_text()\n"
        "pathlib.Path(args.output).write_text(text.upper())\n"
        "print('argv', sys.argv[1:])\n"
        "if 'fail' in text:\n    raise RuntimeError('asked to fail')\n",
        encoding="utf-8",
    )
    lines: list[str] = []
    result = run_python_script(
        script,
        ["--input", "input/testdata.txt", "--output", "out.txt"],
        sink=lambda _s, line: lines.append(line),
        **rig,
    )
    assert result.state == SUCCESS, result
    assert (rig["workdir"] / "out.txt").read_text() == "HELLO WORLD\nHELLO SPARK\n"
    assert "argv ['--input', 'input/testdata.txt', '--output', 'out.txt']" in lines
    (rig["workdir"] / "input" / "testdata.txt").write_text("fail\n")
    failed = run_python_script(script, ["--input", "input/testdata.txt", "--output", "out.txt"], **rig)
    assert failed.state == FAILED and failed.error == "RuntimeError: asked to fail"
    assert f'File "{script}", line 10, in <module>' in (failed.trace or "")
    exited = tmp_path / "exits.py"
    exited.write_text("import sys\nsys.exit(3)\n")
    assert run_python_script(exited, **rig).error == "SystemExit: 3"


def test_cancel_kills_the_run_and_what_it_started(tmp_path: Path, rig: dict[str, Path]) -> None:
    pids = tmp_path / "pids.json"
    nb = source_notebook(
        tmp_path,
        "import json, os, subprocess, time\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pids)!r}, 'w').write(json.dumps([os.getpid(), child.pid]))\n"
        "print('started', flush=True)\n"
        "time.sleep(300)",
    )
    started = threading.Event()
    runner = LocalRunner(sink=lambda _s, line: started.set() if line == "started" else None, **rig)
    results = []
    thread = threading.Thread(target=lambda: results.append(runner.run_notebook(nb)))
    thread.start()
    assert started.wait(30)
    begun = time.monotonic()
    runner.cancel()
    thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - begun < 10
    (result,) = results
    assert result.state == CANCELED
    for pid in json.loads(pids.read_text()):
        assert not _alive(pid), f"process {pid} survived the cancel"
    assert runner.run_notebook(nb).state == CANCELED  # a cancelled runner starts nothing more


def test_timeout(tmp_path: Path, rig: dict[str, Path]) -> None:
    nb = source_notebook(tmp_path, "import time\ntime.sleep(60)")
    result = run_notebook(nb, timeout=1.5, **rig)
    assert result.state == TIMEDOUT and result.duration < 10


def test_crash_without_result(tmp_path: Path, rig: dict[str, Path]) -> None:
    nb = source_notebook(tmp_path, "import os, sys\nprint('dying', file=sys.stderr, flush=True)\nos._exit(9)")
    result = run_notebook(nb, **rig)
    assert result.state == FAILED and result.returncode == 9
    assert result.error is not None and "without a result" in result.error and "dying" in result.error


def test_refused_cell_raises_before_anything_runs(tmp_path: Path, rig: dict[str, Path]) -> None:
    marker = tmp_path / "ran"
    nb = source_notebook(tmp_path, f"open({str(marker)!r}, 'w')", "# MAGIC %sh\n# MAGIC ls")
    with pytest.raises(NotebookError, match="cell 2"):
        run_notebook(nb, **rig)
    assert not marker.exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is dead too
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------- Spark (one JVM start per run)


@pytest.mark.slow
def test_demo_notebook_on_spark_source_format(tmp_path: Path, rig: dict[str, Path]) -> None:
    nb = tmp_path / "demo.py"
    nb.write_text(DEMO_SOURCE, encoding="utf-8")
    lines: list[str] = []
    result = run_notebook(nb, {"input": "input/testdata.txt"}, sink=lambda _s, line: lines.append(line), **rig)
    assert result.state == SUCCESS, result
    assert json.loads(result.exit_value or "") == {"hello": 2}
    assert (rig["workdir"] / "output" / "output.txt").read_text() == "hello,2\nspark,1\nworld,1\n"
    assert "input: input/testdata.txt" in lines
    assert "|hello|2    |" in lines  # display() of the word counts
    assert "|hello|2  |" in lines  # the %sql cell's last statement


@pytest.mark.slow
def test_demo_notebook_on_spark_ipynb(tmp_path: Path, rig: dict[str, Path]) -> None:
    cells = [("markdown", "# Word count")] + [
        ("code", "\n".join(line.removeprefix("# MAGIC ").removeprefix("# MAGIC") for line in c.splitlines()))
        for c in ["import json", *DEMO_CELLS[1:]]
    ]
    path = ipynb(tmp_path, cells, name="demo.ipynb")
    result = run_notebook(path, {"input": "input/testdata.txt", "output": "out2"}, **rig)
    assert result.state == SUCCESS, result
    assert json.loads(result.exit_value or "") == {"hello": 2}
    assert (rig["workdir"] / "out2" / "output.txt").read_text() == "hello,2\nspark,1\nworld,1\n"


@pytest.mark.slow
def test_python_script_with_spark_and_a_failing_sql_cell(tmp_path: Path, rig: dict[str, Path]) -> None:
    script = tmp_path / "count.py"
    script.write_text(
        "import sys\nfrom pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "n = spark.read.text(sys.argv[1]).count()\n"
        "assert spark.conf.get('spark.sql.shuffle.partitions') == '2'\n"
        "open(sys.argv[2], 'w').write(str(n))\n",
        encoding="utf-8",
    )
    result = run_python_script(script, ["input/testdata.txt", "n.txt"], **rig)
    assert result.state == SUCCESS, result
    assert (rig["workdir"] / "n.txt").read_text() == "2"
    nb = source_notebook(tmp_path, "x = 1", "# MAGIC %sql\n# MAGIC SELECT * FROM no_such_table")
    failed = run_notebook(nb, **rig)
    assert failed.state == FAILED and failed.cell == 2
    assert "TABLE_OR_VIEW_NOT_FOUND" in (failed.error or "")
    assert "a %sql cell starting at line 5" in (failed.error or "")


@pytest.mark.slow
def test_jar_with_spark_submit(tmp_path: Path, rig: dict[str, Path]) -> None:
    if shutil.which("javac") is None or shutil.which("jar") is None:
        pytest.skip("no JDK (javac, jar) on this machine")
    src = tmp_path / "src" / "demo"
    src.mkdir(parents=True)
    (src / "Main.java").write_text(
        "package demo;\n"
        "import java.nio.file.*;\n"
        "public class Main {\n"
        "  public static void main(String[] args) throws Exception {\n"
        '    if (args.length > 0 && args[0].equals("fail")) throw new IllegalStateException("asked to fail");\n'
        '    String text = new String(Files.readAllBytes(Paths.get("input/testdata.txt")));\n'
        "    Files.write(Paths.get(args[0]), text.toUpperCase().getBytes());\n"
        '    System.out.println("wrote " + args[0]);\n'
        "  }\n"
        "}\n"
    )
    classes = tmp_path / "classes"
    subprocess.run(["javac", "-d", str(classes), str(src / "Main.java")], check=True)
    jar = tmp_path / "demo.jar"
    subprocess.run(["jar", "cf", str(jar), "-C", str(classes), "."], check=True)
    lines: list[str] = []
    result = run_jar(jar, "demo.Main", ["upper.txt"], sink=lambda _s, line: lines.append(line), **rig)
    assert result.state == SUCCESS, result
    assert "wrote upper.txt" in lines
    assert (rig["workdir"] / "upper.txt").read_text() == "HELLO WORLD\nHELLO SPARK\n"
    failed = run_jar(jar, "demo.Main", ["fail"], **rig)
    assert failed.state == FAILED
    assert failed.error == "java.lang.IllegalStateException: asked to fail"
    assert "\tat demo.Main.main(Main.java:5)" in (failed.trace or "")
