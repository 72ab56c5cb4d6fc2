"""The reuse store: commit intents, committed step records and single-flight leases, in a datastore.

Layout (all JSON, all written create-if-absent except a lease's own heartbeats):

- ``reuse/commits/<fingerprint>/<n>.json`` -- commit intent ``n`` of this fingerprint: everything
  needed to finish the commit (outputs as object digests, producer, metrics), written once every
  output's object is complete; the *commit point* (see docs/architecture.md, "Commit protocol");
- ``reuse/records/<fingerprint>/<n>.json`` -- the record of commit ``n``, written after its
  versions: its existence is what makes the commit and its versions visible. The highest ``n``
  with a record is current, so regenerating outputs supersedes rather than overwrites history;
- ``reuse/leases/<fingerprint>/<n>.json`` -- who is computing this fingerprint right now; the
  holder heartbeats by rewriting its own lease; a newer ``n`` takes over an expired or released one;
- ``reuse/steps/<step id>.json`` -- the fingerprint parts of the last record of a step, used only
  to explain a miss.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_amlpipe import faults
from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.registry import utcnow_iso
from airflow_provider_amlpipe.data.retry import retrying
from airflow_provider_amlpipe.data.sequence import WRITER, Document, Sequence, decode, encode
from airflow_provider_amlpipe.errors import ConfigurationError, IntegrityError, LeaseLostError, NotFoundError
from airflow_provider_amlpipe.hashing import sha256_json
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint

DEFAULT_LEASE_TTL = 60.0
#: Below this a lease cannot be renewed reliably on a loaded machine; shorter TTLs are refused.
MIN_LEASE_TTL = 2.0
#: A step id (``<dag_id>.<task_id>[.<map index>]``) longer than this, in UTF-8 bytes, is shortened
#: in its ``reuse/steps`` key: a file name holds 255 bytes.
MAX_STEP_KEY_BYTES = 160
#: How long a commit (intent to record: a few small writes) may take before others finish it.
COMMIT_TTL = 600.0
CHECKSUM = "checksum"

_log = logging.getLogger(__name__)


def check_lease_ttl(ttl: object, field: str = "lease_ttl") -> float:
    """``ttl`` as seconds, or a :class:`ConfigurationError` naming ``field``."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl):
        raise ConfigurationError(
            field, f"expected a number of seconds, got {ttl!r}", f"pass a number, such as {field}=60"
        )
    if ttl < MIN_LEASE_TTL:
        raise ConfigurationError(
            field,
            f"{ttl} seconds is below the minimum of {MIN_LEASE_TTL:g} (the lease could expire between two"
            " heartbeats and let an identical step run twice)",
            f"pass at least {MIN_LEASE_TTL:g} (the default is {DEFAULT_LEASE_TTL:g})",
        )
    return float(ttl)


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


def with_checksum(doc: Document) -> Document:
    """``doc`` with a checksum over its other fields, so a damaged or edited record is noticed."""
    body = {k: v for k, v in doc.items() if k not in (CHECKSUM, WRITER)}
    return {**body, CHECKSUM: sha256_json(body)}


def checksum_ok(doc: Document) -> bool:
    body = {k: v for k, v in doc.items() if k not in (CHECKSUM, WRITER)}
    return doc.get(CHECKSUM) == sha256_json(body)


