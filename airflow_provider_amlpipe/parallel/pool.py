"""The pool of worker processes: hands out mini-batches, retries, replaces dead or stuck workers,
counts failures against the error threshold, and reports progress.

One thread drives everything by waiting on the workers' pipes and process sentinels, so a result,
a crash and a timeout are all noticed at once. A mini-batch's try ends in one of four ways: rows
returned (done), ``run()`` raised, the worker exceeded ``run_invocation_timeout`` (it is killed), or
the worker died (killed from outside, a crash). Each of the last three counts one try; a mini-batch
is handed out again, to whichever worker is free first, until ``run_max_try`` tries failed, and then
its items count as failed. A dead or killed worker is replaced by a fresh one (which calls ``init()``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Final

from airflow_provider_amlpipe.errors import StepFailedError
from airflow_provider_amlpipe.parallel.items import MiniBatch
from airflow_provider_amlpipe.parallel.worker import WorkerSpec, worker_main

#: Spawned workers start clean: no state forked from the coordinator (threads, open handles) leaks in.
START_METHOD: Final = "spawn"
#: Mini-batches sent to a worker at once: the next one waits in its pipe, so a worker never idles
#: while the coordinator (possibly descheduled on a busy machine) handles the last result.
PREFETCH = 2
#: How long a worker asked to stop may take before it is killed.
STOP_GRACE = 5.0
ERROR_TAIL = 2000


@dataclass(frozen=True)
class PoolSettings:
    """How the pool runs and when it gives up (see ``ParallelRunConfig``)."""

    processes: int
    run_invocation_timeout: float
    run_max_try: int
    error_threshold: int
    allowed_failed_count: int | None = None
    allowed_failed_percent: float | None = None
    progress_interval: float = 5.0


@dataclass
class PoolReport:
    """What happened: items done, failures per mini-batch, tries, worker replacements."""

    total_items: int
    total_batches: int
    items_done: int = 0
    items_failed: int = 0
    batches_failed: list[dict[str, Any]] = field(default_factory=list)
    short_batches: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    workers_replaced: int = 0


class ThresholdExceededError(StepFailedError):
    """Too many items or mini-batches failed; ``report`` says which."""

    def __init__(self, message: str, report: PoolReport) -> None:
        super().__init__(message)
        self.report = report


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.ready = False
        #: Mini-batches sent and not answered; the first is the one running.
        self.batches: deque[MiniBatch] = deque()
        #: When the running mini-batch exceeds ``run_invocation_timeout``.
        self.deadline = 0.0


#: Called with a completed mini-batch, the rows its ``run()`` returned and the files it wrote (captured).
OnDone = Callable[[MiniBatch, list[str], list[str]], None]
Log = Callable[[str], None]


class WorkerPool:
    """Runs mini-batches on ``settings.processes`` workers of ``spec``; see the module docstring."""

    def __init__(self, spec: WorkerSpec, settings: PoolSettings, log: Log) -> None:
        self.spec = spec
        self.settings = settings
        self.log = log
        self._context = multiprocessing.get_context(START_METHOD)
        self._workers: list[_Worker] = []

    def run(self, batches: Sequence[MiniBatch], on_done: OnDone) -> PoolReport:
        """Process every mini-batch; ``on_done(batch, rows, files)`` is called for each as it completes.

        Raises :class:`ThresholdExceededError` as soon as failures pass a limit, and
        :class:`StepFailedError` if a worker's ``init()`` fails.
        """
        report = PoolReport(sum(len(b.items) for b in batches), len(batches))
        if not batches:
            return report
        pending = deque(batches)
        started = last_progress = time.monotonic()
        try:
            for _ in range(min(self.settings.processes, len(batches))):
                self._workers.append(self._start())
            while pending or any(w.batches for w in self._workers):
                for worker in self._workers:
                    while worker.ready and len(worker.batches) < PREFETCH and pending:
                        self._assign(worker, pending.popleft())
                now = time.monotonic()
                deadlines = [w.deadline for w in self._workers if w.batches]
                until = min([last_progress + self.settings.progress_interval, *deadlines]) - now
                ready = wait(
                    [w.conn for w in self._workers] + [w.process.sentinel for w in self._workers], max(0.0, until)
                )
                for worker in list(self._workers):
                    if worker.conn in ready:
                        self._receive(worker, pending, report, on_done)
                    elif worker.process.sentinel in ready:
                        self._lost(worker, None, pending, report)
                now = time.monotonic()
                for worker in list(self._workers):
                    if worker.batches and now >= worker.deadline:
                        worker.process.kill()
                        worker.process.join()
                        timeout = self.settings.run_invocation_timeout
                        self._lost(worker, f"run() exceeded run_invocation_timeout ({timeout:g} s)", pending, report)
                if now - last_progress >= self.settings.progress_interval:
                    self._progress(report, started)
                    last_progress = now
            self._progress(report, started)
            return report
        finally:
            self._stop_all()

    # workers ---------------------------------------------------------------------------------
    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=worker_main, args=(child, self.spec), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def _assign(self, worker: _Worker, batch: MiniBatch) -> None:
        if not worker.batches:
            worker.deadline = time.monotonic() + self.settings.run_invocation_timeout
        worker.batches.append(batch)
        # BrokenPipeError: it died since it last answered. Its sentinel reports that, and _lost gives this
        # mini-batch back with the others it held.
        with contextlib.suppress(OSError):
            worker.conn.send((batch.id, batch.payload))

    def _finished(self, worker: _Worker, batch_id: int) -> MiniBatch:
        """The running mini-batch answered; the next one sent (if any) starts now."""
        batch = worker.batches.popleft()
        assert batch.id == batch_id
        if worker.batches:
            worker.deadline = time.monotonic() + self.settings.run_invocation_timeout
        return batch

    def _receive(self, worker: _Worker, pending: deque[MiniBatch], report: PoolReport, on_done: OnDone) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker, None, pending, report)
            return
        kind = message[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "init_failed":
            raise StepFailedError(f"init() of the entry script failed in a worker:\n{message[1][-ERROR_TAIL:]}")
        elif kind == "done":
            batch = self._finished(worker, message[1])
            rows: list[str] = message[2]
            self._done(batch, rows, report)
            on_done(batch, rows, message[3])
        else:  # "failed": run() raised
            batch = self._finished(worker, message[1])
            self._try_failed(batch, f"run() raised:\n{message[2][-ERROR_TAIL:]}", pending, report)

    def _lost(self, worker: _Worker, why: str | None, pending: deque[MiniBatch], report: PoolReport) -> None:
        """A worker died (``why`` is ``None``) or was killed: replace it, and count a try against its mini-batch."""
        # Its pipe closes a moment before it can be reaped: wait for the exit code.
        worker.process.join(STOP_GRACE)
        why = why or f"the worker process died (exit code {worker.process.exitcode})"
        self._workers.remove(worker)
        worker.conn.close()
        if not worker.ready:
            raise StepFailedError(f"a worker died while loading the entry script or in init(): {why}")
        self._workers.append(self._start())
        report.workers_replaced += 1
        self.log(f"{why}; started a new worker")
        if worker.batches:
            running = worker.batches.popleft()
            # Those waiting in its pipe never started: they go back first in line, without a try counted.
            pending.extendleft(reversed(worker.batches))
            self._try_failed(running, why, pending, report)

    # accounting -------------------------------------------------------------------------------
    def _done(self, batch: MiniBatch, rows: list[str], report: PoolReport) -> None:
        succeeded = min(len(rows), len(batch.items))
        report.items_done += succeeded
        if succeeded < len(batch.items):
            # AML's rule: each element run() returns stands for one item that succeeded.
            missing = len(batch.items) - succeeded
            report.items_failed += missing
            report.short_batches.append(
                {"mini_batch": batch.id, "items": [i.ref for i in batch.items], "rows": len(rows), "failed": missing}
            )
            self.log(f"mini-batch {batch.id}: run() returned {len(rows)} rows for {len(batch.items)} items")
            self._check_limits(report)

    def _try_failed(self, batch: MiniBatch, why: str, pending: deque[MiniBatch], report: PoolReport) -> None:
        batch.attempts += 1
        batch.errors.append(why)
        if batch.attempts < self.settings.run_max_try:
            report.retries += 1
            self.log(
                f"mini-batch {batch.id} failed on try {batch.attempts} of {self.settings.run_max_try}; retrying:"
                f" {why.splitlines()[0]}"
            )
            pending.appendleft(batch)
            return
        report.items_failed += len(batch.items)
        report.batches_failed.append(
            {
                "mini_batch": batch.id,
                "items": [i.ref for i in batch.items],
                "tries": batch.attempts,
                "errors": batch.errors,
            }
        )
        self.log(f"mini-batch {batch.id} failed after {batch.attempts} tries: {why}")
        self._check_limits(report)

    def _check_limits(self, report: PoolReport) -> None:
        check_limits(self.settings, report)

    def _progress(self, report: PoolReport, started: float) -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        done = report.items_done + report.items_failed
        rate = report.items_done / elapsed
        left = report.total_items - done
        eta = f"{left / rate:.0f} s" if rate > 0 else "unknown"
        percent = 100.0 * done / max(1, report.total_items)
        self.log(
            f"progress: {done}/{report.total_items} items ({percent:.0f}%), {report.items_failed} failed,"
            f" {rate:.1f} items/s, ETA {eta}"
        )

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.batches:  # aborted mid-batch: its result would be thrown away
                worker.process.kill()
                continue
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        deadline = time.monotonic() + STOP_GRACE
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers = []


def check_limits(s: PoolSettings, report: PoolReport) -> None:
    """Raise :class:`ThresholdExceededError` when the failures in ``report`` pass a limit of ``s``."""
    failed = len(report.batches_failed)
    reasons = []
    if s.error_threshold != -1 and report.items_failed > s.error_threshold:
        reasons.append(f"{report.items_failed} items failed, above error_threshold={s.error_threshold}")
    if s.allowed_failed_count is not None and failed > s.allowed_failed_count:
        reasons.append(f"{failed} mini-batches failed, above allowed_failed_count={s.allowed_failed_count}")
    percent = s.allowed_failed_percent
    if percent is not None and failed * 100 > percent * report.total_batches:
        reasons.append(
            f"{failed} of {report.total_batches} mini-batches failed, above allowed_failed_percent={percent:g}"
        )
    if reasons:
        raise ThresholdExceededError("; ".join(reasons), report)
