"""The datastore hook: the undefined ``amlpipe_default`` is looked up once per process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks import datastore as hooks
from airflow_provider_amlpipe.hooks.datastore import DEFAULT_CONN_ENV, AmlDatastoreHook


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """Connection lookups, answered from ``AIRFLOW_CONN_<ID>`` as Airflow's first secrets backend does."""
    import os

    calls: list[str] = []

    def get_connection(conn_id: str) -> Any:
        calls.append(conn_id)
        value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
        if value is None:
            raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")
        doc = json.loads(value)
        return SimpleNamespace(
            conn_type=doc["conn_type"], host=None, login=None, password=None, extra_dejson=doc.get("extra", {})
        )

    monkeypatch.setattr(AmlDatastoreHook, "get_connection", staticmethod(get_connection))
    monkeypatch.delenv(DEFAULT_CONN_ENV, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    hooks.forget_default_absent()
    yield calls
    hooks.forget_default_absent()


def test_an_undefined_default_connection_is_looked_up_once(lookups: list[str], tmp_path: Path) -> None:
    stores = [AmlDatastoreHook().get_conn() for _ in range(3)]
    assert lookups == ["amlpipe_default"]
    for store in stores:
        assert isinstance(store, LocalDatastore)
        assert store.root == (tmp_path / "home" / "amlpipe" / "datastore").resolve()


def test_defining_it_in_the_environment_is_noticed(
    lookups: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    AmlDatastoreHook().get_conn()
    folder = tmp_path / "mine"
    monkeypatch.setenv(DEFAULT_CONN_ENV, json.dumps({"conn_type": "amlpipe_local", "extra": {"path": str(folder)}}))
    store = AmlDatastoreHook().get_conn()
    assert isinstance(store, LocalDatastore) and store.root == folder.resolve()
    assert lookups == ["amlpipe_default", "amlpipe_default"]
    AmlDatastoreHook().get_conn()  # a defined connection is looked up every time (it may change)
    assert len(lookups) == 3
    monkeypatch.delenv(DEFAULT_CONN_ENV)
    store = AmlDatastoreHook().get_conn()
    assert isinstance(store, LocalDatastore) and store.root == (tmp_path / "home" / "amlpipe" / "datastore").resolve()
    assert len(lookups) == 4


def test_forgetting_looks_it_up_again(lookups: list[str]) -> None:
    AmlDatastoreHook().get_conn()
    hooks.forget_default_absent()
    AmlDatastoreHook().get_conn()
    assert lookups == ["amlpipe_default", "amlpipe_default"]


def test_other_missing_connections_are_errors_every_time(lookups: list[str]) -> None:
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="no Airflow connection named 'nope'"):
            AmlDatastoreHook("nope").get_conn()
    assert lookups == ["nope", "nope"]
