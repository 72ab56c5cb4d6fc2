"""``DataTransferStepOperator`` in DAGs: files and SQL, reuse, bad input, secrets kept out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.dagtools import run_dag, write_dag
from support.sqldbs import connection_env, mysql_database, pg_database  # noqa: F401 -- fixtures
from support.stores import new_blob_datastore

from airflow_provider_amlpipe import DataPath, DataTransferStepOperator, SqlDataReference
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.get_provider_info import get_provider_info
from airflow_provider_amlpipe.transfer.sql import SqlDatabase


def build(**kwargs: object) -> DataTransferStepOperator:
    from airflow.sdk import DAG

    with DAG(dag_id="t_transfer_parse", schedule=None):
        return DataTransferStepOperator(task_id="copy", **kwargs)  # type: ignore[arg-type]


SRC = DataPath("store", "raw")
TABLE = SqlDataReference("db", sql_table="orders")


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        (
            {"source_data_reference": SRC, "destination_data_reference": SRC},
            "destination_data_reference",
            "is the source",
        ),
        (
            {"source_data_reference": SRC, "destination_data_reference": DataPath("store", "raw/sub")},
            "destination_data_reference",
            "inside it",
        ),
        (
            {
                "source_data_reference": SRC,
                "destination_data_reference": SqlDataReference("db", sql_table="t", sql_query="q"),
            },
            "destination_data_reference",
            "2 of (sql_table, sql_query)",
        ),
        (
            {"source_data_reference": SqlDataReference("db"), "destination_data_reference": SRC},
            "source_data_reference",
            "none of",
        ),
        (
            {"source_data_reference": SRC, "destination_data_reference": TABLE, "source_reference_type": "directory"},
            "source_reference_type",
            "cannot be imported into a SQL table",
        ),
        (
            {"source_data_reference": DataPath("store", "a.txt"), "destination_data_reference": TABLE},
            "source_data_reference.path",
            "no extension",
        ),
        (
            {
                "source_data_reference": DataPath("store", "a.csv"),
                "destination_data_reference": SqlDataReference("db", sql_query="SELECT 1"),
            },
            "destination_data_reference",
            "only be written into a table",
        ),
        (
            {"source_data_reference": TABLE, "destination_data_reference": TABLE},
            "destination_data_reference",
            "SQL to SQL",
        ),
        (
            {"source_data_reference": "raw/", "destination_data_reference": SRC},
            "source_data_reference",
            "expected a DataPath",
        ),
        (
            {
                "source_data_reference": SRC,
                "destination_data_reference": DataPath("o", "x"),
                "source_reference_type": "folder",
            },
            "source_reference_type",
            "unknown reference type",
        ),
        (
            {
                "source_data_reference": SqlDataReference("db", sql_table="a; DROP TABLE b"),
                "destination_data_reference": SRC,
            },
            "source_data_reference.sql_table",
            "not a table name",
        ),
    ],
)
def test_parse_time_errors_name_the_field_and_the_fix(kwargs: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(**kwargs)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "Fix:" in str(caught.value)


def test_provider_lists_the_operator_and_the_adls_gen2_connection_type() -> None:
    info = get_provider_info()
    assert "airflow_provider_amlpipe.operators.transfer" in info["operators"][0]["python-modules"]
    adls = next(c for c in info["connection-types"] if c["connection-type"] == "amlpipe_adls_gen2")
    assert adls["hook-class-name"] == "airflow_provider_amlpipe.hooks.datastore.AdlsGen2DatastoreHook"
    assert {"file_system", "create_file_system"} <= set(adls["conn-fields"])


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    roots = {name: tmp_path / name for name in ("lake", "steps")}
    for name, root in roots.items():
        root.mkdir()
        conn = {"conn_type": "amlpipe_local", "extra": {"path": str(root)}}
        monkeypatch.setenv(f"AIRFLOW_CONN_XFER_{name.upper()}", json.dumps(conn))
    return roots


@pytest.mark.usefixtures("airflow_db")
def test_folder_transfer_commits_a_manifest_and_reuses_until_the_source_changes(stores: dict[str, Path]) -> None:
    raw = stores["lake"] / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "a.csv").write_text("x,y\n1,2\n")
    (raw / "sub" / "b.txt").write_text("hello")
    dag_id = "t_transfer_files"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, DataTransferStepOperator
        from airflow.sdk import Param
        with DAG(dag_id={dag_id!r}, schedule=None, params={{"folder": Param("raw", type="string")}}):
            DataTransferStepOperator(
                name="copy_raw",
                source_data_reference=DataPath("xfer_lake", "{{{{ params.folder }}}}"),
                destination_data_reference=DataPath("xfer_lake", "curated/raw_copy"),
                datastore="xfer_steps",
            )
        """,
    )
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    assert first.ran() == {"copy_raw"}
    assert (stores["lake"] / "curated" / "raw_copy" / "sub" / "b.txt").read_text() == "hello"
    ref = first.xcom("copy_raw", "output")
    manifest = json.loads((stores["steps"] / ref["path"] / "transfer.json").read_text())
    assert [f["path"] for f in manifest["files"]] == ["a.csv", "sub/b.txt"]
    assert manifest["destination"] == {"datastore": "xfer_lake", "path": "curated/raw_copy"}

    second = run_dag(dag_id)
    assert second.ran() == set()

    (raw / "a.csv").write_text("x,y\n1,3\n")
    third = run_dag(dag_id)
    assert third.ran() == {"copy_raw"}
    assert (stores["lake"] / "curated" / "raw_copy" / "a.csv").read_text() == "x,y\n1,3\n"
    assert third.xcom("copy_raw", "output")["version"] == 2


