"""The contract of text normalisation, the signals and the reasons, on hand-written examples."""

from __future__ import annotations

import io
from typing import Any

import joblib
import pytest

from training.datasets import shipped_corpora
from training.features import (
    SIGNAL_INDEX,
    SIGNALS,
    Comment,
    CommentFeatures,
    describe_feature,
    merge_contributions,
    model_text,
    normalise_text,
    signal_vector,
    strip_markup,
    top_reasons,
    url_domains,
)
from training.text import SHARED_WORDS, describe_signal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Free\u200b mo\u200cney\ufeff", "free money"),  # zero-width characters go
        ("frее", "free"),  # Cyrillic е inside a Latin word
        ("Спасибо за статью", "спасибо за статью"),  # real Cyrillic stays
        ("f r e e  m o n e y", "free money"),  # spaced-out letters joined
        ("ｈｔｔｐ://ｅｂａｙ.ｃｏｍ", "http://ebay.com"),  # full-width letters
        ("I&#39;m &quot;here&quot;<br />now", 'i\'m "here" now'),  # entities and tags
        ('<a href="http://x.com/a">click</a>', "http://x.com/a click"),  # link keeps target
        ("  Many    SPACES\n\tand lines ", "many spaces and lines"),
        ("Cảm ơn bài viết", "cảm ơn bài viết"),  # Vietnamese diacritics kept
        ("🙂🙂", "🙂🙂"),
    ],
)
def test_normalise_text(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


def test_strip_markup_keeps_plain_text_untouched() -> None:
    assert strip_markup("a < b and c > d") == "a < b and c > d"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("see http://bit.ly/x1Y2 now", "see xurlx xurl_bit_ly now"),
        ("adf.ly / KlD3Y", "xurlx xurl_adf_ly"),
        ("www.Example.com/path?q=1", "xurlx xurl_example_com"),
        ("1,884,034,783 views in 2015", "xnumx views in xnumx"),
        ("no links here", "no links here"),
    ],
)
def test_model_text_replaces_links_and_numbers(raw: str, expected: str) -> None:
    assert model_text(raw) == expected


def test_url_domains() -> None:
    text = "a https://www.Bit.ly/abc and shop.example.co.uk/x and mail me"
    assert url_domains(text) == ["bit.ly", "shop.example.co.uk"]


def signals(**fields: object) -> dict[str, float]:
    comment = Comment(**{"content": "", **fields})  # type: ignore[arg-type]
    return dict(zip([s.name for s in SIGNALS], signal_vector(comment), strict=True))


@pytest.mark.parametrize(
    ("fields", "name", "value"),
    [
        ({"content": "look http://x.com"}, "has_link", 1.0),
        ({"content": "no link"}, "has_link", 0.0),
        ({"content": "http://a.com and http://b.com"}, "link_count", 1.0),
        ({"content": "go to bit.ly/abc"}, "shortener", 1.0),
        ({"content": "https://youtu.be/abc"}, "shortener", 0.0),  # YouTube's own links
        ({"content": "x", "author_url": "http://me.example"}, "author_url", 1.0),
        ({"content": "x", "author_email": "a@gmail.com"}, "free_mail", 1.0),
        ({"content": "x", "author_email": "a@paper.example"}, "free_mail", 0.0),
        ({"content": "write to me@spam.example"}, "email_in_text", 1.0),
        ({"content": "x", "honeypot": "filled"}, "honeypot", 1.0),
        ({"content": "call +44 20 7946 0958 today"}, "phone", 1.0),
        # Glued to a word of a script without spaces, as Chinese writes it.
        ({"content": "咨询热线400-888-9999，微信同号"}, "phone", 1.0),
        ({"content": "联系电话13800138000"}, "phone", 1.0),
        ({"content": "order abc123456789 shipped"}, "phone", 0.0),  # inside an id
        ({"content": "THIS IS ALL SHOUTING TEXT"}, "caps", 1.0),
        ({"content": "sooooo good"}, "repeat", 1.0),
        ({"content": "wow!!!!!"}, "exclaim", 1.0),
        ({"content": "ok"}, "short", 1.0),
        ({"content": "Спасибо за статью"}, "non_latin", 1.0),
        ({"content": "frее money"}, "mixed_script", 1.0),
        ({"content": "Спасибо"}, "mixed_script", 0.0),
        ({"content": "fr\u200bee"}, "obfuscated", 1.0),
        ({"content": "f r e e money"}, "obfuscated", 1.0),
        ({"content": "normal comment\ufeff"}, "obfuscated", 0.0),  # a trailing BOM is export noise
        ({"content": "<b>bold</b>"}, "html", 1.0),
        (
            {
                "content": "x",
                "article_published_at": "2026-01-01T10:00:00Z",
                "created_at": "2026-01-01T10:00:30Z",
            },
            "fast_reply",
            1.0,
        ),
        ({"content": "x", "created_at": "not a date"}, "fast_reply", 0.0),
        ({"content": "x", "flood_count": 51}, "flood", 1.0),
        ({"content": "x", "flood_count": 1}, "flood", 0.0),
    ],
)
def test_signal(fields: dict[str, object], name: str, value: float) -> None:
    assert signals(**fields)[name] == pytest.approx(value)


