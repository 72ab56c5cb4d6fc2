"""Step fingerprints: a digest over named parts, so a miss can be explained part by part.

Each part is a JSON value; the fingerprint is the SHA-256 of the canonical encoding of all
parts. Parts never hold secrets, run ids, timestamps or the compute target's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_amlpipe.hashing import sha256_json

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Fingerprint:
    """The parts of a step that can change its result, and their digest."""

    parts: dict[str, Any]

    @property
    def digest(self) -> str:
        return sha256_json({"schema": SCHEMA_VERSION, **self.parts})

    def diff(self, previous: dict[str, Any]) -> list[str]:
        """Human-readable names of the parts that differ from ``previous`` parts.

        Dict-valued parts (inputs, params) are compared key by key, so the message says
        ``inputs.raw_data`` rather than just ``inputs``.
        """
        changed: list[str] = []
        for name in sorted(set(self.parts) | set(previous)):
            mine, theirs = self.parts.get(name), previous.get(name)
            if mine == theirs:
                continue
            if isinstance(mine, dict) and isinstance(theirs, dict):
                keys = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                changed.extend(f"{name}.{k}" for k in keys)
            else:
                changed.append(name)
        return changed
