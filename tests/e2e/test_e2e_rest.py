"""End to end through a real Airflow deployment: api-server, scheduler, dag-processor, triggerer.

DAG runs are triggered and inspected only through the public REST API, as a user would. One
deployment serves the whole module (see ``airflow_cluster.py``).
"""

from __future__ import annotations

import shutil
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.airflow_cluster import AirflowCluster, airflow_cluster
from support.paths import REPO

pytestmark = pytest.mark.slow

STEPS = ("train", "extract", "compare")
PASSENGERS = {"DataStoreName": "amlpipe_samples", "RelativePath": "passengers.csv"}
SINGLE_FLIGHT_DAG = "amlpipe_e2e_single_flight"
PRODUCER_DAG = "amlpipe_e2e_asset_producer"
CONSUMER_DAG = "amlpipe_e2e_asset_consumer"
ASSET_DATASET = "e2e_asset_table"
SLEEP_S = 6

SINGLE_FLIGHT_SCRIPT = f"""\
import os, time
from pathlib import Path
from airflow_provider_amlpipe import runtime
Path(os.environ["AMLPIPE_TEST_COUNTERS"], "single_flight").open("a").write("x")
time.sleep({SLEEP_S})
(runtime.output_path("marker") / "done.txt").write_text("done")
"""

SINGLE_FLIGHT_DAG_FILE = f"""\
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import Output, PythonScriptStepOperator

with DAG(dag_id={SINGLE_FLIGHT_DAG!r}, schedule=None, catchup=False, max_active_runs=4):
    PythonScriptStepOperator(
        task_id="slow_step",
        source_directory=str(Path(__file__).parent / "scripts" / "single_flight"),
        script_name="slow_step.py",
        outputs=[Output("marker")],
        lease_ttl=10,
        poll_interval=1,
        wait_before_defer=0,  # this test follows the wait through a real triggerer
    )
"""


PRODUCER_SCRIPT = """\
from airflow_provider_amlpipe import runtime
(runtime.output_path("table") / "value.txt").write_text(str(runtime.param("value")))
"""

CONSUMER_SCRIPT = """\
import os
from pathlib import Path
from airflow_provider_amlpipe import runtime
value = (runtime.input_path("table") / "value.txt").read_text()
Path(os.environ["AMLPIPE_TEST_COUNTERS"], "consumer").open("a").write(value + "\\n")
(runtime.output_path("copy") / "value.txt").write_text(value)
"""

# A producer minting versions of a registered dataset, and a DAG scheduled on that dataset's Asset
# that reads exactly the version whose event started it (AML: a pipeline triggered by a dataset).
ASSET_DAGS_FILE = f"""\
from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_amlpipe import Output, PythonScriptStepOperator
from airflow_provider_amlpipe.assets import dataset_asset, triggered_dataset_input

SCRIPTS = Path(__file__).parent / "scripts" / "asset_e2e"

with DAG(dag_id={PRODUCER_DAG!r}, schedule=None, catchup=False, params={{"value": Param("a", type="string")}}):
    PythonScriptStepOperator(
        task_id="produce",
        source_directory=str(SCRIPTS),
        script_name="produce.py",
        step_params={{"value": "{{{{ params.value }}}}"}},
        outputs=[Output("table", register_as={ASSET_DATASET!r})],
    )

with DAG(dag_id={CONSUMER_DAG!r}, schedule=[dataset_asset("amlpipe_default", {ASSET_DATASET!r})], catchup=False):
    PythonScriptStepOperator(
        task_id="consume",
        source_directory=str(SCRIPTS),
        script_name="consume.py",
        inputs={{"table": triggered_dataset_input("amlpipe_default", {ASSET_DATASET!r})}},
        outputs=[Output("copy")],
    )
"""