def test_signals_are_bounded_and_length_is_an_indicator() -> None:
    for text in ["", "a", "word " * 4000, "1" * 500, "🙂" * 50, "!" * 99]:
        values = signal_vector(Comment(content=text))
        assert all(0.0 <= v <= 1.0 for v in values), text
    assert "length" not in signals(content="word " * 4000)  # see signal_vector's docstring


def test_digits_of_a_link_path_are_not_the_text_digits() -> None:
    assert signals(content="https://youtu.be/9bZkp7q19f0 great")["digits"] == 0.0


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("word:channel", "token", "the word 'channel'"),
        ("word:check out", "token", "the phrase 'check out'"),
        ("word:xurlx", "feature", "contains a link"),
        ("word:xurl_bit_ly", "feature", "a link to bit.ly"),
        ("word:visit xurlx", "token", "the phrase 'visit <link>'"),
        ("word:xnumx", "token", "a number"),
        ("word:xnumx xnumx", "token", "the phrase '<number> <number>'"),
        ("word:xurl_bit_ly xurlx", "token", "the phrase 'bit.ly <link>'"),
        ("word:don't", "token", "the word 'don't'"),
        ("word:$", "token", "the sign '$'"),  # of "$20": the number is cut out
        ("word:p", "token", "the letter 'p'"),  # of "6p"
        ("signal:shortener", "feature", "a link to a URL shortener"),
        ("char:chan", "token", "the letters 'chan'"),
    ],
)
def test_describe_feature(name: str, kind: str, words: str) -> None:
    assert describe_feature(name) == (kind, words)


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("word:xurl_cash_now_biz", "cash at www.cash-now.biz now", "a link to www.cash-now.biz"),
        ("word:xurl_cash_now_biz", "cash at https://Cash-Now.biz/x", "a link to cash-now.biz"),
        # a host with digits reaches the model cut at them: the whole host is named
        ("word:xurl_casino", "win at http://casino777.example/x", "a link to casino777.example"),
        ("word:xurl_best_", "see www.best-4u.com", "a link to www.best-4u.com"),
        ("word:visit xurl_cash_now_biz", "visit www.cash-now.biz",
         "the phrase 'visit www.cash-now.biz'"),
        ("signal:exclaim", "great!", "an exclamation mark"),
        ("signal:exclaim", "great!! really!", "3 exclamation marks"),
        ("signal:exclaim", "WIN!!!!!!", "many exclamation marks"),
        ("signal:digits", "see you in 2026", "a number"),
        ("signal:digits", "call 0800 123 456 789", "many digits"),
        ("signal:link_count", "see a.com and b.net", "2 links"),
        ("signal:repeat", "sooooooo good", "a character repeated 7 times in a row"),
        ("signal:caps", "WHAT a lovely day today", "21% of the letters in capitals"),
        ("signal:caps", "BUY NOW CHEAP PILLS", "much of the text in CAPITALS"),
        ("signal:short", "hi", "a very short text"),
    ],
)
def test_words_are_true_of_the_comment(name: str, content: str, words: str) -> None:
    assert describe_feature(name, Comment(content=content))[1] == words


