"""The step lifecycle without Airflow: failures commit nothing and always free the lease."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import StepFailedError
from airflow_provider_amlpipe.hashing import Hasher, StatCache
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.steps.runner import Reused, Run, StepPlan, StepRunner, StepWorkspace, Wait

LOG = logging.getLogger("test")


@pytest.fixture
def runner(tmp_path: Path) -> StepRunner:
    return StepRunner(LocalDatastore("s", tmp_path / "store"), Hasher(StatCache(tmp_path / "sc.sqlite")), LOG)


def make_plan(code: str = "c1") -> StepPlan:
    parts = {"kind": "test", "code": code, "outputs": {"out": "ds"}}
    return StepPlan("dag.task", {}, [Output("out")], {"out": "ds"}, Fingerprint(parts), {"run_id": "r"})


def decide(runner: StepRunner, plan: StepPlan) -> Run | Reused | Wait:
    return runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30)


def test_a_failing_step_commits_nothing_frees_its_lease_and_cleans_up(runner: StepRunner) -> None:
    plan = make_plan()
    decision = decide(runner, plan)
    assert isinstance(decision, Run) and decision.lease is not None
    seen: list[Path] = []

    def fail(workspace: StepWorkspace) -> None:
        seen.append(workspace.root)
        (workspace.outputs["out"] / "half.txt").write_text("partial")
        raise StepFailedError("boom")

    with pytest.raises(StepFailedError):
        runner.run(plan, decision, {}, fail)
    assert not seen[0].exists()
    assert runner.reuse.lookup(plan.fingerprint.digest) is None
    assert runner.registry.list_datasets() == []
    again = decide(runner, plan)  # not Wait: the lease was released
    assert isinstance(again, Run) and again.lease is not None and again.lease.number == 2


def test_a_step_that_lost_its_lease_discards_its_results(runner: StepRunner) -> None:
    plan = make_plan()
    decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=2)
    assert isinstance(decision, Run) and decision.lease is not None
    lease = decision.lease

    def stall_and_get_taken_over(workspace: StepWorkspace) -> None:
        (workspace.outputs["out"] / "x.txt").write_text("x")
        runner.reuse.release(lease)  # as if it expired ...
        taker = runner.reuse.acquire(plan.fingerprint.digest, ttl=30)  # ... and another worker took over
        assert not isinstance(taker, Wait)
        time.sleep(1.0)  # the heartbeat (every ttl/4) notices

    with pytest.raises(StepFailedError, match="taken over"):
        runner.run(plan, decision, {}, stall_and_get_taken_over)
    assert runner.reuse.lookup(plan.fingerprint.digest) is None


def test_a_committed_step_is_reused_and_regenerate_runs_it_again(runner: StepRunner) -> None:
    plan = make_plan()
    decision = decide(runner, plan)
    assert isinstance(decision, Run)

    def write(workspace: StepWorkspace) -> None:
        (workspace.outputs["out"] / "x.txt").write_text("x")

    result = runner.run(plan, decision, {}, write)
    assert result.new_versions == ["ds:1"]
    hit = decide(runner, plan)
    assert isinstance(hit, Reused) and hit.outputs == result.outputs
    forced = runner.decide(plan, allow_reuse=True, regenerate=True, lease_ttl=30)
    assert isinstance(forced, Run) and forced.lease is None
    assert "regenerate_outputs" in forced.reason


def test_workspaces_of_dead_workers_are_swept_and_others_kept(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    from airflow_provider_amlpipe.steps.runner import OWNER_FILE, WORKSPACE_PREFIX, sweep_stale_workspaces

    dead_pid = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    host = socket.gethostname()
    folders = {}
    for name, owner in (
        ("dead", f"{host} {dead_pid}"),
        ("alive", f"{host} {os.getpid()}"),
        ("elsewhere", f"other-host {dead_pid}"),
    ):
        folder = tmp_path / f"{WORKSPACE_PREFIX}{name}"
        folder.mkdir()
        (folder / OWNER_FILE).write_text(owner)
        folders[name] = folder
    unowned = tmp_path / f"{WORKSPACE_PREFIX}unowned"
    unowned.mkdir()
    assert sweep_stale_workspaces(tmp_path) == [folders["dead"]]
    assert not folders["dead"].exists()
    assert folders["alive"].exists() and folders["elsewhere"].exists() and unowned.exists()


def test_an_empty_required_output_fails_the_step_and_an_optional_one_warns(runner: StepRunner) -> None:
    from airflow_provider_amlpipe.steps.runner import StepPlan as Plan

    parts = {"kind": "test", "code": "empty", "outputs": {"out": "ds.empty"}}
    plan = Plan("dag.empty", {}, [Output("out")], {"out": "ds.empty"}, Fingerprint(parts), {"run_id": "r"})
    decision = decide(runner, plan)
    assert isinstance(decision, Run)
    with pytest.raises(StepFailedError, match=r"output 'out' is empty.*Output\('out', required=False\)"):
        runner.run(plan, decision, {}, lambda ws: (ws.outputs["out"] / "sub").mkdir())
    assert runner.registry.list_datasets() == []

    optional = Plan("dag.empty", {}, [Output("out", required=False)], {"out": "ds.empty"}, Fingerprint(parts), {})
    decision = decide(runner, optional)
    assert isinstance(decision, Run)
    result = runner.run(optional, decision, {}, lambda ws: None)
    assert result.outputs["out"]["files"] == 0
    assert result.status("ran")["warnings"] == ["output 'out' is empty (committed as an empty version)"]


def test_latest_produced_follows_what_the_producer_served_last(runner: StepRunner) -> None:
    from airflow_provider_amlpipe.data.refs import DatasetInput
    from airflow_provider_amlpipe.steps.inputs import resolve_inputs

    def produce(code: str, text: str) -> None:
        plan = make_plan(code)
        decision = decide(runner, plan)
        if isinstance(decision, Reused):
            runner.served(plan, decision)
            return
        assert isinstance(decision, Run)
        runner.run(plan, decision, {}, lambda ws: (ws.outputs["out"] / "x.txt").write_text(text))

    def resolve(version: str) -> int:
        item = resolve_inputs({"x": DatasetInput("ds", version)}, lambda _: runner.store, runner.hasher, "s")["x"]
        assert item.ref is not None
        return item.ref.version

    produce("a", "A")
    produce("b", "B")
    assert (resolve("latest"), resolve("latest-produced")) == (2, 2)
    produce("a", "A")  # back to the first inputs: reused, serves version 1
    assert (resolve("latest"), resolve("latest-produced")) == (2, 1)
