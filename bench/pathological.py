"""Bench row: hostile comment text against ordinary text, side by side in one run.

Spammers write the text, so the scoring path must cost about the same per
character whatever the characters are (issue 16: ``"1." * 10000`` took 3.8 s).
For each text kind, the service's scoring path (``Scorer.score``, with reasons)
is timed on one comment of N and of 4N characters (CPU time of this thread,
best of a few), and on a batch of 50 comments of 20,000 characters (the
largest a 1 MB request can carry, the path that held a worker past gunicorn's
timeout). Columns: ms per comment at 4N, the growth from N to 4N (linear: about
4, quadratic: 16), the batch's seconds, and the ratio to ordinary text.

Usage: PYTHONPATH=$PWD python bench/pathological.py [--n 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# The repository first: bench/ holds a training.py that would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.registry.versions import Registry
from service.scoring.model import Scorer
from training.text import Comment
from training.train import bootstrap

KINDS: dict[str, str] = {
    "ordinary": "Thanks for the article, the council vote was closer than I thought. ",
    "'1.' * N": "1.",
    "'a.' * N": "a.",
    "'1-' * N": "1-",
    "'www.a' * N": "www.a",
    "links without </a>": '<a href="x">',
    "'a.com ' * N": "a.com ",
    "'a@a.' * N": "a@a.",
}


def cpu(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
    return best


def text_of(unit: str, chars: int) -> str:
    return (unit * (chars // len(unit) + 1))[:chars]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000, help="characters of the small text")
    parser.add_argument("--batch", type=int, default=50, help="comments of 20,000 characters")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        registry = Registry(Path(tmp))
        bootstrap(registry)
        version = registry.current("spam")
        assert version is not None
        scorer = Scorer(registry.load(version))
        rows = []
        for name, unit in KINDS.items():
            small, large = text_of(unit, args.n), text_of(unit, 4 * args.n)
            scorer.score([Comment(content=small)])  # warm memos
            t_small = cpu(lambda s=small: scorer.score([Comment(content=s)]))  # type: ignore[misc]
            t_large = cpu(lambda s=large: scorer.score([Comment(content=s)]))  # type: ignore[misc]
            batch = [Comment(content=text_of(unit, 20_000))] * args.batch
            t_batch = cpu(lambda b=batch: scorer.score(b), repeat=1)  # type: ignore[misc]
            rows.append((name, t_large * 1000, t_large / max(t_small, 1e-9), t_batch))
    base = rows[0][1]
    print(f"scoring path, one comment of {4 * args.n} chars and a batch of "
          f"{args.batch} x 20,000 chars (thread CPU time)")
    print(f"{'text':<22} {'ms/comment':>11} {'N->4N':>6} {'batch s':>8} {'x ordinary':>11}")
    for name, ms, growth, batch_s in rows:
        print(f"{name:<22} {ms:>11.1f} {growth:>6.1f} {batch_s:>8.2f} {ms / base:>11.1f}")


if __name__ == "__main__":
    main()
