"""Evaluate the current toxicity model on the held-out sets and time single-comment scoring.

    PYTHONPATH=$PWD python bench/toxicity.py [--model-dir models] [--version V]

Prints ROC AUC against the held-out Wikipedia Talk half, agreement with
Perspective's own scores on its 2,000-comment sample (AUC against its score
>= 0.5, Spearman; not for TOXICITY, which that sample trains), span F1 on the
Toxic Spans trial file, the identity
sentences' scores, and per-comment latency of scores and spans.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.registry.versions import Registry
from service.scoring.toxicity import load_toxicity_scorer
from training.toxicity import default_data_dir, evaluate, format_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--version")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    registry = Registry(args.model_dir)
    version = args.version or registry.current("toxicity")
    if version is None:
        sys.exit("no toxicity model: commentmod toxicity train --promote")
    data = args.data or default_data_dir()
    scorer = load_toxicity_scorer(registry, version)  # what a worker serves
    print(f"model {version}\n")
    pipeline = registry.load(version).pipeline  # the evaluation reads the pipeline itself
    print(format_evaluation(evaluate(pipeline, data, scorer.span_threshold)))
    text = "I am 56 years old, I am not your stupid junior pal. What you say makes no sense."
    timings = {"scores": [], "scores+spans": []}
    for _ in range(200):
        t0 = time.perf_counter()
        rows, _ = scorer.score([text])
        t1 = time.perf_counter()
        scorer.spans(text, rows[0], "TOXICITY")
        t2 = time.perf_counter()
        timings["scores"].append((t1 - t0) * 1e3)
        timings["scores+spans"].append((t2 - t0) * 1e3)
    print("\nsingle comment (82 chars), 200 runs:")
    for name, values in timings.items():
        values.sort()
        print(f"  {name:13} median {statistics.median(values):.2f} ms, "
              f"p95 {values[int(len(values) * 0.95)]:.2f} ms")


if __name__ == "__main__":
    main()
