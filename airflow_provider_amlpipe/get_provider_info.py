"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_amlpipe import __version__
from airflow_provider_amlpipe.compute.azure_vm_settings import azure_vm_ui_field_behaviour


def _text(label: str, description: str | None = None, *, secret: bool = False) -> dict[str, Any]:
    """A text field of a connection form (stored in the connection's extra)."""
    field: dict[str, Any] = {"label": label}
    if description is not None:
        field["description"] = description
    field["schema"] = {"type": ["string", "null"], **({"format": "password"} if secret else {})}
    return field


def _flag(label: str) -> dict[str, Any]:
    """A yes/no field of a connection form."""
    return {"label": label, "schema": {"type": ["boolean", "null"]}}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: hooks, connection types with their UI fields, triggers, links."""
    return {
        "package-name": "airflow-provider-amlpipe",
        "name": "AML Pipelines for Airflow",
        "description": "Azure Machine Learning Pipelines' step kinds, versioned data and step reuse for Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "AML Pipelines",
                "external-doc-url": "https://learn.microsoft.com/azure/machine-learning/v1/concept-ml-pipelines",
                "tags": ["azure"],
            }
        ],
        "operators": [
            {
                "integration-name": "AML Pipelines",
                "python-modules": [
                    "airflow_provider_amlpipe.operators.python_script",
                    "airflow_provider_amlpipe.operators.commit",
                    "airflow_provider_amlpipe.operators.adla",
                    "airflow_provider_amlpipe.operators.azure_batch",
                    "airflow_provider_amlpipe.operators.azure_vm",
                    "airflow_provider_amlpipe.operators.databricks",
                    "airflow_provider_amlpipe.operators.parallel_run",
                    "airflow_provider_amlpipe.operators.hyperdrive",
                    "airflow_provider_amlpipe.operators.transfer",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "AML Pipelines", "python-modules": ["airflow_provider_amlpipe.sensors.reuse"]}
        ],
        "hooks": [
            {
                "integration-name": "AML Pipelines",
                "python-modules": [
                    "airflow_provider_amlpipe.hooks.datastore",
                    "airflow_provider_amlpipe.hooks.adla",
                    "airflow_provider_amlpipe.hooks.azure_batch",
                    "airflow_provider_amlpipe.hooks.azure_vm",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "AML Pipelines",
                "python-modules": [
                    "airflow_provider_amlpipe.triggers.step_lease",
                    "airflow_provider_amlpipe.triggers.datastore_change",
                    "airflow_provider_amlpipe.triggers.remote_job",
                    "airflow_provider_amlpipe.triggers.azure_vm",
                ],
            }
        ],
        "extra-links": [
            "airflow_provider_amlpipe.shell.links.ReusedFromLink",
            "airflow_provider_amlpipe.shell.links.RemoteJobLink",
            "airflow_provider_amlpipe.shell.links.SweepReportLink",
        ],
        "asset-uris": [{"schemes": ["amlpipe"], "handler": "airflow_provider_amlpipe.shell.assets.sanitize_uri"}],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_amlpipe.hooks.datastore.LocalDatastoreHook",
                "hook-name": "AML Pipelines datastore (local folder)",
                "connection-type": "amlpipe_local",
                "ui-field-behaviour": {"hidden-fields": ["host", "schema", "port", "login", "password", "extra"]},
                "conn-fields": {
                    "path": _text("Folder", "Absolute path of the datastore's root folder (shared by all workers).")
                },
            },
            {
                "hook-class-name": "airflow_provider_amlpipe.hooks.datastore.AzureBlobDatastoreHook",
                "hook-name": "AML Pipelines datastore (Azure Blob)",
                "connection-type": "amlpipe_azure_blob",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {
                        "host": "Account URL",
                        "login": "Account name",
                        "password": "Account key or client secret",
                    },
                    "placeholders": {
                        "host": "https://<account>.blob.core.windows.net",
                        "password": "account key, or client secret when Client ID is set; empty: managed identity",
                    },
                },
                "conn-fields": {
                    "container": _text("Container"),
                    "connection_string": _text(
                        "Connection string", "Used instead of Account URL and credentials when set.", secret=True
                    ),
                    "tenant_id": _text("Tenant ID"),
                    "client_id": _text("Client ID (service principal)"),
                    "managed_identity_client_id": _text("Managed identity client ID"),
                    "create_container": _flag("Create the container if missing"),
                },
            },
            {
                "hook-class-name": "airflow_provider_amlpipe.hooks.datastore.AdlsGen2DatastoreHook",
                "hook-name": "AML Pipelines datastore (ADLS Gen2)",
                "connection-type": "amlpipe_adls_gen2",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {
                        "host": "Account URL",
                        "login": "Account name",
                        "password": "Account key or client secret",
                    },
                    "placeholders": {
                        "host": "https://<account>.dfs.core.windows.net",
                        "password": "account key, or client secret when Client ID is set; empty: managed identity",
                    },
                },
                "conn-fields": {
                    "file_system": _text("File system"),
                    "tenant_id": _text("Tenant ID"),
                    "client_id": _text("Client ID (service principal)"),
                    "managed_identity_client_id": _text("Managed identity client ID"),
                    "create_file_system": _flag("Create the file system if missing"),
                },
            },
            {
                "hook-class-name": "airflow_provider_amlpipe.hooks.adla.AdlaHook",
                "hook-name": "AML Pipelines ADLA account",
                "connection-type": "amlpipe_adla",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {"host": "Account endpoint", "login": "Account name", "password": "Client secret"},
                    "placeholders": {
                        "host": "https://<account>.azuredatalakeanalytics.net",
                        "password": "client secret when Client ID is set; empty: managed identity / default chain",
                    },
                },
                "conn-fields": {
                    "tenant_id": _text("Tenant ID"),
                    "client_id": _text("Client ID (service principal)"),
                    "managed_identity_client_id": _text("Managed identity client ID"),
                    "api_version": _text("API version", "Default 2016-11-01."),
                    "staging_datastore": _text(
                        "Staging datastore",
                        "Connection id of an amlpipe_azure_blob datastore whose storage account is"
                        " linked to this ADLA account; jobs read inputs and write outputs there (wasb://)."
                        " Empty: the step's datastore, if it is on Azure Blob.",
                    ),
                    "staging_prefix": _text(
                        "Staging folder",
                        "Blob folder for each job's staged inputs and outputs (deleted after the job)."
                        " Default amlpipe-staging/.",
                    ),
                    "static_token": _text(
                        "Static bearer token (tests only)",
                        "A fixed token for a local test server; never for real accounts.",
                        secret=True,
                    ),
                    "allow_insecure_loopback": _flag("Allow plain http to a loopback host (tests only)"),
                },
            },
            {
                "hook-class-name": "airflow_provider_amlpipe.hooks.databricks.DatabricksHook",
                "hook-name": "AML Pipelines Databricks workspace",
                "connection-type": "amlpipe_databricks",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "Workspace URL", "password": "Personal access token or client secret"},
                    "placeholders": {
                        "host": "https://adb-<workspace id>.<n>.azuredatabricks.net",
                        "password": "personal access token, or client secret when Client ID is set",
                    },
                },
                "conn-fields": {
                    "tenant_id": _text("Tenant ID"),
                    "client_id": _text("Client ID (service principal)"),
                    "managed_identity_client_id": _text("Managed identity client ID"),
                    "use_default_credential": _flag("Use azure-identity's default credential chain"),
                    "cluster_id": _text("Default cluster ID", "The cluster a step runs on when it names none."),
                    "workspace_dir": _text(
                        "Workspace folder for uploaded code", "Each run's code goes under it. Default /Shared/amlpipe."
                    ),
                    "staging_datastore": _text(
                        "Staging datastore",
                        "Connection id of an amlpipe_azure_blob datastore through which inputs reach the cluster"
                        " and outputs come back. Empty: the step's datastore, if on Azure Blob.",
                    ),
                    "staging_prefix": _text(
                        "Staging folder", "Blob folder for each run's data. Default amlpipe-staging/."
                    ),
                    "storage_uri_scheme": _text("Storage URI scheme", "abfss (default) or wasbs."),
                    "storage_key_secret": _text(
                        "Storage key secret",
                        "<scope>/<key> of the Databricks secret holding the staging account's key (new clusters).",
                    ),
                    "allow_insecure_loopback": _flag("Allow plain http to a loopback host (tests only)"),
                },
            },
            {
                "hook-class-name": "airflow_provider_amlpipe.hooks.azure_batch.AzureBatchHook",
                "hook-name": "AML Pipelines Azure Batch account",
                "connection-type": "amlpipe_azure_batch",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {
                        "host": "Account URL",
                        "login": "Account name",
                        "password": "Account key or client secret",
                    },
                    "placeholders": {
                        "host": "https://<account>.<region>.batch.azure.com",
                        "password": "account key (shared key), or client secret when Client ID is set",
                    },
                },
                "conn-fields": {
                    "tenant_id": _text("Tenant ID"),
                    "client_id": _text("Client ID (service principal)"),
                    "managed_identity_client_id": _text("Managed identity client ID"),
                    "use_default_credential": _flag("Use azure-identity's default credential chain"),
                    "staging_datastore": _text(
                        "Staging datastore",
                        "Connection id of an amlpipe_azure_blob datastore through which inputs reach"
                        " the nodes and outputs come back (SAS URLs). Empty: the step's datastore, if on Azure Blob.",
                    ),
                    "staging_prefix": _text(
                        "Staging folder",
                        "Blob folder for each job's staged files (deleted after the job). Default amlpipe-staging/.",
                    ),
                    "allow_insecure_loopback": _flag("Allow plain http to a loopback host (tests only)"),
                },
            },
            {
                "hook-class-name": "airflow_provider_amlpipe.hooks.azure_vm.AzureVmHook",
                "hook-name": "AML Pipelines Azure VM compute",
                "connection-type": "amlpipe_azure_vm",
                "ui-field-behaviour": azure_vm_ui_field_behaviour(),
                "conn-fields": {
                    "subscription_id": _text("Subscription ID"),
                    "resource_group": _text(
                        "Resource group",
                        "Default resource group of the VMs and scale sets (operators may override it).",
                    ),
                    "tenant_id": _text("Tenant ID"),
                    "client_id": _text(
                        "Client ID (service principal)", "With Tenant ID and the secret in Password. Or Login."
                    ),
                    "credential": _text(
                        "Credential",
                        "'default': azure-identity DefaultAzureCredential (managed identity, workload"
                        " identity, Azure CLI) instead of a service principal.",
                    ),
                    "managed_identity_client_id": _text("Managed identity client ID"),
                    "credential_scopes": _text("Credential scopes", "Default: <ARM endpoint>/.default."),
                    "staging_datastore": _text(
                        "Staging datastore",
                        "Connection id of an amlpipe_azure_blob datastore through which VM script"
                        " steps stage their inputs and outputs.",
                    ),
                    "staging_prefix": _text(
                        "Staging folder", "Blob folder for each run's staged files. Default amlpipe-staging/."
                    ),
                    "static_token": _text(
                        "Static bearer token (tests only)",
                        "A fixed token for a local test server; never for real subscriptions.",
                        secret=True,
                    ),
                    "allow_insecure_loopback": _flag("Allow plain http to a loopback host (tests only)"),
                },
            },
        ],
    }
