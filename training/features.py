"""The scikit-learn transformers pickled inside every model's Pipeline.

:class:`CommentFeatures` (spam) and :class:`MaskedMultiOutput` (toxicity) read
comments with the functions of :mod:`training.text`, which this module
re-exports, so serving and training cannot drift. The web service imports this
module only to load a model that has no compiled form (service/registry/lean.py). Keep it
free of Flask and of training-only dependencies.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer

from training.spamlists import LURE_WORDS
from training.text import BACKOFF_GATE, BACKOFF_PREFIX, BACKOFF_SHARE, text_words
from training.text import (  # re-exported: training code imports them from here
    COMMENT_FIELDS as COMMENT_FIELDS,
)
from training.text import (
    LEGACY_SIGNALS as LEGACY_SIGNALS,
)
from training.text import (
    MODEL_FIELDS as MODEL_FIELDS,
)
from training.text import (
    SIGNAL_INDEX as SIGNAL_INDEX,
)
from training.text import (
    SIGNALS as SIGNALS,
)
from training.text import (
    URL_RE as URL_RE,
)
from training.text import (
    Comment as Comment,
)
from training.text import (
    _as_comment as _as_comment,
)
from training.text import (
    char_wb_ngrams as char_wb_ngrams,
)
from training.text import (
    dedup_key as dedup_key,
)
from training.text import (
    describe_feature as describe_feature,
)
from training.text import (
    merge_contributions as merge_contributions,
)
from training.text import (
    model_text as model_text,
)
from training.text import (
    normalise_text as normalise_text,
)
from training.text import (
    signal_vector as signal_vector,
)
from training.text import (
    strip_markup as strip_markup,
)
from training.text import (
    top_reasons as top_reasons,
)
from training.text import (
    unreadable as unreadable,
)
from training.text import (
    url_domains as url_domains,
)
from training.text import (
    utf16_offsets as utf16_offsets,
)
from training.text import (
    word_key as word_key,
)

# --- the transformer ---------------------------------------------------------


class CommentFeatures(TransformerMixin, BaseEstimator):
    """Word n-grams, character n-grams and hand-made signals of a comment.

    Accepts :class:`Comment` objects, dicts with the same keys, or plain strings.
    The two TF-IDF blocks and the signal block are stacked side by side; the
    signals are weighted by ``signal_weight`` so that they can compete with the
    L2-normalised text blocks.

    With ``backoff``, one more block follows for :class:`BackoffLogistic`: a
    comment with under ``backoff_share`` of the letter pairs of its words known to
    the character block (:func:`~training.text.unreadable`: another language or
    script) has its text and signal blocks left empty and its signals,
    unweighted, in this block instead, with a last column of 1. Every other
    comment leaves the block empty. Each row is then read by exactly one of two
    linear models: the text model, or the signals alone.
    """

    def __init__(
        self,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        min_df: int = 1,
        max_features: int | None = 200_000,
        use_chars: bool = True,
        use_signals: bool = True,
        signal_weight: float = 1.0,
        backoff: bool = False,
        backoff_share: float = BACKOFF_SHARE,
    ) -> None:
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features
        self.use_chars = use_chars
        self.use_signals = use_signals
        self.signal_weight = signal_weight
        self.backoff = backoff
        self.backoff_share = backoff_share

    def fit(self, X: Iterable[Any], y: Any = None) -> CommentFeatures:
        if self.backoff and not (self.use_signals and self.use_chars):
            raise ValueError("backoff scores comments the character block cannot read by "
                             "their signals: it needs use_signals and use_chars")
        texts = [model_text(c.content) for c in map(_as_comment, X)]
        self.word_ = TfidfVectorizer(
            ngram_range=self.word_ngrams,
            min_df=self.min_df,
            max_features=self.max_features,
            sublinear_tf=True,
            token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - a regex, not a password
            dtype=np.float64,
        ).fit(texts)
        self.char_: TfidfVectorizer | None = None
        if self.use_chars:
            self.char_ = TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=self.char_ngrams,
                min_df=self.min_df,
                max_features=self.max_features,
                sublinear_tf=True,
                dtype=np.float64,
            ).fit(texts)
        self.signal_names_ = [s.name for s in SIGNALS]
        self.lure_words_ = LURE_WORDS
        self.n_word_ = len(self.word_.vocabulary_)
        self.n_char_ = len(self.char_.vocabulary_) if self.char_ is not None else 0
        return self

    def transform(self, X: Iterable[Any]) -> sp.csr_matrix:
        comments = [_as_comment(c) for c in X]
        texts = [model_text(c.content) for c in comments]
        blocks = [self.word_.transform(texts)]
        if self.char_ is not None:
            blocks.append(self.char_.transform(texts))
        dense = np.zeros((len(comments), 0))
        if self.use_signals:
            lure_words = self.fitted_lure_words()
            dense = np.array([signal_vector(c, lure_words) for c in comments], dtype=np.float64)
            dense = dense.reshape(len(comments), len(SIGNALS))
            names = self.fitted_signals()
            if len(names) != len(SIGNALS):  # fitted with fewer signals than this code has
                dense = dense[:, [SIGNAL_INDEX[n] for n in names]]
            blocks.append(sp.csr_matrix(dense * self.signal_weight))
        X = sp.hstack(blocks, format="csr")
        if not getattr(self, "backoff", False):  # models pickled before it existed
            return X
        if self.char_ is None:
            raise ValueError("backoff needs the character block (use_chars)")
        pairs, share = self.char_.vocabulary_, self.backoff_share
        gate = np.array([unreadable(text_words(t), pairs, share) for t in texts],
                        dtype=np.float64)
        if not gate.any():
            return sp.hstack([X, sp.csr_matrix((len(comments), dense.shape[1] + 1))], format="csr")
        kept = sp.csr_matrix(sp.diags(1.0 - gate) @ X)
        kept.eliminate_zeros()
        kept.sort_indices()  # the product leaves a row's columns in any order
        back = sp.csr_matrix(np.hstack([dense * gate[:, None], gate[:, None]]))
        return sp.hstack([kept, back], format="csr")

    def fitted_signals(self) -> list[str]:
        """The hand-made signals this transformer was fitted with, in column order."""
        return list(getattr(self, "signal_names_", LEGACY_SIGNALS))

    def fitted_lure_words(self) -> int:
        """How the list and lure signals were read when it was fitted
        (:data:`training.spamlists.LURE_WORDS`; 0, plain counts, for a transformer
        pickled before the share existed): a model keeps scoring as it was judged."""
        return int(getattr(self, "lure_words_", 0))

    # joblib unpickles with the pure-Python Unpickler: a vocabulary of 100k terms
    # as a dict takes seconds to load, as one string and one array milliseconds.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        for name in ("word_", "char_"):
            vec = state.get(name)
            if vec is not None and hasattr(vec, "vocabulary_"):
                terms = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
                if any("\x00" in term for term in terms):
                    continue  # a NUL in a term (hostile comment text): keep the dict
                vec = copy.copy(vec)
                del vec.__dict__["vocabulary_"]
                state[f"{name}terms"] = "\x00".join(terms)
                state[name] = vec
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        for name in ("word_", "char_"):
            packed = state.pop(f"{name}terms", None)
            if packed is not None and state.get(name) is not None:
                terms = packed.split("\x00") if packed else []
                state[name].vocabulary_ = dict(zip(terms, range(len(terms)), strict=True))
        super().__setstate__(state)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        names = [f"word:{t}" for t in self.word_.get_feature_names_out()]
        if self.char_ is not None:
            names += [f"char:{t}" for t in self.char_.get_feature_names_out()]
        if self.use_signals:
            names += [f"signal:{name}" for name in self.fitted_signals()]
        if getattr(self, "backoff", False):
            names += [f"{BACKOFF_PREFIX}{name}" for name in self.fitted_signals()]
            names.append(BACKOFF_GATE)
        return np.asarray(names, dtype=object)


# --- the signals alone, for text the model cannot read ------------------------

# Signals the backoff model, for comments in a language the model never met, does
# without. Which script a comment is in says which language a site writes in, not
# whether it is spam (trained with Arabic tweets, mostly spam, the model took
# non-Latin text for spam and called 8,295 of 9,032 Chinese ham spam). The
# WordPress list's hits on the shipped ham were excluded from the list
# (training/spamlists.py), so on that ham it never fires and a model learns it as
# near-certain spam; in other languages it fires on everyday words ("sản phẩm",
# product; "интересная статья", an interesting article). The share of digits
# depends on the script too: where a word is one or two characters (Chinese,
# Japanese) a date or a price is a far larger share of the text than in English
# (with it, the day-one backoff called 1,170 of 9,032 Chinese ham spam; without,
# 87: a figure of a corpus looked at to choose this, docs/model.md); a phone
# number keeps its own signal.
BACKOFF_EXCLUDED = frozenset({"non_latin", "mixed_script", "script_mix", "wp_list", "digits"})
BACKOFF_C = 1.0
# BackoffLogistic's text models (``loss``); the SVM's iteration cap (liblinear's dual
# coordinate descent: the retraining corpora converge well within it), and the
# inverse regularisation of Platt's one-feature regression (near none: two numbers
# fitted on thousands of margins).
LOSSES = ("log", "hinge")
SVM_MAX_ITER = 20_000
PLATT_C = 1e4


def _out_of_fold(model: Any, X: Any, y: np.ndarray, w: np.ndarray,
                 method: str) -> np.ndarray | None:
    """``model``'s ``method`` on each row from a clone fit without it, on the folds of
    ``training.train.kfold_thresholds`` (weighted by ``w``); None where a class has
    fewer than two examples."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from training.train import FOLD_SEED, KFOLDS

    k = int(min(KFOLDS, np.bincount(y, minlength=2).min()))
    if k < 2:
        return None
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=FOLD_SEED)
    return np.asarray(cross_val_predict(clone(model), X, y, cv=folds, method=method,
                                        params={"sample_weight": w}))


