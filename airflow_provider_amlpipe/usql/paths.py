"""Path mapping for local runs: remote U-SQL paths (``wasb://``, ``adl://``, ``/Samples/...``) -> local folders.

A script written for Azure Data Lake Analytics names its files by URI. To run it against a local copy,
each prefix is mapped to a local folder: ``{"wasb://container@account/": "data/blob/"}`` turns
``wasb://container@account/DemoData/Drivers.txt`` into ``data/blob/DemoData/Drivers.txt``. The longest
matching prefix wins. Prefixes and paths are compared in a canonical form, so equivalent spellings of
one store match: ``wasbs://`` is ``wasb://``, a Blob account's ``.blob.core.windows.net`` suffix is
optional (U-SQL's short form), and ``swebhdfs://``/``webhdfs://`` address the same Data Lake store as
``adl://``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote

_SCHEME_ALIASES = {"wasbs": "wasb", "swebhdfs": "adl", "webhdfs": "adl"}
_BLOB_DOMAIN = re.compile(r"^(wasb://[^/@]+@[^/.]+)\.blob\.core\.windows\.net(?=/|$)", re.IGNORECASE)


def is_remote(path: str) -> bool:
    """True for a URI with a scheme (``wasb://...``), which is no local path."""
    return "://" in path


def _canonical(path: str) -> str:
    scheme, sep, rest = path.partition("://")
    if not sep:
        return path
    scheme = scheme.lower()
    path = f"{_SCHEME_ALIASES.get(scheme, scheme)}://{rest}"
    return _BLOB_DOMAIN.sub(r"\1", path)


class PathMap:
    """Prefix -> local folder; :meth:`apply` rewrites a path, or returns None when no prefix matches."""

    def __init__(self, mapping: Mapping[str, str | Path] | None = None) -> None:
        # prefixes are compared with the URI-decoded paths of the script (see DuckDbEmitter.path)
        items = [(_canonical(unquote(k)).rstrip("/"), str(v)) for k, v in (mapping or {}).items()]
        # longest prefix first, so a mapping of a sub-folder wins over one of its parent
        self._items = sorted(items, key=lambda kv: len(kv[0]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._items)

    def apply(self, path: str) -> str | None:
        """The local path for ``path``, or None if no mapped prefix covers it."""
        canon = _canonical(path)
        for prefix, local in self._items:
            if canon == prefix or canon.startswith(prefix + "/"):
                rest = canon[len(prefix) :].lstrip("/")
                return str(Path(local) / rest) if rest else local
        return None


def parse_map_option(item: str) -> tuple[str, str]:
    """``PREFIX=DIR`` (the CLI's ``--map-path``) -> (prefix, dir); split at the first ``=``."""
    prefix, sep, local = item.partition("=")
    if not sep or not prefix or not local:
        raise ValueError(f"--map-path {item!r} must be PREFIX=DIR, e.g. wasb://container@account/=./data/")
    return prefix, local
