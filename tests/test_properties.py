"""Property tests: text normalisation, feature extraction, the JSON comment parser and
form parsing never raise on hostile input, and keep their promises on any Unicode.
"""

from __future__ import annotations

import math
import pickle
import string
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException

from service.api.comments import parse_comment
from service.config import load_settings
from service.errors import ValidationError
from training.features import (
    COMMENT_FIELDS,
    Comment,
    CommentFeatures,
    char_wb_ngrams,
    dedup_key,
    normalise_text,
    signal_vector,
)

# Every code point, lone surrogates and control characters included.
ANY_CHAR = st.characters(exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=300)
HOSTILE = st.text(
    st.one_of(
        ANY_CHAR,
        st.sampled_from("\x00\x1b\u200b\u200d\ufeff\u202e\u0301\ud800\udfff\U0001f600"
                        "асеорх İıßﬁ <>&\"'%!.-_* "),
    ),
    max_size=400,
)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- text normalisation --------------------------------------------------------


@FAST
@given(HOSTILE)
def test_normalise_text_is_idempotent(text: str) -> None:
    once = normalise_text(text)
    assert isinstance(once, str)
    assert normalise_text(once) == once


@FAST
@given(HOSTILE)
def test_normalised_text_has_one_space_no_zero_width_no_upper_case(text: str) -> None:
    out = normalise_text(text)
    assert out == out.strip()
    assert "  " not in out
    assert not set(out) & set("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\t\n\r")


@FAST
@given(HOSTILE)
def test_dedup_key_is_idempotent_and_ignores_case_and_spacing(text: str) -> None:
    key = dedup_key(text)
    assert dedup_key(key) == key
    assert dedup_key(f"  {text.upper()}\n") == dedup_key(dedup_key(text.upper()))


@pytest.mark.parametrize("text", [
    "x" * 200_000,
    "f r e e " * 20_000,
    "a." * 100_000 + "!",
    "\x00" * 50_000,
    "\ud800" * 10_000,
    "🙂" * 50_000,
    "\u0301" * 50_000,  # combining marks with nothing to combine with
    "ﷺ" * 10_000,  # NFKC expands each to 18 characters
])
def test_huge_inputs_are_handled(text: str) -> None:
    assert normalise_text(normalise_text(text)) == normalise_text(text)
    dedup_key(text)
    signal_vector(Comment(content=text))


# --- feature extraction --------------------------------------------------------


@pytest.fixture(scope="module")
def features() -> CommentFeatures:
    corpus = ["buy cheap pills http://bit.ly/x", "nice article thanks", "SUBSCRIBE to my channel",
              "Спасибо за статью", "🙂🙂", "call 555-123-4567 now!!!"]
    return CommentFeatures(min_df=1).fit(corpus)


comments = st.builds(
    Comment,
    content=HOSTILE,
    **{name: st.one_of(st.just(""), HOSTILE) for name in COMMENT_FIELDS if name != "content"},
    flood_count=st.integers(min_value=-(2**31), max_value=2**31),
)


@FAST
@given(comments)
def test_signal_vector_is_finite_and_bounded(comment: Comment) -> None:
    values = signal_vector(comment)
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values), values


@FAST
@given(st.lists(comments, min_size=1, max_size=5))
def test_transform_never_raises_and_is_finite(features: CommentFeatures,
                                              batch: list[Comment]) -> None:
    X = features.transform(batch)
    assert X.shape[0] == len(batch)
    assert all(math.isfinite(v) for v in X.data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(HOSTILE.filter(lambda s: s.strip()), min_size=2, max_size=8))
def test_fitted_features_survive_pickling(texts: list[str]) -> None:
    """A model retrained on hostile labelled comments must load again (NUL included)."""
    texts = [*texts, "plain words"]  # a vocabulary is never empty in real training
    fitted = CommentFeatures(min_df=1).fit(texts)
    restored = pickle.loads(pickle.dumps(fitted))  # noqa: S301 - our own object, round trip
    assert (restored.transform(texts) != fitted.transform(texts)).nnz == 0


NGRAM_RANGES = st.tuples(st.integers(1, 6), st.integers(0, 4)).map(lambda r: (r[0], r[0] + r[1]))


