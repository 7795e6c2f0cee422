"""Soak test: steady load on a served instance with Redis, periodic faults, labels
written through the feedback API meanwhile; ends with the counts.

    PYTHONPATH=$PWD .venv/bin/python bench/soak.py --minutes 5 [--out soak.json]
    # memory only: no faults, no Redis (every worker keeps its own flood table)
    PYTHONPATH=$PWD .venv/bin/python bench/soak.py --minutes 15 --warmup 3 \
        --fault-interval 0 --no-redis

It starts its own gunicorn server (``commentmod serve``), redis-server and (with
``--database-url`` unset) SQLite file, all throwaway, on free ports. Faults
alternate every ``--fault-interval`` seconds: Redis SIGKILLed then restarted
``--redis-down`` seconds later, a gunicorn worker SIGKILLed. Labels go through
``POST /api/v1/feedback`` when the server has it, else straight through
``service.api.checking.record_feedback`` on the same database (the foundation has no
feedback endpoint yet). At the end every acknowledged label is looked up.

Every ``--sample-seconds`` the resident set (VmRSS) of each gunicorn worker is
read from /proc; the summary gives each worker's smallest and largest RSS after
``--warmup`` minutes, and the spread (issue 22: flat within 5 MB). A worker
killed by a fault starts again from scratch, so measure memory with
``--fault-interval 0``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from procs import RedisServer, Server, post_json, start_server  # noqa: E402
from sqlalchemy import select  # noqa: E402

from service.store import migrate, schema  # noqa: E402
from service.store.db import Store, engine_for  # noqa: E402

WORDS = (
    "council", "budget", "vote", "article", "thanks", "reporting", "school", "road", "rates",
    "mayor", "subscribe", "channel", "free", "money", "click", "http://bit.ly/x", "win",
    "iphone", "cheap", "pills",
)


class Tally:
    def __init__(self) -> None:
        self.rss: list[tuple[float, int, float]] = []  # (seconds since start, worker pid, MB)
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.faults: Counter[str] = Counter()
        self.labels_acked: dict[str, int] = {}
        self.labels_refused = 0
        self.label_errors: Counter[str] = Counter()

    def record(self, kind: str, seconds: float | None = None) -> None:
        with self.lock:
            self.outcomes[kind] += 1
            if seconds is not None:
                self.latencies.append(seconds)


def classify(status: int, body: Any) -> str:
    if status == 200:
        return "ok"
    code = body.get("error", {}).get("code", "?") if isinstance(body, dict) else "?"
    return f"{status} {code}"


def load_client(base: str, stop: threading.Event, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        n = rng.randint(3, 25)
        text = " ".join(rng.choice(WORDS) for _ in range(n))
        if rng.random() < 0.3:  # repeats: cache hits where a cache exists
            text = "the council vote was close, thanks for the article"
        batch = rng.random() < 0.1
        path, body = ("/api/v1/check/batch", {"comments": [{"content": text}] * 10}) if batch \
            else ("/api/v1/check", {"content": text, "author": f"a{seed}"})
        started = time.perf_counter()
        try:
            status, answer = post_json(base + path, body, timeout=15)
            tally.record(classify(status, answer), time.perf_counter() - started)
        except OSError as exc:  # URLError and ConnectionError included
            reason = getattr(exc, "reason", exc)
            name = str(reason).split(":")[0] if isinstance(reason, ConnectionError) and \
                type(reason) is ConnectionError else type(reason).__name__
            tally.record(f"connection {name}")
            time.sleep(0.05)


def label_writer(base: str, key: str, token: str, stop: threading.Event, tally: Tally,
                 via_http: bool, db_url: str) -> None:
    res = direct_resources(db_url) if not via_http else None
    i = 0
    while not stop.is_set():
        i += 1
        content = f"soak {token} label {i} " + ("cheap pills http://spam.example" if i % 2
                                                  else "thanks for the reporting")
        label = "spam" if i % 2 else "ham"
        try:
            if res is None:
                status, body = post_json(base + "/api/v1/feedback",
                                         {"label": label, "content": content},
                                         {"Authorization": f"Bearer {key}"}, timeout=15)
            else:
                status, body = direct_label(res, label, content)
        except OSError as exc:
            with tally.lock:
                tally.label_errors[f"connection {type(exc).__name__}"] += 1
            continue
        with tally.lock:
            if status == 200:
                tally.labels_acked[content] = int(body["label_id"])
            elif status == 503:
                tally.labels_refused += 1
            else:
                tally.label_errors[classify(status, body)] += 1
        time.sleep(0.05)


def direct_resources(db_url: str) -> Any:
    from service.resources import Resources

    store = Store(engine_for(db_url))
    return Resources(settings=None, store=store, models=None)  # type: ignore[arg-type]


def direct_label(res: Any, label: str, content: str) -> tuple[int, Any]:
    from service.api.checking import record_feedback
    from service.errors import StorageError
    from training.features import Comment

    try:
        _, label_id = record_feedback(res, label=label, source="site", actor="soak",
                                      site_id=None, comment=Comment(content=content))
    except StorageError as exc:
        return 503, exc.to_dict()
    return 200, {"label_id": label_id}


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_sampler(server: Server, started: float, every: float, stop: threading.Event,
                tally: Tally) -> None:
    while not stop.wait(every):
        now = time.monotonic() - started
        for pid in sorted(server.workers()):
            mb = rss_mb(pid)
            if mb is not None:
                with tally.lock:
                    tally.rss.append((now, pid, mb))


def rss_summary(samples: list[tuple[float, int, float]], warmup: float) -> dict[str, Any]:
    """Per worker: RSS at the end of warm-up, at the end, smallest and largest after warm-up."""
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for t, pid, mb in samples:
        if t >= warmup:
            by_pid.setdefault(pid, []).append((t, mb))
    workers = {
        str(pid): {"first": round(s[0][1], 1), "last": round(s[-1][1], 1),
                   "min": round(min(mb for _, mb in s), 1),
                   "max": round(max(mb for _, mb in s), 1), "samples": len(s)}
        for pid, s in by_pid.items()
    }
    spread = max((w["max"] - w["min"] for w in workers.values()), default=float("nan"))
    return {"after_warmup_seconds": warmup, "workers": workers,
            "largest_spread_mb": round(spread, 1)}


def fault_injector(server: Server, redis_server: RedisServer, interval: float,
                   redis_down: float, stop: threading.Event, tally: Tally) -> None:
    turn = 0
    while not stop.wait(interval):
        turn += 1
        if turn % 2:
            redis_server.kill()
            tally.faults["redis killed"] += 1
            if stop.wait(redis_down):
                redis_server.start()
                return
            redis_server.start()
            tally.faults["redis restarted"] += 1
        else:
            pid = server.kill_worker()
            tally.faults["worker SIGKILLed"] += 1
            print(f"  killed worker {pid}", flush=True)


def stored_labels(db_url: str, token: str) -> dict[str, int]:
    engine = engine_for(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(schema.comments.c.content, schema.labels.c.id)
            .join(schema.labels, schema.labels.c.comment_id == schema.comments.c.id)
            .where(schema.comments.c.content.like(f"soak {token} %"))
        )
        out = {r[0]: int(r[1]) for r in rows}
    engine.dispose()
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fault-interval", type=float, default=15.0,
                        help="seconds; 0: no faults")
    parser.add_argument("--redis-down", type=float, default=3.0, help="seconds")
    parser.add_argument("--model-dir", type=Path, help="default: bootstrap a fresh model")
    parser.add_argument("--database-url", default="", help="default: a throwaway SQLite file")
    parser.add_argument("--out", type=Path, help="write the summary as JSON here")
    parser.add_argument("--no-redis", action="store_true",
                        help="serve without Redis: each worker counts floods in its own table")
    parser.add_argument("--flood-local-keys", type=int,
                        help="COMMENTMOD_FLOOD_LOCAL_KEYS for the server (default: its default)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="minutes before worker RSS counts towards the spread")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="commentmod-soak-"))
    token = f"{int(time.time())}"
    db_url = args.database_url or f"sqlite:///{work / 'soak.sqlite3'}"
    store = Store(engine_for(db_url))
    migrate.upgrade(store.engine)
    key, _ = store.create_key("https://soak.example")
    store.engine.dispose()
    redis_server = RedisServer(work / "redis")
    if not args.no_redis:
        redis_server.start()
    env = {"COMMENTMOD_ENV": "development", "COMMENTMOD_DATABASE_URL": db_url,
           "COMMENTMOD_REDIS_URL": "" if args.no_redis else redis_server.url,
           "COMMENTMOD_MODEL_DIR": str(args.model_dir or work / "models")}
    if args.flood_local_keys:
        env["COMMENTMOD_FLOOD_LOCAL_KEYS"] = str(args.flood_local_keys)
    print(f"soak: starting server in {work} (a first model is trained if none)", flush=True)
    server = start_server(work, env, workers=args.workers, timeout=600)
    via_http = post_json(server.base + "/api/v1/feedback", {})[0] != 404
    print(f"soak: {server.base}, {args.minutes} min, {args.clients} clients, labels via "
          f"{'POST /api/v1/feedback' if via_http else 'record_feedback (no endpoint)'}",
          flush=True)

    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=load_client, args=(server.base, stop, tally, n))
               for n in range(args.clients)]
    threads.append(threading.Thread(target=label_writer, args=(
        server.base, key, token, stop, tally, via_http, db_url)))
    started = time.monotonic()
    if args.fault_interval > 0:
        threads.append(threading.Thread(target=fault_injector, args=(
            server, redis_server, args.fault_interval, args.redis_down, stop, tally)))
    threads.append(threading.Thread(target=rss_sampler, args=(
        server, started, args.sample_seconds, stop, tally)))
    for t in threads:
        t.start()
    try:
        deadline = started + args.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(min(10.0, max(deadline - time.monotonic(), 0)))
            with tally.lock:
                latest = {pid: mb for _, pid, mb in tally.rss}
                print(f"  t={time.monotonic() - started:5.0f}s requests="
                      f"{sum(tally.outcomes.values())} labels={len(tally.labels_acked)} "
                      f"faults={sum(tally.faults.values())} worker RSS MB="
                      f"{[round(mb, 1) for _, mb in sorted(latest.items())]}", flush=True)
    finally:
        stop.set()
        elapsed = time.monotonic() - started
        for t in threads:
            t.join(timeout=60)
        after = [post_json(server.base + "/api/v1/check", {"content": f"after {i}"})[0]
                 for i in range(5)]
        workers_alive = len(server.workers())
        server.stop()
        redis_server.kill()
    stored = stored_labels(db_url, token)
    lost = [c for c, label_id in tally.labels_acked.items() if stored.get(c) != label_id]
    requests = sum(tally.outcomes.values())
    summary = {
        "seconds": round(elapsed, 1),
        "requests": requests,
        "requests_per_second": round(requests / elapsed, 1),
        "outcomes": dict(tally.outcomes.most_common()),
        "server_errors_5xx": sum(n for k, n in tally.outcomes.items() if k.startswith("5")),
        "latency_ms": {"p50": round(percentile(tally.latencies, 0.5) * 1000, 1),
                       "p99": round(percentile(tally.latencies, 0.99) * 1000, 1),
                       "max": round(max(tally.latencies, default=0) * 1000, 1)},
        "faults": dict(tally.faults),
        "labels_via": "http" if via_http else "record_feedback",
        "labels_written": len(tally.labels_acked),
        "labels_refused_503": tally.labels_refused,
        "label_errors": dict(tally.label_errors),
        "labels_stored": len(stored),
        "labels_lost": len(lost),
        "after_faults_status": after,
        "workers_alive_at_end": workers_alive,
        "worker_rss": rss_summary(tally.rss, args.warmup * 60),
        "redis": "off" if args.no_redis else "on",
        "machine_load_1min": os.getloadavg()[0],
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    ok = not lost and summary["server_errors_5xx"] == 0 and after == [200] * 5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
