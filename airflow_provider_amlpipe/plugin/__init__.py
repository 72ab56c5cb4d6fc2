"""The provider's Airflow plugin: its pages and APIs on the api-server, under ``/amlpipe``.

- AML's published-pipeline REST API (:mod:`airflow_provider_amlpipe.plugin.aml_rest`);
- sweep report pages (:mod:`airflow_provider_amlpipe.plugin.sweep_pages`), reached from the "Sweep report" link.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_amlpipe.shell.links import SWEEP_REPORT_PREFIX


class _AppsOnFirstUse:
    """``fastapi_apps`` built when first read: every Airflow process loads plugins, only the api-server
    mounts their apps, and building them imports the api-server's own modules."""

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, instance: object, owner: type) -> list[dict[str, Any]]:
        if self._apps is None:
            from fastapi import FastAPI

            from airflow_provider_amlpipe.plugin import aml_rest, sweep_pages

            app = FastAPI(title="airflow-provider-amlpipe", description="AML pipelines REST API, sweep reports")
            app.include_router(aml_rest.create_router())
            app.include_router(sweep_pages.router)
            self._apps = [{"app": app, "url_prefix": SWEEP_REPORT_PREFIX, "name": "amlpipe"}]
        return self._apps


class AmlPipePlugin(AirflowPlugin):
    """Mounts the provider's app under ``/amlpipe`` of the api-server."""

    name = "amlpipe"
    fastapi_apps = _AppsOnFirstUse()
