"""The datastore hook: turns an Airflow connection into a :class:`Datastore`.

Three connection types:

- ``amlpipe_local``: a folder (``extra.path``); the connection ``amlpipe_default``, when it is not
  defined, means the folder ``$AIRFLOW_HOME/amlpipe/datastore`` so nothing needs setting up;
- ``amlpipe_adls_gen2``: an ADLS Gen2 file system (``extra.file_system``) of the account at Host (the
  ``dfs`` URL), with an account key (Password), a service principal or the default credential chain;
- ``amlpipe_azure_blob``: an account URL (Host), a container (``extra.container``) and one of:
  ``extra.connection_string``; an account key (Password); a service principal (``extra.tenant_id``,
  ``extra.client_id`` and the secret in Password); else azure-identity's default credential chain
  (managed identity, workload identity, environment, Azure CLI). ``extra.create_container: true``
  creates the container on first use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.extras import connection_flag

DEFAULT_CONN_ID = "amlpipe_default"
LOCAL_CONN_TYPE = "amlpipe_local"
BLOB_CONN_TYPE = "amlpipe_azure_blob"
ADLS_GEN2_CONN_TYPE = "amlpipe_adls_gen2"
_HOST_NAME = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?")
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")


def _without_secrets(url: str) -> str:
    """``url`` without user info, query or fragment (where a SAS token or password could be)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def default_datastore_root() -> Path:
    """Where the zero-set-up datastore lives: ``$AIRFLOW_HOME/amlpipe/datastore``."""
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / "amlpipe" / "datastore"


#: The environment variable that can define ``amlpipe_default`` (Airflow's ``AIRFLOW_CONN_<ID>``).
DEFAULT_CONN_ENV = f"AIRFLOW_CONN_{DEFAULT_CONN_ID.upper()}"
_UNSET = object()
#: The value ``DEFAULT_CONN_ENV`` had when this process last found ``amlpipe_default`` undefined, or
#: ``_UNSET`` if it never did.
_default_absent_under: object = _UNSET


def _default_known_absent() -> bool:
    """Whether this process already found ``amlpipe_default`` undefined, with the environment as it is now.

    Most deployments never define ``amlpipe_default`` (it means the built-in folder), and a lookup
    that fails goes through the API server each time (several ms, against under one for one that
    succeeds). So the answer is kept for the life of the process -- several tasks share one under
    ``airflow dags test`` -- and looked up again whenever the environment variable that could define
    it changes. A connection created in the metadata database later is seen by processes started
    after it (each task normally runs in its own).
    """
    return _default_absent_under is not _UNSET and _default_absent_under == os.environ.get(DEFAULT_CONN_ENV)


def _remember_default_absent() -> None:
    global _default_absent_under
    _default_absent_under = os.environ.get(DEFAULT_CONN_ENV)


def forget_default_absent() -> None:
    """Look ``amlpipe_default`` up again on next use (for a long-lived process that created it)."""
    global _default_absent_under
    _default_absent_under = _UNSET


class AmlDatastoreHook(BaseHook):
    """Builds the datastore named by an Airflow connection (local folder or Azure Blob)."""

    conn_name_attr = "datastore_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = LOCAL_CONN_TYPE
    hook_name = "AML Pipelines datastore"

    def __init__(self, datastore_conn_id: str = DEFAULT_CONN_ID, *, field: str = "datastore") -> None:
        super().__init__()
        self.datastore_conn_id = datastore_conn_id
        self.field = field
        self._datastore: Datastore | None = None

    def get_conn(self) -> Datastore:
        """The datastore (built once per hook)."""
        if self._datastore is None:
            self._datastore = self._build()
        return self._datastore

    def _build(self) -> Datastore:
        conn_id = self.datastore_conn_id
        if conn_id == DEFAULT_CONN_ID and _default_known_absent():
            return LocalDatastore(conn_id, default_datastore_root())
        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException as exc:
            if conn_id == DEFAULT_CONN_ID:
                _remember_default_absent()
                return LocalDatastore(conn_id, default_datastore_root())
            raise ConfigurationError(
                self.field,
                f"no Airflow connection named {conn_id!r}",
                f"create it (airflow connections add {conn_id} --conn-type {LOCAL_CONN_TYPE} "
                f'--conn-extra \'{{"path": "/data"}}\') or correct the connection id',
            ) from exc
        if conn_id == DEFAULT_CONN_ID:
            forget_default_absent()  # it exists now: an older "absent" no longer holds
        return datastore_from_connection(
            conn_id, conn.conn_type, conn.host, conn.login, conn.password, conn.extra_dejson, field=self.field
        )


