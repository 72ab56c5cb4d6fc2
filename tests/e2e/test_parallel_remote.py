"""ParallelRunStepOperator on Azure Batch nodes (``compute=<Batch connection>``, ``node_count``), through
the real Airflow path (``dag.test()``), the real azure-batch 15 client, the local Batch server (one task
per node, run as processes on this machine) and Azurite for staging: shares merged in item order, a node
that fails retried, per-item incremental reruns, and the error threshold applied across nodes."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.batch_server import BatchTestServer, create_pool, running_batch_server
from support.dagtools import RunResult, run_dag, write_dag
from support.stores import BlobContainer, local_store

from airflow_provider_amlpipe.data.objects import materialize

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.slow]

POOL = "nodes"
#: Appends ``<node> <pid> <file>`` per item to the log file; one row per item. ``--crash-marker``: the first
#: worker to claim the marker (an atomic rename) kills its node's driver in ``init()``; with
#: ``--crash-first-share`` the node given the first share always fails in ``init()``. ``bad.txt`` fails.
SCRIPT = """
import argparse, json, os
from pathlib import Path

def init():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--log")
    parser.add_argument("--crash-marker")
    parser.add_argument("--crash-first-share", action="store_true")
    parser.add_argument("--files-to")
    args, _ = parser.parse_known_args()
    if args.crash_first_share and json.load(open(".amlpipe/driver-spec.json"))["share"][0] == 0:
        raise RuntimeError("this node always fails")
    marker = args.crash_marker
    if marker and os.path.exists(marker):
        try:
            os.rename(marker, marker + ".claimed")
        except OSError:
            return
        raise RuntimeError("the node's init() failed once")

def run(mini_batch):
    node = os.environ.get("AZ_BATCH_NODE_ID", "?")
    with open(args.log, "a") as handle:
        handle.writelines(f"{node} {os.getpid()} {Path(p).name}\\n" for p in mini_batch)
    if any(Path(p).name == "bad.txt" for p in mini_batch):
        raise ValueError("cannot score bad.txt")
    for p in mini_batch if args.files_to else []:
        Path(args.files_to, Path(p).stem + ".out").write_text(Path(p).read_text().upper())
    return [f"{Path(p).name} {len(Path(p).read_text())}" for p in mini_batch]
"""


@pytest.fixture
def server() -> Iterator[BatchTestServer]:
    with running_batch_server() as state:
        create_pool(state, POOL, nodes=3)
        yield state


class Nodes:
    def __init__(self, dag_id: str, tmp: Path, monkeypatch: pytest.MonkeyPatch, server: BatchTestServer) -> None:
        self.dag_id = dag_id
        self.server = server
        self.tmp = tmp
        self.conn_id, self.store = local_store(dag_id, tmp, monkeypatch)
        self.items = tmp / "data" / "items"
        self.items.mkdir(parents=True)
        self.log = tmp / "processed.log"
        (tmp / "code").mkdir()
        (tmp / "code" / "count.py").write_text(SCRIPT)
        monkeypatch.setenv(
            "AIRFLOW_CONN_NODE_FILES", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(tmp / "data")}})
        )
        connection = {
            "conn_type": "amlpipe_azure_batch",
            "host": server.endpoint,
            "login": server.account_name,
            "password": server.account_key,
            "extra": {"allow_insecure_loopback": True, "staging_datastore": "batch_staging"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_BATCH_NODES", json.dumps(connection))

    def write(
        self,
        *,
        error_threshold: int = 0,
        crash: bool = False,
        crash_first_share: bool = False,
        summary_only: bool = False,
    ) -> None:
        arguments = ["--log", str(self.log)]
        if summary_only:
            arguments += ["--files-to", "{outputs.counts}"]
        if crash:
            arguments += ["--crash-marker", str(self.tmp / "crash")]
        if crash_first_share:
            arguments += ["--crash-first-share"]
        write_dag(
            self.dag_id,
            f"""
            from airflow.sdk import DAG
            from airflow_provider_amlpipe import (
                DataPath, Output, ParallelRunConfig, ParallelRunStepOperator, PythonEnvironment,
            )
            with DAG(dag_id={self.dag_id!r}, schedule=None):
                ParallelRunStepOperator(
                    task_id="count",
                    parallel_run_config=ParallelRunConfig(
                        entry_script="count.py", source_directory={str(self.tmp / "code")!r},
                        mini_batch_size={"1" if summary_only else "4"!r},
                        process_count_per_node=2, error_threshold={error_threshold}, run_max_try=2,
                        compute="batch_nodes", pool_id={POOL!r}, node_count=3,
                        output_action={"summary_only" if summary_only else "append_row"!r},
                        environment=PythonEnvironment(interpreter={sys.executable!r}),
                    ),
                    inputs={{"files": DataPath("node_files", "items")}},
                    output=Output("counts"),
                    arguments={arguments!r},
                    datastore={self.conn_id!r},
                    poll_interval=0.2,
                    progress_interval=1,
                )
            """,
        )

    def run(self) -> RunResult:
        self.log.unlink(missing_ok=True)
        return run_dag(self.dag_id)

    def processed(self) -> list[tuple[str, str, str]]:
        """(node, pid, file) per item processed in the last run."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [tuple(line.split(" ", 2)) for line in lines]  # type: ignore[misc]

    def rows(self, result: RunResult) -> list[str]:
        ref = result.xcom("count", "counts")
        return (materialize(self.store, ref["digest"]) / "parallel_run_step.txt").read_text().splitlines()

    def summary(self, result: RunResult) -> dict[str, Any]:
        ref = result.xcom("count", "counts")
        return json.loads((materialize(self.store, ref["digest"]) / "parallel_run_summary.json").read_text())


