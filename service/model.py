"""The serving model: loaded once, checked, hot-swapped when the pointer moves.

A :class:`ModelHolder` keeps one reference to the current :class:`Scorer`.
Workers call :meth:`ModelHolder.maybe_reload` (cheap: a ``stat`` at most every
``reload_interval`` seconds); a new version is verified, unpickled and
smoke-tested before the reference is swapped, and a failure keeps the old
model serving.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import ModelError
from service.registry import LoadedModel, Registry
from training.features import Comment, describe_feature

log = logging.getLogger(__name__)

SMOKE_COMMENTS = (
    Comment(content="Check out my channel and subscribe http://bit.ly/x"),
    Comment(content="Thanks for the thoughtful article, the council vote was close."),
    Comment(content="Спасибо за статью"),
    Comment(content="🙂"),
)


@dataclass(frozen=True)
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
    """Probability and explanation for comments, from a verified pipeline.

    For a linear classifier the features are computed once per call and give
    both the probability and each feature's contribution (coefficient x value).
    """

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.version = model.version
        self.thresholds = model.thresholds
        steps: dict[str, Any] = dict(model.pipeline.named_steps)
        self._features: Any = steps.get("features")  # None for a non-linear pipeline
        clf: Any = steps.get("clf")
        coef: Any = getattr(clf, "coef_", None)
        self._linear = coef is not None and self._features is not None and coef.shape[0] == 1
        if self._linear:
            self._coef = np.asarray(coef[0], dtype=np.float64)
            self._intercept = float(clf.intercept_[0])
            # A hashing vectorizer has no vocabulary: it names features on demand.
            namer = getattr(self._features, "feature_name", None)
            if namer is None:
                namer = steps["features"].get_feature_names_out().__getitem__
            self._name: Callable[[int], str] = namer

    def score(self, comments: list[Comment], explain: int = 5) -> list[tuple[float, list[Reason]]]:
        if not self._linear:
            probs = self.model.pipeline.predict_proba(comments)[:, 1]
            return [(float(p), []) for p in probs]
        X = self._features.transform(comments)
        margins = X @ self._coef + self._intercept
        out = []
        for i, margin in enumerate(margins):
            prob = 1.0 / (1.0 + math.exp(-float(margin))) if margin > -700 else 0.0
            out.append((prob, self._reasons(X.getrow(i), explain) if explain else []))
        return out

    def _reasons(self, row: Any, k: int) -> list[Reason]:
        contrib = row.data * self._coef[row.indices]
        order = np.argsort(-np.abs(contrib))
        reasons: list[Reason] = []
        for j in order:
            value = float(contrib[j])
            if abs(value) < 0.05 or len(reasons) >= k:
                break
            kind, words = describe_feature(str(self._name(int(row.indices[j]))))
            if kind == "hashed" or any(r.description == words for r in reasons):
                continue
            reasons.append(Reason(kind, words, "spam" if value > 0 else "ham", value))
        return reasons


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
    scorer = Scorer(registry.load(version))
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
        self.maybe_reload()
        scorer = self._scorer
        if scorer is None:
            raise ModelError(
                self.last_error
                or f"no {self.family} model is loaded; run `commentmod train --promote`"
            )
        return scorer

    def load_current(self) -> bool:
        """Load the version the pointer names if it differs from the serving one."""
        version = self.registry.current(self.family)
        if version is None:
            self.last_error = f"no current {self.family} model in {self.registry.root}"
            return False
        if self._scorer is not None and self._scorer.version == version:
            return False
        try:
            scorer = load_scorer(self.registry, version)
        except Exception as exc:
            self.last_error = f"model {version} refused: {exc}"
            log.error("model.refused", extra={"version": version, "error": str(exc)})
            return False
        previous = self._scorer.version if self._scorer else None
        self._scorer = scorer
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