def datastore_from_connection(
    conn_id: str,
    conn_type: str | None,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: dict[str, Any],
    *,
    field: str = "datastore",
) -> Datastore:
    """Build a datastore from a connection's fields (shared by the sync hook and triggers)."""
    if conn_type == LOCAL_CONN_TYPE or conn_type == "fs":
        return LocalDatastore(conn_id, _local_folder(conn_id, extra.get("path") or host, field))
    if conn_type == BLOB_CONN_TYPE:
        try:
            return _blob_datastore(conn_id, host, login, password, extra, field)
        except ConfigurationError as exc:
            if exc.field.startswith(field):
                raise
            # Errors of the Blob settings themselves: say which connection holds them.
            where = f"{field} (connection {conn_id!r})"
            raise ConfigurationError(where, f"{exc.field}: {exc.problem}", exc.fix) from None
    if conn_type == ADLS_GEN2_CONN_TYPE:
        return _adls_gen2_datastore(conn_id, host, login, password, extra, field)
    raise ConfigurationError(
        f"{field} (connection {conn_id!r})",
        f"connection type {conn_type!r} is not a datastore",
        f"use a connection of type {LOCAL_CONN_TYPE}, {BLOB_CONN_TYPE} or {ADLS_GEN2_CONN_TYPE}",
    )


def _local_folder(conn_id: str, path: object, field: str) -> str:
    """The folder of a local datastore connection: absolute, and not a file."""
    where = f"{field} (connection {conn_id!r})"
    if not isinstance(path, str) or not path.strip():
        raise ConfigurationError(where, "a local datastore connection needs a folder", "set extra.path")
    folder = Path(path).expanduser()
    if not folder.is_absolute():
        # Relative to what? Each worker's current directory differs; data would scatter between them.
        raise ConfigurationError(
            where,
            f"the folder {path!r} is a relative path, which each worker would resolve against its own"
            " current directory",
            "set extra.path to an absolute path, such as /data/amlpipe",
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(where, f"{path!r} is a file, not a folder", "set extra.path to a folder")
    return str(folder)


def _account_url(conn_id: str, host: str | None, login: str | None, field: str) -> str:
    """The Blob account URL of a connection: its Host (an http(s) URL), or one built from Login."""
    where = f"{field} (connection {conn_id!r})"
    fix = "set Host to https://<account>.blob.core.windows.net (or Login to the account name)"
    if host:
        url = host.strip()
        if "://" not in url and _HOST_NAME.fullmatch(url) and "." in url:
            url = f"https://{url}"  # what the SDK assumes of a bare host name
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or " " in url:
            raise ConfigurationError(where, f"Host {_without_secrets(host)!r} is not an account URL", fix)
        return url
    if login:
        if not _ACCOUNT_NAME.fullmatch(login):
            raise ConfigurationError(
                where,
                f"Login {login!r} is not a storage account name (3-24 lowercase letters and digits)",
                fix,
            )
        return f"https://{login}.blob.core.windows.net"
    raise ConfigurationError(where, "no account URL", fix)


def _blob_datastore(
    conn_id: str, host: str | None, login: str | None, password: str | None, extra: dict[str, Any], field: str
) -> Datastore:
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore

    container = extra.get("container")
    create = connection_flag(extra, "create_container", f"{field} (connection {conn_id!r})")
    if not container:
        raise ConfigurationError(
            f"{field} (connection {conn_id!r})",
            "no container given",
            "set extra.container to the Blob container's name",
        )
    connection_string = extra.get("connection_string")
    if connection_string:
        return AzureBlobDatastore.from_settings(
            conn_id, container=container, connection_string=connection_string, create_container=create
        )
    account_url = _account_url(conn_id, host, login, field)
    if extra.get("client_id") and extra.get("tenant_id"):
        from azure.identity import ClientSecretCredential

        credential: Any = ClientSecretCredential(
            tenant_id=extra["tenant_id"],
            client_id=extra["client_id"],
            client_secret=str(extra.get("client_secret") or password or ""),
        )
        return AzureBlobDatastore.from_settings(
            conn_id, container=container, account_url=account_url, credential=credential, create_container=create
        )
    account_key = extra.get("account_key") or password
    if account_key:
        return AzureBlobDatastore.from_settings(
            conn_id, container=container, account_url=account_url, account_key=account_key, create_container=create
        )
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential(managed_identity_client_id=extra.get("managed_identity_client_id"))
    return AzureBlobDatastore.from_settings(
        conn_id, container=container, account_url=account_url, credential=credential, create_container=create
    )


def _adls_gen2_datastore(
    conn_id: str, host: str | None, login: str | None, password: str | None, extra: dict[str, Any], field: str
) -> Datastore:
    """An ADLS Gen2 file system: Host (the dfs account URL) or Login (the account name), extra.file_system,
    and an account key (Password), a service principal or the default credential chain."""
    from airflow_provider_amlpipe.data.adls_gen2 import AdlsGen2Datastore

    where = f"{field} (connection {conn_id!r})"
    file_system = extra.get("file_system")
    if not file_system:
        raise ConfigurationError(where, "no file system given", "set extra.file_system to the ADLS Gen2 file system")
    if host:
        account_url = host.strip()
    elif login and _ACCOUNT_NAME.fullmatch(login):
        account_url = f"https://{login}.dfs.core.windows.net"
    else:
        raise ConfigurationError(where, "no account URL", "set Host to https://<account>.dfs.core.windows.net")
    create = connection_flag(extra, "create_file_system", where)
    credential: Any = None
    account_key = extra.get("account_key") or (password if not extra.get("client_id") else None)
    if extra.get("client_id") and extra.get("tenant_id"):
        from azure.identity import ClientSecretCredential

        credential = ClientSecretCredential(
            tenant_id=extra["tenant_id"],
            client_id=extra["client_id"],
            client_secret=str(extra.get("client_secret") or password or ""),
        )
    elif not account_key:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=extra.get("managed_identity_client_id"))
    try:
        return AdlsGen2Datastore.from_settings(
            conn_id,
            file_system=file_system,
            account_url=account_url,
            account_key=account_key or None,
            credential=credential,
            create_file_system=create,
        )
    except ConfigurationError as exc:
        raise ConfigurationError(where, f"{exc.field}: {exc.problem}", exc.fix) from None


