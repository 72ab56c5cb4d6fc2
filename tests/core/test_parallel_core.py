"""The ParallelRun core without Airflow: config checks, mini-batching, the worker pool (retries,
timeouts, dead workers, thresholds), append_row order, and per-item records."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_amlpipe.compute.environment import PythonEnvironment
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.parallel.config import MiniBatchSize, ParallelRunConfig, parse_mini_batch_size
from airflow_provider_amlpipe.parallel.driver import DriverSpec, plan_items, run_parallel
from airflow_provider_amlpipe.parallel.pool import PoolSettings, ThresholdExceededError
from airflow_provider_amlpipe.parallel.records import ItemRecords
from airflow_provider_amlpipe.parallel.results import SUMMARY_FILE, read_record_log

# An AML-style entry script: argparse in init(), one row per file. Each processed file is counted in
# the counter file; "die-*" files kill their worker on the first try, "fail-*" files always raise,
# "slow-*" files hang on the first try.
SCRIPT = """
import argparse, os, signal, time
from pathlib import Path

def init():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--counter")
    parser.add_argument("--prefix", default="")
    args, _ = parser.parse_known_args()
    with open(args.counter + ".init", "a") as handle:
        handle.write(f"{os.getpid()}\\n")

def _first_time(path):
    marker = Path(args.counter + "." + Path(path).name + ".seen")
    if marker.exists():
        return False
    marker.touch()
    return True

def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = Path(path).name
        if name.startswith("die-") and _first_time(path):
            os.kill(os.getpid(), signal.SIGKILL)
        if name.startswith("slow-") and _first_time(path):
            time.sleep(60)
        if name.startswith("fail-"):
            raise ValueError(f"cannot score {name}")
        with open(args.counter, "a") as handle:
            handle.write(name + "\\n")
        rows.append(f"{args.prefix}{name} {Path(path).read_text()}")
    return rows
