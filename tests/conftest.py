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
from pathlib import Path

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
