"""ParallelRunStepOperator through the step base: the batch-scoring example, step reuse, per-item
incremental reruns, and the errors a DAG gets before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.dagtools import run_dag, write_dag
from support.paths import REPO
from support.session import DAGS_FOLDER

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.parallel.config import ParallelRunConfig
from airflow_provider_amlpipe.steps.parallel_run import ParallelRunStep

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The datastore the steps commit to, and the example's scripts in the session's dags folder."""
    shutil.copytree(REPO / "dags" / "scripts", DAGS_FOLDER / "scripts", dirs_exist_ok=True)
    (DAGS_FOLDER / ".airflowignore").write_text("scripts/\ndata/\n")
    root = tmp_path_factory.mktemp("parallel-store")
    os.environ["AIRFLOW_CONN_AMLPIPE_DEFAULT"] = json.dumps(
        {"conn_type": "amlpipe_local", "extra": {"path": str(root)}}
    )
    return root


def test_batch_scoring_example_scores_every_image_then_reuses(store: Path) -> None:
    shutil.copy(REPO / "dags" / "aml_batch_scoring.py", DAGS_FOLDER / "aml_batch_scoring.py")
    first = run_dag("aml_batch_scoring")
    assert first.state == "success", first.task_states
    assert first.ran() == {"train", "make_images", "score", "check"}
    metrics = {m["name"]: m["value"] for m in first.statuses["check"]["metrics"]}
    assert metrics["accuracy"] >= 0.9
    score = {m["name"]: m["value"] for m in first.statuses["score"]["metrics"]}
    assert score["items"] == score["items_processed"] == 300 and score["items_reused"] == 0
    rows = (store / first.xcom("score", "scores")["path"] / "parallel_run_step.txt").read_text().splitlines()
    assert [r.split(":")[0] for r in rows] == [f"digit-{i:04d}.png" for i in range(300)]
    assert run_dag("aml_batch_scoring").ran() == set()


SCRIPT = """
import argparse, os
from pathlib import Path

def init():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--counter")
    parser.add_argument("--suffix")
    args, _ = parser.parse_known_args()

def run(mini_batch):
    with open(args.counter, "a") as handle:
        handle.writelines(Path(p).name + "\\n" for p in mini_batch)
    return [f"{Path(p).name} {len(Path(p).read_text())}{args.suffix}" for p in mini_batch]
"""


