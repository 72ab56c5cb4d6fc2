"""The Databricks hook: an ``amlpipe_databricks`` connection made into a Databricks job backend.

Connection fields:

- Host: the workspace URL, ``https://adb-<id>.<n>.azuredatabricks.net``;
- a personal access token in Password; or a Microsoft Entra credential (azure-identity):
  ``extra.tenant_id`` + ``extra.client_id`` with the client secret in Password (a service principal),
  ``extra.managed_identity_client_id`` (a user-assigned managed identity) or
  ``extra.use_default_credential: true`` (azure-identity's default chain). A connection with neither is
  refused before anything runs;
- ``extra.cluster_id``: the cluster a step runs on when it names no cluster of its own;
- ``extra.workspace_dir``: the workspace folder each run's uploaded code goes to (default ``/Shared/amlpipe``;
  each run's own sub-folder is deleted after it);
- data: ``extra.staging_datastore`` / ``extra.staging_prefix`` (the ``amlpipe_azure_blob`` datastore through
  which inputs reach the cluster and outputs come back, as for Azure Batch); ``extra.storage_uri_scheme``
  (``abfss``, the default, or ``wasbs``); how the cluster reads that storage, never as a pasted secret:
  ``extra.storage_key_secret`` (``<scope>/<key>``: the Databricks secret holding the storage account key,
  set on new clusters as ``fs.azure.account.key.<account>...``) and/or ``extra.storage_spark_conf`` (more
  Spark settings for new clusters, e.g. a service principal's OAuth settings, secrets as
  ``{{secrets/<scope>/<key>}}``). An existing cluster must already be configured to read the storage;
- **test only**: ``extra.allow_insecure_loopback: true`` lets the client talk plain http to a loopback host.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_amlpipe.compute.databricks_cluster import check_secret_conf, check_secret_ref
from airflow_provider_amlpipe.compute.remote import RemoteCompute
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.extras import check_conn_type, connection_flag, entra_credential, https_url
from airflow_provider_amlpipe.hooks.base import ConnectionHook

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.databricks import DatabricksJobBackend

DATABRICKS_CONN_TYPE = "amlpipe_databricks"
DEFAULT_DATABRICKS_CONN_ID = "databricks_default"
DEFAULT_WORKSPACE_DIR = "/Shared/amlpipe"
URI_SCHEMES = ("abfss", "wasbs")


@dataclass(frozen=True)
class DatabricksSettings:
    """What a connection says about where a step runs and how its cluster reaches the data."""

    cluster_id: str | None = None
    uri_scheme: str = "abfss"
    storage_key_secret: str | None = None
    storage_spark_conf: dict[str, str] = field(default_factory=dict)


def _field(conn_id: str, name: str = "") -> str:
    return f"compute (connection {conn_id!r})" + (f" {name}" if name else "")


def databricks_settings(conn_id: str, extra: dict[str, Any]) -> DatabricksSettings:
    """Read and check a connection's cluster and storage settings (no secret is read)."""
    scheme = str(extra.get("storage_uri_scheme") or "abfss").lower()
    if scheme not in URI_SCHEMES:
        raise ConfigurationError(
            _field(conn_id, "extra.storage_uri_scheme"), f"{scheme!r} is not supported", "use abfss or wasbs"
        )
    secret = extra.get("storage_key_secret") or None
    if secret is not None:
        secret = check_secret_ref(_field(conn_id, "extra.storage_key_secret"), secret)
    conf = extra.get("storage_spark_conf") or {}
    if not isinstance(conf, dict):
        raise ConfigurationError(
            _field(conn_id, "extra.storage_spark_conf"), "is not an object", 'set it to {"spark.key": "value"}'
        )
    conf = {str(k): str(v) for k, v in conf.items()}
    check_secret_conf(_field(conn_id, "extra.storage_spark_conf"), conf)
    cluster = extra.get("cluster_id") or None
    return DatabricksSettings(None if cluster is None else str(cluster), scheme, secret, conf)


