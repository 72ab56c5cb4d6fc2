"""The child process of a local Databricks run: ``python -m airflow_provider_amlpipe.databricks.child SPEC``.

``SPEC`` is a JSON file the runner wrote (kind, cells or script, parameters, folders, where to write the
result); the secrets come in the environment variable ``SECRETS_ENV``, removed before any user code runs.
The child writes one JSON result (state, exit value, error, trace, failing cell) and exits 0; an exit
without a result is a crash, which the runner reports from the process's stderr.

A notebook's globals are ``spark`` (created on first use, so a notebook that never touches Spark does not
start a JVM), ``sc``, ``dbutils``, ``display``, ``displayHTML`` and ``getArgument``; ``from pyspark.dbutils
import DBUtils`` also works and gives the same ``dbutils``.
"""

from __future__ import annotations

import ast
import builtins
import json
import linecache
import os
import re
import runpy
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.databricks.dbutils import DBUtils, NotebookExit
from airflow_provider_amlpipe.databricks.notebook import Cell, split_sql

SECRETS_ENV = "AMLPIPE_DATABRICKS_SECRETS"
_HERE = {os.path.abspath(__file__), os.path.abspath(runpy.__file__)}
_WIDGET_REF = re.compile(r"\$\{(\w+)\}")
_session: Any = None


def spark_session() -> Any:
    """The run's SparkSession, started on first use (its settings come from ``PYSPARK_SUBMIT_ARGS``)."""
    global _session
    if _session is None:
        from pyspark.sql import SparkSession

        _session = SparkSession.builder.appName("amlpipe-databricks-local").getOrCreate()
        _session.sparkContext.setLogLevel("WARN")
    return _session


class _LazySpark:
    """The ``spark`` global until first use; then the real session replaces it in the notebook's globals."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self._namespace = namespace

    def _real(self) -> Any:
        session = spark_session()
        if self._namespace.get("spark") is self:
            self._namespace["spark"] = session
        if isinstance(self._namespace.get("sc"), _LazyContext):
            self._namespace["sc"] = session.sparkContext
        return session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def __repr__(self) -> str:
        return "<SparkSession (local, started on first use)>"


class _LazyContext:
    def __init__(self, spark: _LazySpark) -> None:
        self._spark = spark

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spark._real().sparkContext, name)


def display(obj: Any, *args: Any, **kwargs: Any) -> None:
    """Print a DataFrame's rows (Spark: ``show``, untruncated, up to 1000 rows), or anything else as is."""
    if hasattr(obj, "show") and hasattr(obj, "schema"):
        obj.show(1000, truncate=False)
    elif hasattr(obj, "to_string"):
        print(obj.to_string())
    else:
        print(obj)


def _trace(error: BaseException) -> str:
    """The traceback without the runner's own frames (as a notebook user sees it)."""
    te = traceback.TracebackException.from_exception(error)
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if os.path.abspath(f.filename) not in _HERE and "importlib._bootstrap" not in f.filename]
    )
    return "".join(te.format())


def _message(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _install_pyspark_dbutils(dbutils: DBUtils) -> None:
    """``from pyspark.dbutils import DBUtils; DBUtils(spark)`` as on a Databricks cluster."""
    module = types.ModuleType("pyspark.dbutils")
    module.DBUtils = lambda spark=None: dbutils  # type: ignore[attr-defined]
    sys.modules["pyspark.dbutils"] = module


def _run_python_cell(cell: Cell, filename: str, namespace: dict[str, Any]) -> None:
    source = "\n" * (cell.code_line - 1) + cell.source
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    tree = ast.parse(source, filename, "exec")
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
        if value is not None:
            print(repr(value))


def _run_sql_cell(cell: Cell, dbutils: DBUtils) -> None:
    text = _WIDGET_REF.sub(lambda m: dbutils.widgets.get(m.group(1)), cell.source)
    result = None
    for statement in split_sql(text):
        result = spark_session().sql(statement)
    if result is not None and result.columns:
        display(result)


def run_notebook(spec: dict[str, Any], dbutils: DBUtils) -> dict[str, Any]:
    name = Path(spec["path"]).name
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    lazy = _LazySpark(namespace)
    namespace.update(
        spark=lazy,
        sc=_LazyContext(lazy),
        dbutils=dbutils,
        display=display,
        displayHTML=print,
        getArgument=dbutils.widgets.getArgument,
    )
    sys.argv = [spec["path"]]
    for data in spec["cells"]:
        cell = Cell.from_json(data)
        if cell.kind == "md":
            continue
        filename = f"{name} (cell {cell.number})"
        try:
            if cell.kind == "sql":
                _run_sql_cell(cell, dbutils)
            else:
                _run_python_cell(cell, filename, namespace)
        except NotebookExit as done:
            return {"state": "SUCCESS", "exit_value": done.value}
        except SystemExit as done:
            if done.code in (None, 0):
                return {"state": "SUCCESS"}
            return _failure(done, cell)
        except BaseException as error:
            return _failure(error, cell)
    return {"state": "SUCCESS"}


def _failure(error: BaseException, cell: Cell | None) -> dict[str, Any]:
    message = _message(error)
    if cell is not None:
        message = f"{message} (in cell {cell.number}, a %{cell.kind} cell starting at line {cell.line})"
    return {"state": "FAILED", "error": message, "trace": _trace(error), "cell": None if cell is None else cell.number}


def run_python_script(spec: dict[str, Any]) -> dict[str, Any]:
    path = str(Path(spec["path"]).resolve())
    sys.argv = [path, *spec["args"]]
    sys.path.insert(0, os.path.dirname(path))
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as done:
        if done.code not in (None, 0):
            return {"state": "FAILED", "error": f"SystemExit: {done.code}", "trace": _trace(done)}
    except BaseException as error:
        return {"state": "FAILED", "error": _message(error), "trace": _trace(error)}
    return {"state": "SUCCESS"}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    secrets = json.loads(os.environ.pop(SECRETS_ENV, "{}"))
    dbutils = DBUtils(spec.get("params", {}), dbfs_root=spec["dbfs_root"], workdir=Path.cwd(), secrets=secrets)
    _install_pyspark_dbutils(dbutils)
    try:
        result = run_notebook(spec, dbutils) if spec["kind"] == "notebook" else run_python_script(spec)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    Path(spec["result"] + ".tmp").write_text(json.dumps(result), encoding="utf-8")
    os.replace(spec["result"] + ".tmp", spec["result"])
    if _session is not None:
        try:
            _session.stop()
        except Exception as e:  # the result is written: a failing stop must not change it
            print(f"stopping Spark failed: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
