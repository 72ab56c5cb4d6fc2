"""Airflow Assets for datasets: other DAGs can be scheduled on a new version.

Every step output is declared as an outlet ``Asset`` named after its dataset, with the URI
``amlpipe://<datastore connection>/<dataset name>``; each successful step emits an event whose
``extra`` carries the version, digest and whether the step was reused::

    from airflow_provider_amlpipe.assets import dataset_asset
    with DAG("report", schedule=[dataset_asset("amlpipe_default", "passenger_model_comparison")]):
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import Asset

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


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI check for the ``amlpipe`` scheme: a connection id and a dataset name."""
    if not uri.netloc or not uri.path.strip("/") or "/" in uri.path.strip("/"):
        raise ValueError("amlpipe URIs look like amlpipe://<datastore connection>/<dataset name>")
    return uri
