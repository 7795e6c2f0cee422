"""Worker memory with the spam and the toxicity model loaded (issue 19, item 4).

    python bench/shared_models.py                         # this checkout, both cases
    python bench/shared_models.py --root before=/work/main --root after=.

For each checkout (``--root LABEL=DIR``, default: this one) and each case, starts
``commentmod serve`` (preload, sync workers, exactly as in production) on a copy
of one model directory that holds a spam and a toxicity model, and reads every
worker's RSS, PSS and USS (bench/servers.py) at three points:

- ``idle``: the workers just started;
- ``spam``: after ``--requests`` cache-miss checks (``/api/v1/check``) of real
  comments (the Wikipedia Talk test set that ships in training/data/toxicity);
- ``perspective``: after as many Perspective ``comments:analyze`` requests
  (every served attribute, with spans) of other real comments (Perspective's own
  2,000-comment sample), which need the toxicity model;
- ``batch`` (with ``--batch-seconds S``): after S seconds of 100-comment batches
  of new comments at full speed (bench/run.py's batch row, through wrk), which
  fill every worker's verdict tier and keep its writer busy: the most a worker
  holds in the bench, now with both models touched.

Diverse comments matter: RSS counts each page of a model a worker has touched,
shared or not, and a few repeated texts touch few.

The cases:

- ``at-start``: the toxicity model is current when the server starts;
- ``after-start``: it is not; it is promoted (``commentmod models promote``)
  after the spam requests, as when the background bootstrap finishes or an
  operator promotes a new version, and the bench waits until the Perspective
  endpoint answers before its requests.

The checkouts run one after another in the same invocation, on the same
machine, with the same model files. Requests come from ``--connections``
threads so that every sync worker serves some of each kind.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import servers, wrk  # noqa: E402

CASES = ("at-start", "after-start")
STAGES = ("idle", "spam", "perspective")
RSS_LIMIT_MB = 150.0
DATA = ROOT / "training" / "data" / "toxicity"
# Real comments, so that the models' tables are read as diverse traffic reads them
# (a worker's RSS counts each page of a mapped model it has touched).
PERSPECTIVE_TEXTS = (DATA / "perspective_wikipedia_2k_score_sample_20180829.csv.gz", "comment_text")
CHECK_TEXTS = (DATA / "wiki_toxicity_nonfuzzed_testset.csv.gz", "comment")
MAX_CHARS = 4000


@dataclass
class Reading:
    root: str
    case: str
    stage: str
    workers: list[dict[str, float]] = field(default_factory=list)
    master: dict[str, float] = field(default_factory=dict)
    status: dict[int, int] = field(default_factory=dict)


def post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            return int(r.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)
    except OSError:
        return 0


def drive(url: str, make: Any, n: int, connections: int) -> dict[int, int]:
    """``n`` requests from ``connections`` threads; status -> count."""
    counts: dict[int, int] = {}
    lock = threading.Lock()
    next_i = iter(range(n))

    def run() -> None:
        while True:
            with lock:
                i = next(next_i, None)
            if i is None:
                return
            status = post(url, make(i))
            with lock:
                counts[status] = counts.get(status, 0) + 1

    threads = [threading.Thread(target=run) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def corpus(path: Path, column: str) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        texts = [row[column].strip() for row in csv.DictReader(fh)]
    return [t for t in texts if t and len(t) <= MAX_CHARS]


def check_body(texts: list[str], token: str, i: int) -> dict[str, Any]:
    return {"content": f"{texts[i % len(texts)]} ({token} {i})",
            "author": f"reader{i % 97}", "user_ip": f"203.0.113.{i % 250}"}


def analyze_body(attributes: list[str], texts: list[str], token: str, i: int) -> dict[str, Any]:
    return {
        "comment": {"text": f"{texts[i % len(texts)]} ({token} {i})"},
        "requestedAttributes": {a: {} for a in attributes},
        "spanAnnotations": True,
        "languages": ["en"],
    }


def cli(root: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [servers.python(), "-m", "service.cli", *args], env=env, cwd=root,
        capture_output=True, text=True, timeout=300, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"commentmod {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def read(server: servers.Server, root: str, case: str, stage: str,
         status: dict[int, int] | None = None) -> Reading:
    workers = [servers.worker_memory(pid) for pid in server.worker_pids()]
    return Reading(root, case, stage, [w for w in workers if w],
                   servers.worker_memory(server.proc.pid), status or {})


def wait_for_toxicity(server: servers.Server, url: str, body: dict[str, Any],
                      timeout: float) -> float:
    """Seconds until every one of 8 Perspective requests in a row answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(post(url, body) == 200 for _ in range(8)):
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"no toxicity model served {timeout:.0f} s after the promotion; "
                       f"see {server.log_path}:\n{server.log_tail()}")


