"""The leave-one-video-out protocol: leak-free folds, metrics and the report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from training.baselines import bogofilter_available
from training.datasets import Example, group_folds, shipped_youtube
from training.evaluate import (
    DISCARD_FLOOR,
    choose_thresholds,
    format_corpus_report,
    format_report,
    inner_threshold,
    lovo_report,
    mean_row,
    metrics,
)
from training.features import Comment


def test_shipped_lovo_folds_are_leak_free() -> None:
    examples = shipped_youtube()
    folds = list(group_folds(examples))
    assert len(folds) == 5
    for group, train, test in folds:
        assert {e.group for e in test} == {group}
        assert group not in {e.group for e in train}
        assert not {e.key for e in train} & {e.key for e in test}  # no duplicate crosses
        assert len(test) == sum(e.group == group for e in examples)


def test_metadata_columns_never_reach_the_model() -> None:
    for e in shipped_youtube()[:50]:
        assert e.comment.created_at == "" and e.comment.author == ""


def test_metrics_on_a_hand_made_case() -> None:
    m = metrics([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1])
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (1, 1, 1, 1)
    assert m["accuracy"] == 0.5 and m["roc_auc"] == 0.75
    decided = metrics([1, 0], [0.2, 0.9], predicted=[1, 0])  # a system's own verdicts win
    assert decided["accuracy"] == 1.0 and decided["roc_auc"] == 0.0


def test_a_one_class_corpus_prints_no_mcc_or_precision() -> None:
    """Ham only (the news comments): MCC, F1, precision and recall are undefined,
    not 0; the false positives are the figure."""
    ham = metrics([0, 0, 0], [0.9, 0.1, 0.2])
    mixed = metrics([1, 0, 0], [0.9, 0.1, 0.2])
    rows = format_corpus_report({"commentmod": [("news-comments", ham), ("mixed", mixed)]})
    news, both = rows.splitlines()[2:]
    assert news.split()[3:10] == ["0", "-", "-", "-", "-", "1", "0"]
    assert both.split()[4:8] == ["1.0000", "1.0000", "100.00%", "100.00%"]


def test_mean_row_averages_rates_and_sums_counts() -> None:
    a = metrics([1, 0], [0.9, 0.1])
    b = metrics([1, 0], [0.1, 0.9])
    mean = mean_row([a, b])
    assert mean["accuracy"] == 0.5 and mean["n"] == 4 and mean["fp"] == 1 and mean["fn"] == 1


def test_thresholds_are_ordered() -> None:
    t = choose_thresholds([0, 0, 1, 1, 1], [0.1, 0.4, 0.35, 0.8, 0.9])
    assert 0 <= t["unsure"] <= t["spam"] <= t["discard"] <= 1


def test_discard_never_goes_below_the_floor() -> None:
    """Held-out precision is perfect from 0.9 up, but a new site is not the held-out
    set: discarding starts at DISCARD_FLOOR, or never when too few score that high."""
    y = [1] * 120 + [0] * 40
    p = [0.95] * 120 + [0.05] * 40
    assert choose_thresholds(y, p)["discard"] == 1.0
    p = [0.995] * 120 + [0.05] * 40
    assert DISCARD_FLOOR < choose_thresholds(y, p)["discard"] == 0.995


def test_discard_needs_support_and_may_sit_above_the_floor() -> None:
    """Fewer than DISCARD_MIN_SUPPORT comments above it: never. A ham at 0.991 among
    the spam: the threshold rises above it rather than discarding it."""
    assert choose_thresholds([1] * 99 + [0] * 40, [0.999] * 99 + [0.05] * 40)["discard"] == 1.0
    y = [1] * 150 + [0] * 41
    p = [0.999] * 150 + [0.991] + [0.05] * 40
    assert choose_thresholds(y, p)["discard"] == 0.999


def toy(group: str, n: int = 4) -> list[Example]:
    return [
        Example(Comment(content=f"{group} spam {i}"), 1, "toy", group=group) for i in range(n)
    ] + [Example(Comment(content=f"{group} ham {i}"), 0, "toy", group=group) for i in range(n)]


def word_fit_predict(train: list[Example], test: list[Example]) -> Sequence[float]:
    """A transparent stand-in model: 'spam' in the text means spam."""
    seen = {e.key for e in train}
    assert not seen & {e.key for e in test}
    return [0.9 if "spam" in e.comment.content else 0.1 for e in test]


def test_inner_threshold_only_sees_the_training_side() -> None:
    train = toy("a") + toy("b") + toy("c")
    calls: list[set[str]] = []

    def spy(tr: list[Example], te: list[Example]) -> Sequence[float]:
        calls.append({e.group for e in tr} | {e.group for e in te})
        return word_fit_predict(tr, te)

    t = inner_threshold(train, spy)
    assert 0 < t < 1
    assert all(groups <= {"a", "b", "c"} for groups in calls) and len(calls) == 3


@pytest.mark.parametrize("tune", [True, False])
def test_lovo_report_has_every_fold_and_a_mean(tune: bool) -> None:
    examples = toy("a") + toy("b") + toy("c")
    systems = ["commentmod", "tfidf-lr"] + (["bogofilter"] if bogofilter_available() else [])
    report = lovo_report(examples, word_fit_predict, systems, tune_threshold=tune)
    assert list(report) == systems
    for rows in report.values():
        assert [label for label, _ in rows] == ["a", "b", "c", "mean"]
    assert report["commentmod"][-1][1]["accuracy"] == 1.0
    table = format_report(report)
    assert "commentmod mean" in table and "tfidf-lr a" in table


def _thresholds_by_scanning(y: Sequence[int], p: Sequence[float]) -> dict[str, float]:
    """choose_thresholds written the slow, plain way: one pass over the scores per
    threshold, errors counted from the verdicts; the counting form must pick the
    same thresholds."""
    from training.evaluate import (
        DISCARD_MIN_SUPPORT,
        DISCARD_PRECISION_TARGET,
        HAM_MAX_MISSED_SPAM,
        SPAM_PRECISION_TARGET,
    )

    y_true, prob = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    grid = np.unique(np.clip(np.round(prob, 4), 0.01, 0.9999))
    precise, balanced = [], []
    for t in grid:
        pred = prob >= t
        if not pred.any():
            continue
        fp = int((pred & (y_true == 0)).sum())
        fn = int((~pred & (y_true == 1)).sum())
        if fn - fp >= np.sqrt(fp + fn):  # FP at least one SD below FN
            balanced.append(float(t))
            if y_true[pred].mean() >= SPAM_PRECISION_TARGET:
                precise.append(float(t))
    spam = min(precise) if precise else min(balanced) if balanced else 0.5
    spam_scores = np.sort(prob[y_true == 1])
    if len(spam_scores):
        q = spam_scores[int(np.floor(HAM_MAX_MISSED_SPAM * len(spam_scores)))]
        unsure = float(min(max(q, 0.05), spam))
    else:
        unsure = min(0.3, spam)
    discard = 1.0
    above = np.unique(np.round(prob, 4))  # above the floor: the scores, not the 0.99 grid
    for t in above[above >= max(spam, DISCARD_FLOOR)]:
        hit = prob >= t
        if hit.sum() >= DISCARD_MIN_SUPPORT and y_true[hit].mean() >= DISCARD_PRECISION_TARGET:
            discard = float(t)
            break
    return {"unsure": round(unsure, 4), "spam": round(spam, 4), "discard": round(discard, 4)}


@pytest.mark.parametrize("seed", range(12))
def test_thresholds_are_those_a_pass_per_threshold_picks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 600))
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + rng.uniform(0, 8) * (y - 0.5))))
    if seed % 3 == 0:
        p = np.round(p, int(rng.integers(1, 4)))  # ties
    if seed % 4 == 1:
        p = np.where(y == 1, np.maximum(p, 0.995), p)  # a discard threshold may exist
    chosen = choose_thresholds(y.tolist(), p.tolist())
    assert chosen == _thresholds_by_scanning(y, p)
    m = metrics(y.tolist(), p.tolist(), chosen["spam"])
    assert m["fp"] <= m["fn"]  # false positives the smaller share, where it was chosen


def test_spam_threshold_keeps_false_positives_the_smaller_share() -> None:
    """20 spam, 19 ham: at 0.3 every spam and one ham (F1 0.976, precision 0.952, the
    best-F1 choice: all errors false positives); at 0.9 two spam missed, no ham hit."""
    y = [1] * 18 + [1] * 2 + [0] + [0] * 18
    p = [0.9] * 18 + [0.3] * 2 + [0.3] + [0.1] * 18
    assert choose_thresholds(y, p)["spam"] == 0.9


def test_spam_threshold_catches_the_most_spam_the_rules_allow() -> None:
    """Of the thresholds that meet both rules (0.6 to 0.9) the lowest, which calls the
    fewest spam ham. The best-F1 rule took 0.2 (precision 0.97; 3 FP, no FN)."""
    y = [1] * 90 + [1] * 10 + [0] * 100
    p = [0.9] * 90 + [0.2] * 10 + [0.6] + [0.7] + [0.8] + [0.1] * 97
    # At 0.6: FP 3, FN 10 (7 >= sqrt(13)), precision 90/93; at 0.2: FP 3, FN 0.
    assert choose_thresholds(y, p)["spam"] == 0.6


def test_spam_threshold_may_lie_above_0_99() -> None:
    """A sharp model: 30 ham score 0.995 among 200 spam at 0.999 and 20 at 0.3. Up to
    0.99 every threshold calls the 30 ham spam and misses 20 spam (FP > FN), and the
    rule used to fall back to 0.5; at 0.999 no ham is hit."""
    y = [1] * 200 + [1] * 20 + [0] * 30 + [0] * 300
    p = [0.999] * 200 + [0.3] * 20 + [0.995] * 30 + [0.01] * 300
    assert choose_thresholds(y, p)["spam"] == 0.999


@pytest.mark.parametrize(
    ("y", "p", "spam"),
    [
        # Precision never reaches the target: the lowest threshold with FP one SD below
        # FN (at 0.8: precision 5/6, FP 1, FN 15).
        ([1] * 5 + [1] * 15 + [0] + [0] * 19, [0.8] * 5 + [0.2] * 15 + [0.8] + [0.2] * 19,
         0.8),
        ([0] * 10, [0.1 * i for i in range(10)], 0.5),  # no spam: nothing to balance
        ([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], 0.5),  # one score: all spam or none
    ],
)
def test_spam_threshold_fallbacks(y: list[int], p: list[float], spam: float) -> None:
    assert choose_thresholds(y, p)["spam"] == spam


def test_per_corpus_folds_score_every_distinct_text_once() -> None:
    """--folds k: each text is scored by a system that never trained on it, and the
    counts of all folds are pooled into one row per corpus and system."""
    from training.evaluate import per_corpus_report

    corpus = toy("site", 15) + toy("site", 15)[:5]  # five duplicates fold away
    report = per_corpus_report([("site", corpus)], ["commentmod", "tfidf-lr"], folds=3)
    for system in ("commentmod", "tfidf-lr"):
        ((label, m),) = report[system]
        assert label == "site (3-fold)"
        assert m["n"] == 30 and m["tp"] + m["fn"] == 15
