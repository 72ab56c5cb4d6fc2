"""One step's life, independent of Airflow: decide (reuse / wait / run), run, commit.

The Airflow operators call :meth:`StepRunner.decide`, then either serve the reused outputs,
defer while another worker holds the lease, or call :meth:`StepRunner.run`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_amlpipe.data.datastore import Datastore, new_temp_dir
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.reuse.commit import CommitSpec, Committer
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.reuse.store import Busy, Heartbeat, Lease, pid_alive
from airflow_provider_amlpipe.steps.inputs import ResolvedInput


class StepLog(Protocol):
    """The logging calls the runner makes (a stdlib logger or Airflow's task logger)."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


WORKSPACE_PREFIX = "amlpipe-step-"
OWNER_FILE = ".amlpipe-owner"


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
            [o.name for o in self.outputs if not o.required],
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
    warnings: list[str] = field(default_factory=list)

    def status(self, reason: str) -> dict[str, Any]:
        """The step's ``amlpipe_status``: the same shape for every step kind and for guarded tasks."""
        record = self.record
        return {
            "reused": self.reused,
            "reason": reason,
            "fingerprint": self.fingerprint,
            "record": record.get("record"),
            "producer": record.get("producer", {}),
            "duration_seconds": record.get("duration_seconds"),
            "versions": {name: ref["version"] for name, ref in self.outputs.items()},
            "datasets": {name: ref["name"] for name, ref in self.outputs.items()},
            "new_versions": list(self.new_versions),
            "metrics": record.get("metrics", []),
            "warnings": list(self.warnings),
        }

    def is_new(self, output: str) -> bool:
        """Whether this commit minted the version it hands out for ``output``."""
        ref = self.outputs[output]
        return f"{ref['name']}:{ref['version']}" in self.new_versions


class StepRunner:
    """Runs the lifecycle for steps whose outputs and records live in ``store``."""

    def __init__(self, store: Datastore, hasher: Hasher, log: StepLog) -> None:
        self.store = store
        self.hasher = hasher
        self.log = log
        self.committer = Committer(store, hasher, log)
        self.reuse = self.committer.reuse
        self.registry = self.committer.registry

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
        # Someone may have committed between our lookup and our lease, or died after its commit
        # point: finish that commit rather than compute the step again.
        if self.committer.finish_abandoned(digest):
            reason = "(completed an abandoned commit)"
        served = self._serve(digest)
        if served is not None:
            self.reuse.release(acquired)
            return served
        return Run(acquired, reason)

    def _serve(self, digest: str) -> Reused | None:
        record = self.committer.serve(digest)
        return Reused(record) if record is not None else None

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
        *,
        stop: Callable[[], None] | None = None,
    ) -> StepResult:
        """Stage, execute, then commit outputs and the record; nothing is committed if anything fails.

        While the step runs and commits, a heartbeat keeps its lease; if the lease is lost the
        heartbeat calls ``stop`` (which should end ``execute``) and the commit is refused. The lease
        is released and the workspace removed whatever happens.
        """
        started = time.monotonic()
        with self.settling(decision.lease) as cleanup:
            if decision.lease is None:
                workspace = self._workspace(plan, params, cleanup)
                execute(workspace)
                return self._commit(plan, workspace, time.monotonic() - started, fence=None)
            # The heartbeat starts first: staging large inputs must not let the lease lapse.
            with Heartbeat(self.reuse, decision.lease, on_lost=stop) as heartbeat:
                workspace = self._workspace(plan, params, cleanup)
                execute(workspace)
                heartbeat.ensure_held()
                return self._commit(plan, workspace, time.monotonic() - started, fence=heartbeat.ensure_held)

    def _workspace(self, plan: StepPlan, params: dict[str, Any], cleanup: contextlib.ExitStack) -> StepWorkspace:
        workspace = self.prepare_workspace(plan, params)
        cleanup.callback(shutil.rmtree, workspace.root, ignore_errors=True)
        return workspace

    @contextlib.contextmanager
    def settling(self, lease: Lease | None) -> Iterator[contextlib.ExitStack]:
        """Commit -> release -> clean up, for every way a step's outputs reach their commit.

        Commit inside the block. When it is left, whatever happened, ``lease`` (if any) is released
        first -- the next run of the step need not wait for it to expire -- and then the clean-ups
        registered on the yielded stack run (in reverse order; each runs even if one before it failed).
        """
        with contextlib.ExitStack() as cleanup:
            try:
                yield cleanup
            finally:
                if lease is not None:
                    self.reuse.release(lease)

    def fence(self, lease: Lease | None) -> Callable[[], None] | None:
        """What a commit under ``lease`` calls before its commit point: fails if the lease was lost."""
        if lease is None:
            return None
        return lambda: self.reuse.ensure_held(lease)

    def _commit(
        self, plan: StepPlan, workspace: StepWorkspace, duration: float, fence: Callable[[], None] | None
    ) -> StepResult:
        metrics = read_metrics(workspace.metrics_file, self.log)
        return self.commit(plan.commit_spec(), workspace.outputs, metrics, duration, move=True, fence=fence)

    def commit(
        self,
        spec: CommitSpec,
        output_dirs: Mapping[str, Path],
        metrics: list[dict[str, Any]],
        duration: float,
        *,
        move: bool = False,
        fence: Callable[[], None] | None = None,
    ) -> StepResult:
        """Commit each output folder as a dataset version and write the reuse record (see ``reuse.commit``)."""
        done = self.committer.commit(spec, output_dirs, metrics, duration, move=move, fence=fence)
        fingerprint = Fingerprint(spec.parts).digest
        return StepResult(done.outputs, False, fingerprint, done.record, done.new_versions, done.warnings)

    def served(self, plan: StepPlan, reused: Reused) -> StepResult:
        """The result of serving a reused record (remembered as what its datasets' producer served last)."""
        self.committer.note_served(reused.record)
        return StepResult(reused.outputs, True, plan.fingerprint.digest, reused.record, [])


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


def read_metrics(path: Path, log: StepLog | None = None) -> list[dict[str, Any]]:
    """The metrics a script logged with ``runtime.log_metric``, in order.

    A line that is not a metric (a script wrote into the file itself) is skipped with a warning:
    metrics describe a run, they never decide whether its outputs are committed.
    """
    metrics = []
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            metric = json.loads(line)
        except ValueError:
            metric = None
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str) or "value" not in metric:
            if log is not None:
                log.warning(
                    "metrics line %d is not a metric written by runtime.log_metric; skipped: %.200s", number, line
                )
            continue
        metrics.append(metric)
    return metrics
