"""The commit protocol every step kind goes through, and the checks before a record is served.

Commit (see docs/architecture.md, "Commit protocol", for why each reader is safe at every instant):

1. publish each output folder as a content-addressed object (files, then its manifest);
2. *fence*: the caller confirms it still holds the step's lease;
3. write the commit intent -- the commit point: from here on the commit completes, by this process
   or, if it dies, by the next one that needs it (:meth:`Committer.finish_abandoned`, ``amlpipe gc``);
4. register one version per output, each naming the record of step 5 as its completion document,
   so none is visible yet;
5. write the record: the commit and its versions become visible together.

Serving (:meth:`Committer.serve`) trusts nothing it reads: the newest record must carry a valid
checksum and hash to its fingerprint, each output must be the dataset the fingerprint declares,
registered under that version with that digest, and its object must be intact. Anything else is a
miss: the step runs again and its new record supersedes the damaged one.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_amlpipe import faults
from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.registry import DatasetRegistry
from airflow_provider_amlpipe.data.sequence import Document
from airflow_provider_amlpipe.errors import ConfigurationError, IntegrityError, NotFoundError, StepFailedError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.reuse.store import ReuseStore


class CommitLog(Protocol):
    """The logging calls the committer makes (a stdlib logger or Airflow's task logger)."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class CommitSpec:
    """Everything a commit needs, as plain JSON: it can cross tasks (guarded tasks) in XCom."""

    step_id: str
    parts: dict[str, Any]
    dataset_names: dict[str, str]
    producer: dict[str, Any]
    inputs: dict[str, dict[str, str]]
    #: Outputs that may be committed empty (``Output(..., required=False)``).
    optional: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> CommitSpec:
        return cls(
            doc["step_id"],
            doc["parts"],
            doc["dataset_names"],
            doc["producer"],
            doc["inputs"],
            list(doc.get("optional", [])),
        )


@dataclass(frozen=True)
class Committed:
    """A finished commit: output refs (as dicts), its record, and the versions it minted."""

    outputs: dict[str, dict[str, Any]]
    record: dict[str, Any]
    new_versions: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectSummary:
    """What a version needs of an object: its digest, file count and size (from a commit intent)."""

    digest: str
    file_count: int
    size: int


class Committer:
    """Commits step outputs into one datastore, finishes abandoned commits, and serves records."""

    def __init__(self, store: Datastore, hasher: Hasher, log: CommitLog) -> None:
        self.store = store
        self.hasher = hasher
        self.log = log
        self.reuse = ReuseStore(store)
        self.registry = DatasetRegistry(store)

    def commit(
        self,
        spec: CommitSpec,
        output_dirs: Mapping[str, Path],
        metrics: list[dict[str, Any]],
        duration: float,
        *,
        move: bool = False,
        fence: Callable[[], None] | None = None,
    ) -> Committed:
        """Publish each output folder, then commit them as versions and a record (see the module docstring).

        ``fence`` is called right before the commit point and raises when the caller lost the right
        to commit (its lease); nothing visible has been written then.
        """
        warnings: list[str] = []
        for name in spec.dataset_names:  # every output is checked before any is stored
            objects.check_output_tree(output_dirs[name], name)
            if not any(files for _, _, files in os.walk(output_dirs[name])):
                if name not in spec.optional:
                    raise StepFailedError(
                        f"output {name!r} is empty: the step wrote no file into it. Fix: write the output, or"
                        f" declare Output({name!r}, required=False) if an empty output is a valid result"
                    )
                warnings.append(f"output {name!r} is empty (committed as an empty version)")
                self.log.warning("%s", warnings[-1])
        manifests = {
            name: objects.publish(self.store, output_dirs[name], self.hasher, move=move) for name in spec.dataset_names
        }
        faults.point("commit.after_publish")
        if fence is not None:
            fence()
        body = {
            "outputs": {
                name: {
                    "dataset": spec.dataset_names[name],
                    "digest": manifest.digest,
                    "files": len(manifest.files),
                    "size": manifest.size,
                }
                for name, manifest in manifests.items()
            },
            "producer": spec.producer,
            "duration_seconds": round(duration, 3),
            "metrics": metrics,
            "inputs": spec.inputs,
        }
        fingerprint = Fingerprint(spec.parts)
        number, intent = self.reuse.begin(fingerprint, spec.step_id, body)
        faults.point("commit.after_intent")
        done = self.complete(fingerprint.digest, number, intent, rolling_forward=False)
        return Committed(done.outputs, done.record, done.new_versions, warnings)

    def complete(self, fingerprint: str, number: int, intent: Document, *, rolling_forward: bool = True) -> Committed:
        """Register the intent's versions and write its record; safe to repeat and to run concurrently."""
        commit = {"id": f"{fingerprint}/{number}", "done": self.reuse.record_key(fingerprint, number)}
        outputs: dict[str, dict[str, Any]] = {}
        new_versions: list[str] = []
        for name, out in sorted(intent["outputs"].items()):
            summary = ObjectSummary(str(out["digest"]), int(out["files"]), int(out["size"]))
            if rolling_forward:
                objects.read_manifest(self.store, summary.digest)  # the object must still be complete
                found = self.registry.find_by_commit(out["dataset"], commit["id"], since=_minus_minutes(intent))
                if found is not None:
                    outputs[name] = found.to_dict()
                    continue
            ref, created = self.registry.register(
                out["dataset"], summary, dict(intent.get("producer", {})), commit=commit
            )
            outputs[name] = ref.to_dict()
            if created:
                new_versions.append(f"{ref.name}:{ref.version}")
            faults.point("commit.after_version")
        record = self.reuse.finish(fingerprint, number, intent, outputs)
        self.note_served(record)
        return Committed(dict(record["outputs"]), record, new_versions)

    def note_served(self, record: Document) -> None:
        """Remember that the record's versions are what their datasets' producer served last
        (``DatasetInput(version="latest-produced")``)."""
        for ref in record["outputs"].values():
            self.registry.mark_served(str(ref["name"]), int(ref["version"]), dict(record.get("producer", {})))

    def finish_abandoned(self, fingerprint: str) -> int:
        """Complete the commits of ``fingerprint`` whose committer died after the commit point."""
        finished = 0
        for number, intent in self.reuse.pending(fingerprint):
            if self.reuse.is_live(intent):
                continue
            try:
                self.complete(fingerprint, number, intent)
            except (IntegrityError, NotFoundError, KeyError, TypeError, ValueError) as exc:
                self.log.warning("commit %s.%s cannot be completed: %s", fingerprint[:12], number, exc)
                continue
            self.log.info("completed commit %s.%s, abandoned by its process", fingerprint[:12], number)
            finished += 1
        return finished

    # serving ------------------------------------------------------------------------------------
    def serve(self, fingerprint: str) -> Document | None:
        """The newest record of ``fingerprint`` if everything it points at checks out, else ``None``."""
        record = self.reuse.lookup(fingerprint, on_problem=lambda problem: self.log.warning("%s", problem))
        if record is None:
            return None
        problem = self._outputs_problem(record)
        if problem is not None:
            self.log.warning(
                "Reuse record %s.%s found, but %s; executing again.", fingerprint[:12], record.get("record"), problem
            )
            return None
        return record

    def _outputs_problem(self, record: Document) -> str | None:
        declared: dict[str, str] = dict(record["parts"].get("outputs") or {})
        outputs: dict[str, Any] = record["outputs"]
        if set(outputs) != set(declared):
            return f"it records outputs {sorted(outputs)} where the step declares {sorted(declared)}"
        for name, ref in outputs.items():
            try:
                dataset, version, digest = str(ref["name"]), int(ref["version"]), str(ref["digest"])
            except (KeyError, TypeError, ValueError):
                return f"output {name!r} is not a dataset reference"
            if dataset != declared[name]:
                return f"output {name!r} names dataset {dataset!r}, not {declared[name]!r}"
            try:
                registered = self.registry.get(dataset, version, field=f"outputs[{name!r}]")
            except (ConfigurationError, IntegrityError) as exc:
                return f"output {name!r} ({dataset}:{version}) is not in the registry ({exc})"
            if registered.digest != digest or ref.get("path") != objects.data_prefix(digest):
                return f"output {name!r} does not point at the object {dataset}:{version} holds"
            try:
                objects.verify(self.store, digest, self.hasher)
            except IntegrityError as exc:
                return f"output {name!r} cannot be served ({exc})"
        return None


def _minus_minutes(intent: Document, minutes: int = 10) -> str:
    """An ISO time a little before the intent was written: how far back its versions can be."""
    created = dt.datetime.fromisoformat(str(intent["created_at"]))
    return (created - dt.timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