class BackoffLogistic(ClassifierMixin, BaseEstimator):
    """Two linear models as one, for :class:`CommentFeatures` with ``backoff``: one
    over the text and signal blocks, one (a logistic regression, ``backoff_C``) over
    the hand-made signals alone, less :data:`BACKOFF_EXCLUDED` (the script signals,
    the WordPress list, the share of digits).

    The text model is, by ``loss``: ``"log"``, a plain ``LogisticRegression(C,
    class_weight="balanced", solver="liblinear")``; ``"hinge"``, a
    ``LinearSVC(C, class_weight="balanced")`` whose margin is Platt-scaled to a
    probability (:meth:`_platt`: a balanced logistic regression of the labels on its
    out-of-fold margins), so ``coef_`` is still one vector of log-odds per feature.
    On the retraining folds of every corpus measured the Platt-scaled SVM ranked
    better than the logistic regression (docs/model.md, "A linear SVM, Platt-scaled").

    Both learn from every training row (the signals model from each row's signals,
    wherever the features put them). ``spam_threshold_`` is the signals model's own
    spam threshold, chosen by the product's rule (``choose_thresholds``: precision
    0.95, false positives the smaller share) on its out-of-fold scores: a comment it
    scores is spam above it, and between the text model's spam threshold and it
    only ``unsure`` (service.scoring.verdicts). ``coef_`` and ``intercept_`` are
    those of the first, with the second's weights in the backoff block and the
    difference of the intercepts on its last column. A row is read by one model or
    the other (the features leave the other's block empty), so ``X @ coef_ +
    intercept_`` is the text model's log-odds for a comment the character block can
    read and the signals model's for one it cannot, and the compiled scorer
    (service/registry/lean.py) is one linear model as before. The signals must be
    all of :data:`SIGNALS`, in order.
    """

    def __init__(self, C: float = 1.0, signal_weight: float = 1.0,
                 backoff_C: float = BACKOFF_C, loss: str = "log") -> None:
        self.C = C
        self.signal_weight = signal_weight
        self.backoff_C = backoff_C
        self.loss = loss

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BackoffLogistic:
        from sklearn.linear_model import LogisticRegression

        X = sp.csr_matrix(X)
        labels = np.asarray(y, dtype=int)
        weights = (np.ones(len(labels)) if sample_weight is None
                   else np.asarray(sample_weight, dtype=np.float64))
        n_sig = len(SIGNALS)
        width = X.shape[1]
        text_end = width - n_sig - 1  # the text blocks and the weighted signals
        if text_end < n_sig:
            raise ValueError("BackoffLogistic needs CommentFeatures(backoff=True) columns")
        gate = X[:, width - 1].toarray().ravel() > 0
        familiar = ~gate if (~gate).any() else np.ones(len(labels), dtype=bool)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        main = self._text_model()
        text_X, text_y, text_w = X[familiar][:, :text_end], labels[familiar], weights[familiar]
        scale, shift = (self._platt(main, text_X, text_y, text_w) if self.loss == "hinge"
                        else (1.0, 0.0))
        main.fit(text_X, text_y, sample_weight=text_w)
        main_coef = scale * main.coef_[0]
        main_intercept = scale * float(main.intercept_[0]) + shift
        raw = np.where(gate[:, None], X[:, text_end:width - 1].toarray(),
                       X[:, text_end - n_sig:text_end].toarray() / self.signal_weight)
        keep = np.array([s.name not in BACKOFF_EXCLUDED for s in SIGNALS])
        alone = LogisticRegression(C=self.backoff_C, class_weight="balanced", max_iter=2000)
        self.spam_threshold_ = self._own_threshold(alone, raw[:, keep], labels, weights)
        alone.fit(raw[:, keep], labels, sample_weight=weights)
        coef = np.zeros(width)
        coef[:text_end] = main_coef
        coef[text_end:width - 1][keep] = alone.coef_[0]
        coef[width - 1] = float(alone.intercept_[0]) - main_intercept
        self.coef_ = coef[None, :]
        self.intercept_ = np.array([main_intercept], dtype=np.float64)
        self.classes_ = main.classes_
        self.n_features_in_ = width
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A model pickled before ``loss`` existed was a logistic regression; without
        # the attribute, get_params (repr, clone) would raise on it.
        state.setdefault("loss", "log")
        super().__setstate__(state)

    def _text_model(self) -> Any:
        if self.loss == "hinge":
            from sklearn.svm import LinearSVC

            return LinearSVC(C=self.C, class_weight="balanced", max_iter=SVM_MAX_ITER,
                             random_state=0)  # liblinear shuffles: same data, same model
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000,
                                  solver="liblinear")

    @staticmethod
    def _platt(model: Any, X: Any, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
        """``(a, b)`` with ``sigmoid(a * margin + b)`` the probability of spam: a
        balanced logistic regression of the labels on the model's out-of-fold
        margins, on the folds of ``training.train.kfold_thresholds``. ``(1, 0)``
        where a class has fewer than two examples or the fit does not rank spam
        higher."""
        from sklearn.linear_model import LogisticRegression

        margins = _out_of_fold(model, X, y, w, "decision_function")
        if margins is None:
            return 1.0, 0.0
        platt = LogisticRegression(C=PLATT_C, class_weight="balanced")
        platt.fit(margins[:, None], y, sample_weight=w)
        slope = float(platt.coef_[0, 0])
        if slope <= 0:  # folds too small to rank: a reversed scale would flip every reason
            return 1.0, 0.0
        return slope, float(platt.intercept_[0])

    @staticmethod
    def _own_threshold(model: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        """The signals model's spam threshold from its own out-of-fold scores, on the
        folds of ``training.train.kfold_thresholds``; 1.0 (never spam, only unsure)
        where a class has fewer than two examples."""
        from training.evaluate import choose_thresholds

        oof = _out_of_fold(model, X, y, w, "predict_proba")
        if oof is None:
            return 1.0
        return float(choose_thresholds(y.tolist(), oof[:, 1].tolist())["spam"])

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.coef_[0]).ravel() + self.intercept_[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        from scipy.special import expit

        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


# --- toxicity: several attributes, one linear model each ---------------------
# Pickled inside the toxicity Pipeline, so it lives here beside CommentFeatures.

_WORD_TOKEN = re.compile(r"\w+")


class MaskedMultiOutput(ClassifierMixin, BaseEstimator):
    """One clone of ``estimator`` per output column, each fitted only on the rows
    whose label for that column is known (not NaN).

    The corpora label different attributes on different rows (Davidson's tweets
    say "hate speech", Toxic Spans only "toxic"), so a row must not count as a
    negative for an attribute nobody judged. ``predict_proba`` returns an
    ``(n, k)`` matrix of positive-class probabilities, one column per output.
    ``per_output`` names outputs that use another estimator than ``estimator``
    (settings tuned for one attribute need not suit the others).
    """

    per_output: dict[str, Any] | None = None  # models pickled before it existed read None

    def __init__(self, estimator: Any = None, outputs: tuple[str, ...] = (),
                 per_output: dict[str, Any] | None = None) -> None:
        self.estimator = estimator
        self.outputs = outputs
        self.per_output = per_output

    def fit(self, X: Any, Y: Any, sample_weight: Any = None) -> MaskedMultiOutput:
        labels = np.asarray(Y, dtype=np.float64)
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if labels.ndim != 2 or labels.shape[1] != len(self.outputs):
            raise ValueError(f"Y must have one column per output {self.outputs}")
        self.estimators_ = []
        for k, name in enumerate(self.outputs):
            known = ~np.isnan(labels[:, k])
            if len(set(labels[known, k])) < 2:
                raise ValueError(f"output {name!r} needs positive and negative examples")
            w = None if weights is None else weights[known]
            base = (self.per_output or {}).get(name, self.estimator)
            self.estimators_.append(clone(base).fit(X[known], labels[known, k], sample_weight=w))
        self.coef_ = np.vstack([np.asarray(e.coef_).reshape(1, -1) for e in self.estimators_])
        self.intercept_ = np.array([float(np.ravel(e.intercept_)[0]) for e in self.estimators_])
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(X), -700, 700)))

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X) >= 0.5).astype(int)


