"""Recording checks off the request path, without losing an acknowledged one.

Writing one checked comment in its own transaction costs more than scoring it
(docs/performance.md: about 0.5 ms of CPU on SQLite, 2 ms of CPU and 13 ms of
wall time on PostgreSQL, against 0.13-0.18 ms per row in batches of 50). The
verdict does not depend on the row, so the request hands its records to this
writer and answers; a daemon thread in each worker commits them in batches.

Before answering, the request also appends its records to this process's
journal (:class:`Journal`, one write system call, a few microseconds): a file
under ``<data_dir>/journal/``. A worker killed at any instant (SIGKILL, the
OOM killer, a crash) leaves its journal in the page cache, where the kernel
keeps it; whoever starts next in this data directory (a replacement worker's
writer, the gunicorn master at the next start) finds the journals of dead
processes by their released ``flock`` and replays them, idempotently by guid
(:meth:`service.store.Store.record_checks` inserts or ignores). Against a
power cut the journal is only as durable as the last ``fsync``:
``COMMENTMOD_WRITE_BEHIND_FSYNC=true`` syncs every append (docs/performance.md
says what that costs).

A batch the database refuses is retried row by row: the good rows are stored,
each refused row is appended to ``<data_dir>/journal/dead-letters.jsonl`` with
the database's error, logged and counted (``commentmod_writebehind_dead_letters_total``).
A database that cannot be reached refuses nothing: the journal segments stay
on disk and are retried on the next tick. Labels never go through here: they
stay synchronous.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import Counter

from service.errors import StorageUnreachable
from service.metrics import STORE_ERRORS
from service.resources import Resources
from service.store.db import CheckRecord, Store

log = logging.getLogger(__name__)

JOURNAL_DIR = "journal"  # under data_dir
DEAD_LETTERS = "dead-letters.jsonl"  # under the journal directory
LOCK = "lock"  # flock'ed by the live process that owns a journal
SEGMENT_GLOB = "*.jsonl"
CHECK_PREFIX = b'{"check":'
ORPHAN_SCAN_SECONDS = 5.0  # how often a writer looks for journals of dead processes
STALE_TEMP_SECONDS = 3600.0  # a journal directory still being set up after this long is litter
# A segment's encoded lines are also kept in memory up to this size, so the writer
# need not read them back; a bigger segment (a burst the writer is behind on) is read
# back from disk (the page cache), a batch at a time.
HELD_BYTES = 1 << 20

DROPPED = Counter(
    "commentmod_writebehind_dropped_total",
    "Checked comments not recorded by the background writer",
    # full: queue at its bound without a journal; store_error: database unreachable
    # without a journal (with one, nothing is dropped: the journal is retried)
    ["reason"],
)
WRITTEN = Counter(
    "commentmod_writebehind_written_total", "Checked comments recorded by the background writer"
)
REPLAYED = Counter(
    "commentmod_writebehind_replayed_total",
    "Checked comments replayed from the journals of dead processes",
)
DEAD_LETTERED = Counter(
    "commentmod_writebehind_dead_letters_total",
    "Checked comments the database refused, kept in journal/dead-letters.jsonl",
)
JOURNAL_ERRORS = Counter(
    "commentmod_writebehind_journal_errors_total",
    "Journal appends that failed (the check was then written in the request)",
)


# --- encoding -----------------------------------------------------------------------


def _record_json(rec: CheckRecord) -> bytes:
    try:
        return orjson.dumps(rec)
    except TypeError:  # orjson refuses e.g. integers past 64 bits in ``extra``
        return json.dumps(dataclasses.asdict(rec), default=str).encode()


def encode(records: Iterable[CheckRecord]) -> bytes:
    """One JSON line per record, ``{"check": {...}}``."""
    return b"".join(CHECK_PREFIX + _record_json(rec) + b"}\n" for rec in records)


def decode(line: bytes) -> CheckRecord:
    """The record of one journal line; ValueError when the line is not one."""
    try:
        body = orjson.loads(line)["check"]
        when = body.get("received_at")
        body["received_at"] = datetime.fromisoformat(when) if when else None
        return CheckRecord(**body)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a journal line: {exc}") from exc


def read_segment(path: Path, dead: DeadLetters) -> list[CheckRecord]:
    """The records of a journal segment. A line that cannot be read (the torn tail of
    a write cut by a power loss) goes to the dead letters as raw text."""
    return decode_lines(segment_lines(path), path, dead)


def segment_lines(path: Path) -> list[bytes]:
    """A segment's non-empty lines, undecoded."""
    return journal_lines(path.read_bytes())


