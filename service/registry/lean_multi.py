"""The toxicity pipeline compiled to arrays that every process maps from one file.

A toxicity model is ``CommentFeatures`` (word and ``char_wb`` TF-IDF blocks, no
hand-made signals) followed by ``MaskedMultiOutput``: one linear model per
attribute. Served through scikit-learn, each process that loads it imports
scikit-learn and SciPy and unpickles two 100,000-term vocabularies: about 137 MB
per gunicorn worker. :func:`compile_multi` reads the fitted pipeline once (at
save time, or by ``commentmod models compile``) into a few numpy arrays: per
block a :class:`~service.registry.arrays.TermTable` and one row per term of
``[idf, coefficient of each attribute]``, the intercepts and the span lexicon.
:class:`MultiLean` serves them from :data:`FILE` through ``mmap``: a worker maps
the file its master mapped before forking, or maps it itself when a version is
promoted later, and either way the pages are the page cache's, shared by all.

:class:`MultiLean` reproduces the pipeline's ``predict_proba`` and
``training.features.token_contributions`` (the per-word shares behind the
Perspective ``spanScores``); tests hold it to scikit-learn within 1e-9.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.registry.arrays import MappedArrays, TermTable, write_arrays
from service.registry.lean import _word_terms
from training.text import char_wb_ngrams, model_text

FILE = "lean.arrays"  # beside model.joblib in the version's directory
KIND = "multi-output-linear"
FORMAT = 1  # version of the arrays' layout
_WORD_TOKEN = re.compile(r"\w+")  # the words spans are cut into (token_contributions)


@dataclass(frozen=True)
class Block:
    """One TF-IDF block: its terms, and per term ``[idf, coef of each output]``."""

    table: TermTable
    weights: np.ndarray  # (terms, 1 + outputs), rows in the table's order
    sublinear: bool
    terms: Callable[[str], list[str]]  # the analyser: model text -> terms, repeats kept


@dataclass
class BlockRow:
    """One text's terms in one block that the model knows."""

    index: dict[str, int]  # term -> position in the arrays below
    values: np.ndarray  # L2-normalised tf-idf, as the vectoriser computes it
    shares: np.ndarray  # (terms, outputs): coef x value / occurrences (a word's share)
    margin: np.ndarray  # (outputs,): the block's part of each output's margin


@dataclass
class TextRow:
    """What :meth:`MultiLean.row` learnt of one text: the features of its row in X."""

    word: BlockRow
    char: BlockRow | None
    margins: np.ndarray  # (outputs,)
    tokens: list[tuple[int, int, str]] | None = None  # filled by the first span request
    parts: list[tuple[int, list[int], list[int]]] = field(default_factory=list)
    ratios: list[float | None] | None = None  # each word's span-lexicon share, when asked


def _char_terms(ngram_range: tuple[int, int]) -> Callable[[str], list[str]]:
    def terms(text: str) -> list[str]:
        return [g for w in text.lower().split() for g in char_wb_ngrams(w, ngram_range)]

    return terms


def _empty_row(outputs: int) -> BlockRow:
    return BlockRow({}, np.zeros(0), np.zeros((0, outputs)), np.zeros(outputs))


