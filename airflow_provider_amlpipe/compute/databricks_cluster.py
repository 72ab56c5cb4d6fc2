"""Where a Databricks run runs: its cluster's Jobs API fields, and how it reads the staged data.

Plain Python (no Airflow, no I/O). Storage credentials reach a cluster as Databricks secret references
(``{{secrets/<scope>/<key>}}``), which the cluster resolves itself; a secret-looking Spark setting with a
literal value is refused, so a key pasted into a DAG or a connection's extra never travels in a run's
definition (which Databricks shows to everyone who can see the run).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_amlpipe.errors import ConfigurationError

SECRET_REF = re.compile(r"\{\{secrets/[^/{}\s]+/[^/{}\s]+\}\}")
#: Spark settings whose value is a credential (account keys, SAS tokens, OAuth client secrets, passwords).
_SECRET_KEY = re.compile(r"(account\.key|\.sas\.|secret|password|token)", re.IGNORECASE)


def check_secret_ref(field: str, value: object) -> str:
    """A ``<scope>/<key>`` secret name (not the secret itself)."""
    if not isinstance(value, str) or not re.fullmatch(r"[^/\s]+/[^/\s]+", value):
        raise ConfigurationError(
            field, "is not <scope>/<key>", "name the Databricks secret, e.g. 'storage/account-key'"
        )
    return value


def check_secret_conf(field: str, conf: Mapping[str, str]) -> None:
    """Refuse a credential-bearing Spark setting whose value is not a ``{{secrets/...}}`` reference."""
    for key, value in conf.items():
        if _SECRET_KEY.search(key) and not SECRET_REF.fullmatch(value.strip()):
            raise ConfigurationError(
                f"{field}[{key!r}]",
                "holds a literal credential, which would be stored in the run's definition",
                "put it in a Databricks secret scope and pass '{{secrets/<scope>/<key>}}'",
            )


def storage_key_conf(account: str, endpoint_suffix: str, secret: str) -> dict[str, str]:
    """Spark settings giving a cluster a storage account's key from secret ``<scope>/<key>`` (ABFS and WASB)."""
    ref = f"{{{{secrets/{secret}}}}}"
    return {
        f"fs.azure.account.key.{account}.dfs.{endpoint_suffix}": ref,
        f"fs.azure.account.key.{account}.blob.{endpoint_suffix}": ref,
    }


def new_cluster(
    *,
    spark_version: str,
    node_type: str | None,
    instance_pool_id: str | None,
    num_workers: int | None,
    min_workers: int | None,
    max_workers: int | None,
    spark_conf: Mapping[str, str],
    spark_env_variables: Mapping[str, str],
    init_scripts: list[Any],
    cluster_log_dbfs_path: str | None,
) -> dict[str, Any]:
    """A new cluster's Jobs API ``new_cluster``, from AML's DatabricksStep arguments."""
    cluster: dict[str, Any] = {"spark_version": spark_version}
    if node_type:
        cluster["node_type_id"] = node_type
    if instance_pool_id:
        cluster["instance_pool_id"] = instance_pool_id
    if min_workers is not None and max_workers is not None:
        cluster["autoscale"] = {"min_workers": min_workers, "max_workers": max_workers}
    else:
        cluster["num_workers"] = num_workers or 0
    if spark_conf:
        cluster["spark_conf"] = dict(spark_conf)
    if spark_env_variables:
        cluster["spark_env_vars"] = dict(spark_env_variables)
    if init_scripts:
        cluster["init_scripts"] = [_init_script(s) for s in init_scripts]
    if cluster_log_dbfs_path:
        cluster["cluster_log_conf"] = {"dbfs": {"destination": cluster_log_dbfs_path}}
    return cluster


def _init_script(script: Any) -> dict[str, Any]:
    # AML took DBFS paths; the Jobs API takes {"workspace"|"volumes"|"dbfs"|"abfss": {"destination": ...}}.
    if isinstance(script, Mapping):
        return dict(script)
    path = str(script)
    if path.startswith("dbfs:"):
        return {"dbfs": {"destination": path}}
    if path.startswith("/Volumes/"):
        return {"volumes": {"destination": path}}
    if path.startswith("abfss://"):
        return {"abfss": {"destination": path}}
    return {"workspace": {"destination": path}}
