"""OpenLineage: each step reports the data it read (external paths, dataset versions) and the versions it
wrote, through Airflow's OpenLineage provider (its listener, with the file transport)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.dagtools import write_dag
from support.stores import local_store

pytestmark = pytest.mark.usefixtures("airflow_db")

PRODUCE = """\
import sys
from pathlib import Path
Path(sys.argv[2], "rows.csv").write_text(Path(sys.argv[1]).read_text().upper())
"""


def test_steps_report_inputs_and_output_versions_to_openlineage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    events_file = tmp_path / "openlineage.jsonl"
    dag_id = "t_lineage"
    datastore, store = local_store(dag_id, tmp_path, monkeypatch)
    store.write_bytes("raw/input.csv", b"a,b\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "produce.py").write_text(PRODUCE)
    write_dag(
        dag_id,
        f"""
        from airflow.sdk import DAG
        from airflow_provider_amlpipe import DataPath, Output, PythonScriptStepOperator
        with DAG(dag_id={dag_id!r}, schedule=None):
            first = PythonScriptStepOperator(
                task_id="first", source_directory={str(src)!r}, script_name="produce.py",
                arguments=["{{inputs.raw}}", "{{outputs.rows}}"], datastore={datastore!r},
                inputs={{"raw": DataPath(datastore={datastore!r}, path="raw/input.csv")}}, outputs=[Output("rows")],
            )
            PythonScriptStepOperator(
                task_id="second", source_directory={str(src)!r}, script_name="produce.py",
                arguments=["{{inputs.rows}}/rows.csv", "{{outputs.again}}"], datastore={datastore!r},
                inputs={{"rows": first.output}}, outputs=[Output("again")],
            )
        """,
    )
    # As a deployment runs it: the provider reads its settings when its plugin loads, at process start.
    transport = {"type": "file", "log_file_path": str(events_file), "append": True}
    env = {**os.environ, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport)}
    env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "amlpipe-tests"
    command = [sys.executable, "-m", "airflow", "dags", "test", dag_id, "2026-03-01T00:00:00+00:00"]
    # Not from the checkout: its *.egg-info would list this provider's plugin twice, and Airflow's plugin loader
    # stops at a duplicate, before the OpenLineage plugin.
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    complete = {
        e["job"]["name"].split(".")[-1]: e for e in events if e["eventType"] == "COMPLETE" and "." in e["job"]["name"]
    }
    first, second = complete["first"], complete["second"]
    namespace = f"amlpipe://{datastore}"
    assert [(d["namespace"], d["name"]) for d in first["inputs"]] == [(namespace, "raw/input.csv")]
    assert [(d["namespace"], d["name"]) for d in first["outputs"]] == [(namespace, f"{dag_id}.first.rows")]
    assert first["outputs"][0]["facets"]["version"]["datasetVersion"] == "1"
    # The second step read exactly the version the first one wrote: the data flow is connected.
    assert [(d["namespace"], d["name"]) for d in second["inputs"]] == [(namespace, f"{dag_id}.first.rows")]
    assert second["inputs"][0]["facets"]["version"]["datasetVersion"] == "1"
    assert second["outputs"][0]["facets"]["dataSource"]["uri"].startswith(str(store.root))
