"""The comment record, text normalisation and the feature transformer.

This is the one module that both training and the web service import: the
transformer is pickled inside every model's Pipeline, so serving and training
cannot drift. Keep it free of Flask and of training-only dependencies.
"""

from __future__ import annotations

import copy
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer

# --- the comment record ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comment:
    """One comment as the model and rules see it (the JSON API's field names)."""

    content: str
    author: str = ""
    author_email: str = ""
    author_url: str = ""
    user_ip: str = ""
    user_agent: str = ""
    referrer: str = ""
    permalink: str = ""
    type: str = ""
    lang: str = ""
    created_at: str = ""
    # Signals a live comment carries beyond the JSON API's core fields.
    article_published_at: str = ""
    honeypot: str = ""
    user_role: str = ""
    flood_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


COMMENT_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Comment) if f.name not in {"extra", "flood_count"}
)
# The fields a verdict depends on: the cache key is built from exactly these.
MODEL_FIELDS: tuple[str, ...] = (
    "content",
    "author",
    "author_email",
    "author_url",
    "type",
    "lang",
    "created_at",
    "article_published_at",
    "honeypot",
    "user_role",
)

# --- normalisation -----------------------------------------------------------

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)
# Cyrillic and Greek letters that spammers put in Latin words to dodge filters.
_HOMOGLYPHS = str.maketrans(
    "асеіјорхуѕԁԛԝАВСЕНІЈКМОРЅТХУαοτνρκιΑΒΕΗΙΚΜΝΟΡΤΧΥΖ",
    "aceijopxysdqwABCEHIJKMOPSTXYaotvpkiABEHIKMNOPTXYZ",
)
_SPACED = re.compile(r"\b(?:\w[ .\-_*]){3,}\w\b")
_WS = re.compile(r"\s+")
_LATIN = re.compile(r"[A-Za-z]")


def _fold_homoglyphs(word: str) -> str:
    """Map look-alike letters only inside words that are mostly Latin.

    A Russian comment keeps its Cyrillic; "frее" with Cyrillic e's becomes "free".
    """
    latin = len(_LATIN.findall(word))
    if latin == 0 or latin * 2 < len(word):
        return word
    return word.translate(_HOMOGLYPHS)


def _join_spaced(match: re.Match[str]) -> str:
    return re.sub(r"[ .\-_*]", "", match.group(0))


def normalise_text(text: str) -> str:
    """Text as the model reads it: NFKC, no zero-width characters, no homoglyph
    tricks, spaced-out letters joined ("f r e e" -> "free"), lower case, one space.
    """
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    text = _SPACED.sub(_join_spaced, text)
    text = " ".join(_fold_homoglyphs(w) for w in text.split())
    return _WS.sub(" ", text.lower()).strip()


