"""The documented import path of the dataset Assets (``from airflow_provider_amlpipe.assets import
dataset_asset, triggered_dataset_input``); they live in :mod:`airflow_provider_amlpipe.shell.assets`."""

from airflow_provider_amlpipe.shell.assets import dataset_alias, dataset_asset, triggered_dataset_input

__all__ = ["dataset_alias", "dataset_asset", "triggered_dataset_input"]