class MultiLean:
    """Attribute margins and per-word contributions of a compiled multi-output model."""

    def __init__(self, meta: dict[str, Any], arrays: Mapping[str, np.ndarray] | MappedArrays,
                 source: Any = None) -> None:
        if meta.get("kind") != KIND or meta.get("format") != FORMAT:
            raise ValueError(f"arrays of kind {meta.get('kind')!r} format "
                             f"{meta.get('format')!r}; this code reads {KIND} {FORMAT}")
        self.meta = meta
        self._source = source  # the mapping: kept open as long as the arrays are used
        self.outputs: tuple[str, ...] = tuple(str(o) for o in meta["outputs"])
        self.intercept = np.asarray(arrays["intercept"], dtype=np.float64)
        k = len(self.outputs)
        if self.intercept.shape != (k,):
            raise ValueError("intercepts and outputs differ in number")
        w = meta["word"]
        self.word = self._block(arrays, "word_", bool(w["sublinear"]), _word_terms(
            str(w["token_pattern"]), (int(w["ngram_range"][0]), int(w["ngram_range"][1]))))
        c = meta.get("char")
        self.char_ngrams: tuple[int, int] | None = None
        self.char: Block | None = None
        if c is not None:
            self.char_ngrams = (int(c["ngram_range"][0]), int(c["ngram_range"][1]))
            self.char = self._block(arrays, "char_", bool(c["sublinear"]),
                                    _char_terms(self.char_ngrams))
        self.lexicon: TermTable | None = None
        self.lexicon_ratio: np.ndarray | None = None
        if meta.get("lexicon"):
            self.lexicon = TermTable.from_arrays(arrays, "lexicon_")
            self.lexicon_ratio = arrays["lexicon_ratio"]

    def _block(self, arrays: Any, prefix: str, sublinear: bool,
               terms: Callable[[str], list[str]]) -> Block:
        table = TermTable.from_arrays(arrays, prefix)
        weights = arrays[f"{prefix}weights"]
        if weights.shape != (table.size, 1 + len(self.outputs)):
            raise ValueError(f"{prefix}weights has shape {weights.shape}")
        return Block(table, weights, sublinear, terms)

    @classmethod
    def load(cls, path: Path) -> MultiLean:
        mapped = MappedArrays(path)
        return cls(mapped.meta, mapped, mapped)

    # --- scoring ---------------------------------------------------------------
    def row(self, content: str) -> TextRow:
        text = model_text(content)
        word = self._block_row(self.word, text)
        char = self._block_row(self.char, text) if self.char is not None else None
        margins = self.intercept + word.margin
        if char is not None:
            margins = margins + char.margin
        return TextRow(word, char, margins)

    def _block_row(self, block: Block, text: str) -> BlockRow:
        counts = Counter(block.terms(text))
        terms = list(counts)
        rows = block.table.find(terms)
        found = [(t, r, counts[t]) for t, r in zip(terms, rows, strict=True) if r >= 0]
        if not found:
            return _empty_row(len(self.outputs))
        index = {t: i for i, (t, _, _) in enumerate(found)}
        weights = block.weights[np.fromiter((r for _, r, _ in found), dtype=np.intp,
                                            count=len(found))]
        n = np.fromiter((c for _, _, c in found), dtype=np.float64, count=len(found))
        tf = np.log(n) + 1.0 if block.sublinear else n
        values = tf * weights[:, 0]
        # Element-wise products and sums, not ``@``/``np.dot``: those call BLAS, whose
        # code pages then count in every worker's RSS (about 2 MB, docs/performance.md).
        values = values / math.sqrt(float(np.square(values).sum()))
        coef = weights[:, 1:]
        margin = (coef * values[:, None]).sum(axis=0)
        shares = coef * values[:, None] / n[:, None]
        return BlockRow(index, values, shares, margin)

    def probabilities(self, row: TextRow) -> list[float]:
        """scikit-learn's ``MaskedMultiOutput.predict_proba`` for this row."""
        probs = 1.0 / (1.0 + np.exp(-np.clip(row.margins, -700, 700)))
        return [float(p) for p in probs]

    # --- spans -----------------------------------------------------------------
    def contributions(self, text: str, row: TextRow, output: int) -> list[tuple[int, int, float]]:
        """``training.features.token_contributions`` for output ``output``: each word
        of ``text`` (Python offsets) with its unigram, half of each bigram it is part
        of and its char n-grams, each feature's share divided among its occurrences."""
        tokens = row.tokens if row.tokens is not None else self._token_parts(text, row)
        word = row.word.shares[:, output].tolist()
        char = row.char.shares[:, output].tolist() if row.char is not None else []
        out = []
        for (start, end, _), (unigram, bigrams, grams) in zip(tokens, row.parts, strict=True):
            c = word[unigram] if unigram >= 0 else 0.0
            for j in bigrams:
                c += 0.5 * (word[j] if j >= 0 else 0.0)
            if self.char is not None:
                c += sum((char[j] if j >= 0 else 0.0) for j in grams)
            out.append((start, end, c))
        return out

    def _token_parts(self, text: str, row: TextRow) -> list[tuple[int, int, str]]:
        """Where each word's features sit in the row (the same for every output)."""
        tokens = [(m.start(), m.end(), model_text(m.group())) for m in _WORD_TOKEN.finditer(text)]
        word_at = row.word.index.get
        char_at = row.char.index.get if row.char is not None else None
        cut = self.char.terms if self.char is not None else None
        parts = []
        for i, (_, _, tok) in enumerate(tokens):
            bigrams = []
            for neighbour in (i - 1, i + 1):
                if 0 <= neighbour < len(tokens):
                    a, b = sorted((i, neighbour))
                    bigrams.append(word_at(f"{tokens[a][2]} {tokens[b][2]}", -1))
            grams = [char_at(g, -1) for g in cut(tok)] if cut and char_at else []
            parts.append((word_at(tok, -1), bigrams, grams))
        row.tokens, row.parts = tokens, parts
        return tokens

    def lexicon_ratios(self, row: TextRow) -> list[float | None]:
        """Each word's (of :meth:`contributions`) share of toxic occurrences in the span
        lexicon, None where the lexicon does not hold it."""
        if row.tokens is None:
            raise ValueError("lexicon_ratios needs the words contributions cut")
        if row.ratios is None:
            words = [tok for _, _, tok in row.tokens]
            ratio = self.lexicon_ratio
            found = self.lexicon.find(words) if self.lexicon is not None else [-1] * len(words)
            row.ratios = [float(ratio[r]) if ratio is not None and r >= 0 else None
                          for r in found]
        return row.ratios