@pytest.fixture(scope="module")
def counters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e_counters")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, counters: Path) -> Iterator[AirflowCluster]:
    """The repository's example DAGs plus the single-flight test DAG, served by one deployment."""
    dags = tmp_path_factory.mktemp("e2e_dags") / "dags"
    shutil.copytree(REPO / "dags", dags, ignore=shutil.ignore_patterns("demo", "__pycache__", "*.pyc"))
    (dags / "scripts" / "single_flight").mkdir(parents=True)
    (dags / "scripts" / "single_flight" / "slow_step.py").write_text(SINGLE_FLIGHT_SCRIPT)
    (dags / f"{SINGLE_FLIGHT_DAG}.py").write_text(textwrap.dedent(SINGLE_FLIGHT_DAG_FILE))
    (dags / "scripts" / "asset_e2e").mkdir(parents=True)
    (dags / "scripts" / "asset_e2e" / "produce.py").write_text(PRODUCER_SCRIPT)
    (dags / "scripts" / "asset_e2e" / "consume.py").write_text(CONSUMER_SCRIPT)
    (dags / "amlpipe_e2e_assets.py").write_text(ASSET_DAGS_FILE)
    users = {"admin": "admin", "viewer": "viewer"}
    env = {"AMLPIPE_TEST_COUNTERS": str(counters), "AMLPIPE_EXAMPLE_POLLING_SECONDS": "2"}
    with airflow_cluster(dags, extra_env=env, users=users) as running:
        yield running


def statuses(cluster: AirflowCluster, dag_id: str, run_id: str, tasks: tuple[str, ...]) -> dict[str, dict]:
    return {task: cluster.client.xcom(dag_id, run_id, task, "amlpipe_status") for task in tasks}


def test_data_dependency_runs_then_reuses(cluster: AirflowCluster) -> None:
    client = cluster.client
    dag_id = "aml_data_dependency"
    with cluster.dump_logs_on_failure():
        client.wait_for_dag(dag_id)
        client.unpause(dag_id)
        conf = {"reference_path": "passengers.csv"}

        first_id = client.trigger(dag_id, conf)
        first = client.wait_for_run(dag_id, first_id)
        assert first["state"] == "success", client.task_states(dag_id, first_id)
        assert client.task_states(dag_id, first_id) == dict.fromkeys(STEPS, "success")
        ran = statuses(cluster, dag_id, first_id, STEPS)
        assert {task: s["reused"] for task, s in ran.items()} == dict.fromkeys(STEPS, False)
        assert all(s["producer"]["run_id"] == first_id for s in ran.values())

        second_id = client.trigger(dag_id, conf)
        second = client.wait_for_run(dag_id, second_id)
        assert second["state"] == "success", client.task_states(dag_id, second_id)
        reused = statuses(cluster, dag_id, second_id, STEPS)
        assert {task: s["reused"] for task, s in reused.items()} == dict.fromkeys(STEPS, True)
        assert {task: s["producer"]["run_id"] for task, s in reused.items()} == dict.fromkeys(STEPS, first_id)
        assert reused["compare"]["versions"] == ran["compare"]["versions"]


