"""What a Databricks cluster's ABFS/WASB driver does for the local test server: task parameters holding
``abfss://`` / ``wasbs://`` URIs of an Azurite account are read from and written to that account.

The local Spark has no hadoop-azure connector, so for each run the server **mirrors** the blobs under every
such URI into the run's folder, hands the task the local path instead of the URI, and after the run uploads
what the task wrote under those paths back to the container (new and changed files; Spark's local ``.crc``
side files are skipped, as ABFS writes none). An account the server does not know is left alone, so the
task fails on it as a cluster without credentials for that storage would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

URI = re.compile(r"(?:abfss?|wasbs?)://([a-z0-9-]+)@([a-z0-9]+)\.(?:dfs|blob)\.[A-Za-z0-9.-]+/([^\s,;]*)")


class StorageMirror:
    """One run's view of the storage accounts in ``accounts`` (account name → Azurite connection string)."""

    def __init__(self, accounts: Mapping[str, str], root: Path) -> None:
        self.accounts = accounts
        self.root = root
        #: local folder or file → (account, container, key), and what each downloaded file looked like.
        self.mapped: dict[Path, tuple[str, str, str]] = {}
        self.downloaded: dict[Path, tuple[int, int]] = {}

    def localize(self, value: Any) -> Any:
        """``value`` (a task's parameters: a dict or list of strings) with known URIs replaced by local paths."""
        if isinstance(value, dict):
            return {k: self.localize(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.localize(v) for v in value]
        if isinstance(value, str):
            return URI.sub(self._local, value)
        return value

    def _local(self, match: re.Match[str]) -> str:
        container, account, key = match.group(1), match.group(2), match.group(3).strip("/")
        if account not in self.accounts:
            return match.group(0)
        local = self.root / account / container / key
        if local not in self.mapped:
            self.mapped[local] = (account, container, key)
            self._download(account, container, key, local)
        return str(local)

    def _container(self, account: str, container: str) -> Any:
        return BlobServiceClient.from_connection_string(self.accounts[account]).get_container_client(container)

    def _download(self, account: str, container: str, key: str, local: Path) -> None:
        client = self._container(account, container)
        blob = client.get_blob_client(key)
        if key and blob.exists():
            self._fetch(blob, local)
            return
        for item in client.list_blobs(name_starts_with=f"{key}/" if key else None):
            self._fetch(client.get_blob_client(item.name), local / item.name[len(key) :].lstrip("/"))

    def _fetch(self, blob: Any, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(blob.download_blob().readall())
        stat = local.stat()
        self.downloaded[local] = (stat.st_size, stat.st_mtime_ns)

    def write_back(self) -> int:
        """Upload the files the run created or changed under the mapped paths; how many."""
        uploaded = 0
        for local, (account, container, key) in self.mapped.items():
            files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
            client = self._container(account, container)
            for path in files:
                stat = path.stat()
                if path.name.endswith(".crc") or self.downloaded.get(path) == (stat.st_size, stat.st_mtime_ns):
                    continue
                rel = "" if path == local else path.relative_to(local).as_posix()
                name = f"{key}/{rel}".strip("/") if rel else key
                with path.open("rb") as data:
                    client.upload_blob(name, data, overwrite=True)
                uploaded += 1
        return uploaded
