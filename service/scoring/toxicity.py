"""The serving toxicity model: attribute probabilities and per-word spans.

The toxicity family lives in the same registry as the spam model and is
verified, smoke-tested and hot-reloaded by the same :class:`ModelHolder`; only
the scorer differs. Spans come from the model itself: each word's share of the
attribute's linear margin (:func:`training.features.token_contributions`).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from service.errors import ModelError
from service.registry.lean_multi import MultiLean, TextRow, compile_lean_multi
from service.registry.versions import LoadedModel, Registry
from service.scoring.model import ModelHolder

FAMILY = "toxicity"
SPAN_SCALE = 8.0  # as training.toxicity.SPAN_SCALE: slope around the span threshold
# The TOXICITY span lexicon (training.toxicity.span_lexicon): a word annotators
# marked toxic in at least this share of its Toxic Spans training occurrences is
# part of a span (chosen by 5-fold cross-validation on the training file).
SPAN_LEXICON_RATIO = 0.35
SPAN_LEXICON_SCALE = 10.0  # slope of the span score around that share
SMOKE_TEXTS = ("You are an idiot", "Thanks for the thoughtful article.", "🙂", "Спасибо")


@dataclass(frozen=True)
class Span:
    begin: int  # Python string offsets
    end: int
    score: float


class ToxicityScorer:
    """Attribute probabilities and word spans for texts, from a verified version's
    compiled arrays (:class:`~service.registry.lean_multi.MultiLean`, mapped from
    its file and shared by every process), or compiled at load from the pipeline
    of a version saved without them."""

    def __init__(self, model: LoadedModel) -> None:
        lean = model.lean
        if lean is None and model.pipeline is not None:
            lean = compile_lean_multi(model.pipeline)
            model = replace(model, pipeline=None)  # the arrays hold all it needs
        if not isinstance(lean, MultiLean):
            raise ModelError(f"model {model.version!r} is not a multi-output linear model")
        self.model = model
        self.version = model.version
        self.lean = lean
        self.attributes: tuple[str, ...] = lean.outputs
        self.span_threshold = float(model.metadata.get("span_threshold", 0.0))
        self.languages: dict[str, list[str]] = {
            a: list(model.metadata.get("languages", {}).get(a, ["en"])) for a in self.attributes
        }

    def score(self, texts: list[str]) -> tuple[list[TextRow], list[dict[str, float]]]:
        """(each text's features, one {attribute: probability} per text)."""
        rows = [self.lean.row(text) for text in texts]
        out = [dict(zip(self.attributes, self.lean.probabilities(row), strict=True))
               for row in rows]
        return rows, out

    def spans(self, text: str, row: TextRow, attribute: str) -> list[Span]:
        """Every word with its score for ``attribute`` (>= 0.5: part of a toxic span)."""
        k = self.attributes.index(attribute)
        words = self.lean.contributions(text, row, k)
        ratios: list[float | None] = [None] * len(words)
        if attribute == "TOXICITY":
            ratios = self.lean.lexicon_ratios(row)
        return [Span(b, e, span_score(c, self.span_threshold, ratio))
                for (b, e, c), ratio in zip(words, ratios, strict=True)]


def span_score(contribution: float, threshold: float, ratio: float | None) -> float:
    """A word's span score (>= 0.5: toxic): from its share of toxic occurrences in the
    span lexicon when it has one, else from its share of the linear margin around the
    tuned threshold."""
    if ratio is not None:
        z = SPAN_LEXICON_SCALE * (ratio - SPAN_LEXICON_RATIO)
    else:
        z = SPAN_SCALE * (contribution - threshold)
    z = max(min(z, 700.0), -700.0)
    return 1.0 / (1.0 + math.exp(-z))


def word_span_score(
    contribution: float, threshold: float, word: str, lexicon: dict[str, float] | None
) -> float:
    """:func:`span_score` with the word looked up in a lexicon given as a dict (training)."""
    return span_score(contribution, threshold, lexicon.get(word) if lexicon else None)


def toxic_spans(text: str, spans: list[Span]) -> list[Span]:
    """Adjacent words scored >= 0.5 merged into one span (the highest score)."""
    merged: list[Span] = []
    for s in spans:
        if s.score < 0.5:
            continue
        if merged and not text[merged[-1].end : s.begin].strip():
            last = merged.pop()
            s = Span(last.begin, s.end, max(last.score, s.score))
        merged.append(s)
    return merged


def load_toxicity_scorer(registry: Registry, version: str) -> ToxicityScorer:
    """Verify, load (its compiled arrays when it has them) and smoke-test a toxicity
    version."""
    model = registry.load_serving(version)
    if model.family != FAMILY:
        raise ModelError(f"model {version!r} is a {model.family} model, not {FAMILY}")
    try:
        scorer = ToxicityScorer(model)
        rows, scores = scorer.score(list(SMOKE_TEXTS))
        for row in scores:
            for value in row.values():
                if not 0.0 <= value <= 1.0 or math.isnan(value):
                    raise ModelError(f"smoke test gave probability {value}")
        scorer.spans(SMOKE_TEXTS[0], rows[0], scorer.attributes[0])
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"model {version!r} failed its smoke test: {exc}") from exc
    return scorer


