"""HyperDrive trials on Azure Batch (``ScriptTrial(compute=<Batch connection>, pool_id=...)``) through the
real Airflow path (``dag.test()``), the real azure-batch 15 client, the local Batch server (which runs each
task as a process on this machine) and Azurite for staging: the cap on concurrent trials, metrics read from
the running task, a Bandit-terminated trial's Batch task terminated, the best trial's outputs committed."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.batch_server import BatchTestServer, create_pool, running_batch_server
from support.dagtools import RunResult, run_dag, write_dag
from support.stores import BlobContainer, local_store
from support.sweep_trial import assert_bandit_stopped_the_poor_trial, peak_concurrency

from airflow_provider_amlpipe.data.objects import materialize

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.slow]

POOL = "trials"
#: A trial whose curve is ``quality * i / intervals``; it records (in a file this test reads) when it
#: starts and ends, and writes its model.
TRIAL = """\
import argparse, json, os, time
from airflow_provider_amlpipe import runtime
parser = argparse.ArgumentParser()
parser.add_argument("--events", required=True)
parser.add_argument("--quality", type=float, required=True)
parser.add_argument("--intervals", type=int, default=4)
parser.add_argument("--pause", type=float, default=0.05)
args = parser.parse_args()
def event(name):
    with open(args.events, "a") as f:
        f.write(json.dumps({"event": name, "pid": os.getpid(), "quality": args.quality, "t": time.time(),
                            "node": os.environ.get("AZ_BATCH_NODE_ID")}) + "\\n")
event("start")
for i in range(1, args.intervals + 1):
    runtime.log_metric("acc", args.quality * i / args.intervals, step=i)
    time.sleep(args.pause)
