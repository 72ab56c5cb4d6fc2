"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_amlpipe import __version__


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
                    "airflow_provider_amlpipe.triggers.remote_job",
                    "airflow_provider_amlpipe.triggers.azure_vm",
                ],
            }
        ],
        "extra-links": ["airflow_provider_amlpipe.links.ReusedFromLink"],
        "asset-uris": [{"schemes": ["amlpipe"], "handler": "airflow_provider_amlpipe.assets.sanitize_uri"}],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_amlpipe.hooks.datastore.LocalDatastoreHook",
                "hook-name": "AML Pipelines datastore (local folder)",
                "connection-type": "amlpipe_local",
                "ui-field-behaviour": {"hidden-fields": ["host", "schema", "port", "login", "password", "extra"]},
                "conn-fields": {
                    "path": {
                        "label": "Folder",
                        "description": "Absolute path of the datastore's root folder (shared by all workers).",
                        "schema": {"type": ["string", "null"]},
                    }
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
                    "container": {"label": "Container", "schema": {"type": ["string", "null"]}},
                    "connection_string": {
                        "label": "Connection string",
                        "description": "Used instead of Account URL and credentials when set.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "tenant_id": {"label": "Tenant ID", "schema": {"type": ["string", "null"]}},
                    "client_id": {"label": "Client ID (service principal)", "schema": {"type": ["string", "null"]}},
                    "managed_identity_client_id": {
                        "label": "Managed identity client ID",
                        "schema": {"type": ["string", "null"]},
                    },
                    "create_container": {
                        "label": "Create the container if missing",
                        "schema": {"type": ["boolean", "null"]},
                    },
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
                    "tenant_id": {"label": "Tenant ID", "schema": {"type": ["string", "null"]}},
                    "client_id": {"label": "Client ID (service principal)", "schema": {"type": ["string", "null"]}},
                    "managed_identity_client_id": {
                        "label": "Managed identity client ID",
                        "schema": {"type": ["string", "null"]},
                    },
                    "api_version": {
                        "label": "API version",
                        "description": "Default 2016-11-01.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "staging_datastore": {
                        "label": "Staging datastore",
                        "description": "Connection id of an amlpipe_azure_blob datastore whose storage account is"
                        " linked to this ADLA account; jobs read inputs and write outputs there (wasb://)."
                        " Empty: the step's datastore, if it is on Azure Blob.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "staging_prefix": {
                        "label": "Staging folder",
                        "description": "Blob folder for each job's staged inputs and outputs (deleted after the job)."
                        " Default amlpipe-staging/.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "static_token": {
                        "label": "Static bearer token (tests only)",
                        "description": "A fixed token for a local test server; never for real accounts.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "allow_insecure_loopback": {
                        "label": "Allow plain http to a loopback host (tests only)",
                        "schema": {"type": ["boolean", "null"]},
                    },
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
                    "tenant_id": {"label": "Tenant ID", "schema": {"type": ["string", "null"]}},
                    "client_id": {"label": "Client ID (service principal)", "schema": {"type": ["string", "null"]}},
                    "managed_identity_client_id": {
                        "label": "Managed identity client ID",
                        "schema": {"type": ["string", "null"]},
                    },
                    "use_default_credential": {
                        "label": "Use azure-identity's default credential chain",
                        "schema": {"type": ["boolean", "null"]},
                    },
                    "staging_datastore": {
                        "label": "Staging datastore",
                        "description": "Connection id of an amlpipe_azure_blob datastore through which inputs reach"
                        " the nodes and outputs come back (SAS URLs). Empty: the step's datastore, if on Azure Blob.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "staging_prefix": {
                        "label": "Staging folder",
                        "description": "Blob folder for each job's staged files (deleted after the job)."
                        " Default amlpipe-staging/.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "allow_insecure_loopback": {
                        "label": "Allow plain http to a loopback host (tests only)",
                        "schema": {"type": ["boolean", "null"]},
                    },
                },
            },
            {
                "hook-class-name": "airflow_provider_amlpipe.hooks.azure_vm.AzureVmHook",
                "hook-name": "AML Pipelines Azure VM compute",
                "connection-type": "amlpipe_azure_vm",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {
                        "host": "ARM endpoint",
                        "login": "Client ID (service principal)",
                        "password": "Client secret",
                    },
                    "placeholders": {
                        "host": "empty: https://management.azure.com",
                        "password": "client secret of the service principal; empty with credential 'default'",
                    },
                },
                "conn-fields": {
                    "subscription_id": {"label": "Subscription ID", "schema": {"type": ["string", "null"]}},
                    "resource_group": {
                        "label": "Resource group",
                        "description": "Default resource group of the VMs and scale sets (operators may override it).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "tenant_id": {"label": "Tenant ID", "schema": {"type": ["string", "null"]}},
                    "client_id": {
                        "label": "Client ID (service principal)",
                        "description": "With Tenant ID and the secret in Password. Or Login.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential": {
                        "label": "Credential",
                        "description": "'default': azure-identity DefaultAzureCredential (managed identity, workload"
                        " identity, Azure CLI) instead of a service principal.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "managed_identity_client_id": {
                        "label": "Managed identity client ID",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_scopes": {
                        "label": "Credential scopes",
                        "description": "Default: <ARM endpoint>/.default.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "staging_datastore": {
                        "label": "Staging datastore",
                        "description": "Connection id of an amlpipe_azure_blob datastore through which VM script"
                        " steps stage their inputs and outputs.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "staging_prefix": {
                        "label": "Staging folder",
                        "description": "Blob folder for each run's staged files. Default amlpipe-staging/.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "static_token": {
                        "label": "Static bearer token (tests only)",
                        "description": "A fixed token for a local test server; never for real subscriptions.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "allow_insecure_loopback": {
                        "label": "Allow plain http to a loopback host (tests only)",
                        "schema": {"type": ["boolean", "null"]},
                    },
                },
            },
        ],
    }