class ToxicityHolder(ModelHolder):
    """The current toxicity model, reloaded like the spam model."""

    def __init__(self, registry: Registry, reload_interval: float = 2.0) -> None:
        super().__init__(registry, FAMILY, reload_interval)

    def _load(self, version: str) -> ToxicityScorer:
        return load_toxicity_scorer(self.registry, version)

    def toxicity_scorer(self) -> ToxicityScorer:
        scorer: Any = self.scorer()
        if not isinstance(scorer, ToxicityScorer):  # pragma: no cover - defensive
            raise ModelError("the toxicity holder holds a non-toxicity model")
        return scorer

    def unavailable_reason(self) -> str:
        return self.last_error or (
            "no toxicity model is loaded; run `commentmod toxicity train --promote`"
        )


def holder(res: Any) -> ToxicityHolder:
    """The toxicity holder of a Resources object (built by :func:`init_app`)."""
    found: ToxicityHolder | None = res.toxicity
    if found is None:
        raise ModelError("the toxicity model family is not set up in this app")
    return found


def init_app(res: Any) -> ToxicityHolder:
    """Add the toxicity holder to the app's resources; a missing model is not fatal."""
    h = ToxicityHolder(Registry(res.settings.model_dir), res.settings.reload_interval_seconds)
    h.maybe_reload(force=True)
    res.toxicity = h
    return h


# --- first-start training ----------------------------------------------------

# `commentmod serve` trains the first toxicity model in the background (the spam
# API answers meanwhile); the trainer keeps this file in data_dir while it runs.
BOOTSTRAP_STATUS = "toxicity-bootstrap.json"
BOOTSTRAP_EXPECTED_SECONDS = 240  # measured on a clean clone: docs/toxicity.md


def bootstrap_status(data_dir: Path) -> dict[str, Any] | None:
    """The background trainer's status (``state``: training or failed), or None when
    none runs (a stale file of a dead trainer counts as none)."""
    try:
        status: dict[str, Any] = json.loads((data_dir / BOOTSTRAP_STATUS).read_text())
    except (OSError, ValueError):
        return None
    if status.get("state") == "training":
        try:
            os.kill(int(status["pid"]), 0)
        except (OSError, KeyError, TypeError, ValueError):
            return None
    return status


def write_bootstrap_status(data_dir: Path, state: str, **fields: Any) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / BOOTSTRAP_STATUS
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"state": state, "pid": os.getpid(), "at": time.time(), **fields}))
    tmp.replace(path)


def unavailable_error(data_dir: Path) -> ModelError:
    """Why there is no toxicity model, in words an operator can act on; with a
    Retry-After while the first-start training runs."""
    status = bootstrap_status(data_dir)
    if status is not None and status.get("state") == "training":
        elapsed = time.time() - float(status.get("started_at", status["at"]))
        left = max(10, int(BOOTSTRAP_EXPECTED_SECONDS - elapsed))
        return ModelError(
            f"The toxicity model is being trained for the first time (started {elapsed:.0f} s "
            f"ago, usually about {BOOTSTRAP_EXPECTED_SECONDS} s); retry in {left} s.",
            retry_after=left,
        )
    if status is not None and status.get("state") == "failed":
        return ModelError(
            f"Training the first toxicity model failed ({status.get('error', 'unknown')}); "
            "the operator must run `commentmod toxicity train --promote`."
        )
    return ModelError(
        "The toxicity model is not available; the operator must run "
        "`commentmod toxicity train --promote`."
    )


def stored_toxicity(
    scores: dict[str, float], spans: list[Span] | None
) -> dict[str, Any]:
    """The comments.toxicity JSON the moderation queue reads (Python offsets)."""
    return {
        "scores": {a: round(v, 4) for a, v in scores.items()},
        "spans": [[s.begin, s.end, round(s.score, 4)] for s in spans or []],
    }


# --- language ----------------------------------------------------------------

_STOPWORDS = {
    "en": {"the", "and", "is", "you", "to", "of", "a", "i", "it", "that", "this", "are", "my",
           "am", "in", "for", "not", "be", "have", "was", "he", "she", "we", "they", "on"},
    "es": {"el", "la", "de", "que", "y", "en", "los", "es", "por", "una", "las", "con", "para"},
    "fr": {"le", "la", "les", "de", "et", "est", "une", "des", "je", "pas", "que", "vous", "pour"},
    "de": {"der", "die", "und", "das", "ist", "nicht", "ich", "sie", "es", "ein", "eine", "zu"},
    "it": {"il", "di", "che", "e", "la", "non", "sono", "per", "una", "gli", "ho", "questo"},
    "pt": {"o", "de", "que", "e", "do", "da", "em", "um", "para", "com", "não", "uma", "os"},
}
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W\d_]+")


def detect_language(text: str) -> str:
    """A coarse guess (ISO 639-1, or "und"): script first, then common words.

    Good enough to refuse what no attribute supports; not a language identifier.
    """
    letters = _LETTER.findall(text)
    if not letters:
        return "en"  # emoji, digits: nothing to go on, score it as English
    cyrillic = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    if cyrillic * 2 >= len(letters):
        return "uk" if re.search(r"[іїєґІЇЄҐ]", text) else "ru"
    latin = sum(1 for c in letters if c.isascii() or "\u00c0" <= c <= "\u024f")
    if latin * 2 < len(letters):
        return "und"
    words = [w.lower() for w in _WORD.findall(text)]
    hits = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(hits, key=lambda lang: hits[lang])
    if hits[best] == 0 or hits[best] == hits["en"]:
        return "en"
    return best
