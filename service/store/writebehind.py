"""Recording checks off the request path: a bounded queue per worker, written in batches.

Writing one checked comment in its own transaction costs more than scoring it
(docs/performance.md: about 0.5 ms of CPU on SQLite, 2 ms of CPU and 13 ms of
wall time on PostgreSQL, against 0.13-0.18 ms per row in batches of 50). The
verdict does not depend on the row, so the request hands its records to this
queue and answers; a daemon thread in each worker writes them in batches.

The trade-off, stated plainly: a worker killed hard (SIGKILL, OOM, power
loss) loses at most the queued records; a clean stop (gunicorn ``worker_exit``
or interpreter exit) flushes them. When the queue is full a record is dropped
and counted (``commentmod_writebehind_dropped_total``) rather than making the
comment form wait. Labels never go through here: they stay synchronous.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from collections.abc import Callable

from prometheus_client import Counter

from service.errors import StorageError
from service.resources import Resources
from service.store.db import CheckRecord, Store

log = logging.getLogger(__name__)

DROPPED = Counter(
    "commentmod_writebehind_dropped_total",
    "Checked comments not recorded by the background writer",
    ["reason"],  # full: queue at its bound; store_error: the batch could not be committed
)
WRITTEN = Counter(
    "commentmod_writebehind_written_total", "Checked comments recorded by the background writer"
)


class WriteBehind:
    """A bounded queue of :class:`CheckRecord` flushed by one thread per process.

    The thread starts on the first :meth:`submit` in a process, so a queue
    built in the gunicorn master before the fork starts a fresh thread in each
    worker and never in the master.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        interval_seconds: float = 0.2,
    ) -> None:
        self.store = store
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.interval_seconds = interval_seconds
        self._queue: collections.deque[CheckRecord] = collections.deque()
        self._wake = threading.Condition(threading.Lock())
        self._flush_lock = threading.Lock()  # one writer at a time: thread or flush()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopping = False
        # Other batched work the writer thread does after each flush (the verdict
        # cache's pending Redis writes); a failure there never stops the thread.
        self.on_tick: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, records: list[CheckRecord]) -> int:
        """Queue ``records``; returns how many were dropped because the queue was full."""
        self._ensure_thread()
        room = self.max_queue - len(self._queue)
        accepted = records[: max(room, 0)]
        self._queue.extend(accepted)
        dropped = len(records) - len(accepted)
        if dropped:
            DROPPED.labels("full").inc(dropped)
            log.warning("writebehind.dropped", extra={"n": dropped, "queued": len(self._queue)})
        if len(self._queue) >= self.batch_size:
            with self._wake:
                self._wake.notify()
        return dropped

    def flush(self) -> int:
        """Write everything queued now, in batches; returns the number of rows written."""
        written = 0
        with self._flush_lock:
            while self._queue:
                batch: list[CheckRecord] = []
                while self._queue and len(batch) < self.batch_size:
                    batch.append(self._queue.popleft())
                try:
                    self.store.record_checks(batch)
                except StorageError as exc:
                    DROPPED.labels("store_error").inc(len(batch))
                    log.warning(
                        "writebehind.store_failed", extra={"error": exc.message, "n": len(batch)}
                    )
                    continue
                written += len(batch)
                WRITTEN.inc(len(batch))
        return written

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and flush what is left (worker exit). Safe to call twice."""
        self._stopping = True
        with self._wake:
            self._wake.notify()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout)
        self.flush()

    def _ensure_thread(self) -> None:
        pid = os.getpid()
        if self._pid == pid and self._thread is not None:
            return
        with self._wake:
            if self._pid == pid and self._thread is not None:
                return
            self._pid = pid
            self._stopping = False
            self._flush_lock = threading.Lock()  # a lock copied by fork may be held
            self._thread = threading.Thread(target=self._run, name="writebehind", daemon=True)
            self._thread.start()
        atexit.register(self.stop)

    def _run(self) -> None:
        while not self._stopping:
            with self._wake:
                self._wake.wait(self.interval_seconds)
            try:
                self.flush()
                for tick in self.on_tick:
                    tick()
            except Exception:  # the writer thread must outlive any one bad batch
                log.exception("writebehind.crashed")
                time.sleep(self.interval_seconds)


def init(res: Resources) -> WriteBehind | None:
    """Put a writer in ``res.write_behind`` unless the settings turn it off.

    With ``ENV=testing`` checks are written in the request, so a test reads
    back what it just checked.
    """
    s = res.settings
    if s.write_behind_queue <= 0 or s.env == "testing":
        return None
    writer = WriteBehind(
        res.store,
        max_queue=s.write_behind_queue,
        batch_size=s.write_behind_batch,
        interval_seconds=s.write_behind_interval_seconds,
    )
    res.write_behind = writer
    return writer


def stop(res: Resources) -> None:
    """Flush and stop this process's writer (gunicorn ``worker_exit``)."""
    writer = res.write_behind
    if writer is not None:
        writer.stop()
