"""The evaluation gate: candidate and serving model on data neither was fit on.

Two held-out sets, both chosen so that the serving model never trained on them
(every model records what it was fit on, :class:`TrainedOn`):

- **the sites' own labels, held out by time**: the newest ``fraction`` of each
  site's stored labels (sites with :data:`MIN_SITE_LABELS` or more), minus any
  the serving model was fit on. The candidate is fitted without them.
- **elsewhere**: the *gate fold* of the data files (the shipped set or
  ``--data``), a fixed :data:`GATE_FOLD` share chosen by a hash of the text,
  that no model trained here is ever fit on, minus anything the serving model
  was fit on (a bootstrap model fit on all shipped data leaves nothing there).

Every text is folded to one example before the split, so no duplicate sits on
both sides. The candidate passes when it is at least as good as the serving
model on the sites' held-out labels (MCC, :data:`SITE_MARGIN`) and not worse
elsewhere beyond :data:`TOLERANCE`. A set that is empty or cannot show a
metric does not veto; with nothing to compare at all the candidate passes, and
the reasons say so in words.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.scoring.model import Scorer
from service.scoring.verdicts import decide
from training.datasets import Example, deduplicate, holdout_split
from training.evaluate import metrics
from training.labels import StoredLabel

RECENT_FRACTION = 0.2
MIN_SITE_LABELS = 5
GATE_FOLD = 0.15  # of the data files' distinct texts; never fit on by a retrained model
GATE_SALT = "commentmod-gate"
# On the sites' held-out labels the candidate's MCC may be at most this much below
# the serving model's (0: at least as good).
SITE_MARGIN = 0.0
# Elsewhere (the gate fold): how much worse than the serving model a candidate may
# be, per metric. Looser than on the sites' labels: learning a site's own traffic
# may cost a little on other kinds of comments, and that is the point.
TOLERANCE: dict[str, float] = {
    "roc_auc": 0.01,
    "mcc": 0.05,
    "f1": 0.05,
    "precision_at_discard": 0.005,
}


def key_digest(key: str) -> str:
    """A short digest of an example's normalised text, to record what a model saw."""
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


@dataclass
class TrainedOn:
    """What a model was fit on, as far as its record tells.

    ``keys``: digests of every distinct text (None: not at hand); ``labels_up_to``:
    the newest label id it could have used; ``labels_before``: for a model that
    recorded nothing, when it was trained (it may have seen every older label);
    ``all_files``: it was fit on all of the data files, gate fold included (the
    bootstrap, and models trained before the gate fold existed).
    """

    keys: set[str] | None = None
    labels_up_to: int | None = None
    labels_before: datetime | None = None
    all_files: bool = True

    def saw(self, ex: Example, label_id: int | None = None,
            labelled_at: datetime | None = None) -> bool:
        if self.keys is not None:
            return key_digest(ex.key) in self.keys
        if label_id is None:  # a file example: only the fold rule tells
            return self.all_files or not in_gate_fold(ex)
        if self.labels_up_to is not None:
            return label_id <= self.labels_up_to
        if self.labels_before is None or labelled_at is None:
            return True
        return labelled_at <= self.labels_before

    def saw_streamed(self, ex: Example) -> bool:
        """:meth:`saw` for an example streamed without its label id (the out-of-core
        trainer): by the key digests when at hand; else a stored label (source
        ``labels:...``) was seen unless the model recorded it used none (the
        bootstrap), and a file's example by the gate-fold rule."""
        if self.keys is None and ex.source.startswith("labels:"):
            return self.labels_up_to != 0
        return self.saw(ex)


def trained_on(meta: dict[str, Any], keys: set[str] | None = None) -> TrainedOn:
    """Read a model's record (``metadata["trained_on"]``, plus its keys file if at hand)."""
    record = meta.get("trained_on")
    if isinstance(record, dict):
        up_to = record.get("labels_up_to")
        return TrainedOn(keys, int(up_to) if isinstance(up_to, int) else 0, None,
                         record.get("files") != "outside-gate-fold")
    sources = " ".join(map(str, (meta.get("data") or {}).get("description") or []))
    if "stored labels" not in sources:  # the bootstrap: files only, all of them
        return TrainedOn(None, 0, None, True)
    created = meta.get("created_at")
    when = None
    if isinstance(created, str):
        try:
            when = datetime.fromisoformat(created)
        except ValueError:
            when = None
    return TrainedOn(None, None, when, True)


