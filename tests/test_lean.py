"""The lean scorer gives scikit-learn's probabilities (to 1e-9) and the same reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.pipeline import Pipeline

from service.lean import compile_pipeline, sigmoid
from service.model import Scorer
from service.registry import Registry
from training.datasets import shipped_youtube
from training.features import Comment

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


def test_other_pipelines_are_not_compiled() -> None:
    from sklearn.preprocessing import FunctionTransformer

    assert compile_pipeline(Pipeline([("features", FunctionTransformer())])) is None


@pytest.mark.parametrize("margin", [-800.0, -30.0, 0.0, 30.0, 800.0])
def test_sigmoid_never_overflows(margin: float) -> None:
    assert 0.0 <= sigmoid(margin) <= 1.0
