"""ADLS Gen2 datastores (``amlpipe_adls_gen2``) against a local DFS-protocol server, in transfers."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import ContainerClient
from support.dfs_server import ACCOUNT, KEY, Dfs, running_dfs
from support.stores import new_blob_datastore

from airflow_provider_amlpipe.data.adls_gen2 import AdlsGen2Datastore
from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.errors import NotFoundError, StepFailedError
from airflow_provider_amlpipe.transfer.files import FileEnd, FileTransfer
from airflow_provider_amlpipe.transfer.journal import Journal

LOG = logging.getLogger("transfer-adls-test")


@pytest.fixture
def dfs() -> Iterator[tuple[str, Dfs]]:
    with running_dfs() as served:
        yield served


@pytest.fixture
def lake(dfs: tuple[str, Dfs]) -> AdlsGen2Datastore:
    return AdlsGen2Datastore.from_settings(
        "lake", file_system="lake", account_url=dfs[0], account_key=KEY, create_file_system=True
    )


def test_the_datastore_contract(lake: AdlsGen2Datastore, tmp_path: Path) -> None:
    assert lake.write_bytes("a/b.txt", b"hello")
    assert not lake.write_bytes("a/b.txt", b"other", if_absent=True)  # create-if-absent: one winner
    assert lake.read_bytes("a/b.txt") == b"hello"
    assert lake.write_bytes("a/b.txt", b"replaced")
    assert lake.read_bytes("a/b.txt") == b"replaced"
    assert lake.exists("a/b.txt") and not lake.exists("a") and lake.has_folder("a")
    assert lake.stat("a/b.txt").size == 8
    assert list(lake.list("a")) == ["a/b.txt"] and set(lake.list_stats("a")) == {"a/b.txt"}
    assert lake.content_md5("a/b.txt") == hashlib.md5(b"replaced").hexdigest()
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5_000_000))
    lake.upload_file(big, "c/big.bin")
    lake.download_file("c/big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    lake.delete("a/b.txt")
    assert not lake.exists("a/b.txt")
    with pytest.raises(NotFoundError):
        lake.read_bytes("a/b.txt")
    assert "key" not in lake.describe().lower() and lake.url("c/big.bin").endswith("/lake/c/big.bin")


def test_a_new_folder_is_published_by_one_rename_and_reruns_copy_nothing(
    lake: AdlsGen2Datastore, dfs: tuple[str, Dfs], tmp_path: Path
) -> None:
    state = dfs[1]
    local = LocalDatastore("local", tmp_path / "local")
    contents = {f"raw/{name}": os.urandom(size) for name, size in (("a.bin", 1000), ("sub/b.bin", 300_000))}
    for key, data in contents.items():
        (local.root / key).parent.mkdir(parents=True, exist_ok=True)
        (local.root / key).write_bytes(data)
    journal = Journal(LocalDatastore("steps", tmp_path / "steps"), "pair")
    done = FileTransfer(
        FileEnd(local, "raw", "directory"), FileEnd(lake, "landing/raw", "directory"), journal, LOG
    ).run()
    assert [v.path for v in done] == ["a.bin", "sub/b.bin"]
    for v in done:
        data = contents[f"raw/{v.path}"]
        assert v.digest == "md5:" + hashlib.md5(data).hexdigest()
        assert lake.read_bytes(f"landing/raw/{v.path}") == data
    # Files were written under a partial folder, which became the destination in one rename.
    source, target = state.renames[-1]
    assert target == "landing/raw" and source.startswith("landing/.amlpipe-partial-raw-")
    assert not any(".amlpipe-partial-" in p for p in state.systems["lake"])
    written = dict(state.written)

    again = FileTransfer(
        FileEnd(local, "raw", "directory"), FileEnd(lake, "landing/raw", "directory"), journal, LOG
    ).run()
    assert [v.digest for v in again] == [v.digest for v in done]
    assert dict(state.written) == written  # nothing sent again: the journal still matches

    (local.root / "raw" / "a.bin").write_bytes(b"changed")
    FileTransfer(FileEnd(local, "raw", "directory"), FileEnd(lake, "landing/raw", "directory"), journal, LOG).run()
    assert lake.read_bytes("landing/raw/a.bin") == b"changed"
    sent = {p: n - written.get(p, 0) for p, n in state.written.items() if n != written.get(p, 0)}
    assert list(sent.values()) == [len(b"changed")]  # only the changed file, through a temporary file


def test_between_adls_blob_and_local(
    lake: AdlsGen2Datastore,
    dfs: tuple[str, Dfs],
    azurite_connection_string: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blob = new_blob_datastore(azurite_connection_string, "adls")
    payload = os.urandom(200_000)
    blob.write_bytes("in/x.bin", payload)
    to_lake = FileTransfer(FileEnd(blob, "in", "directory"), FileEnd(lake, "from-blob", "directory"), None, LOG).run()
    assert lake.read_bytes("from-blob/x.bin") == payload
    # Blob to ADLS Gen2 is a service-side copy from a signed URL: no byte went through an append.
    assert sum(dfs[1].written.values()) == 0
    # ADLS Gen2 to Blob is tried service-side too; Azurite copies within itself only, so it refuses to
    # read another server's URL (as a storage firewall would), and the file goes through this worker.
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        back = FileTransfer(
            FileEnd(lake, "from-blob", "directory"), FileEnd(blob, "back", "directory"), None, LOG
        ).run()
    assert blob.read_bytes("back/x.bin") == payload
    assert any("files go through this worker instead" in r.getMessage() for r in caplog.records)
    local = LocalDatastore("local", tmp_path)
    down = FileTransfer(FileEnd(lake, "from-blob/x.bin", "file"), FileEnd(local, "x.bin", "file"), None, LOG).run()
    assert (tmp_path / "x.bin").read_bytes() == payload
    assert {v.digest for v in (*to_lake, *back, *down)} == {"md5:" + hashlib.md5(payload).hexdigest()}
    blob.container_client.delete_container()


def test_the_connection_type_builds_the_datastore(dfs: tuple[str, Dfs], monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_amlpipe.errors import ConfigurationError
    from airflow_provider_amlpipe.hooks.datastore import AmlDatastoreHook

    connection = {
        "conn_type": "amlpipe_adls_gen2",
        "host": dfs[0],
        "password": KEY,
        "extra": {"file_system": "fs1", "create_file_system": True},
    }
    monkeypatch.setenv("AIRFLOW_CONN_XFER_ADLS", json.dumps(connection))
    store = AmlDatastoreHook("xfer_adls").get_conn()
    assert isinstance(store, AdlsGen2Datastore)
    store.write_bytes("k", b"v")
    assert "fs1" in dfs[1].systems and KEY not in repr(store.describe())
    monkeypatch.setenv("AIRFLOW_CONN_XFER_ADLS_BAD", json.dumps({**connection, "extra": {}}))
    with pytest.raises(ConfigurationError, match="no file system given"):
        AmlDatastoreHook("xfer_adls_bad").get_conn()


def test_an_interrupted_folder_resumes_in_its_partial_folder(
    lake: AdlsGen2Datastore, dfs: tuple[str, Dfs], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = dfs[1]
    local = LocalDatastore("local", tmp_path / "local")
    for name in ("a.bin", "b.bin", "c.bin"):
        (local.root / "raw").mkdir(parents=True, exist_ok=True)
        (local.root / "raw" / name).write_bytes(os.urandom(50_000))
    journal = Journal(LocalDatastore("steps", tmp_path / "steps"), "pair")
    real = AdlsGen2Datastore.upload_verified

    def failing(self: AdlsGen2Datastore, path: Path, key: str) -> tuple[str, str]:
        if key.endswith("b.bin"):
            raise OSError("connection reset")
        return real(self, path, key)

    monkeypatch.setattr(AdlsGen2Datastore, "upload_verified", failing)
    with pytest.raises(OSError, match="connection reset"):
        FileTransfer(
            FileEnd(local, "raw", "directory"), FileEnd(lake, "out", "directory"), journal, LOG, workers=1
        ).run()
    assert not lake.has_folder("out")  # nothing is visible at the destination yet
    sent_before = sum(state.written.values())
    monkeypatch.undo()
    done = FileTransfer(FileEnd(local, "raw", "directory"), FileEnd(lake, "out", "directory"), journal, LOG).run()
    assert [v.path for v in done] == ["a.bin", "b.bin", "c.bin"]
    # Only b.bin (and c.bin, if the failure stopped the run before it) went out again.
    resent = sum(state.written.values()) - sent_before
    assert resent in (50_000, 100_000)
    for name in ("a.bin", "b.bin", "c.bin"):
        assert lake.read_bytes(f"out/{name}") == (local.root / "raw" / name).read_bytes()


@pytest.mark.usefixtures("airflow_db")
def test_a_dag_transfers_into_adls_and_keeps_its_records_there(
    dfs: tuple[str, Dfs], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support.dagtools import run_dag, write_dag

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.csv").write_text("x\n1\n")
    adls = {"conn_type": "amlpipe_adls_gen2", "host": dfs[0], "password": KEY}
    adls["extra"] = {"file_system": "dagfs", "create_file_system": True}  # type: ignore[assignment]
    monkeypatch.setenv("AIRFLOW_CONN_XFER_DAG_ADLS", json.dumps(adls))
    local = {"conn_type": "amlpipe_local", "extra": {"path": str(tmp_path)}}
    monkeypatch.setenv("AIRFLOW_CONN_XFER_DAG_LOCAL", json.dumps(local))
    dag_id = "t_transfer_adls"
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, DataTransferStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            DataTransferStepOperator(
                task_id="to_lake",
                source_data_reference=DataPath("xfer_dag_local", "raw"),
                destination_data_reference=DataPath("xfer_dag_adls", "landing"),
                datastore="xfer_dag_adls",
            )
        """,
    )
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    store = AdlsGen2Datastore.from_settings("check", file_system="dagfs", account_url=dfs[0], account_key=KEY)
    assert store.read_bytes("landing/a.csv") == b"x\n1\n"
    ref = first.xcom("to_lake", "output")
    assert json.loads(store.read_bytes(f"{ref['path']}/transfer.json"))["files"][0]["path"] == "a.csv"
    assert run_dag(dag_id).ran() == set()