def journal_lines(data: bytes) -> list[bytes]:
    """The non-empty lines of journal text (a segment's, or the part of it held in
    memory), undecoded."""
    return [line for line in data.splitlines() if line.strip()]


def decode_lines(lines: Iterable[bytes], path: Path, dead: DeadLetters) -> list[CheckRecord]:
    records = []
    for line in lines:
        try:
            records.append(decode(line))
        except ValueError as exc:
            dead.add_raw(line, str(exc), source=path)
    return records


# --- the journal of one process ----------------------------------------------------


class Journal:
    """This process's append-only journal: ``<root>/<pid>-<token>/`` holding a
    ``lock`` file, ``flock``'ed for the life of the process (the kernel releases it
    when the process dies, however it dies), and numbered segments.

    The writer thread closes the current segment (:meth:`rotate`) before it
    commits the records it holds, and deletes it once they are committed.
    """

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.root = root
        self.fsync = fsync
        root.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        # Set up under a hidden name, locked, then renamed into place: a replayer
        # never sees a journal directory whose lock is not yet held.
        temp = root / f".{name}"
        temp.mkdir()
        self._lock_fd = os.open(temp / LOCK, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self.dir = root / name
        temp.rename(self.dir)
        self.seq = 0
        self.count = 0  # records in the current segment
        self.path = self.dir / "00000000.jsonl"
        self._fd = -1
        self._open_next()

    def _open_next(self) -> None:
        self.seq += 1
        self.path = self.dir / f"{self.seq:08d}.jsonl"
        self._fd = os.open(
            self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC, 0o600
        )
        self.count = 0

    def append(self, data: bytes, n: int) -> None:
        """Hand ``data`` to the kernel (one ``write``): from here a killed process loses
        nothing; with ``fsync`` a power cut does not either."""
        if self._fd < 0:  # the last segment could not be opened: try again, or raise
            self._open_next()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)
        self.count += n

    def rotate(self) -> Path | None:
        """Close the current segment and start the next; None when it held nothing."""
        if self.count == 0:
            return None
        closed = self.path
        # Never keep a closed descriptor: if the next segment cannot be opened (data
        # directory gone, no descriptors left), its number may belong to a client's
        # socket by the next append, and a record would be written into an answer.
        fd, self._fd = self._fd, -1
        os.close(fd)
        self.count = 0
        with contextlib.suppress(OSError):  # else the next append tries again, or raises
            self._open_next()
        return closed

    def close(self, remove: bool) -> None:
        """Close the journal; ``remove`` deletes it (everything in it is committed)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        if remove:
            with contextlib.suppress(OSError):
                for segment in self.dir.glob(SEGMENT_GLOB):
                    segment.unlink()
                (self.dir / LOCK).unlink()
                self.dir.rmdir()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


class DeadLetters:
    """Rows the database refused, one JSON line each, for an operator to read."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def add(self, rec: CheckRecord, error: str) -> None:
        DEAD_LETTERED.inc()
        log.error("writebehind.dead_letter", extra={"guid": rec.guid, "error": error})
        head = orjson.dumps({"at": datetime.now(UTC), "error": error, "pid": os.getpid()})
        self.append_line(head[:-1] + b',"check":' + _record_json(rec) + b"}\n")

    def add_raw(self, raw: bytes, error: str, source: Path) -> None:
        DEAD_LETTERED.inc()
        log.error("writebehind.unreadable_line", extra={"file": str(source), "error": error})
        self.append_line(orjson.dumps({
            "at": datetime.now(UTC), "error": error, "file": str(source),
            "raw": raw.decode("utf-8", "replace"),
        }) + b"\n")

    def append_line(self, line: bytes) -> None:
        """Append one line as it is (``line`` ends with a newline)."""
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)  # rare, and the only copy
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("writebehind.dead_letter_unwritable", extra={"error": str(exc)})