"""


def make_files(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(f"content of {name}")
    return folder


def spec_for(tmp: Path, data: Path, *, script: str = SCRIPT, batch: int = 5, **pool: Any) -> DriverSpec:
    code = tmp / "code"
    code.mkdir(exist_ok=True)
    (code / "score.py").write_text(textwrap.dedent(script))
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    settings = {"processes": 2, "run_invocation_timeout": 30.0, "run_max_try": 3, "error_threshold": 0} | pool
    return DriverSpec(
        entry_script=str(code / "score.py"),
        source_directory=str(code),
        arguments=["--counter", str(tmp / "counter")],
        dataset_type="file",
        inputs=[("images", str(data))],
        output_dir=str(out),
        output_action="append_row",
        append_row_file_name="scores.txt",
        pool=PoolSettings(**settings, progress_interval=0.2),
        mini_batch_size=MiniBatchSize(count=batch),
        known_records=str(tmp / "known.json"),
        record_log=str(tmp / "records.jsonl"),
        metrics_file=str(tmp / "metrics.jsonl"),
    )


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def counted(tmp: Path) -> list[str]:
    return lines(tmp / "counter")


# -- configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"mini_batch_size": "ten"}, "mini_batch_size", "neither a count nor a size"),
        ({"mini_batch_size": "1XB"}, "mini_batch_size", "neither a count nor a size"),
        ({"mini_batch_size": "0"}, "mini_batch_size", "at least 1"),
        ({"mini_batch_size": "10", "partition_keys": ["store"]}, "mini_batch_size", "together with partition_keys"),
        ({"error_threshold": -2}, "error_threshold", "at least -1"),
        ({"output_action": "append_rows"}, "output_action", "not an output action"),
        ({"append_row_file_name": "a/b.txt"}, "append_row_file_name", "plain file name"),
        ({"run_max_try": 0}, "run_max_try", "at least 1"),
        ({"run_invocation_timeout": 0}, "run_invocation_timeout", "positive"),
        ({"allowed_failed_percent": 150}, "allowed_failed_percent", "0 to 100"),
        ({"compute": "my_batch"}, "pool_id", "not a Batch pool id"),
        ({"compute": "my_batch", "pool_id": "a b"}, "pool_id", "not a Batch pool id"),
        ({"pool_id": "nodes"}, "pool_id", "given with compute='local'"),
        ({"node_count": 4}, "node_count", "remote compute"),
        (
            {"compute": "my_batch", "pool_id": "nodes", "environment": PythonEnvironment(requirements="r.txt")},
            "environment.requirements",
            "not on a Batch node",
        ),
    ],
)
def test_bad_configuration_is_refused_naming_the_field(kwargs: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ParallelRunConfig(entry_script="score.py", **kwargs)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_sizes_and_counts_parse_as_aml_wrote_them() -> None:
    assert parse_mini_batch_size("10") == MiniBatchSize(count=10)
    assert parse_mini_batch_size(7) == MiniBatchSize(count=7)
    assert parse_mini_batch_size("1KB") == MiniBatchSize(nbytes=1024)
    assert parse_mini_batch_size("1.5 mb") == MiniBatchSize(nbytes=1572864)
    assert parse_mini_batch_size("2G") == MiniBatchSize(nbytes=2 * 1024**3)


def test_batch_sizes_are_checked_against_the_dataset_type() -> None:
    with pytest.raises(ConfigurationError, match="partition_keys: partition_keys group the rows of a table"):
        ParallelRunConfig(entry_script="s.py", partition_keys=["a"]).batch_size_for("file")
    with pytest.raises(ConfigurationError, match="is a size, which applies to tables"):
        ParallelRunConfig(entry_script="s.py", mini_batch_size="1MB").batch_size_for("file")
    with pytest.raises(ConfigurationError, match="is a number of files, but the input is a table"):
        ParallelRunConfig(entry_script="s.py", mini_batch_size="10").batch_size_for("tabular")
    assert ParallelRunConfig(entry_script="s.py").batch_size_for("file") == MiniBatchSize(count=10)
    assert ParallelRunConfig(entry_script="s.py").batch_size_for("tabular") == MiniBatchSize(nbytes=1024**2)
    assert ParallelRunConfig(entry_script="s.py", partition_keys=["a"]).batch_size_for("tabular") is None


# -- the pool -------------------------------------------------------------------------------------------


def test_every_item_appears_exactly_once_in_input_order(tmp_path: Path) -> None:
    names = [f"img-{i:03d}.png" for i in range(23)]  # 23 = 4 batches of 5 and one of 3
    data = make_files(tmp_path / "data", names)
    log: list[str] = []
    summary = run_parallel(spec_for(tmp_path, data, processes=3), log.append)
    assert lines(tmp_path / "out" / "scores.txt") == [f"{n} content of {n}" for n in names]
    assert sorted(counted(tmp_path)) == names
    assert summary["items"] == 23 and summary["items_succeeded"] == 23 and summary["items_failed"] == 0
    assert json.loads((tmp_path / "out" / SUMMARY_FILE).read_text()) == summary
    # Each of the three workers called init() once.
    assert len(set(lines(tmp_path / "counter.init"))) == 3 == len(lines(tmp_path / "counter.init"))
    assert any(m.startswith("progress: 23/23 items (100%)") for m in log)
    metrics = {m["name"]: m["value"] for m in map(json.loads, lines(tmp_path / "metrics.jsonl"))}
    assert metrics["items_processed"] == 23 and metrics["mini_batches"] == 5


def test_a_killed_worker_is_replaced_and_its_batch_retried_without_duplicates(tmp_path: Path) -> None:
    names = [f"img-{i:02d}.png" for i in range(12)] + ["die-once.png"]
    data = make_files(tmp_path / "data", names)
    log: list[str] = []
    run_parallel(spec_for(tmp_path, data, batch=4), log.append)
    out = lines(tmp_path / "out" / "scores.txt")
    assert out == [f"{n} content of {n}" for n in sorted(names)]
    # The killed try processed the items before die-once.png in its batch, but only the retry's rows count.
    assert sorted(set(counted(tmp_path))) == sorted(names)
    assert any("the worker process died (exit code -9); started a new worker" in m for m in log), log
    metrics = {m["name"]: m["value"] for m in map(json.loads, lines(tmp_path / "metrics.jsonl"))}
    assert metrics["workers_replaced"] == 1 and metrics["retries"] == 1
    assert len(lines(tmp_path / "counter.init")) == 3  # two workers, one replacement


def test_a_hung_run_is_stopped_at_the_timeout_and_retried(tmp_path: Path) -> None:
    names = ["a.png", "slow-b.png", "c.png"]
    data = make_files(tmp_path / "data", names)
    log: list[str] = []
    run_parallel(spec_for(tmp_path, data, batch=1, run_invocation_timeout=1.5), log.append)
    assert lines(tmp_path / "out" / "scores.txt") == [f"{n} content of {n}" for n in sorted(names)]
    assert any("exceeded run_invocation_timeout (1.5 s)" in m for m in log)


def test_a_batch_that_always_fails_trips_the_threshold_with_a_clear_summary(tmp_path: Path) -> None:
    names = [f"img-{i}.png" for i in range(6)] + ["fail-x.png"]
    data = make_files(tmp_path / "data", names)
    log: list[str] = []
    with pytest.raises(ThresholdExceededError) as caught:
        run_parallel(spec_for(tmp_path, data, batch=1, run_max_try=2, error_threshold=0), log.append)
    assert "1 items failed, above error_threshold=0" in str(caught.value)
    failed = caught.value.report.batches_failed
    assert [b["items"] for b in failed] == [["images/fail-x.png"]] and failed[0]["tries"] == 2
    assert "ValueError: cannot score fail-x.png" in failed[0]["errors"][-1]
    summary_line = next(m for m in log if m.startswith("summary: "))
    assert json.loads(summary_line[len("summary: ") :])["failed"][0]["items"] == ["images/fail-x.png"]
    assert not (tmp_path / "out" / "scores.txt").exists()


def test_failures_within_the_threshold_are_summarised_beside_the_output(tmp_path: Path) -> None:
    names = ["a.png", "fail-b.png", "c.png"]
    data = make_files(tmp_path / "data", names)
    summary = run_parallel(spec_for(tmp_path, data, batch=1, run_max_try=1, error_threshold=-1), lambda m: None)
    assert lines(tmp_path / "out" / "scores.txt") == ["a.png content of a.png", "c.png content of c.png"]
    assert summary["items_failed"] == 1 and summary["failed"][0]["items"] == ["images/fail-b.png"]
    assert json.loads((tmp_path / "out" / SUMMARY_FILE).read_text())["items_failed"] == 1


def test_allowed_failed_count_limits_failed_mini_batches(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", ["fail-a.png", "fail-b.png", "c.png"])
    with pytest.raises(ThresholdExceededError, match="2 mini-batches failed, above allowed_failed_count=1"):
        run_parallel(
            spec_for(tmp_path, data, batch=1, run_max_try=1, error_threshold=-1, allowed_failed_count=1, processes=1),
            lambda m: None,
        )


def test_a_script_without_run_fails_before_any_batch(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", ["a.png"])
    with pytest.raises(StepFailedError, match="defines no run"):
        run_parallel(spec_for(tmp_path, data, script="def init():\n    pass\n"), lambda m: None)


def test_a_batch_returning_fewer_rows_counts_the_missing_items_as_failed(tmp_path: Path) -> None:
    script = "def run(mini_batch):\n    return [p.rsplit('/', 1)[-1] for p in mini_batch[:-1]]\n"
    data = make_files(tmp_path / "data", ["a", "b", "c", "d"])
    summary = run_parallel(spec_for(tmp_path, data, script=script, batch=2, error_threshold=2), lambda m: None)
    assert lines(tmp_path / "out" / "scores.txt") == ["a", "c"]
    assert summary["items_failed"] == 2
    assert read_record_log(tmp_path / "records.jsonl") == {}  # rows not attributable to items: not recorded


# -- tables ---------------------------------------------------------------------------------------------

TABLE_SCRIPT = """
def run(mini_batch):
    mini_batch["double"] = mini_batch["value"] * 2
    return mini_batch[["id", "double"]]
