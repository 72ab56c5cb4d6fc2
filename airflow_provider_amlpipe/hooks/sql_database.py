"""Turns an Airflow database connection into the SQLAlchemy URL a transfer's SQL end uses.

PostgreSQL (conn type ``postgres``) through psycopg2, MySQL / MariaDB (``mysql``) through PyMySQL,
and SQL Server / Azure SQL (``mssql``, the type of apache-airflow-providers-microsoft-mssql) through
pymssql, or pyodbc when the connection's extra says ``"sqlalchemy_scheme": "mssql+pyodbc"`` (with
``"driver"``: the ODBC driver's name). The URL carries the password: it goes to SQLAlchemy only,
never to logs, XCom, fingerprints or records (those get :attr:`SqlDatabase.server`).
"""

from __future__ import annotations

from typing import Any

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
    "mssql": "mssql+pymssql",
}
#: The conn types named in errors (the others are aliases).
_TYPES = ("postgres", "mysql", "mssql")
#: SQL Server drivers a connection's ``sqlalchemy_scheme`` extra may choose.
MSSQL_SCHEMES = ("mssql+pymssql", "mssql+pyodbc")
ODBC_DRIVER = "ODBC Driver 18 for SQL Server"
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


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
    where = f"{field} (connection {conn_id!r})"
    driver = DRIVERS.get(str(conn.conn_type or "").lower())
    if driver is None:
        raise ConfigurationError(
            where,
            f"connection type {conn.conn_type!r} is not a database a transfer can use",
            f"use a connection of type {', '.join(_TYPES)}",
        )
    if not conn.host or not conn.schema:
        raise ConfigurationError(
            where,
            "the connection names no host or no database (Schema)",
            "set Host and Schema (the database name) on the connection",
        )
    return SqlDatabase(
        conn_id,
        database_url(
            driver,
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            database=conn.schema,
            extra=conn.extra_dejson,
            field=where,
        ),
    )


def database_url(
    driver: str,
    *,
    host: str,
    port: int | None,
    login: str | None,
    password: str | None,
    database: str,
    extra: dict[str, Any],
    field: str,
) -> URL:
    """The SQLAlchemy URL of a connection's fields (``driver`` from :data:`DRIVERS`)."""
    query: dict[str, str] = {}
    if driver.startswith("mysql"):
        # Unicode beyond the BMP (emoji) needs MySQL's 4-byte utf8mb4, not its 3-byte "utf8".
        query["charset"] = "utf8mb4"
    elif driver.startswith("mssql"):
        driver = str(extra.get("sqlalchemy_scheme") or driver)
        if driver not in MSSQL_SCHEMES:
            raise ConfigurationError(
                f"{field}.extra.sqlalchemy_scheme",
                f"{driver!r} is not a SQL Server driver a transfer can use",
                f"use one of {', '.join(MSSQL_SCHEMES)} (or leave it out: pymssql)",
            )
        if driver == "mssql+pyodbc":
            query["driver"] = str(extra.get("driver") or ODBC_DRIVER)
        else:
            query["charset"] = "utf8"  # how pymssql decodes CHAR/VARCHAR; NCHAR/NVARCHAR are UTF-16 anyway
    return URL.create(
        driver,
        username=login or None,
        password=password or None,
        host=host,
        port=port or _DEFAULT_PORTS[driver.split("+")[0]],
        database=database,
        query=query,
    )