@pytest.mark.usefixtures("airflow_db")
def test_postgres_to_file_to_mariadb_reuses_by_change_marker(
    stores: dict[str, Path],
    pg_database: SqlDatabase,  # noqa: F811
    mysql_database: SqlDatabase,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret = "s3cr3t-Xfer-pw"
    for conn_id, db, password in (("xfer_pg", pg_database, secret), ("xfer_my", mysql_database, None)):
        for key, value in connection_env(conn_id, db, password).items():
            monkeypatch.setenv(key, value)
    with pg_database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id int PRIMARY KEY, item text, price numeric(8,2), day date)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1, 'Äpfel', 1.50, '2024-05-01'), (2, NULL, 20.00, NULL)")
    with mysql_database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id int PRIMARY KEY, item varchar(50), price decimal(8,2), day date)")
    dag_id = "t_transfer_sql"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, DataTransferStepOperator, SqlDataReference
        with DAG(dag_id={dag_id!r}, schedule=None):
            export = DataTransferStepOperator(
                task_id="export",
                source_data_reference=SqlDataReference("xfer_pg", sql_table="orders"),
                destination_data_reference=DataPath("xfer_lake", "exports/orders.csv"),
                datastore="xfer_steps",
            )
            load = DataTransferStepOperator(
                task_id="load",
                source_data_reference=DataPath("xfer_lake", "exports/orders.csv"),
                destination_data_reference=SqlDataReference("xfer_my", sql_table="orders"),
                datastore="xfer_steps",
            )
            export >> load
        """,
    )
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    assert first.ran() == {"export", "load"}

    def loaded() -> list[tuple[object, ...]]:
        with mysql_database.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT id, item, price, day FROM orders ORDER BY id"))]

    rows = loaded()
    assert [(r[0], r[1], str(r[2]), str(r[3])) for r in rows] == [
        (1, "Äpfel", "1.50", "2024-05-01"),
        (2, None, "20.00", "None"),
    ]
    assert run_dag(dag_id).ran() == set()  # nothing changed: neither table nor file is read again
    with pg_database.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO orders VALUES (3, 'Birne', 0.99, '2024-05-02')")
    third = run_dag(dag_id)
    # The export reran (its marker changed); its new file changed the load's fingerprint. The load
    # appends all three rows again and fails on the primary key: the table keeps its two rows.
    assert third.ran() >= {"export"}
    assert third.task_states["load"] == "failed"
    assert len(loaded()) == 2
    out = capfd.readouterr()
    assert secret not in out.out + out.err and "postgres@" not in out.out + out.err
    for path in stores["steps"].rglob("*"):  # records, manifests, journals, registry
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path
    assert secret not in json.dumps(first.statuses) + json.dumps(first.xcom("export", "output"))


def test_unknown_connection_or_type_is_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_amlpipe.hooks.sql_database import sql_database

    with pytest.raises(ConfigurationError, match="no Airflow connection named 'xfer_nowhere'") as caught:
        sql_database("xfer_nowhere", "source_data_reference.connection")
    assert caught.value.field == "source_data_reference.connection"
    monkeypatch.setenv("AIRFLOW_CONN_XFER_LITE", json.dumps({"conn_type": "sqlite", "host": "/tmp/x.db"}))
    with pytest.raises(ConfigurationError, match="'sqlite' is not a database a transfer can use"):
        sql_database("xfer_lite", "destination_data_reference.connection")
    monkeypatch.setenv("AIRFLOW_CONN_XFER_NODB", json.dumps({"conn_type": "postgres", "host": "127.0.0.1"}))
    with pytest.raises(ConfigurationError, match="no database"):
        sql_database("xfer_nodb", "destination_data_reference.connection")


def test_a_datastore_kind_the_transfer_cannot_write_is_refused(tmp_path: Path) -> None:
    from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore
    from airflow_provider_amlpipe.steps.transfer import DataTransferStep

    def untouched(*args: object, **kwargs: object) -> object:
        raise AssertionError("nothing may be read from or written to it")

    class Archive(Datastore):
        """Stands for a datastore kind added later that transfers do not handle."""

        read_bytes = write_bytes = exists = stat = list = delete = upload_file = download_file = url = untouched

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.csv").write_text("a\n1\n")
    stores: dict[str, Datastore] = {"lake": LocalDatastore("lake", tmp_path), "archive": Archive("archive")}
    step = DataTransferStep(
        source=DataPath("lake", "raw"),
        destination=DataPath("archive", "copy"),
        source_type=None,
        destination_type=None,
        stores=lambda conn_id, field: stores[conn_id],
        databases=lambda conn_id, field: pytest.fail("no database here"),
        journal_store=stores["lake"],
    )
    with pytest.raises(ConfigurationError, match="a kind of datastore a transfer cannot read or write") as caught:
        step.validate([], ["output"])
    assert caught.value.field == "destination_data_reference.datastore"


def test_blob_source_is_fingerprinted_by_etags_without_reading_its_bytes(
    azurite_connection_string: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.storage.blob import ContainerClient

    from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore
    from airflow_provider_amlpipe.hashing import Hasher, StatCache
    from airflow_provider_amlpipe.steps.transfer import DataTransferStep

    blob = new_blob_datastore(azurite_connection_string, "fp")
    blob.write_bytes("raw/a.csv", b"a\n1\n")
    blob.write_bytes("raw/b.csv", b"b\n2\n")
    stores: dict[str, Datastore] = {"blob": blob, "lake": LocalDatastore("lake", tmp_path / "lake")}
    step = DataTransferStep(
        source=DataPath("blob", "raw"),
        destination=DataPath("lake", "copy"),
        source_type=None,
        destination_type=None,
        stores=lambda conn_id, field: stores[conn_id],
        databases=lambda conn_id, field: pytest.fail("no database here"),
        journal_store=stores["lake"],
    )
    hasher = Hasher(StatCache(tmp_path / "cache.sqlite"))

    def no_reads(*args: object, **kwargs: object) -> object:
        raise AssertionError("the source's bytes were read to fingerprint it")

    with monkeypatch.context() as patched:
        patched.setattr(ContainerClient, "download_blob", no_reads)
        step.validate([], ["output"])
        first = step.fingerprint_parts(hasher)
        assert step.fingerprint_parts(hasher) == first
        blob.write_bytes("raw/b.csv", b"b\n3\n")  # same size, new ETag
        assert step.fingerprint_parts(hasher)["source"]["digest"] != first["source"]["digest"]
    blob.container_client.delete_container()


def test_a_blob_source_is_listed_once_and_copied_as_its_fingerprint_listed_it(
    azurite_connection_string: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transfer copies the versions the fingerprint listed, without listing the source again; a blob
    rewritten after the decision fails its pinned copy instead of landing under a fingerprint that does
    not describe it."""
    import logging

    from airflow_provider_amlpipe.data.datastore import LocalDatastore
    from airflow_provider_amlpipe.errors import StepFailedError
    from airflow_provider_amlpipe.hashing import Hasher, StatCache
    from airflow_provider_amlpipe.steps.runner import StepWorkspace
    from airflow_provider_amlpipe.steps.transfer import MANIFEST, DataTransferStep

    blob = new_blob_datastore(azurite_connection_string, "once")
    for name in ("a", "b", "c"):
        blob.write_bytes(f"raw/{name}.csv", f"{name}\n1\n".encode())
    listed: list[str] = []
    real_list_stats = blob.list_stats
    monkeypatch.setattr(blob, "list_stats", lambda prefix: (listed.append(prefix), real_list_stats(prefix))[1])
    hasher = Hasher(StatCache(tmp_path / "cache.sqlite"))

    def step_into(destination: str) -> DataTransferStep:
        step = DataTransferStep(
            source=DataPath("blob", "raw"),
            destination=DataPath("blob", destination),
            source_type=None,
            destination_type=None,
            stores=lambda conn_id, field: blob,
            databases=lambda conn_id, field: pytest.fail("no database here"),
            journal_store=LocalDatastore("steps", tmp_path / "steps"),
        )
        step.validate([], ["output"])
        step.fingerprint_parts(hasher)
        return step

    def run(step: DataTransferStep, name: str) -> dict[str, object]:
        out = tmp_path / name / "output"
        out.mkdir(parents=True)
        workspace = StepWorkspace(tmp_path / name, {}, {"output": out}, tmp_path / "m.json", tmp_path / "c.json")
        step.execute(workspace, "output", logging.getLogger("transfer-once"))
        return json.loads((out / MANIFEST).read_text())

    step = step_into("copy")
    manifest = run(step, "first")
    assert listed == ["raw"]  # by the fingerprint; the transfer used that listing
    assert [f["path"] for f in manifest["files"]] == ["a.csv", "b.csv", "c.csv"]  # type: ignore[index]
    assert blob.read_bytes("copy/b.csv") == b"b\n1\n"

    late = step_into("copy-late")
    blob.write_bytes("raw/b.csv", b"b\n2\n")  # after the decision, before the copy
    with pytest.raises(StepFailedError, match=r"'raw/b\.csv' in .* changed after the transfer listed it"):
        run(late, "late")
    assert not blob.exists("copy-late/b.csv")
    blob.container_client.delete_container()


