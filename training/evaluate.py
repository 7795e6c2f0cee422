"""Metrics on held-out data, threshold choice, and the leave-one-group-out protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from training.datasets import Example, group_folds

# Precision targets the thresholds are chosen for (documented in docs/model.md).
SPAM_PRECISION_TARGET = 0.95
DISCARD_PRECISION_TARGET = 0.995
HAM_MAX_MISSED_SPAM = 0.025
DISCARD_MIN_SUPPORT = 20


def metrics(
    y: Sequence[int],
    p: Sequence[float],
    spam_threshold: float = 0.5,
    discard_threshold: float | None = None,
) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, MCC, ROC AUC and the confusion matrix."""
    y_true = np.asarray(y, dtype=int)
    prob = np.asarray(p, dtype=float)
    pred = (prob >= spam_threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, pred, labels=[0, 1]).ravel()
    out: dict[str, Any] = {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, pred)),
        "precision": float(precision_score(y_true, pred, zero_division=0)),
        "recall": float(recall_score(y_true, pred, zero_division=0)),
        "f1": float(f1_score(y_true, pred, zero_division=0)),
        "mcc": float(matthews_corrcoef(y_true, pred)) if len(set(y_true)) > 1 else 0.0,
        "roc_auc": float(roc_auc_score(y_true, prob)) if len(set(y_true)) > 1 else float("nan"),
        "tp": int(tp),
        "fp": int(fp),
        "tn": int(tn),
        "fn": int(fn),
    }
    if discard_threshold is not None:
        hit = prob >= discard_threshold
        out["discard_n"] = int(hit.sum())
        out["precision_at_discard"] = float(y_true[hit].mean()) if hit.any() else float("nan")
    return out


def choose_thresholds(y: Sequence[int], p: Sequence[float]) -> dict[str, float]:
    """Pick unsure/spam/discard thresholds from held-out scores for the stated targets.

    - ``spam``: the best-F1 threshold whose precision reaches SPAM_PRECISION_TARGET
      (0.5 when none does);
    - ``unsure``: the highest threshold below ``spam`` that still lets at most
      HAM_MAX_MISSED_SPAM of the spam through as "ham";
    - ``discard``: the lowest threshold whose precision reaches
      DISCARD_PRECISION_TARGET on at least DISCARD_MIN_SUPPORT comments
      (1.0, i.e. never, when the data cannot show it).
    """
    y_true = np.asarray(y, dtype=int)
    prob = np.asarray(p, dtype=float)
    grid = np.unique(np.clip(np.round(prob, 4), 0.01, 0.99))
    spam, best_f1 = 0.5, -1.0
    for t in grid:
        pred = prob >= t
        if not pred.any():
            continue
        prec = y_true[pred].mean()
        f1 = f1_score(y_true, pred.astype(int), zero_division=0)
        if prec >= SPAM_PRECISION_TARGET and f1 > best_f1:
            spam, best_f1 = float(t), float(f1)
    spam_scores = np.sort(prob[y_true == 1])
    if len(spam_scores):
        q = spam_scores[int(np.floor(HAM_MAX_MISSED_SPAM * len(spam_scores)))]
        unsure = float(min(max(q, 0.05), spam))
    else:
        unsure = min(0.3, spam)
    discard = 1.0
    for t in grid[grid >= spam]:
        hit = prob >= t
        if hit.sum() >= DISCARD_MIN_SUPPORT and y_true[hit].mean() >= DISCARD_PRECISION_TARGET:
            discard = float(t)
            break
    return {"unsure": round(unsure, 4), "spam": round(spam, 4), "discard": round(discard, 4)}


@dataclass
class FoldResult:
    group: str
    metrics: dict[str, Any]


def leave_one_group_out(
    examples: Sequence[Example],
    fit_predict: Callable[[list[Example], list[Example]], Sequence[float]],
    threshold: float = 0.5,
) -> list[FoldResult]:
    """Train on all groups but one, test on that one, every way round."""
    results = []
    for group, train, test in group_folds(examples):
        probs = fit_predict(train, test)
        results.append(FoldResult(group, metrics([e.label for e in test], probs, threshold)))
    return results


def mean_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = ("accuracy", "precision", "recall", "f1", "mcc", "roc_auc")
    out: dict[str, Any] = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    for k in ("fp", "fn", "n"):
        out[k] = int(sum(r[k] for r in rows))
    return out


def format_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A fixed-width table: one row per (label, metrics)."""
    head = (
        f"{'':28} {'n':>5} {'acc':>7} {'prec':>7} {'recall':>7} {'f1':>7} {'mcc':>7} "
        f"{'auc':>7} {'fp':>4} {'fn':>4}"
    )
    lines = [head, "-" * len(head)]
    for label, m in rows:
        lines.append(
            f"{label[:28]:28} {m['n']:>5} {m['accuracy']:>7.2%} {m['precision']:>7.2%} "
            f"{m['recall']:>7.2%} {m['f1']:>7.4f} {m['mcc']:>7.4f} {m['roc_auc']:>7.4f} "
            f"{m['fp']:>4} {m['fn']:>4}"
        )
    return "\n".join(lines)
