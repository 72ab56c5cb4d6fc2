"""OpenLineage for steps: which data a step read and which versions it wrote.

Airflow's OpenLineage provider asks each operator for ``get_openlineage_facets_on_complete``; a step answers
with its inputs and outputs as OpenLineage datasets, named as the provider's Assets are
(``amlpipe://<datastore connection>`` / ``<dataset name>``), so Marquez-style tools draw the pipeline's data
flow across steps and DAGs:

- a dataset version read or written: namespace ``amlpipe://<datastore>``, name the dataset's name, with a
  ``version`` facet (the version number) and a ``datasource`` facet (the datastore and where the version's
  files are);
- an external ``DataPath``: namespace ``amlpipe://<datastore>``, name its path, ``version`` facet the first
  16 hex digits of its content digest.

The step keeps plain dicts while it runs (:func:`input_datasets`, :func:`output_datasets`); the OpenLineage
classes are imported only when the provider asks, so the provider stays optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_amlpipe.shell.assets import SCHEME
from airflow_provider_amlpipe.steps.inputs import ResolvedInput

#: Where an operator keeps its lineage while it runs, for ``get_openlineage_facets_on_complete``.
LINEAGE_ATTRIBUTE = "amlpipe_lineage"


def namespace(datastore: str) -> str:
    return f"{SCHEME}://{datastore}"


def input_datasets(inputs: Mapping[str, ResolvedInput]) -> list[dict[str, str]]:
    """Each input as a plain dataset description."""
    datasets = []
    for item in inputs.values():
        if item.ref is not None:
            datasets.append(
                {
                    "namespace": namespace(item.ref.datastore),
                    "name": item.ref.name,
                    "version": str(item.ref.version),
                    "uri": item.store.url(item.ref.path),
                }
            )
        else:
            datasets.append(
                {
                    "namespace": namespace(item.store.name),
                    "name": item.key,
                    "version": item.digest[:16],
                    "uri": item.store.url(item.key),
                }
            )
    return datasets


def output_datasets(outputs: Mapping[str, Mapping[str, Any]], url: Any) -> list[dict[str, str]]:
    """Each output version (``DataRef`` dicts) as a plain dataset description; ``url(path)`` locates it."""
    return [
        {
            "namespace": namespace(str(ref["datastore"])),
            "name": str(ref["name"]),
            "version": str(ref["version"]),
            "uri": url(str(ref["path"])),
        }
        for ref in outputs.values()
    ]


def operator_lineage(lineage: Mapping[str, list[dict[str, str]]]) -> Any:
    """The OpenLineage provider's ``OperatorLineage`` for what a step read and wrote."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import dataset_version_dataset, datasource_dataset

    def dataset(item: dict[str, str]) -> Dataset:
        facets = {
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=item["version"]),
            "dataSource": datasource_dataset.DatasourceDatasetFacet(name=item["namespace"], uri=item["uri"]),
        }
        return Dataset(namespace=item["namespace"], name=item["name"], facets=facets)

    return OperatorLineage(
        inputs=[dataset(i) for i in lineage.get("inputs", [])],
        outputs=[dataset(o) for o in lineage.get("outputs", [])],
    )