# --- committing rows --------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    detail = str(getattr(cause, "orig", None) or cause).strip().splitlines()
    return f"{type(getattr(cause, 'orig', None) or cause).__name__}: {' '.join(detail)[:500]}"


def _reachable(store: Store) -> bool:
    try:
        store.ping()
    except Exception:
        return False
    return True


def store_checks(
    store: Store, records: list[CheckRecord], batch_size: int, dead: DeadLetters
) -> int:
    """Commit ``records`` in batches; returns how many were stored (or already were).

    A refused batch is retried row by row: a row the database refuses (a NUL
    character on PostgreSQL, a site deleted meanwhile) becomes a dead letter and
    never takes the good rows with it. Raises :class:`StorageUnreachable`, having kept
    nothing back, when the database cannot be reached at all.
    """
    written = 0
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        try:
            store.record_checks(batch)
            written += len(batch)
            continue
        except Exception as exc:  # any refusal: sort the rows out one by one below
            if not _reachable(store):
                raise StorageUnreachable(_reason(exc)) from exc
            log.warning("writebehind.batch_refused", extra={"error": _reason(exc),
                                                             "n": len(batch)})
        for rec in batch:
            try:
                store.record_checks([rec])
                written += 1
            except Exception as exc:
                if not _reachable(store):
                    raise StorageUnreachable(_reason(exc)) from exc
                dead.add(rec, _reason(exc))
    return written


