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
    predicted: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, MCC, ROC AUC and the confusion matrix.

    ``predicted`` gives the verdicts of a system that decides by itself
    (bogofilter); otherwise a score at or above ``spam_threshold`` is spam.
    """
    y_true = np.asarray(y, dtype=int)
    prob = np.asarray(p, dtype=float)
    if predicted is not None:
        pred = np.asarray(predicted, dtype=int)
    else:
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


FitPredict = Callable[[list[Example], list[Example]], Sequence[float]]


def inner_threshold(train: Sequence[Example], fit_predict: FitPredict) -> float:
    """The spam threshold :func:`choose_thresholds` picks from out-of-fold scores
    inside ``train`` (leave one of its groups out): the test fold is never seen."""
    y: list[int] = []
    p: list[float] = []
    for _, inner_train, inner_test in group_folds(train):
        p.extend(fit_predict(inner_train, inner_test))
        y.extend(e.label for e in inner_test)
    if len(set(y)) < 2:
        return 0.5
    return choose_thresholds(y, p)["spam"]


SYSTEMS = ("commentmod", "bogofilter", "tfidf-lr")


def lovo_report(
    examples: Sequence[Example],
    fit_predict: FitPredict,
    systems: Sequence[str] = SYSTEMS,
    tune_threshold: bool = True,
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Per-fold and mean metrics of each system on the same leave-one-group-out folds.

    commentmod's spam threshold comes from :func:`inner_threshold` on each
    training side (``tune_threshold``) or is 0.5; the TF-IDF baseline uses 0.5;
    bogofilter uses its own verdict.
    """
    rows: dict[str, list[tuple[str, dict[str, Any]]]] = {s: [] for s in systems}
    for group, train, test in group_folds(examples):
        t = inner_threshold(train, fit_predict) if tune_threshold else 0.5
        for system, m in compare(train, test, fit_predict, systems, t).items():
            rows[system].append((group, m))
    for fold_rows in rows.values():
        fold_rows.append(("mean", mean_row([m for _, m in fold_rows])))
    return rows


def compare(
    train: Sequence[Example],
    test: Sequence[Example],
    fit_predict: FitPredict,
    systems: Sequence[str] = SYSTEMS,
    threshold: float = 0.5,
) -> dict[str, dict[str, Any]]:
    """Each system trained on ``train`` and measured on ``test``: commentmod at
    ``threshold``, the TF-IDF baseline at 0.5, bogofilter by its own verdict."""
    from training import baselines

    y = [e.label for e in test]
    out: dict[str, dict[str, Any]] = {}
    for system in systems:
        if system == "commentmod":
            out[system] = {**metrics(y, fit_predict(list(train), list(test)), threshold),
                           "threshold": threshold}
        elif system == "bogofilter":
            scores, verdicts = baselines.bogofilter_fit_predict(train, test)
            out[system] = metrics(y, scores, predicted=verdicts)
        elif system == "tfidf-lr":
            out[system] = metrics(y, baselines.tfidf_lr_fit_predict(train, test))
        else:
            raise ValueError(f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")
    return out


def format_report(report: dict[str, list[tuple[str, dict[str, Any]]]]) -> str:
    """One table: each system's folds, then its mean, systems one after another."""
    rows = [
        (f"{system} {label.removeprefix('Youtube')}", m)
        for system, fold_rows in report.items()
        for label, m in fold_rows
    ]
    return format_table(rows)


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
