"""A local server speaking the ADLS Gen2 (DFS) REST protocol, for the ``amlpipe_adls_gen2`` datastore.

Azurite does not implement the DFS API, so this serves what azure-storage-file-datalake sends: file
systems, paths created (``resource=file|directory``, ``If-None-Match: *``), appended and flushed
(``action=append|flush``, transactional MD5 checked), renamed atomically (``x-ms-rename-source``,
whole directories included, ``If-None-Match: *`` on the destination), listed (``resource=filesystem``,
JSON, recursive) and deleted; plus the Blob-endpoint calls the SDK makes for the same account (get
properties, ranged downloads, create container, list blobs -- directories as ``hdi_isfolder`` blobs --
and Copy Blob from a URL, pinned by ``x-ms-source-if-match``: a source in this account is read by
the service itself, any other fetched from its URL). It keeps a hierarchical namespace: directories
are real entries, parents are created implicitly. Authentication is not checked. ``written`` counts
the bytes appended per path, ``served`` the bytes sent to clients in downloads, ``copied`` the bytes
a Copy Blob moved within the service, per destination path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
import xml.sax.saxutils
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit

from support.loopback_http import ServiceHandler, serving

ACCOUNT = "adlsaccount"
KEY = base64.b64encode(b"local-dfs-server-key").decode()


@dataclass
class Node:
    directory: bool
    data: bytes = b""
    pending: bytearray = field(default_factory=bytearray)
    md5: str | None = None  # base64, as the header carries it
    etag: str = ""
    modified: float = 0.0
    copied: bool = False

    def touch(self) -> None:
        self.etag = f'"0x{time.time_ns():X}"'
        self.modified = time.time()


class Dfs:
    """The state: file systems of path -> node."""

    def __init__(self) -> None:
        self.systems: dict[str, dict[str, Node]] = {}
        self.written: dict[str, int] = defaultdict(int)
        self.served = 0
        self.copied: dict[str, int] = defaultdict(int)
        self.renames: list[tuple[str, str]] = []
        self.lock = threading.Lock()


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


@contextmanager
def running_dfs() -> Iterator[tuple[str, Dfs]]:
    """Serve a DFS endpoint; yields its account URL (``http://127.0.0.1:PORT/<account>``) and its state."""
    dfs = Dfs()

    class Handler(ServiceHandler):
        def _reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"", code: str = "") -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if code:
                self.send_header("x-ms-error-code", code)
                body = body or json.dumps({"error": {"code": code, "message": code}}).encode()
            self.send_header("x-ms-request-id", "local")
            self.send_header("x-ms-version", "2025-01-05")
            if self.command != "HEAD" or "Content-Length" not in (headers or {}):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _target(self) -> tuple[str, str, dict[str, list[str]]]:
            url = urlsplit(self.path)
            parts = unquote(url.path).lstrip("/").split("/", 2)
            system = parts[1] if len(parts) > 1 else ""
            return system, parts[2] if len(parts) > 2 else "", parse_qs(url.query)

        @staticmethod
        def _props(node: Node) -> dict[str, str]:
            headers = {
                "ETag": node.etag,
                "Last-Modified": formatdate(node.modified, usegmt=True),
                "x-ms-resource-type": "directory" if node.directory else "file",
                "x-ms-blob-type": "BlockBlob",
                "Content-Type": "application/octet-stream",
            }
            if node.directory:
                headers["x-ms-meta-hdi_isfolder"] = "true"
            if node.md5:
                headers["Content-MD5"] = node.md5
            if node.copied:
                headers.update({"x-ms-copy-status": "success", "x-ms-copy-id": "local-copy"})
            return headers

        def do_PUT(self) -> None:
            system, path, query = self._target()
            body = self.read_body()
            with dfs.lock:
                if not path:
                    if system in dfs.systems:
                        return self._reply(409, code="ContainerAlreadyExists")
                    dfs.systems[system] = {}
                    return self._reply(201, {"ETag": '"0x1"', "Last-Modified": formatdate(usegmt=True)})
                paths = dfs.systems.get(system)
                if paths is None:
                    return self._reply(404, code="FilesystemNotFound")
                exists = path in paths
                if self.headers.get("If-None-Match") == "*" and exists:
                    return self._reply(409, code="PathAlreadyExists")
                copy_source = self.headers.get("x-ms-copy-source")
                if copy_source is not None:
                    return self._copy(system, paths, path, copy_source)
                source = self.headers.get("x-ms-rename-source")
                if source is not None:
                    return self._rename(paths, unquote(urlsplit(source).path).lstrip("/").split("/", 1)[1], path)
                kind = query.get("resource", ["file"])[0]
                if exists and paths[path].directory != (kind == "directory"):
                    return self._reply(409, code="PathConflict")
                for parent in _parents(path):
                    if parent not in paths:
                        paths[parent] = Node(True)
                        paths[parent].touch()
                node = Node(kind == "directory")
                node.touch()
                paths[path] = node
                del body
                return self._reply(201, {"ETag": node.etag, "Last-Modified": formatdate(node.modified, usegmt=True)})

        def _copy(self, system: str, paths: dict[str, Node], path: str, url: str) -> None:
            """Copy Blob from a URL: the service reads the source itself (in this account from its own
            state, elsewhere over HTTP), only if it still has the ETag ``x-ms-source-if-match`` names."""
            pinned = self.headers.get("x-ms-source-if-match")
            source = urlsplit(url)
            own = source.netloc == self.headers.get("Host") and source.path.startswith(f"/{ACCOUNT}/")
            if own:
                _, from_system, from_path = unquote(source.path).lstrip("/").split("/", 2)
                node = dfs.systems.get(from_system, {}).get(from_path)
                if node is None or node.directory:
                    return self._reply(404, code="CannotVerifyCopySource")
                if pinned and pinned.strip('"') != node.etag.strip('"'):
                    return self._reply(412, code="SourceConditionNotMet")
                data, md5 = node.data, node.md5
            else:
                request = urllib.request.Request(url, headers={"If-Match": pinned} if pinned else {})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        data = response.read()
                        md5 = response.headers.get("Content-MD5")
                except urllib.error.HTTPError as exc:
                    code = "SourceConditionNotMet" if exc.code == 412 else "CannotVerifyCopySource"
                    return self._reply(exc.code, code=code)
            for parent in _parents(path):
                if parent not in paths:
                    paths[parent] = Node(True)
                    paths[parent].touch()
            node = Node(False, data=data, md5=md5, copied=True)
            node.touch()
            paths[path] = node
            dfs.copied[f"{system}/{path}"] += len(data)  # service to service: not appended, not served
            headers = {"ETag": node.etag, "x-ms-copy-status": "success", "x-ms-copy-id": "local-copy"}
            return self._reply(202, headers)

        def _rename(self, paths: dict[str, Node], source: str, target: str) -> None:
            if source not in paths:
                return self._reply(404, code="SourcePathNotFound")
            moved = {p: n for p, n in paths.items() if p == source or p.startswith(source + "/")}
            for parent in _parents(target):
                if parent not in paths:
                    paths[parent] = Node(True)
                    paths[parent].touch()
            for old, node in moved.items():
                del paths[old]
                paths[target + old[len(source) :]] = node
            dfs.renames.append((source, target))
            return self._reply(201)

        def do_PATCH(self) -> None:
            system, path, query = self._target()
            body = self.read_body()
            action = query.get("action", [""])[0]
            with dfs.lock:
                node = dfs.systems.get(system, {}).get(path)
                if node is None or node.directory:
                    return self._reply(404, code="PathNotFound")
                position = int(query.get("position", ["0"])[0])
                if action == "append":
                    sent = self.headers.get("Content-MD5")
                    if sent and base64.b64encode(hashlib.md5(body).digest()).decode() != sent:
                        return self._reply(400, code="Md5Mismatch")
                    if position != len(node.pending):
                        return self._reply(400, code="InvalidFlushPosition")
                    node.pending += body
                    dfs.written[f"{system}/{path}"] += len(body)
                    return self._reply(202)
                if action == "flush":
                    if position != len(node.pending):
                        return self._reply(400, code="InvalidFlushPosition")
                    node.data = bytes(node.pending)
                    node.md5 = self.headers.get("x-ms-content-md5")
                    node.touch()
                    headers = {"ETag": node.etag, "Last-Modified": formatdate(node.modified, usegmt=True)}
                    return self._reply(200, headers)
                return self._reply(400, code="UnsupportedAction")

        def do_HEAD(self) -> None:
            system, path, _ = self._target()
            with dfs.lock:
                node = dfs.systems.get(system, {}).get(path)
                if node is None:
                    return self._reply(404, code="BlobNotFound")
                headers = {**self._props(node), "Content-Length": str(len(node.data))}
            return self._reply(200, headers)

        def do_GET(self) -> None:
            system, path, query = self._target()
            with dfs.lock:
                paths = dfs.systems.get(system)
                if paths is None:
                    return self._reply(404, code="FilesystemNotFound")
                if not path and query.get("resource") == ["filesystem"]:
                    return self._list(paths, query)
                if not path and query.get("comp") == ["list"]:
                    return self._list_blobs(paths, query)
                node = paths.get(path)
                if node is None or node.directory:
                    return self._reply(404, code="BlobNotFound")
                match = self.headers.get("If-Match")
                if match and match.strip('"') != node.etag.strip('"'):
                    return self._reply(412, code="ConditionNotMet")
                data, total = node.data, len(node.data)
                headers = self._props(node)
                ranged = self.headers.get("x-ms-range") or self.headers.get("Range")
                if not ranged:
                    dfs.served += len(data)
                    return self._reply(200, headers, data)
                start, _, end = ranged.split("=", 1)[1].partition("-")
                first, last = int(start), min(int(end) if end else total - 1, total - 1)
                if total == 0:  # as the service answers a ranged read of an empty file
                    return self._reply(416, {"Content-Range": "bytes */0"}, code="InvalidRange")
                chunk = data[first : last + 1]
                dfs.served += len(chunk)
                headers["Content-Range"] = f"bytes {first}-{last}/{total}"
                if self.headers.get("x-ms-range-get-content-md5") == "true":
                    headers["Content-MD5"] = base64.b64encode(hashlib.md5(chunk).digest()).decode()
                return self._reply(206, headers, chunk)

        def _list(self, paths: dict[str, Node], query: dict[str, list[str]]) -> None:
            folder = query.get("directory", [""])[0].strip("/")
            if folder and (folder not in paths or not paths[folder].directory):
                return self._reply(404, code="PathNotFound")
            recursive = query.get("recursive", ["false"])[0] == "true"
            found = []
            for name in sorted(paths):
                if folder and not name.startswith(folder + "/"):
                    continue
                rest = name[len(folder) + 1 :] if folder else name
                if not recursive and "/" in rest:
                    continue
                node = paths[name]
                entry = {
                    "name": name,
                    "contentLength": str(len(node.data)),
                    "etag": node.etag.strip('"'),
                    "lastModified": formatdate(node.modified, usegmt=True),
                }
                if node.directory:
                    entry["isDirectory"] = "true"
                found.append(entry)
            body = json.dumps({"paths": found}).encode()
            return self._reply(200, {"Content-Type": "application/json"}, body)

        def _list_blobs(self, paths: dict[str, Node], query: dict[str, list[str]]) -> None:
            """List Blobs (the Blob endpoint): every path under ``prefix``, directories as empty blobs
            marked ``hdi_isfolder`` (metadata returned with ``include=metadata``), in one page."""
            prefix = query.get("prefix", [""])[0]
            metadata = "metadata" in ",".join(query.get("include", [])).split(",")
            blobs = []
            for name in sorted(p for p in paths if p.startswith(prefix)):
                node = paths[name]
                md5 = f"<Content-MD5>{node.md5}</Content-MD5>" if node.md5 else ""
                meta = "<Metadata><hdi_isfolder>true</hdi_isfolder></Metadata>" if node.directory else "<Metadata />"
                blobs.append(
                    f"<Blob><Name>{xml.sax.saxutils.escape(name)}</Name><Properties>"
                    f"<Last-Modified>{formatdate(node.modified, usegmt=True)}</Last-Modified>"
                    f"<Etag>{node.etag}</Etag><Content-Length>{len(node.data)}</Content-Length>"
                    f"<Content-Type>application/octet-stream</Content-Type>{md5}<BlobType>BlockBlob</BlobType>"
                    f"<ResourceType>{'directory' if node.directory else 'file'}</ResourceType>"
                    f"</Properties>{meta if metadata else ''}</Blob>"
                )
            body = (
                '<?xml version="1.0" encoding="utf-8"?><EnumerationResults>'
                f"<Prefix>{xml.sax.saxutils.escape(prefix)}</Prefix><Blobs>{''.join(blobs)}</Blobs>"
                "<NextMarker /></EnumerationResults>"
            ).encode()
            return self._reply(200, {"Content-Type": "application/xml"}, body)

        def do_DELETE(self) -> None:
            system, path, _ = self._target()
            with dfs.lock:
                if not path:
                    dfs.systems.pop(system, None)
                    return self._reply(202)
                paths = dfs.systems.get(system, {})
                if path not in paths:
                    return self._reply(404, code="PathNotFound")
                for name in [p for p in paths if p == path or p.startswith(path + "/")]:
                    del paths[name]
                return self._reply(200)

    with serving(Handler) as url:
        yield f"{url}/{ACCOUNT}", dfs
