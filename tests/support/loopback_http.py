"""The HTTP plumbing shared by the local test servers that speak a cloud service's protocol (Batch, ARM
compute, ADLA, Databricks, ADLS Gen2) and by the counting proxy: a quiet keep-alive request handler
base that reads bodies and writes replies, and serving it on loopback from a background thread.

What each server answers (routing, statuses, its own headers and error envelopes) stays in the server."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

Dispatch = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], Any]]


@dataclass
class RecordedRequest:
    """One request as a server's ``requests`` test hook keeps it (``body``: parsed JSON, raw bytes or None)."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any


class RequestLog(Protocol):
    """A server's request test hooks: ``requests`` received, ``inject`` (statuses to answer the next with)."""

    lock: AbstractContextManager[Any]
    requests: list[Any]
    inject: list[int]


def admit(server: RequestLog, request: Any) -> int | None:
    """Record ``request`` and take the status injected for it, if any, in one step under ``server.lock``
    (so concurrent requests are recorded in the order they take the injected statuses)."""
    with server.lock:
        server.requests.append(request)
        return server.inject.pop(0) if server.inject else None


def parse_request(raw_path: str, body: bytes) -> tuple[str, dict[str, list[str]], Any]:
    """A request's path, its query (``parse_qs``) and its body: parsed JSON, the bytes themselves if they
    are not JSON, None if empty."""
    parts = urlsplit(raw_path)
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body
    return parts.path, parse_qs(parts.query), parsed


class ServiceHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) handler base: silent request log, body reading, and :meth:`reply`."""

    protocol_version = "HTTP/1.1"
    json_type = "application/json"  # the Content-Type of a JSON payload
    typed_when_empty = False  # whether a reply without a payload still names ``json_type``

    def handle(self) -> None:
        with suppress(ConnectionResetError, BrokenPipeError):  # a client dropped an idle keep-alive connection
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def content_length(self) -> int:
        """The length the request's ``Content-Length`` announces (0 without one)."""
        return int(self.headers.get("Content-Length") or 0)

    def read_body(self) -> bytes:
        """The request body; shorter than :meth:`content_length` if the client went away mid-request."""
        length = self.content_length()
        return self.rfile.read(length) if length else b""

    def request_headers(self) -> dict[str, str]:
        """The request's headers keyed by lower-case name."""
        return {k.lower(): v for k, v in self.headers.items()}

    def reply(self, status: int, payload: Any = None, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Answer ``status`` with ``payload`` (bytes as they are, None as no body, anything else as JSON)
        and ``headers`` in order. Content-Type and Content-Length are added unless ``headers`` name them;
        a HEAD answer keeps its headers but sends no body."""
        headers = list(headers)
        names = {name for name, _ in headers}
        content_type: str | None
        if isinstance(payload, bytes):
            data, content_type = payload, "application/octet-stream"
        elif payload is not None:
            data, content_type = json.dumps(payload).encode(), self.json_type
        else:
            data, content_type = b"", self.json_type if self.typed_when_empty else None
        self.send_response(status)
        if content_type and "Content-Type" not in names:
            self.send_header("Content-Type", content_type)
        if "Content-Length" not in names:
            self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def service_headers(self, request: dict[str, str]) -> list[tuple[str, str]]:
        """The headers the service adds to every answer (request ids and the like), given the request's."""
        return []

    def dispatch(self, handle: Dispatch) -> None:
        """Answer with ``handle(method, path, lower-case headers, body) -> (status, headers, payload)``:
        the service's headers first, then the handler's own."""
        request = self.request_headers()
        status, extra, payload = handle(self.command, self.path, request, self.read_body())
        self.reply(status, payload, [*self.service_headers(request), *extra.items()])


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on ``127.0.0.1`` at a free port from a background thread; yields its http URL.
    On exit the server stops accepting requests and its socket is closed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Hosted(Protocol):
    """A server's state as :func:`hosting` serves it."""

    endpoint: str

    def shutdown(self) -> None: ...


@contextmanager
def hosting(state: Hosted, handler: type[BaseHTTPRequestHandler], root: Path) -> Iterator[None]:
    """Serve ``handler`` (answering for ``state``) as :func:`serving` does, with ``state.endpoint`` set to its
    URL; at exit, even a failed start, ``state.shutdown()`` runs and the state's folder ``root`` is removed."""
    try:
        with serving(handler) as endpoint:
            state.endpoint = endpoint
            yield
    finally:
        state.shutdown()
        shutil.rmtree(root, ignore_errors=True)