class NBScaled(ClassifierMixin, BaseEstimator):
    """A linear ``estimator`` fitted on features scaled by their naive-Bayes
    log-count ratios (NB-SVM, Wang and Manning 2012), folded back into one plain
    coefficient per feature.

    Why: a word seen mostly in toxic rows starts the fit with a large scale, so
    a few thousand in-domain rows move the model further than the L2 penalty
    alone allows (cross-validated on the training pool, docs/toxicity.md).
    Because ``coef_`` is the inner coefficient times the ratio, the fitted
    model is linear in the unscaled features: :class:`MaskedMultiOutput` and
    the compiled ``lean.arrays`` read it like any logistic regression. The
    inner estimator and the ratios are not kept (they would double the file).
    """

    def __init__(self, estimator: Any = None, alpha: float = 1.0) -> None:
        self.estimator = estimator
        self.alpha = alpha

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NBScaled:
        X = sp.csr_matrix(X)
        labels = np.asarray(y, dtype=np.float64)
        weights = (np.ones(len(labels)) if sample_weight is None
                   else np.asarray(sample_weight, dtype=np.float64))
        ratio = self.ratios(X, labels, weights)
        inner = clone(self.estimator).fit(
            sp.csr_matrix(X.multiply(ratio)), labels, sample_weight=sample_weight)
        self.coef_ = np.asarray(inner.coef_, dtype=np.float64).reshape(1, -1) * ratio
        self.intercept_ = np.asarray(inner.intercept_, dtype=np.float64).reshape(1)
        self.classes_ = inner.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def ratios(self, X: sp.csr_matrix, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """log((p / |p|_1) / (q / |q|_1)), p and q the weighted feature sums of the
        positive and negative rows plus ``alpha``."""
        pos = np.asarray(X[y == 1].T @ w[y == 1]).ravel() + self.alpha
        neg = np.asarray(X[y != 1].T @ w[y != 1]).ravel() + self.alpha
        return np.log(pos / pos.sum()) - np.log(neg / neg.sum())

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.coef_.ravel()).ravel() + self.intercept_[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(X), -700, 700)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_)[(self.decision_function(X) > 0).astype(int)]