def incremental_dag(tmp: Path, suffix: str = "") -> None:
    (tmp / "code").mkdir(exist_ok=True)
    (tmp / "code" / "count.py").write_text(SCRIPT)
    write_dag(
        "parallel_incremental",
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, Output, ParallelRunConfig, ParallelRunStepOperator

        with DAG(dag_id="parallel_incremental", schedule=None):
            ParallelRunStepOperator(
                task_id="count",
                parallel_run_config=ParallelRunConfig(
                    entry_script="count.py", source_directory={str(tmp / "code")!r}, mini_batch_size="7",
                    process_count_per_node=2, error_threshold=0,
                ),
                inputs={{"files": DataPath("parallel_files", "items")}},
                output=Output("counts"),
                arguments=["--counter", {str(tmp / "counter")!r}, "--suffix", {suffix!r}],
            )
        """,
    )


def test_new_files_are_the_only_ones_processed_and_a_script_change_reprocesses_all(store: Path, tmp_path: Path) -> None:
    items = tmp_path / "data" / "items"
    items.mkdir(parents=True)
    os.environ["AIRFLOW_CONN_PARALLEL_FILES"] = json.dumps(
        {"conn_type": "amlpipe_local", "extra": {"path": str(tmp_path / "data")}}
    )
    for i in range(0, 60, 2):
        (items / f"f{i:03d}.txt").write_text("x" * i)
    incremental_dag(tmp_path)

    def run_once() -> tuple[list[str], list[str], dict[str, int]]:
        (tmp_path / "counter").unlink(missing_ok=True)
        result = run_dag("parallel_incremental")
        assert result.state == "success", result.task_states
        counter = (tmp_path / "counter").read_text().splitlines() if (tmp_path / "counter").exists() else []
        ref = result.xcom("count", "counts")
        rows = (store / ref["path"] / "parallel_run_step.txt").read_text().splitlines()
        status = result.statuses["count"]
        return counter, rows, {m["name"]: m["value"] for m in status["metrics"]} if not status["reused"] else {}

    counter, rows, _ = run_once()
    assert len(counter) == 30 and len(rows) == 30
    assert run_once()[0] == []  # unchanged: the whole step is reused
    added = [f"f{i:03d}.txt" for i in range(1, 20, 2)]
    for name in added:
        (items / name).write_text("y" * 5)
    counter, rows, metrics = run_once()
    assert sorted(counter) == added
    assert metrics["items_reused"] == 30 and metrics["items_processed"] == 10
    assert rows == [f"{p.name} {len(p.read_text())}" for p in sorted(items.iterdir())]
    incremental_dag(tmp_path, suffix="!")  # a changed argument: every item again
    counter, rows, _ = run_once()
    assert len(counter) == 40 and all(r.endswith("!") for r in rows)


SUMMARY_SCRIPT = """
import argparse, os
from pathlib import Path

def init():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--counter")
    parser.add_argument("--out")
    args, _ = parser.parse_known_args()
    Path(args.out, "model-info.txt").write_text("written by init()")

def run(mini_batch):
    with open(args.counter, "a") as handle:
        handle.writelines(Path(p).name + "\\n" for p in mini_batch)
    for p in mini_batch:
        name = Path(p).stem
        Path(args.out, "styled").mkdir(exist_ok=True)
        Path(args.out, "styled", name + ".out").write_text(Path(p).read_text().upper())
    return list(mini_batch)
"""


def test_summary_only_records_the_files_each_item_wrote_and_restores_them(store: Path, tmp_path: Path) -> None:
    items = tmp_path / "data" / "frames"
    items.mkdir(parents=True)
    os.environ["AIRFLOW_CONN_PARALLEL_FRAMES"] = json.dumps(
        {"conn_type": "amlpipe_local", "extra": {"path": str(tmp_path / "data")}}
    )
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "style.py").write_text(SUMMARY_SCRIPT)
    for i in range(0, 20, 2):
        (items / f"frame{i:03d}.txt").write_text(f"frame {i}")
    write_dag(
        "parallel_summary_only",
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, Output, ParallelRunConfig, ParallelRunStepOperator

        with DAG(dag_id="parallel_summary_only", schedule=None):
            ParallelRunStepOperator(
                task_id="style",
                parallel_run_config=ParallelRunConfig(
                    entry_script="style.py", source_directory={str(tmp_path / "code")!r}, mini_batch_size="1",
                    process_count_per_node=3, error_threshold=0, output_action="summary_only",
                ),
                inputs={{"frames": DataPath("parallel_frames", "frames")}},
                output=Output("styled"),
                arguments=["--counter", {str(tmp_path / "counter")!r}, "--out", "{{outputs.styled}}"],
            )
        """,
    )

    def run_once() -> tuple[list[str], dict[str, bytes]]:
        (tmp_path / "counter").unlink(missing_ok=True)
        result = run_dag("parallel_summary_only")
        assert result.state == "success", result.task_states
        counter = (tmp_path / "counter").read_text().splitlines() if (tmp_path / "counter").exists() else []
        folder = store / result.xcom("style", "styled")["path"]
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        return counter, files

    counter, files = run_once()
    assert len(counter) == 10
    assert files["styled/frame004.out"] == b"FRAME 4" and files["model-info.txt"] == b"written by init()"
    for i in range(1, 6, 2):
        (items / f"frame{i:03d}.txt").write_text(f"frame {i}")
    counter, incremental = run_once()
    assert sorted(counter) == ["frame001.txt", "frame003.txt", "frame005.txt"]  # only the new items ran
    assert sorted(p for p in incremental if p.startswith("styled/")) == sorted(
        f"styled/frame{i:03d}.out" for i in [*range(0, 20, 2), 1, 3, 5]
    )
    assert {p: incremental[p] for p in files if p != "parallel_run_summary.json"} == {
        p: files[p] for p in files if p != "parallel_run_summary.json"
    }  # the reused items' files restored byte for byte