def dedup_key(text: str) -> str:
    """Key under which two texts count as the same comment (lower case, folded space)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


# --- hand-made signals -------------------------------------------------------

URL_RE = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']+|\b[a-z0-9-]{2,}\.(?:com|net|org|info|biz|ru|ly|io|co|me|tk|xyz|gl)"
    r"(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
SHORTENERS = frozenset(
    [
        "bit.ly",
        "goo.gl",
        "tinyurl.com",
        "t.co",
        "ow.ly",
        "is.gd",
        "buff.ly",
        "adf.ly",
        "cutt.ly",
        "rb.gy",
        "shorturl.at",
        "tiny.cc",
        "bitly.com",
        "rebrand.ly",
        "youtu.be",
    ]
)
FREE_MAIL = frozenset(
    [
        "gmail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "mail.ru",
        "yandex.ru",
        "aol.com",
        "gmx.com",
        "protonmail.com",
        "icloud.com",
    ]
)
_PHONE = re.compile(r"(?:\+?\d[\d\s().-]{7,}\d)")
_DIGIT = re.compile(r"\d")
_REPEAT = re.compile(r"(.)\1{3,}")
_HTML = re.compile(r"<\s*(?:a|script|img|iframe|div|span|p|b|i)\b|</\s*\w+\s*>", re.IGNORECASE)


def url_domains(text: str) -> list[str]:
    """Host names of the links in ``text``, lower case, without ``www.``."""
    domains = []
    for raw in URL_RE.findall(text):
        host = re.sub(r"^(?:https?://)?(?:www\.)?", "", raw.lower()).split("/")[0].split("?")[0]
        if host:
            domains.append(host.split(":")[0])
    return domains


def _parse_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


@dataclass(frozen=True)
class Signal:
    """A hand-made feature: its name, how a moderator reads it, how to compute it."""

    name: str
    description: str


SIGNALS: tuple[Signal, ...] = (
    Signal("has_link", "contains a link"),
    Signal("link_count", "several links"),
    Signal("shortener", "a link to a URL shortener"),
    Signal("author_url", "the author gave a website"),
    Signal("free_mail", "the author's e-mail is at a free mail provider"),
    Signal("honeypot", "the hidden honeypot field was filled in (bots do that)"),
    Signal("digits", "many digits"),
    Signal("phone", "a phone number"),
    Signal("caps", "much of the text in CAPITALS"),
    Signal("repeat", "characters repeated many times"),
    Signal("exclaim", "many exclamation marks"),
    Signal("length", "a long text"),
    Signal("short", "a very short text"),
    Signal("non_latin", "mostly non-Latin script"),
    Signal("html", "HTML markup in the text"),
    Signal("fast_reply", "posted within a minute of the article"),
    Signal("flood", "the same text was posted many times recently"),
)
SIGNAL_INDEX = {s.name: i for i, s in enumerate(SIGNALS)}


def signal_vector(comment: Comment) -> list[float]:
    """Hand-made features of one comment, each scaled to about [0, 1]."""
    text = comment.content
    n = max(len(text), 1)
    domains = url_domains(text)
    letters = [c for c in text if c.isalpha()]
    upper = sum(1 for c in letters if c.isupper())
    non_latin = sum(1 for c in letters if not ("a" <= c.lower() <= "z"))
    email_domain = comment.author_email.rsplit("@", 1)[-1].lower() if comment.author_email else ""
    published = _parse_time(comment.article_published_at)
    created = _parse_time(comment.created_at)
    fast = bool(published and created and 0 <= (created - published).total_seconds() < 60)
    values = {
        "has_link": float(bool(domains)),
        "link_count": min(len(domains), 5) / 5.0,
        "shortener": float(any(d in SHORTENERS for d in domains)),
        "author_url": float(bool(comment.author_url.strip())),
        "free_mail": float(email_domain in FREE_MAIL),
        "honeypot": float(bool(comment.honeypot.strip())),
        "digits": min(len(_DIGIT.findall(text)) / n * 5.0, 1.0),
        "phone": float(bool(_PHONE.search(text))),
        "caps": (upper / len(letters)) if len(letters) >= 8 else 0.0,
        "repeat": float(bool(_REPEAT.search(text))),
        "exclaim": min(text.count("!") / 5.0, 1.0),
        "length": min(math.log1p(len(text)) / math.log1p(2000), 1.0),
        "short": float(len(text.strip()) < 12),
        "non_latin": (non_latin / len(letters)) if letters else 0.0,
        "html": float(bool(_HTML.search(text))),
        "fast_reply": float(fast),
        "flood": min(math.log1p(max(comment.flood_count - 1, 0)) / math.log1p(50), 1.0),
    }
    return [values[s.name] for s in SIGNALS]


# --- the transformer ---------------------------------------------------------


def _as_comment(item: Comment | str | dict[str, Any]) -> Comment:
    if isinstance(item, Comment):
        return item
    if isinstance(item, str):
        return Comment(content=item)
    known = {k: v for k, v in item.items() if k in COMMENT_FIELDS or k == "flood_count"}
    return Comment(**known)


class CommentFeatures(TransformerMixin, BaseEstimator):
    """Word n-grams, character n-grams and hand-made signals of a comment.

    Accepts :class:`Comment` objects, dicts with the same keys, or plain strings.
    The two TF-IDF blocks and the signal block are stacked side by side; the
    signals are weighted by ``signal_weight`` so that they can compete with the
    L2-normalised text blocks.
    """

    def __init__(
        self,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        min_df: int = 1,
        max_features: int | None = 200_000,
        use_chars: bool = True,
        use_signals: bool = True,
        signal_weight: float = 1.0,
    ) -> None:
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features
        self.use_chars = use_chars
        self.use_signals = use_signals
        self.signal_weight = signal_weight

    def fit(self, X: Iterable[Any], y: Any = None) -> CommentFeatures:
        texts = [normalise_text(c.content) for c in map(_as_comment, X)]
        self.word_ = TfidfVectorizer(
            ngram_range=self.word_ngrams,
            min_df=self.min_df,
            max_features=self.max_features,
            sublinear_tf=True,
            token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - a regex, not a password
            dtype=np.float64,
        ).fit(texts)
        self.char_: TfidfVectorizer | None = None
        if self.use_chars:
            self.char_ = TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=self.char_ngrams,
                min_df=self.min_df,
                max_features=self.max_features,
                sublinear_tf=True,
                dtype=np.float64,
            ).fit(texts)
        self.n_word_ = len(self.word_.vocabulary_)
        self.n_char_ = len(self.char_.vocabulary_) if self.char_ is not None else 0
        return self

    def transform(self, X: Iterable[Any]) -> sp.csr_matrix:
        comments = [_as_comment(c) for c in X]
        texts = [normalise_text(c.content) for c in comments]
        blocks = [self.word_.transform(texts)]
        if self.char_ is not None:
            blocks.append(self.char_.transform(texts))
        if self.use_signals:
            dense = np.array([signal_vector(c) for c in comments], dtype=np.float64)
            blocks.append(sp.csr_matrix(dense * self.signal_weight))
        return sp.hstack(blocks, format="csr")

    # joblib unpickles with the pure-Python Unpickler: a vocabulary of 100k terms
    # as a dict takes seconds to load, as one string and one array milliseconds.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        for name in ("word_", "char_"):
            vec = state.get(name)
            if vec is not None and hasattr(vec, "vocabulary_"):
                terms = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
                if any("\x00" in term for term in terms):
                    continue  # a NUL in a term (hostile comment text): keep the dict
                vec = copy.copy(vec)
                del vec.__dict__["vocabulary_"]
                state[f"{name}terms"] = "\x00".join(terms)
                state[name] = vec
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        for name in ("word_", "char_"):
            packed = state.pop(f"{name}terms", None)
            if packed is not None and state.get(name) is not None:
                terms = packed.split("\x00") if packed else []
                state[name].vocabulary_ = dict(zip(terms, range(len(terms)), strict=True))
        super().__setstate__(state)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        names = [f"word:{t}" for t in self.word_.get_feature_names_out()]
        if self.char_ is not None:
            names += [f"char:{t}" for t in self.char_.get_feature_names_out()]
        if self.use_signals:
            names += [f"signal:{s.name}" for s in SIGNALS]
        return np.asarray(names, dtype=object)


def describe_feature(name: str) -> tuple[str, str]:
    """(kind, words a moderator understands) for a feature name of :class:`CommentFeatures`."""
    kind, _, value = name.partition(":")
    if kind == "word":
        return "token", (f"the phrase '{value}'" if " " in value else f"the word '{value}'")
    if kind == "char":
        return "token", f"the letters '{value.strip()}'"
    if kind == "signal":
        signal = SIGNALS[SIGNAL_INDEX[value]]
        return "feature", signal.description
    return kind, value
