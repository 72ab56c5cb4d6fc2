"""A first transfer into Blob writes on condition that each blob is absent, instead of listing first.

What a killed run left (a blob it wrote but never journalled) is found by the refused write, checked
in place (size and Content-MD5) and kept when it holds the source's bytes, overwritten when not.
The counting proxy in front of Azurite tells the bytes the service stored from those it refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobClient, ContentSettings
from support.counting_proxy import Counter, counting_proxy
from support.stores import new_blob_datastore

from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
from airflow_provider_amlpipe.data.datastore import LocalDatastore, etag
from airflow_provider_amlpipe.transfer import blob
from airflow_provider_amlpipe.transfer.files import FileEnd, FileTransfer
from airflow_provider_amlpipe.transfer.journal import Journal, Verified

LOG = logging.getLogger("transfer-conditional-test")


@pytest.fixture
def direct(azurite_connection_string: str) -> Iterator[AzureBlobDatastore]:
    """A fresh container, reached directly (what a killed run left is put there without being counted)."""
    store = new_blob_datastore(azurite_connection_string, "cond")
    yield store
    store.container_client.delete_container()


@pytest.fixture
def proxied(azurite_connection_string: str, direct: AzureBlobDatastore) -> Iterator[tuple[AzureBlobDatastore, Counter]]:
    """The same container through the counting proxy."""
    endpoint = next(p.split("=", 1)[1] for p in azurite_connection_string.split(";") if p.startswith("BlobEndpoint="))
    target, account = endpoint.rsplit("/", 1)
    with counting_proxy(target) as (proxy, counter):
        conn = azurite_connection_string.replace(endpoint, f"{proxy}/{account}")
        yield AzureBlobDatastore.from_settings("blob", container=direct.container_name, connection_string=conn), counter


def _files(root: Path, sizes: dict[str, int]) -> dict[str, bytes]:
    contents = {}
    for name, size in sizes.items():
        contents[name] = os.urandom(size)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(contents[name])
    return contents


def _leave(store: AzureBlobDatastore, key: str, data: bytes) -> str:
    """Put ``data`` at ``key`` as a run would have (with its Content-MD5); its ETag."""
    md5 = bytearray(hashlib.md5(data).digest())
    client = store.container_client.get_blob_client(key)
    done = client.upload_blob(data, overwrite=True, content_settings=ContentSettings(content_md5=md5))
    return etag(done["etag"])


def _count_listings(store: AzureBlobDatastore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    listed: list[str] = []
    real = store.list_stats
    monkeypatch.setattr(store, "list_stats", lambda prefix: (listed.append(prefix), real(prefix))[1])
    return listed


def _written(counter: Counter, store: AzureBlobDatastore, found: dict[str, int]) -> dict[str, int]:
    counter.wait_idle()
    return {path.split(f"/{store.container_name}/", 1)[1]: n for path, n in found.items()}


def _lake_to_landing(tmp_path: Path, store: AzureBlobDatastore, journal: Journal, **options: Any) -> list[Verified]:
    """The local folder ``lake/raw`` transferred to ``landing`` on ``store``, journalled."""
    source = FileEnd(LocalDatastore("lake", tmp_path / "lake"), "raw", "directory")
    transfer = FileTransfer(source, FileEnd(store, "landing", "directory"), journal, LOG, progress_every=0.0, **options)
    return transfer.run()


def test_a_first_transfer_into_an_empty_folder_never_lists_it_and_sends_each_file_once(
    tmp_path: Path, proxied: tuple[AzureBlobDatastore, Counter], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, counter = proxied
    monkeypatch.setattr(blob, "SINGLE_PUT", 100_000)  # the large file goes up in blocks
    monkeypatch.setattr(blob, "BLOCK_SIZE", 100_000)
    sizes = {"a.bin": 30_000, "b.bin": 20_000, "large.bin": 350_000}
    contents = _files(tmp_path / "lake" / "raw", sizes)
    listed = _count_listings(store, monkeypatch)
    journal = Journal(LocalDatastore("steps", tmp_path / "steps"), "pair")
    done = _lake_to_landing(tmp_path, store, journal, workers=2)
    assert listed == []
    assert {v.path: v.digest for v in done} == {n: "md5:" + hashlib.md5(d).hexdigest() for n, d in contents.items()}
    assert _written(counter, store, counter.written) == {f"landing/{n}": s for n, s in sizes.items()}
    assert _written(counter, store, counter.refused) == {}
    # The journal holds every file: a rerun lists the destination to check it and copies nothing.
    again = _lake_to_landing(tmp_path, store, journal)
    assert [v.digest for v in again] == [v.digest for v in done]
    assert listed == ["landing"]
    assert _written(counter, store, counter.written) == {f"landing/{n}": s for n, s in sizes.items()}


def test_what_a_killed_run_left_is_verified_in_place_and_a_corrupt_blob_is_overwritten(
    tmp_path: Path,
    direct: AzureBlobDatastore,
    proxied: tuple[AzureBlobDatastore, Counter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, counter = proxied
    # One worker, largest first: the kept file is written first and refused; the rest are then
    # checked against the listing that refusal triggered, so none of them is sent only to be refused.
    sizes = {"kept.bin": 50_000, "corrupt.bin": 40_000, "short.bin": 30_000, "new.bin": 20_000}
    contents = _files(tmp_path / "lake" / "raw", sizes)
    kept_etag = _leave(direct, "landing/kept.bin", contents["kept.bin"])
    _leave(direct, "landing/corrupt.bin", os.urandom(40_000))  # same size, other bytes
    _leave(direct, "landing/short.bin", contents["short.bin"][:10_000])  # cut short
    listed = _count_listings(store, monkeypatch)
    journal = Journal(LocalDatastore("steps", tmp_path / "steps"), "pair")
    done = _lake_to_landing(tmp_path, store, journal, workers=1)
    assert {v.path: v.digest for v in done} == {n: "md5:" + hashlib.md5(d).hexdigest() for n, d in contents.items()}
    for name, data in contents.items():
        assert direct.read_bytes(f"landing/{name}") == data
    # The kept blob was not rewritten (same ETag, which the journal holds); only the others were stored.
    assert direct.stat("landing/kept.bin").marker.strip('"') == kept_etag
    assert {v.path: v.destination_marker for v in done}["kept.bin"] == kept_etag
    assert _written(counter, store, counter.written) == {
        "landing/corrupt.bin": 40_000,
        "landing/short.bin": 30_000,
        "landing/new.bin": 20_000,
    }
    assert _written(counter, store, counter.refused) == {"landing/kept.bin": 50_000}
    assert listed == ["landing"]


def test_a_conditional_block_upload_asks_before_sending_any_block(
    tmp_path: Path, direct: AzureBlobDatastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blob, "SINGLE_PUT", 100_000)
    monkeypatch.setattr(blob, "BLOCK_SIZE", 100_000)
    data = _files(tmp_path, {"f.bin": 450_000})["f.bin"]
    marker = LocalDatastore("lake", tmp_path).stat("f.bin").marker
    staged: list[int] = []
    real_stage = BlobClient.stage_block
    monkeypatch.setattr(
        BlobClient, "stage_block", lambda self, bid, d, **kw: (staged.append(len(d)), real_stage(self, bid, d, **kw))[1]
    )
    # Blocks a killed run staged (not committed: no blob yet) do not count as the blob: they are resumed.
    client = direct.container_client.get_blob_client("f.bin")
    client.stage_block(blob._block_id(marker, 0), data[:100_000])
    staged.clear()
    digest, _ = blob.upload(direct, tmp_path / "f.bin", "f.bin", marker, lambda n: None, lambda: False, if_missing=True)
    assert digest == "md5:" + hashlib.md5(data).hexdigest() and direct.read_bytes("f.bin") == data
    assert sum(staged) == 350_000
    staged.clear()
    with pytest.raises(blob.DestinationExists):
        blob.upload(direct, tmp_path / "f.bin", "f.bin", marker, lambda n: None, lambda: False, if_missing=True)
    assert staged == []


def test_a_first_service_side_copy_keeps_a_matching_blob_and_replaces_a_different_one(
    direct: AzureBlobDatastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = {name: os.urandom(size) for name, size in {"same.bin": 3000, "other.bin": 2000, "new.bin": 1000}.items()}
    for name, data in contents.items():
        _leave(direct, f"src/{name}", data)
    same_etag = _leave(direct, "dst/same.bin", contents["same.bin"])
    _leave(direct, "dst/other.bin", os.urandom(2000))
    listed = _count_listings(direct, monkeypatch)
    copies: list[str] = []
    real_copy = BlobClient.start_copy_from_url
    monkeypatch.setattr(
        BlobClient,
        "start_copy_from_url",
        lambda self, url, **kw: (copies.append(self.blob_name), real_copy(self, url, **kw))[1],
    )
    done = FileTransfer(
        FileEnd(direct, "src", "directory"),
        FileEnd(direct, "dst", "directory"),
        None,
        LOG,
        workers=1,
        progress_every=0.0,
    ).run()
    assert {v.path: v.digest for v in done} == {n: "md5:" + hashlib.md5(d).hexdigest() for n, d in contents.items()}
    for name, data in contents.items():
        assert direct.read_bytes(f"dst/{name}") == data
    assert direct.stat("dst/same.bin").marker.strip('"') == same_etag  # refused, found equal, left alone
    # Largest first: the refused copy of same.bin, then (after the listing it caused) other.bin replaced, new.bin.
    assert copies == ["dst/same.bin", "dst/other.bin", "dst/new.bin"]
    assert listed == ["src", "dst"]


def test_a_single_destination_file_is_checked_up_front_so_rewriting_it_sends_its_bytes_once(
    tmp_path: Path, direct: AzureBlobDatastore, proxied: tuple[AzureBlobDatastore, Counter]
) -> None:
    store, counter = proxied
    data = _files(tmp_path / "export", {"totals.csv": 30_000})["totals.csv"]
    _leave(direct, "exports/totals.csv", os.urandom(25_000))  # last run's export, now out of date
    done = FileTransfer(
        FileEnd(LocalDatastore("export", tmp_path / "export"), "totals.csv", "file"),
        FileEnd(store, "exports/totals.csv", "file"),
        None,
        LOG,
        progress_every=0.0,
    ).run()
    assert [v.digest for v in done] == ["md5:" + hashlib.md5(data).hexdigest()]
    assert direct.read_bytes("exports/totals.csv") == data
    assert _written(counter, store, counter.written) == {"exports/totals.csv": 30_000}
    assert _written(counter, store, counter.refused) == {}