class ReuseStore:
    """Lookup, lease, commit and explain, over one datastore."""

    def __init__(self, store: Datastore) -> None:
        self.store = store

    # commits and records ---------------------------------------------------------------------
    def _intents(self, fingerprint: str) -> Sequence:
        return Sequence(self.store, f"reuse/commits/{fingerprint}")

    def _records(self, fingerprint: str) -> Sequence:
        return Sequence(self.store, f"reuse/records/{fingerprint}")

    def record_key(self, fingerprint: str, number: int) -> str:
        """Where the record of commit ``number`` lives (a version names it as its completion document)."""
        return self._records(fingerprint).key(number)

    def begin(self, fingerprint: Fingerprint, step_id: str, body: Document) -> tuple[int, Document]:
        """Write a commit intent (the commit point); return its number and document."""
        now = time.time()
        intent = {
            **body,
            "fingerprint": fingerprint.digest,
            "parts": fingerprint.parts,
            "step_id": step_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "created_at": utcnow_iso(),
            "expires_at": now + COMMIT_TTL,
        }
        number, doc, _ = self._intents(fingerprint.digest).append(lambda _n: intent)
        return number, doc

    def finish(self, fingerprint: str, number: int, intent: Document, outputs: dict[str, Any]) -> Document:
        """Write the record of commit ``number`` (``outputs``: name -> DataRef dict); return the record.

        Idempotent: when the record exists already (another process finished this commit), that
        record is returned.
        """
        record = with_checksum(
            {
                "outputs": outputs,
                "producer": intent.get("producer", {}),
                "duration_seconds": intent.get("duration_seconds"),
                "metrics": intent.get("metrics", []),
                "inputs": intent.get("inputs", {}),
                "fingerprint": fingerprint,
                "parts": intent["parts"],
                "step_id": intent["step_id"],
                "record": number,
                "committed_at": utcnow_iso(),
            }
        )
        records = self._records(fingerprint)
        written = records.create(number, record)
        if written is None:
            written = records.get(number)
        faults.point("commit.after_record")
        step_doc = encode({"fingerprint": fingerprint, "parts": intent["parts"]})
        retrying(lambda: self.store.write_bytes(self._step_key(str(intent["step_id"])), step_doc))
        return written

    def commit(self, fingerprint: Fingerprint, step_id: str, body: Document) -> Document:
        """Begin and finish a commit whose ``body["outputs"]`` are already registered refs."""
        number, intent = self.begin(fingerprint, step_id, body)
        return self.finish(fingerprint.digest, number, intent, dict(body.get("outputs", {})))

    def lookup(self, fingerprint: str, on_problem: Callable[[str], None] | None = None) -> Document | None:
        """The current record of ``fingerprint``, or ``None``.

        A damaged or inconsistent newest record is reported to ``on_problem`` and treated as no
        record (a miss), so the step runs again and its new record supersedes the damaged one.
        """
        records = self._records(fingerprint)
        numbers = records.numbers()
        if not numbers:
            return None
        number = numbers[-1]
        problem: str | None
        try:
            doc = records.get(number)
        except (IntegrityError, NotFoundError) as exc:
            problem = str(exc)
        else:
            problem = self.record_problem(doc, fingerprint, number)
            if problem is None:
                return doc
        (on_problem or _log.warning)(f"reuse record {fingerprint[:12]}.{number} cannot be served: {problem}")
        return None

    @staticmethod
    def record_problem(doc: Document, fingerprint: str, number: int) -> str | None:
        """Why a record cannot be what it claims to be, or ``None``."""
        if not checksum_ok(doc):
            return "its checksum does not match its content (damaged or edited)"
        if doc.get("fingerprint") != fingerprint or doc.get("record") != number:
            return "it is filed under another fingerprint or number than it names"
        parts = doc.get("parts")
        if not isinstance(parts, dict) or Fingerprint(parts).digest != fingerprint:
            return "its fingerprint parts do not hash to its fingerprint"
        if not isinstance(doc.get("outputs"), dict):
            return "it lists no outputs"
        return None

    def pending(self, fingerprint: str) -> list[tuple[int, Document]]:
        """Commit intents of ``fingerprint`` that have no record yet (newest first)."""
        intents = self._intents(fingerprint)
        records = set(self._records(fingerprint).numbers())
        found = []
        for number in reversed(intents.numbers()):
            if number in records:
                continue
            try:
                found.append((number, intents.get(number)))
            except (IntegrityError, NotFoundError) as exc:
                _log.warning("commit intent %s.%s is unreadable: %s", fingerprint[:12], number, exc)
        return found

    def fingerprints_with_intents(self) -> list[str]:
        """Every fingerprint that has commit intents (for ``amlpipe gc``)."""
        keys = retrying(lambda: list(self.store.list("reuse/commits")))
        return sorted({key.split("/")[2] for key in keys if key.count("/") >= 3})

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
            doc = decode(retrying(lambda: self.store.read_bytes(self._step_key(step_id))), step_id)
            parts: dict[str, Any] = doc["parts"]
        except (NotFoundError, IntegrityError, KeyError):
            return None
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
        """The newest lease of ``fingerprint`` and its document; ``None`` if there is none, or if that
        document is damaged or gone (a lease nobody can show is held binds no one)."""
        latest = self._newest_lease(self._leases(fingerprint))
        return None if latest is None or latest[1] is None else (latest[0], latest[1])

    @staticmethod
    def _newest_lease(leases: Sequence) -> tuple[int, Document | None] | None:
        """The newest lease number with its document (``None`` when damaged or gone), from one listing."""
        numbers = leases.numbers()
        if not numbers:
            return None
        try:
            return numbers[-1], leases.get(numbers[-1])
        except (IntegrityError, NotFoundError):
            return numbers[-1], None

    @staticmethod
    def is_live(doc: Document, now: float | None = None) -> bool:
        """Whether a lease (or commit intent) still binds: not released, not expired, holder not dead."""
        if doc.get("released"):
            return False
        if float(doc.get("expires_at", 0)) < (now if now is not None else time.time()):
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
        ttl = check_lease_ttl(ttl)
        leases = self._leases(fingerprint)
        owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        while True:
            faults.point("lease.acquire")
            # The number we try next comes from the same listing as the liveness check: a lease created
            # after that listing makes our create fail, and the next round judges it (a second listing
            # here once let a worker skip a live lease created in between and take the one after it).
            latest = self._newest_lease(leases)
            doc = latest[1] if latest is not None else None
            if latest is not None and doc is not None and self.is_live(doc):
                if doc["owner"] == owner:
                    return Lease(fingerprint, latest[0], owner, ttl, bind_to_process)
                return Busy(fingerprint, latest[0], str(doc["owner"]), float(doc["expires_at"]))
            number = latest[0] + 1 if latest is not None else 1
            if leases.create(number, self._lease_doc(owner, ttl, bind_to_process)) is not None:
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

    def holds(self, lease: Lease) -> bool:
        """Whether ``lease`` is still the newest lease of its fingerprint, ours, and not expired."""
        latest = self.lease_state(lease.fingerprint)
        return (
            latest is not None
            and latest[0] == lease.number
            and latest[1].get("owner") == lease.owner
            and not latest[1].get("released")
            and float(latest[1].get("expires_at", 0)) > time.time()
        )

    def ensure_held(self, lease: Lease) -> None:
        """Raise :class:`LeaseLostError` unless ``lease`` is still held (checked before committing)."""
        if not self.holds(lease):
            raise LeaseLostError(
                f"the lease on {lease.fingerprint[:12]} was taken over or expired before the commit; the step's"
                " results are discarded so an identical step cannot be committed twice. Raise lease_ttl if the"
                " worker or the datastore is overloaded."
            )

    def heartbeat(self, lease: Lease) -> bool:
        """Extend the lease; ``False`` if someone else has taken it over (we lost it)."""
        faults.point("lease.heartbeat")
        latest = self._leases(lease.fingerprint).latest()
        if latest is None or latest[0] != lease.number or latest[1].get("owner") != lease.owner:
            return False
        self._leases(lease.fingerprint).overwrite(
            lease.number, self._lease_doc(lease.owner, lease.ttl, lease.bound_to_process)
        )
        return True

    def wait_outcome(self, fingerprint: str, lease_number: int) -> str | None:
        """``"committed"`` once a record exists, ``"lease_ended"`` once lease ``lease_number`` is no
        longer the live one (released, expired, holder dead), else ``None`` (still running)."""
        if self.lookup(fingerprint) is not None:
            return "committed"
        state = self.lease_state(fingerprint)
        if state is None or state[0] != lease_number or not self.is_live(state[1]):
            return "lease_ended"
        return None

    def wait_briefly(
        self, fingerprint: str, lease_number: int, timeout: float, max_interval: float = 1.0
    ) -> str | None:
        """Poll :meth:`wait_outcome` for up to ``timeout`` seconds, often at first (a short step
        costs about its own duration), then every ``max_interval``; ``None`` if still running."""
        deadline = time.monotonic() + timeout
        interval = min(0.05, max_interval)
        while True:
            outcome = self.wait_outcome(fingerprint, lease_number)
            left = deadline - time.monotonic()
            if outcome is not None or left <= 0:
                return outcome
            time.sleep(min(interval, left))
            interval = min(interval * 2, max_interval)

    def release(self, lease: Lease) -> None:
        """Give the lease up (best effort: an unreleased lease still ends when its TTL passes)."""
        if not self.holds(lease):
            return  # taken over meanwhile: never overwrite another holder's lease
        doc = self._lease_doc(lease.owner, 0.0, lease.bound_to_process, released=True)
        self._leases(lease.fingerprint).overwrite(lease.number, doc)


