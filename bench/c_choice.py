"""The regularisation chosen per site, compared inside the training sides of the
per-corpus folds (the way bench/threshold_rules.py compares threshold rules).

``commentmod evaluate --protocol per-corpus --folds 5 --cap 2000`` trains on the
training side of each of five folds per corpus and chooses the thresholds on
out-of-fold scores of a stratified 5-fold inside it (``kfold_thresholds``). This
script scores those same inner folds (same sides, same cap, same folds) with every
C of a small grid (signal weight 0.5, the product's); the feature blocks are fitted once per
inner fold (they do not depend on C) and the signal columns rescaled, so each
score is the one ``build_pipeline({"C": c, "signal_weight": w})`` would give.

Each design then chooses, for each inner fold j, on the other four folds' scores
only: a fixed setting (C=20, weight 0.5 is the product), or the setting whose
scores there have the best MCC (at the spam threshold the shipped rule picks on
them) or the lowest log-loss; the spam threshold is chosen by the shipped rule on
the same four folds' scores of the chosen setting and the errors counted on fold
j. **The per-corpus test sides are never scored.** Printed per corpus: MCC and
FP/FN pooled over the 25 judged inner folds, the mean of the six, and on how many
of the 30 sides the judged folds held more false positives than false negatives;
then the setting each design picks on the five whole training sides of a corpus
(what the per-corpus evaluation would then use).

    PYTHONPATH=$PWD python bench/c_choice.py   # about 16 CPU-minutes

An evaluation: besides the shipped corpora it reads the measurement-only ones in
``../shared/data/eval-only`` (never shipped, never in training/data), as
``commentmod evaluate --protocol per-corpus`` does.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from bench.threshold_rules import mcc, training_sides
from training.datasets import Example
from training.evaluate import choose_thresholds
from training.features import SIGNALS, CommentFeatures
from training.train import DEFAULT_PARAMS, FOLD_SEED, kfold_splits

GRID_C = (5.0, 10.0, 20.0, 40.0, 80.0)
GRID_W = (0.5,)  # weight 1 as well doubled the cost; dropped (see docs/model.md)
Setting = tuple[float, float]  # (C, signal_weight)
DEFAULT: Setting = (float(DEFAULT_PARAMS["C"]), float(DEFAULT_PARAMS["signal_weight"]))


def scores(train: list[Example]) -> tuple[np.ndarray, np.ndarray, dict[Setting, np.ndarray]]:
    y = np.asarray([e.label for e in train], dtype=int)
    texts = [e.comment for e in train]
    cv = StratifiedKFold(n_splits=kfold_splits(y), shuffle=True, random_state=FOLD_SEED)
    inner = np.zeros(len(y), dtype=int)
    p = {(c, w): np.zeros(len(y)) for c in GRID_C for w in GRID_W}
    n_sig = len(SIGNALS)
    for j, (fit, held) in enumerate(cv.split(np.zeros(len(y)), y)):
        inner[held] = j
        feats = CommentFeatures(signal_weight=1.0).fit([texts[i] for i in fit])
        xf = feats.transform([texts[i] for i in fit]).tocsc()
        xh = feats.transform([texts[i] for i in held]).tocsc()
        for w in GRID_W:
            scale = np.ones(xf.shape[1])
            scale[-n_sig:] = w
            af, ah = (xf @ sp.diags(scale)).tocsr(), (xh @ sp.diags(scale)).tocsr()
            for c in GRID_C:
                clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000,
                                         solver="liblinear").fit(af, y[fit])
                p[(c, w)][held] = clf.predict_proba(ah)[:, 1]
    return y, inner, p


def spam_t(y: np.ndarray, p: np.ndarray) -> float:
    return choose_thresholds(y.tolist(), p.tolist())["spam"]


def mcc_at(y: np.ndarray, p: np.ndarray, t: float) -> float:
    pred, truth = p >= t, y == 1
    return mcc(np.array([(pred & truth).sum(), (pred & ~truth).sum(),
                         (~pred & truth).sum(), (~pred & ~truth).sum()]))


def logloss(y: np.ndarray, p: np.ndarray) -> float:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


Design = Callable[[np.ndarray, dict[Setting, np.ndarray]], Setting]


def fixed(s: Setting) -> Design:
    return lambda y, p: s


def by(criterion: str, weights: tuple[float, ...]) -> Design:
    """The setting with the best criterion on these scores; ties go to the one nearest
    the default (C=20, then the default weight), so a flat choice keeps the product."""

    def choose(y: np.ndarray, p: dict[Setting, np.ndarray]) -> Setting:
        cands = [s for s in p if s[1] in weights]
        cands.sort(key=lambda s: (abs(np.log(s[0] / DEFAULT[0])), s[1] != DEFAULT[1], s[0]))
        if criterion == "mcc":
            value = {s: mcc_at(y, p[s], spam_t(y, p[s])) for s in cands}
            return max(cands, key=lambda s: value[s])  # first maximum in tie order
        value = {s: logloss(y, p[s]) for s in cands}
        return min(cands, key=lambda s: value[s])

    return choose


DESIGNS: dict[str, Design] = {
    **{f"fixed C={c:g} w=0.5" + (" (product)" if (c, 0.5) == DEFAULT else ""):
       fixed((c, 0.5)) for c in GRID_C},
    "C by MCC (w=0.5)": by("mcc", (0.5,)),
    "C by log-loss (w=0.5)": by("logloss", (0.5,)),
}


def score_sides(score: Callable[[list[Example]], tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``(name, *score(train))`` for every per-corpus training side, with a progress
    line (CPU seconds so far) on stderr after each."""
    t0 = time.process_time()
    scored = []
    for name, train in training_sides():
        scored.append((name, *score(train)))
        print(f"# scored {name} side ({len(train)} texts), {time.process_time() - t0:.0f} CPU-s",
              file=sys.stderr, flush=True)
    return scored