def test_adls_to_adls_and_to_blob_are_copied_by_the_service(lake: AdlsGen2Datastore, dfs: tuple[str, Dfs]) -> None:
    url, state = dfs
    other = AdlsGen2Datastore.from_settings(
        "other", file_system="other", account_url=url, account_key=KEY, create_file_system=True
    )
    AdlsGen2Datastore.from_settings(
        "c", file_system="blobfs", account_url=url, account_key=KEY, create_file_system=True
    )
    # A Blob datastore on the same (hierarchical-namespace) account, through its Blob endpoint.
    blob = AzureBlobDatastore(
        "blob", ContainerClient.from_container_url(f"{url}/blobfs", credential=AzureNamedKeyCredential(ACCOUNT, KEY))
    )
    contents = {"a.bin": os.urandom(70_000), "sub/b.bin": os.urandom(5_000), "sub/empty.bin": b""}
    for rel, data in contents.items():
        lake.write_bytes(f"raw/{rel}", data)
    for destination in (FileEnd(other, "landing", "directory"), FileEnd(blob, "mirror", "directory")):
        written, served, copied = sum(state.written.values()), state.served, sum(state.copied.values())
        done = FileTransfer(FileEnd(lake, "raw", "directory"), destination, None, LOG).run()
        # No byte left the service: nothing downloaded, nothing appended; the service copied each file.
        assert (sum(state.written.values()), state.served) == (written, served)
        assert sum(state.copied.values()) - copied == sum(len(d) for d in contents.values())
        assert {v.path: v.digest for v in done} == {
            rel: "md5:" + hashlib.md5(data).hexdigest() for rel, data in contents.items()
        }
        for rel, data in contents.items():
            assert destination.store.read_bytes(f"{destination.key}/{rel}") == data
    assert not any(".amlpipe-partial-" in p or p.startswith(".amlpipe-tmp/") for p in state.systems["other"])


