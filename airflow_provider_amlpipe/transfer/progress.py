"""Progress of a transfer (files, bytes, rate, ETA), logged at a steady cadence from any thread."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol


class TransferLog(Protocol):
    """The logging call a transfer makes (a stdlib logger or Airflow's task logger)."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Counts files and bytes done; :meth:`tick` logs at most once each ``every`` seconds."""

    def __init__(self, log: TransferLog, files: int, size: int, *, every: float = 5.0) -> None:
        self.log = log
        self.files_total = files
        self.bytes_total = size
        self.every = every
        self.files_done = 0
        self.bytes_done = 0
        self.files_skipped = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last = self._started

    def skipped(self, size: int) -> None:
        """A file already copied and verified by an earlier, interrupted run."""
        with self._lock:
            self.files_skipped += 1
            self.files_total -= 1
            self.bytes_total -= size

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes_done += n
        self.tick()

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1
        self.tick()

    def tick(self, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < self.every:
                return
            self._last = now
            elapsed = max(now - self._started, 1e-6)
            rate = self.bytes_done / elapsed
            left = max(self.bytes_total - self.bytes_done, 0)
            eta = f"{left / rate:.0f} s" if rate > 0 and left else ("0 s" if not left else "unknown")
            line = (
                "transfer progress: %d/%d files, %s/%s, %s/s, ETA %s%s",
                self.files_done,
                self.files_total,
                _size(self.bytes_done),
                _size(self.bytes_total),
                _size(rate),
                eta,
                f" ({self.files_skipped} already verified, skipped)" if self.files_skipped else "",
            )
        self.log.info(*line)
