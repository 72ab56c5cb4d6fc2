"""Turns an Airflow database connection into the SQLAlchemy URL a transfer's SQL end uses.

PostgreSQL (conn type ``postgres``) through psycopg2 and MySQL / MariaDB (``mysql``) through
PyMySQL. The URL carries the password: it goes to SQLAlchemy only, never to logs, XCom,
fingerprints or records (those get :attr:`SqlDatabase.server`).
"""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy.engine import URL

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.transfer.sql import SqlDatabase

#: Airflow connection type -> SQLAlchemy driver.
DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
_DEFAULT_PORTS = {"postgresql+psycopg2": 5432, "mysql+pymysql": 3306}


def sql_database(conn_id: str, field: str) -> SqlDatabase:
    """The database of the connection ``conn_id``; errors name ``field`` and the fix."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConfigurationError(
            field,
            f"no Airflow connection named {conn_id!r}",
            f"create it (airflow connections add {conn_id} --conn-uri postgresql://user@host:5432/db) or correct"
            " the connection id",
        ) from None
    driver = DRIVERS.get(str(conn.conn_type or "").lower())
    if driver is None:
        raise ConfigurationError(
            f"{field} (connection {conn_id!r})",
            f"connection type {conn.conn_type!r} is not a database a transfer can use",
            f"use a connection of type {', '.join(sorted(set(DRIVERS) - {'postgresql', 'mariadb'}))}",
        )
    if not conn.host or not conn.schema:
        raise ConfigurationError(
            f"{field} (connection {conn_id!r})",
            "the connection names no host or no database (Schema)",
            "set Host and Schema (the database name) on the connection",
        )
    url = URL.create(
        driver,
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host,
        port=conn.port or _DEFAULT_PORTS[driver],
        database=conn.schema,
        # Unicode beyond the BMP (emoji) needs MySQL's 4-byte utf8mb4, not its 3-byte "utf8".
        query={"charset": "utf8mb4"} if driver.startswith("mysql") else {},
    )
    return SqlDatabase(conn_id, url)
