"""The datastore contract, run against every implementation.

Each test runs on a :class:`LocalDatastore` in a temporary folder and on an
:class:`AzureBlobDatastore` using a fresh container of a session-wide Azurite (``npm ci``
installs it; without it the Blob cases fail and say so). Select with ``-m azurite`` /
``-m "not azurite"``.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from support.azurite_server import ACCOUNT_KEY

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore
from airflow_provider_amlpipe.data.sequence import Sequence
from airflow_provider_amlpipe.errors import IntegrityError, NotFoundError
from airflow_provider_amlpipe.hashing import Hasher, StatCache, list_tree

THREADS = 8
MiB = 1 << 20
T = TypeVar("T")


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("local", id="local"),
        pytest.param("azure_blob", id="azure_blob", marks=pytest.mark.azurite),
        pytest.param("adls_gen2", id="adls_gen2"),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Datastore]:
    if request.param == "local":
        yield LocalDatastore("contract", tmp_path / "store")
        return
    if request.param == "adls_gen2":  # against the local DFS-protocol server (tests/support/dfs_server.py)
        from support.dfs_server import KEY, running_dfs

        from airflow_provider_amlpipe.data.adls_gen2 import AdlsGen2Datastore

        with running_dfs() as (url, _):
            yield AdlsGen2Datastore.from_settings(
                "contract", file_system="contract", account_url=url, account_key=KEY, create_file_system=True
            )
        return
    conn = request.getfixturevalue("azurite_connection_string")
    blob_store = AzureBlobDatastore.from_settings(
        "contract",
        container=f"contract-{uuid.uuid4().hex[:16]}",
        connection_string=conn,
        create_container=True,
        # Small transfer sizes so that multi-MB files take the staged-block upload and the
        # chunked download paths, not just single requests.
        max_single_put_size=1 * MiB,
        max_block_size=256 * 1024,
        max_single_get_size=1 * MiB,
        max_chunk_get_size=512 * 1024,
    )
    yield blob_store
    blob_store.container_client.delete_container()


@pytest.fixture
def hasher(tmp_path: Path) -> Hasher:
    return Hasher(StatCache(tmp_path / "sc.sqlite"))


def race(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` for ``i`` in ``range(count)`` on ``count`` threads released together."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T:
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha\n",
        "empty.bin": b"",
        "sub/b.csv": b"x,y\n1,2\n",
        "sub/deeper/c.bin": os.urandom(70_000),
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


# -- bytes ------------------------------------------------------------------------------------


def test_write_read_round_trip(store: Datastore) -> None:
    assert store.write_bytes("d/one.bin", b"hello") is True
    assert store.read_bytes("d/one.bin") == b"hello"
    assert store.exists("d/one.bin")
    assert store.write_bytes("d/empty.bin", b"") is True
    assert store.read_bytes("d/empty.bin") == b""
    assert store.stat("d/empty.bin").size == 0


def test_write_replaces(store: Datastore) -> None:
    store.write_bytes("k.json", b"first")
    assert store.write_bytes("k.json", b"second, longer") is True
    assert store.read_bytes("k.json") == b"second, longer"


def test_if_absent_creates_once(store: Datastore) -> None:
    assert store.write_bytes("once/k", b"winner", if_absent=True) is True
    assert store.write_bytes("once/k", b"loser", if_absent=True) is False
    assert store.read_bytes("once/k") == b"winner"
    # A plain write still replaces it.
    store.write_bytes("once/k", b"replaced")
    assert store.read_bytes("once/k") == b"replaced"


def test_if_absent_race_has_exactly_one_winner(store: Datastore) -> None:
    results = race(THREADS, lambda i: store.write_bytes("race/k", f"writer {i}".encode(), if_absent=True))
    assert results.count(True) == 1
    winner = results.index(True)
    assert store.read_bytes("race/k") == f"writer {winner}".encode()


def test_missing_objects_raise_not_found(store: Datastore, tmp_path: Path) -> None:
    assert not store.exists("nope/missing")
    with pytest.raises(NotFoundError):
        store.read_bytes("nope/missing")
    with pytest.raises(NotFoundError):
        store.stat("nope/missing")
    with pytest.raises(NotFoundError):
        store.download_file("nope/missing", tmp_path / "out" / "missing")
    assert not (tmp_path / "out" / "missing").exists()
    assert list((tmp_path / "out").iterdir()) == []  # nor the temporary file the download went to


def test_invalid_keys_are_refused(store: Datastore) -> None:
    for key in ("", "/abs", "a//b", "a/../b", "a/"):
        with pytest.raises(ValueError):
            store.write_bytes(key, b"x")


# -- listing and deleting ---------------------------------------------------------------------


def test_list_under_prefix(store: Datastore) -> None:
    keys = ["a/x", "a/b/y", "a/b/c/z", "ab/w", "abc", "b/a/x"]
    for key in keys:
        store.write_bytes(key, key.encode())
    assert sorted(store.list("a")) == ["a/b/c/z", "a/b/y", "a/x"]
    assert sorted(store.list("a/b")) == ["a/b/c/z", "a/b/y"]
    assert sorted(store.list("ab")) == ["ab/w"]
    assert list(store.list("missing")) == []
    assert list(store.list("a/x")) == ["a/x"]  # a key that is an object lists itself
    assert list(store.list("abc")) == ["abc"]
    assert store.is_prefix("a/b")
    assert not store.is_prefix("a/b/q")


def test_delete_is_idempotent(store: Datastore) -> None:
    store.write_bytes("del/k", b"x")
    store.write_bytes("del/keep", b"y")
    store.delete("del/k")
    assert not store.exists("del/k")
    with pytest.raises(NotFoundError):
        store.read_bytes("del/k")
    store.delete("del/k")
    store.delete("never/existed")
    assert list(store.list("del")) == ["del/keep"]
    # A deleted key can be created again, once.
    assert store.write_bytes("del/k", b"again", if_absent=True) is True


# -- files and stat ---------------------------------------------------------------------------


def test_upload_download_large_file(store: Datastore, tmp_path: Path) -> None:
    size = 5 * MiB + 12_345  # not a multiple of any block or chunk size
    data = os.urandom(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    store.upload_file(src, "files/big.bin")
    assert store.stat("files/big.bin").size == size
    dest = tmp_path / "down" / "nested" / "big.bin"
    store.download_file("files/big.bin", dest)
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["big.bin"]  # no temporary leftovers

    # Uploading replaces; downloading overwrites an existing local file.
    small = tmp_path / "small.bin"
    small.write_bytes(b"small now")
    store.upload_file(small, "files/big.bin")
    store.download_file("files/big.bin", dest)
    assert dest.read_bytes() == b"small now"
    assert store.stat("files/big.bin").size == len(b"small now")


def test_stat_marker_follows_content(store: Datastore) -> None:
    store.write_bytes("m/k", b"version one")
    first = store.stat("m/k")
    assert first.size == len(b"version one")
    assert first.marker == store.stat("m/k").marker  # stable while unchanged
    store.write_bytes("m/k", b"version two")  # same size, different bytes
    second = store.stat("m/k")
    assert second.size == first.size
    assert second.marker != first.marker
    store.write_bytes("m/k", b"v3")
    third = store.stat("m/k")
    assert third.size == 2
    assert third.marker not in (first.marker, second.marker)


def test_url_and_description(store: Datastore) -> None:
    assert store.url("some/key name.txt").endswith(("some/key name.txt", "some/key%20name.txt"))
    text = store.describe() + repr(store)
    assert ACCOUNT_KEY not in text
    assert "AccountKey" not in text
    if isinstance(store, AzureBlobDatastore):
        assert store.local_path("x") is None
        assert store.url("a/b").startswith("http://127.0.0.1:")
        assert store.container_client.container_name in store.describe()


# -- what is built on the primitives ----------------------------------------------------------


def test_sequence_append_from_threads_is_gap_free(store: Datastore) -> None:
    seq = Sequence(store, "seq/things")
    results = race(THREADS, lambda i: seq.append(lambda n: {"n": n, "writer": i}))
    numbers = sorted(number for number, _, created in results if created)
    assert numbers == list(range(1, THREADS + 1))
    assert seq.numbers() == list(range(1, THREADS + 1))
    writers = set()
    for number, doc, _ in results:
        assert seq.get(number) == doc
        assert doc["n"] == number
        writers.add(doc["writer"])
    assert writers == set(range(THREADS))
    latest = seq.latest()
    assert latest is not None and latest[0] == THREADS


def test_publish_verify_and_detect_missing(store: Datastore, tmp_path: Path, hasher: Hasher) -> None:
    src = tmp_path / "out"
    make_tree(src)
    manifest = objects.publish(store, src, hasher)
    assert objects.verify(store, manifest.digest, hasher) == manifest
    assert sorted(f.path for f in manifest.files) == list_tree(src)
    # Publishing the same folder again is a no-op returning the same object.
    assert objects.publish(store, src, hasher) == manifest

    store.delete(f"{objects.data_prefix(manifest.digest)}/sub/b.csv")
    with pytest.raises(IntegrityError, match=r"sub/b\.csv: missing"):
        objects.verify(store, manifest.digest, hasher)
    # Publishing again repairs the damaged object.
    objects.publish(store, src, hasher)
    objects.verify(store, manifest.digest, hasher)

    with pytest.raises(IntegrityError, match="no manifest"):
        objects.verify(store, "0" * 64, hasher)


def test_materialize_gives_the_same_files(store: Datastore, tmp_path: Path, hasher: Hasher) -> None:
    src = tmp_path / "out"
    files = make_tree(src)
    manifest = objects.publish(store, src, hasher)
    folder = objects.materialize(store, manifest.digest, tmp_path / "materialized")
    assert list_tree(folder) == sorted(files)
    for rel, data in files.items():
        assert (folder / rel).read_bytes() == data
