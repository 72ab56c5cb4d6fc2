"""Datastores for DAG tests: a fresh Azurite container with its ``amlpipe_azure_blob`` connection,
and a local datastore with its ``amlpipe_local`` connection (both as ``AIRFLOW_CONN_*``)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from support.azurite_server import ACCOUNT_KEY, ACCOUNT_NAME


class BlobContainer:
    """A new Azurite container and the connection ``conn_id`` naming it (``env`` for subprocesses)."""

    def __init__(self, connection_string: str, conn_id: str, monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
        endpoint = next(p.split("=", 1)[1] for p in connection_string.split(";") if p.startswith("BlobEndpoint="))
        self.name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client: ContainerClient = BlobServiceClient.from_connection_string(connection_string).create_container(
            self.name
        )
        self.conn_id = conn_id
        connection = {
            "conn_type": "amlpipe_azure_blob",
            "host": endpoint,
            "login": ACCOUNT_NAME,
            "password": ACCOUNT_KEY,
            "extra": {"container": self.name},
        }
        self.env = {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)}
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)

    def keys(self, prefix: str = "") -> list[str]:
        return [b.name for b in self.client.list_blobs(name_starts_with=prefix or None)]

    def read(self, key: str) -> bytes:
        return self.client.download_blob(key).readall()

    def uri(self, key: str) -> str:
        """The ``wasb://`` URI of ``key`` (as an ADLA job names its linked storage)."""
        return f"wasb://{self.name}@{ACCOUNT_NAME}.blob.core.windows.net/{key}"


def new_blob_datastore(connection_string: str, prefix: str, name: str = "blob") -> AzureBlobDatastore:
    """A Blob datastore ``name`` on a new Azurite container (``<prefix>-<random>``); the test deletes it."""
    return AzureBlobDatastore.from_settings(
        name, container=f"{prefix}-{uuid.uuid4().hex[:12]}", connection_string=connection_string, create_container=True
    )


def local_store(dag_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, LocalDatastore]:
    """The connection id and datastore of a local folder for the DAG ``dag_id``."""
    root = tmp_path / "store"
    conn_id = f"store_{dag_id}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(root)}})
    )
    return conn_id, LocalDatastore(conn_id, root)


def leases_released(store: LocalDatastore) -> bool:
    """Whether the step's leases in ``store`` exist and are all released (nothing left holding the step)."""
    docs = [json.loads(store.read_bytes(k)) for k in store.list("reuse/leases")]
    return bool(docs) and all(d["released"] for d in docs)
