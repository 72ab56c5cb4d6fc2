"""The sweep report through a running Airflow deployment: the task's "Sweep report" extra link
leads to the page the provider's plugin serves on the api-server, for signed-in users only."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from support.airflow_cluster import AirflowCluster, airflow_cluster
from support.sweep_trial import TRIAL

pytestmark = pytest.mark.slow

DAG_ID = "amlpipe_e2e_sweep_report"
DAG_FILE = f"""\
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_amlpipe import HyperDriveStepOperator, Output, ScriptTrial
from airflow_provider_amlpipe.sweep import MedianStoppingPolicy, RandomParameterSampling, uniform

with DAG(dag_id={DAG_ID!r}, schedule=None, catchup=False):
    HyperDriveStepOperator(
        task_id="sweep",
        trial=ScriptTrial(source_directory=str(Path(__file__).parent / "scripts" / "sweep"), script_name="trial.py"),
        hyperparameter_sampling=RandomParameterSampling({{"--quality": uniform(0.1, 1.0)}}),
        policy=MedianStoppingPolicy(delay_evaluation=2),
        primary_metric_name="acc",
        primary_metric_goal="maximize",
        max_total_runs=5,
        max_concurrent_runs=2,
        outputs=[Output("model")],
    )
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowCluster]:
    root = tmp_path_factory.mktemp("sweep_e2e")
    dags = root / "dags"
    (dags / "scripts" / "sweep").mkdir(parents=True)
    (dags / "scripts" / "sweep" / "trial.py").write_text(TRIAL)
    (dags / ".airflowignore").write_text("scripts/\n")
    (dags / f"{DAG_ID}.py").write_text(textwrap.dedent(DAG_FILE))
    env = {"AMLPIPE_TEST_EVENTS": str(root / "events.jsonl")}
    if not any(e.name == "amlpipe" for e in entry_points(group="airflow.plugins")):
        # An install that predates the plugin's entry point (setup.cfg): load it from a plugins folder.
        (root / "plugins").mkdir()
        (root / "plugins" / "amlpipe_plugin.py").write_text(
            "from airflow_provider_amlpipe.plugin import AmlPipePlugin\n"
        )
        env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(root / "plugins")
    with airflow_cluster(dags, extra_env=env) as running:
        yield running


def test_the_extra_link_opens_the_report_of_every_trial(cluster: AirflowCluster, tmp_path: Path) -> None:
    client = cluster.client
    with cluster.dump_logs_on_failure():
        client.wait_for_dag(DAG_ID)
        client.unpause(DAG_ID)
        run_id = client.trigger(DAG_ID)
        run = client.wait_for_run(DAG_ID, run_id, timeout=240)
        assert run["state"] == "success", client.task_states(DAG_ID, run_id)
        links = client.get(f"{client._run_path(DAG_ID, run_id)}/taskInstances/sweep/links")
        url = links["extra_links"]["Sweep report"]
        assert url.startswith(cluster.base_url + "/amlpipe/sweeps/"), links
        path = urlsplit(url).path

        page = client.request("GET", path)
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        drawn = set(re.findall(r'<svg id="curves".*?</svg>', html, re.S)[0].split('data-trial="')[1:])
        assert len(drawn) == 5  # one curve per trial
        assert html.count('<tr class="best">') == 1
        best = client.xcom(DAG_ID, run_id, "sweep", "best_trial")
        assert f'<tr class="best"><td>{best}</td>' in html

        # Airflow does not guard plugin routes: this one asks for what Airflow's own XCom route asks
        # for. (This deployment's simple auth manager makes everyone an admin, so both answer alike.)
        xcom = f"{client._run_path(DAG_ID, run_id)}/taskInstances/sweep/xcomEntries/metrics"
        with httpx.Client(base_url=cluster.base_url, trust_env=False) as anonymous:
            assert anonymous.get(path).status_code == anonymous.get(xcom).status_code
            forged = {"Authorization": "Bearer not-a-token"}
            assert anonymous.get(path, headers=forged).status_code == anonymous.get(xcom, headers=forged).status_code
            assert anonymous.get(path, headers=forged).status_code in (401, 403)
        missing = path.rsplit("/", 1)[0] + "/no_such_task"
        assert client.request("GET", missing, ok=(404,)).status_code == 404

        # In a browser, as a user following the link (this deployment signs everyone in as admin).
        dom, console, shot = browse(url, tmp_path / "sweep-report.png")
        assert dom.count('<polyline class="trial"') == html.count('<polyline class="trial"') >= 5 + 1
        assert not [line for line in console if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line)]
        assert shot.stat().st_size > 10_000  # the drawn charts, not a blank page


def browse(url: str, screenshot: Path) -> tuple[str, list[str], Path]:
    """The page's DOM after load, Chromium's console log lines, and a screenshot (headless Chromium)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
    flags += ["--no-first-run", "--user-data-dir=" + str(screenshot.parent / "chromium-profile")]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = subprocess.run(
        [*flags, f"--screenshot={screenshot}", "--window-size=900,1500", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    return dom.stdout, (dom.stderr + shot.stderr).splitlines(), screenshot
