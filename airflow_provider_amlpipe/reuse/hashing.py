"""Former home of :mod:`airflow_provider_amlpipe.hashing`, which moved below ``data`` (``data`` and ``reuse`` both
use it; ``data`` must not import ``reuse``). The names are re-exported for code written before the move, until the
branches in flight are merged; import :mod:`airflow_provider_amlpipe.hashing` instead."""

from __future__ import annotations

from airflow_provider_amlpipe.hashing import (
    FileEntry,
    Hasher,
    StatCache,
    code_digest,
    list_tree,
    sha256_file,
    sha256_json,
    tree_digest,
)

__all__ = ["FileEntry", "Hasher", "StatCache", "code_digest", "list_tree", "sha256_file", "sha256_json", "tree_digest"]
