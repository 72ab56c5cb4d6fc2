"""The Python script step through the real Airflow path (``dag.test()``): run, reuse, versions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.dagtools import run_dag, write_dag

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.registry import DatasetRegistry

pytestmark = pytest.mark.usefixtures("airflow_db")

PRODUCER = """\
import os, sys
from pathlib import Path
Path(os.environ["AMLPIPE_TEST_COUNTERS"], "{name}").open("a").write("x")
out = Path(sys.argv[sys.argv.index("--out") + 1])
(out / "numbers.txt").write_text("\\n".join(str(i * {factor}) for i in range(10)))
"""

CONSUMER = """\
import os, sys
from pathlib import Path
from airflow_provider_amlpipe import runtime
Path(os.environ["AMLPIPE_TEST_COUNTERS"], "{name}").open("a").write("x")
numbers = [int(x) for x in (runtime.input_path("numbers") / "numbers.txt").read_text().split()]
(runtime.output_path("total") / "total.txt").write_text(str(sum(numbers)))
runtime.log_metric("total", sum(numbers))
"""


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> dict[str, object]:
    """A two-step DAG (produce -> consume, linked by data) with its own datastore and counters."""
    dag_id = f"t_{request.node.name}".replace("[", "_").replace("]", "").replace("-", "_")[:200]
    counters = tmp_path / "counters"
    counters.mkdir()
    monkeypatch.setenv("AMLPIPE_TEST_COUNTERS", str(counters))
    store_root = tmp_path / "store"
    connection = {"conn_type": "amlpipe_local", "extra": {"path": str(store_root)}}
    monkeypatch.setenv("AIRFLOW_CONN_STORE_" + dag_id.upper(), json.dumps(connection))
    src = tmp_path / "src"
    scripts = {"produce": PRODUCER.format(name="produce", factor=1), "consume": CONSUMER.format(name="consume")}
    for name, text in scripts.items():
        (src / name).mkdir(parents=True)
        (src / name / f"{name}.py").write_text(text)
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            produce = PythonScriptStepOperator(
                task_id="produce", source_directory={str(src / "produce")!r}, script_name="produce.py",
                arguments=["--out", "{{outputs.numbers}}"], outputs=[Output("numbers")],
                datastore="store_{dag_id}", lease_ttl=5,
            )
            consume = PythonScriptStepOperator(
                task_id="consume", source_directory={str(src / "consume")!r}, script_name="consume.py",
                inputs={{"numbers": produce.output["numbers"]}},
                outputs=[Output("total", register_as="{dag_id}_total")],
                datastore="store_{dag_id}", lease_ttl=5,
            )
        """,
    )
    return {"dag_id": dag_id, "src": src, "counters": counters, "store": LocalDatastore("s", store_root)}


def count(p: dict[str, object], name: str) -> int:
    path = Path(str(p["counters"])) / name
    return len(path.read_text()) if path.exists() else 0


def test_first_run_executes_and_rerun_reuses(pipeline: dict[str, object]) -> None:
    dag_id = str(pipeline["dag_id"])
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    assert first.ran() == {"produce", "consume"}
    assert (count(pipeline, "produce"), count(pipeline, "consume")) == (1, 1)

    ref = first.xcom("produce", "numbers")  # each output under its own key: produce.output["numbers"]
    assert ref["kind"] == "amlpipe.dataref"
    assert ref["name"] == f"{dag_id}.produce.numbers" and ref["version"] == 1
    assert ref["producer"]["run_id"] == first.run_id
    assert first.xcom("produce", "return_value") is None  # one output: its key is the step's .output
    assert first.statuses["consume"]["metrics"][0]["value"] == 45

    second = run_dag(dag_id)
    assert second.state == "success"
    assert second.ran() == set()
    assert (count(pipeline, "produce"), count(pipeline, "consume")) == (1, 1)
    assert second.xcom("produce", "numbers") == ref
    assert second.statuses["consume"]["producer"]["run_id"] == first.run_id
    link = second.xcom("consume", "_link_ReusedFromLink")
    assert link.endswith(f"/dags/{dag_id}/runs/{first.run_id.replace(':', '%3A').replace('+', '%2B')}/tasks/consume")
    assert not first.xcom("consume", "_link_ReusedFromLink")  # a step that ran links nowhere

    # Each output is an Airflow Asset; an event is emitted when a version is minted, not when reused.
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        extras = session.scalars(
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == f"amlpipe://store_{dag_id}/{dag_id}.produce.numbers")
            .order_by(AssetEvent.timestamp)
        ).all()
    assert [(e["version"], e["digest"], e["run_id"]) for e in extras] == [(1, ref["digest"], first.run_id)]


