"""The test session's environment: one throw-away Airflow home on a PostgreSQL database.

Importing this module sets the environment (``tests/conftest.py`` imports it first, before anything
imports Airflow). PostgreSQL (not SQLite) lets several Airflow processes run DAGs concurrently against
one metadata database, which the single-flight tests need. ``AMLPIPE_TEST_PG_URL`` overrides the server
(default: the local one).
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

from support.paths import SAMPLES

SESSION_DIR = Path(tempfile.mkdtemp(prefix="amlpipe-tests-"))
PG_SERVER = os.environ.get("AMLPIPE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
PG_DB = f"amlpipe_test_{uuid.uuid4().hex[:10]}"

AIRFLOW_HOME = SESSION_DIR / "airflow_home"
DAGS_FOLDER = SESSION_DIR / "dags"

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{PG_SERVER}/{PG_DB}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AMLPIPE_STAT_CACHE": str(SESSION_DIR / "statcache.sqlite"),
        "AIRFLOW_CONN_AMLPIPE_SAMPLES": json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(SAMPLES)}}),
    }
)
AIRFLOW_HOME.mkdir(parents=True)
DAGS_FOLDER.mkdir(parents=True)


def admin_sql(sql: str) -> None:
    """Run ``sql`` on the PostgreSQL server's ``postgres`` database (CREATE / DROP DATABASE)."""
    import psycopg2

    dsn = PG_SERVER.replace("postgresql+psycopg2://", "postgresql://") + "/postgres"
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()
