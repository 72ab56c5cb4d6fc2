"""Staging for remote jobs without a service: the key layout, settings, wasb:// URIs, the choice of
the staging container, collecting outputs and best-effort clean-up (pure functions and local stores)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_amlpipe.compute.staging import (
    DEFAULT_STAGING_PREFIX,
    InputSource,
    StagedInput,
    StagingSettings,
    Upload,
    staging_layout,
    staging_settings,
)
from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore, wasb_uri
from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError
from airflow_provider_amlpipe.steps.remote_staging import choose_staging, collect_outputs, remove_staging

ADLA = {"kind": "ADLA", "service": "an ADLA account"}
JOB = "0b5e3c1e-8f0a-5f5e-9d57-2f3c1b1c0d11"
log = logging.getLogger("test_remote_staging")


def test_settings_default_and_normalize_the_prefix() -> None:
    assert staging_settings("adla", {}) == StagingSettings(None, DEFAULT_STAGING_PREFIX)
    assert staging_settings("adla", {"staging_datastore": "blob", "staging_prefix": "/jobs/tmp"}) == StagingSettings(
        "blob", "jobs/tmp/"
    )
    assert staging_settings("adla", {"staging_prefix": "/"}).prefix == ""
    assert staging_settings("adla", {"staging_datastore": ""}).datastore is None


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"staging_prefix": "a/../b"}, "is not a blob folder"),
        ({"staging_prefix": "a\\b"}, "is not a blob folder"),
        ({"staging_prefix": 3}, "is not a string"),
        ({"staging_datastore": ["x"]}, "is not a connection id"),
    ],
)
def test_bad_settings_name_the_field(extra: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as info:
        staging_settings("my_adla", extra)
    assert info.value.field.startswith("compute (connection 'my_adla') extra.staging_")


def test_uploaded_inputs_and_outputs_live_under_the_job_prefix() -> None:
    layout = staging_layout(
        "amlpipe-staging/",
        JOB,
        {
            "one": InputSource("/work/in/one", ("data.csv",), False),
            "many": InputSource("/work/in/many", ("a.csv", "sub/b.csv"), False),
        },
        ["out", "report"],
    )
    prefix = f"amlpipe-staging/{JOB}"
    assert layout.job_prefix == prefix
    assert layout.inputs == {
        "one": StagedInput(f"{prefix}/inputs/one", ("data.csv",)),
        "many": StagedInput(f"{prefix}/inputs/many", ("a.csv", "sub/b.csv")),
    }
    assert layout.inputs["many"].file_keys() == [
        ("a.csv", f"{prefix}/inputs/many/a.csv"),
        ("sub/b.csv", f"{prefix}/inputs/many/sub/b.csv"),
    ]
    assert layout.uploads == (
        Upload("/work/in/one/data.csv", f"{prefix}/inputs/one/data.csv"),
        Upload("/work/in/many/a.csv", f"{prefix}/inputs/many/a.csv"),
        Upload("/work/in/many/sub/b.csv", f"{prefix}/inputs/many/sub/b.csv"),
    )
    assert layout.outputs == {"out": f"{prefix}/outputs/out", "report": f"{prefix}/outputs/report"}


def test_inputs_in_the_staging_container_are_referenced_in_place() -> None:
    layout = staging_layout(
        "",
        JOB,
        {
            "ref": InputSource("objects/abc/data", ("out",), True),
            "folder": InputSource("raw/2024", ("a.csv", "b.csv"), True),
            "root_file": InputSource("", ("people.csv",), True, is_file=True),
        },
        [],
    )
    assert layout.uploads == ()
    keys = {name: staged.key for name, staged in layout.inputs.items()}
    assert keys == {"ref": "objects/abc/data", "folder": "raw/2024", "root_file": "people.csv"}
    assert layout.inputs["ref"].file_keys() == [("out", "objects/abc/data/out")]
    assert layout.outputs == {}


def test_the_adla_spec_gives_uris_for_data_and_values_for_params(tmp_path: Path) -> None:
    from airflow_provider_amlpipe.steps.adla import AdlaScriptStep

    (tmp_path / "s.usql").write_text('@@data@@ @@many@@ @@out@@ @@min_id@@ "@@name@@"', encoding="utf-8")
    step = AdlaScriptStep(
        "s.usql", str(tmp_path), params={"min_id": 4, "name": "a b"}, job_name="dag.task", priority=50
    )
    layout = staging_layout(
        "p/",
        JOB,
        {"data": InputSource("raw", ("x.csv",), True), "many": InputSource("raw2", ("a.csv", "b.csv"), True)},
        ["out"],
    )
    spec = step.remote_spec(layout, _blob("s"), JOB)
    uri = "wasb://cont@acct.blob.core.windows.net"
    # A folder holding exactly one file (an upstream ADLA output) stands for that file; otherwise the folder.
    assert spec["script"] == f'{uri}/raw/x.csv {uri}/raw2 {uri}/p/{JOB}/outputs/out/out 4 "a b"'
    assert (spec["name"], spec["priority"]) == ("dag.task", 50)


@pytest.mark.parametrize(
    ("account_url", "expected"),
    [
        ("http://127.0.0.1:10000/devstoreaccount1", "wasb://cont@devstoreaccount1.blob.core.windows.net/a/b.csv"),
        ("https://acct.blob.core.windows.net", "wasb://cont@acct.blob.core.windows.net/a/b.csv"),
        ("https://acct.blob.core.chinacloudapi.cn", "wasb://cont@acct.blob.core.chinacloudapi.cn/a/b.csv"),
        (
            "https://acct.privatelink.blob.core.windows.net?sv=2022&sig=SECRET",
            "wasb://cont@acct.blob.core.windows.net/a/b.csv",
        ),
    ],
)
def test_blob_datastores_give_wasb_uris(account_url: str, expected: str) -> None:
    store = AzureBlobDatastore.from_settings("s", container="cont", account_url=account_url)
    assert store.wasb_uri("a/b.csv") == expected
    assert store.account_name == expected.split("@")[1].split(".")[0]


def test_wasb_uri_refuses_bad_accounts_and_keys() -> None:
    with pytest.raises(ValueError, match="storage account"):
        wasb_uri("Not An Account", "c", "k")
    with pytest.raises(ValueError, match="invalid datastore key"):
        wasb_uri("acct", "c", "/abs")


def _blob(name: str, container: str = "cont") -> AzureBlobDatastore:
    return AzureBlobDatastore.from_settings(name, container=container, account_url="https://acct.blob.core.windows.net")


def test_the_staging_container_is_the_connections_else_a_blob_step_datastore(tmp_path: Path) -> None:
    local = LocalDatastore("local", tmp_path)
    blob_step, blob_staging = _blob("blob_step"), _blob("blob_staging", "staging")
    stores: dict[str, Datastore] = {"local": local, "blob_staging": blob_staging}
    chosen = choose_staging(StagingSettings("blob_staging", "x/"), "adla", "local", local, stores.__getitem__, **ADLA)
    assert (chosen.conn_id, chosen.store, chosen.prefix) == ("blob_staging", blob_staging, "x/")
    assert chosen.job_prefix(JOB) == f"x/{JOB}"
    chosen = choose_staging(StagingSettings(), "adla", "blob_step", blob_step, stores.__getitem__, **ADLA)
    assert (chosen.conn_id, chosen.store) == ("blob_step", blob_step)


def test_no_reachable_staging_container_is_a_configuration_error(tmp_path: Path) -> None:
    local = LocalDatastore("local", tmp_path)
    with pytest.raises(ConfigurationError) as missing:
        choose_staging(StagingSettings(), "adla", "local", local, lambda _: local, **ADLA)
    assert missing.value.field == "compute (connection 'adla') extra.staging_datastore"
    assert "not set" in missing.value.problem and "amlpipe_azure_blob" in missing.value.fix
    assert "on the ADLA connection" in missing.value.fix
    with pytest.raises(ConfigurationError) as not_blob:
        choose_staging(StagingSettings("local"), "adla", "local", local, lambda _: local, **ADLA)
    assert "which an ADLA account cannot read" in not_blob.value.problem


def test_outputs_are_collected_and_a_missing_one_is_named(tmp_path: Path) -> None:
    store = LocalDatastore("staging", tmp_path / "store")
    store.write_bytes(f"s/{JOB}/outputs/out/out", b"rows\n")
    folders = collect_outputs(store, {"out": f"s/{JOB}/outputs/out"}, tmp_path / "dest", kind="ADLA")
    assert (folders["out"] / "out").read_bytes() == b"rows\n"
    both = {"out": f"s/{JOB}/outputs/out", "other": f"s/{JOB}/outputs/other"}
    with pytest.raises(
        StepFailedError, match=r"output 'other': the Azure Batch job wrote nothing to .* \(hint other\)"
    ):
        collect_outputs(store, both, tmp_path / "d2", kind="Azure Batch", hint="hint {name}")
    folders = collect_outputs(store, both, tmp_path / "d3", kind="ADLA", optional={"other"})
    assert list(folders["other"].iterdir()) == []  # an optional output comes back empty


class _Unreachable(LocalDatastore):
    def list(self, prefix: str) -> Iterator[str]:
        raise OSError("the network is down")


def test_remove_staging_deletes_the_job_folder_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalDatastore("staging", tmp_path / "store")
    store.write_bytes(f"s/{JOB}/inputs/data/x.csv", b"1\n")
    store.write_bytes("s/other-job/inputs/data/x.csv", b"1\n")
    remove_staging(store, f"s/{JOB}", log)
    assert list(store.list("s")) == ["s/other-job/inputs/data/x.csv"]
    with caplog.at_level(logging.WARNING):
        remove_staging(_Unreachable("x", tmp_path / "store"), f"s/{JOB}", log)
    assert "could not delete the staging folder" in caplog.text and "network is down" in caplog.text


def test_local_placeholders_escape_percent_so_the_script_reads_the_real_file(tmp_path: Path) -> None:
    # U-SQL paths are URIs: the compiler percent-decodes them, so a '%' in a local name must arrive as %25.
    from airflow_provider_amlpipe.steps.adla import placeholder_values
    from airflow_provider_amlpipe.steps.runner import StepWorkspace
    from airflow_provider_amlpipe.usql import run_script, substitute

    data = tmp_path / "in 100%25 done"
    data.mkdir()
    (data / "rows.csv").write_text("1,a\n2,b\n")
    out = tmp_path / "out%"
    out.mkdir()
    ws = StepWorkspace(tmp_path, {"data": data}, {"res": out}, tmp_path / "m.json", tmp_path / "c.json")
    values = placeholder_values(ws, {})
    assert values["data"] == str(data / "rows.csv").replace("%", "%25")
    script = (
        'OUTPUT (EXTRACT id int, s string FROM "@@data@@" USING Extractors.Csv()) TO "@@res@@" USING Outputters.Csv();'
    )
    run_script(substitute(script, values), source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "cat")
    assert (out / "res").read_bytes() == b'1,"a"\r\n2,"b"\r\n'
