"""One step's life, independent of Airflow: decide (reuse / wait / run), run, commit.

The Airflow operators call :meth:`StepRunner.decide`, then either serve the reused outputs,
defer while another worker holds the lease, or call :meth:`StepRunner.run`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import Datastore, new_temp_dir
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.data.registry import DatasetRegistry
from airflow_provider_amlpipe.errors import ConfigurationError, IntegrityError, StepFailedError
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.reuse.hashing import Hasher
from airflow_provider_amlpipe.reuse.store import Busy, Heartbeat, Lease, ReuseStore, pid_alive
from airflow_provider_amlpipe.steps.inputs import ResolvedInput


class StepLog(Protocol):
    """The logging calls the runner makes (a stdlib logger or Airflow's task logger)."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


WORKSPACE_PREFIX = "amlpipe-step-"
OWNER_FILE = ".amlpipe-owner"


@dataclass(frozen=True)
class CommitSpec:
    """Everything a commit needs, as plain JSON: it can cross tasks (guarded tasks) in XCom."""

    step_id: str
    parts: dict[str, Any]
    dataset_names: dict[str, str]
    producer: dict[str, Any]
    inputs: dict[str, dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> CommitSpec:
        return cls(doc["step_id"], doc["parts"], doc["dataset_names"], doc["producer"], doc["inputs"])


@dataclass
class StepPlan:
    """A validated step ready for the reuse decision: identity, inputs, outputs, fingerprint."""

    step_id: str
    inputs: dict[str, ResolvedInput]
    outputs: list[Output]
    dataset_names: dict[str, str]
    fingerprint: Fingerprint
    producer: dict[str, Any] = field(default_factory=dict)

    def commit_spec(self) -> CommitSpec:
        return CommitSpec(
            self.step_id,
            self.fingerprint.parts,
            {o.name: self.dataset_names[o.name] for o in self.outputs},
            self.producer,
            {name: {"digest": i.digest, "source": i.description} for name, i in self.inputs.items()},
        )


@dataclass(frozen=True)
class Reused:
    """A committed record whose outputs were verified intact: serve them."""

    record: dict[str, Any]

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        outputs: dict[str, dict[str, Any]] = self.record["outputs"]
        return outputs


@dataclass(frozen=True)
class Run:
    """Execute the step; ``lease`` is ``None`` when reuse is off for this step or run."""

    lease: Lease | None
    reason: str


@dataclass(frozen=True)
class Wait:
    """An identical step is running elsewhere; wait for its lease to end, then decide again."""

    busy: Busy


Decision = Reused | Run | Wait


@dataclass
class StepWorkspace:
    """Local paths a step runs with: staged inputs, empty output folders, the metrics file."""

    root: Path
    inputs: dict[str, Path]
    outputs: dict[str, Path]
    metrics_file: Path
    context_file: Path


@dataclass(frozen=True)
class StepResult:
    """What a finished (run or reused) step hands to XCom."""

    outputs: dict[str, dict[str, Any]]
    reused: bool
    fingerprint: str
    record: dict[str, Any]
    new_versions: list[str]


class StepRunner:
    """Runs the lifecycle for steps whose outputs and records live in ``store``."""

    def __init__(self, store: Datastore, hasher: Hasher, log: StepLog) -> None:
        self.store = store
        self.hasher = hasher
        self.log = log
        self.reuse = ReuseStore(store)
        self.registry = DatasetRegistry(store)

    # decision ------------------------------------------------------------------------------
    def decide(
        self,
        plan: StepPlan,
        *,
        allow_reuse: bool,
        regenerate: bool,
        lease_ttl: float,
        bind_to_process: bool = True,
        owner: str | None = None,
    ) -> Decision:
        digest = plan.fingerprint.digest
        if not allow_reuse:
            return Run(None, "allow_reuse is False for this step")
        if regenerate:
            return Run(None, "regenerate_outputs was requested for this run")
        served = self._serve(digest)
        if served is not None:
            return served
        reason = self.reuse.explain_miss(plan.fingerprint, plan.step_id)
        acquired = self.reuse.acquire(digest, ttl=lease_ttl, bind_to_process=bind_to_process, owner=owner)
        if isinstance(acquired, Busy):
            return Wait(acquired)
        # Someone may have committed between our lookup and our lease.
        served = self._serve(digest)
        if served is not None:
            self.reuse.release(acquired)
            return served
        return Run(acquired, reason)

    def _serve(self, digest: str) -> Reused | None:
        record = self.reuse.lookup(digest)
        if record is None:
            return None
        for name, ref in record["outputs"].items():
            try:
                objects.verify(self.store, ref["digest"], self.hasher)
            except IntegrityError as exc:
                self.log.warning(
                    "Reuse record %s.%s found, but output %r cannot be served (%s); executing again.",
                    digest[:12],
                    record.get("record"),
                    name,
                    exc,
                )
                return None
        return Reused(record)

    # execution -----------------------------------------------------------------------------
    def prepare_workspace(self, plan: StepPlan, params: dict[str, Any], root: Path | None = None) -> StepWorkspace:
        """Stage inputs, make empty output folders and the context file, under ``root`` (default: a temp dir)."""
        if root is None:
            sweep_stale_workspaces()
            root = new_temp_dir(WORKSPACE_PREFIX)
            (root / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}", encoding="utf-8")
        else:
            root.mkdir(parents=True, exist_ok=True)
        inputs = {name: item.stage(root / "inputs" / name) for name, item in plan.inputs.items()}
        outputs = {}
        for output in plan.outputs:
            path = root / "outputs" / output.name
            path.mkdir(parents=True)
            outputs[output.name] = path
        metrics_file = root / "metrics.jsonl"
        metrics_file.touch()
        context_file = root / "context.json"
        context = {
            "step_id": plan.step_id,
            "inputs": {k: str(v) for k, v in inputs.items()},
            "outputs": {k: str(v) for k, v in outputs.items()},
            "params": params,
            "metrics_file": str(metrics_file),
        }
        context_file.write_text(json.dumps(context, indent=1), encoding="utf-8")
        return StepWorkspace(root, inputs, outputs, metrics_file, context_file)

    def run(
        self,
        plan: StepPlan,
        decision: Run,
        params: dict[str, Any],
        execute: Callable[[StepWorkspace], None],
    ) -> StepResult:
        """Stage, execute, then commit outputs and the record; nothing is committed if anything fails.

        The lease is released and the workspace removed whatever happens.
        """
        started = time.monotonic()
        workspace: StepWorkspace | None = None
        try:
            workspace = self.prepare_workspace(plan, params)
            if decision.lease is not None:
                with Heartbeat(self.reuse, decision.lease) as heartbeat:
                    execute(workspace)
                if heartbeat.lost:
                    raise StepFailedError(
                        "the step's lease was taken over while it ran (its heartbeat stalled past the lease TTL);"
                        " its results are discarded. Raise lease_ttl if the worker is overloaded."
                    )
            else:
                execute(workspace)
            return self._commit(plan, workspace, time.monotonic() - started)
        finally:
            if decision.lease is not None:
                self.reuse.release(decision.lease)
            if workspace is not None:
                shutil.rmtree(workspace.root, ignore_errors=True)

    def _commit(self, plan: StepPlan, workspace: StepWorkspace, duration: float) -> StepResult:
        metrics = read_metrics(workspace.metrics_file)
        return self.commit(plan.commit_spec(), workspace.outputs, metrics, duration, move=True)

    def commit(
        self,
        spec: CommitSpec,
        output_dirs: Mapping[str, Path],
        metrics: list[dict[str, Any]],
        duration: float,
        *,
        move: bool = False,
    ) -> StepResult:
        """Publish each output folder as a dataset version, then write the reuse record (last)."""
        outputs: dict[str, dict[str, Any]] = {}
        new_versions: list[str] = []
        manifests = {
            name: objects.publish(self.store, output_dirs[name], self.hasher, move=move) for name in spec.dataset_names
        }
        for name, dataset in spec.dataset_names.items():
            ref, created = self.registry.register(dataset, manifests[name], spec.producer)
            outputs[name] = ref.to_dict()
            if created:
                new_versions.append(f"{ref.name}:{ref.version}")
        fingerprint = Fingerprint(spec.parts)
        record = self.reuse.commit(
            fingerprint,
            spec.step_id,
            {
                "outputs": outputs,
                "producer": spec.producer,
                "duration_seconds": round(duration, 3),
                "metrics": metrics,
                "inputs": spec.inputs,
            },
        )
        return StepResult(outputs, False, fingerprint.digest, record, new_versions)


def sweep_stale_workspaces(parent: Path | None = None) -> list[Path]:
    """Remove temporary step workspaces whose worker died on this machine (e.g. SIGKILL).

    Only folders that carry an owner file naming this host and a process that no longer exists
    are removed; anything else is left alone.
    """
    removed = []
    for folder in (parent or Path(tempfile.gettempdir())).glob(f"{WORKSPACE_PREFIX}*"):
        try:
            host, pid = (folder / OWNER_FILE).read_text(encoding="utf-8").split()
        except (OSError, ValueError):
            continue
        if host == socket.gethostname() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The metrics a script logged with ``runtime.log_metric``, in order."""
    metrics = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            metrics.append(json.loads(line))
    return metrics


def check_unique_outputs(outputs: list[Output]) -> None:
    seen: set[str] = set()
    for index, output in enumerate(outputs):
        output.validate(f"outputs[{index}]")
        if output.name in seen:
            raise ConfigurationError(
                f"outputs[{index}].name", f"two outputs are named {output.name!r}", "give every output its own name"
            )
        seen.add(output.name)


def reused_result(plan: StepPlan, reused: Reused) -> StepResult:
    return StepResult(reused.outputs, True, plan.fingerprint.digest, reused.record, [])