def test_the_aml_rest_body_runs_the_published_pipeline_with_parameters_and_data_paths(cluster: AirflowCluster) -> None:
    client = cluster.client
    dag_id = "aml_published_pipeline"
    with cluster.dump_logs_on_failure():
        client.wait_for_dag(dag_id)
        client.unpause(dag_id)
        body = {
            "ExperimentName": "rest-demo",
            "RunSource": "SDK",
            "Description": "from AML client code",
            "ParameterAssignments": {"top": 3},
            "DataPathAssignments": {"test_data": PASSENGERS},
        }
        submitted = client.request("POST", f"/amlpipe/aml/pipelines/{dag_id}/submit", json=body).json()
        assert submitted["Status"] == "NotStarted" and submitted["PipelineId"] == dag_id
        run_id = submitted["Id"]
        assert client.wait_for_run(dag_id, run_id)["state"] == "success", client.task_states(dag_id, run_id)
        status = client.get(f"/amlpipe/aml/pipelines/{dag_id}/runs/{run_id}")
        assert status["Status"] == "Completed" and status["StepRuns"] == [{"Name": "summarize", "Status": "Completed"}]
        run = client.dag_run(dag_id, run_id)
        assert run["conf"]["test_data"] == body["DataPathAssignments"]["test_data"] and run["conf"]["top"] == 3
        assert "rest-demo" in (run.get("note") or "")
        first = client.xcom(dag_id, run_id, "summarize", "amlpipe_status")
        assert first["reused"] is False
        # The same body through Airflow's own REST API: reused; another data path reruns the step.
        conf = {"top": 3, "test_data": body["DataPathAssignments"]["test_data"]}
        again = client.trigger(dag_id, conf)
        assert client.wait_for_run(dag_id, again)["state"] == "success"
        assert client.xcom(dag_id, again, "summarize", "amlpipe_status")["reused"] is True
        other = client.trigger(
            dag_id, {"top": 3, "test_data": {"DataStoreName": "amlpipe_samples", "RelativePath": "sample_input.csv"}}
        )
        assert client.wait_for_run(dag_id, other)["state"] == "success"
        assert client.xcom(dag_id, other, "summarize", "amlpipe_status")["reused"] is False
        # Checked before a run exists: a data path that is not AML's shape, an unknown top-level field.
        bad = {"DataPathAssignments": {"test_data": {"DataStoreName": "amlpipe_samples", "RelativePath": "/abs"}}}
        refused = client.request("POST", f"/amlpipe/aml/pipelines/{dag_id}/submit", json=bad, ok=(400,))
        assert "test_data" in refused.text
        client.request("POST", f"/amlpipe/aml/pipelines/{dag_id}/submit", json={"Nope": 1}, ok=(422,))
        # Airflow's auth manager decides: a viewer may read the run, not submit one.
        viewer = cluster.client_for("viewer")
        try:
            assert viewer.get(f"/amlpipe/aml/pipelines/{dag_id}/runs/{run_id}")["Status"] == "Completed"
            viewer.request("POST", f"/amlpipe/aml/pipelines/{dag_id}/submit", json=body, ok=(403,))
        finally:
            viewer.close()
        anonymous = cluster.client.http.post(f"/amlpipe/aml/pipelines/{dag_id}/submit", json=body)
        assert anonymous.status_code == 401


def test_a_burst_of_new_files_starts_one_run_with_the_changed_path(cluster: AirflowCluster) -> None:
    client = cluster.client
    dag_id = "aml_datastore_schedule"
    incoming = cluster.home / "amlpipe" / "datastore" / "incoming"
    with cluster.dump_logs_on_failure():
        client.wait_for_dag(dag_id)
        incoming.mkdir(parents=True, exist_ok=True)
        client.unpause(dag_id)
        # The triggerer picks the watcher up and records the folder as it is (empty): its baseline appears.
        watches = cluster.home / "amlpipe" / "datastore" / "reuse" / "watches"
        deadline = time.monotonic() + 120
        while not list(watches.glob("*.json")):
            assert time.monotonic() < deadline, "the watcher never started"
            time.sleep(0.5)
        for n in range(3):
            (incoming / f"batch-{n}.csv").write_text(f"{n},row\n")
            time.sleep(0.2)
        deadline = time.monotonic() + 240
        runs: list[dict] = []
        while time.monotonic() < deadline and not runs:
            runs = client.get(f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]
            time.sleep(2)
        assert runs, "no run started by the new files"
        run_id = runs[0]["dag_run_id"]
        finished = client.wait_for_run(dag_id, run_id, timeout=180)
        assert finished["state"] == "success", client.task_states(dag_id, run_id)
        time.sleep(5)
        assert len(client.get(f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]) == 1  # one run for the burst
        events = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]
        payload = events[0]["extra"]["payload"]
        assert payload["path"] == "incoming" and payload["changed"] == [f"incoming/batch-{n}.csv" for n in range(3)]
        summary = client.xcom(dag_id, run_id, "summarize", "summary")
        assert summary["files"] == 2  # top.csv and count.txt, from the three new files
        # The step read the changed folder, not the Param's default file: three rows counted.
        assert (cluster.home / "amlpipe" / "datastore" / summary["path"] / "count.txt").read_text() == "3\n"