class Heartbeat:
    """Keeps a lease alive from a background thread while a step runs and commits.

    It fails safe: a renewal that fails (a datastore error) is retried until the lease's own
    deadline is near; if the lease cannot be renewed by then -- or someone took it over -- the
    heartbeat marks it ``lost`` and calls ``on_lost`` (which stops the step's process), and
    :meth:`ensure_held` refuses the commit. The holder stops ``margin`` seconds before others may
    consider the lease expired, leaving room for clock differences between machines.
    """

    def __init__(self, store: ReuseStore, lease: Lease, on_lost: Callable[[], None] | None = None) -> None:
        self.store = store
        self.lease = lease
        self.on_lost = on_lost
        self.lost = False
        self.reason = ""
        self.margin = min(lease.ttl / 4.0, 5.0)
        self._valid_until = time.monotonic() + lease.ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amlpipe-lease-heartbeat", daemon=True)

    def _run(self) -> None:
        interval = max(self.lease.ttl / 4.0, 0.2)
        wait = interval
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                renewed = self.store.heartbeat(self.lease)
            except Exception as exc:  # any failure to renew: retry until the deadline, never die silently
                if time.monotonic() >= self._valid_until - self.margin:
                    self._lose(f"the lease could not be renewed before it expired (last error: {exc})")
                    return
                _log.warning("could not renew the lease on %s (will retry): %s", self.lease.fingerprint[:12], exc)
                wait = min(interval, 0.5)
                continue
            if not renewed:
                self._lose("it was taken over by another worker")
                return
            self._valid_until = started + self.lease.ttl
            wait = interval

    def _lose(self, reason: str) -> None:
        self.lost, self.reason = True, reason
        _log.error("lost the lease on %s: %s; stopping the step", self.lease.fingerprint[:12], reason)
        if self.on_lost is not None:
            try:
                self.on_lost()
            except Exception:  # stopping is best effort; the commit is refused regardless
                _log.exception("could not stop the step after losing its lease")

    def ensure_held(self) -> None:
        """Raise :class:`LeaseLostError` unless the lease is held with time to spare (the commit fence)."""
        if not self.lost and time.monotonic() >= self._valid_until - self.margin:
            self.lost, self.reason = True, "the lease was not renewed in time"
        if self.lost:
            raise LeaseLostError(
                f"the step's lease was lost while it ran ({self.reason}); its results are discarded so an"
                " identical step cannot be committed twice. Raise lease_ttl if the worker or the datastore is"
                " overloaded."
            )
        self.store.ensure_held(self.lease)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