@pytest.fixture
def nodes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    server: BatchTestServer,
    azurite_connection_string: str,
) -> Nodes:
    BlobContainer(azurite_connection_string, "batch_staging", monkeypatch, "nodes")
    return Nodes(f"prn_{request.node.name}"[:200], tmp_path, monkeypatch, server)


def metrics_of(result: RunResult) -> dict[str, Any]:
    return {m["name"]: m["value"] for m in result.statuses["count"]["metrics"]}


def test_nodes_share_the_items_rows_merge_in_item_order_and_new_items_alone_run(
    nodes: Nodes, capfd: pytest.CaptureFixture[str]
) -> None:
    for i in range(0, 50, 2):  # 25 items: not a multiple of the mini-batch size (4) nor of the nodes (3)
        (nodes.items / f"f{i:03d}.txt").write_text("x" * i)
    nodes.write()
    first = nodes.run()
    assert first.state == "success", first.task_states
    processed = nodes.processed()
    assert sorted(p[2] for p in processed) == sorted(f"f{i:03d}.txt" for i in range(0, 50, 2))  # each once
    by_node = Counter(p[0] for p in processed)
    assert len(by_node) == 3 and sum(by_node.values()) == 25  # one Batch task per node, each with a share
    out = capfd.readouterr().out
    # Each node runs process_count_per_node workers over its share, streaming its log into the task's.
    assert (
        "[node 2 stdout] [parallel] 9 items: 0 reused from earlier runs, 9 to process in 3 mini-batches on 2 worker"
        in out
    )
    assert nodes.rows(first) == [f"f{i:03d}.txt {i}" for i in range(0, 50, 2)]  # item order, whatever the node
    metrics = metrics_of(first)
    assert metrics["nodes"] == 3 and metrics["items_processed"] == 25 and metrics["mini_batches"] == 7
    assert sum(nodes.server.executions.values()) == 3
    assert not nodes.server.jobs  # each node's Batch job deleted once it ended
    assert nodes.summary(first)["items_failed"] == 0

    # Five new files: only they are processed (on the nodes), merged with the recorded rows.
    for i in range(1, 10, 2):
        (nodes.items / f"f{i:03d}.txt").write_text("y" * 3)
    second = nodes.run()
    assert second.state == "success", second.task_states
    assert sorted(p[2] for p in nodes.processed()) == [f"f{i:03d}.txt" for i in range(1, 10, 2)]
    metrics = metrics_of(second)
    assert metrics["items_reused"] == 25 and metrics["items_processed"] == 5
    expected = sorted([f"f{i:03d}.txt {i}" for i in range(0, 50, 2)] + [f"f{i:03d}.txt 3" for i in range(1, 10, 2)])
    assert nodes.rows(second) == expected


