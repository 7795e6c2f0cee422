"""The write-behind journal: what a dead process leaves is replayed once, by guid; a
refused row never takes good rows with it; a database away keeps the journal.
Runs on SQLite and PostgreSQL through ``store``; dead processes are real ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from service.store import schema as t
from service.store import writebehind
from service.store.db import CheckRecord, Store, engine_for, new_guid
from service.store.writebehind import (
    DEAD_LETTERS,
    LOCK,
    WriteBehind,
    decode,
    encode,
    replay_orphans,
)

SLOW = 60.0  # no test waits for the thread: only submit/flush/stop write
ROOT = Path(__file__).resolve().parents[1]


def record(i: int = 0, **changes: object) -> CheckRecord:
    values: dict[str, object] = dict(
        guid=new_guid(), site_id=None, source="api", content=f"comment number {i}",
        fields={"author": "bob"}, extra={"n": i}, spam_probability=0.2, verdict="ham",
        discard=False, reasons=[{"rule": "x"}], model_version="v1",
    )
    values.update(changes)
    return CheckRecord(**values)  # type: ignore[arg-type]


def guids(store: Store) -> list[str]:
    return list(store.read(lambda c: c.execute(select(t.comments.c.guid)).scalars().all()))


def count(store: Store) -> int:
    q = select(func.count()).select_from(t.comments)
    return int(store.read(lambda c: c.execute(q).scalar_one()))


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def dead_process_journal(root: Path, n: int, db_url: str = "sqlite://") -> list[str]:
    """A real process journals ``n`` checks, then SIGKILLs itself before committing
    any: what a worker killed by the OOM killer leaves behind. Returns the guids."""
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from service.store.db import Store, engine_for\n"
        "from service.store.writebehind import WriteBehind\n"
        "from tests.test_journal import record\n"
        f"w = WriteBehind(Store(engine_for({db_url!r})), interval_seconds=600, "
        f"journal_root=Path({str(root)!r}))\n"
        f"recs = [record(i) for i in range({n})]\n"
        "for i in range(0, len(recs), 3):\n"
        "    w.submit(recs[i:i + 3])\n"
        "print(' '.join(r.guid for r in recs), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         check=False)
    assert out.returncode == -9, out.stderr[-2000:]
    return out.stdout.split()


def test_encode_decode_round_trip_keeps_every_field() -> None:
    from datetime import UTC, datetime

    rec = record(3, received_at=datetime(2026, 11, 27, 12, 0, 1, 5, tzinfo=UTC),
                 toxicity={"scores": {"TOXICITY": 0.5}, "spans": [[0, 3, 0.5]]},
                 content="nul \x00 and é 🙂")
    lines = encode([rec, record(4)]).splitlines()
    assert len(lines) == 2
    assert decode(lines[0]) == rec
    with pytest.raises(ValueError):
        decode(lines[1][:-7])  # a torn write


def test_record_checks_stores_a_guid_once(store: Store) -> None:
    recs = [record(i) for i in range(5)]
    store.record_checks(recs)
    new = record(9)
    store.record_checks([*recs[2:], new])  # a replay overlapping what is stored
    assert sorted(guids(store)) == sorted(r.guid for r in [*recs, new])


def test_a_dead_process_journal_is_replayed_and_twice_stores_nothing_twice(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "journal"
    sent = dead_process_journal(root, 10)
    (dead,) = [d for d in root.iterdir() if d.is_dir()]
    shutil.copytree(dead, tmp_path / "copy")
    before = metric("commentmod_writebehind_replayed_total")
    assert replay_orphans(root, store) == 10
    assert sorted(guids(store)) == sorted(sent)
    assert not dead.exists()  # replayed journals are removed
    assert metric("commentmod_writebehind_replayed_total") - before == 10
    shutil.copytree(tmp_path / "copy", dead)  # the same journal once more
    assert replay_orphans(root, store) == 10  # all ignored by guid
    assert count(store) == 10
    assert replay_orphans(root, store) == 0  # nothing left


def test_a_live_process_journal_is_never_replayed(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "journal"
    writer = WriteBehind(store, interval_seconds=SLOW, journal_root=root)
    writer.submit([record(i) for i in range(4)])
    assert replay_orphans(root, store) == 0  # its lock is held: not an orphan
    assert count(store) == 0 and len(writer) == 4
    writer.stop()
    assert count(store) == 4
    assert list(root.iterdir()) == []  # a clean stop removes its journal


def test_a_torn_tail_keeps_the_good_lines_and_dead_letters_the_rest(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "journal"
    sent = dead_process_journal(root, 4)
    (dead,) = [d for d in root.iterdir() if d.is_dir()]
    segment = sorted(dead.glob("*.jsonl"))[-1]
    with segment.open("ab") as f:
        f.write(encode([record(99)])[:40])  # cut mid-line, as by a power loss
    assert replay_orphans(root, store) == 4
    assert sorted(guids(store)) == sorted(sent)
    (line,) = (root / DEAD_LETTERS).read_bytes().splitlines()
    assert orjson.loads(line)["raw"].startswith('{"check":')


def test_a_refused_row_is_a_dead_letter_and_never_drops_the_batch(
    store: Store, tmp_path: Path
) -> None:
    """Issue 16: one NUL (PostgreSQL) or a vanished site took a whole batch with it."""
    root = tmp_path / "journal"
    writer = WriteBehind(store, batch_size=50, interval_seconds=SLOW, journal_root=root)
    good = [record(i) for i in range(20)]
    missing_site = record(100, site_id=987654)  # a foreign key no site satisfies
    nul = record(101, content="spam \x00 here", fields={"author": "a\x00b"})
    before = metric("commentmod_writebehind_dead_letters_total")
    writer.submit([*good[:10], missing_site, *good[10:15], nul, *good[15:]])
    writer.stop()
    stored = set(guids(store))
    assert {r.guid for r in good} <= stored
    assert missing_site.guid not in stored
    postgres = store.engine.dialect.name == "postgresql"
    assert (nul.guid in stored) is not postgres  # SQLite takes NUL; PostgreSQL refuses it
    letters = [orjson.loads(x) for x in (root / DEAD_LETTERS).read_bytes().splitlines()]
    assert [x["check"]["guid"] for x in letters] == (
        [missing_site.guid, nul.guid] if postgres else [missing_site.guid])
    assert "ForeignKey" in letters[0]["error"] or "FOREIGN KEY" in letters[0]["error"]
    assert decode(b'{"check":' + orjson.dumps(letters[0]["check"]) + b"}") == missing_site
    assert metric("commentmod_writebehind_dead_letters_total") - before == len(letters)


def test_a_database_away_keeps_the_journal_until_it_is_back(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "journal"
    away = Store(engine_for("postgresql://postgres@127.0.0.1:9/none"))  # nothing listens
    writer = WriteBehind(away, batch_size=4, interval_seconds=SLOW, journal_root=root)
    recs = [record(i) for i in range(10)]
    writer.submit(recs[:6])
    assert writer.flush() == 0
    writer.submit(recs[6:])
    assert writer.flush() == 0
    assert not (root / DEAD_LETTERS).exists()  # a database away is not a bad row
    segments = sorted(root.glob("*/*.jsonl"))  # each tick closed one, kept on disk
    assert [len(p.read_bytes().splitlines()) for p in segments] == [6, 4, 0]
    assert all(held is None for _, _, held in writer._backlog)  # memory stays bounded
    writer.store = store  # the database is back
    assert writer.flush() == 10
    assert sorted(guids(store)) == sorted(r.guid for r in recs)
    writer.stop()
    assert list(root.iterdir()) == []


def without_thread(writer: WriteBehind) -> WriteBehind:
    """Open the writer's journal and let its thread end: a submit of ``batch_size``
    records would wake the thread to commit them beside the test, so only the test's
    own flush() commits here, and what a flush returns is what it did."""
    writer.start()
    thread = writer._thread
    assert thread is not None
    writer._stopping = True
    with writer._wake:
        writer._wake.notify()
    thread.join(10)
    assert not thread.is_alive()
    writer._stopping = False
    return writer


class GoesAwayAfter(Store):
    """The real database for the first ``n`` batches, then a server that is not there
    (nothing listens on port 9): a database lost in the middle of a segment."""

    def __init__(self, engine: object, n: int) -> None:
        super().__init__(engine)  # type: ignore[arg-type]
        self.left = n

    def record_checks(self, records: list[CheckRecord]) -> None:
        if self.left == 0:
            self.engine = engine_for("postgresql://postgres@127.0.0.1:9/none")
        self.left -= 1
        super().record_checks(records)


def test_a_segment_cut_short_by_an_outage_resumes_after_what_was_committed(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "journal"
    writer = without_thread(WriteBehind(GoesAwayAfter(store.engine, 1), batch_size=4,
                                        interval_seconds=SLOW, journal_root=root))
    recs = [record(i) for i in range(10)]
    writer.submit(recs)
    assert writer.flush() == 4  # the first batch, then the database went away
    assert count(store) == 4
    assert [(done, held) for _, done, held in writer._backlog] == [(4, None)]
    writer.store = store  # back
    assert writer.flush() == 6  # the rest of the segment, not the whole of it again
    assert sorted(guids(store)) == sorted(r.guid for r in recs)
    assert not (root / DEAD_LETTERS).exists()
    writer.stop()


def test_a_burst_is_read_back_from_the_journal_and_drops_nothing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past HELD_BYTES a segment's lines are not kept in memory: the writer reads them
    back from disk, a batch at a time, and commits every one."""
    monkeypatch.setattr(writebehind, "HELD_BYTES", 2_000)
    writer = without_thread(WriteBehind(store, max_queue=3, batch_size=4, interval_seconds=SLOW,
                                        journal_root=tmp_path / "journal"))
    recs = [record(i) for i in range(11)]
    assert writer.submit(recs[:5]) == 0 and writer.submit(recs[5:]) == 0
    assert writer._held is None and len(writer._queue) == 0  # nothing held in memory
    assert len(writer) == 11  # submitted, waiting in the journal
    assert writer.flush() == 11
    assert sorted(guids(store)) == sorted(r.guid for r in recs)
    writer.stop()


