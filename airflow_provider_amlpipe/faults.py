"""Fault injection at named points of the commit and lease protocols, for tests.

Production code calls :func:`point` at every instant where a crash or a failing datastore must not
break the protocol's promises (see docs/architecture.md, "Commit protocol"). Nothing happens unless
the environment variable ``AMLPIPE_FAULTS`` holds a JSON object mapping point names to actions::

    AMLPIPE_FAULTS='{"commit.after_intent": "kill"}'                       # SIGKILL this process there
    AMLPIPE_FAULTS='{"lease.heartbeat": {"action": "raise", "times": 2}}'  # fail the first 2 renewals
    AMLPIPE_FAULTS='{"datastore.write": {"action": "raise", "probability": 0.2}}'
    AMLPIPE_FAULTS='{"commit.publish.file": {"action": "kill", "after": 5}}'  # pass 5 times, then kill

``"raise"`` raises :class:`~airflow_provider_amlpipe.errors.TransientStoreError`, which the
protocols treat like a real transient datastore error. A name ending in ``*`` matches every point
with that prefix. The variable is read once per process; :func:`reset` re-reads it (tests).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
from typing import Any

from airflow_provider_amlpipe.errors import TransientStoreError

ENV = "AMLPIPE_FAULTS"

#: Every point the package defines, so tests can iterate over them (and a typo in a test fails).
POINTS = (
    "commit.publish.file",  # after each file of an output is stored
    "commit.after_object",  # an output's files are stored, its manifest not yet
    "commit.after_publish",  # every output's object complete, before the commit intent
    "commit.after_intent",  # the intent is durable; no version registered yet
    "commit.after_version",  # after each output's version is registered
    "commit.after_record",  # the record is written; the step's "last parts" not yet
    "lease.heartbeat",  # before each renewal of a lease
    "lease.acquire",  # before each attempt to take a lease
    "datastore.read",
    "datastore.write",
    "datastore.list",
    "datastore.delete",
)

_lock = threading.Lock()
_rules: dict[str, dict[str, Any]] | None = None
_hits: dict[str, int] = {}


def _load() -> dict[str, dict[str, Any]]:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return {}
    spec = json.loads(raw)
    rules = {}
    for name, rule in spec.items():
        rules[name] = {"action": rule} if isinstance(rule, str) else dict(rule)
    return rules


def reset() -> None:
    """Forget the parsed rules and hit counts (the next :func:`point` re-reads the environment)."""
    global _rules
    with _lock:
        _rules = None
        _hits.clear()


def _rule_for(name: str, rules: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if name in rules:
        return rules[name]
    for pattern, rule in rules.items():
        if pattern.endswith("*") and name.startswith(pattern[:-1]):
            return rule
    return None


def point(name: str) -> None:
    """Act on the fault configured for ``name``, if any (the common case: none, at once)."""
    global _rules
    rules = _rules
    if rules is None:
        with _lock:
            rules = _rules = _load()
    if not rules:
        return
    rule = _rule_for(name, rules)
    if rule is None:
        return
    with _lock:
        hit = _hits.get(name, 0) + 1
        _hits[name] = hit
    if hit <= int(rule.get("after", 0)):
        return
    times = rule.get("times")
    if times is not None and hit > int(rule.get("after", 0)) + int(times):
        return
    if random.random() >= float(rule.get("probability", 1.0)):
        return
    action = rule.get("action", "raise")
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise TransientStoreError(f"injected fault at {name}")
