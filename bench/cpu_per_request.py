"""CPU time each server process spends per request, scenario by scenario.

    python bench/cpu_per_request.py [--seconds 5] [--connections 2] [--ab-rounds 3] [--fsync]

Wall-clock throughput on a shared 2-core machine moves with whatever else
runs; the CPU a worker burns per request barely does. This starts the ceiling
and commentmod with one worker each, drives each scenario with wrk at low
concurrency, and divides the workers' and master's CPU time (user + system,
all threads, from /proc) by the requests served. The difference between a
scenario and the ceiling is what commentmod's own code costs.

The journal A/B (issue 21) then starts commentmod twice more, one worker each,
with the write-behind journal off (the code path before the journal) and on,
and measures the miss path on both in alternating rounds in the same run:
the ratio is what the journal costs a check (``--fsync`` adds a third server
that syncs the journal on every check).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# First, even when PYTHONPATH has it: the script's own directory (bench/, whose
# training.py would shadow the training package) must not come before it.
sys.path.insert(0, str(ROOT))

from bench import servers, wrk  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def measure(server: servers.Server, path: str, script: str, args: argparse.Namespace,
            env: dict[str, str]) -> tuple[float, float, float]:
    url = server.base + path
    wrk.run(url, script, duration=1.0, connections=args.connections, env=env)
    pids = [server.proc.pid, *server.worker_pids()]
    before = [cpu_seconds(p) for p in pids]
    result = wrk.run(url, script, duration=args.seconds, connections=args.connections,
                     env={**env, "BENCH_TOKEN": env["BENCH_TOKEN"] + "m"})
    after = [cpu_seconds(p) for p in pids]
    n = max(result.requests, 1)
    master = (after[0] - before[0]) / n * 1e6
    workers = sum(a - b for a, b in zip(after[1:], before[1:], strict=True)) / n * 1e6
    return result.rps, workers, master


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=2)
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--redis-url", default=servers.REDIS_URL)
    p.add_argument("--only", action="append",
                   choices=["miss", "rule", "hit", "akismet", "journal"])
    p.add_argument("--ab-rounds", type=int, default=3,
                   help="alternating rounds of the journal A/B on the miss path (0: skip)")
    p.add_argument("--fsync", action="store_true", help="also measure the journal with fsync")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting for commentmod's server, e.g. COMMENTMOD_HOT_PATH=false")
    args = p.parse_args(argv)
    token = secrets.token_hex(4)
    workdir = Path(tempfile.mkdtemp(prefix="commentmod-cpu-"))
    rows = []
    try:
        ceiling = servers.start_ceiling(workdir, 1, args.redis_url)
        try:
            rows.append(("ceiling", *measure(ceiling, "/", "check_miss", args,
                                             {"BENCH_TOKEN": token})))
            rows.append(("+redis", *measure(ceiling, "/redis", "check_miss", args,
                                            {"BENCH_TOKEN": token})))
        finally:
            ceiling.stop()
        env = servers.commentmod_env(workdir / "main", args.model_dir.resolve(),
                                     redis_url=args.redis_url)
        for pair in args.env:  # a lever's before/after on the same code
            name, _, value = pair.partition("=")
            env[name] = value
        key = servers.create_akismet_key(env, "bench.example")
        scenarios = {"miss", "rule", "hit", "akismet"} & set(args.only or ["miss"])
        app = servers.start_commentmod("commentmod", workdir / "main", env, 1) if (
            scenarios) else None
        try:
            plan = [("miss", "/api/v1/check", "check_miss"),
                    ("rule", "/api/v1/check", "check_rule"),
                    ("hit", "/api/v1/check", "check_hit"),
                    ("akismet", "/1.1/comment-check", "akismet")]
            for name, path, script in plan:
                if (args.only and name not in args.only) or app is None:
                    continue
                lua_env = {"BENCH_TOKEN": token, "BENCH_AKISMET_KEY": key}
                rows.append((name, *measure(app, path, script, args, lua_env)))
        finally:
            if app is not None:
                app.stop()
        ab = journal_ab(args, workdir, token) if (
            args.ab_rounds > 0 and (not args.only or "journal" in args.only)) else []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = rows[0][2] + rows[0][3]
    print(f"{'scenario':10} {'req/s':>7} {'worker us':>10} {'master us':>10} {'vs ceiling':>10}")
    for name, rps, worker_us, master_us in rows:
        print(f"{name:10} {rps:7.0f} {worker_us:10.0f} {master_us:10.0f} "
              f"{(worker_us + master_us) / base:10.2f}x")
    if ab:
        print_ab(ab)
    return 0


JOURNAL_VARIANTS = [
    ("journal off (before)", {"COMMENTMOD_WRITE_BEHIND_JOURNAL": "false"}),
    ("journal on (after)", {}),
]


def journal_ab(args: argparse.Namespace, workdir: Path, token: str) -> list[tuple[str, list[float],
                                                                                  list[float]]]:
    """The miss path with the journal off and on, servers up side by side, measured in
    alternating rounds; per variant the CPU µs per request and req/s of each round."""
    variants = list(JOURNAL_VARIANTS)
    if args.fsync:
        variants.append(("journal + fsync", {"COMMENTMOD_WRITE_BEHIND_FSYNC": "true"}))
    apps = []
    try:
        for i, (name, extra) in enumerate(variants):
            env = {**servers.commentmod_env(workdir / f"ab{i}", args.model_dir.resolve(),
                                            redis_url=args.redis_url), **extra}
            apps.append(servers.start_commentmod(name, workdir / f"ab{i}", env, 1))
        cpu: list[list[float]] = [[] for _ in variants]
        rps: list[list[float]] = [[] for _ in variants]
        for r in range(args.ab_rounds):
            order = range(len(apps)) if r % 2 == 0 else reversed(range(len(apps)))
            for i in order:
                got = measure(apps[i], "/api/v1/check", "check_miss", args,
                              {"BENCH_TOKEN": f"{token}ab{i}r{r}"})
                rps[i].append(got[0])
                cpu[i].append(got[1] + got[2])
        return [(name, cpu[i], rps[i]) for i, (name, _) in enumerate(variants)]
    finally:
        for app in apps:
            app.stop()


def print_ab(ab: list[tuple[str, list[float], list[float]]]) -> None:
    base = sum(ab[0][1]) / len(ab[0][1])
    print(f"\nmiss path, journal A/B ({len(ab[0][1])} alternating rounds, one worker each)")
    print(f"{'variant':22} {'req/s':>7} {'CPU us/req':>10} {'vs off':>7}  rounds (us/req)")
    for name, cpu, rps in ab:
        mean = sum(cpu) / len(cpu)
        rounds = " ".join(f"{c:.0f}" for c in cpu)
        print(f"{name:22} {sum(rps) / len(rps):7.0f} {mean:10.0f} {mean / base:7.3f}  {rounds}")


if __name__ == "__main__":
    sys.exit(main())
