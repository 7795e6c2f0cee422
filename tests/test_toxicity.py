"""The toxicity family: multi-output estimator, per-word spans, offsets, language
guess, span F1, and the registry round trip (hot reload of a new version)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from service.errors import ModelError
from service.registry.versions import Registry
from service.scoring import toxicity
from training.features import CommentFeatures, MaskedMultiOutput, token_contributions, utf16_offsets
from training.toxicity import span_f1, span_lexicon, toxic_offsets

TEXTS = ["you idiot", "what an idiot you are", "lovely weather today", "thanks for this",
         "idiot idiot", "a calm and kind reply"]
LABELS = [[1, 1], [1, np.nan], [0, 0], [0, np.nan], [1, np.nan], [0, 0]]


def fitted() -> tuple[CommentFeatures, MaskedMultiOutput]:
    features = CommentFeatures(use_signals=False, char_ngrams=(2, 4))
    X = features.fit_transform(TEXTS)
    clf = MaskedMultiOutput(LogisticRegression(C=10.0), ("A", "B"))
    return features, clf.fit(X, np.array(LABELS, dtype=float))


def test_masked_multi_output_fits_each_output_on_its_judged_rows() -> None:
    features, clf = fitted()
    assert clf.coef_.shape == (2, features.transform(["x"]).shape[1])
    assert clf.estimators_[1].n_features_in_ == clf.coef_.shape[1]
    probs = clf.predict_proba(features.transform(["idiot", "kind weather"]))
    assert probs.shape == (2, 2)
    assert probs[0, 0] > probs[1, 0]


def test_masked_multi_output_needs_both_classes() -> None:
    features = CommentFeatures(use_signals=False).fit(TEXTS)
    clf = MaskedMultiOutput(LogisticRegression(), ("A",))
    with pytest.raises(ValueError, match="positive and negative"):
        clf.fit(features.transform(TEXTS[:2]), np.array([[1.0], [1.0]]))


@pytest.mark.parametrize("text", ["what an idiot you are", "Idiot!  you, IDIOT.", "kind words"])
def test_token_contributions_add_up_to_the_margin(text: str) -> None:
    features, clf = fitted()
    row = features.transform([text])
    parts = token_contributions(features, row, clf.coef_[0], text)
    margin = float((row @ clf.coef_[0])[0])
    assert math.isclose(sum(c for _, _, c in parts), margin, abs_tol=1e-9)
    assert [text[b:e] for b, e, _ in parts] == [w for w in text.replace(",", " ").replace(
        "!", " ").replace(".", " ").split()]


@pytest.mark.parametrize(("text", "index", "expected"), [
    ("abc", 3, 3),
    ("😀a", 1, 2),
    ("😀a", 2, 3),
    ("é😀😀x", 4, 6),
])
def test_utf16_offsets(text: str, index: int, expected: int) -> None:
    assert utf16_offsets(text)[index] == expected
    assert utf16_offsets(text)[-1] == len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize(("predicted", "gold", "f1"), [
    (set(), set(), 1.0),
    ({1}, set(), 0.0),
    (set(), {1}, 0.0),
    ({1, 2}, {1, 2}, 1.0),
    ({1, 2, 3, 4}, {3, 4}, 2 * 0.5 * 1.0 / 1.5),
])
def test_span_f1_is_semevals_metric(predicted: set[int], gold: set[int], f1: float) -> None:
    assert math.isclose(span_f1(predicted, gold), f1)


def test_adjacent_toxic_words_merge_with_the_space_between() -> None:
    text = "you stupid idiot, ok"
    words = [(0, 3, 0.1), (4, 10, 0.9), (11, 16, 0.7), (18, 20, 0.2)]
    assert toxic_offsets(words, text) == set(range(4, 16))
    merged = toxicity.toxic_spans(text, [toxicity.Span(*w) for w in words])
    assert merged == [toxicity.Span(4, 16, 0.9)]


@pytest.mark.parametrize(("text", "lang"), [
    ("You are a fool and this is wrong", "en"),
    ("El gobierno de la ciudad es muy malo para los vecinos", "es"),
    ("Привіт, як справи? Це стаття про їжу", "uk"),
    ("Привет, как дела? Это статья", "ru"),
    ("東京は大きい都市です", "und"),
    ("🙂🙂", "en"),
    ("ok", "en"),
])
def test_detect_language(text: str, lang: str) -> None:
    assert toxicity.detect_language(text) == lang


def test_stored_shape_for_the_moderation_queue() -> None:
    stored = toxicity.stored_toxicity({"TOXICITY": 0.912345}, [toxicity.Span(4, 9, 0.81234)])
    assert stored == {"scores": {"TOXICITY": 0.9123}, "spans": [[4, 9, 0.8123]]}


def test_holder_hot_reloads_a_promoted_version(toxicity_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "models"
    shutil.copytree(toxicity_model_dir, root)
    registry = Registry(root)
    holder = toxicity.ToxicityHolder(registry, reload_interval=0.0)
    holder.maybe_reload(force=True)
    first = holder.toxicity_scorer().version
    meta = registry.metadata(first)
    copy = registry.save(registry.load(first).pipeline, {**meta}, family="toxicity")
    registry.set_current(copy)
    holder.maybe_reload(force=True)
    assert holder.toxicity_scorer().version == copy != first


def test_a_spam_model_is_refused_as_toxicity(toxicity_model_dir: Path) -> None:
    registry = Registry(toxicity_model_dir)
    spam = registry.current("spam")
    assert spam is not None
    with pytest.raises(ModelError):
        toxicity.load_toxicity_scorer(registry, spam)


def test_span_lexicon_is_the_share_of_annotated_occurrences() -> None:
    examples = [("you idiot", set(range(4, 9))), ("Idiot, you", set(range(0, 5))),
                ("an idiot idea", set()), ("you you", set())]
    lexicon = span_lexicon(examples)
    assert lexicon == {"idiot": round(2 / 3, 4), "you": 0.0}  # "an", "idea": fewer than 3


def test_word_span_score_prefers_the_lexicon() -> None:
    lexicon = {"idiot": 0.9, "the": 0.01}
    assert toxicity.word_span_score(-5.0, 0.0, "idiot", lexicon) > 0.9
    assert toxicity.word_span_score(5.0, 0.0, "the", lexicon) < 0.1
    at_ratio = toxicity.word_span_score(0.0, 0.0, "x", {"x": toxicity.SPAN_LEXICON_RATIO})
    assert at_ratio == 0.5
    assert toxicity.word_span_score(0.3, 0.1, "unseen", lexicon) > 0.5  # the model decides
    assert toxicity.word_span_score(0.3, 0.1, "unseen", None) > 0.5
