"""The serving model: loaded once, checked, hot-swapped when the pointer moves.

A :class:`ModelHolder` keeps one reference to the current :class:`Scorer`.
Workers call :meth:`ModelHolder.maybe_reload` (cheap: a ``stat`` at most every
``reload_interval`` seconds); a new version is verified, unpickled and
smoke-tested before the reference is swapped, and a failure keeps the old
model serving.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import ModelError
from service.registry.lean import LeanScorer, compile_pipeline, sigmoid
from service.registry.versions import LoadedModel, Registry
from training.text import (
    BACKOFF_GATE,
    BACKOFF_PREFIX,
    SIGNAL_INDEX,
    SIGNALS,
    Comment,
    familiarity,
    merge_contributions,
    model_text,
    text_words,
    top_reasons,
    unreadable,
)

log = logging.getLogger(__name__)


SMOKE_COMMENTS = (
    Comment(content="Check out my channel and subscribe http://bit.ly/x"),
    Comment(content="Thanks for the thoughtful article, the council vote was close."),
    Comment(content="Спасибо за статью"),
    Comment(content="🙂"),
)


@dataclass(frozen=True, slots=True)
class Reason:
    kind: str  # token, feature, rule
    description: str
    direction: str  # spam or ham
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "direction": self.direction,
            "weight": round(self.weight, 4),
        }


class Scorer:
    """Probability and explanation for comments, from a verified pipeline or from
    its compiled tables alone (then scikit-learn is never imported).

    For a linear classifier the features are computed once per call and give
    both the probability and each feature's contribution (coefficient x value).
    A single comment goes through the compiled :class:`~service.registry.lean.LeanScorer`
    (same numbers, a fraction of scikit-learn's per-call overhead); a batch goes
    through scikit-learn, whose cost per comment falls with the batch size.
    """

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.version = model.version
        self.thresholds = model.thresholds
        if model.lean is not None and not isinstance(model.lean, LeanScorer):
            raise ModelError(f"model {model.version!r} is a {model.family} model, "
                             "not a binary spam model")
        self.lean: LeanScorer | None = model.lean
        self._features: Any = None  # CommentFeatures; None for a non-linear pipeline
        if model.pipeline is None:  # compiled tables only (Registry.load_serving)
            if self.lean is None:
                raise ModelError(f"model {model.version!r} has neither a pipeline nor tables")
            self._linear = True
            return
        steps: dict[str, Any] = dict(model.pipeline.named_steps)
        self._features = steps.get("features")
        clf: Any = steps.get("clf")
        coef: Any = getattr(clf, "coef_", None)
        self._linear = coef is not None and self._features is not None and coef.shape[0] == 1
        if self._linear:
            self._coef = np.asarray(coef[0], dtype=np.float64)
            self._intercept = float(clf.intercept_[0])
            # A hashing vectorizer (out-of-core models) has no vocabulary: it names
            # features on demand.
            namer = getattr(self._features, "feature_name", None)
            if namer is None:
                namer = steps["features"].get_feature_names_out().__getitem__
            self._name: Callable[[int], str] = namer
            if self.lean is None:
                self.lean = compile_pipeline(model.pipeline)

    def score(self, comments: list[Comment], explain: int = 5) -> list[tuple[float, list[Reason]]]:
        if not self._linear:
            probs = self.model.pipeline.predict_proba(comments)[:, 1]
            return [(float(p), []) for p in probs]
        if self.lean is not None and (len(comments) == 1 or self.model.pipeline is None):
            return [self._score_lean(self.lean, c, explain) for c in comments]
        X = self._features.transform(comments)
        margins = X @ self._coef + self._intercept
        out = []
        for i, margin in enumerate(margins):
            reasons = self._row_reasons(comments[i], X.getrow(i), explain) if explain else []
            out.append((sigmoid(float(margin)), reasons))
        return out

    def familiarity(self, comment: Comment) -> float | None:
        """Share of the comment's letters in words the model met in training (None:
        cannot tell, or too few letters). Text in an unseen script or vocabulary
        scores near 0."""
        vocab: Any = None
        if self.lean is not None:
            vocab = self.lean.word.weights.index
        elif self._features is not None and hasattr(self._features, "word_"):
            vocab = self._features.word_.vocabulary_
        if vocab is None:
            return None
        return familiarity(model_text(comment.content), vocab)

    def by_signals(self, comment: Comment) -> bool:
        """Whether this model scores ``comment`` by its signals alone: it was trained
        with the backoff and its character block cannot read the comment
        (:func:`training.text.unreadable`: another language or script)."""
        if self.lean is not None:
            return self.lean.unfamiliar(model_text(comment.content))
        features = self._features
        if not getattr(features, "backoff", False):
            return False
        return unreadable(text_words(model_text(comment.content)),
                          features.char_.vocabulary_, features.backoff_share)

    def backoff_spam(self) -> float:
        """The spam threshold of the signals-alone model (:meth:`by_signals`)."""
        if self.lean is not None:
            return self.lean.backoff_spam
        clf = self.model.pipeline.named_steps["clf"]
        return float(getattr(clf, "spam_threshold_", 1.0))

    def signal_weight(self, name: str) -> float | None:
        """The coefficient of the hand-made signal ``name`` (``flood``...), or None when
        the model has no such weight. Signals are the last features of every layout."""
        if not self._linear:
            return None
        if self.model.pipeline is None and self.lean is not None:
            if self.lean.signal_coef is None:
                return None
            index = SIGNAL_INDEX.get(name)
            return None if index is None else self.lean.signal_coef[index]
        total = len(self._coef)  # the signals, then (with a backoff) its block
        for i in range(max(total - 2 * len(SIGNALS) - 1, 0), total):
            if self._name(i) == f"signal:{name}":
                return float(self._coef[i])
        return None

    def _score_lean(
        self, lean: LeanScorer, comment: Comment, explain: int
    ) -> tuple[float, list[Reason]]:
        if not explain:
            return sigmoid(lean.margin(comment)), []
        margin, contributions = lean.explain(comment)  # char n-grams already in their words
        return sigmoid(margin), self._top(contributions, explain, comment)

    def _row_reasons(self, comment: Comment, row: Any, k: int) -> list[Reason]:
        contributions = {}
        for j, v in zip(row.indices, row.data, strict=True):
            name = str(self._name(int(j)))
            if name == BACKOFF_GATE or name.startswith("hashed:"):
                continue  # the backoff's intercept; a hashed n-gram has no words to show
            if name.startswith(BACKOFF_PREFIX):  # a signal, read by the backoff model
                name = "signal:" + name.removeprefix(BACKOFF_PREFIX)
            contributions[name] = float(v * self._coef[j])
        return self._reasons(comment, model_text(comment.content), contributions, k)

    def _reasons(
        self, comment: Comment, text: str, contributions: dict[str, float], k: int
    ) -> list[Reason]:
        char = getattr(self._features, "char_", None)
        merged = merge_contributions(
            text,
            contributions,
            (char.ngram_range[0], char.ngram_range[1]) if char is not None else None,
        )
        return self._top(merged, k, comment)

    @staticmethod
    def _top(contributions: dict[str, float], k: int, comment: Comment) -> list[Reason]:
        return [
            Reason(kind, words, "spam" if value > 0 else "ham", value)
            for kind, words, value in top_reasons(contributions, k, comment)
        ]


def smoke_test(scorer: Scorer) -> None:
    """A model must score a few fixed comments with finite probabilities in [0, 1]."""
    for prob, _ in scorer.score(list(SMOKE_COMMENTS)):
        if not (0.0 <= prob <= 1.0) or math.isnan(prob):
            raise ModelError(f"smoke test gave probability {prob}")
    limits = scorer.thresholds
    if not 0 <= limits["unsure"] <= limits["spam"] <= limits["discard"] <= 1:
        raise ModelError(f"thresholds out of order: {limits}")


def load_scorer(registry: Registry, version: str) -> Scorer:
    """Verify, load and smoke-test a version: what must pass before it may serve."""
    scorer = Scorer(registry.load_serving(version))
    try:
        smoke_test(scorer)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"model {version!r} failed its smoke test: {exc}") from exc
    return scorer


class ModelHolder:
    """The current model of one family, reloaded when the registry pointer moves."""

    def __init__(
        self, registry: Registry, family: str = "spam", reload_interval: float = 2.0
    ) -> None:
        self.registry = registry
        self.family = family
        self.reload_interval = reload_interval
        self.freeze_after_load = False  # gc.freeze() after a swap: set in server workers
        self._scorer: Scorer | None = None
        self._lock = threading.Lock()
        self._next_check = 0.0
        self._pointer_token: object = None
        self.last_error: str | None = None
        self.on_swap: list[Callable[[str, str | None], None]] = []

    @property
    def loaded(self) -> bool:
        return self._scorer is not None

    def scorer(self) -> Scorer:
        if self._scorer is None:
            # No model yet (a first one may be training in the background): a moved
            # pointer is looked at now, not at the next poll, so that once one worker
            # serves the new model no other answers "unavailable" for seconds more.
            try:
                moved = self.registry.pointer_token(self.family) != self._pointer_token
            except Exception:  # the database registry may be unreachable
                moved = False
            if moved:
                self.maybe_reload(force=True)
        self.maybe_reload()
        scorer = self._scorer
        if scorer is None:
            raise ModelError(
                self.last_error
                or f"no {self.family} model is loaded; run `commentmod train --promote`"
            )
        return scorer

    def _load(self, version: str) -> Any:
        """Verify, load and smoke-test ``version``; families with another scorer override it."""
        return load_scorer(self.registry, version)

    def load_current(self) -> bool:
        """Load the version the pointer names if it differs from the serving one."""
        version = self.registry.current(self.family)
        if version is None:
            self.last_error = f"no current {self.family} model in {self.registry.root}"
            return False
        if self._scorer is not None and self._scorer.version == version:
            return False
        try:
            scorer = self._load(version)
        except Exception as exc:
            self.last_error = f"model {version} refused: {exc}"
            log.error("model.refused", extra={"version": version, "error": str(exc)})
            return False
        previous = self._scorer.version if self._scorer else None
        self._scorer = scorer
        del scorer
        # A model is ~170,000 long-lived objects: left to the cyclic collector, each
        # full collection walked them all (100+ ms, the p99 of a request that hit
        # one). The previous model goes by reference counting; the new one is frozen.
        # Only in a server's worker (set after the fork): a process that builds many
        # apps (tests, the CLI) would keep every one of them, frozen, for good.
        if self.freeze_after_load:
            gc.collect()
            gc.freeze()
        self.last_error = None
        log.info("model.loaded", extra={"version": version, "previous": previous})
        for callback in self.on_swap:
            callback(version, previous)
        return True

    def maybe_reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_check:
            return
        with self._lock:
            self._next_check = now + self.reload_interval
            try:
                token = self.registry.pointer_token(self.family)
            except Exception as exc:  # the database registry may be unreachable: keep serving
                self.last_error = f"cannot read the current-model pointer: {exc}"
                log.error("model.pointer_unreadable", extra={"error": str(exc)})
                return
            if not force and token == self._pointer_token and self._scorer is not None:
                return
            self._pointer_token = token
            try:
                self.load_current()
            except Exception as exc:  # never let a bad pointer take the serving model down
                self.last_error = str(exc)
                log.error("model.reload_failed", extra={"error": str(exc)})