def test_flood_words_give_the_count() -> None:
    comment = Comment(content="same text", flood_count=4)
    words = describe_feature("signal:flood", comment)[1]
    assert words == "the same text was posted 4 times recently"


def test_stop_words_are_never_a_reason() -> None:
    contributions = {"word:the": 2.0, "word:of the": 1.5, "word:the channel": 1.0, "word:is": -3.0}
    assert top_reasons(contributions, 5) == [("token", "the phrase 'the channel'", 1.0)]


def test_every_signal_has_words() -> None:
    for s in SIGNALS:
        assert describe_feature(f"signal:{s.name}")[1] == s.description
    assert len(SIGNAL_INDEX) == len(SIGNALS)


def test_char_ngrams_are_folded_into_their_words() -> None:
    contributions = {"char: su": 0.4, "char:ub": 0.2, "word:my channel": 0.5, "signal:short": -0.1}
    merged = merge_contributions("subscribe subway!!", contributions, (2, 3))
    assert not any(k.startswith("char:") for k in merged)
    # " su" and "ub" occur once in each word: each word gets half of both
    assert merged["word:subscribe"] == pytest.approx(0.3)
    assert merged["word:subway"] == pytest.approx(0.3)
    assert merged["word:my channel"] == 0.5


def test_top_reasons_order_direction_and_floor() -> None:
    reasons = top_reasons(
        {"word:channel": 1.2, "signal:shortener": 2.0, "word:thanks": -0.9, "word:the": 0.01}, 3
    )
    assert reasons == [
        ("feature", "a link to a URL shortener", 2.0),
        ("token", "the word 'channel'", 1.2),
        ("token", "the word 'thanks'", -0.9),
    ]


def test_features_with_one_description_are_summed_before_the_floor() -> None:
    """Two pushes under the floor are one reason together (the link token and the
    has_link signal); equal sizes rank by their words."""
    reasons = top_reasons(
        {"word:xurlx": 0.03, "word:hi": 0.2, "signal:has_link": 0.03, "word:a": -0.01}, 5
    )
    assert reasons == [("token", "the word 'hi'", 0.2), ("feature", "contains a link", 0.06)]
    assert top_reasons({"word:xa": 0.3, "word:ya": -0.3, "word:za": 0.3}, 2) == [
        ("token", "the word 'xa'", 0.3),
        ("token", "the word 'ya'", -0.3),
    ]


def test_normalise_text_remembers_only_short_texts() -> None:
    """A check normalises its text twice (flood keys, model text): the second time
    is a lookup, and a long text (up to 18x longer after NFKC) is never kept."""
    from training import text

    short, long = "Ｆｒｅｅ  ｍｏｎｅｙ " + "x" * 20, "\ufdfa" * (text.MEMO_CHARS + 1)
    before = text._normalise_memo.cache_info()
    assert normalise_text(short) == normalise_text(short) == "free money " + "x" * 20
    assert normalise_text(long) == text._normalise(long)
    after = text._normalise_memo.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (1, 1)


def _signal_words(comments: list[Comment]) -> dict[str, set[str]]:
    """Every signal's words: its own and those of each comment."""
    words: dict[str, set[str]] = {s.name: {s.description} for s in SIGNALS}
    for c in comments:
        for s in SIGNALS:
            words[s.name].add(describe_signal(s.name, c))
    return words