def test_a_segment_held_in_memory_survives_its_file(store: Store, tmp_path: Path) -> None:
    """A small segment's lines are also in memory: the writer commits them from there."""
    root = tmp_path / "journal"
    writer = without_thread(WriteBehind(store, interval_seconds=SLOW, journal_root=root))
    writer.submit([record(1), record(2)])
    assert writer._held is not None and len(writer) == 2
    for segment in root.glob("*/*.jsonl"):
        segment.unlink()
    assert writer.flush() == 2
    writer.stop()


def test_a_journal_that_cannot_be_written_falls_back_to_the_request(
    store: Store, tmp_path: Path
) -> None:
    writer = WriteBehind(store, interval_seconds=SLOW, journal_root=tmp_path / "journal")
    writer.start()
    assert writer._journal is not None
    os.close(writer._journal._fd)  # EBADF on the next append, like EIO or a full disk
    before = metric("commentmod_writebehind_journal_errors_total")
    assert writer.submit([record(1), record(2)]) == 0
    assert count(store) == 2  # written before the answer, not acknowledged on faith
    assert metric("commentmod_writebehind_journal_errors_total") - before == 1
    writer._journal._fd = os.open(os.devnull, os.O_WRONLY)
    writer.stop()


def test_a_segment_that_cannot_be_reopened_never_writes_into_a_reused_descriptor(
    store: Store, tmp_path: Path
) -> None:
    """The data directory vanishes under a live worker: the writer closes its segment,
    cannot open the next, and the freed descriptor number goes to the next client's
    socket. The next check must not be written into that socket (it was: a journal
    line arrived as an HTTP answer); it is written in the request instead."""
    root = tmp_path / "journal"
    writer = WriteBehind(store, interval_seconds=SLOW, journal_root=root)
    writer.submit([record(1)])
    journal = writer._journal
    assert journal is not None
    old_fd = journal._fd
    shutil.rmtree(root)
    writer.flush()  # rotates: closes the segment, cannot open the next
    reader, socket_like = os.pipe()  # takes the lowest free number: the closed segment's
    try:
        assert socket_like == old_fd or reader == old_fd
        assert writer.submit([record(2)]) == 0
        os.set_blocking(reader, False)
        with pytest.raises(BlockingIOError):
            os.read(reader, 65536)  # nothing was written into the "socket"
        assert count(store) == 2  # both checks stored: the second in its request
    finally:
        os.close(reader)
        os.close(socket_like)
        writer.stop()