def test_a_service_side_copy_is_pinned_to_the_listed_version(lake: AdlsGen2Datastore, dfs: tuple[str, Dfs]) -> None:
    from azure.core.exceptions import HttpResponseError

    other = AdlsGen2Datastore.from_settings(
        "other", file_system="other", account_url=dfs[0], account_key=KEY, create_file_system=True
    )
    lake.write_bytes("raw/a.bin", b"first")
    listed = lake.stat("raw/a.bin").marker
    lake.write_bytes("raw/a.bin", b"second")  # changed between the listing and the copy
    url = lake.blob_client("raw/a.bin").url
    with pytest.raises(HttpResponseError) as caught:
        other.copy_from_url(url, "a.bin", 6, lambda: False, source_etag=listed)
    assert caught.value.error_code == "SourceConditionNotMet"
    assert not other.exists("a.bin")
    digest, _ = other.copy_from_url(url, "a.bin", 6, lambda: False, source_etag=lake.stat("raw/a.bin").marker)
    assert other.read_bytes("a.bin") == b"second" and digest == "md5:" + hashlib.md5(b"second").hexdigest()
    # In a transfer: a source changed since it was listed fails the step with what to do, not an SDK error.
    lake.write_bytes("raw/b.bin", b"listed")
    source, target = FileEnd(lake, "raw", "directory"), FileEnd(other, "out", "directory")
    listing = lake.list_stats("raw")  # what a step's fingerprint listed
    lake.write_bytes("raw/b.bin", b"rewritten")
    with pytest.raises(StepFailedError, match=r"'raw/b\.bin' in .* changed after the transfer listed it"):
        FileTransfer(source, target, None, LOG, workers=1, listed=listing).run()