def test_bad_input_is_refused_when_the_dag_is_parsed(store: Path, tmp_path: Path) -> None:
    from airflow_provider_amlpipe import DataPath, Output, ParallelRunStepOperator

    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def run(mini_batch):\n    return mini_batch\n")
    base = {"entry_script": "score.py", "source_directory": str(code)}
    with pytest.raises(ConfigurationError, match="partition_keys: partition_keys group the rows"):
        ParallelRunStepOperator(
            task_id="t",
            parallel_run_config=ParallelRunConfig(**base, partition_keys=["k"]),
            inputs={"x": "y"},
            output=Output("o"),
        )
    with pytest.raises(ConfigurationError, match="a size, which applies to tables"):
        ParallelRunStepOperator(
            task_id="t",
            parallel_run_config=ParallelRunConfig(**base, mini_batch_size="1MB"),
            inputs={"x": "y"},
            output=Output("o"),
        )
    with pytest.raises(ConfigurationError, match="side_inputs: 'x' is both inputs and side_inputs"):
        ParallelRunStepOperator(
            task_id="t",
            parallel_run_config=ParallelRunConfig(**base),
            inputs={"x": "y"},
            side_inputs={"x": "z"},
            output=Output("o"),
        )
    with pytest.raises(ConfigurationError, match=r"entry script 'missing\.py' does not exist"):
        ParallelRunStepOperator(
            task_id="t",
            parallel_run_config=ParallelRunConfig(entry_script="missing.py", source_directory=str(code)),
            inputs={"x": DataPath("amlpipe_samples", "images")},
            output=Output("o"),
        )


