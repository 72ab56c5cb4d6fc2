"""Throw-away databases on the machine's PostgreSQL and MariaDB servers, for transfer tests.

Each fixture creates a database of its own and drops it afterwards. The servers come from
``AMLPIPE_TEST_PG_URL`` / ``AMLPIPE_TEST_MYSQL_URL`` (defaults: the local ones, trust / no password).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from airflow_provider_amlpipe.transfer.sql import SqlDatabase

PG_SERVER = os.environ.get("AMLPIPE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
MYSQL_SERVER = os.environ.get("AMLPIPE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")


def _admin(server: str, sql: str, database: str | None) -> None:
    engine = sa.create_engine(sa.make_url(server).set(database=database), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _database(server: str, admin_db: str | None, drop_suffix: str) -> Iterator[SqlDatabase]:
    name = f"amlpipe_xfer_{uuid.uuid4().hex[:10]}"
    _admin(server, f"CREATE DATABASE {name}", admin_db)
    url = sa.make_url(server).set(database=name)
    if url.get_backend_name() == "mysql":
        url = url.update_query_dict({"charset": "utf8mb4"})
    db = SqlDatabase(f"db_{name}", url)
    try:
        yield db
    finally:
        db.dispose()
        _admin(server, f"DROP DATABASE IF EXISTS {name}{drop_suffix}", admin_db)


@pytest.fixture(params=["postgresql", "mysql"])
def database(request: pytest.FixtureRequest) -> Iterator[SqlDatabase]:
    """A new, empty database on PostgreSQL, then on MariaDB."""
    if request.param == "postgresql":
        yield from _database(PG_SERVER, "postgres", " WITH (FORCE)")
    else:
        yield from _database(MYSQL_SERVER, None, "")


@pytest.fixture
def pg_database() -> Iterator[SqlDatabase]:
    yield from _database(PG_SERVER, "postgres", " WITH (FORCE)")


@pytest.fixture
def mysql_database() -> Iterator[SqlDatabase]:
    yield from _database(MYSQL_SERVER, None, "")


def connection_env(conn_id: str, db: SqlDatabase, password: str | None = None) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` naming ``db`` as an Airflow connection (``password``: sent, and ignored by
    a server with trust authentication: a secret that must never show up anywhere)."""
    url = db.url
    conn_type = "postgres" if url.get_backend_name() == "postgresql" else "mysql"
    connection = {
        "conn_type": conn_type,
        "host": url.host,
        "port": url.port,
        "login": url.username,
        "schema": url.database,
        "password": password,
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)}
