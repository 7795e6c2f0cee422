"""The baselines run as real programs on a tiny hand-written set."""

from __future__ import annotations

import pytest

from training.baselines import (
    bogofilter_available,
    bogofilter_classify,
    bogofilter_fit_predict,
    tfidf_lr_fit_predict,
    to_mbox,
)
from training.datasets import Example
from training.features import Comment

SPAM = [
    "check out my channel and subscribe",
    "subscribe to my channel for free money",
    "free money click my link now",
    "visit my channel please subscribe",
    "earn money online visit my site",
    "click here for free gift cards",
]
HAM = [
    "this song is so good i love it",
    "the video brings back memories",
    "love this song so much",
    "best music video of the year",
    "this song never gets old",
    "i remember dancing to this song",
]


def examples(texts: list[str], label: int) -> list[Example]:
    return [Example(Comment(content=t), label, "tiny", group="g") for t in texts]


TRAIN = examples(SPAM, 1) + examples(HAM, 0)
TEST = examples(["subscribe to my channel free money"], 1) + examples(["i love this song"], 0)

needs_bogofilter = pytest.mark.skipif(not bogofilter_available(), reason="bogofilter missing")


def test_mbox_escapes_from_lines_and_keeps_one_message_per_text() -> None:
    mbox = to_mbox(["From here on\nsecond line", "", "two"])
    assert mbox.count("\nFrom ") + mbox.startswith("From ") == 3
    assert ">From here on" in mbox


@needs_bogofilter
def test_bogofilter_learns_the_tiny_set() -> None:
    results = bogofilter_classify(TRAIN, TEST)
    assert len(results) == 2
    (spam_verdict, spam_score), (ham_verdict, ham_score) = results
    assert spam_score > ham_score
    assert spam_verdict in {"S", "U"} and ham_verdict in {"H", "U"}
    scores, verdicts = bogofilter_fit_predict(TRAIN, TEST)
    assert verdicts == [int(spam_verdict == "S"), int(ham_verdict == "S")]
    assert scores == [spam_score, ham_score]


@needs_bogofilter
def test_bogofilter_starts_from_an_empty_wordlist_each_time() -> None:
    flipped = [Example(e.comment, 1 - e.label, e.source, e.group) for e in TRAIN]
    first = bogofilter_classify(TRAIN, TEST)
    second = bogofilter_classify(flipped, TEST)
    assert first[0][1] > first[1][1]
    assert second[0][1] < second[1][1]  # nothing learnt in the first call survived


@needs_bogofilter
def test_bogofilter_copes_with_odd_texts() -> None:
    odd = examples(["", "From me", "Спасибо 🙂", "<a href='x'>y</a>", "line\n\nbreaks"], 0)
    assert len(bogofilter_classify(TRAIN, odd)) == len(odd)


def test_tfidf_lr_learns_the_tiny_set() -> None:
    spam_p, ham_p = tfidf_lr_fit_predict(TRAIN, TEST)
    assert spam_p > 0.5 > ham_p
