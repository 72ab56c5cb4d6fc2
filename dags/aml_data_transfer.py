"""AML notebook "data transfer", ported: files between datastores, into and out of SQL databases.

The notebook moved data Blob -> ADLS Gen2 -> Azure SQL / PostgreSQL / MySQL with DataTransferStep
on Data Factory. Here every copy is a ``DataTransferStepOperator`` running on the worker, and the
whole DAG runs on one machine: the ``amlpipe_samples`` folder stands in for the Blob container, the
default datastore's ``lake/`` folder for the ADLS Gen2 filesystem (point ``LAKE`` at an
``amlpipe_azure_blob`` connection to use Azure for real), and the databases are the machine's
PostgreSQL and MariaDB:

    airflow connections add amlpipe_samples --conn-type amlpipe_local --conn-extra '{"path": "<repo>/dags/data"}'
    airflow connections add amlpipe_transfer_pg --conn-uri postgres://postgres@127.0.0.1:5432/amlpipe_demo
    airflow connections add amlpipe_transfer_mysql --conn-uri mysql://root@127.0.0.1:3306/amlpipe_demo

(create the ``amlpipe_demo`` databases first). The last step, ``reconcile``, consumes both exports: the
transfer steps' outputs are its inputs. A rerun reuses every step: the files, the tables' rows and the
queries' results are unchanged, so nothing is read or copied again.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_amlpipe import (
    DataPath,
    DataTransferStepOperator,
    Output,
    PythonScriptStepOperator,
    SqlDataReference,
)

SAMPLES = "amlpipe_samples"
LAKE = "amlpipe_default"
POSTGRES = "amlpipe_transfer_pg"
MARIADB = "amlpipe_transfer_mysql"
ORDERS_TABLE = """CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, customer VARCHAR(100) NOT NULL, item VARCHAR(100) NOT NULL,
    amount DECIMAL(10, 2), order_date DATE)"""

with DAG(
    dag_id="aml_data_transfer",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example"],
    doc_md=__doc__,
):

    @task
    def create_tables() -> None:
        """The import steps append to existing tables, as AML's did: make sure they exist."""
        from airflow_provider_amlpipe.hooks.sql_database import sql_database

        for conn_id in (POSTGRES, MARIADB):
            db = sql_database(conn_id, "create_tables")
            with db.engine.begin() as conn:
                conn.exec_driver_sql(ORDERS_TABLE)
            db.dispose()

    # Blob -> ADLS Gen2 in the notebook: a folder copied file by file, verified, resumable.
    blob_to_adls = DataTransferStepOperator(
        name="transfer_blob_to_adls",
        source_data_reference=DataPath(SAMPLES, "transfer"),
        destination_data_reference=DataPath(LAKE, "lake/landing"),
        source_reference_type="directory",
        destination_reference_type="directory",
    )
    # ADLS Gen2 -> SQL: the CSV's header names the table's columns; rows are appended in one transaction.
    adls_to_postgres = DataTransferStepOperator(
        name="transfer_adls_to_postgres",
        source_data_reference=DataPath(LAKE, "lake/landing/orders.csv"),
        destination_data_reference=SqlDataReference(POSTGRES, sql_table="orders"),
    )
    adls_to_mariadb = DataTransferStepOperator(
        name="transfer_adls_to_mariadb",
        source_data_reference=DataPath(LAKE, "lake/landing/orders.csv"),
        destination_data_reference=SqlDataReference(MARIADB, sql_table="orders"),
    )
    # SQL -> Blob: a query's result as Parquet, a table as CSV.
    postgres_to_blob = DataTransferStepOperator(
        name="transfer_postgres_query_to_blob",
        source_data_reference=SqlDataReference(
            POSTGRES,
            sql_query="SELECT customer, count(*) AS orders, sum(amount) AS total FROM orders GROUP BY customer",
        ),
        destination_data_reference=DataPath(LAKE, "exports/customer_totals.parquet"),
    )
    mariadb_to_blob = DataTransferStepOperator(
        name="transfer_mariadb_table_to_blob",
        source_data_reference=SqlDataReference(MARIADB, sql_table="orders"),
        destination_data_reference=DataPath(LAKE, "exports/orders_from_mariadb.csv"),
    )

    # get_output() in AML: each transfer's output is an input of the step that consumes its data.
    reconcile = PythonScriptStepOperator(
        task_id="reconcile",
        source_directory=str(Path(__file__).parent / "scripts" / "data_transfer"),
        script_name="reconcile.py",
        arguments=[
            "--totals",
            "{inputs.totals}",
            "--orders",
            "{inputs.orders}",
            "--manifests",
            "{inputs.pg_export}",
            "{inputs.mariadb_export}",
            "--report",
            Output("report"),
        ],
        inputs={
            "totals": DataPath(LAKE, "exports/customer_totals.parquet"),
            "orders": DataPath(LAKE, "exports/orders_from_mariadb.csv"),
            "pg_export": postgres_to_blob.output,
            "mariadb_export": mariadb_to_blob.output,
        },
        outputs=[Output("report")],
    )

    tables = create_tables()
    blob_to_adls >> [adls_to_postgres, adls_to_mariadb]
    tables >> [adls_to_postgres, adls_to_mariadb]
    adls_to_postgres >> postgres_to_blob
    adls_to_mariadb >> mariadb_to_blob