def test_identical_step_runs_once_across_concurrent_runs(cluster: AirflowCluster, counters: Path) -> None:
    client = cluster.client
    dag_id = SINGLE_FLIGHT_DAG
    task = "slow_step"
    with cluster.dump_logs_on_failure():
        client.wait_for_dag(dag_id)
        client.unpause(dag_id)

        started = time.monotonic()
        run_ids = [client.trigger(dag_id), client.trigger(dag_id)]
        seen: dict[str, dict[str, set[str | None]]] = {}
        runs = client.wait_for_runs(dag_id, run_ids, timeout=120, interval=0.3, seen=seen)
        took = time.monotonic() - started
        assert {run_id: run["state"] for run_id, run in runs.items()} == dict.fromkeys(run_ids, "success"), seen

        assert (counters / "single_flight").read_text() == "x"  # the body ran exactly once
        status = {run_id: client.xcom(dag_id, run_id, task, "amlpipe_status") for run_id in run_ids}
        [producer_run] = [run_id for run_id in run_ids if not status[run_id]["reused"]]
        [waiter_run] = [run_id for run_id in run_ids if status[run_id]["reused"]]
        assert status[waiter_run]["producer"]["run_id"] == producer_run
        assert status[waiter_run]["fingerprint"] == status[producer_run]["fingerprint"]

        # The waiting run went through the triggerer: it was seen deferred, and its log shows the
        # wait, the lease trigger firing in the triggerer, and the resume that reused the record.
        assert "deferred" in seen[waiter_run][task], seen
        assert "deferred" not in seen[producer_run][task], seen
        log = client.task_log(dag_id, waiter_run, task)
        assert "is running now" in log and "waiting for it" in log, log
        assert "Trigger fired event" in log, log
        assert "The identical step we waited for ended (committed)" in log, log
        assert "REUSED" in log, log
        print(f"two concurrent runs finished in {took:.1f}s")


def test_a_dag_scheduled_on_a_dataset_runs_on_each_new_version_and_reads_it(
    cluster: AirflowCluster, counters: Path
) -> None:
    client = cluster.client

    def consumer_runs() -> list[dict]:
        runs = client.get(f"/api/v2/dags/{CONSUMER_DAG}/dagRuns", params={"order_by": "run_after"})["dag_runs"]
        return list(runs)

    def wait_for_consumer_runs(count: int) -> list[dict]:
        deadline = time.monotonic() + 120
        while len(runs := consumer_runs()) < count:
            assert time.monotonic() < deadline, f"{len(runs)} consumer runs, expected {count}"
            time.sleep(1)
        for run in runs:
            finished = client.wait_for_run(CONSUMER_DAG, run["dag_run_id"])
            assert finished["state"] == "success", client.task_states(CONSUMER_DAG, run["dag_run_id"])
        return runs

    def produce(value: str) -> dict:
        run_id = client.trigger(PRODUCER_DAG, {"value": value})
        assert client.wait_for_run(PRODUCER_DAG, run_id)["state"] == "success"
        status: dict = client.xcom(PRODUCER_DAG, run_id, "produce", "amlpipe_status")
        return status

    with cluster.dump_logs_on_failure():
        for dag_id in (PRODUCER_DAG, CONSUMER_DAG):
            client.wait_for_dag(dag_id)
            client.unpause(dag_id)

        first = produce("alpha")
        assert not first["reused"] and first["new_versions"]
        [run] = wait_for_consumer_runs(1)
        events = client.get(f"/api/v2/dags/{CONSUMER_DAG}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
        [event] = [e for e in events["asset_events"] if e["uri"] == f"amlpipe://amlpipe_default/{ASSET_DATASET}"]
        assert event["extra"]["version"] == first["versions"]["table"]

        again = produce("alpha")  # reused: no new version, so no event and no consumer run
        assert again["reused"] and not again["new_versions"]

        second = produce("beta")
        assert second["versions"]["table"] == first["versions"]["table"] + 1
        runs = wait_for_consumer_runs(2)
        rendered = [
            client.get(f"/api/v2/dags/{CONSUMER_DAG}/dagRuns/{r['dag_run_id']}/taskInstances/consume")[
                "rendered_fields"
            ]["inputs"]["table"]
            for r in runs
        ]
        # The template resolved against Airflow's real triggering_asset_events to the event's version.
        expected = [status["versions"]["table"] for status in (first, second)]
        assert rendered == [f"DatasetInput(name={ASSET_DATASET!r}, version='{v}')" for v in expected]
        time.sleep(5)
        assert len(consumer_runs()) == 2, "a reused producer run started the consumer"
        assert (counters / "consumer").read_text() == "alpha\nbeta\n"