def test_a_step_skips_requests_that_cannot_tell_anything_and_still_emits_events(
    pipeline: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow asks its API server, before a task with outlets runs, which outlet *Assets* are inactive;
    a step's outlets are aliases, which that check skips, so the step leaves the request out. A step on
    this worker declares no "Remote job" link, whose XCom Airflow would write empty for every task."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.sdk.execution_time import supervisor
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag_id = str(pipeline["dag_id"])
    sent: list[str] = []
    written: list[str] = []
    send = supervisor.InProcessSupervisorComms.send

    def counting(self: object, msg: object) -> object:
        sent.append(type(msg).__name__)
        if type(msg).__name__ == "SetXCom":
            written.append(str(getattr(msg, "key", None)))
        return send(self, msg)  # type: ignore[arg-type]

    monkeypatch.setattr(supervisor.InProcessSupervisorComms, "send", counting)
    first = run_dag(dag_id)
    assert first.ran() == {"produce", "consume"}
    assert "ValidateInletsAndOutlets" not in sent
    assert sent.count("SucceedTask") == 2
    assert sorted(written) == sorted(["numbers", "total", *["amlpipe_status", "_link_ReusedFromLink"] * 2])
    with create_session() as session:
        uris = session.scalars(
            select(AssetModel.uri)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == first.run_id)
        ).all()
    assert sorted(uris) == sorted(
        [f"amlpipe://store_{dag_id}/{dag_id}.produce.numbers", f"amlpipe://store_{dag_id}/{dag_id}_total"]
    )


def test_a_step_with_an_asset_outlet_of_its_own_is_still_checked() -> None:
    from airflow.sdk import DAG, Asset, AssetAlias

    from airflow_provider_amlpipe import PythonScriptStepOperator

    report = Asset("report", uri="file:///tmp/report.csv")
    with DAG(dag_id="t_own_outlet", schedule=None):
        step = PythonScriptStepOperator(task_id="s", script_name="s.py", outputs=["m"], outlets=[report])
    prepared = step.prepare_for_execution()
    assert prepared.outlets == [report]  # Airflow still checks the user's Asset before the task runs
    prepared.pre_execute({})
    assert prepared.outlets[0] == report and isinstance(prepared.outlets[1], AssetAlias)
    assert prepared.outlets == step.outlets  # what Airflow reports when the task succeeds is unchanged


def test_only_a_step_on_a_service_with_job_pages_declares_the_remote_job_link() -> None:
    from airflow.sdk import DAG

    from airflow_provider_amlpipe import DatabricksStepOperator, PythonScriptStepOperator

    with DAG(dag_id="t_links", schedule=None):
        local = PythonScriptStepOperator(task_id="local", script_name="s.py", outputs=["m"])
        vm = PythonScriptStepOperator(task_id="vm", script_name="s.py", compute="vm", vm_name="v", outputs=["m"])
        spark = DatabricksStepOperator(task_id="spark", compute="dbx", notebook_path="/Workspace/nb", outputs=["m"])
    assert [link.name for link in local.operator_extra_links] == ["Reused outputs from"]
    assert [link.name for link in vm.operator_extra_links] == ["Reused outputs from"]  # Run Command has no page
    assert [link.name for link in spark.operator_extra_links] == ["Reused outputs from", "Remote job"]


def test_edit_that_keeps_output_identical_reuses_downstream(pipeline: dict[str, object]) -> None:
    dag_id = str(pipeline["dag_id"])
    run_dag(dag_id)
    script = Path(str(pipeline["src"])) / "produce" / "produce.py"
    script.write_text(script.read_text() + "\n# a comment changes the code, not the output\n")
    again = run_dag(dag_id)
    assert again.ran() == {"produce"}
    assert "code" in again.statuses["produce"]["reason"]
    assert again.reused("consume")  # early cutoff: the input digest did not change
    assert again.statuses["produce"]["versions"] == {"numbers": 1}  # identical content: no new version
    assert again.statuses["produce"]["new_versions"] == []
    assert count(pipeline, "consume") == 1


def test_changed_output_reruns_downstream_and_mints_a_version(pipeline: dict[str, object]) -> None:
    dag_id = str(pipeline["dag_id"])
    run_dag(dag_id)
    script = Path(str(pipeline["src"])) / "produce" / "produce.py"
    script.write_text(PRODUCER.format(name="produce", factor=2))
    again = run_dag(dag_id)
    assert again.ran() == {"produce", "consume"}
    assert again.statuses["consume"]["reason"] == "changed since the last record: inputs.numbers"
    assert again.statuses["produce"]["versions"] == {"numbers": 2}
    registry = DatasetRegistry(pipeline["store"])  # type: ignore[arg-type]
    assert [v["version"] for v in registry.list_versions(f"{dag_id}.produce.numbers")] == [1, 2]
    assert registry.get(f"{dag_id}_total").version == 2


