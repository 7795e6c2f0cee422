"""What issue 18's AUC work added to toxicity training: naive-Bayes scaled logistic
regressions folded into plain coefficients, and Perspective's scored sample as
TOXICITY training rows that never bring a held-out Wikipedia Talk comment in."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from service.registry.lean_multi import MultiLean, compile_multi
from training.features import CommentFeatures, MaskedMultiOutput, NBScaled, dedup_key
from training.toxicity import (
    ATTRIBUTES,
    HELD_OUT_PREFIX,
    PERSPECTIVE_TRAINS,
    build_pipeline,
    default_data_dir,
    perspective_rows,
    training_rows,
    wiki_rows,
)

TEXTS = ["you idiot", "what an idiot you are", "lovely weather today", "thanks for this",
         "idiot idiot", "a calm and kind reply", "kind idiot", "calm weather"]
LABELS = [1, 1, 0, 0, 1, 0, 1, 0]
WEIGHTS = [1.0, 2.0, 1.0, 0.5, 1.0, 3.0, 1.0, 1.0]


def test_nb_scaled_folds_the_ratios_into_plain_coefficients() -> None:
    X = CommentFeatures(use_signals=False, char_ngrams=(2, 3)).fit_transform(TEXTS)
    nb = NBScaled(LogisticRegression(C=2.0), alpha=0.5).fit(X, LABELS, sample_weight=WEIGHTS)
    ratio = nb.ratios(X, np.array(LABELS, dtype=float), np.array(WEIGHTS))
    inner = LogisticRegression(C=2.0).fit(sp.csr_matrix(X.multiply(ratio)), LABELS,
                                          sample_weight=WEIGHTS)
    expected = inner.decision_function(sp.csr_matrix(X.multiply(ratio)))
    assert np.allclose(nb.decision_function(X), expected, atol=1e-12)
    assert np.allclose(nb.predict_proba(X)[:, 1], inner.predict_proba(X.multiply(ratio))[:, 1])
    assert list(nb.predict(X)) == list(inner.predict(X.multiply(ratio)))
    assert nb.coef_.shape == (1, X.shape[1])
    assert not hasattr(nb, "estimator_")  # only the folded coefficients are saved


def test_nb_ratio_favours_the_words_of_positive_rows() -> None:
    features = CommentFeatures(use_signals=False, use_chars=False)
    X = features.fit_transform(TEXTS)
    ratio = NBScaled(alpha=1.0).ratios(X, np.array(LABELS, dtype=float), np.ones(len(TEXTS)))
    vocab = features.word_.vocabulary_
    assert ratio[vocab["idiot"]] > 0 > ratio[vocab["weather"]]


def test_masked_multi_output_reads_nb_scaled_coefficients() -> None:
    X = CommentFeatures(use_signals=False, char_ngrams=(2, 3)).fit_transform(TEXTS)
    Y = np.array([[y, y if i % 2 else np.nan] for i, y in enumerate(LABELS)], dtype=float)
    clf = MaskedMultiOutput(NBScaled(LogisticRegression(C=4.0)), ("A", "B")).fit(X, Y)
    margin = np.asarray(X @ clf.coef_[0]).ravel() + clf.intercept_[0]
    assert np.allclose(clf.estimators_[0].decision_function(X), margin)
    probs = clf.predict_proba(X)
    assert math.isclose(probs[0, 0], 1 / (1 + math.exp(-margin[0])))


def test_the_compiled_model_scores_the_nb_scaled_output_as_scikit_learn() -> None:
    pipeline = build_pipeline(small=True)
    assert isinstance(pipeline.named_steps["clf"].per_output["TOXICITY"], NBScaled)
    labels = np.array([[y, y, y if i < 4 else 0.0, 1.0 - y] for i, y in enumerate(LABELS)],
                      dtype=float)
    pipeline.fit(TEXTS * 3, np.vstack([labels] * 3))
    compiled = compile_multi(pipeline)
    assert compiled is not None
    lean = MultiLean(*compiled)
    texts = [*TEXTS, "an idiot reply about the weather", "nothing known here", ""]
    expected = pipeline.predict_proba(texts)
    got = np.array([lean.probabilities(lean.row(t)) for t in texts])
    assert np.abs(got - expected).max() < 1e-9


@pytest.fixture(scope="module")
def pool() -> list:
    return training_rows(default_data_dir())


def test_perspective_rows_label_toxicity_only(pool: list) -> None:
    rows = [r for r in pool if r.source == "perspective"]
    assert len(rows) > 1900  # of 2,000: a few are held-out Wikipedia comments
    trained = [ATTRIBUTES.index(a) for a in PERSPECTIVE_TRAINS]
    for r in rows:
        for k, value in enumerate(r.labels):
            assert (value in (0.0, 1.0)) if k in trained else math.isnan(value)
    assert 200 < sum(r.labels[0] for r in rows) < 300  # 265 of 2,000 score >= 0.5


def test_no_training_text_is_or_starts_like_a_held_out_wikipedia_comment(pool: list) -> None:
    held = {dedup_key(r.text) for r in wiki_rows(default_data_dir(), test=True)}
    starts = {k[:HELD_OUT_PREFIX] for k in held}
    keys = [dedup_key(r.text) for r in pool]
    assert not [k for k in keys if k in held or k[:HELD_OUT_PREFIX] in starts]
    # The sample really does hold some of them: the filter is not vacuous.
    sample = {dedup_key(r.text)[:HELD_OUT_PREFIX] for r in perspective_rows(default_data_dir())}
    assert sample & starts