def test_only_the_shared_signals_read_like_another_feature() -> None:
    """top_reasons does not work out the words of a signal that pushes less than a
    reason unless it is in SHARED_WORDS: sound only while no other feature, signal
    or word, can read the same."""
    odd = [
        Comment(content=text, flood_count=flood)
        for text, flood in [
            ("WOW!!!!! FREE MONEY http://a.example http://b.example 0800 123 4567", 7),
            ("Спасибо за статью, very GOOD", 1), ("aaaaaaaa 12 34!", 2), ("", 1),
            ("是的 " * 9, 30), ("شكرا جزيلا", 1), ("I agree.", 1),
        ]
    ]
    comments = [e.comment for _, ex in shipped_corpora() for e in ex][::11] + odd
    words = _signal_words(comments)
    for name, own in words.items():
        if name in SHARED_WORDS:
            continue
        for other, theirs in words.items():
            assert other == name or not own & theirs, (name, other, own & theirs)
        for w in own:  # describe_feature's words for word:, char: and host features
            assert w not in ("contains a link", "a number"), name
            assert not w.startswith(("the word '", "the phrase '", "the letters '")), name
            assert not w.startswith("a link to ") or " " in w.removeprefix("a link to "), name
    # and the shared ones do read like a word feature, so they are always described
    assert "contains a link" in words["has_link"] and "a number" in words["digits"]


def test_a_tiny_signal_is_no_reason_whether_or_not_described() -> None:
    comment = Comment(content="Great reporting on the COUNCIL vote, thanks")
    contributions = {"signal:caps": 0.04, "word:council": 0.3, "signal:digits": 0.03,
                     "word:xnumx": 0.03}
    assert top_reasons(contributions, 5, comment) == [
        ("token", "the word 'council'", 0.3), ("token", "a number", 0.06),
    ]


TINY = [
    ("check out my channel http://bit.ly/x", 1),
    ("subscribe to my channel please", 1),
    ("free money visit www.spam.example now", 1),
    ("great song, I love it", 0),
    ("this video brings back memories", 0),
    ("the council vote was close", 0),
]


