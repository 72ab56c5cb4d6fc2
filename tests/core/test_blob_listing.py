"""The fast List Blobs parser reads what the SDK's listing reads, and gives way to it when it cannot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobBlock, ContainerClient
from support.stores import new_blob_datastore

from airflow_provider_amlpipe.data import blob_listing
from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore, _listed
from airflow_provider_amlpipe.data.refs import DataPath
from airflow_provider_amlpipe.errors import NotFoundError
from airflow_provider_amlpipe.hashing import Hasher, StatCache
from airflow_provider_amlpipe.steps.inputs import resolve_inputs


@pytest.fixture
def store(azurite_connection_string: str) -> Iterator[AzureBlobDatastore]:
    store = new_blob_datastore(azurite_connection_string, "listing")
    yield store
    store.container_client.delete_container()


NAMES = ["d/plain.bin", "d/with space & <angle> + 100%.txt", "d/ünï/cödé.csv", "d/sub/deep/x.json", "other/y.bin"]


def _fill(client: ContainerClient) -> None:
    for i, name in enumerate(NAMES):
        client.upload_blob(name, b"x" * (i * 100), metadata={"k": f"v{i}"})
    block = client.get_blob_client("d/no-md5.bin")
    block.stage_block("YmxvY2s=", b"b" * 2000)
    block.commit_block_list([BlobBlock("YmxvY2s=")])  # committed without a Content-MD5
    client.upload_blob("d/folder", b"", metadata={"hdi_isfolder": "true"})  # an ADLS Gen2 directory
    client.upload_blob("d/marker/", b"")  # a tool's zero-length folder marker


@pytest.mark.parametrize("page_size", [None, 2])
def test_the_fast_listing_reads_what_the_sdk_reads(store: AzureBlobDatastore, page_size: int | None) -> None:
    _fill(store.container_client)
    fast = blob_listing.list_blobs(store.container_client, "d/", page_size=page_size)
    assert fast is not None
    sdk = [_listed(b) for b in store.container_client.list_blobs(name_starts_with="d/", include=["metadata"])]
    assert fast == sdk
    assert {b.name for b in fast} == {n for n in NAMES if n.startswith("d/")} | {
        "d/no-md5.bin",
        "d/folder",
        "d/marker/",
    }
    assert {b.name: b.content_md5 for b in fast}["d/no-md5.bin"] is None
    assert all(b.content_md5 for b in fast if b.name == "d/plain.bin")
    # The datastore's listing leaves the folder markers out.
    assert sorted(store.list_stats("d")) == sorted([n for n in NAMES if n.startswith("d/")] + ["d/no-md5.bin"])


def test_the_sdk_lists_when_the_fast_listing_cannot(store: AzureBlobDatastore, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(store.container_client)
    expected = store.list_stats("d")
    calls: list[str] = []
    real = ContainerClient.list_blobs
    monkeypatch.setattr(
        ContainerClient,
        "list_blobs",
        lambda self, *a, **kw: (calls.append(kw["name_starts_with"]), real(self, *a, **kw))[1],
    )
    assert store.list_stats("d") == expected and calls == []
    # An SDK without the private request method: its own listing, same result.
    monkeypatch.setattr(blob_listing, "list_blobs", lambda *a, **kw: None)
    assert store.list_stats("d") == expected and calls == ["d/"]


def test_a_missing_container_is_still_reported_as_not_found(azurite_connection_string: str) -> None:
    gone = AzureBlobDatastore.from_settings(
        "blob", container=f"gone-{uuid.uuid4().hex[:12]}", connection_string=azurite_connection_string
    )
    assert blob_listing.list_blobs(gone.container_client, "d/") is None  # a 404: the SDK reports it
    with pytest.raises(NotFoundError):
        gone.list_stats("d")


def test_a_container_reached_by_sas_is_listed_with_its_token(store: AzureBlobDatastore) -> None:
    from airflow_provider_amlpipe.data.blob_sas import ContainerSigner

    _fill(store.container_client)
    signed = ContainerClient.from_container_url(
        ContainerSigner(store.container_client).container_url(read=True, list=True)
    )
    fast = blob_listing.list_blobs(signed, "d/")
    assert fast is not None  # the token in the URL authorized the request
    assert fast == [_listed(b) for b in store.container_client.list_blobs(name_starts_with="d/", include=["metadata"])]


def test_a_marker_mode_folder_input_is_fingerprinted_from_its_listing(
    store: AzureBlobDatastore, azurite_connection_string: str, tmp_path: Path
) -> None:
    """Not a properties request per blob: the listing carries every blob's ETag and size."""
    for i in range(30):
        store.container_client.upload_blob(f"in/part-{i:02d}.csv", f"{i}\n".encode())
    requests: list[str] = []
    counted = AzureBlobDatastore(
        "blob",
        ContainerClient.from_connection_string(
            azurite_connection_string,
            store.container_client.container_name,
            raw_request_hook=lambda pipeline_request: requests.append(pipeline_request.http_request.method),
        ),
    )
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))

    def digest() -> str:
        raw = {"x": DataPath("blob", "in", fingerprint_mode="marker")}
        return resolve_inputs(raw, lambda _: counted, hasher, "blob")["x"].digest

    before = digest()
    assert before.startswith("marker:")
    assert requests == ["HEAD", "GET"]  # is "in" a blob? no: list the folder, once
    assert digest() == before
    store.container_client.upload_blob("in/part-07.csv", b"changed\n", overwrite=True)
    assert digest() != before