def main() -> None:
    t0 = time.process_time()
    scored = score_sides(scores)
    names = list(dict.fromkeys(s[0] for s in scored))
    print(f"{'design':26}" + "".join(f"{n[:20]:>22}" for n in names) + "    mean  fp>fn")
    picks: dict[str, dict[str, list[Setting]]] = {}
    for label, design in DESIGNS.items():
        cells, mccs, fp_heavy = [], [], 0
        picks[label] = {}
        for name in names:
            pooled = np.zeros(4, dtype=int)
            picks[label][name] = []
            for _, y, inner, p in (s for s in scored if s[0] == name):
                picks[label][name].append(design(y, p))
                side = np.zeros(4, dtype=int)
                for j in np.unique(inner):
                    rest = inner != j
                    s = design(y[rest], {k: v[rest] for k, v in p.items()})
                    t = spam_t(y[rest], p[s][rest])
                    pred, truth = p[s][inner == j] >= t, y[inner == j] == 1
                    side += [(pred & truth).sum(), (pred & ~truth).sum(),
                             (~pred & truth).sum(), (~pred & ~truth).sum()]
                fp_heavy += int(side[1] > side[2])
                pooled += side
            mccs.append(mcc(pooled))
            cells.append(f"{mccs[-1]:.4f} {pooled[1]:>4}/{pooled[2]:<4}")
        print(f"{label:26}" + "".join(f"{c:>22}" for c in cells)
              + f"  {np.mean(mccs):.4f} {fp_heavy:>2}/{len(scored)}", flush=True)
    print("\nsetting picked on the five whole training sides (C/w per side):")
    for label in DESIGNS:
        if label.startswith("fixed"):
            continue
        print(f"{label:26}" + "".join(
            f"  {name[:10]}: " + ",".join(f"{c:g}/{w:g}" for c, w in picks[label][name])
            for name in names))
    print(f"# {time.process_time() - t0:.0f} CPU-s", file=sys.stderr)


if __name__ == "__main__":
    main()