"""


def test_tabular_rows_come_as_dataframes_cut_by_size_and_in_order(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    data = tmp_path / "tables"
    data.mkdir()
    pd.DataFrame({"id": range(0, 700), "value": range(700)}).to_csv(data / "part-1.csv", index=False)
    pd.DataFrame({"id": range(700, 1001), "value": range(700, 1001)}).to_parquet(data / "part-2.parquet")
    spec = spec_for(tmp_path, data, script=TABLE_SCRIPT)
    spec.dataset_type, spec.mini_batch_size = "tabular", MiniBatchSize(nbytes=1024)
    run_parallel(spec, lambda m: None)
    assert lines(tmp_path / "out" / "scores.txt") == [f"{i} {2 * i}" for i in range(1001)]
    metrics = {m["name"]: m["value"] for m in map(json.loads, lines(tmp_path / "metrics.jsonl"))}
    assert metrics["mini_batches"] > 5


def test_partition_keys_make_one_mini_batch_per_key(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    data = tmp_path / "tables"
    data.mkdir()
    pd.DataFrame({"store": ["a", "b", "a", "c", "b"], "value": [1, 2, 3, 4, 5]}).to_csv(data / "t.csv", index=False)
    script = "def run(df):\n    return [f'{df.store[0]} {len(df)} {df.value.sum()}']\n"
    spec = spec_for(tmp_path, data, script=script, error_threshold=-1)
    spec.dataset_type, spec.mini_batch_size, spec.partition_keys = "tabular", None, ["store"]
    run_parallel(spec, lambda m: None)
    assert lines(tmp_path / "out" / "scores.txt") == ["a 2 4", "b 2 7", "c 1 4"]


# -- per-item records ------------------------------------------------------------------------------------


def run_incremental(tmp: Path, data: Path, records: ItemRecords) -> list[str]:
    """One run as the step does it: known records in, new records out; the rows written."""
    for name in ("counter", "records.jsonl", "out/scores.txt"):
        (tmp / name).unlink(missing_ok=True)
    (tmp / "known.json").write_text(json.dumps(records.load()))
    run_parallel(spec_for(tmp, data, batch=10), lambda m: None)
    records.save(read_record_log(tmp / "records.jsonl"))
    return lines(tmp / "out" / "scores.txt")


def test_adding_ten_files_to_a_thousand_processes_exactly_ten(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", [f"img-{i:04d}.png" for i in range(0, 2000, 2)])
    store = LocalDatastore("records", tmp_path / "store")
    records = ItemRecords(store, "step-namespace")
    first = run_incremental(tmp_path, data, records)
    assert len(first) == 1000 and len(counted(tmp_path)) == 1000
    added = [f"img-{i:04d}.png" for i in range(1, 20, 2)]  # interleaved with the old ones
    make_files(data, added)
    second = run_incremental(tmp_path, data, records)
    assert sorted(counted(tmp_path)) == added
    # A full rerun from an empty namespace gives the same bytes.
    full = run_incremental(tmp_path, data, ItemRecords(store, "another-namespace"))
    assert len(counted(tmp_path)) == 1010
    assert second == full and len(full) == 1010
    assert run_incremental(tmp_path, data, records) == full and counted(tmp_path) == []


def test_a_changed_file_is_processed_again_and_a_tampered_record_ignored(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", ["a.png", "b.png"])
    store = LocalDatastore("records", tmp_path / "store")
    warnings: list[str] = []
    records = ItemRecords(store, "ns", warnings.append)
    run_incremental(tmp_path, data, records)
    (data / "b.png").write_text("new content")
    assert run_incremental(tmp_path, data, records)[1] == "b.png new content"
    assert counted(tmp_path) == ["b.png"]
    key = sorted(store.list("parallel/ns"))[0]
    path = store.local_path(key)
    assert path is not None
    path.chmod(0o644)
    path.write_text(path.read_text().replace("content of a.png", "forged"))
    assert run_incremental(tmp_path, data, records)[0] == "a.png content of a.png"
    assert any("does not match its digest" in w for w in warnings)


def test_allowed_failed_percent_limits_the_share_of_failed_mini_batches(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", ["a.png", "fail-b.png", "c.png", "d.png"])
    settings = {"batch": 1, "run_max_try": 1, "error_threshold": -1, "processes": 1}
    summary = run_parallel(spec_for(tmp_path, data, allowed_failed_percent=25, **settings), lambda m: None)
    assert summary["items_failed"] == 1  # 1 of 4 mini-batches: exactly 25%, allowed
    with pytest.raises(ThresholdExceededError, match="1 of 4 mini-batches failed, above allowed_failed_percent=20"):
        run_parallel(spec_for(tmp_path, data, allowed_failed_percent=20, **settings), lambda m: None)


def test_an_init_that_raises_fails_the_step_with_its_traceback(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", ["a.png"])
    script = "def init():\n    raise RuntimeError('no model here')\n\ndef run(mini_batch):\n    return mini_batch\n"
    with pytest.raises(StepFailedError, match=r"(?s)init\(\) of the entry script failed.*no model here"):
        run_parallel(spec_for(tmp_path, data, script=script), lambda m: None)


CAPTURE_SCRIPT = """
import argparse, random, time
from pathlib import Path

