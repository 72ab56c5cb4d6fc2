"""Test session set-up: one throw-away Airflow home per session, on a PostgreSQL database (support/session.py).

The environment is set when support.session is imported, before anything imports Airflow. PostgreSQL (not SQLite)
lets several Airflow processes run DAGs concurrently against one metadata database, which the
single-flight tests need. ``AMLPIPE_TEST_PG_URL`` overrides the server (default: the local one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# First: the session's environment must be set before anything imports Airflow.
from support.session import PG_DB, SESSION_DIR, admin_sql  # isort: skip
from support.spark import SparkRig


@pytest.fixture(scope="session")
def airflow_db() -> object:
    """A migrated metadata database for this session (dropped at the end)."""
    admin_sql(f"CREATE DATABASE {PG_DB}")
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield None
    from airflow import settings

    if settings.engine is not None:
        settings.engine.dispose()
    admin_sql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    """Azurite's Blob service for this session (installed by ``npm ci``); its connection string."""
    from support.azurite_server import install_problem, running_azurite

    problem = install_problem()
    if problem is not None:
        pytest.fail(problem, pytrace=False)  # never skip: a green run must have used Azurite
    with running_azurite() as conn:
        yield conn


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


# -- Spark: one JVM per test process, so one session whose working directory is known ----------------


@pytest.fixture(scope="session")
def spark_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkRig]:
    """One local SparkSession for all tests, its tables in a temporary warehouse (an in-memory catalog)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.skip("pyspark is not installed (pip install -e .[test] installs it)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime for Spark (java not on PATH, JAVA_HOME unset)")
    root = tmp_path_factory.mktemp("spark")
    cwd = root / "cwd"
    cwd.mkdir()
    old = Path.cwd()
    os.chdir(cwd)  # the JVM starts here, so relative paths in the scripts resolve in cwd
    try:
        session = (
            SparkSession.builder.master("local[1]")
            .appName("usql-spark-test")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.warehouse.dir", str(root / "warehouse"))
            .getOrCreate()
        )
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"a local SparkSession could not be started: {type(e).__name__}: {str(e)[:200]}")
    finally:
        os.chdir(old)
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield SparkRig(session, cwd)
    finally:
        session.stop()