(runtime.output_path("model") / "model.json").write_text(json.dumps({"quality": args.quality}))
event("end")
"""


@pytest.fixture
def server() -> Iterator[BatchTestServer]:
    with running_batch_server() as state:
        create_pool(state, POOL, nodes=4)  # more slots than max_concurrent_runs: the cap is the sweep's
        yield state


class RemoteSweep:
    def __init__(self, dag_id: str, tmp: Path, monkeypatch: pytest.MonkeyPatch, server: BatchTestServer) -> None:
        self.dag_id = dag_id
        self.server = server
        self.conn_id, self.store = local_store(dag_id, tmp, monkeypatch)
        self.events = tmp / "events.jsonl"
        self.src = tmp / "src"
        self.src.mkdir()
        (self.src / "trial.py").write_text(TRIAL)
        connection = {
            "conn_type": "amlpipe_azure_batch",
            "host": server.endpoint,
            "login": server.account_name,
            "password": server.account_key,
            "extra": {"allow_insecure_loopback": True, "staging_datastore": "batch_staging"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_BATCH_TRIALS", json.dumps(connection))

    def write(self, *, sampling: str, policy: str, arguments: list[str], total: int, concurrent: int) -> None:
        write_dag(
            self.dag_id,
            f"""
            from airflow.sdk import DAG
            from airflow_provider_amlpipe import HyperDriveStepOperator, Output, PythonEnvironment, ScriptTrial
            from airflow_provider_amlpipe.sweep import *
            with DAG(dag_id={self.dag_id!r}, schedule=None):
                HyperDriveStepOperator(
                    task_id="sweep",
                    trial=ScriptTrial(script_name="trial.py", source_directory={str(self.src)!r},
                                      arguments={["--events", str(self.events), *arguments]!r},
                                      environment=PythonEnvironment(interpreter={sys.executable!r}),
                                      compute="batch_trials", pool_id={POOL!r}),
                    hyperparameter_sampling={sampling},
                    policy={policy},
                    primary_metric_name="acc",
                    primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                    max_total_runs={total},
                    max_concurrent_runs={concurrent},
                    outputs=[Output("model")],
                    datastore={self.conn_id!r},
                    poll_interval=0.2,
                    lease_ttl=10,
                )
            """,
        )

    def run(self) -> RunResult:
        return run_dag(self.dag_id)

    def processes(self) -> list[dict[str, Any]]:
        runs: dict[int, dict[str, Any]] = {}
        for line in self.events.read_text().splitlines() if self.events.exists() else []:
            event = json.loads(line)
            runs.setdefault(event["pid"], {"quality": event["quality"], "node": event["node"]})[event["event"]] = event[
                "t"
            ]
        return list(runs.values())

    def read_output(self, ref: dict[str, Any], name: str) -> Any:
        return json.loads((materialize(self.store, ref["digest"]) / name).read_text())

    def batch_job_of(self, quality: float) -> str:
        """The Batch job whose task ran the trial with ``quality`` (from the create-task requests)."""
        jobs = [
            r.path.split("/")[2]
            for r in self.server.requests
            if r.method == "POST"
            and r.path.endswith("/tasks")
            and float(re.search(r"--quality ([0-9.]+)", r.body["commandLine"]).group(1)) == quality
        ]
        assert len(jobs) == 1, jobs
        return jobs[0]


@pytest.fixture
def sweep(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    server: BatchTestServer,
    azurite_connection_string: str,
) -> RemoteSweep:
    BlobContainer(azurite_connection_string, "batch_staging", monkeypatch, "trials")
    return RemoteSweep(f"hdr_{request.node.name}"[:200], tmp_path, monkeypatch, server)


def test_trials_run_as_batch_tasks_within_the_cap_and_the_best_is_committed(sweep: RemoteSweep) -> None:
    sweep.write(
        sampling="RandomParameterSampling({'--quality': uniform(0.1, 1.0)})",
        policy="None",
        arguments=["--pause", "0.3"],
        total=4,
        concurrent=2,
    )
    result = sweep.run()
    assert result.state == "success", result.task_states
    processes = sweep.processes()
    assert len(processes) == 4 and all("end" in p for p in processes)
    assert all(p["node"] for p in processes)  # each ran as a Batch task on a node of the pool
    assert peak_concurrency(processes) == 2  # never more than max_concurrent_runs, and it was used
    assert sum(sweep.server.executions.values()) == 4
    metrics = sweep.read_output(result.xcom("sweep", "metrics"), "metrics.json")
    assert [t["status"] for t in metrics["trials"]] == ["completed"] * 4
    # Every interval the task logged reached the controller (and the trial's record).
    assert all([m["step"] for m in t["metrics"]] == [1, 2, 3, 4] for t in metrics["trials"])
    best = max(processes, key=lambda p: p["quality"])["quality"]
    assert result.xcom("sweep", "best_hyperparameters")["--quality"] == pytest.approx(best)
    assert sweep.read_output(result.xcom("sweep", "model"), "model.json") == {"quality": best}
    # Each trial's Batch job was deleted and its staging folder removed once the trial ended.
    assert not sweep.server.jobs

    # Unchanged: the sweep is reused whole, no task runs.
    again = sweep.run()
    assert again.state == "success" and again.reused("sweep")
    assert sum(sweep.server.executions.values()) == 4


def test_bandit_terminates_the_poor_trials_batch_task(sweep: RemoteSweep) -> None:
    sweep.write(
        sampling="GridParameterSampling({'--quality': choice(1.0, 0.2)})",
        policy="BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=3)",
        arguments=["--intervals", "40", "--pause", "0.25"],
        total=2,
        concurrent=2,
    )
    result = sweep.run()
    assert result.state == "success", result.task_states
    # Judged on the metrics read from the running task, and stopped long before its 40 intervals; its process on
    # the node killed.
    assert_bandit_stopped_the_poor_trial(sweep, result, intervals=40, stopped_before=30)
    # The service was asked to terminate exactly the poor trial's task.
    poor_job, good_job = sweep.batch_job_of(0.2), sweep.batch_job_of(1.0)
    terminated = {r.path for r in sweep.server.requests if r.method == "POST" and r.path.endswith("/terminate")}
    assert f"/jobs/{poor_job}/tasks/step/terminate" in terminated
    assert f"/jobs/{good_job}/tasks/step/terminate" not in terminated
    assert sweep.read_output(result.xcom("sweep", "model"), "model.json") == {"quality": 1.0}


def test_a_connection_that_is_not_batch_is_refused_before_any_trial(
    sweep: RemoteSweep, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BATCH_TRIALS",
        json.dumps({"conn_type": "amlpipe_databricks", "host": "http://127.0.0.1:1", "password": "x"}),
    )
    sweep.write(
        sampling="RandomParameterSampling({'--quality': uniform(0.1, 1.0)})",
        policy="None",
        arguments=[],
        total=2,
        concurrent=1,
    )
    result = sweep.run()
    assert result.state == "failed"
    assert "is not an Azure Batch account" in capfd.readouterr().out
    assert not sweep.processes() and not sweep.server.executions
