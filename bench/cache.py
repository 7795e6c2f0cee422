"""Benchmark of the verdict cache under the production gunicorn config.

Starts a throwaway redis-server and two ``commentmod serve`` instances (the
production gunicorn settings, default worker count): one with
``COMMENTMOD_REDIS_URL`` pointing at that Redis, one pointing at a dead port.
Then drives them with ``wrk`` at fixed concurrency, about ``--duration`` seconds
per phase, and prints requests/s and p50/p99 per phase:

- ``healthz (ceiling)``: the same server's cheapest JSON endpoint;
- ``cache hit``: the same comment every request;
- ``cache miss``: a new comment every request (counter + run token: wrk's
  ``math.random`` has a fixed seed, field notes);
- ``redis down, hit`` / ``redis down, miss``: the same two, Redis unreachable.

The database is a throwaway PostgreSQL database when 127.0.0.1:5432 answers
(as in production), else SQLite. wrk and the servers share the machine's
cores: compare rows of one run, not absolute numbers across runs.

Usage (from the worktree root)::

    PYTHONPATH=$PWD /work/main/.venv/bin/python bench/cache.py [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

LUA = r"""
local token = "run"
local mode = "hit"
local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  token = args[1] or token
  mode = args[2] or mode
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  local text
  if mode == "hit" then
    text = "Great reporting, thank you."
  else
    counter = counter + 1
    text = string.format("Comment %s-%d-%d on the council budget and the vote", token, tid, counter)
  end
  return wrk.format(nil, nil, nil, '{"content":"' .. text .. '"}')
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def post(base: str, content: str) -> dict[str, object]:
    req = urllib.request.Request(
        base + "/api/v1/check",
        data=json.dumps({"content": content}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        body: dict[str, object] = json.loads(r.read())
        return body


def pg_database() -> tuple[str, object] | None:
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"commentmod_bench_{os.getpid()}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no PostgreSQL here: fall back to SQLite
        print(f"PostgreSQL unavailable ({type(exc).__name__}); using SQLite", file=sys.stderr)
        return None
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", admin


def drop_pg(url: str, admin: object) -> None:
    from sqlalchemy import text

    name = url.rsplit("/", 1)[1]
    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def wrk(url: str, script: Path, args: argparse.Namespace, *extra: str) -> dict[str, float]:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
           "--latency", "-s", str(script), url, "--", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {int(p): _ms(v, u) for p, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s|m)\b", out)}
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps, "p50": pct[50], "p99": pct[99], "requests": total,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": 1 if errors else 0,
    }


def micro(model_dir: Path, redis_url: str, dead_url: str, tmp: Path, n: int = 300) -> None:
    """In-process cost of one check through the cache (no HTTP, no database write):
    CPU time is less disturbed by a busy machine than wall time."""
    from service.app import create_app
    from service.resources import EXTENSION
    from training.features import Comment

    def app_cache(url: str) -> tuple[object, object]:
        app = create_app({"env": "testing", "model_dir": model_dir, "log_level": "ERROR",
                          "data_dir": tmp / "micro", "redis_url": url,
                          "database_url": f"sqlite:///{tmp / 'micro.sqlite3'}"})
        res = app.extensions[EXTENSION]
        return res.cache, res.models.scorer()

    hit = [Comment(content="Great reporting, thank you.")]
    rows = []
    for label, url, unique in (
        ("hit, local tier only", "", False),
        ("hit, Redis round trip", redis_url, False),
        ("miss, Redis", redis_url, True),
        ("hit, Redis down", dead_url, False),
        ("miss, Redis down", dead_url, True),
    ):
        cache, scorer = app_cache(url)
        cache.score(scorer, hit)  # type: ignore[attr-defined]
        token = secrets.token_hex(4)
        batches = [[Comment(content=f"Comment {token} {i} on the council budget and the vote")]
                   if unique else hit for i in range(n)]
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in batches:
            cache.score(scorer, batch)  # type: ignore[attr-defined]
        rows.append((label, (time.process_time() - cpu) / n * 1e6,
                     (time.perf_counter() - wall) / n * 1e6))
    print(f"\nin-process, one comment per check, {n} checks each (us per check)")
    print(f"{'path':24} {'cpu us':>8} {'wall us':>8}")
    for label, cpu_us, wall_us in rows:
        print(f"{label:24} {cpu_us:8.0f} {wall_us:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: the config's)")
    parser.add_argument("--model-dir", type=Path, help="reuse a registry instead of training")
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("redis-server"):
        sys.exit("needs wrk and redis-server on PATH")

    tmp = Path(tempfile.mkdtemp(prefix="commentmod-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    pg = pg_database()
    try:
        redis_port = free_port()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL))
        model_dir = args.model_dir or tmp / "models"
        db_url = pg[0] if pg else f"sqlite:///{tmp / 'bench.sqlite3'}"
        base_env = {
            **os.environ, "PYTHONPATH": str(ROOT), "COMMENTMOD_ENV": "development",
            "COMMENTMOD_MODEL_DIR": str(model_dir), "COMMENTMOD_DATABASE_URL": db_url,
            "COMMENTMOD_LOG_LEVEL": "WARNING", "COMMENTMOD_TOXICITY_BOOTSTRAP": "false",
        }
        servers = {}
        for name, redis_url in (("up", f"redis://127.0.0.1:{redis_port}/0"),
                                ("down", f"redis://127.0.0.1:{free_port()}/0")):
            port = free_port()
            env = {**base_env, "COMMENTMOD_REDIS_URL": redis_url,
                   "COMMENTMOD_DATA_DIR": str(tmp / f"var-{name}")}
            argv = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
            if args.workers:
                argv += ["--workers", str(args.workers)]
            log = (tmp / f"serve-{name}.log").open("wb")
            procs.append(subprocess.Popen(argv, env=env, cwd=tmp, stdout=log,
                                          stderr=subprocess.STDOUT))
            servers[name] = f"http://127.0.0.1:{port}"
            wait_http(servers[name] + "/healthz")  # the first one trains the model if needed

        script = tmp / "check.lua"
        script.write_text(LUA)
        token = secrets.token_hex(4)
        hit_text = "Great reporting, thank you."  # a short reply: never a flood
        for base in servers.values():
            for _ in range(3):
                post(base, hit_text)  # warm every worker's path once
        assert post(servers["up"], hit_text)["cached"] is True
        phases = [
            ("healthz (ceiling)", servers["up"] + "/healthz", "hit"),
            ("cache hit", servers["up"], "hit"),
            ("cache miss", servers["up"], "miss"),
            ("redis down, hit", servers["down"], "hit"),
            ("redis down, miss", servers["down"], "miss"),
        ]
        rows = []
        for label, url, mode in phases:
            target = url if url.endswith("healthz") else url + "/api/v1/check"
            if url.endswith("healthz"):
                (tmp / "get.lua").write_text("")
                res = wrk(target, tmp / "get.lua", args)
            else:
                res = wrk(target, script, args, f"{token}-{label[:5]}", mode)
            rows.append((label, res))
        down = post(servers["down"], hit_text)
        print(f"\nwrk -t{args.threads} -c{args.connections}, {args.duration} s per phase, "
              f"gunicorn config service/gunicorn_conf.py, database "
              f"{'PostgreSQL' if pg else 'SQLite'}; {os.cpu_count()} cores shared with wrk")
        print(f"{'phase':20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
              f"{'non-2xx':>8} {'vs ceiling':>10}")
        ceiling = rows[0][1]["rps"]
        for label, r in rows:
            print(f"{label:20} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} "
                  f"{int(r['requests']):9d} {int(r['non2xx']):8d} {r['rps'] / ceiling:10.2f}")
        hit, miss = rows[1][1], rows[2][1]
        print(f"\nhit/miss throughput ratio: {hit['rps'] / miss['rps']:.2f}; "
              f"redis-down answer after the run: verdict={down['verdict']} "
              f"cached={down['cached']}")
        micro(model_dir, f"redis://127.0.0.1:{redis_port}/1",
              f"redis://127.0.0.1:{free_port()}/0", tmp)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pg:
            drop_pg(*pg)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
