"""The provider is registered with Airflow: metadata, hooks, connection UI fields, triggers, links."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures("airflow_db")


def providers(*args: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", *args, "-o", "json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    rows: list[dict[str, object]] = json.loads(result.stdout[result.stdout.index("[") :])
    return rows


def test_cli_lists_the_provider_its_hooks_links_and_triggers() -> None:
    from airflow_provider_amlpipe import __version__

    assert providers("get", "airflow-provider-amlpipe") == [
        {"Provider": "airflow-provider-amlpipe", "Version": __version__}
    ]
    hooks = {row["connection_type"]: row for row in providers("hooks")}
    assert hooks["amlpipe_local"]["class"] == "airflow_provider_amlpipe.hooks.datastore.LocalDatastoreHook"
    assert hooks["amlpipe_azure_blob"]["class"] == "airflow_provider_amlpipe.hooks.datastore.AzureBlobDatastoreHook"
    assert hooks["amlpipe_adla"]["class"] == "airflow_provider_amlpipe.hooks.adla.AdlaHook"
    assert hooks["amlpipe_azure_vm"]["class"] == "airflow_provider_amlpipe.hooks.azure_vm.AzureVmHook"
    assert hooks["amlpipe_azure_batch"]["class"] == "airflow_provider_amlpipe.hooks.azure_batch.AzureBatchHook"
    links = {row["extra_link_class_name"] for row in providers("links")}
    assert "airflow_provider_amlpipe.shell.links.ReusedFromLink" in links
    assert "airflow_provider_amlpipe.shell.links.SweepReportLink" in links
    triggers = {row["class"] for row in providers("triggers")}
    assert "airflow_provider_amlpipe.triggers.step_lease" in triggers
    assert "airflow_provider_amlpipe.triggers.remote_job" in triggers
    assert "airflow_provider_amlpipe.triggers.azure_vm" in triggers


def test_connection_types_carry_their_ui_fields() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert "extra__amlpipe_local__path" in widgets
    for field in ("container", "connection_string", "tenant_id", "client_id", "managed_identity_client_id"):
        assert f"extra__amlpipe_azure_blob__{field}" in widgets
    assert widgets["extra__amlpipe_azure_blob__connection_string"].is_sensitive
    assert widgets["extra__amlpipe_adla__static_token"].is_sensitive
    for field in ("subscription_id", "resource_group", "tenant_id", "client_id", "credential", "staging_datastore"):
        assert f"extra__amlpipe_azure_vm__{field}" in widgets
    assert widgets["extra__amlpipe_azure_vm__static_token"].is_sensitive
    assert manager.field_behaviours["amlpipe_azure_vm"]["relabeling"]["password"] == "Client secret"
    # The hook's (deprecated) method says what the provider info Airflow reads says.
    from airflow_provider_amlpipe.get_provider_info import get_provider_info
    from airflow_provider_amlpipe.hooks.azure_vm import AzureVmHook

    (vm_type,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "amlpipe_azure_vm"]
    assert vm_type["ui-field-behaviour"] == AzureVmHook.get_ui_field_behaviour()
    assert manager.field_behaviours["amlpipe_azure_vm"]["placeholders"] == vm_type["ui-field-behaviour"]["placeholders"]
    for field in ("tenant_id", "client_id", "use_default_credential", "staging_datastore", "staging_prefix"):
        assert f"extra__amlpipe_azure_batch__{field}" in widgets
    assert manager.field_behaviours["amlpipe_azure_batch"]["relabeling"]["host"] == "Account URL"
    behaviour = manager.field_behaviours["amlpipe_azure_blob"]
    assert behaviour["relabeling"]["host"] == "Account URL"
    assert "password" in behaviour["relabeling"]


def test_trigger_serialization_round_trips() -> None:
    from airflow_provider_amlpipe.triggers.step_lease import StepLeaseTrigger

    trigger = StepLeaseTrigger("store", "ab" * 32, 3, poll_interval=0.5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_amlpipe.triggers.step_lease.StepLeaseTrigger"
    rebuilt = StepLeaseTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
