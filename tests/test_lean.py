"""The lean scorer gives scikit-learn's probabilities (to 1e-9) and the same reasons."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from sklearn.pipeline import Pipeline

from service.registry.lean import LeanScorer, compile_pipeline, sigmoid
from service.registry.versions import Registry
from service.scoring.model import Scorer
from training.datasets import shipped_base, shipped_youtube
from training.features import Comment, char_wb_ngrams, describe_feature, model_text
from training.spamlists import LURE_WORDS
from training.text import is_stop_phrase

ODD_TEXTS = [
    "",
    " ",
    "🙂",
    "🙂🙂🙂 🎉",
    "Спасибо за статью, очень интересно",
    "Cảm ơn bài viết rất hay, tôi đồng ý",
    "f r e e  m o n e y",
    "frее mоnеy",  # homoglyphs
    "fr\u200bee\u200b money",
    "<a href='http://bit.ly/x'>click</a> &amp; win",
    "CHECK OUT MY CHANNEL!!!!! http://youtube.com/user/x",
    "1 753 682 421 views",
    "日本語のコメントです",
    "مرحبا بالعالم",
    "a" * 3000,
    "word " * 500,
    "x\ty\nz",
    # Unfamiliar text with signals: scored by the backoff model.
    "Заработок от 5000 руб в день!!! Пишите в личку @job_ru http://bit.ly/x",
    "恭喜您获得本期大奖请回复领取奖金详情咨询客服 13800138000 http://t.cn/x",
    "Cảm ơn bài viết, sản phẩm rất tốt, giao hàng nhanh",
]


@pytest.fixture(scope="module")
def scorer(trained_model_dir: Path) -> Scorer:
    registry = Registry(trained_model_dir)
    version = registry.current("spam")
    assert version is not None
    return Scorer(registry.load(version))


def comments() -> list[Comment]:
    shipped = [e.comment for e in shipped_youtube()[::4]]
    return (
        shipped
        + [Comment(content=t) for t in ODD_TEXTS]
        + [
            Comment(
                content="visit my site", author_url="http://me.example", author_email="a@x.com"
            ),
            Comment(content="hi", honeypot="x", flood_count=40),
            Comment(
                content="first!",
                created_at="2026-01-01T10:00:20+00:00",
                article_published_at="2026-01-01T10:00:00+00:00",
            ),
        ]
    )


def test_lean_probabilities_match_sklearn(scorer: Scorer) -> None:
    lean = compile_pipeline(scorer.model.pipeline)
    assert lean is not None
    items = comments()
    expected = scorer.model.pipeline.predict_proba(items)[:, 1]
    worst = max(abs(lean.probability(c) - float(p)) for c, p in zip(items, expected, strict=True))
    assert worst < 1e-9


def test_single_comment_path_gives_the_batch_paths_answer(scorer: Scorer) -> None:
    assert scorer.lean is not None
    items = comments()[-30:]
    batch = scorer.score(items)
    for comment, (prob, reasons) in zip(items, batch, strict=True):
        [(single_prob, single_reasons)] = scorer.score([comment])
        assert single_prob == pytest.approx(prob, abs=1e-9)
        assert [(r.description, r.direction) for r in single_reasons] == [
            (r.description, r.direction) for r in reasons
        ]
        assert [r.weight for r in single_reasons] == pytest.approx([r.weight for r in reasons])


def test_reasons_are_words_not_letter_fragments(scorer: Scorer) -> None:
    [(prob, reasons)] = scorer.score(
        [Comment(content="Check out my channel and subscribe http://bit.ly/abc")]
    )
    assert prob > 0.5
    assert reasons, "a spam verdict must say why"
    for r in reasons:
        assert not r.description.startswith("the letters"), r
        assert r.direction in {"spam", "ham"}
    assert reasons[0].direction == "spam"
    assert any("link" in r.description or "channel" in r.description for r in reasons)


@pytest.mark.parametrize("text", ["Спасибо за статью", "Cảm ơn bài viết", "🙂🙂🙂", ""])
def test_foreign_and_emoji_text_get_a_sensible_score(scorer: Scorer, text: str) -> None:
    [(prob, _)] = scorer.score([Comment(content=text)])
    assert 0.0 < prob < 1.0


def test_obfuscation_scores_like_the_plain_text(scorer: Scorer) -> None:
    plain, spaced, hidden = (
        scorer.score([Comment(content=t)])[0][0]
        for t in (
            "subscribe to my channel",
            "s u b s c r i b e to my channel",
            "sub\u200bscribe to my chаnnel",
        )
    )
    assert spaced == pytest.approx(plain, abs=0.15)
    assert hidden == pytest.approx(plain, abs=0.15)


def test_unfamiliar_text_is_scored_by_its_signals_alone(scorer: Scorer) -> None:
    """The compiled backoff: the same words in another order, or other unknown words
    with the same signals, score alike; the reasons are signals only."""
    lean = scorer.lean
    assert lean is not None and lean.backoff_coef is not None
    lure = "Заработок от 5000 руб в день!!! Пишите в личку http://bit.ly/x"
    assert lean.unfamiliar(model_text(lure))
    other = "Доход от 5000 руб в неделю!!! Звоните сейчас http://bit.ly/x"
    assert lean.margin(Comment(content=lure)) == pytest.approx(
        lean.margin(Comment(content=other)), abs=0.5)
    margin, contributions = lean.explain(Comment(content=lure))
    assert contributions and all(k.startswith("signal:") for k in contributions)
    assert margin == pytest.approx(lean.margin(Comment(content=lure)), abs=1e-12)
    assert not lean.unfamiliar(model_text("Check out my channel and subscribe"))


def test_other_pipelines_are_not_compiled() -> None:
    from sklearn.preprocessing import FunctionTransformer

    assert compile_pipeline(Pipeline([("features", FunctionTransformer())])) is None


@pytest.mark.parametrize("margin", [-800.0, -30.0, 0.0, 30.0, 800.0])
def test_sigmoid_never_overflows(margin: float) -> None:
    assert 0.0 <= sigmoid(margin) <= 1.0


# --- the explanation, against the two-pass reference ---------------------------
# ``merge_contributions`` and ``top_reasons`` as they were before scoring cut each
# word into n-grams once (commit 24c4058), fed with scikit-learn's own features:
# the lean scorer must give the same reasons, in the same order. Descriptions are
# those of the comment (hosts as written, true counts) and stop words are no reason.

_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def _reference_merge(
    text: str, contributions: dict[str, float], char_ngrams: tuple[int, int]
) -> dict[str, float]:
    merged = {k: v for k, v in contributions.items() if not k.startswith("char:")}
    per_word = [(w, char_wb_ngrams(w, char_ngrams)) for w in text.split()]
    counts: dict[str, int] = {}
    for _, grams in per_word:
        for g in grams:
            counts[g] = counts.get(g, 0) + 1
    for word, grams in per_word:
        share = 0.0
        for g in grams:
            value = contributions.get("char:" + g)
            if value is not None:
                share += value / counts[g]
        if share:
            key = "word:" + (_EDGE_PUNCT.sub("", word) or word)
            merged[key] = merged.get(key, 0.0) + share
    return merged


def _reference_top(
    contributions: dict[str, float], k: int, comment: Comment
) -> list[tuple[str, str, float]]:
    merged: dict[str, tuple[str, float]] = {}
    for name, value in contributions.items():
        if is_stop_phrase(name):
            continue
        kind, words = describe_feature(name, comment)
        old = merged.get(words)
        merged[words] = (kind, value + (old[1] if old else 0.0))
    ranked = sorted(merged.items(), key=lambda item: (-abs(item[1][1]), item[0]))
    return [(kind, words, v) for words, (kind, v) in ranked[:k] if abs(v) >= 0.05]


def _reference(scorer: Scorer, items: list[Comment], k: int) -> list[tuple[float, list[Any]]]:
    """Probability and reasons from scikit-learn's transform, merged the old way."""
    features: Any = scorer.model.pipeline.named_steps["features"]
    names = features.get_feature_names_out()
    coef = scorer.model.pipeline.named_steps["clf"].coef_[0]
    probs = scorer.model.pipeline.predict_proba(items)[:, 1]
    X = features.transform(items)
    char = features.char_.ngram_range
    out = []
    for i, comment in enumerate(items):
        row = X.getrow(i)
        # A signal read by the backoff model is that signal; its intercept is no reason.
        contributions = {
            str(names[j]).replace("backoff:", "signal:"): float(v * coef[j])
            for j, v in zip(row.indices, row.data, strict=True)
            if names[j] != "backoff:unfamiliar"
        }
        merged = _reference_merge(model_text(comment.content), contributions, char)
        out.append((float(probs[i]), _reference_top(merged, k, comment)))
    return out