def test_an_entry_script_without_run_is_refused_before_workers_start(tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text(textwrap.dedent("def init():\n    pass\n\ndef runn(batch):\n    pass\n"))
    step = ParallelRunStep(
        ParallelRunConfig(entry_script="score.py", source_directory=str(tmp_path)), ["images"], "scores"
    )
    with pytest.raises(ConfigurationError, match=r"entry_script: score\.py defines no run"):
        step.validate(["images"], ["scores"])
    (tmp_path / "score.py").write_text("from mylib import run\n")
    step.validate(["images"], ["scores"])


def test_the_operator_is_exported_and_in_the_provider_info() -> None:
    import airflow_provider_amlpipe
    from airflow_provider_amlpipe.get_provider_info import get_provider_info
    from airflow_provider_amlpipe.operators.parallel_run import ParallelRunStepOperator

    assert airflow_provider_amlpipe.ParallelRunStepOperator is ParallelRunStepOperator
    assert airflow_provider_amlpipe.ParallelRunConfig is ParallelRunConfig
    modules = [m for group in get_provider_info()["operators"] for m in group["python-modules"]]
    assert "airflow_provider_amlpipe.operators.parallel_run" in modules


def probe(path: Path) -> dict[str, object]:
    """Frame count, duration and streams of a media file, read by the ffmpeg the set-up installs (the
    imageio-ffmpeg wheel ships ffmpeg without ffprobe, so ffmpeg decodes and reports them itself)."""
    import subprocess

    import imageio_ffmpeg

    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    info = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    # "  Stream #0:0[0x1](und): Video: h264 (High) ..." -> "Video"
    streams = [line.split(": ", 2)[1] for line in info.stderr.splitlines() if line.strip().startswith("Stream #")]
    return {"frames": frames, "seconds": seconds, "streams": streams}


@pytest.mark.slow
def test_style_transfer_example_makes_a_playable_mp4_of_the_same_length(store: Path) -> None:
    pytest.importorskip("torch")
    shutil.copy(REPO / "dags" / "aml_style_transfer.py", DAGS_FOLDER / "aml_style_transfer.py")
    first = run_dag("aml_style_transfer")
    assert first.state == "success", first.task_states
    training = {m["name"]: m["value"] for m in first.statuses["train_style"]["metrics"]}
    assert training["style_loss_last"] < training["style_loss_first"] / 3  # the network did learn the style
    source = probe(store / first.xcom("make_video", "video")["path"] / "input.mp4")
    styled = probe(store / first.xcom("stitch", "video")["path"] / "styled.mp4")
    assert styled["frames"] == source["frames"] == 20
    assert abs(float(styled["seconds"]) - float(source["seconds"])) < 0.15  # type: ignore[arg-type]
    assert styled["streams"] == source["streams"] == ["Video", "Audio"]
    frames_dir = store / first.xcom("split", "frames")["path"]
    styled_dir = store / first.xcom("stylize", "styled")["path"]
    assert sorted(p.name for p in styled_dir.glob("*.png")) == sorted(p.name for p in frames_dir.glob("*.png"))
    assert (styled_dir / "frame-00001.png").read_bytes() != (frames_dir / "frame-00001.png").read_bytes()
    assert run_dag("aml_style_transfer").ran() == set()


def test_a_failed_run_keeps_what_it_finished_and_tables_come_as_dataframes(store: Path, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    tables = tmp_path / "data" / "tables"
    tables.mkdir(parents=True)
    pd.DataFrame({"id": range(40), "value": [i * 10 for i in range(40)]}).to_csv(tables / "a.csv", index=False)
    os.environ["AIRFLOW_CONN_PARALLEL_TABLES"] = json.dumps(
        {"conn_type": "amlpipe_local", "extra": {"path": str(tmp_path / "data")}}
    )
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "rows.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            def run(mini_batch):
                with open({str(tmp_path / "counter")!r}, "a") as handle:
                    handle.writelines(f"{{i}}\\n" for i in mini_batch["id"])
                if (mini_batch["value"] < 0).any():
                    raise ValueError("negative value")
                return [f"{{i}} {{v // 10}}" for i, v in zip(mini_batch["id"], mini_batch["value"])]
            """
        )
    )
    write_dag(
        "parallel_tables",
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, Output, ParallelRunConfig, ParallelRunStepOperator

        with DAG(dag_id="parallel_tables", schedule=None):
            ParallelRunStepOperator(
                task_id="rows",
                parallel_run_config=ParallelRunConfig(
                    entry_script="rows.py", source_directory={str(tmp_path / "code")!r}, mini_batch_size="100B",
                    process_count_per_node=1, error_threshold=0, run_max_try=1,
                ),
                inputs={{"table": DataPath("parallel_tables", "tables")}},
                dataset_type="tabular",
                output=Output("rows"),
            )
        """,
    )
    pd.DataFrame({"id": [40], "value": [-1]}).to_csv(tables / "b.csv", index=False)
    # One worker takes the mini-batches in order, so a.csv's are all done when b.csv's trips the threshold.
    failed = run_dag("parallel_tables")
    assert failed.task_states["rows"] == "failed"
    assert sorted(map(int, (tmp_path / "counter").read_text().split())) == list(range(41))
    (tables / "b.csv").write_text("id,value\n40,400\n")
    (tmp_path / "counter").unlink()
    fixed = run_dag("parallel_tables")
    assert fixed.state == "success", fixed.task_states
    assert (tmp_path / "counter").read_text().split() == ["40"]  # the 40 rows of a.csv were recorded
    rows = (store / fixed.xcom("rows", "rows")["path"] / "parallel_run_step.txt").read_text().splitlines()
    assert rows == [f"{i} {i}" for i in range(41)]