# --- compiling ---------------------------------------------------------------------


def _block_arrays(vec: Any, coef: np.ndarray, offset: int, prefix: str) -> dict[str, np.ndarray]:
    terms = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)  # column order
    n = len(terms)
    weights = np.column_stack([np.asarray(vec.idf_, dtype=np.float64),
                               np.asarray(coef[:, offset : offset + n], dtype=np.float64).T])
    table, order = TermTable.build(terms)
    out = {prefix + name: array for name, array in table.items()}
    out[prefix + "weights"] = np.ascontiguousarray(weights[order])
    return out


def compile_multi(pipeline: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """(meta, arrays) for a fitted CommentFeatures + multi-output linear pipeline, or
    None for any other shape. Imports scikit-learn: call it where the pipeline is."""
    from service.registry.lean import plain_text_blocks
    from training.features import CommentFeatures

    steps: dict[str, Any] = dict(getattr(pipeline, "named_steps", {}))
    features: Any = steps.get("features")
    clf: Any = steps.get("clf")
    outputs = getattr(clf, "outputs", None)
    coef = getattr(clf, "coef_", None)
    if not isinstance(features, CommentFeatures) or features.use_signals or not outputs:
        return None
    if coef is None or coef.ndim != 2 or coef.shape[0] != len(outputs):
        return None
    word, char = features.word_, features.char_
    if not plain_text_blocks(features):
        return None
    if coef.shape[1] != features.n_word_ + features.n_char_:
        return None
    arrays = {"intercept": np.asarray(clf.intercept_, dtype=np.float64).reshape(len(outputs))}
    arrays |= _block_arrays(word, coef, 0, "word_")
    if char is not None:
        arrays |= _block_arrays(char, coef, features.n_word_, "char_")
    lexicon = getattr(clf, "span_lexicon_", None)
    if lexicon:
        table, order = TermTable.build(list(lexicon))
        arrays |= {"lexicon_" + name: array for name, array in table.items()}
        ratios = np.fromiter(lexicon.values(), dtype=np.float64, count=len(lexicon))
        arrays["lexicon_ratio"] = ratios[order]
    meta = {
        "kind": KIND,
        "format": FORMAT,
        "outputs": [str(o) for o in outputs],
        "word": {"token_pattern": word.token_pattern, "ngram_range": list(word.ngram_range),
                 "sublinear": bool(word.sublinear_tf)},
        "char": None if char is None else {"ngram_range": list(char.ngram_range),
                                           "sublinear": bool(char.sublinear_tf)},
        "lexicon": bool(lexicon),
    }
    return meta, arrays


def compile_lean_multi(pipeline: Any) -> MultiLean | None:
    """The compiled model in memory (a version saved without its arrays file)."""
    compiled = compile_multi(pipeline)
    return None if compiled is None else MultiLean(*compiled)


def write_multi(pipeline: Any, path: Path) -> bool:
    """Compile ``pipeline`` to ``path``; False when it is not a multi-output linear model."""
    compiled = compile_multi(pipeline)
    if compiled is None:
        return False
    meta, arrays = compiled
    write_arrays(path, arrays, meta)
    return True
