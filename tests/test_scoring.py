"""Rules and thresholds: from a probability to a verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.registry.versions import Registry
from service.scoring.model import load_scorer
from service.scoring.verdicts import Verdict, decide, score_comments
from training.features import Comment

LIMITS = {"unsure": 0.2, "spam": 0.6, "discard": 0.95}


@pytest.mark.parametrize(("p", "verdict", "discard"), [
    (0.0, Verdict.HAM, False), (0.19, Verdict.HAM, False), (0.2, Verdict.UNSURE, False),
    (0.59, Verdict.UNSURE, False), (0.6, Verdict.SPAM, False), (0.95, Verdict.SPAM, True),
    (1.0, Verdict.SPAM, True)])
def test_decide(p: float, verdict: Verdict, discard: bool) -> None:
    assert decide(p, LIMITS) == (verdict, discard)


@pytest.fixture
def scorer(model_dir: Path):  # type: ignore[no-untyped-def]
    registry = Registry(model_dir)
    return load_scorer(registry, registry.current() or "")


@pytest.mark.parametrize(("comment", "verdict", "rule"), [
    (Comment("Lovely article, thanks", author="akismet-guaranteed-spam"), Verdict.SPAM,
     "guaranteed_spam"),
    (Comment("Lovely article", author_email="akismet-guaranteed-spam@example.com"), Verdict.SPAM,
     "guaranteed_spam"),
    (Comment("Lovely article", author="viagra-test-123"), Verdict.SPAM, "guaranteed_spam"),
    (Comment("BUY NOW http://bit.ly/x subscribe", user_role="administrator"), Verdict.HAM,
     "administrator"),
    (Comment("Nice one", honeypot="filled by a bot"), Verdict.SPAM, "honeypot"),
])
def test_rules_decide_and_are_named(scorer, comment: Comment, verdict: Verdict,  # type: ignore[no-untyped-def]
                                    rule: str) -> None:
    [out] = score_comments(scorer, [comment])
    assert out.verdict is verdict and out.rule == rule
    assert out.reasons[0].kind == "rule"


def test_honeypot_is_discarded(scorer) -> None:  # type: ignore[no-untyped-def]
    [out] = score_comments(scorer, [Comment("hi", honeypot="x")])
    assert out.discard


def test_batch_keeps_order_with_rules_in_between(scorer) -> None:  # type: ignore[no-untyped-def]
    comments = [Comment("check out my channel http://bit.ly/x"),
                Comment("hi", author="akismet-guaranteed-spam"),
                Comment("The mayor's plan for the park is sensible.")]
    outs = score_comments(scorer, comments)
    assert [o.rule for o in outs] == [None, "guaranteed_spam", None]
    assert outs[0].verdict is Verdict.SPAM and outs[2].verdict is Verdict.HAM


def test_site_thresholds_override_the_model(scorer) -> None:  # type: ignore[no-untyped-def]
    [out] = score_comments(scorer, [Comment("check out my channel http://bit.ly/x")],
                           thresholds={"spam": 1.0, "discard": 1.0, "unsure": 1.0})
    assert out.verdict is Verdict.HAM