def real_comments() -> list[Comment]:
    """A few hundred shipped comments (YouTube spam and ham, discussion ham), odd texts,
    and words whose descriptions collide (a link token beside the has_link signal)."""
    return (
        [e.comment for e in shipped_base()[::7]]
        + [Comment(content=t) for t in ODD_TEXTS]
        + [
            Comment(content="Hello hello HELLO hello! Hello, subscribe subscribe!!"),
            Comment(content="xurlx xurl_bit_ly xnumx a.b http://bit.ly/x bit.ly 12 &lt;number&gt;"),
        ]
    )


@pytest.mark.parametrize("k", [5, 1000])
def test_one_pass_reasons_match_the_two_pass_reference(scorer: Scorer, k: int) -> None:
    assert scorer.lean is not None
    items = real_comments()
    assert len(items) > 400
    for comment, (prob, reasons) in zip(items, _reference(scorer, items, k), strict=True):
        [(got_prob, got)] = scorer.score([comment], explain=k)
        assert got_prob == pytest.approx(prob, abs=1e-9), comment
        assert [(r.kind, r.description) for r in got] == [(kind, d) for kind, d, _ in reasons]
        assert [r.weight for r in got] == pytest.approx([v for *_, v in reasons], abs=1e-9)


@pytest.mark.parametrize(
    "text", ["Hello HELLO hello!", "ΣΑΣ σας", "İstanbul ISTANBUL", "MiXeD words Words"]
)
def test_explain_folds_upper_case_text_as_the_reference_does(scorer: Scorer, text: str) -> None:
    """Serving passes lower-case model text; any other text folds as written too."""
    lean = scorer.lean
    assert lean is not None and lean.char_ngrams is not None
    contributions: dict[str, float] = {}
    margin = lean.margin(Comment(content=text), contributions, text)
    got_margin, got = lean.explain(Comment(content=text), text)
    assert got_margin == pytest.approx(margin, abs=1e-12)
    expected = _reference_merge(text, contributions, lean.char_ngrams)
    assert got.keys() == expected.keys()
    assert list(got.values()) == pytest.approx(list(expected.values()), abs=1e-12)


