"""Leases, records and miss explanations of the reuse store (core, no Airflow process)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.reuse.store import Busy, Heartbeat, Lease, ReuseStore


@pytest.fixture
def reuse(tmp_path: Path) -> ReuseStore:
    return ReuseStore(LocalDatastore("s", tmp_path / "store"))


def test_second_acquirer_is_told_who_holds_the_lease(reuse: ReuseStore) -> None:
    first = reuse.acquire("fp", ttl=30)
    assert isinstance(first, Lease) and first.number == 1
    second = reuse.acquire("fp", ttl=30)
    assert isinstance(second, Busy)
    assert (second.number, second.owner) == (1, first.owner)


class _RacingStore(LocalDatastore):
    """A store whose first listing of the leases is answered after a rival took the lease: the listing
    this acquirer saw (no lease) is already stale when it decides."""

    rival: ReuseStore | None = None

    def list(self, prefix: str) -> Iterator[str]:
        keys = list(super().list(prefix))
        rival, self.rival = self.rival, None
        if rival is not None and prefix.startswith("reuse/leases/"):
            assert isinstance(rival.acquire("fp", ttl=30), Lease)
        return iter(keys)


def test_a_lease_taken_between_listing_and_creating_is_respected(tmp_path: Path) -> None:
    """Two workers starting at once: the one whose listing went stale must not skip the rival's live lease."""
    racing = _RacingStore("s", tmp_path / "store")
    racing.rival = ReuseStore(LocalDatastore("s", tmp_path / "store"))
    late = ReuseStore(racing).acquire("fp", ttl=30)
    assert isinstance(late, Busy) and late.number == 1  # not lease 2 beside a live lease 1
    assert sorted(racing.list("reuse/leases")) == [f"reuse/leases/fp/{1:010d}.json"]


def test_released_lease_is_taken_with_the_next_number(reuse: ReuseStore) -> None:
    first = reuse.acquire("fp", ttl=30)
    assert isinstance(first, Lease)
    reuse.release(first)
    again = reuse.acquire("fp", ttl=30)
    assert isinstance(again, Lease) and again.number == 2


def test_expired_lease_is_taken_over_and_its_holder_learns_it_lost(reuse: ReuseStore) -> None:
    stale = reuse.acquire("fp", ttl=2)
    assert isinstance(stale, Lease)
    assert isinstance(reuse.acquire("fp", ttl=30), Busy)
    time.sleep(2.1)
    taker = reuse.acquire("fp", ttl=30)
    assert isinstance(taker, Lease) and taker.number == 2
    assert reuse.heartbeat(stale) is False
    assert reuse.heartbeat(taker) is True


HOLD_AND_EXIT = """
import os, sys
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.reuse.store import Lease, ReuseStore
lease = ReuseStore(LocalDatastore("s", sys.argv[1])).acquire("fp", ttl=3600)
print(isinstance(lease, Lease))
os._exit(0)  # dies holding the lease, as a SIGKILLed worker would
"""


def test_lease_of_a_dead_process_on_this_host_is_not_live(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    held = subprocess.run([sys.executable, "-c", HOLD_AND_EXIT, root], capture_output=True, text=True, check=True)
    assert held.stdout.strip() == "True"
    taker = ReuseStore(LocalDatastore("s", root)).acquire("fp", ttl=30)
    assert isinstance(taker, Lease) and taker.number == 2  # no need to wait an hour for expiry


def test_heartbeat_keeps_a_short_lease_alive(reuse: ReuseStore) -> None:
    lease = reuse.acquire("fp", ttl=2)
    assert isinstance(lease, Lease)
    with Heartbeat(reuse, lease) as beat:
        time.sleep(3)
        assert isinstance(reuse.acquire("fp", ttl=30), Busy)
    assert not beat.lost


def test_newest_record_wins_and_misses_are_explained_part_by_part(reuse: ReuseStore) -> None:
    old = Fingerprint({"kind": "python_script", "code": "c1", "inputs": {"a": "d1", "b": "d2"}, "params": {}})
    reuse.commit(old, "dag.task", {"outputs": {}, "producer": {"run_id": "r1"}})
    reuse.commit(old, "dag.task", {"outputs": {}, "producer": {"run_id": "r2"}})
    record = reuse.lookup(old.digest)
    assert record is not None and record["record"] == 2 and record["producer"]["run_id"] == "r2"
    new = Fingerprint({"kind": "python_script", "code": "c2", "inputs": {"a": "d1", "b": "d3"}, "params": {}})
    assert reuse.lookup(new.digest) is None
    assert reuse.explain_miss(new, "dag.task") == "changed since the last record: code, inputs.b"
    assert reuse.explain_miss(new, "dag.other") == "no earlier record of this step"


def test_fingerprint_digest_is_order_independent_and_part_sensitive() -> None:
    a = Fingerprint({"x": 1, "inputs": {"p": "1", "q": "2"}})
    b = Fingerprint({"inputs": {"q": "2", "p": "1"}, "x": 1})
    assert a.digest == b.digest
    assert Fingerprint({"x": 2, "inputs": {"p": "1", "q": "2"}}).digest != a.digest


def test_lease_trigger_fires_when_the_lease_ends_or_a_record_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from airflow_provider_amlpipe.triggers.step_lease import StepLeaseTrigger

    root = tmp_path / "store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRIGGER_STORE", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    reuse = ReuseStore(LocalDatastore("trigger_store", root))
    lease = reuse.acquire("fp", ttl=30)
    assert isinstance(lease, Lease)

    async def first_event(trigger: StepLeaseTrigger, timeout: float) -> object:
        async def take() -> object:
            async for event in trigger.run():
                return event.payload
            return None

        return await asyncio.wait_for(take(), timeout)

    trigger = StepLeaseTrigger("trigger_store", "fp", lease.number, poll_interval=0.05)
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(first_event(trigger, 0.5))  # held and heart-beating: no event
    reuse.release(lease)
    assert asyncio.run(first_event(trigger, 5)) == {"status": "lease_ended", "fingerprint": "fp"}

    fingerprint = Fingerprint({"k": 1})
    held = reuse.acquire(fingerprint.digest, ttl=30)
    assert isinstance(held, Lease)
    reuse.commit(fingerprint, "dag.task", {"outputs": {}})
    waiting = StepLeaseTrigger("trigger_store", fingerprint.digest, held.number, poll_interval=0.05)
    assert asyncio.run(first_event(waiting, 5)) == {"status": "committed", "fingerprint": fingerprint.digest}


def test_wait_briefly_sees_a_release_a_commit_or_gives_up(reuse: ReuseStore) -> None:
    import threading

    lease = reuse.acquire("fp", ttl=30)
    assert isinstance(lease, Lease)
    assert reuse.wait_briefly("fp", lease.number, timeout=0.3) is None  # still held: give up (then defer)
    releaser = threading.Timer(0.3, reuse.release, args=(lease,))
    releaser.start()
    assert reuse.wait_briefly("fp", lease.number, timeout=10) == "lease_ended"
    releaser.join()

    fingerprint = Fingerprint({"k": 2})
    held = reuse.acquire(fingerprint.digest, ttl=30)
    assert isinstance(held, Lease)
    committer = threading.Timer(0.3, reuse.commit, args=(fingerprint, "dag.task", {"outputs": {}}))
    committer.start()
    assert reuse.wait_briefly(fingerprint.digest, held.number, timeout=10) == "committed"
    committer.join()
