"""Hold a steady rate of cache-miss checks for a minute; report latency percentiles and errors.

    python bench/steady.py                         # start commentmod, 50 % of capacity, 60 s
    python bench/steady.py --rate 300 --duration 120
    python bench/steady.py --url http://127.0.0.1:8000 --fraction 0.5

Without ``--rate`` the capacity is measured first with wrk (cache misses at
fixed concurrency) and the steady rate is ``--fraction`` of it. The load is
open-loop (bench/fixedrate.py): latencies count from each request's due time.
Exits 1 when any request failed.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# First, even when PYTHONPATH has it: the script's own directory (bench/, whose
# training.py would shadow the training package) must not come before it.
sys.path.insert(0, str(ROOT))

from bench import fixedrate, servers, wrk  # noqa: E402
from bench.run import (  # noqa: E402
    check_latency_buckets,
    comment_body,
    machine_info,
    server_p99_bound,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="steady-rate load test of POST /api/v1/check")
    p.add_argument("--url", help="an already running commentmod (default: start one)")
    p.add_argument("--rate", type=float, help="requests per second (default: measured)")
    p.add_argument("--fraction", type=float, default=0.5, help="share of capacity (0.5)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds to hold the rate (60)")
    p.add_argument("--connections", type=int, default=8, help="wrk connections for capacity")
    p.add_argument("--workers", type=int, default=None, help="gunicorn workers when starting")
    p.add_argument("--redis-url", default=servers.REDIS_URL)
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    args = p.parse_args(argv)
    if args.duration <= 0 or not 0 < args.fraction <= 1 or (args.rate is not None
                                                            and args.rate <= 0):
        p.error("--duration and --rate must be positive, --fraction in (0, 1]")
    return args


def hold(base: str, args: argparse.Namespace) -> int:
    token = secrets.token_hex(4)
    rate = args.rate
    if rate is None:
        cap = wrk.run(base + "/api/v1/check", "check_miss", duration=5,
                      connections=args.connections, env={"BENCH_TOKEN": token + "c"})
        rate = max(1.0, cap.rps * args.fraction)
        print(f"capacity: {cap.rps:,.0f} req/s at {args.connections} connections "
              f"(p99 {cap.p99_ms:.1f} ms); holding {args.fraction:.0%} = {rate:,.0f} req/s")
    else:
        print(f"holding {rate:,.0f} req/s")
    print(f"for {args.duration:.0f} s ...", flush=True)
    before = check_latency_buckets(base)
    result = fixedrate.run(base, "/api/v1/check", lambda i: comment_body(token, i),
                           rate=rate, duration=args.duration)
    in_app = server_p99_bound(before, check_latency_buckets(base))
    print(f"sent {result.sent:,}, ok {result.ok:,}, errors {result.errors}"
          + (f" {result.error_kinds}" if result.error_kinds else ""))
    print(f"achieved {result.achieved_rate:,.1f} req/s; driver at most "
          f"{result.max_lag_ms:.1f} ms late")
    print("latency ms: " + ", ".join(
        f"p{q:g} {result.percentile(q):.2f}" for q in (50, 90, 99, 99.9)
    ) + f", max {max(result.latencies_ms, default=float('nan')):.2f}")
    if in_app is not None:  # commentmod's own histogram: no queueing, no driver
        print(f"in the app (commentmod_request_seconds): p99 <= {in_app:g} ms")
    return 0 if result.errors == 0 and result.ok == result.sent else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine_info()
    print(f"machine: {info['nproc']} cores, load average {info['load1']:.2f}")
    if info["load1"] > 0.5 * info["nproc"]:
        print("WARNING: other work is running on this machine; latencies are inflated.")
    if args.url:
        return hold(args.url.rstrip("/"), args)
    workdir = Path(tempfile.mkdtemp(prefix="commentmod-steady-"))
    env = servers.commentmod_env(workdir, args.model_dir.resolve(), redis_url=args.redis_url)
    server = servers.start_commentmod("commentmod", workdir, env, args.workers)
    try:
        return hold(server.base, args)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