def test_the_word_memo_is_bounded(trained_model_dir: Path) -> None:
    registry = Registry(trained_model_dir)
    version = registry.current("spam")
    assert version is not None
    lean = compile_pipeline(registry.load(version).pipeline, memo_size=64)
    assert lean is not None and lean.char is not None
    for i in range(500):
        lean.margin(Comment(content=f"word{i} another{i} subscribe"))
    assert lean.char.memo.cache_info().currsize <= 64
    lean.char.memo.cache_clear()
    # Mostly known words (a comment mostly of unknown ones goes to the backoff model).
    lean.margin(Comment(content="a" * 300 + " " + "b" * 41 + " subscribe" * 80))
    assert lean.char.memo.cache_info().currsize == 1  # long words are not kept


def test_tables_round_trip_to_the_same_numbers(scorer: Scorer) -> None:
    """What the registry writes to lean.json scores exactly as the compiled pipeline."""
    lean = compile_pipeline(scorer.model.pipeline)
    assert lean is not None
    again = LeanScorer.from_tables(orjson.loads(orjson.dumps(lean.to_tables())))
    for c in comments():
        assert again.margin(c) == lean.margin(c)
        assert again.explain(c) == lean.explain(c)


def test_tables_of_another_layout_are_refused(scorer: Scorer) -> None:
    lean = compile_pipeline(scorer.model.pipeline)
    assert lean is not None
    tables = lean.to_tables()
    with pytest.raises(ValueError, match="format"):
        LeanScorer.from_tables({**tables, "format": 99})
    if tables["signal_coef"] is not None:
        with pytest.raises(ValueError, match="signals"):
            LeanScorer.from_tables({**tables, "signals": ["something_else"]})
    with pytest.raises(ValueError, match="length"):
        LeanScorer.from_tables({**tables, "word": {**tables["word"], "idf": [1.0]}})


def test_tables_whose_columns_disagree_are_refused() -> None:
    """Compiled tables are read into compact columns; tables of another shape (a
    column shorter than the terms, a term twice) are refused, never half-read."""
    from service.registry.lean import Weights, _table_weights

    w = Weights(["a", "b"], [1.5, 2.0], [0.25, -1.0])
    assert len(w) == 2 and "a" in w and "c" not in w
    assert w.get("b") == (2.0, -1.0) and w.get("c") is None
    with pytest.raises(ValueError, match="differ in length"):
        _table_weights({"terms": ["a", "b"], "idf": [1.0], "coef": [1.0, 2.0]})
    with pytest.raises(ValueError, match="twice"):
        _table_weights({"terms": ["a", "a"], "idf": [1.0, 1.0], "coef": [1.0, 2.0]})


RANT = Comment(content=(
    "The council spent $2 million on a bridge nobody asked for, and now the income tax "
    "goes up again. " + "Every year they tell us the budget is tight and the roads get worse. " * 8
    + "Where do our dollars go?"))


def test_a_model_fitted_before_the_lure_share_scores_as_it_was_judged(scorer: Scorer) -> None:
    """A pipeline pickled before the list and lure signals were read as a share of the
    text (no ``lure_words_``), its compiled tables and tables of format 2 (no
    ``lure_words``) score with plain counts, as when the model was fitted and gated;
    a model fitted now reads the share."""
    old = copy.deepcopy(scorer.model.pipeline)
    del old.named_steps["features"].lure_words_
    assert old.named_steps["features"].fitted_lure_words() == 0
    lean_old = compile_pipeline(old)
    lean_new = compile_pipeline(scorer.model.pipeline)
    assert lean_old is not None and lean_new is not None
    assert (lean_old.lure_words, lean_new.lure_words) == (0, LURE_WORDS)
    tables = lean_old.to_tables()
    del tables["lure_words"]
    format_2 = LeanScorer.from_tables({**tables, "format": 2})
    items = [*comments(), RANT]
    for pipeline, lean in ((old, lean_old), (old, format_2), (scorer.model.pipeline, lean_new)):
        expected = pipeline.predict_proba(items)[:, 1]
        assert max(abs(lean.probability(c) - float(p))
                   for c, p in zip(items, expected, strict=True)) < 1e-9
    assert lean_new.margin(RANT) < lean_old.margin(RANT)  # the rant's lures are diluted
