"""HyperDriveStepOperator through the real Airflow path (``dag.test()``): trials as processes,
concurrency, termination, best outputs and XCom, whole-sweep and per-trial reuse, an RDB study."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from support.dagtools import RunResult, run_dag, write_dag
from support.sweep_trial import TRIAL, assert_bandit_stopped_the_poor_trial, peak_concurrency

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.objects import materialize

pytestmark = pytest.mark.usefixtures("airflow_db")

#: A trial whose curve is ``quality * i / intervals``; it records when its process starts and ends.


class Sweep:
    def __init__(self, dag_id: str, tmp: Path, conn_id: str, store: LocalDatastore) -> None:
        self.dag_id = dag_id
        self.tmp = tmp
        self.conn_id = conn_id
        self.store = store
        self.events = tmp / "events.jsonl"
        self.src = tmp / "src"
        self.src.mkdir()
        (self.src / "trial.py").write_text(TRIAL)

    def write(self, **options: Any) -> None:
        settings = {
            "sampling": "RandomParameterSampling({'--quality': uniform(0.1, 1.0)})",
            "policy": "None",
            "max_total_runs": 4,
            "max_concurrent_runs": 2,
            "arguments": [],
            "metric": "acc",
            "storage": None,
            **options,
        }
        write_dag(
            self.dag_id,
            f"""
            from airflow.sdk import DAG
            from airflow_provider_amlpipe import HyperDriveStepOperator, Output, ScriptTrial
            from airflow_provider_amlpipe.sweep import *
            with DAG(dag_id={self.dag_id!r}, schedule=None):
                HyperDriveStepOperator(
                    task_id="sweep",
                    trial=ScriptTrial(script_name="trial.py", source_directory={str(self.src)!r},
                                      arguments={settings["arguments"]!r}),
                    hyperparameter_sampling={settings["sampling"]},
                    policy={settings["policy"]},
                    primary_metric_name={settings["metric"]!r},
                    primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                    max_total_runs={settings["max_total_runs"]},
                    max_concurrent_runs={settings["max_concurrent_runs"]},
                    outputs=[Output("model")],
                    optuna_storage={settings["storage"]!r},
                    datastore={self.conn_id!r},
                    lease_ttl=5,
                )
            """,
        )

    def run(self, conf: dict[str, Any] | None = None) -> RunResult:
        return run_dag(self.dag_id, conf)

    def processes(self) -> list[dict[str, Any]]:
        """Each trial process: its start and (if it ended normally) end time."""
        if not self.events.exists():
            return []
        runs: dict[int, dict[str, Any]] = {}
        for line in self.events.read_text().splitlines():
            event = json.loads(line)
            runs.setdefault(event["pid"], {"quality": event["quality"]})[event["event"]] = event["t"]
        return list(runs.values())

    def read_output(self, ref: dict[str, Any], name: str) -> Any:
        return json.loads((materialize(self.store, ref["digest"]) / name).read_text())


@pytest.fixture
def sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Sweep:
    dag_id = f"hd_{request.node.name}"[:200]
    root = tmp_path / "store"
    conn_id = f"store_{dag_id}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    monkeypatch.setenv("AMLPIPE_TEST_EVENTS", str(tmp_path / "events.jsonl"))
    return Sweep(dag_id, tmp_path, conn_id, LocalDatastore(conn_id, root))


def test_sweep_runs_trials_within_the_cap_and_hands_over_the_best(sweep: Sweep) -> None:
    sweep.write()
    first = sweep.run()
    assert first.state == "success", first.task_states
    processes = sweep.processes()
    assert len(processes) == 4 and all("end" in p for p in processes)
    assert peak_concurrency(processes) == 2  # never more than max_concurrent_runs, and it was used
    metrics = sweep.read_output(first.xcom("sweep", "metrics"), "metrics.json")
    assert [t["status"] for t in metrics["trials"]] == ["completed"] * 4
    values = {t["number"]: t["value"] for t in metrics["trials"]}
    best_number = max(values, key=lambda n: values[n])
    assert first.xcom("sweep", "best_trial") == best_number == metrics["best_trial"]
    assert first.xcom("sweep", "best_value") == pytest.approx(max(values.values()))
    best = first.xcom("sweep", "best_hyperparameters")
    best_quality = best["--quality"]
    assert best_quality == pytest.approx(max(p["quality"] for p in processes))
    # The best trial's own model is the sweep's output, committed as a version.
    model = sweep.read_output(first.xcom("sweep", "model"), "model.json")
    assert model == {"quality": best_quality}
    assert first.xcom("sweep", "model")["name"] == f"{sweep.dag_id}.sweep.model"
    # Every trial's metric history with its steps, and the controller's start/end times.
    page = (materialize(sweep.store, first.xcom("sweep", "metrics")["digest"]) / "report.html").read_text()
    assert page.count('<polyline class="trial"') == 8  # four curves, four parallel-coordinate lines
    assert f'<tr class="best"><td>{best_number}</td>' in page
    trial = metrics["trials"][0]
    assert [m["step"] for m in trial["metrics"] if m["name"] == "acc"] == [10, 20, 30, 40]
    assert trial["ended_at"] > trial["started_at"]

    # Unchanged: the whole sweep is reused, no trial runs.
    second = sweep.run()
    assert second.state == "success" and second.reused("sweep")
    assert len(sweep.processes()) == 4
    assert second.xcom("sweep", "best_hyperparameters") == best

    # A larger budget runs only the new trials; the four finished ones are taken from the study.
    sweep.write(max_total_runs=6)
    third = sweep.run()
    assert third.state == "success", third.task_states
    assert not third.reused("sweep")
    assert len(sweep.processes()) == 6
    metrics = sweep.read_output(third.xcom("sweep", "metrics"), "metrics.json")
    assert len(metrics["trials"]) == 6
    assert [t["reused"] for t in metrics["trials"]] == [True] * 4 + [False] * 2


def test_bandit_kills_the_poor_trial_and_it_is_not_reused(sweep: Sweep) -> None:
    sweep.write(
        sampling="GridParameterSampling({'--quality': choice(1.0, 0.2)})",
        policy="BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=3)",
        arguments=["--intervals", "30", "--pause", "0.1"],
        max_total_runs=2,
        max_concurrent_runs=2,
    )
    first = sweep.run()
    assert first.state == "success", first.task_states
    # Stopped once the good trial had logged its first intervals (it may start a little later), long before its end.
    assert_bandit_stopped_the_poor_trial(sweep, first, intervals=30, stopped_before=25)

    # A rerun without the policy: the completed trial is served from its record, the terminated one runs.
    sweep.write(
        sampling="GridParameterSampling({'--quality': choice(1.0, 0.2)})",
        arguments=["--intervals", "30", "--pause", "0.1"],
        max_total_runs=2,
        max_concurrent_runs=2,
    )
    second = sweep.run()
    assert second.state == "success", second.task_states
    qualities = [p["quality"] for p in sweep.processes()]
    assert sorted(qualities) == [0.2, 0.2, 1.0]
    metrics = sweep.read_output(second.xcom("sweep", "metrics"), "metrics.json")
    assert {t["hyperparameters"]["--quality"]: t["reused"] for t in metrics["trials"]} == {1.0: True, 0.2: False}


def test_regenerate_outputs_runs_every_trial_again(sweep: Sweep) -> None:
    sweep.write(max_total_runs=2, max_concurrent_runs=2)
    assert sweep.run().state == "success"
    assert len(sweep.processes()) == 2
    again = sweep.run({"amlpipe": {"regenerate_outputs": True}})
    assert again.state == "success" and not again.reused("sweep")
    assert len(sweep.processes()) == 4  # the trials ran again, not only the sweep's bookkeeping
    metrics = sweep.read_output(again.xcom("sweep", "metrics"), "metrics.json")
    assert [t["reused"] for t in metrics["trials"]] == [False, False]
    assert metrics["study"]["name"].count("-") == 2  # a study of this run's own


def test_a_primary_metric_no_trial_logs_fails_with_the_logged_names(
    sweep: Sweep, capfd: pytest.CaptureFixture[str]
) -> None:
    sweep.write(metric="accuracy", max_total_runs=1, max_concurrent_runs=1)
    result = sweep.run()
    assert result.state == "failed"
    log = capfd.readouterr().out
    assert "no trial logged the primary metric 'accuracy'; the trials logged: acc" in log


@pytest.fixture
def postgres_url() -> Iterator[str]:
    import psycopg2

    server = os.environ.get("AMLPIPE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
    name = f"amlpipe_optuna_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server.replace("postgresql+psycopg2://", "postgresql://") + "/postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server}/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_the_study_in_postgresql_opens_with_optuna(sweep: Sweep, postgres_url: str) -> None:
    sweep.write(storage=postgres_url, max_total_runs=3, max_concurrent_runs=3)
    result = sweep.run()
    assert result.state == "success", result.task_states
    metrics = sweep.read_output(result.xcom("sweep", "metrics"), "metrics.json")
    study = optuna.load_study(study_name=metrics["study"]["name"], storage=postgres_url)
    assert len(study.trials) == 3
    assert study.best_value == pytest.approx(result.xcom("sweep", "best_value"))
    assert study.best_trial.user_attrs["hyperparameters"] == result.xcom("sweep", "best_hyperparameters")
    assert study.best_trial.intermediate_values == {i: study.best_value * i / 4 for i in range(1, 5)}
