"""Leave-one-video-out quality of commentmod against bogofilter and plain TF-IDF + LR.

All three systems are trained and tested on the same folds (training.datasets.
group_folds: one video held out, its duplicates dropped from training), in one
run. Usage, from the repository root:

    PYTHONPATH=$PWD python bench/quality.py [--fixed-threshold] [--json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The repository first: bench/ (the script's directory) holds a training.py that
# would shadow the training package, even with PYTHONPATH set.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import json
import time

from training.datasets import shipped_youtube
from training.evaluate import SYSTEMS, format_report, lovo_report
from training.train import fit_predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixed-threshold", action="store_true", help="commentmod at 0.5")
    parser.add_argument("--system", action="append", choices=SYSTEMS, help="default: all")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    report = lovo_report(
        shipped_youtube(), fit_predict, args.system or SYSTEMS, not args.fixed_threshold
    )
    if args.json:
        print(json.dumps({s: dict(rows) for s, rows in report.items()}, indent=2))
        return
    print(format_report(report))
    if "commentmod" in report:
        mean = report["commentmod"][-1][1]
        errors = mean["fp"] + mean["fn"]
        share = mean["fp"] / errors if errors else 0.0
        print(
            f"\ncommentmod: accuracy {mean['accuracy']:.2%} (target 96.5%), "
            f"MCC {mean['mcc']:.4f} (target 0.93), FP share of errors {share:.0%} (target <= 33%)"
        )
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