def run_case(label: str, root: Path, case: str, models: Path, spam: str, toxicity: str,
             attributes: list[str], args: argparse.Namespace) -> list[Reading]:
    checks, comments = corpus(*CHECK_TEXTS), corpus(*PERSPECTIVE_TEXTS)
    work = Path(tempfile.mkdtemp(prefix=f"shared-models-{label}-{case}-"))
    model_dir = work / "models"
    model_dir.mkdir()
    for version in (spam, toxicity):
        shutil.copytree(models / version, model_dir / version)
    pointers = {"spam": spam} if case == "after-start" else {"spam": spam, "toxicity": toxicity}
    (model_dir / "current.json").write_text(json.dumps(pointers))
    env = servers.commentmod_env(work, model_dir, redis_url=args.redis_url)
    env["PYTHONPATH"] = str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")
    if args.workers:
        env["COMMENTMOD_WORKERS"] = str(args.workers)
    (work / "var").mkdir()
    key = cli(root, env, "keys", "create", "--site", "https://bench.example").split()[0]
    port = servers.free_port()
    argv = [servers.python(), "-m", "service.cli", "serve", "--port", str(port),
            "--no-bootstrap"]
    log_path = work / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    server = servers.Server(f"{label}-{case}", proc, port, log_path, env)
    token = f"{label}-{case}-{time.time_ns()}"
    readings = []
    try:
        server.wait_ready()
        time.sleep(2)  # every worker booted
        readings.append(read(server, label, case, "idle"))
        check = server.base + "/api/v1/check"
        status = drive(check, lambda i: check_body(checks, token, i), args.requests,
                       args.connections)
        readings.append(read(server, label, case, "spam", status))
        analyze = f"{server.base}/v1alpha1/comments:analyze?key={key}"
        if case == "after-start":
            cli(root, env, "models", "promote", toxicity)
            took = wait_for_toxicity(server, analyze,
                                     analyze_body(attributes, comments, token, 0), args.timeout)
            print(f"  {label} {case}: toxicity served {took:.1f} s after the promotion",
                  flush=True)
            time.sleep(args.settle)
        status = drive(analyze, lambda i: analyze_body(attributes, comments, token, i),
                       args.requests, args.connections)
        readings.append(read(server, label, case, "perspective", status))
        if args.batch_seconds > 0:
            result = wrk.run(server.base + "/api/v1/check/batch", "batch",
                             duration=args.batch_seconds, connections=args.connections,
                             env={"BENCH_TOKEN": token + "b"}, timeout=30)
            answered = {200: result.requests - result.errors}
            readings.append(read(server, label, case, "batch",
                                 {**answered, 0: result.errors} if result.errors else answered))
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return readings


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{hi:.0f}" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}"


def table(readings: list[Reading]) -> str:
    lines = [
        "| checkout | case | after | workers | worker RSS MB | worker PSS MB | "
        "worker USS MB | master RSS MB | answers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in readings:
        answers = ", ".join(f"{n}x{s}" for s, n in sorted(r.status.items())) or "-"
        lines.append(
            f"| {r.root} | {r.case} | {r.stage} | {len(r.workers)} | "
            f"{fmt([w['rss'] for w in r.workers])} | {fmt([w['pss'] for w in r.workers])} | "
            f"{fmt([w['uss'] for w in r.workers])} | {r.master.get('rss', 0):.0f} | {answers} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", action="append", default=[],
                        help="LABEL=DIR of a checkout to measure (repeatable; default: this one)")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models",
                        help="where the spam and toxicity versions are (their current ones)")
    parser.add_argument("--case", action="append", choices=CASES, default=[])
    parser.add_argument("--requests", type=int, default=1000,
                        help="checks, then Perspective requests (real comments, in turn)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--redis-url", default=os.environ.get("COMMENTMOD_REDIS_URL", ""))
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds after the first answers before the measured requests")
    parser.add_argument("--batch-seconds", type=float, default=0.0,
                        help="then this long of 100-comment batches (0: none)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from service.registry.versions import Registry  # this checkout's, to read the pointers

    registry = Registry(args.model_dir)
    spam, toxicity = registry.current("spam"), registry.current("toxicity")
    if spam is None or toxicity is None:
        sys.exit(f"{args.model_dir} needs a current spam and toxicity model "
                 "(commentmod train --promote; commentmod toxicity train --promote)")
    attributes = list(registry.metadata(toxicity)["attributes"])
    roots = [r.split("=", 1) for r in args.root] or [["this", str(ROOT)]]
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} (1 min) "
          f"{load[1]:.2f} (5 min); models {spam}, {toxicity}", flush=True)
    readings: list[Reading] = []
    for case in args.case or list(CASES):
        for label, root in roots:
            readings += run_case(label, Path(root).resolve(), case, args.model_dir, spam,
                                 toxicity, attributes, args)
    print()
    print(table(readings))
    last = "batch" if args.batch_seconds > 0 else "perspective"
    final = [r for r in readings if r.stage == last]
    print()
    for r in final:
        rss = max((w["rss"] for w in r.workers), default=0.0)
        ok = rss < RSS_LIMIT_MB and set(r.status) == {200}
        print(f"- {r.root} {r.case}: largest worker RSS {rss:.0f} MB with both models, "
              f"after {last} (target < {RSS_LIMIT_MB:.0f}) - {'met' if ok else 'NOT met'}")
    load = os.getloadavg()
    print(f"load average now {load[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in readings], indent=2))


if __name__ == "__main__":
    main()