@pytest.mark.parametrize(
    ("source", "destination", "field", "words"),
    [
        (
            DataPath("lake", "raw.csv"),
            SqlDataReference("db", sql_table="t"),
            "source_data_reference.path",
            "a directory",
        ),
        (
            SqlDataReference("db", sql_table="t"),
            DataPath("lake", "raw.csv"),
            "destination_data_reference.path",
            "a folder",
        ),
        (
            DataPath("lake", "none.csv"),
            SqlDataReference("db", sql_table="t"),
            "source_data_reference.path",
            "does not exist",
        ),
    ],
)
def test_run_time_errors_come_before_any_database_is_touched(
    tmp_path: Path, source: object, destination: object, field: str, words: str
) -> None:
    from airflow_provider_amlpipe.data.datastore import LocalDatastore
    from airflow_provider_amlpipe.steps.transfer import DataTransferStep

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.csv").write_text("a\n1\n")
    (tmp_path / "raw.csv").mkdir()  # a folder with a file's name
    (tmp_path / "raw.csv" / "x").write_text("x")
    lake = LocalDatastore("lake", tmp_path)
    step = DataTransferStep(
        source=source,  # type: ignore[arg-type]
        destination=destination,  # type: ignore[arg-type]
        source_type=None,
        destination_type=None,
        stores=lambda conn_id, field: lake,
        databases=lambda conn_id, field: pytest.fail("the database was contacted before the error"),
        journal_store=lake,
    )
    with pytest.raises(ConfigurationError, match=words) as caught:
        step.validate([], ["output"])
    assert caught.value.field == field


def test_the_same_place_through_two_connections_is_refused(tmp_path: Path) -> None:
    from airflow_provider_amlpipe.data.datastore import LocalDatastore
    from airflow_provider_amlpipe.steps.transfer import DataTransferStep

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.csv").write_text("a\n1\n")
    stores = {"one": LocalDatastore("one", tmp_path), "two": LocalDatastore("two", tmp_path / "raw")}
    step = DataTransferStep(
        source=DataPath("one", "raw"),
        destination=DataPath("two", "copy"),
        source_type=None,
        destination_type=None,
        stores=lambda conn_id, field: stores[conn_id],
        databases=lambda conn_id, field: pytest.fail("no database here"),
        journal_store=stores["one"],
    )
    with pytest.raises(ConfigurationError, match="through another connection to the same place"):
        step.validate([], ["output"])
    assert not (tmp_path / "raw" / "copy").exists()
