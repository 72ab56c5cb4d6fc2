"""The reuse store: committed step records and single-flight leases, kept in a datastore.

Layout (all JSON, all written create-if-absent except a lease's own heartbeats):

- ``reuse/records/<fingerprint>/<n>.json`` -- what a step with this fingerprint produced; the
  highest ``n`` is current, so regenerating outputs appends rather than overwriting history;
- ``reuse/leases/<fingerprint>/<n>.json`` -- who is computing this fingerprint right now; the
  holder heartbeats by rewriting its own lease; a newer ``n`` takes over an expired or released one;
- ``reuse/steps/<step id>.json`` -- the fingerprint parts of the last record of a step, used only
  to explain a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.registry import utcnow_iso
from airflow_provider_amlpipe.data.sequence import Document, Sequence, encode
from airflow_provider_amlpipe.errors import NotFoundError
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint

DEFAULT_LEASE_TTL = 60.0
#: Below this a lease would expire between two heartbeats of a busy worker (seconds).
MIN_LEASE_TTL = 2.0
#: A step id (``<dag_id>.<task_id>[.<map index>]``) longer than this, in UTF-8 bytes, is shortened
#: in its ``reuse/steps`` key: a file name holds 255 bytes, and local writes add a 38-byte prefix.
MAX_STEP_KEY_BYTES = 160


@dataclass(frozen=True)
class Lease:
    """A held claim to compute one fingerprint."""

    fingerprint: str
    number: int
    owner: str
    ttl: float
    bound_to_process: bool = True


@dataclass(frozen=True)
class Busy:
    """Another live holder computes this fingerprint; wait for it (see ``lease.number``)."""

    fingerprint: str
    number: int
    owner: str
    expires_at: float


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ReuseStore:
    """Lookup, lease, commit and explain, over one datastore."""

    def __init__(self, store: Datastore) -> None:
        self.store = store

    # records -------------------------------------------------------------------------------
    def _records(self, fingerprint: str) -> Sequence:
        return Sequence(self.store, f"reuse/records/{fingerprint}")

    def lookup(self, fingerprint: str) -> Document | None:
        """The current record of ``fingerprint``, or ``None``."""
        latest = self._records(fingerprint).latest()
        return latest[1] if latest else None

    def commit(self, fingerprint: Fingerprint, step_id: str, record: Document) -> Document:
        """Append a record for ``fingerprint`` (the newest wins) and remember it as the step's last."""
        digest = fingerprint.digest

        def make(number: int) -> Document:
            return {
                **record,
                "fingerprint": digest,
                "parts": fingerprint.parts,
                "step_id": step_id,
                "record": number,
                "committed_at": utcnow_iso(),
            }

        _, doc, _ = self._records(digest).append(make)
        self.store.write_bytes(self._step_key(step_id), encode({"fingerprint": digest, "parts": fingerprint.parts}))
        return doc

    @staticmethod
    def _step_key(step_id: str) -> str:
        if len(step_id.encode("utf-8")) > MAX_STEP_KEY_BYTES:
            # Airflow allows 250-character dag and task ids; keep a readable head and a digest of the rest.
            head = step_id.encode("utf-8")[: MAX_STEP_KEY_BYTES - 17].decode("utf-8", "ignore")
            step_id = f"{head}-{hashlib.sha256(step_id.encode('utf-8')).hexdigest()[:16]}"
        return f"reuse/steps/{step_id}.json"

    def last_parts(self, step_id: str) -> dict[str, Any] | None:
        """The fingerprint parts of ``step_id``'s last committed record, if any."""
        try:
            doc = json.loads(self.store.read_bytes(self._step_key(step_id)))
        except NotFoundError:
            return None
        parts: dict[str, Any] = doc["parts"]
        return parts

    def explain_miss(self, fingerprint: Fingerprint, step_id: str) -> str:
        """Which parts changed since this step's last record, as one sentence."""
        previous = self.last_parts(step_id)
        if previous is None:
            return "no earlier record of this step"
        changed = fingerprint.diff(previous)
        if not changed:
            return "an identical record existed but could not be served"
        return "changed since the last record: " + ", ".join(changed)

    # leases --------------------------------------------------------------------------------
    def _leases(self, fingerprint: str) -> Sequence:
        return Sequence(self.store, f"reuse/leases/{fingerprint}")

    def lease_state(self, fingerprint: str) -> tuple[int, Document] | None:
        return self._leases(fingerprint).latest()

    @staticmethod
    def is_live(doc: Document, now: float | None = None) -> bool:
        """Whether a lease document still binds: not released, not expired, holder not dead."""
        if doc.get("released"):
            return False
        if float(doc["expires_at"]) < (now if now is not None else time.time()):
            return False
        # A holder on this machine whose process is gone is dead now, not when its lease expires.
        pid = doc.get("pid")
        return not (pid and doc.get("host") == socket.gethostname() and not pid_alive(int(pid)))

    def acquire(
        self,
        fingerprint: str,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        bind_to_process: bool = True,
        owner: str | None = None,
    ) -> Lease | Busy:
        """Take the lease for ``fingerprint``, or say who holds it.

        A lease bound to this process dies with it (on this host). An unbound one lives until it
        is released or its TTL passes: for work that outlives the process (a guarded task, a
        deferred remote job). A live lease held under the same ``owner`` is handed back, so an
        Airflow retry of the same task instance picks up its own earlier lease.
        """
        leases = self._leases(fingerprint)
        owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        while True:
            latest = leases.latest()
            if latest is not None and self.is_live(latest[1]):
                doc = latest[1]
                if doc["owner"] == owner:
                    return Lease(fingerprint, latest[0], owner, ttl, bind_to_process)
                return Busy(fingerprint, latest[0], str(doc["owner"]), float(doc["expires_at"]))
            number = latest[0] + 1 if latest else 1
            doc = self._lease_doc(owner, ttl, bind_to_process)
            if self.store.write_bytes(leases.key(number), encode(doc), if_absent=True):
                return Lease(fingerprint, number, owner, ttl, bind_to_process)

    @staticmethod
    def _lease_doc(owner: str, ttl: float, bound: bool, *, released: bool = False) -> Document:
        return {
            "owner": owner,
            "host": socket.gethostname(),
            "pid": os.getpid() if bound else None,
            "expires_at": time.time() + ttl,
            "released": released,
        }

    def heartbeat(self, lease: Lease) -> bool:
        """Extend the lease; ``False`` if someone else has taken it over (we lost it)."""
        leases = self._leases(lease.fingerprint)
        latest = leases.latest()
        if latest is None or latest[0] != lease.number or latest[1].get("owner") != lease.owner:
            return False
        leases.overwrite(lease.number, self._lease_doc(lease.owner, lease.ttl, lease.bound_to_process))
        return True

    def release(self, lease: Lease) -> None:
        doc = self._lease_doc(lease.owner, 0.0, lease.bound_to_process, released=True)
        self._leases(lease.fingerprint).overwrite(lease.number, doc)


class Heartbeat:
    """Keeps a lease alive from a background thread while a step runs."""

    def __init__(self, store: ReuseStore, lease: Lease) -> None:
        self.store = store
        self.lease = lease
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amlpipe-lease-heartbeat", daemon=True)

    def _run(self) -> None:
        interval = max(self.lease.ttl / 3.0, 0.2)
        while not self._stop.wait(interval):
            if not self.store.heartbeat(self.lease):
                self.lost = True
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