@pytest.mark.parametrize("kind", ["adls", "blob"])
def test_a_download_is_pinned_to_the_listed_version(
    kind: str, lake: AdlsGen2Datastore, azurite_connection_string: str, tmp_path: Path
) -> None:
    """A source file rewritten after the listing the transfer copies from (a step's fingerprint) is not
    downloaded in its new version: the step fails saying so, and nothing lands at the destination."""
    source: AdlsGen2Datastore | AzureBlobDatastore = lake
    if kind == "blob":
        source = new_blob_datastore(azurite_connection_string, "pin")
    source.write_bytes("raw/a.csv", b"a\n1\n")
    source.write_bytes("raw/b.csv", b"b\n1\n")
    listing = source.list_stats("raw")
    source.write_bytes("raw/b.csv", b"b\n2\n")
    local = LocalDatastore("local", tmp_path / "local")
    transfer = FileTransfer(
        FileEnd(source, "raw", "directory"), FileEnd(local, "copy", "directory"), None, LOG, workers=1, listed=listing
    )
    with pytest.raises(StepFailedError, match=r"'raw/b\.csv' in .* changed after the transfer listed it"):
        transfer.run()
    assert not (tmp_path / "local" / "copy" / "b.csv").exists()
    # Listed afresh, the new version is copied.
    FileTransfer(FileEnd(source, "raw", "directory"), FileEnd(local, "copy", "directory"), None, LOG).run()
    assert (tmp_path / "local" / "copy" / "b.csv").read_bytes() == b"b\n2\n"
