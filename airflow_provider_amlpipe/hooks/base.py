"""What the compute hooks (ADLA, Azure Batch, Azure VM, Databricks) share: one connection, looked up once."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_amlpipe.compute.staging import StagingSettings, staging_settings


class ConnectionHook(BaseHook):
    """A hook on one Airflow connection, named by the attribute ``conn_name_attr`` says (as Airflow's own hooks do).

    A subclass's ``__init__`` stores the connection id under that name; the connection is then fetched once per hook,
    however many clients, backends and settings are read from it.
    """

    conn_name_attr: str

    def __init__(self) -> None:
        super().__init__()
        self._conn: Any = None

    @property
    def connection_id(self) -> str:
        """The connection's id (the value of the attribute ``conn_name_attr`` names)."""
        return str(getattr(self, self.conn_name_attr))

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.get_connection(self.connection_id)
        return self._conn

    def get_staging_settings(self) -> StagingSettings:
        """Where jobs of this connection stage their inputs and outputs (``extra.staging_datastore``/``_prefix``)."""
        return staging_settings(self.connection_id, self._connection().extra_dejson or {})
