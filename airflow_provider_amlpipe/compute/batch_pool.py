"""What an Azure Batch pool id may be, checked where a pool is named (Batch steps, remote trials, ParallelRun nodes).

Light on purpose (no azure-batch import): configuration checks run at DAG parse time.
"""

from __future__ import annotations

from airflow_provider_amlpipe.errors import ConfigurationError

#: The name of the Azure Batch compute kind in messages.
KIND = "Azure Batch"
POOL_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
POOL_ID_RULE = "1-64 letters, digits, hyphens and underscores"


def check_pool_id(field: str, pool_id: object, *, why: str = "", fix: str = f"use {POOL_ID_RULE}") -> str:
    """``pool_id`` if it is a valid Batch pool id, else a :class:`ConfigurationError` on ``field``; ``why``
    (what the pool is for) is added to the problem."""
    if not isinstance(pool_id, str) or not pool_id or len(pool_id) > 64 or set(pool_id) - POOL_ID_CHARS:
        problem = f"{pool_id!r} is not a Batch pool id" + (f" ({why})" if why else "")
        raise ConfigurationError(field, problem, fix)
    return pool_id
