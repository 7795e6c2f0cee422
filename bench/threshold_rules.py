"""Spam-threshold rules compared inside the training sides of the per-corpus folds.

``commentmod evaluate --protocol per-corpus --folds 5 --cap 2000`` trains on the
training side of each of five folds per corpus and chooses the thresholds on
out-of-fold scores of a stratified 5-fold inside it (``kfold_thresholds``). This
script recomputes those same out-of-fold scores (same sides, same cap, same inner
folds) and, for each rule, chooses a threshold on four inner folds' scores and
counts the errors it makes on the fifth's. **The per-corpus test sides are never
scored**, so a rule or constant picked here is picked without them.

Printed per corpus: MCC and FP/FN pooled over the 25 judged inner folds, and the
range of the threshold the rule picks on the five whole training sides (how much
it moves from fold to fold); last, on how many of the 30 training sides the judged
folds held more false positives than false negatives.

    PYTHONPATH=$PWD python bench/threshold_rules.py   # about 2 CPU-minutes

An evaluation: besides the shipped corpora it reads the measurement-only ones in
``../shared/data/eval-only`` (never shipped, never in training/data), as
``commentmod evaluate --protocol per-corpus`` does.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

# The repository first: bench/ (the script's directory) holds a training.py that
# would shadow the training package, even with PYTHONPATH set.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from training.datasets import Example, deduplicate, eval_only_corpora, shipped_corpora
from training.evaluate import SPAM_PRECISION_TARGET, _cap, _test_side
from training.train import FOLD_SEED, build_pipeline, kfold_splits

FOLDS, CAP = 5, 2000
Rule = Callable[[np.ndarray, np.ndarray], float]


def counts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
    grid = np.unique(np.clip(np.round(p, 4), 0.01, 0.99))
    predicted = len(p) - np.searchsorted(np.sort(p), grid, side="left")
    spam = np.sort(p[y == 1])
    tp = len(spam) - np.searchsorted(spam, grid, side="left")
    fp, fn = predicted - tp, len(spam) - tp
    return grid, predicted, tp, fp, fn, len(p) - tp - fp - fn


def best_f1(y: np.ndarray, p: np.ndarray) -> float:
    """main before 2026-11-28: the best F1 whose precision reaches the target."""
    grid, predicted, tp, fp, fn, _ = counts(y, p)
    f1 = np.where((predicted > 0) & (tp >= SPAM_PRECISION_TARGET * predicted),
                  2 * tp / (2 * tp + fp + fn), -1.0)
    return float(grid[int(np.argmax(f1))]) if f1.max() >= 0 else 0.5


def rule(z: float, pick: str, tol: float | str = 0.0, mcc: bool = False) -> Rule:
    """Thresholds with precision >= target and FN - FP >= z sqrt(FP + FN) (without the
    precision where none has both); of those the lowest, the best F1 (or MCC), or the
    middle one of those within ``tol`` of the best (``"1se"``: one standard error)."""

    def choose(y: np.ndarray, p: np.ndarray) -> float:
        grid, predicted, tp, fp, fn, tn = counts(y, p)
        balanced = (predicted > 0) & (fn - fp >= z * np.sqrt(fp + fn))
        ok = balanced & (tp >= SPAM_PRECISION_TARGET * predicted)
        ok = ok if ok.any() else balanced
        if not ok.any():
            return 0.5
        if pick == "lowest":
            return float(grid[int(np.argmax(ok))])
        if mcc:
            den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn).astype(float))
            score = (tp * tn - fp * fn) / np.where(den > 0, den, 1.0)
        else:
            score = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        score = np.where(ok, score, -np.inf)
        b = int(np.argmax(score))
        if pick == "argmax":
            return float(grid[b])
        if tol == "1se":  # delta-method SE of F1; for MCC, that of a correlation
            t, e = tp[b], fp[b] + fn[b]
            width = (np.sqrt(max(1 - score[b] ** 2, 0) / max(len(p) - 2, 1)) if mcc
                     else 2 * np.sqrt(t * e * (t + e)) / (2 * t + e) ** 2)
        else:
            width = float(tol)
        near = np.flatnonzero(score >= score[b] - width)
        return float(grid[near[len(near) // 2]])

    return choose


RULES: dict[str, Rule] = {
    "best F1 (main)": best_f1,
    "FP<=FN, best F1": rule(0, "argmax"),
    "FP<=FN, best MCC": rule(0, "argmax", mcc=True),
    "FP<=FN, lowest": rule(0, "lowest"),
    "FP<=FN-1sd, lowest": rule(1, "lowest"),
    "FP<=FN-2sd, lowest": rule(2, "lowest"),
    "FP<=FN-1sd, best F1": rule(1, "argmax"),
    **{f"FP<=FN, median F1-{tol}": rule(0, "median", tol)
       for tol in ("1se", 0.0025, 0.005, 0.01, 0.02)},
    **{f"FP<=FN, median MCC-{tol}": rule(0, "median", tol, mcc=True)
       for tol in ("1se", 0.0025, 0.005, 0.01, 0.02)},
}


def training_sides() -> list[tuple[str, list[Example]]]:
    """The training side of every per-corpus fold, as `evaluate` builds it."""
    youtube = [e for n, ex in shipped_corpora() if n.startswith("youtube") for e in ex]
    corpora = [("youtube", youtube), ("sms", dict(shipped_corpora())["sms"]),
               *eval_only_corpora()]
    out = []
    for name, examples in corpora:
        unique = _test_side(examples)

        def part(e: Example) -> int:
            return int(hashlib.sha256(f"per-corpus:{e.key}".encode()).hexdigest()[:8], 16) % FOLDS

        for k in range(FOLDS):
            out.append((name, deduplicate(_cap([e for e in unique if part(e) != k], CAP))[0]))
    return out


def out_of_fold(train: list[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scores kfold_thresholds chooses from, and which inner fold scored each."""
    y = np.asarray([e.label for e in train], dtype=int)
    cv = StratifiedKFold(n_splits=kfold_splits(y), shuffle=True, random_state=FOLD_SEED)
    inner = np.zeros(len(y), dtype=int)
    for j, (_, held) in enumerate(cv.split(np.zeros(len(y)), y)):
        inner[held] = j
    p = cross_val_predict(build_pipeline(), [e.comment for e in train], y, cv=cv,
                          method="predict_proba")[:, 1]
    return y, p, inner


