"""The evaluation gate: candidate and serving model on the same held-out labels.

Held-out set: the newest ``fraction`` of each site's stored labels (at least
one per site that has :data:`MIN_SITE_LABELS` or more), because the recent
labels of a site say most about the traffic the model will meet next; plus a
hash-chosen ``fraction`` of the examples from ``--data`` files. Every text is
folded to one example before the split, so no duplicate sits on both sides.

Both models are scored on that set, each at its own thresholds (the
candidate's are chosen on the same set, which flatters its threshold-dependent
metrics slightly; ROC AUC is threshold-free). The candidate passes when none
of the :data:`TOLERANCE` metrics is worse than the serving model's by more
than the tolerance.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from service.scoring.model import Scorer
from service.scoring.verdicts import decide
from training.datasets import Example, deduplicate, holdout_split
from training.evaluate import metrics
from training.labels import StoredLabel

RECENT_FRACTION = 0.2
MIN_SITE_LABELS = 5
# How much worse than the serving model a candidate may be, per metric.
TOLERANCE: dict[str, float] = {
    "roc_auc": 0.005,
    "mcc": 0.02,
    "f1": 0.02,
    "precision_at_discard": 0.005,
}


@dataclass
class Split:
    train: list[Example]
    test: list[Example]
    folded: int
    held_out_by_site: dict[str, int] = field(default_factory=dict)


def split_recent(
    stored: Sequence[StoredLabel], files: Sequence[Example], fraction: float = RECENT_FRACTION
) -> Split:
    """Fold duplicates, then hold out each site's newest labels and a hash share of files."""
    unique, folded = deduplicate([s.example for s in stored] + list(files))
    newest: dict[str, tuple[str, float]] = {}  # key -> (site, newest label time)
    for s in stored:
        stamp = s.labelled_at.timestamp() if s.labelled_at is not None else 0.0
        if s.example.key not in newest or newest[s.example.key][1] < stamp:
            newest[s.example.key] = (s.site, stamp + s.label_id * 1e-9)
    by_site: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for key, (site, stamp) in newest.items():
        by_site[site].append((stamp, key))
    test_keys: set[str] = set()
    held: dict[str, int] = {}
    for site, items in by_site.items():
        if len(items) < MIN_SITE_LABELS:
            continue
        n = max(1, math.ceil(fraction * len(items)))
        test_keys.update(key for _, key in sorted(items, reverse=True)[:n])
        held[site] = n
    from_files = [e for e in unique if e.key not in newest]
    _, file_test = holdout_split(from_files, fraction)
    test_keys.update(e.key for e in file_test)
    test = [e for e in unique if e.key in test_keys]
    train = [e for e in unique if e.key not in test_keys]
    return Split(train, test, folded, held)


def evaluation_rows(
    test: Sequence[Example], probs: Sequence[float], thresholds: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """Metrics overall and per group (site, or data file) at the given thresholds."""
    y = [e.label for e in test]
    rows = {"overall": metrics(y, probs, thresholds["spam"], thresholds["discard"])}
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(test):
        groups[e.group or e.source].append(i)
    for group, idx in sorted(groups.items()):
        rows[group] = metrics(
            [y[i] for i in idx], [probs[i] for i in idx], thresholds["spam"], thresholds["discard"]
        )
    return rows


@dataclass
class GateResult:
    passed: bool
    reasons: list[str]
    candidate: dict[str, dict[str, Any]]
    serving: dict[str, dict[str, Any]] | None
    serving_version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "serving_version": self.serving_version,
            "tolerance": TOLERANCE,
            "candidate": self.candidate,
            "serving": self.serving,
        }


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not math.isnan(x)


def decide_gate(
    candidate: dict[str, dict[str, Any]],
    serving: dict[str, dict[str, Any]] | None,
    serving_version: str | None,
) -> GateResult:
    """Pass unless a metric of the candidate is worse than the serving one's beyond tolerance."""
    if serving is None:
        return GateResult(True, ["no serving model to compare with"], candidate, None, None)
    reasons, passed = [], True
    for name, tol in TOLERANCE.items():
        c, s = candidate["overall"].get(name), serving["overall"].get(name)
        if not (_finite(c) and _finite(s)) or c is None or s is None:
            reasons.append(f"{name}: not comparable on this data")
            continue
        ok = float(c) >= float(s) - tol
        passed = passed and ok
        reasons.append(
            f"{name}: candidate {c:.4f} vs serving {s:.4f} (tolerance {tol}) "
            f"{'ok' if ok else 'WORSE'}"
        )
    return GateResult(passed, reasons, candidate, serving, serving_version)


def predict(pipeline: Any, examples: Sequence[Example]) -> list[float]:
    if not examples:
        return []
    return [float(p) for p in pipeline.predict_proba([e.comment for e in examples])[:, 1]]


# --- what would change --------------------------------------------------------


@dataclass
class Flip:
    comment_id: int
    label: str
    content: str
    serving: str
    candidate: str


def diff_models(
    stored: Sequence[StoredLabel], serving: Scorer, candidate: Scorer, examples: int = 10
) -> dict[str, Any]:
    """Re-score stored labelled comments with both models; count and show verdict flips."""
    comments = [s.example.comment for s in stored]
    a = [p for p, _ in serving.score(comments, explain=0)] if comments else []
    b = [p for p, _ in candidate.score(comments, explain=0)] if comments else []
    counts: dict[str, int] = defaultdict(int)
    flips: list[Flip] = []
    right = {"serving": 0, "candidate": 0}
    for s, pa, pb in zip(stored, a, b, strict=True):
        va, _ = decide(float(pa), serving.thresholds)
        vb, _ = decide(float(pb), candidate.thresholds)
        label = "spam" if s.example.label else "ham"
        right["serving"] += va.value == label
        right["candidate"] += vb.value == label
        if va != vb:
            counts[f"{va.value}->{vb.value}"] += 1
            flips.append(
                Flip(s.comment_id, label, s.example.comment.content[:160],
                     f"{va.value} {pa:.3f}", f"{vb.value} {pb:.3f}")
            )
    return {
        "serving": serving.version,
        "candidate": candidate.version,
        "n": len(stored),
        "flips": len(flips),
        "by_kind": dict(sorted(counts.items())),
        "matching_label": right,
        "examples": [f.__dict__ for f in flips[:examples]],
    }
