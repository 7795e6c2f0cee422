"""Where one ``POST /api/v1/check`` spends its CPU, stage by stage, in one process.

    python bench/profile_check.py [--n 500] [--model-dir models] [--database-url URL]
    python bench/profile_check.py --pyinstrument      # a call tree as well

CPU time (``time.process_time``), not wall time, so other work on a busy
machine inflates the numbers less. The stages are measured separately:
Flask's own request handling (a bare JSON endpoint in the same app), parsing,
scoring, recording the check (one transaction, and batched as the write-behind
writer does), metrics, and the JSON answer.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# First, even when PYTHONPATH has it: the script's own directory (bench/, whose
# training.py would shadow the training package) must not come before it.
sys.path.insert(0, str(ROOT))


def cpu_us(fn: Callable[[], Any], n: int, clock: Callable[[], float] = time.process_time) -> float:
    for _ in range(min(50, n)):
        fn()
    start = clock()
    for _ in range(n):
        fn()
    return (clock() - start) / n * 1e6


def submit_rows(store: Any, tmp: Path, record: Callable[[int], Any], n: int) -> None:
    """What handing one check to the write-behind costs the request thread, with the
    journal off (before issue 21), on, and on with fsync: CPU of this thread only
    (``time.thread_time``), so the writer thread's batches are not counted here."""
    from service.store.writebehind import WriteBehind

    variants = [("no journal", None, False), ("journaled", tmp / "j1", False),
                ("journaled + fsync", tmp / "j2", True)]
    for name, root, fsync in variants:
        writer = WriteBehind(store, max_queue=10 * n + 1000, batch_size=10**9,
                             interval_seconds=3600, journal_root=root, fsync=fsync)
        recs = [[record(i)] for i in range(n + 60)]
        it = iter(recs)
        us = cpu_us(lambda w=writer, it=it: w.submit(next(it)), n, time.thread_time)
        writer.stop()
        print(f"{'  write-behind submit, ' + name:45} {us:9.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="CPU per stage of one cache-miss check")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--database-url", default="")
    p.add_argument("--pyinstrument", action="store_true")
    args = p.parse_args(argv)

    from flask import jsonify, request

    from service import metrics
    from service.api.checking import check_comments
    from service.api.comments import parse_comment
    from service.app import create_app
    from service.resources import EXTENSION, Resources
    from service.scoring.verdicts import score_comments
    from service.store.db import CheckRecord, new_guid
    from training.features import Comment

    tmp = Path(tempfile.mkdtemp(prefix="commentmod-profile-"))
    app = create_app({
        "env": "testing", "model_dir": args.model_dir.resolve(), "data_dir": tmp,
        "database_url": args.database_url or f"sqlite:///{tmp / 'p.sqlite3'}",
        "log_level": "WARNING", "secret_key": "profile",
    })

    @app.post("/bare")
    def bare() -> Any:
        return jsonify(ok=True, chars=len(request.get_json(force=True).get("content", "")))

    res: Resources = app.extensions[EXTENSION]
    client = app.test_client()
    counter = itertools.count()

    def body() -> dict[str, str]:
        n = next(counter)
        return {"content": f"Check out my channel and subscribe, new videos weekly {n}",
                "author": f"reader{n}", "user_ip": "203.0.113.7"}

    def record(i: int) -> CheckRecord:
        return CheckRecord(new_guid(), None, "api", f"comment {i}", {"author": "a"}, {}, 0.1,
                           "ham", False, [], "v")

    scorer = res.models.scorer()
    comment = Comment(content="Check out my channel and subscribe, new videos weekly")
    outcome = score_comments(scorer, [comment])[0]
    rows: list[tuple[str, Callable[[], Any] | None]] = [
        ("whole request (record in the request)",
         lambda: client.post("/api/v1/check", json=body())),
        ("  test client + Flask, bare JSON endpoint", lambda: client.post("/bare", json=body())),
        ("  parse_comment", lambda: parse_comment(body(), res.settings)),
        ("  score (rules + model + reasons)", lambda: score_comments(scorer, [comment])),
        ("  record one check, own transaction", lambda: res.store.record_checks([record(0)])),
        ("  record one check, in batches of 500", None),  # per row, measured below
        ("  metrics: 2 counters + 1 histogram", lambda: (
            metrics.REQUESTS.labels("api.check", "200").inc(),
            metrics.LATENCY.labels("api.check").observe(0.001),
            metrics.VERDICTS.labels("ham", "api").inc())),
        ("  answer body (app.json.dumps)",
         lambda: app.json.dumps({**outcome.to_dict(), "guid": new_guid(), "cached": False})),
    ]
    print(f"model {scorer.version}; {args.n} iterations each; microseconds of CPU per call")
    for name, fn in rows:
        if fn is None:
            us = cpu_us(lambda: res.store.record_checks([record(i) for i in range(500)]),
                        max(1, args.n // 100)) / 500
        else:
            us = cpu_us(fn, args.n)
        print(f"{name:45} {us:9.1f}")
    with app.app_context():
        us = cpu_us(lambda: check_comments(res, [comment], site_id=None, source="api",
                                           store=False), args.n)
    print(f"{'  check_comments without recording':45} {us:9.1f}")
    submit_rows(res.store, tmp, record, args.n)
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(args.n):
            client.post("/api/v1/check", json=body())
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False))
    res.store.engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
