"""Train and evaluate the toxicity model family.

One scikit-learn Pipeline: :class:`~training.features.CommentFeatures` (word and
character TF-IDF, no spam signals) feeding a
:class:`~training.features.MaskedMultiOutput` of logistic regressions over
naive-Bayes-scaled features (:class:`~training.features.NBScaled`), one per
attribute. Each attribute is learnt only from rows whose corpus judged it:

============== ==============================================================
TOXICITY        Toxic Spans train (all toxic), Davidson (hate or offensive vs
                neither), half the Wikipedia Talk set, Perspective's scored
                sample (score >= 0.5), non-toxic texts (spam corpora ham,
                identity templates), moderators' toxicity labels
SEVERE_TOXICITY Davidson: every annotator said hate or offensive and at least
                one said hate speech; negatives as for TOXICITY
IDENTITY_ATTACK Davidson's "hate speech" class (attacks on a group)
PROFANITY       Davidson's "offensive language" class
============== ==============================================================

INSULT and THREAT have no labels in the shipped corpora, so they are not
served. Every corpus is English: every attribute supports English only
(Perspective never supported Ukrainian either).

Perspective's 2,000 scored Wikipedia comments train TOXICITY (their score >= 0.5
as the label), so agreement with Perspective is quoted for the other attributes
only, whose models never see those rows' labels.

Held out, never trained on: the other half of the Wikipedia Talk set (ROC AUC
for TOXICITY), the Toxic Spans *trial* file (span F1, SemEval-2021 Task 5), the
identity sentences of :data:`~training.identity.IDENTITY_CHECK` and the identity
template set of :func:`~training.identity.identity_bias`. Identity debiasing
(counterfactual copies, per-term re-weighing, neutral templates) lives in :mod:`training.identity`.
This module never imports Flask.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from service.registry.versions import Registry
from service.scoring.toxicity import word_span_score
from training import identity
from training.datasets import SHIPPED_DATA
from training.features import (
    CommentFeatures,
    MaskedMultiOutput,
    NBScaled,
    dedup_key,
    token_contributions,
)
from training.identity import IDENTITY_CHECK
from training.text import model_text

FAMILY = "toxicity"
ATTRIBUTES: tuple[str, ...] = ("TOXICITY", "SEVERE_TOXICITY", "IDENTITY_ATTACK", "PROFANITY")
LANGUAGES: dict[str, list[str]] = {a: ["en"] for a in ATTRIBUTES}
NAN = float("nan")
SPAN_SCALE = 8.0  # slope of the span score around the tuned contribution threshold
SPAN_LEXICON_MIN_COUNT = 3  # with SPAN_LEXICON_RATIO: 5-fold CV on the train file
_WORD = re.compile(r"\w+")  # as training.features token_contributions' words
MIN_TOXICITY_AUC = 0.85
DAVIDSON_OFFENSIVE_SHARE = 0.3
# Sources that are few but closest to what the service sees (long discussion
# comments; neutral mentions of identities) count more in the fit; the swapped
# copies count less than the rows they copy.
SOURCE_WEIGHTS = {
    "wikipedia-talk": 5.0, "perspective": 10.0, "identity-templates": 10.0, "labels": 3.0,
    "counterfactual": 0.25,
}
# TOXICITY's logistic regression: its C and the naive-Bayes scaling
# (training.features.NBScaled) were chosen by 5-fold cross-validation on the
# in-domain training rows (Wikipedia Talk training half and Perspective's sample),
# never on a held-out set (docs/toxicity.md). The other attributes, which only
# Davidson's tweets label, keep the plain C=4 regression they had: the same
# settings cost them agreement with Perspective.
CLASSIFIER_C = 0.5
NB_ALPHA = 1.0
OTHER_ATTRIBUTES_C = 4.0
HELD_OUT_PREFIX = 60  # a training text starting (60 key characters) as a held-out one is dropped
# Identity debiasing (training/identity.py; measured in docs/toxicity.md):
# swapped copies of each short training row that mentions a group term (not of
# whole Toxic Spans comments, toxic whatever their topic, nor of the long
# Wikipedia comments, whose swaps cost held-out AUC), and the cap of the
# per-term re-weighing (1.0: off).
COUNTERFACTUAL_COPIES = 1
COUNTERFACTUAL_SOURCES = frozenset({"toxic-spans-sentences", "davidson"})
IDENTITY_BALANCE_CAP = 10.0
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")  # promotion gate on the held-out Wikipedia Talk half

DAVIDSON = "davidson_labeled_data.csv"
SPANS_TRAIN = "toxic_spans_tsd_train.csv"
SPANS_TRIAL = "toxic_spans_tsd_trial.csv"
WIKI = "wiki_toxicity_nonfuzzed_testset.csv"
PERSPECTIVE = "perspective_wikipedia_2k_score_sample_20180829.csv"
PERSPECTIVE_TRAINS = ("TOXICITY",)  # attributes perspective_rows labels (not quoted as agreement)
PERSPECTIVE_COLUMNS = {
    "TOXICITY": "TOXICITY@6",
    "SEVERE_TOXICITY": "SEVERE_TOXICITY@2",
    "IDENTITY_ATTACK": "IDENTITY_ATTACK",
    "PROFANITY": "PROFANITY",
}

class ToxicityDataError(ValueError):
    """The toxicity corpora could not be found or read."""


@dataclass(frozen=True)
class Row:
    text: str
    labels: tuple[float, ...]  # one per ATTRIBUTES entry; NaN = not judged
    source: str


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible sampling, not security


SHIPPED_TOXICITY = SHIPPED_DATA / "toxicity"


def default_data_dir() -> Path:
    """The corpora that ship with the code (``training/data/toxicity``, gzip-compressed)."""
    return SHIPPED_TOXICITY


def _read_csv(path: Path) -> list[dict[str, str]]:
    """``NAME.csv`` as rows, read from ``NAME.csv`` or, as shipped, ``NAME.csv.gz``."""
    packed = path.with_name(path.name + ".gz")
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    if packed.is_file():
        with gzip.open(packed, "rt", newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    raise ToxicityDataError(
        f"{path} (or {packed.name}) is missing (see training/data/toxicity/ATTRIBUTION.md)"
    )


def _in_half(key: str, test: bool) -> bool:
    """Deterministic 50/50 split by hash: the same text always falls on the same side."""
    digest = hashlib.sha256(dedup_key(key).encode()).digest()
    return (digest[0] % 2 == 0) == test


def _row(text: str, source: str, **labels: float) -> Row:
    return Row(text, tuple(float(labels.get(a, NAN)) for a in ATTRIBUTES), source)


def davidson_rows(data_dir: Path) -> list[Row]:
    """All hate speech and "neither" tweets, and a sample of the 19,190 offensive ones
    (so that tweets do not drown the news comments)."""
    rows = []
    rng = _rng(3)
    for r in _read_csv(data_dir / DAVIDSON):
        if r["class"] == "1" and rng.random() > DAVIDSON_OFFENSIVE_SHARE:
            continue
        count, hate, off = int(r["count"]), int(r["hate_speech"]), int(r["offensive_language"])
        cls = int(r["class"])
        toxic = float(cls in (0, 1))
        severe = float(hate + off == count and hate >= 1)
        rows.append(
            _row(r["tweet"], "davidson", TOXICITY=toxic, SEVERE_TOXICITY=severe,
                 IDENTITY_ATTACK=float(cls == 0), PROFANITY=float(cls == 1))
        )
    return rows


def wiki_rows(data_dir: Path, *, test: bool) -> list[Row]:
    return [
        _row(r["comment"], "wikipedia-talk", TOXICITY=float(r["toxic"] == "True"))
        for r in _read_csv(data_dir / WIKI)
        if _in_half(r["rev_id"], test)
    ]


def perspective_rows(data_dir: Path) -> list[Row]:
    """Perspective's 2,000 scored Wikipedia comments, TOXICITY >= 0.5 as the label: the
    closest corpus to Wikipedia Talk there is, so it trains TOXICITY (and only
    TOXICITY: the other attributes' agreement with Perspective stays a measure)."""
    column = PERSPECTIVE_COLUMNS["TOXICITY"]
    return [_row(r["comment_text"], "perspective", TOXICITY=float(float(r[column]) >= 0.5))
            for r in _read_csv(data_dir / PERSPECTIVE)]


def spans_rows(data_dir: Path, name: str) -> list[tuple[str, set[int]]]:
    return [(r["text"], set(json.loads(r["spans"]))) for r in _read_csv(data_dir / name)]


def sentence_rows(data_dir: Path) -> list[Row]:
    """Toxic Spans train comments as toxic wholes, and their sentences labelled by
    whether annotators marked a toxic character in them: news-comment language
    that is not toxic, which the other corpora lack."""
    rows = []
    for text, gold in spans_rows(data_dir, SPANS_TRAIN):
        rows.append(_row(text, "toxic-spans", TOXICITY=1.0))
        if not gold:
            continue
        for m in _SENTENCE.finditer(text):
            if len(m.group().split()) >= 3:
                hit = any(i in gold for i in range(m.start(), m.end()))
                rows.append(_row(m.group(), "toxic-spans-sentences", TOXICITY=float(hit)))
    return rows


def benign_rows() -> list[Row]:
    """Non-toxic texts: ham of the shipped YouTube set and the identity templates."""
    zero = {a: 0.0 for a in ATTRIBUTES}
    rows = [_row(t, "identity-templates", **zero) for t in identity.neutral_sentences()]
    yt = SHIPPED_DATA / "youtube-spam-collection"
    for path in sorted(yt.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows += [_row(r["CONTENT"], "youtube-ham", TOXICITY=0.0)
                     for r in csv.DictReader(fh) if r["CLASS"] == "0"]
    return rows


def training_rows(data_dir: Path, extra: Sequence[Row] = (), limit: int | None = None) -> list[Row]:
    """Every training row, de-duplicated, none from the held-out sets."""
    held_out = {dedup_key(t) for t, _ in spans_rows(data_dir, SPANS_TRIAL)}
    held_out |= {dedup_key(r.text) for r in wiki_rows(data_dir, test=True)}
    held_out |= {dedup_key(s) for s in IDENTITY_CHECK}
    held_out |= {dedup_key(s) for s, _, _ in identity.eval_sentences()}
    pool = sentence_rows(data_dir) + davidson_rows(data_dir)
    pool += wiki_rows(data_dir, test=False) + perspective_rows(data_dir) + list(extra)
    pool += counterfactual_rows(pool) + benign_rows()
    # Perspective's sample shares a few comments with the held-out Wikipedia half,
    # some with other white space or a cut tail: compare the starts too.
    near = {k[:HELD_OUT_PREFIX] for k in held_out}
    seen: set[str] = set()
    rows = []
    for r in pool:
        key = dedup_key(r.text)
        if key and key not in seen and key not in held_out and key[:HELD_OUT_PREFIX] not in near:
            seen.add(key)
            rows.append(r)
    if limit is not None and len(rows) > limit:
        rows = _rng(0).sample(rows, limit)
    return rows


def counterfactual_rows(rows: Sequence[Row]) -> list[Row]:
    """Copies of the rows that mention a group term, the term swapped for others and
    the labels kept: the label must not lean on which identity is named."""
    rng = _rng(4)
    return [
        Row(text, r.labels, "counterfactual")
        for r in rows
        if r.source in COUNTERFACTUAL_SOURCES
        for text in identity.counterfactuals(r.text, COUNTERFACTUAL_COPIES, rng)
    ]


def fit_weights(rows: Sequence[Row]) -> list[float]:
    """Source weights, re-balanced per group term on TOXICITY (templates excluded)."""
    weights = [SOURCE_WEIGHTS.get(r.source, 1.0) for r in rows]
    if IDENTITY_BALANCE_CAP <= 1.0:
        return weights
    mentions = [None if r.source == "identity-templates" else identity.group_terms(r.text)
                for r in rows]
    return identity.balance_weights(mentions, [r.labels[0] for r in rows], weights,
                                    IDENTITY_BALANCE_CAP)


def build_pipeline(small: bool = False) -> Pipeline:
    features = CommentFeatures(
        word_ngrams=(1, 2),
        char_ngrams=(3, 5) if not small else (3, 4),
        min_df=2,
        max_features=100_000 if not small else 20_000,
        use_signals=False,
    )
    def lr(c: float) -> LogisticRegression:
        return LogisticRegression(C=c, class_weight="balanced", max_iter=1000, solver="liblinear")

    toxicity = NBScaled(lr(CLASSIFIER_C), alpha=NB_ALPHA)
    clf = MaskedMultiOutput(lr(OTHER_ATTRIBUTES_C), ATTRIBUTES, per_output={"TOXICITY": toxicity})
    return Pipeline([("features", features), ("clf", clf)])


# --- spans -------------------------------------------------------------------


def span_scores(
    pipeline: Pipeline, text: str, attribute: str = "TOXICITY", threshold: float = 0.0
) -> list[tuple[int, int, float]]:
    """Per-word (begin, end, score) as the service computes them
    (:func:`service.scoring.toxicity.word_span_score`: the span lexicon, if the model has
    one, else the attribute's linear model); Python offsets."""
    features = pipeline.named_steps["features"]
    clf = pipeline.named_steps["clf"]
    k = clf.outputs.index(attribute)
    row = features.transform([text])
    lexicon = getattr(clf, "span_lexicon_", None) if attribute == "TOXICITY" else None
    out = []
    for begin, end, c in token_contributions(features, row, clf.coef_[k], text):
        word = model_text(text[begin:end]) if lexicon else ""
        out.append((begin, end, word_span_score(c, threshold, word, lexicon)))
    return out


def span_lexicon(examples: Sequence[tuple[str, set[int]]]) -> dict[str, float]:
    """Each word seen at least SPAN_LEXICON_MIN_COUNT times in the Toxic Spans training
    comments, with the share of its occurrences annotators marked toxic.

    A plain lexicon of the annotations beats the linear model's per-word shares
    at span F1 (0.618 against 0.578 on the trial file, docs/toxicity.md): the
    comment-level model spreads the blame over every word of a toxic comment."""
    toxic: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for text, gold in examples:
        for m in _WORD.finditer(text):
            word = model_text(m.group())
            seen[word] += 1
            if any(i in gold for i in range(m.start(), m.end())):
                toxic[word] += 1
    return {w: round(toxic[w] / n, 4) for w, n in seen.items() if n >= SPAN_LEXICON_MIN_COUNT}


def toxic_offsets(spans: Sequence[tuple[int, int, float]], text: str) -> set[int]:
    """Character offsets of words scored >= 0.5, with the spaces between adjacent ones."""
    offsets: set[int] = set()
    last_end: int | None = None
    for begin, end, score in spans:
        if score < 0.5:
            last_end = None
            continue
        if last_end is not None and not text[last_end:begin].strip():
            offsets.update(range(last_end, begin))
        offsets.update(range(begin, end))
        last_end = end
    return offsets


def span_f1(predicted: set[int], gold: set[int]) -> float:
    """SemEval-2021 Task 5: per-comment F1 of character offsets (both empty: 1)."""
    if not predicted and not gold:
        return 1.0
    if not predicted or not gold:
        return 0.0
    tp = len(predicted & gold)
    if tp == 0:
        return 0.0
    p, r = tp / len(predicted), tp / len(gold)
    return 2 * p * r / (p + r)


def tune_span_threshold(pipeline: Pipeline, examples: Sequence[tuple[str, set[int]]]) -> float:
    """The contribution threshold with the best mean span F1 on training comments."""
    contributions = []
    for text, gold in examples:
        raw = span_scores(pipeline, text, threshold=0.0)
        contributions.append((text, gold, raw))
    best, best_f1 = 0.0, -1.0
    for t in np.linspace(-0.1, 0.6, 29):
        f1s = []
        for text, gold, raw in contributions:
            # score >= 0.5 <=> contribution >= t, so reuse the zero-threshold scores
            shifted = [(b, e, 1.0 if _logit(s) / SPAN_SCALE >= t else 0.0) for b, e, s in raw]
            f1s.append(span_f1(toxic_offsets(shifted, text), gold))
        mean = float(np.mean(f1s))
        if mean > best_f1:
            best, best_f1 = float(t), mean
    return round(best, 4)


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


# --- training ----------------------------------------------------------------


@dataclass
class ToxicityResult:
    version: str
    metrics: dict[str, Any]
    n_train: int
    sources: dict[str, int]
    span_threshold: float
    promoted: bool = False
    evaluation: dict[str, Any] = field(default_factory=dict)


def _matrix(rows: Sequence[Row]) -> np.ndarray:
    return np.array([r.labels for r in rows], dtype=np.float64)


def attribute_metrics(pipeline: Pipeline, rows: Sequence[Row]) -> dict[str, Any]:
    """Per-attribute ROC AUC and counts on rows judged for that attribute."""
    probs = pipeline.predict_proba([r.text for r in rows])
    labels = _matrix(rows)
    out: dict[str, Any] = {}
    for k, attr in enumerate(ATTRIBUTES):
        known = ~np.isnan(labels[:, k])
        y = labels[known, k]
        auc = float(roc_auc_score(y, probs[known, k])) if len(set(y)) > 1 else NAN
        out[attr] = {"n": int(known.sum()), "positives": int(y.sum()), "roc_auc": auc}
    return out


def train_toxicity(
    registry: Registry,
    data_dir: Path,
    *,
    extra: Sequence[Row] = (),
    limit: int | None = None,
    small: bool = False,
    evaluate_after: bool = True,
    span_tuning: int = 300,
) -> ToxicityResult:
    """Fit on the training rows (a 10 % validation slice held back), save, evaluate."""
    rows = training_rows(data_dir, extra, limit)
    rng = _rng(1)
    valid = [r for r in rows if rng.random() < 0.1]
    valid_keys = {id(r) for r in valid}
    train = [r for r in rows if id(r) not in valid_keys]
    pipeline = build_pipeline(small)
    weights = fit_weights(train)
    pipeline.fit([r.text for r in train], _matrix(train), clf__sample_weight=weights)
    span_train = spans_rows(data_dir, SPANS_TRAIN)
    threshold = tune_span_threshold(pipeline, _rng(2).sample(span_train, span_tuning))
    pipeline.named_steps["clf"].span_threshold_ = threshold
    pipeline.named_steps["clf"].span_lexicon_ = span_lexicon(span_train)
    sources: dict[str, int] = {}
    for r in train:
        sources[r.source] = sources.get(r.source, 0) + 1
    validation = attribute_metrics(pipeline, valid)
    evaluation = evaluate(pipeline, data_dir, threshold) if evaluate_after else {}
    meta = {
        "data": {
            "description": [str(data_dir), "YouTube ham (shipped)", "identity templates"],
            "perspective_trains": list(PERSPECTIVE_TRAINS),
            "sources": sources,
            "examples": len(train),
            "sha256": hashlib.sha256(
                "\n".join(sorted(dedup_key(r.text) for r in train)).encode()
            ).hexdigest(),
        },
        "attributes": list(ATTRIBUTES),
        "languages": LANGUAGES,
        "not_served": {
            "INSULT": "no labelled data", "THREAT": "no labelled data",
        },
        "span_threshold": threshold,
        "source_weights": SOURCE_WEIGHTS,
        "classifier": {"TOXICITY": {"C": CLASSIFIER_C, "nb_alpha": NB_ALPHA,
                                    "chosen_by": "5-fold CV on training rows"},
                       "others": {"C": OTHER_ATTRIBUTES_C}},
        "identity_debiasing": {
            "counterfactual_copies": COUNTERFACTUAL_COPIES,
            "balance_cap": IDENTITY_BALANCE_CAP,
            "group_terms": list(identity.GROUP_TERMS),
        },
        "evaluation": {
            "protocol": "10% validation slice of the training pool; held-out sets below",
            "metrics": validation,
            "held_out": evaluation,
        },
        # The spam family's threshold keys, so that generic tools can read them.
        "thresholds": {"unsure": 0.5, "spam": 0.8, "discard": 1.0},
        "code_version": _code_version(),
    }
    version = registry.save(pipeline, meta, family=FAMILY)
    return ToxicityResult(version, validation, len(train), sources, threshold,
                          evaluation=evaluation)


def _code_version() -> str:
    from training.train import code_version

    return code_version()


def gate(result: ToxicityResult) -> str | None:
    """Why the model must not be promoted, or None when it may be."""
    auc = result.evaluation.get("wikipedia_talk", {}).get("roc_auc")
    if auc is None:
        auc = result.metrics["TOXICITY"]["roc_auc"]
    if not auc >= MIN_TOXICITY_AUC:
        return f"TOXICITY ROC AUC {auc:.3f} is below the gate {MIN_TOXICITY_AUC}"
    return None


# --- evaluation --------------------------------------------------------------


def evaluate(pipeline: Pipeline, data_dir: Path, span_threshold: float) -> dict[str, Any]:
    """Every held-out figure of docs/toxicity.md."""
    out: dict[str, Any] = {}
    wiki = wiki_rows(data_dir, test=True)
    probs = pipeline.predict_proba([r.text for r in wiki])[:, 0]
    y = [r.labels[0] for r in wiki]
    out["wikipedia_talk"] = {
        "n": len(wiki), "toxic": int(sum(y)), "roc_auc": float(roc_auc_score(y, probs))
    }
    persp = _read_csv(data_dir / PERSPECTIVE)
    probs = pipeline.predict_proba([r["comment_text"] for r in persp])
    agreement: dict[str, Any] = {}
    for k, attr in enumerate(ATTRIBUTES):
        if attr in PERSPECTIVE_TRAINS:
            continue  # trained on these very rows: agreement would measure memory
        theirs = np.array([float(r[PERSPECTIVE_COLUMNS[attr]]) for r in persp])
        binary = theirs >= 0.5
        rho = spearmanr(theirs, probs[:, k]).statistic
        agreement[attr] = {
            "n": len(persp),
            "perspective_positive": int(binary.sum()),
            "roc_auc": float(roc_auc_score(binary, probs[:, k])),
            "spearman": float(rho),
        }
    out["perspective_agreement"] = agreement
    trial = spans_rows(data_dir, SPANS_TRIAL)
    f1s = [
        span_f1(toxic_offsets(span_scores(pipeline, text, threshold=span_threshold), text), gold)
        for text, gold in trial
    ]
    out["toxic_spans_trial"] = {"n": len(trial), "span_f1": float(np.mean(f1s))}
    scores = pipeline.predict_proba(list(IDENTITY_CHECK))[:, 0]
    out["identity_check"] = {
        "sentences": {s: round(float(p), 4) for s, p in zip(IDENTITY_CHECK, scores, strict=True)},
        "max_toxicity": float(scores.max()),
        "scored_toxic": int((scores >= 0.5).sum()),
    }
    out["identity_bias"] = identity.identity_bias(
        lambda texts: pipeline.predict_proba(texts)[:, 0].tolist()
    )
    return out


def format_evaluation(ev: dict[str, Any]) -> str:
    """The evaluation as the fixed-width text the CLI and bench script print."""
    w = ev["wikipedia_talk"]
    lines = [
        f"Wikipedia Talk (held-out half, n={w['n']}, toxic={w['toxic']}): "
        f"TOXICITY ROC AUC {w['roc_auc']:.4f}",
        "",
        "Agreement with Perspective's own scores (2,000 Wikipedia comments; not "
        f"{', '.join(PERSPECTIVE_TRAINS)}, trained on them):",
        f"  {'attribute':18} {'P>=0.5':>7} {'AUC':>7} {'Spearman':>9}",
    ]
    for attr, a in ev["perspective_agreement"].items():
        lines.append(
            f"  {attr:18} {a['perspective_positive']:>7} {a['roc_auc']:>7.4f} {a['spearman']:>9.4f}"
        )
    s = ev["toxic_spans_trial"]
    lines += ["", f"Toxic Spans trial (held out, n={s['n']}): span F1 {s['span_f1']:.4f}", ""]
    ic = ev["identity_check"]
    lines.append(
        f"Identity mentions (held-out sentences): {ic['scored_toxic']} of "
        f"{len(ic['sentences'])} scored >= 0.5; max TOXICITY {ic['max_toxicity']:.3f}"
    )
    for sentence, p in ic["sentences"].items():
        lines.append(f"  {p:.3f}  {sentence}")
    if "identity_bias" in ev:
        lines += ["", *format_identity_bias(ev["identity_bias"])]
    return "\n".join(lines)


def format_identity_bias(ib: dict[str, Any]) -> list[str]:
    """The per-identity table of the held-out template set (* = an identity that no
    training list names)."""
    t = ib["threshold"]
    lines = [
        f"Identity templates (held out, other wording; {ib['n_neutral']} neutral, "
        f"{ib['n_toxic']} attacks): neutral scored >= {t}: {ib['neutral_flagged']:.1%}, "
        f"attacks scored >= {t}: {ib['toxic_flagged']:.1%}, AUC {ib['auc']:.4f}, "
        f"lowest BPSN AUC {ib['min_bpsn_auc']:.4f} ({ib['worst_identity']})",
        f"  {'identity':12} {'neutral>=.5':>11} {'neutral mean':>12} {'attacks>=.5':>11} "
        f"{'subgroup':>8} {'BPSN':>6} {'BNSP':>6}",
    ]
    for name, m in ib["identities"].items():
        label = name + ("*" if m["unseen"] else "")
        lines.append(
            f"  {label:12} {m['neutral_flagged']:>11.0%} {m['neutral_mean']:>12.3f} "
            f"{m['toxic_flagged']:>11.0%} {m['subgroup_auc']:>8.3f} {m['bpsn_auc']:>6.3f} "
            f"{m['bnsp_auc']:>6.3f}"
        )
    return lines


def labelled_rows(store: Any) -> list[Row]:
    """Toxicity labels from the store (moderators, suggestscore): newest per comment
    and attribute wins; a label ``toxic`` or a score >= 0.5 counts as positive."""
    from sqlalchemy import select

    from service.store import schema as t
    q = (
        select(t.labels.c.comment_id, t.labels.c.attribute, t.labels.c.label,
               t.labels.c.score, t.comments.c.content)
        .join(t.comments, t.comments.c.id == t.labels.c.comment_id)
        .where(t.labels.c.task == "toxicity", t.labels.c.is_test.is_(False),
               t.comments.c.content.is_not(None))
        .order_by(t.labels.c.id)
    )
    latest: dict[tuple[int, str], tuple[str, float]] = {}
    for r in store.read(lambda c: c.execute(q).all()):
        attr = (r.attribute or "TOXICITY").upper()
        if attr in ATTRIBUTES:
            value = r.score if r.score is not None else float(r.label == "toxic")
            latest[(r.comment_id, attr)] = (r.content, float(value >= 0.5))
    by_text: dict[str, dict[str, float]] = {}
    for (_, attr), (content, value) in latest.items():
        by_text.setdefault(content, {})[attr] = value
    return [_row(text, "labels", **labels) for text, labels in by_text.items()]
