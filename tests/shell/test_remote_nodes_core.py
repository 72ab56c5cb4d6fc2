"""The plain-Python parts behind trials and ParallelRun nodes on remote compute: the node launcher, how
items are shared among nodes and the nodes' results merged, and backends that cannot read a job's files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_amlpipe.compute.adla import AdlaJobBackend
from airflow_provider_amlpipe.compute.databricks import DatabricksJobBackend
from airflow_provider_amlpipe.compute.remote import JobFilesNotSupportedError, RemoteJob
from airflow_provider_amlpipe.parallel.items import Item, MiniBatch
from airflow_provider_amlpipe.parallel.nodes import NODE_METRICS, NODE_RECORDS, NodeResult, check, merge, shares
from airflow_provider_amlpipe.parallel.pool import PoolSettings, ThresholdExceededError
from airflow_provider_amlpipe.parallel.results import SUMMARY_FILE
from airflow_provider_amlpipe.steps.node_launch import METRICS_FILE, PACKAGE_ZIP, launch_arguments, launch_files

SCRIPT = """
import sys
from airflow_provider_amlpipe import runtime
print("runtime from", runtime.__file__)
text = runtime.input_path("data").joinpath("x.txt").read_text()
(runtime.output_path("model") / "m.txt").write_text(text + sys.argv[1])
runtime.log_metric("acc", 0.5, step=1)
print("param", runtime.param("alpha"))
sys.exit(int(sys.argv[2]))
"""


@pytest.mark.parametrize("exit_code", [0, 3])
def test_the_launcher_completes_the_context_and_runs_the_script_with_the_shipped_package(
    tmp_path: Path, exit_code: int
) -> None:
    # A node's working folder as Batch lays it out: code, inputs, the launcher's files.
    work = tmp_path / "wd"
    (work / "inputs" / "data").mkdir(parents=True)
    (work / "inputs" / "data" / "x.txt").write_text("in-")
    (work / "train.py").write_text(SCRIPT)
    for rel, local in launch_files(tmp_path / "scratch", "dag.sweep", {"alpha": 0.1}).items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(local, work / rel)
    argv = launch_arguments(["data"], ["model"], ["train.py", "out", str(exit_code)])
    argv = [a.replace("{inputs.data}", "inputs/data").replace("{outputs.model}", "outputs/model") for a in argv]
    # The node's interpreter has no airflow_provider_amlpipe: a bare environment, cwd outside this repo.
    env = {"PATH": os.environ["PATH"]}
    done = subprocess.run([sys.executable, "-S", *argv], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == exit_code, done.stderr
    assert f"runtime from {work / PACKAGE_ZIP}" in done.stdout  # the worker's copy, shipped with the task
    assert "param 0.1" in done.stdout
    assert (work / "outputs" / "model" / "m.txt").read_text() == "in-out"
    metric = json.loads((work / METRICS_FILE).read_text())
    assert metric["name"] == "acc" and metric["value"] == 0.5 and metric["step"] == 1


def items_and_batches(count: int, size: int, known: set[int]) -> tuple[list[Item], list[MiniBatch]]:
    items = [Item(i, f"files/f{i}", f"k{i}", f"/f{i}") for i in range(count)]
    pending = [item for item in items if item.index not in known]
    batches = [MiniBatch(n, pending[s : s + size], {}) for n, s in enumerate(range(0, len(pending), size))]
    return items, batches


def test_shares_cover_every_item_and_split_the_batches_evenly() -> None:
    items, batches = items_and_batches(25, 4, known=set())
    assert shares(items, batches, 3) == [(0, 8), (8, 16), (16, 25)]  # 7 batches: 2, 2, 3
    assert shares(items, batches, 10) == [(s, min(s + 4, 25)) for s in range(0, 25, 4)]  # one node per batch
    # Known items stay in the share whose range they fall in; shares start at a batch to process.
    items, batches = items_and_batches(12, 2, known={0, 1, 2, 3, 6, 7})
    assert shares(items, batches, 3) == [(0, 8), (8, 10), (10, 12)]
    assert shares(items, [], 3) == [(0, 12)]


def write_node(folder: Path, rows: list[str], summary: dict[str, object], metrics: dict[str, int]) -> NodeResult:
    out, state = folder / "out", folder / "state"
    out.mkdir(parents=True)
    state.mkdir()
    (out / "rows.txt").write_text("".join(r + "\n" for r in rows))
    (out / SUMMARY_FILE).write_text(json.dumps(summary))
    (out / "extra.bin").write_bytes(folder.name.encode())
    (state / NODE_METRICS).write_text("".join(json.dumps({"name": k, "value": v}) + "\n" for k, v in metrics.items()))
    (state / NODE_RECORDS).write_text("".join(json.dumps({"key": r, "rows": [r]}) + "\n" for r in rows))
    return NodeResult((0, 0), out, state, 1)


def test_the_nodes_results_merge_in_share_order_and_the_limits_count_all_nodes(tmp_path: Path) -> None:
    items, batches = items_and_batches(6, 2, known=set())
    empty = {"items": 0, "items_succeeded": 2, "items_failed": 0, "failed": [], "fewer_rows_than_items": []}
    metrics = {"items": 2, "items_processed": 2, "mini_batches": 1, "retries": 1}
    second = write_node(tmp_path / "b", ["c", "d"], empty, metrics)
    second.share = (2, 4)
    first = write_node(tmp_path / "a", ["a", "b"], empty, metrics)
    first.share = (0, 2)
    lost = NodeResult((4, 6), None, None, 2, ["Azure Batch job x failed"], batches[2:])
    output = tmp_path / "output"
    output.mkdir()
    merged = merge([second, lost, first], items, output, "rows.txt")
    assert (output / "rows.txt").read_text() == "a\nb\nc\nd\n"  # share order, whatever the finishing order
    assert (output / "extra.bin").read_bytes() in (b"a", b"b")  # files run() wrote itself come back too
    summary = json.loads((output / SUMMARY_FILE).read_text())
    assert summary["items"] == 6 and summary["items_succeeded"] == 4 and summary["items_failed"] == 2
    lost_batch = {"items": ["files/f4", "files/f5"], "tries": 2, "errors": ["Azure Batch job x failed"]}
    assert summary["failed"] == [lost_batch]
    assert merged.metrics["items_processed"] == 4 and merged.metrics["mini_batches"] == 3
    assert merged.metrics["retries"] == 2 and merged.metrics["nodes"] == 3
    assert [json.loads(r)["key"] for r in merged.records] == ["a", "b", "c", "d"]
    settings = PoolSettings(processes=1, run_invocation_timeout=1, run_max_try=1, error_threshold=2)
    check(settings, merged)  # two failed items are within error_threshold=2
    with pytest.raises(ThresholdExceededError, match="1 mini-batches failed, above allowed_failed_count=0"):
        check(PoolSettings(1, 1, 1, -1, allowed_failed_count=0), merged)


def test_services_that_cannot_read_a_running_jobs_files_say_so() -> None:
    job = RemoteJob("any", "id")
    for backend in (DatabricksJobBackend(None, "https://x", "/amlpipe"), AdlaJobBackend(None)):  # type: ignore[arg-type]
        with pytest.raises(JobFilesNotSupportedError) as caught:
            backend.read_file(job, "metrics.jsonl")
        assert caught.value.field == "compute" and "Azure Batch" in caught.value.fix