def test_comment_features_fit_transform_and_pickle_round_trip() -> None:
    features = CommentFeatures().fit([Comment(t) for t, _ in TINY])
    X = features.transform([Comment(t) for t, _ in TINY] + [Comment("")])
    assert X.shape == (len(TINY) + 1, len(features.get_feature_names_out()))
    buffer = io.BytesIO()
    joblib.dump(features, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert (loaded.transform([Comment(t) for t, _ in TINY]) != X[: len(TINY)]).nnz == 0
    assert loaded.word_.vocabulary_ == features.word_.vocabulary_


def test_transform_accepts_strings_and_dicts() -> None:
    features = CommentFeatures().fit([t for t, _ in TINY])
    a = features.transform(["free money", {"content": "free money", "unknown": 1}])
    assert (a[0] != a[1]).nnz == 0


# --- the backoff: signals alone where the words are unknown -------------------

BACKOFF_TRAIN = [
    ("Check out my channel http://bit.ly/a1 and subscribe!!!", 1),
    ("Win a free prize now, call 0800 123 4567", 1),
    ("Earn $500 a day from home, visit http://money.example", 1),
    ("Great article, I agree with the council's decision", 0),
    ("The vote was closer than the polls said it would be", 0),
    ("Thanks for the thoughtful reporting on the flood damage", 0),
] * 3


def _backoff_pipeline(**params: Any) -> object:
    from training.train import build_pipeline

    texts, labels = zip(*BACKOFF_TRAIN, strict=True)
    return build_pipeline(params).fit(list(texts), list(labels))


def test_familiarity_counts_letters_of_known_words() -> None:
    from training.text import FAMILIAR_SHARE, familiarity

    known = {"great", "article"}
    assert familiarity("great article", known) == 1.0
    assert familiarity("great article zzzzzzzzzzzzz", known) == pytest.approx(12 / 25)
    # Chinese has no spaces: one sentence is one long unknown "word", not "too few words".
    assert familiarity("恭喜您获得本期大奖请回复", known) == 0.0
    assert familiarity("恭喜您获得本期大奖请回复", known) < FAMILIAR_SHARE
    # Links and numbers are the signals' business; too few letters cannot tell.
    assert familiarity("xurlx xurl_zzzzzzzzzz_com xnumx great", known) is None
    assert familiarity("ok", known) is None


def test_unreadable_counts_letter_pairs_the_character_block_knows() -> None:
    from training.text import unreadable

    pairs = {"su", "ub", "bs", "sc", "cr", "ri", "ib", "be", "me", "pl", "lz"}
    # Slang and typos: unknown words, known pairs; the text model reads them.
    assert not unreadable(["subscribe", "me", "plzzzzzzzz"], pairs)
    assert unreadable(["恭喜您获得本期大奖请回复"], pairs)
    assert unreadable(["заработок", "онлайн", "пишите"], pairs)
    # Links and numbers are left out; too few pairs cannot tell.
    assert unreadable(["заработок", "xurlx", "xurl_subscribe_com", "xnumx"], pairs)
    assert not unreadable(["хм", "xurlx", "xurl_zzzzzzzzz_com"], pairs)


def test_an_unfamiliar_row_is_read_by_the_backoff_block_only() -> None:
    from training.text import BACKOFF_GATE

    pipe: Any = _backoff_pipeline()
    features = pipe.named_steps["features"]
    names = list(features.get_feature_names_out())
    familiar, foreign = features.transform(
        ["Great article about the vote", "Заработок онлайн, пишите в личку http://bit.ly/x"]
    ).toarray()
    start = names.index("backoff:has_link")
    assert not familiar[start:].any() and familiar[:start].any()
    assert not foreign[:start].any()
    assert foreign[names.index(BACKOFF_GATE)] == 1.0
    assert foreign[names.index("backoff:has_link")] == 1.0  # unweighted signal values


def test_familiar_comments_score_as_the_plain_logistic_regression() -> None:
    from training.train import build_pipeline

    texts, labels = zip(*BACKOFF_TRAIN, strict=True)
    plain = build_pipeline({"backoff": False, "loss": "log", "C": 20.0})
    plain.fit(list(texts), list(labels))
    pipe: Any = _backoff_pipeline(loss="log", C=20.0)
    probe = ["Check out my prize channel", "I agree with the article", "free vote now"]
    assert pipe.predict_proba(probe)[:, 1] == pytest.approx(plain.predict_proba(probe)[:, 1],
                                                           abs=1e-12)


def test_an_unfamiliar_comment_is_scored_by_its_signals_less_script_and_wp_list() -> None:
    from training.features import BACKOFF_EXCLUDED

    pipe: Any = _backoff_pipeline()
    coef = dict(zip(pipe.named_steps["features"].get_feature_names_out(),
                    pipe.named_steps["clf"].coef_[0], strict=True))
    for name in BACKOFF_EXCLUDED:
        assert coef[f"backoff:{name}"] == 0.0
    assert coef["backoff:has_link"] > 0
    # Two unfamiliar comments with the same signals get the same score, whatever the words.
    a, b, link = pipe.predict_proba(
        ["спасибо за статью, очень интересно", "这篇文章写得很好，我同意作者的观点",
         "спасибо за статью, очень интересно http://bit.ly/x"])[:, 1]
    assert a == pytest.approx(b, abs=1e-12)
    assert link > a


def test_hinge_loss_is_a_linear_svm_platt_scaled_on_out_of_fold_margins() -> None:
    import numpy as np
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.svm import LinearSVC

    from training.features import PLATT_C
    from training.train import FOLD_SEED, KFOLDS

    pipe: Any = _backoff_pipeline(loss="hinge", C=10.0)
    features = pipe.named_steps["features"]
    texts, labels = zip(*BACKOFF_TRAIN, strict=True)
    X = features.transform(list(texts))
    y = np.asarray(labels)
    familiar = X[:, -1].toarray().ravel() == 0
    text_end = X.shape[1] - len(SIGNALS) - 1
    Xf, yf = X[familiar][:, :text_end], y[familiar]
    svm = LinearSVC(C=10.0, class_weight="balanced", max_iter=20_000, random_state=0)
    folds = StratifiedKFold(n_splits=min(KFOLDS, int(np.bincount(yf).min())), shuffle=True,
                            random_state=FOLD_SEED)
    margins = cross_val_predict(svm, Xf, yf, cv=folds, method="decision_function")
    platt = LogisticRegression(C=PLATT_C, class_weight="balanced").fit(margins[:, None], yf)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    assert a > 0  # the SVM's direction, scaled: the reasons keep their signs
    svm.fit(Xf, yf)
    probe = ["Check out my prize channel", "I agree with the article", "free vote now"]
    expected = expit(a * svm.decision_function(features.transform(probe)[:, :text_end]) + b)
    assert pipe.predict_proba(probe)[:, 1] == pytest.approx(expected, abs=1e-12)


def test_a_plain_pipeline_is_only_the_logistic_regression() -> None:
    from training.train import build_pipeline

    with pytest.raises(ValueError, match="loss 'log'"):
        build_pipeline({"backoff": False, "loss": "hinge"})


def test_backoff_logistic_refuses_an_unknown_loss() -> None:
    from training.features import BackoffLogistic

    texts, labels = zip(*BACKOFF_TRAIN, strict=True)
    X = CommentFeatures(backoff=True).fit_transform(list(texts))
    with pytest.raises(ValueError, match="loss must be one of log, hinge"):
        BackoffLogistic(loss="squared").fit(X, list(labels))


def test_backoff_logistic_refuses_features_without_its_block() -> None:
    import numpy as np

    from training.features import BackoffLogistic

    with pytest.raises(ValueError, match="backoff"):
        BackoffLogistic().fit(np.ones((4, 3)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="use_signals"):
        CommentFeatures(backoff=True, use_signals=False).fit(["a b c"])
    with pytest.raises(ValueError, match="use_chars"):
        CommentFeatures(backoff=True, use_chars=False).fit(["a b c"])


def test_platt_never_reverses_the_svms_direction() -> None:
    """Out-of-fold margins that rank ham above spam (folds too small to learn from)
    keep the SVM's own margin as log-odds: a reversed scale would flip every reason."""
    import numpy as np
    from sklearn.base import BaseEstimator
    from sklearn.svm import LinearSVC

    from training.features import BackoffLogistic

    class Backwards(BaseEstimator):  # an SVM whose margins point the wrong way
        def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
            self.svm_ = LinearSVC(random_state=0).fit(X, y, sample_weight=sample_weight)
            self.classes_ = self.svm_.classes_
            return self

        def decision_function(self, X: Any) -> Any:
            return -self.svm_.decision_function(X)

        def predict(self, X: Any) -> Any:
            return (self.decision_function(X) > 0).astype(int)

    rng = np.random.default_rng(0)
    y = np.array([1, 0] * 20)
    X = np.column_stack([y + rng.normal(0, 0.3, 40), rng.normal(0, 1, 40)])
    w = np.ones(40)
    scale, _ = BackoffLogistic._platt(LinearSVC(random_state=0), X, y, w)
    assert scale > 0
    assert BackoffLogistic._platt(Backwards(), X, y, w) == (1.0, 0.0)
    assert BackoffLogistic._platt(LinearSVC(), X[:2], y[:2], w[:2]) == (1.0, 0.0)  # no folds


def test_a_backoff_model_pickled_before_the_loss_reads_as_the_logistic_regression() -> None:
    """Models saved before ``loss`` existed have no such attribute: repr, clone and
    get_params would raise on them (a registry's older versions)."""
    import pickle

    from sklearn.base import clone

    pipe: Any = _backoff_pipeline(loss="log", C=20.0)
    clf = pipe.named_steps["clf"]
    del clf.loss  # as pickled by the code before
    old = pickle.loads(pickle.dumps(clf))  # noqa: S301 - our own object, round trip
    assert old.loss == "log" and old.get_params()["loss"] == "log"
    assert "BackoffLogistic" in repr(old) and clone(old).loss == "log"
