"""Test session set-up: one throw-away Airflow home per session, on a PostgreSQL database.

The environment is set at import time, before anything imports Airflow. PostgreSQL (not SQLite)
lets several Airflow processes run DAGs concurrently against one metadata database, which the
single-flight tests need. ``AMLPIPE_TEST_PG_URL`` overrides the server (default: the local one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="amlpipe-tests-"))
_PG_SERVER = os.environ.get("AMLPIPE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
_PG_DB = f"amlpipe_test_{uuid.uuid4().hex[:10]}"

AIRFLOW_HOME = _SESSION_DIR / "airflow_home"
DAGS_FOLDER = _SESSION_DIR / "dags"
SAMPLES = REPO / "dags" / "data"

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{_PG_SERVER}/{_PG_DB}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AMLPIPE_STAT_CACHE": str(_SESSION_DIR / "statcache.sqlite"),
        "AIRFLOW_CONN_AMLPIPE_SAMPLES": json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(SAMPLES)}}),
    }
)
AIRFLOW_HOME.mkdir(parents=True)
DAGS_FOLDER.mkdir(parents=True)


def _admin_sql(sql: str) -> None:
    import psycopg2

    dsn = _PG_SERVER.replace("postgresql+psycopg2://", "postgresql://") + "/postgres"
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def airflow_db() -> object:
    """A migrated metadata database for this session (dropped at the end)."""
    _admin_sql(f"CREATE DATABASE {_PG_DB}")
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield None
    from airflow import settings

    if settings.engine is not None:
        settings.engine.dispose()
    _admin_sql(f"DROP DATABASE IF EXISTS {_PG_DB} WITH (FORCE)")


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    """Azurite's Blob service for this session (installed by ``npm ci``); its connection string."""
    from azurite_server import install_problem, running_azurite

    problem = install_problem()
    if problem is not None:
        pytest.fail(problem, pytrace=False)  # never skip: a green run must have used Azurite
    with running_azurite() as conn:
        yield conn


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


# -- Spark: one JVM per test process, so one session whose working directory is known ----------------


@dataclass
class SparkRig:
    """The test session's SparkSession; ``cwd`` is the JVM's working directory, where relative paths resolve."""

    session: Any
    cwd: Path

    def reset(self) -> None:
        """An empty working directory and catalog (only ``default``, without tables), so tests cannot interfere."""
        for child in self.cwd.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        self.session.sql("USE default")
        for db in self.session.catalog.listDatabases():
            if db.name != "default":
                self.session.sql(f"DROP DATABASE `{db.name}` CASCADE")
        for table in self.session.catalog.listTables("default"):
            if not table.isTemporary:
                self.session.sql(f"DROP TABLE `default`.`{table.name}`")


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