def init():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    args, _ = parser.parse_known_args()

def run(mini_batch):
    for path in mini_batch:
        time.sleep(random.random() / 20)  # the workers' writes overlap
        (Path(args.out) / "frames").mkdir(exist_ok=True)
        (Path(args.out) / "frames" / (Path(path).stem + ".png")).write_text(Path(path).read_text())
        time.sleep(random.random() / 20)
    return list(mini_batch)
"""


def test_summary_only_captures_each_items_files_while_workers_write_at_once(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", [f"f{i:02d}.txt" for i in range(24)])
    spec = spec_for(tmp_path, data, script=CAPTURE_SCRIPT, batch=1, processes=4)
    spec.output_action = "summary_only"
    spec.arguments = ["--out", spec.output_dir]
    spec.capture_dir = str(tmp_path / "capture")
    run_parallel(spec, lambda message: None)
    out = Path(spec.output_dir)
    assert sorted(p.name for p in (out / "frames").iterdir()) == [f"f{i:02d}.png" for i in range(24)]
    records = read_record_log(tmp_path / "records.jsonl")
    assert len(records) == 24
    # Each item is recorded with exactly the file its own run() wrote, never another worker's.
    items, _ = plan_items(spec, Hasher())
    assert records == {item.key: [f"frames/{Path(item.path).stem}.png"] for item in items}