def mcc(c: np.ndarray) -> float:
    tp, fp, fn, tn = c.astype(float)
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / den) if den else 0.0


def main() -> None:
    scored = [(name, *out_of_fold(train)) for name, train in training_sides()]
    names = list(dict.fromkeys(name for name, *_ in scored))
    print(f"{'rule':28}" + "".join(f"{n[:22]:>26}" for n in names) + "    mean  fp>fn")
    for label, choose in RULES.items():
        cells, mccs, fp_heavy = [], [], 0
        for name in names:
            pooled, chosen = np.zeros(4, dtype=int), []
            for _, y, p, inner in (s for s in scored if s[0] == name):
                chosen.append(choose(y, p))
                side = np.zeros(4, dtype=int)
                for j in np.unique(inner):
                    t = choose(y[inner != j], p[inner != j])
                    pred, truth = p[inner == j] >= t, y[inner == j] == 1
                    side += [(pred & truth).sum(), (pred & ~truth).sum(),
                             (~pred & truth).sum(), (~pred & ~truth).sum()]
                fp_heavy += int(side[1] > side[2])
                pooled += side
            mccs.append(mcc(pooled))
            cells.append(f"{mccs[-1]:.4f} {pooled[1]:>3}/{pooled[2]:<3} "
                         f"{min(chosen):.2f}-{max(chosen):.2f}")
        print(f"{label:28}" + "".join(f"{c:>26}" for c in cells)
              + f"  {np.mean(mccs):.4f} {fp_heavy:>2}/{len(scored)}")


if __name__ == "__main__":
    main()