def token_contributions(
    features: CommentFeatures, row: Any, coef: np.ndarray, text: str
) -> list[tuple[int, int, float]]:
    """Each word of ``text`` with its share of a linear model's margin.

    ``row`` is ``features.transform([text])``. A word gets the weight x value of
    its unigram and of its character n-grams, and half of each bigram it is part
    of; a feature present several times in the comment is shared evenly between
    its occurrences. Offsets are Python string indices into ``text``.
    """
    values = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
    word_an = features.word_.build_analyzer()
    word_vocab = features.word_.vocabulary_
    tokens = [(m.start(), m.end(), model_text(m.group())) for m in _WORD_TOKEN.finditer(text)]
    doc_words = Counter(word_an(model_text(text)))
    char_an = features.char_.build_analyzer() if features.char_ is not None else None
    char_vocab = features.char_.vocabulary_ if features.char_ is not None else {}
    doc_chars = Counter(char_an(model_text(text))) if char_an is not None else Counter()

    def share(term: str, vocab: dict[str, int], offset: int, counts: Counter[str]) -> float:
        j = vocab.get(term)
        if j is None or (j + offset) not in values or not counts[term]:
            return 0.0
        return float(coef[j + offset] * values[j + offset] / counts[term])

    out = []
    for i, (start, end, tok) in enumerate(tokens):
        c = share(tok, word_vocab, 0, doc_words)
        for neighbour in (i - 1, i + 1):
            if 0 <= neighbour < len(tokens):
                a, b = sorted((i, neighbour))
                c += 0.5 * share(f"{tokens[a][2]} {tokens[b][2]}", word_vocab, 0, doc_words)
        if char_an is not None:
            c += sum(share(g, char_vocab, features.n_word_, doc_chars) for g in char_an(tok))
        out.append((start, end, c))
    return out
