"""The text model's loss compared inside the training sides of the per-corpus folds
(the way bench/c_choice.py compares regularisation): the logistic regression the
product had (C = 20), a linear SVM (squared hinge, liblinear) Platt-scaled to a
probability at several C, and, for the record, a stack of the two.

``commentmod evaluate --protocol per-corpus --folds 5 --cap 2000`` trains on the
training side of each of five folds per corpus and chooses the thresholds on
out-of-fold scores of a stratified 5-fold inside it. This script scores those
same inner folds (same sides, same cap, same folds, signal weight 0.5, the feature
blocks fitted once per inner fold) with each model's margin. Each design maps
margins to a probability fitted on four inner folds only (Platt: a balanced
logistic regression of the labels on the margins; the stack: on two margins),
the spam threshold is chosen there by the shipped rule, and the errors are counted
on the fifth. **The per-corpus test sides are never scored.** Printed per corpus:
MCC and FP/FN pooled over the 25 judged inner folds, and the mean of the six.

    PYTHONPATH=$PWD python bench/loss_choice.py   # about 4 CPU-minutes

An evaluation: besides the shipped corpora it reads the measurement-only ones in
``../shared/data/eval-only`` (never shipped, never in training/data), as
``commentmod evaluate --protocol per-corpus`` does.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from bench.c_choice import score_sides, spam_t
from bench.threshold_rules import mcc
from training.datasets import Example
from training.features import PLATT_C, SVM_MAX_ITER, CommentFeatures
from training.train import FOLD_SEED, kfold_splits

LR_C = (20.0, 100.0)
SVM_C = (1.0, 3.0, 10.0, 30.0)


def models() -> dict[str, Callable[[], Any]]:
    out: dict[str, Callable[[], Any]] = {}
    for c in LR_C:
        out[f"lr C={c:g}"] = functools.partial(
            LogisticRegression, C=c, class_weight="balanced", max_iter=2000, solver="liblinear")
    for c in SVM_C:
        out[f"svm C={c:g}"] = functools.partial(
            LinearSVC, C=c, class_weight="balanced", max_iter=SVM_MAX_ITER, random_state=0)
    return out


def margins(train: list[Example]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    y = np.asarray([e.label for e in train], dtype=int)
    texts = [e.comment for e in train]
    cv = StratifiedKFold(n_splits=kfold_splits(y), shuffle=True, random_state=FOLD_SEED)
    inner = np.zeros(len(y), dtype=int)
    made = models()
    m = {name: np.zeros(len(y)) for name in made}
    for j, (fit, held) in enumerate(cv.split(np.zeros(len(y)), y)):
        inner[held] = j
        feats = CommentFeatures(signal_weight=0.5).fit([texts[i] for i in fit])
        xf = feats.transform([texts[i] for i in fit])
        xh = feats.transform([texts[i] for i in held])
        for name, make in made.items():
            model = make().fit(xf, y[fit])
            m[name][held] = model.decision_function(xh)
    return y, inner, m


Design = Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], np.ndarray]


def calibrated(*names: str) -> Design:
    """Probabilities from a balanced logistic regression on these margins, fitted on
    the rows in ``rest`` only."""

    def design(m: dict[str, np.ndarray], y: np.ndarray, rest: np.ndarray) -> np.ndarray:
        X = np.column_stack([m[n] for n in names])
        fit = LogisticRegression(C=PLATT_C, class_weight="balanced").fit(X[rest], y[rest])
        return np.asarray(fit.predict_proba(X)[:, 1])

    return design


def plain(name: str) -> Design:
    return lambda m, y, rest: 1.0 / (1.0 + np.exp(-m[name]))


DESIGNS: dict[str, Design] = {
    "lr C=20 (before)": plain("lr C=20"),
    "lr C=100, Platt": calibrated("lr C=100"),
    **{f"svm C={c:g}, Platt" + (" (shipped)" if c == 10.0 else ""): calibrated(f"svm C={c:g}")
       for c in SVM_C},
    "stack lr C=20 + svm C=10": calibrated("lr C=20", "svm C=10"),
}


def main() -> None:
    t0 = time.process_time()
    scored = score_sides(margins)
    names = list(dict.fromkeys(s[0] for s in scored))
    print(f"{'design':28}" + "".join(f"{n[:20]:>22}" for n in names) + "    mean")
    for label, design in DESIGNS.items():
        cells, mccs = [], []
        for name in names:
            pooled = np.zeros(4, dtype=int)
            for _, y, inner, m in (s for s in scored if s[0] == name):
                for j in np.unique(inner):
                    rest = inner != j
                    p = design(m, y, rest)
                    t = spam_t(y[rest], p[rest])
                    pred, truth = p[inner == j] >= t, y[inner == j] == 1
                    pooled += [(pred & truth).sum(), (pred & ~truth).sum(),
                               (~pred & truth).sum(), (~pred & ~truth).sum()]
            mccs.append(mcc(pooled))
            cells.append(f"{mccs[-1]:.4f} {pooled[1]:>4}/{pooled[2]:<4}")
        print(f"{label:28}" + "".join(f"{c:>22}" for c in cells) + f"  {np.mean(mccs):.4f}",
              flush=True)
    print(f"# {time.process_time() - t0:.0f} CPU-s", file=sys.stderr)


if __name__ == "__main__":
    main()
