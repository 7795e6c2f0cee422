"""A fitted linear pipeline compiled into plain token -> weight tables.

scikit-learn spends most of a single-comment call on per-call overhead (input
validation, sparse matrix building, FeatureUnion/hstack): about 1 ms for a
word + char model, against well under 200 us for the same arithmetic done in
Python dicts. :func:`compile_pipeline` reads the fitted vectorisers and the
logistic regression once, at load time, and :class:`LeanScorer` reproduces the
pipeline's decision function exactly: the same analysers (``model_text``, the
token pattern, word n-grams, ``char_wb`` n-grams), sublinear tf, idf, L2
normalisation per block, the signal block and the intercept, and for a comment
the word block mostly cannot read, the backoff model over its signals alone
(training.features.BackoffLogistic). Tests hold it to
scikit-learn's probabilities within 1e-9. The saved artifact stays the plain
Pipeline; this is only a faster way of evaluating it.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.text import (
    SIGNALS,
    Comment,
    char_wb_ngrams,
    model_text,
    signal_vector,
    unreadable,
    word_key,
)

# Version of the tables' layout (to_tables / from_tables). 2 added the backoff
# model, 3 how the list and lure signals are read (``lure_words``, 0 in 1 and 2);
# older tables still load, and code that reads only older ones refuses a newer
# format rather than score it otherwise than it was judged.
TABLES_FORMAT = 3
READABLE_FORMATS = frozenset({1, 2, 3})

# Words whose known char n-grams (and word: key) each compiled model remembers:
# common words recur across comments. Full, the two memos took about 3 MB with
# the shipped comments' words and under 6 MB with 40-character words of common
# n-grams (tracemalloc), against the 150 MB worker budget.
WORD_MEMO_SIZE = 4096
# Longer words are cut anew each time: a memoised word holds about 4 references
# per character, and hostile comments must not fill the memo with huge words.
MEMO_WORD_CHARS = 40


class Weights:
    """A block's term -> (idf, coefficient), compactly: the terms (the vocabulary's
    own strings, hashes cached), their index, and the two columns as arrays of
    doubles. A tuple of two floats per term took 3x the memory (about 15 MB of a
    worker's RSS for the shipped model); ``idf[i]`` is the very double stored."""

    __slots__ = ("coef", "idf", "index", "terms")

    def __init__(self, terms: Iterable[str], idf: Iterable[float], coef: Iterable[float]) -> None:
        self.terms = list(terms)
        self.idf = array("d", idf)
        self.coef = array("d", coef)
        if not len(self.terms) == len(self.idf) == len(self.coef):
            raise ValueError("a block's terms, idf and coef differ in length")
        self.index = {term: i for i, term in enumerate(self.terms)}
        if len(self.index) != len(self.terms):
            raise ValueError("a block lists a term twice")

    def __len__(self) -> int:
        return len(self.terms)

    def __contains__(self, term: object) -> bool:
        return term in self.index

    def get(self, term: str) -> tuple[float, float] | None:
        i = self.index.get(term)
        return None if i is None else (self.idf[i], self.coef[i])


@dataclass(frozen=True)
class _Block:
    """The word TF-IDF block: term -> (idf, coefficient), and how it cuts text into terms."""

    prefix: str
    weights: Weights
    tokenize: Callable[[str], list[str]]  # text -> its words
    grams: Callable[[list[str]], list[str]]  # words -> the block's terms
    sublinear: bool
    token_pattern: str
    ngram_range: tuple[int, int]

    def margin(self, text: str, explain: dict[str, float] | None) -> float:
        return self.margin_of(self.tokenize(text), explain)

    def margin_of(self, words: list[str], explain: dict[str, float] | None) -> float:
        """:meth:`margin` of a text :meth:`tokenize` has already cut."""
        counts = Counter(self.grams(words))
        hits: list[tuple[str, float, float]] = []
        sq = 0.0
        weights = self.weights
        index, idfs, coefs = weights.index, weights.idf, weights.coef
        for term, count in counts.items():
            i = index.get(term)
            if i is None:
                continue
            tf = 1.0 + math.log(count) if self.sublinear else float(count)
            value = tf * idfs[i]
            sq += value * value
            hits.append((term, value, coefs[i]))
        if not hits:
            return 0.0
        norm = math.sqrt(sq)
        total = 0.0
        for term, value, coef in hits:
            contribution = value / norm * coef
            total += contribution
            if explain is not None:
                explain[self.prefix + term] = contribution
        return total


@dataclass(frozen=True)
class _CharHits:
    """One comment's char_wb block: what the margin and the explanation share.

    Arrays, not per-n-gram Python objects: a comment has a few hundred known
    n-grams, and the arithmetic on them in numpy costs a fraction of a loop."""

    words: list[str]
    word_grams: list[np.ndarray]  # each word's known n-grams (term indices, repeats kept)
    terms: np.ndarray  # the distinct known n-grams (term indices, ascending)
    where: np.ndarray  # each occurrence's position in ``terms``, words in order
    counts: np.ndarray  # occurrences of each of ``terms``
    parts: np.ndarray  # each of ``terms``' part of the margin
    margin: float

    def contributions(self, names: list[str]) -> dict[str, float]:
        return dict(zip(map(names.__getitem__, self.terms.tolist()), self.parts.tolist(),
                        strict=True))


_NO_GRAMS = np.empty(0, dtype=np.intp)
_NO_GRAMS.flags.writeable = False


def _known_grams(index: dict[str, int], ngram_range: tuple[int, int], word: str) -> np.ndarray:
    """The term indices of the word's n-grams the model knows, in scikit-learn's
    order, repeats kept (read-only: memoised arrays are shared)."""
    found = [i for gram in char_wb_ngrams(word, ngram_range) if (i := index.get(gram)) is not None]
    if not found:
        return _NO_GRAMS
    out = np.array(found, dtype=np.intp)
    out.flags.writeable = False
    return out


class _CharBlock:
    """The char_wb TF-IDF block, with each word's known n-grams memoised.

    scikit-learn cuts the whole text into n-grams; those are exactly the n-grams
    of its words, so a word seen before costs one lookup, and the same per-word
    n-grams later fold each n-gram's contribution back into its words. Counting,
    tf-idf, the L2 norm and the per-word shares are numpy operations over the
    comment's n-gram indices; sums differ from scikit-learn's only in the order
    of addition (within 1e-12, tested).
    """

    def __init__(
        self,
        weights: Weights,
        ngram_range: tuple[int, int],
        sublinear: bool,
        memo_size: int,
    ) -> None:
        self.weights = weights
        self.ngram_range = ngram_range
        self.sublinear = sublinear
        # Views of the weights' own doubles, not copies.
        self.idf = np.frombuffer(weights.idf, dtype=np.float64)
        self.coef = np.frombuffer(weights.coef, dtype=np.float64)
        # The memo wraps a function of the tables, not a bound method: a cycle
        # (block -> memo -> block) would outlive a model swap, since the loaded model
        # is frozen out of the cyclic collector (service/scoring/model.py).
        cut = functools.partial(_known_grams, weights.index, ngram_range)
        self.cut: Callable[[str], np.ndarray] = cut
        self.memo = functools.lru_cache(maxsize=memo_size)(cut)
        self.keys = functools.lru_cache(maxsize=memo_size)(word_key)  # its word: feature

    def _grams(self, words: list[str]) -> list[np.ndarray]:
        memo, cut = self.memo, self.cut
        return [memo(w) if len(w) <= MEMO_WORD_CHARS else cut(w) for w in words]

    def _key(self, word: str) -> str:
        return self.keys(word) if len(word) <= MEMO_WORD_CHARS else word_key(word)

    def hits(self, text: str) -> _CharHits:
        """Each distinct known n-gram's part of the margin."""
        words = text.lower().split()  # scikit-learn folds white space, then splits
        word_grams = self._grams(words)
        found = np.concatenate(word_grams) if word_grams else _NO_GRAMS
        if not found.size:
            return _CharHits(words, word_grams, _NO_GRAMS, _NO_GRAMS, _NO_GRAMS,
                             np.empty(0), 0.0)
        terms, where, counts = np.unique(found, return_inverse=True, return_counts=True)
        values = self.idf[terms]
        if self.sublinear:
            values *= np.log(counts) + 1.0  # 1 + log(1) is 1.0: idf exactly, as before
        else:
            values *= counts
        norm = math.sqrt(float(values @ values))
        parts = values / norm * self.coef[terms]
        return _CharHits(words, word_grams, terms, where, counts, parts, float(parts.sum()))

    def fold(self, text: str, hits: _CharHits, into: dict[str, float]) -> None:
        """Add each n-gram's contribution, shared equally among its occurrences, to
        the ``word:`` entry of each word it occurs in: ``merge_contributions``'
        arithmetic, without cutting the words again."""
        if not hits.parts.size:
            return
        words = text.split()
        if words == hits.words:  # model text is lower case: the usual case
            word_grams = hits.word_grams
            occurrence_share = (hits.parts / hits.counts)[hits.where]
        else:  # count the n-grams of the words as written, as merge_contributions does
            word_grams = self._grams(words)
            found = np.concatenate(word_grams) if word_grams else _NO_GRAMS
            if not found.size:
                return
            terms, where, counts = np.unique(found, return_inverse=True, return_counts=True)
            # each n-gram's contribution in the lower-case text (0.0 where it had none)
            at = np.minimum(np.searchsorted(hits.terms, terms), hits.terms.size - 1)
            part = np.where(hits.terms[at] == terms, hits.parts[at], 0.0)
            occurrence_share = (part / counts)[where]
        lengths = list(map(len, word_grams))
        nonempty = [i for i, n in enumerate(lengths) if n]
        starts = [*itertools.accumulate(lengths[i] for i in nonempty[:-1])]
        sums = np.add.reduceat(occurrence_share, [0, *starts]).tolist()
        per_word: dict[str, tuple[str, float]] = {}
        for i, share in zip(nonempty, sums, strict=True):
            word = words[i]
            if word in per_word:
                key, share = per_word[word]
            else:
                key = self._key(word)
                per_word[word] = (key, share)
            if share:
                into[key] = into.get(key, 0.0) + share


def _word_tokens(token_pattern: str) -> Callable[[str], list[str]]:
    findall = re.compile(token_pattern).findall
    return lambda text: findall(text.lower())


def _word_grams(ngram_range: tuple[int, int]) -> Callable[[list[str]], list[str]]:
    lo, hi = ngram_range

    def grams(tokens: list[str]) -> list[str]:
        out = list(tokens) if lo == 1 else []
        for n in range(max(lo, 2), min(hi, len(tokens)) + 1):
            out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return out

    return grams


def _word_terms(token_pattern: str, ngram_range: tuple[int, int]) -> Callable[[str], list[str]]:
    tokenize, grams = _word_tokens(token_pattern), _word_grams(ngram_range)
    return lambda text: grams(tokenize(text))


def plain_text_blocks(features: Any) -> bool:
    """Whether a CommentFeatures' word and char blocks use only the settings the
    compiled scorers reproduce (this module's and service.registry.lean_multi's)."""
    char = features.char_
    return _plain_vectoriser(features.word_, "word") and (
        char is None or _plain_vectoriser(char, "char_wb")
    )


def _plain_vectoriser(vec: Any, analyzer: str) -> bool:
    """Only the settings CommentFeatures uses are reproduced; anything else falls back."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return (
        isinstance(vec, TfidfVectorizer)
        and vec.analyzer == analyzer
        and vec.lowercase
        and vec.preprocessor is None
        and vec.tokenizer is None
        and vec.stop_words is None
        and vec.strip_accents is None
        and not vec.binary
        and vec.use_idf
        and vec.norm == "l2"
    )


def _weights(vec: Any, coef: Any, offset: int) -> Weights:
    """term -> (idf, coefficient), in the vectoriser's column order."""
    idf = vec.idf_
    order = sorted(vec.vocabulary_.items(), key=lambda item: item[1])
    return Weights((term for term, _ in order), (float(idf[j]) for _, j in order),
                   (float(coef[offset + j]) for _, j in order))


def _word_block(
    weights: Weights,
    token_pattern: str,
    ngram_range: tuple[int, int],
    sublinear: bool,
) -> _Block:
    return _Block("word:", weights, _word_tokens(token_pattern), _word_grams(ngram_range),
                  sublinear, token_pattern, ngram_range)


def _block_tables(weights: Weights) -> dict[str, list[Any]]:
    return {"terms": list(weights.terms), "idf": list(weights.idf), "coef": list(weights.coef)}


def _table_weights(block: dict[str, Any]) -> Weights:
    return Weights(map(str, block["terms"]), map(float, block["idf"]), map(float, block["coef"]))


class LeanScorer:
    """The decision function of a compiled pipeline, one comment at a time."""

    def __init__(
        self,
        word: _Block,
        char: _CharBlock | None,
        signal_coef: list[float] | None,
        intercept: float,
        backoff: tuple[list[float], float, float, float] | None = None,
        lure_words: int = 0,
    ) -> None:
        self.word = word
        # How the list and lure signals are read: as the model was fitted
        # (training.spamlists.LURE_WORDS; 0, plain counts, in tables from before it).
        self.lure_words = lure_words
        self.char = char
        self.signal_coef = signal_coef
        self.intercept = intercept
        self.char_ngrams = char.ngram_range if char is not None else None
        # The signals-alone model for unfamiliar comments: a weight per signal (of
        # SIGNALS), what it adds to ``intercept``, and the share of known letters
        # under which a comment is its.
        self.backoff_coef: list[float] | None = None if backoff is None else backoff[0]
        self.backoff_shift = 0.0 if backoff is None else backoff[1]
        self.backoff_share = 0.0 if backoff is None else backoff[2]
        self.backoff_spam = 1.0 if backoff is None else backoff[3]  # its own spam threshold

    def unfamiliar(self, text: str) -> bool:
        """Whether the backoff model scores this ``model_text``: the character block
        cannot read it (:func:`~training.text.unreadable`); never without a backoff."""
        return self.backoff_coef is not None and self._unfamiliar(self.word.tokenize(text))

    def _unfamiliar(self, words: list[str]) -> bool:
        if self.backoff_coef is None or self.char is None:
            return False
        return unreadable(words, self.char.weights.index, self.backoff_share)

    def _backoff_margin(self, comment: Comment, explain: dict[str, float] | None) -> float:
        """The signals model's log-odds, added in the order scikit-learn's row is."""
        total = self.intercept
        for signal, value, coef in zip(SIGNALS, signal_vector(comment, self.lure_words),
                                       self.backoff_coef or (),
                                       strict=True):
            if value:
                contribution = value * coef
                total += contribution
                if explain is not None and contribution:
                    explain["signal:" + signal.name] = contribution
        return total + self.backoff_shift

    def margin(
        self, comment: Comment, explain: dict[str, float] | None = None, text: str | None = None
    ) -> float:
        """Log-odds of spam; fills ``explain`` with feature -> contribution if given
        (``word:``, ``char:`` and ``signal:`` features, as scikit-learn names them).

        ``text`` is ``model_text(comment.content)`` when the caller already has it.
        """
        text = model_text(comment.content) if text is None else text
        words = self.word.tokenize(text)
        if self._unfamiliar(words):
            return self._backoff_margin(comment, explain)
        total = self.intercept + self.word.margin_of(words, explain)
        if self.char is not None:
            hits = self.char.hits(text)
            total += hits.margin
            if explain is not None:
                for term, contribution in hits.contributions(self.char.weights.terms).items():
                    explain["char:" + term] = contribution
        return self._add_signals(total, comment, explain)

    def explain(self, comment: Comment, text: str | None = None) -> tuple[float, dict[str, float]]:
        """Log-odds of spam and the contributions a moderator is shown: those of
        :meth:`margin` with char n-grams folded into their words, equal to
        ``merge_contributions(text, contributions, char_ngrams)`` but cutting
        each word into n-grams at most once."""
        text = model_text(comment.content) if text is None else text
        contributions: dict[str, float] = {}
        words = self.word.tokenize(text)
        if self._unfamiliar(words):
            return self._backoff_margin(comment, contributions), contributions
        total = self.intercept + self.word.margin_of(words, contributions)
        hits = self.char.hits(text) if self.char is not None else None
        if hits is not None:
            total += hits.margin
        total = self._add_signals(total, comment, contributions)
        if self.char is not None and hits is not None:
            self.char.fold(text, hits, contributions)
        return total, contributions

    def _add_signals(
        self, total: float, comment: Comment, explain: dict[str, float] | None
    ) -> float:
        """``total`` plus each signal's contribution, added one by one as before."""
        if self.signal_coef is None:
            return total
        for signal, value, coef in zip(
            SIGNALS, signal_vector(comment, self.lure_words), self.signal_coef, strict=True
        ):
            if value:
                contribution = value * coef
                total += contribution
                if explain is not None:
                    explain["signal:" + signal.name] = contribution
        return total

    def probability(self, comment: Comment) -> float:
        return sigmoid(self.margin(comment))

    # --- the compiled model as plain data (the registry's lean.json) ---------
    def to_tables(self) -> dict[str, Any]:
        """Everything the scorer needs, as JSON-ready lists (floats round-trip exactly)."""
        char = self.char
        return {
            "format": TABLES_FORMAT,
            "intercept": self.intercept,
            "signals": [s.name for s in SIGNALS] if self.signal_coef is not None else None,
            "signal_coef": self.signal_coef,
            "lure_words": self.lure_words,
            "backoff": None if self.backoff_coef is None else {
                "coef": self.backoff_coef, "shift": self.backoff_shift,
                "share": self.backoff_share, "spam": self.backoff_spam,
            },
            "word": {
                "token_pattern": self.word.token_pattern,
                "ngram_range": list(self.word.ngram_range),
                "sublinear": self.word.sublinear,
                **_block_tables(self.word.weights),
            },
            "char": None if char is None else {
                "ngram_range": list(char.ngram_range),
                "sublinear": char.sublinear,
                **_block_tables(char.weights),
            },
        }

    @classmethod
    def from_tables(cls, tables: dict[str, Any], memo_size: int = WORD_MEMO_SIZE) -> LeanScorer:
        """The scorer :meth:`to_tables` describes; ValueError when the tables do not fit
        this code (another layout, other signals)."""
        if tables.get("format") not in READABLE_FORMATS:
            raise ValueError(f"compiled tables of format {tables.get('format')!r}, "
                             f"this code reads {sorted(READABLE_FORMATS)}")
        signal_coef = tables.get("signal_coef")
        if signal_coef is not None and tables.get("signals") != [s.name for s in SIGNALS]:
            raise ValueError("compiled with other hand-made signals than this code computes")
        w = tables["word"]
        word = _word_block(_table_weights(w), str(w["token_pattern"]),
                           (int(w["ngram_range"][0]), int(w["ngram_range"][1])),
                           bool(w["sublinear"]))
        c = tables.get("char")
        char = None if c is None else _CharBlock(
            _table_weights(c), (int(c["ngram_range"][0]), int(c["ngram_range"][1])),
            bool(c["sublinear"]), memo_size)
        b = tables.get("backoff")
        if b is not None and signal_coef is None:
            raise ValueError("a backoff model needs the signal block")
        backoff = None if b is None else (
            [float(x) for x in b["coef"]], float(b["shift"]), float(b["share"]),
            float(b["spam"]))
        return cls(word, char, None if signal_coef is None else [float(x) for x in signal_coef],
                   float(tables["intercept"]), backoff, int(tables.get("lure_words", 0)))


def sigmoid(margin: float) -> float:
    """scikit-learn's logistic, without overflow for very negative margins."""
    if margin >= 0:
        return 1.0 / (1.0 + math.exp(-margin))
    z = math.exp(margin)
    return z / (1.0 + z)


def compile_pipeline(pipeline: Any, memo_size: int = WORD_MEMO_SIZE) -> LeanScorer | None:
    """A :class:`LeanScorer` for a fitted CommentFeatures + binary linear classifier
    pipeline, or None when the pipeline has any other shape (it then serves as is).
    Imports scikit-learn: call it where the pipeline is (training, or a model
    saved without compiled tables)."""
    from training.features import CommentFeatures

    steps: dict[str, Any] = dict(getattr(pipeline, "named_steps", {}))
    features: Any = steps.get("features")
    clf: Any = steps.get("clf")
    coef = getattr(clf, "coef_", None)
    if not isinstance(features, CommentFeatures) or coef is None or coef.shape[0] != 1:
        return None
    if getattr(clf, "classes_", None) is None or list(clf.classes_) != [0, 1]:
        return None
    word, char = features.word_, features.char_
    if not plain_text_blocks(features):
        return None
    row = coef[0]
    char_block = None
    if char is not None:
        char_block = _CharBlock(_weights(char, row, features.n_word_),
                                (char.ngram_range[0], char.ngram_range[1]),
                                bool(char.sublinear_tf), memo_size)
    signal_coef = None
    if features.use_signals:
        start = features.n_word_ + features.n_char_
        weight = float(features.signal_weight)
        fitted = {name: float(row[start + i]) * weight
                  for i, name in enumerate(features.fitted_signals())}
        if not set(fitted) <= {s.name for s in SIGNALS}:
            return None  # fitted with a signal this code does not compute
        # A signal the model was fitted without weighs nothing.
        signal_coef = [fitted.get(s.name, 0.0) for s in SIGNALS]
    backoff = None
    if getattr(features, "backoff", False):
        start = features.n_word_ + features.n_char_ + len(features.fitted_signals())
        if features.fitted_signals() != [s.name for s in SIGNALS]:
            return None  # BackoffLogistic reads every signal of this code, in order
        backoff = ([float(row[start + i]) for i in range(len(SIGNALS))],
                   float(row[start + len(SIGNALS)]), float(features.backoff_share),
                   float(clf.spam_threshold_))
    word_block = _word_block(_weights(word, row, 0), word.token_pattern,
                             (word.ngram_range[0], word.ngram_range[1]), bool(word.sublinear_tf))
    return LeanScorer(word_block, char_block, signal_coef, float(clf.intercept_[0]), backoff,
                      features.fitted_lure_words())
