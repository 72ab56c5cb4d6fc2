"""The file transfer engine (no Airflow): local folders and Azurite, verified, resumable."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.stores import new_blob_datastore

from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
from airflow_provider_amlpipe.data.datastore import LocalDatastore, etag
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError
from airflow_provider_amlpipe.transfer import blob, files
from airflow_provider_amlpipe.transfer.files import FileEnd, FileTransfer
from airflow_provider_amlpipe.transfer.journal import Journal

LOG = logging.getLogger("transfer-test")


def _tree(root: Path, sizes: dict[str, int]) -> dict[str, bytes]:
    contents = {}
    for rel, size in sizes.items():
        data = hashlib.sha256(rel.encode()).digest() * (size // 32 + 1)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data[:size])
        contents[rel] = data[:size]
    return contents


@pytest.fixture
def local(tmp_path: Path) -> LocalDatastore:
    return LocalDatastore("local", tmp_path / "local")


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(LocalDatastore("steps", tmp_path / "steps"), "pair")


@pytest.fixture
def container(azurite_connection_string: str) -> Iterator[AzureBlobDatastore]:
    store = new_blob_datastore(azurite_connection_string, "xfer")
    yield store
    store.container_client.delete_container()


def _run(src: FileEnd, dst: FileEnd, journal: Journal | None) -> list:
    return FileTransfer(src, dst, journal, LOG, workers=4, progress_every=0.0).run()


def test_local_folder_copy_is_verified_and_resumes_only_what_changed(
    local: LocalDatastore, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    contents = _tree(local.root / "raw", {"a.csv": 10, "sub/b.bin": 5_000_000, "sub/c.txt": 0, "d.json": 300})
    src, dst = FileEnd(local, "raw", "directory"), FileEnd(local, "copy", "directory")
    with caplog.at_level(logging.INFO, logger="transfer-test"):
        done = _run(src, dst, journal)
    assert [v.path for v in done] == ["a.csv", "d.json", "sub/b.bin", "sub/c.txt"]
    for rel, data in contents.items():
        assert (local.root / "copy" / rel).read_bytes() == data
    assert {v.path: v.digest for v in done}["sub/b.bin"] == "sha256:" + hashlib.sha256(
        contents["sub/b.bin"]
    ).hexdigest()
    assert any("transfer progress: 4/4 files" in r.getMessage() for r in caplog.records)
    copied = {rel: (local.root / "copy" / rel).stat().st_ino for rel in contents}

    (local.root / "raw" / "a.csv").write_bytes(b"changed")
    again = _run(src, dst, journal)
    assert (local.root / "copy" / "a.csv").read_bytes() == b"changed"
    # Only the changed file was written again: the others are the same files (inode) as before.
    for rel in ("d.json", "sub/b.bin", "sub/c.txt"):
        assert (local.root / "copy" / rel).stat().st_ino == copied[rel]
    assert (local.root / "copy" / "a.csv").stat().st_ino != copied["a.csv"]
    assert {v.path: v.digest for v in again} != {v.path: v.digest for v in done}

    # Without a journal (a run killed before its last batch was written), files already there and equal
    # to their source are verified in place, not written again.
    inodes = {rel: (local.root / "copy" / rel).stat().st_ino for rel in contents}
    _run(src, dst, Journal(LocalDatastore("fresh", local.root.parent / "fresh"), "pair"))
    assert {rel: (local.root / "copy" / rel).stat().st_ino for rel in contents} == inodes

    # A destination file changed behind the journal's back is copied again, not trusted.
    (local.root / "copy" / "d.json").write_bytes(b"tampered")
    _run(src, dst, journal)
    assert (local.root / "copy" / "d.json").read_bytes() == contents["d.json"]


def test_aml_reference_type_rules(local: LocalDatastore) -> None:
    _tree(local.root / "raw", {"a.csv": 3})
    assert files.source_kind("src", local, "raw", None) == "directory"
    assert files.source_kind("src", local, "raw/a.csv", None) == "file"
    with pytest.raises(ConfigurationError, match="does not exist"):
        files.source_kind("src", local, "nothing", None)
    with pytest.raises(ConfigurationError, match="declared 'file'"):
        files.source_kind("src", local, "raw", "file")
    # The destination takes the existing path's type, else the source's.
    assert files.destination_kind(local, "new", None, "file") == "file"
    assert files.destination_kind(local, "raw", None, "file") == "directory"
    with pytest.raises(ConfigurationError, match="cannot be copied into the file"):
        files.destination_kind(local, "raw/a.csv", None, "directory")
    # A file into a directory keeps its name.
    items = files.plan(FileEnd(local, "raw/a.csv", "file"), FileEnd(local, "out", "directory"))
    assert [i.destination_key for i in items] == ["out/a.csv"]


def test_cancel_stops_the_copy_and_leaves_no_partial_file(local: LocalDatastore) -> None:
    _tree(local.root / "raw", {"big.bin": 20_000_000})
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(StepFailedError, match="cancelled"):
        FileTransfer(
            FileEnd(local, "raw", "directory"), FileEnd(local, "out", "directory"), None, LOG, cancel=cancel
        ).run()
    out = local.root / "out"
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]


def test_local_to_azurite_to_azurite_to_local(
    local: LocalDatastore, container: AzureBlobDatastore, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small blocks so the block path (parallel, resumable) runs on a few MB.
    monkeypatch.setattr(blob, "SINGLE_PUT", 1_000_000)
    monkeypatch.setattr(blob, "BLOCK_SIZE", 400_000)
    contents = _tree(local.root / "raw", {"small.csv": 1000, "nested/large.bin": 3_500_000, "empty.txt": 0})
    up = _run(FileEnd(local, "raw", "directory"), FileEnd(container, "landing", "directory"), journal)
    for v in up:
        data = contents[v.path]
        assert v.digest == "md5:" + hashlib.md5(data).hexdigest()
        props = container.container_client.get_blob_client(f"landing/{v.path}").get_blob_properties()
        assert props.size == len(data) and bytes(props.content_settings.content_md5).hex() == v.digest[4:]

    # The journal's markers are the ones a listing reports: a rerun copies nothing.
    sent: list[str] = []
    monkeypatch.setattr(blob, "upload", lambda *a, **k: sent.append(a[2]))
    monkeypatch.setattr(blob, "matching", lambda *a, **k: sent.append(a[1]))
    assert [
        v.digest for v in _run(FileEnd(local, "raw", "directory"), FileEnd(container, "landing", "directory"), journal)
    ] == [v.digest for v in up]
    assert sent == []
    monkeypatch.undo()

    copied = _run(FileEnd(container, "landing", "directory"), FileEnd(container, "mirror", "directory"), None)
    assert [(v.path, v.digest) for v in copied] == [(v.path, v.digest) for v in up]
    assert container.read_bytes("mirror/nested/large.bin") == contents["nested/large.bin"]

    down = _run(FileEnd(container, "mirror", "directory"), FileEnd(local, "back", "directory"), None)
    assert [v.digest for v in down] == [v.digest for v in up]
    for rel, data in contents.items():
        assert (local.root / "back" / rel).read_bytes() == data


def test_block_upload_resumes_from_staged_blocks(
    local: LocalDatastore, container: AzureBlobDatastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blob, "SINGLE_PUT", 100_000)
    monkeypatch.setattr(blob, "BLOCK_SIZE", 100_000)
    data = _tree(local.root, {"f.bin": 1_000_000})["f.bin"]
    client = container.container_client.get_blob_client("f.bin")
    marker = local.stat("f.bin").marker
    # An earlier run staged the first 4 blocks, then died before committing.
    for index in range(4):
        client.stage_block(blob._block_id(marker, index), data[index * 100_000 : (index + 1) * 100_000])
    sent: list[int] = []
    real_stage = type(client).stage_block
    monkeypatch.setattr(
        type(client), "stage_block", lambda self, bid, d, **kw: (sent.append(len(d)), real_stage(self, bid, d, **kw))[1]
    )
    digest, uploaded = blob.upload(container, local.root / "f.bin", "f.bin", marker, lambda n: None, lambda: False)
    assert sum(sent) == 600_000  # only the 6 blocks the service did not hold yet
    assert container.read_bytes("f.bin") == data and digest == "md5:" + hashlib.md5(data).hexdigest()
    assert uploaded == etag(container.stat("f.bin").marker)


def test_service_side_copy_signs_the_source_when_the_destination_has_no_account_key(
    container: AzureBlobDatastore, azurite_connection_string: str
) -> None:
    from azure.storage.blob import BlobServiceClient, ContainerClient

    from airflow_provider_amlpipe.data.blob_sas import ContainerSigner

    other = BlobServiceClient.from_connection_string(azurite_connection_string).create_container(
        f"sas-{uuid.uuid4().hex[:12]}"
    )
    sas_url = ContainerSigner(other).container_url(read=True, list=True, write=True)
    destination = AzureBlobDatastore("sas", ContainerClient.from_container_url(sas_url))
    container.write_bytes("src/a.bin", b"a" * 1000)
    urls = blob.source_urls(container, destination)
    assert "sig=" in urls("src/a.bin")  # the destination's SAS cannot authorize reading the source
    done = _run(FileEnd(container, "src", "directory"), FileEnd(destination, "dst", "directory"), None)
    assert [v.digest for v in done] == ["md5:" + hashlib.md5(b"a" * 1000).hexdigest()]
    assert other.download_blob("dst/a.bin").readall() == b"a" * 1000
    assert "sig=" not in blob.source_urls(container, container)("src/a.bin")  # one account, shared key
    other.delete_container()


def test_a_blob_copy_found_in_place_is_journalled_with_the_destinations_etag(
    container: AzureBlobDatastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a.bin", "b.bin"):
        container.write_bytes(f"src/{name}", name.encode() * 500)
    src, dst = FileEnd(container, "src", "directory"), FileEnd(container, "dst", "directory")
    _run(src, dst, None)  # copied by a run that was killed before it journalled anything
    journal = Journal(LocalDatastore("steps", tmp_path / "fresh"), "pair")
    found = _run(src, dst, journal)  # recognised in place by Content-MD5, journalled
    assert {v.destination_marker for v in found} == {etag(container.stat(f"dst/{n}.bin").marker) for n in "ab"}
    calls: list[str] = []
    monkeypatch.setattr(blob, "server_copy", lambda *a, **k: calls.append("copy"))
    monkeypatch.setattr(blob, "matching", lambda *a, **k: calls.append("matching"))
    assert [v.digest for v in _run(src, dst, journal)] == [v.digest for v in found]
    assert calls == []  # the journal's markers match: nothing is looked at again


def test_a_blob_with_a_listed_md5_is_copied_in_one_request_that_carries_it(
    container: AzureBlobDatastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.storage.blob import BlobBlock, BlobClient

    container.write_bytes("src/with-md5.bin", b"a" * 3000)  # written with its Content-MD5
    client = container.container_client.get_blob_client("src/no-md5.bin")
    client.stage_block("YmxvY2s=", b"b" * 2000)
    client.commit_block_list([BlobBlock("YmxvY2s=")])  # a block blob committed without one
    assert container.list_stats("src")["src/with-md5.bin"].content_md5 == hashlib.md5(b"a" * 3000).hexdigest()
    assert container.list_stats("src")["src/no-md5.bin"].content_md5 is None
    copies: list[dict[str, object]] = []
    heads: list[str] = []
    real_copy, real_head = BlobClient.start_copy_from_url, BlobClient.get_blob_properties
    monkeypatch.setattr(
        BlobClient, "start_copy_from_url", lambda self, url, **kw: (copies.append(kw), real_copy(self, url, **kw))[1]
    )
    monkeypatch.setattr(
        BlobClient, "get_blob_properties", lambda self, **kw: (heads.append(self.blob_name), real_head(self, **kw))[1]
    )
    done = {
        v.path: v.digest
        for v in _run(FileEnd(container, "src", "directory"), FileEnd(container, "dst", "directory"), None)
    }
    assert done == {"with-md5.bin": "md5:" + hashlib.md5(b"a" * 3000).hexdigest(), "no-md5.bin": "size:2000"}
    synchronous = [kw for kw in copies if kw.get("requires_sync")]
    assert len(synchronous) == 1
    sent = synchronous[0]["headers"]
    assert isinstance(sent, dict)
    assert sent["x-ms-source-content-md5"] == base64.b64encode(hashlib.md5(b"a" * 3000).digest()).decode()
    assert heads == ["dst/no-md5.bin"]  # only the copy without a listed MD5 is checked afterwards
    assert (
        container.read_bytes("dst/with-md5.bin") == b"a" * 3000
        and container.read_bytes("dst/no-md5.bin") == b"b" * 2000
    )
