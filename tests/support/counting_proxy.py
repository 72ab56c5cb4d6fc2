"""A loopback HTTP proxy in front of Azurite that counts the data bytes written to each blob.

It forwards every request unchanged (shared-key signatures stay valid: they do not sign the
host) and adds up the bodies of ``Put Blob`` and ``Put Block`` requests per blob path, so a test
can tell whether a file's bytes were sent more than once; bodies the service refused (a conditional
write that found the blob there) are added up apart, in ``refused``. ``delay`` slows each write down, so a
transfer can be interrupted halfway.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, unquote, urlsplit

from support.loopback_http import ServiceHandler, serving


class Counter:
    """Bytes the service accepted (and refused) per blob path, and the requests still being forwarded."""

    def __init__(self) -> None:
        self.written: dict[str, int] = defaultdict(int)
        self.refused: dict[str, int] = defaultdict(int)
        self.lock = threading.Condition()
        self.in_flight = 0

    def add(self, path: str, n: int, accepted: bool = True) -> None:
        with self.lock:
            (self.written if accepted else self.refused)[path] += n

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no request is on its way to the service (a killed client's last ones land first,
        as they would have on a real service, which receives a request whole before answering)."""
        with self.lock:
            assert self.lock.wait_for(lambda: self.in_flight == 0, timeout), "requests still in flight"


@contextmanager
def counting_proxy(target: str, delay: float = 0.0) -> Iterator[tuple[str, Counter]]:
    """Serve a proxy to ``target`` (``http://host:port``); yields its URL and the byte counter."""
    parts = urlsplit(target)
    counter = Counter()

    class Handler(ServiceHandler):
        def _forward(self) -> None:
            with counter.lock:
                counter.in_flight += 1
            try:
                self._relay()
            finally:
                with counter.lock:
                    counter.in_flight -= 1
                    counter.lock.notify_all()

        def _relay(self) -> None:
            length = self.content_length()
            body = self.read_body()
            if len(body) < length:
                # The client died mid-request (a killed transfer): a service discards a request it did not
                # receive whole, so nothing is forwarded -- forwarding a short body would leave the service
                # waiting for the rest until its timeout, with the request counted as in flight.
                self.close_connection = True
                return
            url = urlsplit(self.path)
            comp = parse_qs(url.query).get("comp", [None])[0]
            write = self.command == "PUT" and comp in (None, "block") and length
            if write:
                time.sleep(delay)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if write:
                counter.add(unquote(url.path), len(body), accepted=response.status < 300)
            self.send_response(response.status, response.reason)
            # A HEAD answer's Content-Length is the blob's size, not this (empty) body's.
            keep_length = self.command == "HEAD"
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "connection") and (
                    keep_length or key.lower() != "content-length"
                ):
                    self.send_header(key, value)
            if not keep_length:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward

    with serving(Handler) as url:
        yield url, counter
