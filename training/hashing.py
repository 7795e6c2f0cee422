"""The feature transformer of out-of-core models.

A :class:`~sklearn.feature_extraction.text.HashingVectorizer` needs no
vocabulary, so it can be applied chunk by chunk to a label set larger than
memory and fed to ``SGDClassifier.partial_fit``. It is pickled inside the
model's Pipeline, so, like :mod:`training.features`, this module imports
nothing but scikit-learn and the shared feature code: the web service loads
it when it unpickles such a model.

Hashed word features cannot be named back, so explanations of these models
name only the hand-made signals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer

from training.features import (
    LEGACY_SIGNALS,
    SIGNAL_INDEX,
    SIGNALS,
    _as_comment,
    normalise_text,
    signal_vector,
)
from training.spamlists import LURE_WORDS

HASHED = "hashed"


class HashedFeatures(TransformerMixin, BaseEstimator):
    """Hashed word n-grams (L2-normalised) beside the hand-made signals."""

    def __init__(
        self,
        n_features: int = 1 << 20,
        word_ngrams: tuple[int, int] = (1, 2),
        signal_weight: float = 1.0,
    ) -> None:
        self.n_features = n_features
        self.word_ngrams = word_ngrams
        self.signal_weight = signal_weight

    def _vectorizer(self) -> HashingVectorizer:
        return HashingVectorizer(
            n_features=self.n_features,
            ngram_range=self.word_ngrams,
            alternate_sign=False,
            token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - a regex, not a password
            dtype=np.float64,
        )

    def fit(self, X: Iterable[Any], y: Any = None) -> HashedFeatures:
        # Nothing to learn, which is the point; only which signals it computes.
        self.signal_names_ = [s.name for s in SIGNALS]
        self.lure_words_ = LURE_WORDS
        return self

    def fitted_signals(self) -> list[str]:
        """The signals of this transformer's columns (models from before the list
        and lure signals recorded none and used the legacy ones)."""
        return list(getattr(self, "signal_names_", LEGACY_SIGNALS))

    def fitted_lure_words(self) -> int:
        """As :meth:`training.features.CommentFeatures.fitted_lure_words`."""
        return int(getattr(self, "lure_words_", 0))

    def transform(self, X: Iterable[Any]) -> sp.csr_matrix:
        comments = [_as_comment(c) for c in X]
        words = self._vectorizer().transform([normalise_text(c.content) for c in comments])
        lure_words = self.fitted_lure_words()
        dense = np.array([signal_vector(c, lure_words) for c in comments], dtype=np.float64)
        dense = dense.reshape(len(comments), len(SIGNALS))
        names = self.fitted_signals()
        if len(names) != len(SIGNALS):
            dense = dense[:, [SIGNAL_INDEX[n] for n in names]]
        return sp.hstack([words, sp.csr_matrix(dense * self.signal_weight)], format="csr")

    def feature_name(self, index: int) -> str:
        if index >= self.n_features:
            return f"signal:{self.fitted_signals()[index - self.n_features]}"
        return f"{HASHED}:{index}"
