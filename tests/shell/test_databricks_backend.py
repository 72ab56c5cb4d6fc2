"""The Databricks job backend through databricks-sdk against the local Databricks server, whose runs really
execute (locally) and read and write Azurite through ``abfss://`` URIs: submit, idempotent resubmission,
a new run after a cancelled one, output and errors, cancel, clean-up, checks before submission, auth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from support.databricks_server import DatabricksTestServer, running_databricks_server
from support.stores import BlobContainer

from airflow_provider_amlpipe.compute.databricks import DatabricksJobBackend, run_token
from airflow_provider_amlpipe.compute.remote import CANCELLED, FAILED, SUCCEEDED, JobStatus, JobWaiter, RemoteJob
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.databricks import databricks_backend_from_connection, databricks_settings

COPY_NOTEBOOK = """# Databricks notebook source
dbutils.widgets.text("input", "")
dbutils.widgets.text("output", "")
source, target = dbutils.widgets.get("input"), dbutils.widgets.get("output")

# COMMAND ----------

text = open(source + "/testdata.txt").read()
dbutils.fs.put(target + "/output.txt", text.upper(), True)
print("copied", len(text), "characters")
dbutils.notebook.exit("ok")
"""
FAILING_SCRIPT = """import sys
print("starting with", sys.argv[1:])
raise RuntimeError("the input has no rows")
"""
SLEEPING_NOTEBOOK = """# Databricks notebook source
import time
time.sleep(120)
"""


@pytest.fixture
def server() -> Iterator[DatabricksTestServer]:
    with running_databricks_server() as state:
        yield state


def make_backend(server: DatabricksTestServer, **extra: Any) -> DatabricksJobBackend:
    extra = {"allow_insecure_loopback": True, **extra}
    return databricks_backend_from_connection("dbx", "amlpipe_databricks", server.endpoint, server.token, extra)


def notebook_spec(notebook: Path, parameters: dict[str, str], **more: Any) -> dict[str, Any]:
    return {
        "run_name": "t",
        "timeout_seconds": None,
        "cluster": {"new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "n", "num_workers": 0}},
        "permit_cluster_restart": False,
        "libraries": [],
        "code": {notebook.name: {"path": str(notebook), "as": "notebook"}},
        "remote_paths": {},
        "task_kind": "notebook",
        "entry": {"code": notebook.name},
        "parameters": parameters,
        **more,
    }


def wait(backend: DatabricksJobBackend, job: RemoteJob, lines: list[tuple[str, str]]) -> JobStatus:
    return JobWaiter(backend, job, lambda s, line: lines.append((s, line))).wait(0.1)


@pytest.mark.azurite
def test_a_notebook_reads_and_writes_the_staging_container_through_abfss_uris(
    server: DatabricksTestServer, azurite_connection_string: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = BlobContainer(azurite_connection_string, "dbx_staging", monkeypatch, "dbx")
    server.storage_accounts["devstoreaccount1"] = azurite_connection_string
    container.client.upload_blob("in/testdata.txt", b"hello databricks\n")
    base = f"abfss://{container.name}@devstoreaccount1.dfs.core.windows.net"
    notebook = tmp_path / "copy.py"
    notebook.write_text(COPY_NOTEBOOK)
    backend = make_backend(server)
    lines: list[tuple[str, str]] = []
    spec = notebook_spec(notebook, {"input": f"{base}/in", "output": f"{base}/out"})
    job = backend.submit("job-1", spec, lambda s, line: lines.append((s, line)))
    status = wait(backend, job, lines)
    assert status.state == SUCCEEDED, status
    assert container.client.download_blob("out/output.txt").readall() == b"HELLO DATABRICKS\n"
    # As Databricks: a notebook's output is its exit value (its prints stay on the run page, linked).
    assert ("stdout", "Notebook exit value: ok") in lines
    assert job.details["url"].startswith(server.endpoint) and str(job.details["run_id"]) in job.details["url"]
    # The run's code went to the job's own workspace folder; clean-up deletes it.
    folder = job.details["folder"]
    assert folder == "/Shared/amlpipe/job-1" and server.objects[f"{folder}/copy"]["object_type"] == "NOTEBOOK"
    backend.cleanup(job)
    assert not [p for p in server.objects if p.startswith(folder)]


def test_submitting_again_under_the_same_id_reattaches_to_the_run(server: DatabricksTestServer, tmp_path: Path) -> None:
    notebook = tmp_path / "nb.py"
    notebook.write_text(SLEEPING_NOTEBOOK)
    server.run_delay = 30
    backend = make_backend(server)
    first = backend.submit("job-2", notebook_spec(notebook, {}), lambda *_: None)
    lines: list[tuple[str, str]] = []
    again = make_backend(server).submit("job-2", notebook_spec(notebook, {}), lambda s, line: lines.append((s, line)))
    assert again.details["run_id"] == first.details["run_id"]
    assert server.submissions == 1 and server.submit_requests == 2
    assert any("reattached to" in line for _s, line in lines)
    backend.cancel(first)
    assert wait(backend, first, []).state == CANCELLED
    # Databricks keeps the token's cancelled run: a retry now submits a new run under the next token.
    third = make_backend(server).submit("job-2", notebook_spec(notebook, {}), lambda *_: None)
    assert third.details["run_id"] != first.details["run_id"] and third.details["generation"] == 1
    assert server.submissions == 2
    assert server.submit_requests == 4
    assert json.loads(json.dumps(third.to_dict())) == third.to_dict()
    assert run_token("job-2", 1) == "job-2.1"
    backend.cancel(third)


def test_a_failed_script_reports_its_error_and_trace(server: DatabricksTestServer, tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text(FAILING_SCRIPT)
    spec = notebook_spec(script, {}, task_kind="python", entry={"code": "code/fails.py"})
    spec["parameters"] = ["--rows", "x"]
    spec["code"] = {"code/fails.py": {"path": str(script), "as": "file"}}
    backend = make_backend(server)
    job = backend.submit("job-3", spec, lambda *_: None)
    lines: list[tuple[str, str]] = []
    status = wait(backend, job, lines)
    assert status.state == FAILED
    assert any("the input has no rows" in e for e in status.errors)
    assert ("stdout", "starting with ['--rows', 'x']") in lines
    assert any(s == "stderr" and "RuntimeError: the input has no rows" in line for s, line in lines)
    run = server.run(job.details["run_id"])
    assert run["tasks"][0]["spark_python_task"]["python_file"] == "/Workspace/Shared/amlpipe/job-3/code/fails.py"


def test_clusters_are_checked_before_anything_is_uploaded(server: DatabricksTestServer, tmp_path: Path) -> None:
    notebook = tmp_path / "nb.py"
    notebook.write_text(SLEEPING_NOTEBOOK)
    backend = make_backend(server)
    spec = notebook_spec(notebook, {}, cluster={"existing_cluster_id": "0101-abc"})
    with pytest.raises(ConfigurationError, match="existing_cluster_id: cluster '0101-abc' cannot be read"):
        backend.check(spec)
    server.clusters["0101-abc"] = "TERMINATED"
    with pytest.raises(ConfigurationError, match="permit_cluster_restart: cluster '0101-abc' is TERMINATED"):
        backend.check(spec)
    backend.check({**spec, "permit_cluster_restart": True})
    server.clusters["0101-abc"] = "RUNNING"
    backend.check(spec)
    missing = {**spec, "remote_paths": {"python_script_path": "dbfs:/scripts/train.py"}}
    with pytest.raises(ConfigurationError, match=r"python_script_path: 'dbfs:/scripts/train\.py' does not exist"):
        backend.check(missing)
    assert server.submit_requests == 0 and not any(r.path.endswith("/import") for r in server.requests)


def test_refused_credentials_name_the_connection(tmp_path: Path) -> None:
    with running_databricks_server(token="right") as server:
        backend = databricks_backend_from_connection(
            "dbx", "amlpipe_databricks", server.endpoint, "wrong", {"allow_insecure_loopback": True}
        )
        with pytest.raises(ConfigurationError, match=r"compute \(connection 'dbx'\): workspace .* refused"):
            backend.check(notebook_spec(tmp_path / "x.py", {}, cluster={"existing_cluster_id": "c"}))


class StaticCredential:
    """An azure-identity style TokenCredential (what ClientSecretCredential gives after its own login)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("entra-token", 2_000_000_000)