@pytest.mark.parametrize("damage", ["delete", "alter"])
def test_damaged_recorded_output_is_not_served(pipeline: dict[str, object], damage: str) -> None:
    dag_id = str(pipeline["dag_id"])
    first = run_dag(dag_id)
    ref = first.xcom("produce", "numbers")
    store = pipeline["store"]
    path = store.local_path(ref["path"] + "/numbers.txt")  # type: ignore[attr-defined]
    if damage == "delete":
        path.unlink()
    else:
        path.write_text("tampered")
    again = run_dag(dag_id)
    assert again.state == "success"
    assert "produce" in again.ran()
    assert count(pipeline, "produce") == 2
    assert path.read_text().startswith("0\n1")  # the object was repaired by the rerun


def test_regenerate_outputs_forces_listed_steps_and_replaces_records(pipeline: dict[str, object]) -> None:
    dag_id = str(pipeline["dag_id"])
    run_dag(dag_id)
    forced = run_dag(dag_id, conf={"amlpipe": {"regenerate_outputs": ["consume"]}})
    assert forced.ran() == {"consume"}
    assert "regenerate_outputs" in forced.statuses["consume"]["reason"]
    later = run_dag(dag_id)
    assert later.ran() == set()
    assert later.statuses["consume"]["producer"]["run_id"] == forced.run_id  # the fresh record is served
    everything = run_dag(dag_id, conf={"amlpipe": {"regenerate_outputs": True}})
    assert everything.ran() == {"produce", "consume"}


def test_allow_reuse_false_always_runs(pipeline: dict[str, object]) -> None:
    dag_id = str(pipeline["dag_id"])
    dag_file = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    dag_file.write_text(dag_file.read_text().replace('task_id="consume",', 'task_id="consume", allow_reuse=False,'))
    run_dag(dag_id)
    again = run_dag(dag_id)
    assert again.ran() == {"consume"}
    assert count(pipeline, "consume") == 2


def test_failing_script_fails_the_task_and_commits_nothing(
    pipeline: dict[str, object], capfd: pytest.CaptureFixture[str]
) -> None:
    dag_id = str(pipeline["dag_id"])
    script = Path(str(pipeline["src"])) / "produce" / "produce.py"
    script.write_text("import sys\nprint('progress 50%')\nprint('about to fail', file=sys.stderr)\nsys.exit(3)\n")
    result = run_dag(dag_id)
    logs = capfd.readouterr()
    assert "[stdout] progress 50%" in logs.out + logs.err  # streamed into the task log
    assert "command exited with code 3; last lines of stderr:\nabout to fail" in logs.out + logs.err
    assert "XCom not found" not in logs.out + logs.err  # no false alarm from the extra link
    assert result.state == "failed"
    assert result.task_states["produce"] == "failed"
    assert result.task_states["consume"] == "upstream_failed"
    store = pipeline["store"]
    assert list(store.list("registry")) == []  # type: ignore[attr-defined]
    assert list(store.list("reuse/records")) == []  # type: ignore[attr-defined]


@pytest.mark.slow
def test_requirements_environment_runs_in_its_own_cached_venv(
    pipeline: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMLPIPE_ENV_CACHE", str(tmp_path / "envs"))
    dag_id = str(pipeline["dag_id"])
    src = Path(str(pipeline["src"])) / "produce"
    # Installs nothing (no network in tests), but the venv is real and the file is fingerprinted.
    (src / "requirements.txt").write_text("--no-index\n")
    (src / "produce.py").write_text(
        (src / "produce.py").read_text() + "\n(out / 'prefix.txt').write_text(sys.prefix)\n"
    )
    dag_file = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    dag_file.write_text(
        dag_file.read_text()
        .replace("from airflow_provider_amlpipe import", "from airflow_provider_amlpipe import PythonEnvironment,")
        .replace(
            'task_id="produce",', 'task_id="produce", environment=PythonEnvironment(requirements="requirements.txt"),'
        )
    )
    first = run_dag(dag_id)
    assert first.state == "success", first.task_states
    prefix = pipeline["store"].local_path(first.xcom("produce", "numbers")["path"] + "/prefix.txt").read_text()  # type: ignore[attr-defined]
    assert Path(prefix).parent == tmp_path / "envs"
    (src / "requirements.txt").write_text("--no-index\n# pinned differently\n")
    second = run_dag(dag_id)
    # A new requirements file means a new venv: its path, written into the output, changes too.
    assert second.ran() == {"produce", "consume"}
    # The requirements file lives in source_directory, so the code digest changes with it.
    assert (
        second.statuses["produce"]["reason"] == "changed since the last record: code, environment.requirements_sha256"
    )
    new_prefix = pipeline["store"].local_path(second.xcom("produce", "numbers")["path"] + "/prefix.txt").read_text()  # type: ignore[attr-defined]
    assert new_prefix != prefix and Path(new_prefix).parent == tmp_path / "envs"