def test_a_journal_that_cannot_be_opened_writes_checks_in_the_request(
    store: Store, tmp_path: Path
) -> None:
    (tmp_path / "journal").write_text("a file where the directory should be")
    writer = WriteBehind(store, interval_seconds=SLOW, journal_root=tmp_path / "journal")
    assert writer.submit([record(1)]) == 0  # no 500: the service keeps answering
    assert count(store) == 1  # and what it answered is committed
    writer.stop()


def test_the_next_start_replays_what_dead_workers_left(
    make_app: object, tmp_path: Path, sqlite_url: str
) -> None:
    """create_app (in the gunicorn master, before the fork) replays dead journals."""
    root = tmp_path / "var" / "journal"
    sent = dead_process_journal(root, 7, sqlite_url)
    assert (next(root.iterdir()) / LOCK).exists()
    app = make_app()  # type: ignore[operator]
    from service.resources import EXTENSION

    assert sorted(guids(app.extensions[EXTENSION].store)) == sorted(sent)
    assert [p for p in root.iterdir() if p.is_dir()] == []


def test_journal_commands_show_replay_and_retry(tmp_path: Path, sqlite_url: str) -> None:
    """``commentmod journal status|replay|retry-dead-letters``, as an operator runs them."""
    from click.testing import CliRunner

    from service.cli.main import main

    env = {"COMMENTMOD_DATA_DIR": str(tmp_path / "var"), "COMMENTMOD_DATABASE_URL": sqlite_url,
           "COMMENTMOD_LOG_LEVEL": "ERROR"}
    root = tmp_path / "var" / "journal"
    sent = dead_process_journal(root, 5, sqlite_url)

    def run(*args: str) -> tuple[int, str]:
        out = CliRunner().invoke(main, ["journal", *args], env=env, catch_exceptions=False)
        return out.exit_code, out.output

    code, out = run("status")
    status = orjson.loads(out)
    assert code == 0 and status["dead_letters"] == 0
    assert [(j["live"], j["records"]) for j in status["journals"]] == [(False, 5)]
    assert run("replay") == (0, "replayed 5 checks\n")
    assert run("replay") == (0, "replayed 0 checks\n")
    store = Store(engine_for(sqlite_url))
    assert sorted(guids(store)) == sorted(sent)

    # A row refused for a site that does not exist yet; once it does, the retry stores it.
    orphan = record(7, site_id=1)
    writer = WriteBehind(store, interval_seconds=SLOW, journal_root=root)
    writer.submit([orphan])
    writer.stop()
    assert orjson.loads(run("status")[1])["dead_letters"] == 1
    assert run("retry-dead-letters") == (1, "stored 0, still refused 1\n")
    store.ensure_site("https://late.example")
    assert run("retry-dead-letters") == (0, "stored 1, still refused 0\n")
    assert orphan.guid in guids(store)
    assert orjson.loads(run("status")[1]) == {
        "journals": [], "dead_letters": 0, "dead_letters_file": str(root / DEAD_LETTERS)}
    store.engine.dispose()