def in_gate_fold(ex: Example) -> bool:
    h = int(hashlib.sha256(f"{GATE_SALT}:{ex.key}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < GATE_FOLD


@dataclass
class Split:
    train: list[Example]  # what the candidate is fit on for the gate
    site_test: list[Example]  # the sites' newest labels neither model saw
    other_test: list[Example]  # the gate fold, minus what the serving model saw
    gate_fold: list[Example]  # the whole gate fold (the candidate never saw it)
    folded: int
    held_out_by_site: dict[str, int] = field(default_factory=dict)

    @property
    def test(self) -> list[Example]:
        """What the candidate is scored on for its own figures and thresholds."""
        return self.site_test + self.gate_fold

    @property
    def final(self) -> list[Example]:
        """What the saved model is fit on: everything but the gate fold."""
        return self.train + self.site_test


def split_recent(
    stored: Sequence[StoredLabel],
    files: Sequence[Example],
    fraction: float = RECENT_FRACTION,
    serving: TrainedOn | None = None,
) -> Split:
    """Fold duplicates, hold out each site's newest labels and the gate fold."""
    unique, folded = deduplicate([s.example for s in stored] + list(files))
    # key -> (site, stamp, label id, time) of the newest label of that text
    newest: dict[str, tuple[str, float, int, datetime | None]] = {}
    for s in stored:
        stamp = (s.labelled_at.timestamp() if s.labelled_at is not None else 0.0)
        stamp += s.label_id * 1e-9
        if s.example.key not in newest or newest[s.example.key][1] < stamp:
            newest[s.example.key] = (s.site, stamp, s.label_id, s.labelled_at)
    by_key = {e.key: e for e in unique}
    by_site: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for key, (site, stamp, _, _) in newest.items():
        by_site[site].append((stamp, key))
    site_keys: set[str] = set()
    held: dict[str, int] = {}
    for site, items in by_site.items():
        if len(items) < MIN_SITE_LABELS:
            continue
        n = max(1, math.ceil(fraction * len(items)))
        recent = [key for _, key in sorted(items, reverse=True)[:n]]
        if serving is not None:
            recent = [k for k in recent
                      if not serving.saw(by_key[k], newest[k][2], newest[k][3])]
        site_keys.update(recent)
        if recent:
            held[site] = len(recent)
    from_files = [e for e in unique if e.key not in newest]
    gate_fold = [e for e in from_files if in_gate_fold(e)]
    fold_keys = {e.key for e in gate_fold}
    other = [e for e in gate_fold if serving is None or not serving.saw(e)]
    site_test = [e for e in unique if e.key in site_keys]
    train = [e for e in unique if e.key not in site_keys and e.key not in fold_keys]
    return Split(train, site_test, other, gate_fold, folded, held)


# Kept for callers that split by hash only (files without labels).
def file_split(files: Sequence[Example], fraction: float) -> tuple[list[Example], list[Example]]:
    return holdout_split(files, fraction)


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
    verdict: str = ""  # one sentence: promoted or refused, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "serving_version": self.serving_version,
            "site_margin": SITE_MARGIN,
            "tolerance": TOLERANCE,
            "candidate": self.candidate,
            "serving": self.serving,
        }


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not math.isnan(x)


def _one_class(m: dict[str, Any]) -> str:
    """"spam" or "ham" when every held-out label of these metrics is that one, else ""."""
    if "tp" not in m:
        return ""
    spam, ham = int(m["tp"]) + int(m["fn"]), int(m["tn"]) + int(m["fp"])
    return "spam" if not ham else "ham" if not spam else ""


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if _finite(x) else "n/a"


@dataclass
class Comparison:
    """Both models' metrics on one held-out set (None: empty set)."""

    name: str
    n: int
    candidate: dict[str, Any] | None
    serving: dict[str, Any] | None


def decide_gate(
    sites: Comparison, elsewhere: Comparison, serving_version: str | None,
    candidate_rows: dict[str, dict[str, Any]], serving_rows: dict[str, dict[str, Any]] | None,
) -> GateResult:
    """Better (or as good) on the sites' held-out labels, not worse elsewhere."""
    if serving_version is None or (sites.serving is None and elsewhere.serving is None
                                   and serving_rows is None):
        why = ("no serving model to compare with" if serving_version is None else
               "nothing is held out that the serving model was not fit on (no site labels "
               "newer than it, and it was fit on all of the data files)")
        return GateResult(True, [why], candidate_rows, serving_rows, serving_version,
                          f"promotable: {why}")
    reasons: list[str] = []
    better_on_sites: bool | None = None
    if sites.candidate is not None and sites.serving is not None and sites.n:
        # With one class held out (a site that has labelled only spam lately) MCC is 0
        # for any model: the share of labels each model's verdict matches decides.
        single = _one_class(sites.candidate)
        metric = "accuracy" if single else "mcc"
        c, s = sites.candidate.get(metric), sites.serving.get(metric)
        if c is not None and s is not None and _finite(c) and _finite(s):
            better_on_sites = float(c) >= float(s) - SITE_MARGIN
            shown = (f"all {single}, share of them the verdict matches" if single else "MCC")
            reasons.append(
                f"sites' newest labels ({sites.n} held out by time, neither model fit on "
                f"them): {shown} candidate {_fmt(c)} vs serving {_fmt(s)}, "
                f"{'as good or better' if better_on_sites else 'WORSE'}; F1 "
                f"{_fmt(sites.candidate.get('f1'))} vs {_fmt(sites.serving.get('f1'))}"
            )
            if single:  # a trial operator labelled in posting order: the newest were spam
                other = "ham" if single == "spam" else "spam"
                reasons.append(
                    f"warning: no {other} among them, so the gate did not test how the "
                    f"candidate treats {other}; label some {other} among the newest comments "
                    "and train again to have it tested")
        else:
            reasons.append(f"sites' newest labels ({sites.n}): MCC not comparable (one class)")
    else:
        reasons.append("no site labels held out that the serving model was not fit on")
    worse_elsewhere: list[str] = []
    if elsewhere.candidate is not None and elsewhere.serving is not None and elsewhere.n:
        parts = []
        for name, tol in TOLERANCE.items():
            c, s = elsewhere.candidate.get(name), elsewhere.serving.get(name)
            if c is None or s is None or not (_finite(c) and _finite(s)):
                parts.append(f"{name} not comparable")
                continue
            ok = float(c) >= float(s) - tol
            if not ok:
                worse_elsewhere.append(name)
            parts.append(f"{name} {_fmt(c)} vs {_fmt(s)} (tolerance {tol}){'' if ok else ' WORSE'}")
        reasons.append(f"elsewhere ({elsewhere.n} comments of the data files' gate fold that "
                       f"neither model was fit on): " + "; ".join(parts))
    else:
        reasons.append("elsewhere: nothing to compare (the serving model was fit on all of the "
                       "data files, so no fold of them is new to it)")
    passed = better_on_sites is not False and not worse_elsewhere
    if not passed and better_on_sites is False:
        verdict = "refused: worse than the serving model on the sites' own newest labels"
    elif not passed:
        on_sites = ("as good on the sites' labels but " if better_on_sites
                    else "no site labels to compare; ")  # None: nothing held out of them
        verdict = (f"refused: {on_sites}worse elsewhere beyond the "
                   f"tolerance ({', '.join(worse_elsewhere)})")
    elif better_on_sites:
        verdict = ("promotable: at least as good on the sites' own newest labels and not "
                   "worse elsewhere beyond the tolerance")
    else:
        verdict = "promotable: not worse than the serving model on anything held out"
    return GateResult(passed, [*reasons, verdict], candidate_rows, serving_rows,
                      serving_version, verdict)


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
