"""Airflow Assets for datasets: other DAGs can be scheduled on a new version.

Every dataset is an ``Asset`` named after it, with the URI
``amlpipe://<datastore connection>/<dataset name>``. A step declares one ``AssetAlias`` per output
as its outlet and emits an event for the dataset's Asset through it **only when it mints a new
version**: a reused step, or one whose output is identical to the latest version, is not new data,
so a DAG scheduled on the Asset does not fire. The event's ``extra`` carries the version and digest::

    from airflow_provider_amlpipe.assets import dataset_asset, triggered_dataset_input
    with DAG("report", schedule=[dataset_asset("amlpipe_default", "passenger_model_comparison")]):
        PythonScriptStepOperator(..., inputs={"comparison": triggered_dataset_input(
            "amlpipe_default", "passenger_model_comparison")})  # exactly the version that started the run

(An outlet ``Asset`` would not do: Airflow emits an event for every outlet Asset of every task
that succeeds.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import Asset, AssetAlias

from airflow_provider_amlpipe.data.refs import DatasetInput

if TYPE_CHECKING:
    from urllib.parse import SplitResult

SCHEME = "amlpipe"


def dataset_asset(datastore: str, dataset: str) -> Asset:
    """The Asset that stands for ``dataset`` in the datastore connection ``datastore``.

    Airflow stores only ASCII URIs; a connection id may hold other letters, so both parts are
    percent-encoded (which leaves the usual ``[A-Za-z0-9_.-]`` names unchanged).
    """
    uri = f"{SCHEME}://{quote(datastore, safe='')}/{quote(dataset, safe='')}"
    return Asset(name=dataset, uri=uri, group="amlpipe-dataset")


def dataset_alias(datastore: str, dataset: str) -> AssetAlias:
    """The outlet through which a step emits events for ``dataset_asset(datastore, dataset)``."""
    return AssetAlias(name=dataset_asset(datastore, dataset).uri, group="amlpipe-dataset")


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI check for the ``amlpipe`` scheme: a connection id and a dataset name."""
    if not uri.netloc or not uri.path.strip("/") or "/" in uri.path.strip("/"):
        raise ValueError("amlpipe URIs look like amlpipe://<datastore connection>/<dataset name>")
    return uri


def triggered_dataset_input(datastore: str, dataset: str) -> DatasetInput:
    """The dataset version whose new-version event started this run (a DAG scheduled on
    ``dataset_asset(datastore, dataset)``), read from ``triggering_asset_events``; ``"latest"`` in a run that no
    such event started (manual, REST). With several events queued for one run, the newest version."""
    uri = dataset_asset(datastore, dataset).uri
    # Each event is listed under its Asset and under the alias it came through: match on the event's own asset.
    version = (
        "{%- set ns = namespace(v='latest') -%}"
        "{%- for events in triggering_asset_events.values() -%}{%- for e in events -%}"
        f"{{%- if e.asset.uri == {uri!r} and (e.extra or {{}}).get('version') -%}}"
        "{%- if ns.v == 'latest' or (e.extra['version'] | int) > (ns.v | int) -%}{%- set ns.v = e.extra['version'] -%}"
        "{%- endif -%}{%- endif -%}{%- endfor -%}{%- endfor -%}{{ ns.v }}"
    )
    return DatasetInput(dataset, version=version, datastore=datastore)


def is_dataset_alias(outlet: object) -> bool:
    """Whether ``outlet`` is the alias through which a step emits a dataset's events (:func:`dataset_alias`)."""
    return (
        isinstance(outlet, AssetAlias) and outlet.group == "amlpipe-dataset" and outlet.name.startswith(f"{SCHEME}://")
    )