@FAST
@given(HOSTILE, NGRAM_RANGES)
def test_char_wb_ngrams_are_scikit_learns(text: str, ngram_range: tuple[int, int]) -> None:
    """Serving cuts words into n-grams itself; it must cut them as training did."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyse = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range).build_analyzer()
    folded = text.lower()
    ours = [g for word in folded.split() for g in char_wb_ngrams(word, ngram_range)]
    assert ours == analyse(folded)


URLISH = st.lists(
    st.sampled_from(
        [*"abwxz.:/ -_0!", "\u0430", "\u03a3", "http://", "HTTPS://", "ftp://", "www.", "WWW.",
         ".com", ".CoM", ".ru", ".ly", ".online", "bit.ly/", "\u200b"]
    ),
    max_size=30,
).map("".join)


@FAST
@given(URLISH | HOSTILE)
def test_the_cheap_link_test_never_misses_a_link(text: str) -> None:
    """Texts the cheap test rejects skip URL_RE: it must reject only link-free text."""
    from training.text import _MAYBE_URL, URL_RE

    if URL_RE.search(text) is not None:
        assert _MAYBE_URL.search(text) is not None


@FAST
@given(URLISH | HOSTILE)
def test_only_words_with_a_lookalike_letter_are_folded(text: str) -> None:
    from training.text import _HAS_LOOKALIKE, _fold_homoglyphs

    for word in text.split():
        if _fold_homoglyphs(word) != word:
            assert _HAS_LOOKALIKE.search(word) is not None


# --- the JSON comment parser ---------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | HOSTILE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE, inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_settings(
        {"max_content_chars": 300, "max_field_chars": 50, "secret_key": "x",
         "data_dir": tmp_path_factory.mktemp("var")},
        environ={},
    )


@FAST
@given(JSON | st.fixed_dictionaries(
    {"content": JSON}, optional={name: JSON for name in COMMENT_FIELDS if name != "content"}))
def test_parse_comment_gives_a_comment_or_a_validation_error(small_limits: Any,
                                                             value: Any) -> None:
    try:
        comment = parse_comment(value, small_limits)
    except ValidationError as exc:
        assert exc.message and exc.status == 400
        return
    assert isinstance(comment, Comment)
    assert comment.content.strip() and len(comment.content) <= 300


# --- form bodies (the Akismet wire format) -------------------------------------

PERCENT = st.lists(
    st.one_of(
        st.sampled_from(["%FF", "%FE", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "%", "%G1",
                         "%00", "+", "&", "=", "%26", "%3D", "%E2%82"]),
        st.text(string.ascii_letters + string.digits, max_size=5),
    ),
    max_size=40,
).map("".join)


def _form_body(field: str, value: str) -> bytes:
    return f"blog=https%3A%2F%2Fsite.example&{field}={value}".encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # the app is never changed
@given(st.sampled_from(["comment_content", "comment_author", "user_ip", "x"]), PERCENT)
def test_werkzeug_decodes_any_percent_escapes_to_text(app: Flask, field: str,
                                                      value: str) -> None:
    with app.test_request_context("/", method="POST", data=_form_body(field, value),
                                  content_type="application/x-www-form-urlencoded"):
        from flask import request

        form = request.form
        for key, item in form.items(multi=True):
            assert isinstance(key, str) and isinstance(item, str)
            item.encode("utf-8")  # invalid bytes became U+FFFD, never lone surrogates


@pytest.mark.parametrize(("size", "status"), [(900_000, None), (1_100_000, 413)])
def test_form_bodies_obey_the_request_size_limit(app: Flask, size: int,
                                                 status: int | None) -> None:
    body = _form_body("comment_content", "a" * size)
    with app.test_request_context("/", method="POST", data=body,
                                  content_type="application/x-www-form-urlencoded"):
        from flask import request

        try:
            value = request.form.get("comment_content", "")
        except HTTPException as exc:
            assert exc.code == status
            return
        assert status is None or value == ""


def akismet_client(app: Flask) -> Any:
    assert any(r.rule == "/1.1/comment-check" for r in app.url_map.iter_rules())
    return app.test_client()


@pytest.fixture
def akismet(make_app: Callable[..., Flask]) -> Any:
    """A client of an app with the Akismet endpoint."""
    return akismet_client(make_app())


@settings(max_examples=80, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(PERCENT, HOSTILE)
def test_akismet_comment_check_answers_any_form(akismet: Any, raw: str, text: str) -> None:
    client = akismet
    from urllib.parse import quote

    # surrogatepass: a lone surrogate goes out as the bytes a careless client would send
    escaped = quote(text.encode("utf-8", "surrogatepass"), safe="")
    body = _form_body("comment_content", raw + escaped) + b"&user_ip=127.0.0.1"
    r = client.post("/1.1/comment-check", data=body,
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code < 500, r.data[:300]


def test_akismet_comment_check_refuses_huge_bodies(make_app: Callable[..., Flask]) -> None:
    client = akismet_client(make_app(max_request_bytes=10_000))
    r = client.post("/1.1/comment-check", data=_form_body("comment_content", "a" * 20_000),
                    content_type="application/x-www-form-urlencoded")
    # Refused: as HTTP 413/400, or in Akismet's own way (200, body "invalid", the
    # reason in X-akismet-debug-help), which Akismet clients understand.
    assert r.status_code in {400, 413} or (r.data == b"invalid"
                                           and "X-akismet-debug-help" in r.headers)


def test_vocabulary_with_nul_survives_pickling() -> None:
    """Regression: vocabularies were packed joined by NUL, so a retrained model whose
    labelled comments held a NUL lost or shifted terms and failed to load (or worse)."""
    texts = ["free\x00money now", "good article", "x\x00"]
    fitted = CommentFeatures(min_df=1).fit(texts)
    restored = pickle.loads(pickle.dumps(fitted))  # noqa: S301 - our own object, round trip
    assert restored.char_.vocabulary_ == fitted.char_.vocabulary_
    assert (restored.transform(texts) != fitted.transform(texts)).nnz == 0