def test_summary_only_files_come_back_from_the_nodes_and_are_restored_per_item(nodes: Nodes) -> None:
    for i in range(0, 20, 2):
        (nodes.items / f"f{i:03d}.txt").write_text(f"item {i}")
    nodes.write(summary_only=True)
    first = nodes.run()
    assert first.state == "success", first.task_states
    assert len({p[0] for p in nodes.processed()}) == 3

    def files(result: RunResult) -> dict[str, str]:
        folder = materialize(nodes.store, result.xcom("count", "counts")["digest"])
        return {p.name: p.read_text() for p in folder.iterdir() if p.suffix == ".out"}

    written = files(first)
    assert written == {f"f{i:03d}.out": f"ITEM {i}" for i in range(0, 20, 2)}
    (nodes.items / "f001.txt").write_text("item 1")
    second = nodes.run()
    assert second.state == "success", second.task_states
    assert [p[2] for p in nodes.processed()] == ["f001.txt"]  # the one new item, on one node
    assert files(second) == {**written, "f001.out": "ITEM 1"}  # the others' files restored


def test_a_failing_node_is_retried(nodes: Nodes, capfd: pytest.CaptureFixture[str]) -> None:
    for i in range(12):
        (nodes.items / f"f{i:03d}.txt").write_text("x" * i)
    (nodes.tmp / "crash").write_text("")
    nodes.write(crash=True)
    result = nodes.run()
    assert result.state == "success", result.task_states
    assert (nodes.tmp / "crash.claimed").exists()
    assert "failed (try 1 of 2)" in capfd.readouterr().out
    assert sum(nodes.server.executions.values()) == 4  # three nodes, one of them twice
    assert nodes.rows(result) == [f"f{i:03d}.txt {i}" for i in range(12)]
    assert sorted(p[2] for p in nodes.processed()) == [f"f{i:03d}.txt" for i in range(12)]


def test_a_node_that_keeps_failing_counts_its_share_as_failed(nodes: Nodes) -> None:
    for i in range(12):
        (nodes.items / f"f{i:03d}.txt").write_text("x" * i)
    nodes.write(crash_first_share=True, error_threshold=-1)
    result = nodes.run()
    assert result.state == "success", result.task_states
    assert sum(nodes.server.executions.values()) == 4  # the failing node tried run_max_try=2 times
    summary = nodes.summary(result)
    assert summary["items_failed"] == 4 and summary["items_succeeded"] == 8
    failed = [e["items"] for e in summary["failed"]]
    assert failed == [["files/f000.txt", "files/f001.txt", "files/f002.txt", "files/f003.txt"]]
    assert all(e["tries"] == 2 and "this node always fails" in " ".join(e["errors"]) for e in summary["failed"])
    assert nodes.rows(result) == [f"f{i:03d}.txt {i}" for i in range(4, 12)]
    assert metrics_of(result)["items_failed"] == 4


def test_the_error_threshold_counts_every_nodes_failures(nodes: Nodes, capfd: pytest.CaptureFixture[str]) -> None:
    for i in range(12):
        (nodes.items / f"f{i:03d}.txt").write_text("x" * i)
    (nodes.items / "bad.txt").write_text("?")
    nodes.write(error_threshold=0)
    failed = nodes.run()
    assert failed.state == "failed"
    out = capfd.readouterr().out
    assert "4 items failed, above error_threshold=0" in out and "cannot score bad.txt" in out

    # What the failed run finished was recorded: the rerun tolerating failures runs the failed mini-batch alone.
    nodes.write(error_threshold=4)
    tolerated = nodes.run()
    assert tolerated.state == "success", tolerated.task_states
    again = ["bad.txt", "f000.txt", "f001.txt", "f002.txt"]
    assert sorted(p[2] for p in nodes.processed()) == sorted(again * 2)  # two tries (run_max_try=2)
    summary = nodes.summary(tolerated)
    assert summary["items_failed"] == 4 and summary["items_succeeded"] == 9
    assert [e["items"] for e in summary["failed"]] == [[f"files/{name}" for name in again]]
    assert nodes.rows(tolerated) == [f"f{i:03d}.txt {i}" for i in range(3, 12)]