def replay_orphans(
    root: Path,
    store: Store,
    *,
    batch_size: int = 500,
    dead: DeadLetters | None = None,
    own: Path | None = None,
) -> int:
    """Commit and delete the journals of dead processes under ``root``; returns the
    number of records replayed. Safe to run anywhere, at any time, concurrently:
    a journal is touched only by whoever holds its lock, and a record already
    stored is ignored by guid. Raises :class:`StorageUnreachable` (leaving the rest in
    place) when the database cannot be reached.
    """
    if not root.is_dir():
        return 0
    dead = dead or DeadLetters(root / DEAD_LETTERS)
    total = 0
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry == own:
            continue
        if entry.name.startswith("."):
            _remove_stale_temp(entry)
            continue
        try:
            fd = os.open(entry / LOCK, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # replayed and removed by someone else meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive
            total += _replay_dir(entry, store, batch_size, dead)
        finally:
            os.close(fd)
    return total


def _replay_dir(journal: Path, store: Store, batch_size: int, dead: DeadLetters) -> int:
    total = 0
    for segment in sorted(journal.glob(SEGMENT_GLOB)):
        records = read_segment(segment, dead)
        total += store_checks(store, records, batch_size, dead)
        REPLAYED.inc(len(records))
        segment.unlink()
    with contextlib.suppress(OSError):
        (journal / LOCK).unlink()
        journal.rmdir()
    if total:
        log.warning("writebehind.replayed", extra={"journal": journal.name, "n": total})
    return total


def _remove_stale_temp(entry: Path) -> None:
    """A journal directory whose set-up was cut short (it never held a record)."""
    try:
        if time.time() - entry.stat().st_mtime < STALE_TEMP_SECONDS:
            return
        for child in entry.iterdir():
            child.unlink()
        entry.rmdir()
    except OSError:
        pass


def journal_status(root: Path) -> dict[str, Any]:
    """The journals under ``root`` (live or left by a dead process, with the records
    they hold) and the number of dead letters: ``commentmod journal status``."""
    journals = []
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            records = sum(
                1 for seg in entry.glob(SEGMENT_GLOB) for line in seg.read_bytes().splitlines()
                if line.strip()
            )
            journals.append({"journal": entry.name, "live": _held(entry / LOCK),
                             "records": records})
    letters = root / DEAD_LETTERS
    count = len(letters.read_bytes().splitlines()) if letters.is_file() else 0
    return {"journals": journals, "dead_letters": count, "dead_letters_file": str(letters)}


def _held(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if we took it
    return False


def retry_dead_letters(root: Path, store: Store) -> tuple[int, int]:
    """Offer every dead letter to the database again, by guid (after an operator fixed
    the cause, or edited the file); returns (stored, still refused). What is still
    refused, and lines that hold no record, stay in the file."""
    path = root / DEAD_LETTERS
    if not path.is_file():
        return 0, 0
    taken = path.with_name(f"{DEAD_LETTERS}.retrying-{os.getpid()}")
    path.rename(taken)  # dead letters written meanwhile start a new file
    dead = DeadLetters(path)
    stored = refused = 0
    lines = taken.read_bytes().splitlines()
    try:
        for i, line in enumerate(lines):
            try:
                entry = orjson.loads(line)
                rec = decode(CHECK_PREFIX + orjson.dumps(entry["check"]) + b"}")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                dead.append_line(line + b"\n")  # an unreadable journal line: kept as it was
                refused += 1
                continue
            try:
                store.record_checks([rec])
                stored += 1
            except Exception as exc:
                if not _reachable(store):
                    for rest in lines[i:]:
                        dead.append_line(rest + b"\n")
                    raise StorageUnreachable(_reason(exc)) from exc
                dead.append_line(line + b"\n")
                refused += 1
    finally:
        taken.unlink()
    return stored, refused


# --- the writer -------------------------------------------------------------------


class WriteBehind:
    """Checks committed by one thread per process, from this process's journal when
    ``journal_root`` is given, else from a bounded in-memory queue.

    With the journal, the segments are the queue: a request appends its encoded
    records, and the writer decodes each closed segment ``batch_size`` lines at a
    time, from the lines it kept in memory (at most :data:`HELD_BYTES` a segment)
    or else read back from disk. A backlog (a burst of batches, a slow database)
    therefore costs disk, not memory. When the writer held the records themselves,
    thousands of small objects waited in every worker during a burst of batches,
    and the worker's RSS kept their high-water mark (docs/performance.md, "Sixth
    pass").

    The thread and the journal start in each process on :meth:`start` (gunicorn's
    ``post_fork``) or the first :meth:`submit`, never in a gunicorn master.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        interval_seconds: float = 0.2,
        journal_root: Path | None = None,
        fsync: bool = False,
        dead_letters: Path | None = None,
    ) -> None:
        self.store = store
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.interval_seconds = interval_seconds
        self.journal_root = journal_root
        self.fsync = fsync
        if dead_letters is None and journal_root is not None:
            dead_letters = journal_root / DEAD_LETTERS
        self.dead = DeadLetters(dead_letters)  # None: refused rows are logged and counted
        self._queue: collections.deque[CheckRecord] = collections.deque()  # without a journal
        self._journal: Journal | None = None
        self._journal_error: OSError | None = None  # checks are then written in the request
        # Closed segments not committed yet, oldest first, each with the number of its
        # lines already committed (a segment cut short by an outage resumes there) and
        # its lines when they are still in memory (None: read them back from disk).
        self._backlog: list[tuple[Path, int, bytes | None]] = []
        self._held: list[bytes] | None = []  # the live segment's lines (None: too many)
        self._held_size = 0
        self._lock = threading.Lock()  # submit vs rotation: a segment matches its queue
        self._wake = threading.Condition(threading.Lock())
        self._flush_lock = threading.Lock()  # one writer at a time: thread or flush()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopping = False
        self._next_scan = 0.0
        # Other batched work the writer thread does after each flush (the verdict
        # cache's pending Redis writes); a failure there never stops the thread.
        self.on_tick: list[Callable[[], None]] = []

    def __len__(self) -> int:
        """Checks submitted and not yet handed to the writer (the live segment's, or
        the queue's without a journal)."""
        journal = self._journal
        return len(self._queue) + (journal.count if journal is not None else 0)

    def submit(self, records: list[CheckRecord]) -> int:
        """Journal and queue ``records``; returns how many were dropped (only without a
        journal, when the queue is full). With a journal, returns once the records are
        durable against this process's death."""
        self.start()
        journal = self._journal
        if journal is None:
            if self._journal_error is not None:  # asked for, but it could not be opened
                return self._write_now(records, self._journal_error)
            return self._queue_only(records)
        data = encode(records)
        with self._lock:
            try:
                journal.append(data, len(records))
            except OSError as exc:
                failed: OSError | None = exc
            else:
                failed = None
                self._hold(data)
            due = journal.count >= self.batch_size
        if failed is not None:
            return self._write_now(records, failed)
        if due:
            with self._wake:
                self._wake.notify()
        return 0

    def _hold(self, data: bytes) -> None:
        if self._held is None:
            return
        self._held_size += len(data)
        if self._held_size > HELD_BYTES:
            self._held = None  # the writer reads this segment back from disk
        else:
            self._held.append(data)

    def _queue_only(self, records: list[CheckRecord]) -> int:
        """Without a journal: a full queue drops what it has no room for."""
        with self._lock:
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

    def _write_now(self, records: list[CheckRecord], error: OSError | None) -> int:
        """The journal could not take the records: write them in the request instead."""
        JOURNAL_ERRORS.inc()
        log.error("writebehind.journal_failed", extra={"error": str(error)})
        try:
            store_checks(self.store, records, self.batch_size, self.dead)
        except StorageUnreachable as exc:
            DROPPED.labels("store_error").inc(len(records))
            log.error("writebehind.lost", extra={"error": exc.message, "n": len(records)})
            return len(records)
        return 0

    def flush(self) -> int:
        """Commit everything submitted so far; returns the number of rows stored.

        The live segment is closed first and joins the closed segments still
        waiting (the database was away), which are committed oldest first. While
        the database stays away, every tick closes one more segment and only its
        path is kept: memory stays bounded however long the outage.
        """
        written = 0
        with self._flush_lock:
            with self._lock:
                records = list(self._queue)
                self._queue.clear()
                closed = self._journal.rotate() if self._journal is not None else None
                held, self._held, self._held_size = self._held, [], 0
            if closed is not None:
                self._backlog.append((closed, 0, b"".join(held) if held is not None else None))
            elif self._journal is None and records:
                written += self._write_unjournaled(records)
            while self._backlog:  # oldest first
                stored, failed = self._commit_segment()
                written += stored
                if failed is not None:
                    # While the database is away only the paths are kept: memory stays
                    # bounded however long the outage.
                    self._backlog = [(p, done, None) for p, done, _ in self._backlog]
                    log.warning("writebehind.database_unavailable",
                                extra={"error": failed.message, "segments": len(self._backlog)})
                    break
        WRITTEN.inc(written)
        return written

    def _commit_segment(self) -> tuple[int, StorageUnreachable | None]:
        """Commit the oldest closed segment ``batch_size`` lines at a time, then delete
        it; returns the rows stored and, if the database went away, why. Only one batch
        of records is decoded at once; an outage mid-segment keeps the lines committed
        so far out of the retry."""
        path, done, data = self._backlog[0]
        if data is not None:
            lines = journal_lines(data)
        else:
            try:
                lines = segment_lines(path)
            except FileNotFoundError:  # the data directory was removed under us
                log.error("writebehind.segment_lost", extra={"path": str(path)})
                lines = []
        written = 0
        for start in range(done, len(lines), self.batch_size):
            recs = decode_lines(lines[start : start + self.batch_size], path, self.dead)
            try:
                written += store_checks(self.store, recs, self.batch_size, self.dead)
            except StorageUnreachable as exc:
                self._backlog[0] = (path, start, None)
                return written, exc
        self._backlog.pop(0)
        path.unlink(missing_ok=True)  # the data directory may have gone
        return written, None

    def _write_unjournaled(self, records: list[CheckRecord]) -> int:
        try:
            return store_checks(self.store, records, self.batch_size, self.dead)
        except StorageUnreachable as exc:  # no journal to keep them in
            DROPPED.labels("store_error").inc(len(records))
            log.warning("writebehind.store_failed", extra={"error": exc.message,
                                                           "n": len(records)})
            return 0

    def replay_orphans(self) -> int:
        """Replay the journals of dead processes (see :func:`replay_orphans`)."""
        if self.journal_root is None:
            return 0
        own = self._journal.dir if self._journal is not None else None
        try:
            return replay_orphans(self.journal_root, self.store, batch_size=self.batch_size,
                                  dead=self.dead, own=own)
        except StorageUnreachable as exc:
            log.warning("writebehind.replay_postponed", extra={"error": exc.message})
        except OSError as exc:
            log.error("writebehind.replay_failed", extra={"error": str(exc)})
        return 0

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, commit what is left and remove the journal (worker exit).
        Safe to call twice. What cannot be committed stays in the journal for the
        next start."""
        self._stopping = True
        with self._wake:
            self._wake.notify()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout)
        self.flush()
        journal = self._journal
        if journal is not None and self._pid == os.getpid():
            with self._lock:
                empty = not self._queue and not self._backlog and journal.count == 0
                journal.close(remove=empty)
                self._journal = None

    def start(self) -> None:
        """Start this process's journal and thread (once per process)."""
        pid = os.getpid()
        if self._pid == pid and self._thread is not None:
            return
        with self._wake:
            if self._pid == pid and self._thread is not None:
                return
            # Whatever a parent process held is not ours: fresh locks, queue, journal.
            self._pid = pid
            self._stopping = False
            self._lock = threading.Lock()
            self._flush_lock = threading.Lock()
            self._queue.clear()
            self._backlog = []
            self._held, self._held_size = [], 0
            self._journal = None
            self._journal_error = None
            if self.journal_root is not None:
                try:
                    self._journal = Journal(self.journal_root, fsync=self.fsync)
                except OSError as exc:  # e.g. a read-only data directory
                    self._journal_error = exc
                    log.error("writebehind.journal_unavailable", extra={"error": str(exc)})
            self._thread = threading.Thread(target=self._run, name="writebehind", daemon=True)
            self._thread.start()
        atexit.register(self.stop)

    def _run(self) -> None:
        while not self._stopping:
            try:
                if time.monotonic() >= self._next_scan:  # first thing, then every few s
                    self._next_scan = time.monotonic() + ORPHAN_SCAN_SECONDS
                    self.replay_orphans()
                with self._wake:
                    if not self._stopping:
                        self._wake.wait(self.interval_seconds)
                self.flush()
                for tick in self.on_tick:
                    tick()
            except Exception:  # the writer thread must outlive any one bad batch
                log.exception("writebehind.crashed")
                time.sleep(self.interval_seconds)


def init(res: Resources) -> WriteBehind | None:
    """Replay what dead processes left in the journal, then put a writer in
    ``res.write_behind`` unless the settings turn it off.

    With ``ENV=testing`` checks are written in the request, so a test reads
    back what it just checked.
    """
    s = res.settings
    root = s.data_dir.resolve() / JOURNAL_DIR
    try:  # the next start after a crash (in the gunicorn master, before the fork)
        replay_orphans(root, res.store, batch_size=s.write_behind_batch)
    except StorageUnreachable as exc:  # the workers' writers try again every few seconds
        log.warning("writebehind.replay_postponed", extra={"error": exc.message})
    except OSError as exc:
        log.error("writebehind.replay_failed", extra={"error": str(exc)})
    if s.write_behind_queue <= 0 or s.env == "testing":
        return None
    writer = WriteBehind(
        res.store,
        max_queue=s.write_behind_queue,
        batch_size=s.write_behind_batch,
        interval_seconds=s.write_behind_interval_seconds,
        journal_root=root if s.write_behind_journal else None,
        fsync=s.write_behind_fsync,
        dead_letters=root / DEAD_LETTERS,
    )
    res.write_behind = writer
    res.after_fork.append(writer.start)
    return writer


def record(res: Resources, records: list[CheckRecord]) -> None:
    """Record checks: through this process's writer when there is one, else in the
    request, where a refused batch is also retried row by row."""
    writer = res.write_behind
    if writer is not None:
        writer.submit(records)
        return
    root = res.settings.data_dir.resolve() / JOURNAL_DIR
    try:
        store_checks(res.store, records, max(len(records), 1), DeadLetters(root / DEAD_LETTERS))
    except StorageUnreachable as exc:  # nothing to keep it in: counted and logged, as before
        STORE_ERRORS.labels("record_check").inc(len(records))
        log.warning("store.record_failed", extra={"error": exc.message, "n": len(records)})


def stop(res: Resources) -> None:
    """Flush and stop this process's writer (gunicorn ``worker_exit``)."""
    writer = res.write_behind
    if writer is not None:
        writer.stop()