def databricks_backend_from_connection(
    conn_id: str,
    conn_type: str | None,
    host: str | None,
    password: str | None,
    extra: dict[str, Any],
) -> DatabricksJobBackend:
    """A backend from a connection's fields (shared by the hook and the triggerer)."""
    # Imported here: DAG files that only name the operator should not pay for databricks-sdk at parse time.
    from databricks.sdk import WorkspaceClient

    from airflow_provider_amlpipe.compute.databricks import DatabricksJobBackend
    from airflow_provider_amlpipe.compute.databricks_auth import azure_identity_strategy

    insecure = connection_flag(extra, "allow_insecure_loopback", _field(conn_id))
    check_conn_type(_field(conn_id), conn_type, DATABRICKS_CONN_TYPE, "a Databricks workspace")
    url = https_url(
        _field(conn_id),
        host,
        insecure,
        missing=("no workspace URL", "set Host to https://adb-<id>.<n>.azuredatabricks.net"),
        https_fix="use the workspace's https:// URL (plain http only to a local test server)",
    )
    workspace_dir = str(extra.get("workspace_dir") or DEFAULT_WORKSPACE_DIR)
    if not workspace_dir.startswith("/") or ".." in workspace_dir.split("/"):
        raise ConfigurationError(
            _field(conn_id, "extra.workspace_dir"), f"{workspace_dir!r} is not an absolute workspace folder",
            f"use a folder such as {DEFAULT_WORKSPACE_DIR!r}",
        )  # fmt: skip
    options: dict[str, Any] = {"host": url, "product": "airflow-provider-amlpipe"}
    credential = entra_credential(extra, password, _field(conn_id))
    if credential is not None:
        options["credentials_strategy"] = azure_identity_strategy(credential)
    elif password:
        options.update(token=password, auth_type="pat")
    else:
        raise ConfigurationError(
            _field(conn_id),
            "has neither a personal access token nor a credential",
            "put a personal access token in Password, or set extra.tenant_id + extra.client_id with the secret in"
            " Password, extra.managed_identity_client_id, or extra.use_default_credential: true",
        )
    client = WorkspaceClient(**options)
    return DatabricksJobBackend(client, url, workspace_dir, conn_id=conn_id)


class DatabricksHook(ConnectionHook):
    """A Databricks workspace, from an ``amlpipe_databricks`` connection."""

    conn_name_attr = "databricks_conn_id"
    default_conn_name = DEFAULT_DATABRICKS_CONN_ID
    conn_type = DATABRICKS_CONN_TYPE
    hook_name = "AML Pipelines Databricks workspace"

    def __init__(self, databricks_conn_id: str = DEFAULT_DATABRICKS_CONN_ID) -> None:
        super().__init__()
        self.databricks_conn_id = databricks_conn_id

    def get_conn(self) -> DatabricksJobBackend:
        return self.get_backend()

    def get_backend(self) -> DatabricksJobBackend:
        """A backend on this workspace."""
        conn = self._connection()
        return databricks_backend_from_connection(
            self.databricks_conn_id, conn.conn_type, conn.host, conn.password, conn.extra_dejson
        )

    def get_settings(self) -> DatabricksSettings:
        """The connection's default cluster and storage settings."""
        return databricks_settings(self.databricks_conn_id, self._connection().extra_dejson)

    def get_remote_compute(self) -> RemoteCompute:
        """What the remote step base needs: the backend, staging, and how the triggerer rebuilds it."""
        settings = self.get_staging_settings()
        return RemoteCompute(
            self.get_backend(), settings, f"{__name__}:adatabricks_backend", "a Databricks cluster",
            stages_local_inputs=False,
        )  # fmt: skip


async def adatabricks_backend(conn_id: str) -> DatabricksJobBackend:
    """The backend of a connection, for :class:`~airflow_provider_amlpipe.triggers.remote_job.RemoteJobTrigger`."""
    conn = await BaseHook.aget_connection(conn_id)
    return databricks_backend_from_connection(conn_id, conn.conn_type, conn.host, conn.password, conn.extra_dejson)


def local_dbfs_root() -> Path:
    """The folder standing for DBFS on this worker (``compute="local"``): ``[amlpipe] local_dbfs_root``, else
    ``$AIRFLOW_HOME/amlpipe/dbfs``."""
    from airflow.sdk import conf

    configured = conf.get("amlpipe", "local_dbfs_root", fallback=None)
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "amlpipe" / "dbfs"


def upload_to_databricks(compute: str, local_file: str | os.PathLike[str], path: str) -> str:
    """Put a local file at a workspace path (``dbfs:/``, ``/Volumes/``, ``/Workspace/``) before a step names it
    (``python_script_path``, ``jar_libraries``), as AML users uploaded scripts to DBFS; with ``compute="local"``,
    where local steps find ``dbfs:/`` paths (the local DBFS root). Returns ``path``."""
    source = Path(local_file)
    if not source.is_file():
        raise ConfigurationError("local_file", f"{str(source)!r} is not a file", "pass the file to upload")
    if compute != "local":
        DatabricksHook(compute).get_backend().upload(source, path)
        return path
    if not path.startswith("dbfs:/"):
        raise ConfigurationError(
            "path", f"{path!r}: locally only dbfs:/ paths have a place", "use a dbfs:/ path with compute='local'"
        )
    root = local_dbfs_root()
    target = (root / path[len("dbfs:/") :]).resolve()
    if root.resolve() not in target.parents:
        raise ConfigurationError("path", f"{path!r} leaves DBFS", "use a path inside dbfs:/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return path