class LocalDatastoreHook(AmlDatastoreHook):
    """The ``amlpipe_local`` connection type: a datastore in a local or shared folder."""

    conn_type = LOCAL_CONN_TYPE
    hook_name = "AML Pipelines datastore (local folder)"


class AzureBlobDatastoreHook(AmlDatastoreHook):
    """The ``amlpipe_azure_blob`` connection type: a datastore in an Azure Blob container."""

    conn_type = BLOB_CONN_TYPE
    hook_name = "AML Pipelines datastore (Azure Blob)"


class AdlsGen2DatastoreHook(AmlDatastoreHook):
    """The ``amlpipe_adls_gen2`` connection type: a datastore in an ADLS Gen2 file system."""

    conn_type = ADLS_GEN2_CONN_TYPE
    hook_name = "AML Pipelines datastore (ADLS Gen2)"


class DatastoreResolver:
    """Caches one datastore per connection id for the life of a task."""

    def __init__(self) -> None:
        self._stores: dict[str, Datastore] = {}

    def __call__(self, conn_id: str, field: str = "datastore") -> Datastore:
        if conn_id not in self._stores:
            self._stores[conn_id] = AmlDatastoreHook(conn_id, field=field).get_conn()
        return self._stores[conn_id]


def dataref_path(ref: dict[str, Any], dest: Path | None = None) -> Path:
    """A local folder with the files of a DataRef (from XCom), for tasks that are not steps.

    Local datastores serve the stored folder itself (treat it as read-only); remote ones are
    downloaded into ``dest`` (default: a new temporary folder).
    """
    from airflow_provider_amlpipe.data import objects
    from airflow_provider_amlpipe.data.refs import DataRef

    data_ref = DataRef.from_dict(ref)
    store = AmlDatastoreHook(data_ref.datastore).get_conn()
    return objects.materialize(store, data_ref.digest, dest)
