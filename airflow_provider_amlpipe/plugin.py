"""The provider's Airflow plugin: what it serves on the api-server (AML's published-pipeline REST API)."""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin


class _AppsOnFirstUse:
    """``fastapi_apps`` built when first read: every Airflow process loads plugins, only the api-server
    mounts their apps, and building this one imports the api-server's own modules."""

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, instance: object, owner: type) -> list[dict[str, Any]]:
        if self._apps is None:
            from airflow_provider_amlpipe.aml_rest import create_app

            self._apps = [{"app": create_app(), "url_prefix": "/amlpipe", "name": "AML pipelines REST"}]
        return self._apps


class AmlPipePlugin(AirflowPlugin):
    """Mounts :mod:`airflow_provider_amlpipe.aml_rest` under ``/amlpipe`` of the api-server."""

    name = "amlpipe"
    fastapi_apps = _AppsOnFirstUse()
