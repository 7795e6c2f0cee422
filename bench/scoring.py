"""Micro-benchmark: scoring with scikit-learn vs the compiled lean scorer.

Trains the default pipeline on the shipped YouTube set once, then times, per
comment: scikit-learn's predict_proba on one comment and on a batch, the lean
scorer without and with explanations (with and without its word memo), and
Scorer.score (the service's path).
Usage: PYTHONPATH=$PWD python bench/scoring.py [--n 300]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The repository first: bench/ (the script's directory) holds a training.py that
# would shadow the training package, even with PYTHONPATH set.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import time
from collections.abc import Callable

from service.registry.lean import LeanScorer, compile_pipeline
from training.datasets import shipped_youtube
from training.features import Comment
from training.train import build_pipeline


def per_item_us(fn: Callable[[], object], items: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / items * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300, help="comments timed per measurement")
    args = parser.parse_args()
    examples = shipped_youtube()
    pipe = build_pipeline()
    pipe.fit([e.comment for e in examples], [e.label for e in examples])
    lean = compile_pipeline(pipe)
    assert lean is not None
    comments: list[Comment] = [e.comment for e in examples[: args.n]]

    def sklearn_single() -> None:
        for c in comments:
            pipe.predict_proba([c])

    def lean_single() -> None:
        for c in comments:
            lean.probability(c)

    def lean_explained() -> None:
        for c in comments:
            lean.margin(c, {})

    def lean_folded(scorer: LeanScorer) -> Callable[[], None]:
        return lambda: [scorer.explain(c) for c in comments]

    cold = compile_pipeline(pipe, memo_size=0)  # every word cut into n-grams anew
    assert cold is not None

    rows = [
        ("scikit-learn, one comment per call", per_item_us(sklearn_single, len(comments), 1)),
        ("scikit-learn, batch of n", per_item_us(lambda: pipe.predict_proba(comments), args.n)),
        ("lean, one comment", per_item_us(lean_single, len(comments))),
        ("lean, one comment + contributions", per_item_us(lean_explained, len(comments))),
        ("lean, + contributions folded into words", per_item_us(lean_folded(lean), len(comments))),
        ("  the same, no word memo", per_item_us(lean_folded(cold), len(comments))),
    ]
    from service.registry.versions import LoadedModel
    from service.scoring.model import Scorer

    thresholds = {"unsure": 0.3, "spam": 0.5, "discard": 1.0}
    scorer = Scorer(LoadedModel("bench", "spam", pipe, {"thresholds": thresholds}))
    rows.append(
        (
            "Scorer.score, one comment + reasons",
            per_item_us(lambda: [scorer.score([c]) for c in comments], len(comments)),
        )
    )
    for label, us in rows:
        print(f"{label:42} {us:9.1f} us/comment")


if __name__ == "__main__":
    main()