def test_an_entra_credential_authenticates_with_a_token_for_azure_databricks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import azure.identity

    credential = StaticCredential()
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda **kwargs: credential)
    with running_databricks_server(token="entra-token") as server:
        server.clusters["c1"] = "RUNNING"
        backend = databricks_backend_from_connection(
            "dbx", "amlpipe_databricks", server.endpoint, None,
            {"allow_insecure_loopback": True, "use_default_credential": True},
        )  # fmt: skip
        backend.check(notebook_spec(tmp_path / "x.py", {}, cluster={"existing_cluster_id": "c1"}))
    assert credential.scopes == [("2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",)]


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        ({"host": "https://adb-1.azuredatabricks.net"}, "has neither a personal access token nor a credential"),
        ({"host": "http://adb-1.azuredatabricks.net", "password": "p"}, "is not https"),
        ({"host": "", "password": "p"}, "Host: no workspace URL"),
        ({"host": "https://h", "extra": {"tenant_id": "t"}, "password": "p"}, "needs its tenant id, client id"),
        ({"host": "https://h", "password": "p", "extra": {"workspace_dir": "rel/dir"}}, "not an absolute workspace"),
        ({"host": "https://h", "password": "p", "conn_type": "generic"}, "is not a Databricks workspace"),
    ],
)
def test_bad_connections_are_refused(conn: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        conn_type = conn.get("conn_type", "amlpipe_databricks")
        databricks_backend_from_connection("dbx", conn_type, conn["host"], conn.get("password"), conn.get("extra", {}))


def test_storage_settings_refuse_pasted_secrets() -> None:
    settings = databricks_settings("dbx", {"storage_key_secret": "scope/key", "storage_uri_scheme": "wasbs"})
    assert settings.storage_key_secret == "scope/key" and settings.uri_scheme == "wasbs"
    with pytest.raises(ConfigurationError, match="literal credential"):
        databricks_settings("dbx", {"storage_spark_conf": {"fs.azure.account.key.acct.dfs.core.windows.net": "abc="}})
    with pytest.raises(ConfigurationError, match="is not <scope>/<key>"):
        databricks_settings("dbx", {"storage_key_secret": "just-a-key"})
    with pytest.raises(ConfigurationError, match="storage_uri_scheme"):
        databricks_settings("dbx", {"storage_uri_scheme": "s3"})
    conf = {"fs.azure.account.oauth2.client.secret.a.dfs.core.windows.net": "{{secrets/sp/secret}}"}
    assert databricks_settings("dbx", {"storage_spark_conf": conf}).storage_spark_conf == conf
