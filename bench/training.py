"""Training time and peak memory for 10k, 100k and 1M comments.

The comments are synthesised by resampling the corpora that ship in
training/data (YouTube Spam Collection + discussion-comment ham): each one
is a real comment with a word dropped, a word of another comment of the same
class inserted, and sometimes a number appended, so that few fold away as
duplicates. Each size runs in a fresh process (peak RSS is per process);
10k and 100k use the in-memory trainer (two fits: held-out, then all), 1M
the out-of-core one, whose chunks are generated lazily so the million
comments never exist in memory at once.

    PYTHONPATH=$PWD .venv/bin/python bench/training.py            # all sizes
    PYTHONPATH=$PWD .venv/bin/python bench/training.py --sizes 10000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# This file is named like the `training` package: keep its directory off the path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

OUT_OF_CORE_FROM = 1_000_000


def corpus() -> list[tuple[str, int]]:
    from training.datasets import shipped_base

    examples = shipped_base()
    return [(e.comment.content, e.label) for e in examples]


def synthesise(n: int, seed: int = 7) -> Iterator[tuple[str, int]]:
    rng = random.Random(seed)
    base = corpus()
    words = {0: [], 1: []}  # type: dict[int, list[str]]
    for text, label in base:
        words[label].extend(text.split())
    for _ in range(n):
        text, label = base[rng.randrange(len(base))]
        tokens = text.split() or [text]
        if len(tokens) > 3:
            del tokens[rng.randrange(len(tokens))]
        tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(words[label]))
        if rng.random() < 0.3:
            tokens.append(str(rng.randrange(10_000)))
        yield " ".join(tokens), label


def chunks(n: int, size: int = 20_000) -> Iterator[list[object]]:
    from training.datasets import Example
    from training.features import Comment

    batch: list[object] = []
    for text, label in synthesise(n):
        batch.append(Example(Comment(content=text), label, "synthetic"))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_one(n: int, out_of_core_from: int = OUT_OF_CORE_FROM) -> dict[str, object]:
    from service.registry.versions import Registry
    from training.retrain import retrain, train_out_of_core

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(Path(tmp))
        if n >= out_of_core_from:
            result = train_out_of_core(
                chunks(n), reg, description=["synthetic"], progress=False  # type: ignore[arg-type]
            )
        else:
            data = Path(tmp) / "data.jsonl"
            with data.open("w") as fh:
                for text, label in synthesise(n):
                    fh.write(json.dumps({"content": text, "label": label}) + "\n")
            result = retrain(None, reg, [data], base=False, out_of_core=False, progress=False)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    overall = result.gate.candidate["overall"]
    return {
        "n": n,
        "trainer": result.summary["trainer"],
        "unique": result.summary["examples"],
        "seconds": round(seconds, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "roc_auc": round(overall["roc_auc"], 4),
        "mcc": round(overall["mcc"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--out-of-core-from", type=int, default=OUT_OF_CORE_FROM,
                        help="sizes from this one up train out of core")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.out_of_core_from)), flush=True)
        return
    print(f"{'comments':>10} {'trainer':>12} {'unique':>9} {'seconds':>8} {'CPU s':>7} "
          f"{'peak RSS':>9} {'AUC':>7} {'MCC':>7}", flush=True)
    for n in [int(x) for x in args.sizes.split(",")]:
        argv = [sys.executable, __file__, "--one", str(n),
                "--out-of-core-from", str(args.out_of_core_from)]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{r['n']:>10,} {r['trainer']:>12} {r['unique']:>9,} {r['seconds']:>8} "
              f"{r.get('cpu_seconds', '-'):>7} "
              f"{r['peak_rss_mb']:>6} MB {r['roc_auc']:>7} {r['mcc']:>7}", flush=True)


if __name__ == "__main__":
    main()
