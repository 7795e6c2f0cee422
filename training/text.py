"""The comment record, text normalisation, hand-made signals and explanations.

Pure Python, no scikit-learn: the web service scores and explains comments with
these functions and a compiled model (service/registry/lean.py) without importing
scikit-learn, which alone would add about 70 MB to every worker.
:mod:`training.features` builds the scikit-learn transformer on top of them, so
serving and training read comments the same way.
"""

from __future__ import annotations

import functools
import html
import math
import re
import unicodedata
from collections.abc import Container
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from training.spamlists import LURE_WORDS, MATCHED_SIGNALS, list_signals, signal_matches

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
_LOOKALIKES = "асеіјорхуѕԁԛԝАВСЕНІЈКМОРЅТХУαοτνρκιυΑΒΕΗΙΚΜΝΟΡΤΧΥΖ"
_HOMOGLYPHS = str.maketrans(_LOOKALIKES, "aceijopxysdqwABCEHIJKMOPSTXYaotvpkiuABEHIKMNOPTXYZ")
_HAS_LOOKALIKE = re.compile(f"[{_LOOKALIKES}]")  # without one, no word needs folding
_SPACED = re.compile(r"\b(?:\w[ .\-_*]){2,}\w\b")
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


_A_TAG = re.compile(
    r"<a\s[^>]{0,500}?href\s*=\s*[\"']([^\"'>]*)[\"'][^>]{0,200}>(.*?)</a\s*>", re.I | re.S
)
_A_CLOSE = re.compile(r"</a\s*>", re.I)
_TAG = re.compile(r"</?[a-zA-Z][\w-]*(?:\s[^<>]{0,300})?/?>")


def _link_text(match: re.Match[str]) -> str:
    """``<a href="u">t</a>`` -> ``u`` (and ``t`` when it is not just the URL again)."""
    href, label = match.group(1).strip(), _TAG.sub(" ", match.group(2)).strip()
    return f" {href} " if not label or label == href else f" {href} {label} "


def strip_markup(text: str) -> str:
    """Comment HTML as a reader sees it: links keep their target, tags become
    spaces, entities (``&#39;``, ``&quot;``, ``&amp;``) become characters."""
    if "<" in text:
        # _A_TAG's lazy label scans to the next closing tag; an opening tag with
        # none after it would scan to the end, from every opening tag (quadratic
        # on "<a href='x'>" * N). Past the last closing tag no link can match.
        end = max((m.end() for m in _A_CLOSE.finditer(text)), default=0)
        if end:
            text = _A_TAG.sub(_link_text, text[:end]) + text[end:]
        text = _TAG.sub(" ", text)
    return html.unescape(text) if "&" in text else text


def reader_text(text: str) -> str:
    """The text a reader sees: markup stripped, NFKC, no zero-width characters
    (none can be in ASCII text, which skips the per-character table)."""
    text = unicodedata.normalize("NFKC", strip_markup(text))
    return text if text.isascii() else text.translate(_ZERO_WIDTH)


def normalise_text(text: str) -> str:
    """Text as the model reads it: markup stripped, NFKC (full-width letters
    become ASCII), no zero-width characters, no homoglyph tricks, spaced-out
    letters joined ("f r e e" -> "free"), lower case, one space.

    Remembered for the last 64 texts of up to 1,000 characters (under 1 MB for
    ordinary text, 5 MB at worst: NFKC can make one character 18): a check reads
    it twice, for its flood keys (service.cache.flood) and for the model's text,
    and it is a third of the model text's cost.
    """
    return _normalise_memo(text) if len(text) <= MEMO_CHARS else _normalise(text)


MEMO_CHARS = 1_000


def _normalise(text: str) -> str:
    text = reader_text(text)
    text = _SPACED.sub(_join_spaced, text)  # two spaces part spaced-out words
    # Once white space is one space, runs it hid ("0\r0\r0", "f\nr\ne\ne") are
    # joined too, before look-alikes are folded: the result is a fixed point
    # (normalising it again changes nothing).
    words = _SPACED.sub(_join_spaced, " ".join(text.split())).split()
    text = " ".join(map(_fold_homoglyphs, words) if _HAS_LOOKALIKE.search(text) else words)
    return _WS.sub(" ", text.lower()).strip()


_normalise_memo = functools.lru_cache(maxsize=64)(_normalise)


def dedup_key(text: str) -> str:
    """Key under which two texts count as the same comment (lower case, folded space)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


# --- hand-made signals -------------------------------------------------------

_TLDS = (
    "com|net|org|info|biz|ru|ly|io|co|me|tk|xyz|gl|pl|nl|in|us|de|uk|tv|be|cc|gd|at|su|ua|"
    "fr|es|it|br|cn|top|online|site|club|link|click|gg"
)
URL_RE = re.compile(
    r"(?:(?:https?|ftp)://|www\.)[^\s<>\"']+"
    # Bounded label length and count: "a.a.a.a..." must not backtrack quadratically.
    rf"|\b(?:[a-z0-9-]{{1,63}}\.){{1,8}}(?:{_TLDS})\b(?:\s?/\s?[^\s<>\"']*)?",
    re.IGNORECASE,
)
# Every URL_RE match contains one of these; most comments contain none, and this
# finds that out in a fraction of URL_RE's time.
_MAYBE_URL = re.compile(rf"://|www\.|\.(?:{_TLDS})\b", re.IGNORECASE)
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
        "v.gd",
        "t.ly",
        "shorte.st",
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
# Not inside a Latin word, an id or a decimal ("abc12345678", "v1.2.3.4.5"); glued to
# a Chinese, Japanese or Arabic word it is a phone number as written there
# ("咨询热线400-888-9999"), which a \w look-behind took for a word character.
_PHONE = re.compile(r"(?<![0-9A-Za-z_.])\+?\d[\d\s().-]{7,}\d(?![0-9A-Za-z_.])")
# The e-mail signal is what ``\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b`` finds, worked
# out around each "@" (see has_email): that pattern retried its local part from
# every character of a long "a.a.a..." run, quadratic in the run's length.
_EMAIL_DOMAIN = re.compile(r"[\w.-]*+")
_WORD_CHAR = re.compile(r"\w")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")  # an address, not a phone number
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_DIGIT = re.compile(r"\d")
_REPEAT = re.compile(r"(.)\1{3,}")
_HTML = re.compile(r"<\s*(?:a|script|img|iframe|div|span|p|b|i)\b|</\s*\w+\s*>", re.IGNORECASE)
_HIDDEN = re.compile(r"\w[\u200b\u200c\u200d\u2060\u00ad\u180e\ufeff]+\w")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_CYRILLIC_GREEK = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")

# Placeholder tokens the model reads instead of link paths and digits: a link is
# "xurlx" plus its host as one token ("xurl_bit_ly"), a number is "xnumx". Random
# video ids and view counts then stop being thousands of one-off features.
URL_TOKEN = "xurlx"  # noqa: S105 - a token, not a password
HOST_PREFIX = "xurl_"
NUMBER_TOKEN = "xnumx"  # noqa: S105 - a placeholder word, not a password


def url_host(raw: str) -> str:
    """The host of a link as written in text, lower case, without ``www.`` or port."""
    host = re.sub(r"^(?:(?:https?|ftp)://)?(?:www\.)?", "", raw.lower().replace(" ", ""))
    return host.split("/")[0].split("?")[0].split("#")[0].split(":")[0].strip(".")


def url_domains(text: str) -> list[str]:
    """Host names of the links in ``text``, lower case, without ``www.``."""
    if _MAYBE_URL.search(text) is None:
        return []
    return [h for h in (url_host(raw) for raw in URL_RE.findall(text)) if h]


def model_text(text: str) -> str:
    """What the text features read: :func:`normalise_text`, then links and numbers
    replaced by placeholder tokens (see ``URL_TOKEN``)."""
    text = normalise_text(text)

    def link(match: re.Match[str]) -> str:
        host = url_host(match.group(0))
        token = HOST_PREFIX + re.sub(r"\W", "_", host) if host else ""
        return f" {URL_TOKEN} {token} "

    if _MAYBE_URL.search(text) is not None:
        text = URL_RE.sub(link, text)
    text = _NUMBER.sub(f" {NUMBER_TOKEN} ", text)
    return _WS.sub(" ", text).strip()


# How much of a comment the text features can read. A comment most of whose letters
# are in words the model never met (another language or script) is scored by its
# signals alone (training.features.BackoffLogistic) and never discarded
# (service.scoring.verdicts): its text blocks would say nothing but their intercept.
# Letters, not words: Chinese or Japanese text has no spaces, and a sentence of
# them is one "word". Links and numbers are the signals' business and do not count.
FAMILIAR_SHARE = 0.6
FAMILIAR_MIN_LETTERS = 8
# The backoff reads a comment when under a fifth of the letter pairs inside its
# words are pairs the character block met (:func:`unreadable`). Pairs, not words:
# slang and typos ("subscribe me plzzzzzzz") are unknown words the character block
# reads well, and a Chinese site's text is all unknown "words" (no spaces) even
# after the model learned its labels, while its pairs are known. On the YouTube
# videos held out one at a time no comment is under 0.5; on Chinese SMS, trained
# on 2,000 of its own texts, 49 of 2,000 are under 0.2, and with the shipped data
# only, 8,605 of 9,998 (docs/model.md).
BACKOFF_SHARE = 0.2
BACKOFF_MIN_PAIRS = 6
BACKOFF_PREFIX = "backoff:"  # feature names of the backoff block: a signal's column
BACKOFF_GATE = "backoff:unfamiliar"  # and its last, 1 for an unfamiliar comment
WORD_PATTERN = r"(?u)\b\w+\b"  # the word block's token pattern
_WORD = re.compile(WORD_PATTERN)


def text_words(text: str) -> list[str]:
    """The words of a :func:`model_text` as the word block cuts them (:data:`WORD_PATTERN`)."""
    return _WORD.findall(text)


def familiarity(text: str, known: Container[str]) -> float | None:
    """Share of the letters of ``text`` (a :func:`model_text`) that are in words of
    ``known``; None (cannot tell) under :data:`FAMILIAR_MIN_LETTERS` letters."""
    return known_share(text_words(text), known)


_PLACEHOLDERS = frozenset({URL_TOKEN, NUMBER_TOKEN})


def known_share(words: list[str], known: Container[str]) -> float | None:
    """:func:`familiarity` of a text already cut into ``words`` by its pattern."""
    total = sum(map(len, words))
    found = sum(map(len, filter(known.__contains__, words)))
    if not _PLACEHOLDERS.isdisjoint(words):  # a link's host token comes after its xurlx
        for word in words:
            if word in _PLACEHOLDERS or word.startswith(HOST_PREFIX):
                total -= len(word)
                if word in known:
                    found -= len(word)
    return found / total if total >= FAMILIAR_MIN_LETTERS else None


def unreadable(words: list[str], pairs: Container[str], below: float = BACKOFF_SHARE) -> bool:
    """Whether under ``below`` of the letter pairs inside ``words`` (a model text cut
    by :data:`WORD_PATTERN`; links and numbers left out) are in ``pairs`` (the
    character block's vocabulary); never under :data:`BACKOFF_MIN_PAIRS` pairs.
    Stops at the first pairs that show it readable, as most comments are."""
    if not _PLACEHOLDERS.isdisjoint(words):
        words = [w for w in words if w not in _PLACEHOLDERS and not w.startswith(HOST_PREFIX)]
    total = sum(map(len, words)) - len(words)  # pairs inside the words
    if total < BACKOFF_MIN_PAIRS:
        return False
    need, found = below * total, 0
    for word in words:
        for i in range(len(word) - 1):
            if word[i : i + 2] in pairs:
                found += 1
                if found >= need:
                    return False
    return True


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
    Signal("email_in_text", "an e-mail address in the text"),
    Signal("honeypot", "the hidden honeypot field was filled in (bots do that)"),
    Signal("digits", "many digits"),
    Signal("phone", "a phone number"),
    Signal("caps", "much of the text in CAPITALS"),
    Signal("repeat", "characters repeated many times"),
    Signal("exclaim", "many exclamation marks"),
    Signal("short", "a very short text"),
    Signal("non_latin", "mostly non-Latin script"),
    Signal("mixed_script", "words mixing Latin and Cyrillic/Greek letters (a filter dodge)"),
    Signal("obfuscated", "hidden characters or spaced-out letters (a filter dodge)"),
    Signal("html", "HTML markup in the text"),
    Signal("fast_reply", "posted within a minute of the article"),
    Signal("flood", "the same text was posted many times recently"),
    # Public spam lists and lure patterns (training/spamlists.py): counts, not rules.
    Signal("wp_list", "words on the WordPress comment blocklist"),
    Signal("se_list", "words on Stack Exchange's spam keyword lists"),
    Signal("spam_host", "a link to a known spam site"),
    Signal("shortener_list", "a link through a URL shortener"),
    Signal("contact_lure", "asks to be contacted elsewhere (messenger, phone, DM)"),
    Signal("money_lure", "money, prize, crypto or investment lure"),
    Signal("action_lure", "a call to click, subscribe, visit or buy"),
    Signal("adult_lure", "adult, dating or pill lure"),
    Signal("script_mix", "letters of several scripts"),
    Signal("word_repeat", "the same words repeated"),
)
SIGNAL_INDEX = {s.name: i for i, s in enumerate(SIGNALS)}
# The signals of models fitted before the list and lure signals existed: a model
# records the names it was fitted with, and one that records none used these.
LEGACY_SIGNALS: tuple[str, ...] = tuple(s.name for s in SIGNALS[: SIGNAL_INDEX["flood"] + 1])


def _local_part(text: str, at: int) -> bool:
    r"""Whether the run of ``[\w.+-]`` ending before ``at`` holds a word character."""
    i = at - 1
    while i >= 0:
        ch = text[i]
        if ch.isalnum() or ch == "_":
            return True
        if ch not in ".+-":
            return False
        i -= 1
    return False


def has_email(text: str) -> bool:
    r"""Whether ``\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b`` matches ``text``, in linear time.

    Each "@" is looked at once: the run of ``[\w.+-]`` before it and the run of
    ``[\w.-]`` after it belong to no other "@", so the whole pass reads each
    character a bounded number of times. Local part: the run before "@" holds a
    word character (only then does a word boundary fall inside it). Domain: its
    first label is not empty, and a later label, reached without an empty one,
    holds a word character (where the closing ``\b`` can fall).
    """
    at = text.find("@")
    while at != -1:
        if _local_part(text, at):
            labels = _EMAIL_DOMAIN.match(text, at + 1).group(0).split(".")  # type: ignore[union-attr]
            if labels[0]:
                for label in labels[1:]:
                    if not label:
                        break
                    if _WORD_CHAR.search(label):
                        return True
        at = text.find("@", at + 1)
    return False


def _mixed_script(text: str) -> bool:
    return _CYRILLIC_GREEK.search(text) is not None and any(
        _LATIN.search(w) is not None and _CYRILLIC_GREEK.search(w) is not None
        for w in text.split()
    )


def signal_vector(comment: Comment, lure_words: int = LURE_WORDS) -> list[float]:
    """Hand-made features of one comment, each in [0, 1]; ``lure_words`` as the
    model was fitted (:data:`training.spamlists.LURE_WORDS`, 0 before it).

    Length only counts as "very short": a continuous length (and, measured,
    indicators for 60-300 and over 300 characters) got large spam weights from
    the YouTube data, where promotions are long and fan comments short, and
    pushed every long, honest news comment towards spam (+1.3 and +2.6 log-odds).
    The indicators helped on the YouTube folds (94.80 % vs 94.35 % accuracy);
    they are left out on purpose.
    """
    raw = comment.content
    text = reader_text(raw)
    domains = url_domains(text)
    # The digits of link paths are not the text's digits.
    plain = URL_RE.sub(" ", text) if _MAYBE_URL.search(text) is not None else text
    n = max(len(plain), 1)
    letters = list(filter(str.isalpha, text))
    upper = sum(map(str.isupper, letters))
    # An ASCII letter is a Latin one.
    non_latin = 0 if text.isascii() else sum(1 for c in letters if not ("a" <= c.lower() <= "z"))
    email_domain = comment.author_email.rsplit("@", 1)[-1].lower() if comment.author_email else ""
    published = _parse_time(comment.article_published_at)
    created = _parse_time(comment.created_at)
    fast = bool(published and created and 0 <= (created - published).total_seconds() < 60)
    # A Chinese or Japanese character says about as much as a short word.
    length = len(text.strip()) + (0 if text.isascii() else 3 * len(_CJK.findall(text)))
    # A zero-width character between letters hides a word; a trailing byte-order
    # mark is only how some platforms export text (every YouTube comment has one).
    hidden = (not raw.isascii() and _HIDDEN.search(raw) is not None) or (
        _SPACED.search(text) is not None
    )
    values = {
        "has_link": float(bool(domains)),
        "link_count": float(len(domains) >= 2),
        "shortener": float(any(d in SHORTENERS for d in domains)),
        "author_url": float(bool(comment.author_url.strip())),
        "free_mail": float(email_domain in FREE_MAIL),
        "email_in_text": float(has_email(text)),
        "honeypot": float(bool(comment.honeypot.strip())),
        "digits": min(len(_DIGIT.findall(plain)) / n * 5.0, 1.0),
        "phone": float(any(_IPV4.fullmatch(m.group()) is None for m in _PHONE.finditer(text))),
        "caps": (upper / len(letters)) if len(letters) >= 8 else 0.0,
        "repeat": float(bool(_REPEAT.search(text))),
        "exclaim": min(text.count("!") / 5.0, 1.0),
        "short": float(length < 12),
        "non_latin": (non_latin / len(letters)) if letters else 0.0,
        "mixed_script": float(_mixed_script(text)),
        "obfuscated": float(hidden),
        "html": float(bool(_HTML.search(raw))),
        "fast_reply": float(fast),
        "flood": min(math.log1p(max(comment.flood_count - 1, 0)) / math.log1p(50), 1.0),
        **list_signals(text, domains, lure_words),
    }
    return [values[s.name] for s in SIGNALS]


def _as_comment(item: Comment | str | dict[str, Any]) -> Comment:
    if isinstance(item, Comment):
        return item
    if isinstance(item, str):
        return Comment(content=item)
    known = {k: v for k, v in item.items() if k in COMMENT_FIELDS or k == "flood_count"}
    return Comment(**known)


def _readable(token: str, hosts: dict[str, str] | None = None) -> str:
    if token == URL_TOKEN:
        return "<link>"
    if token == NUMBER_TOKEN:
        return "<number>"
    if token.startswith(HOST_PREFIX):
        if hosts:
            if token in hosts:
                return hosts[token]
            # A host with digits reaches the model cut at its first one
            # ("casino777.example" is "xurl_casino", then a number): name the whole
            # host the comment wrote, not "casino".
            for key, written in hosts.items():
                if key.startswith(token):
                    return written
        return token.removeprefix(HOST_PREFIX).replace("_", ".")
    return token


# Function words a moderator learns nothing from ("the word 'the'"): they may carry
# weight in the model (and keep it: the probability is unchanged), but they are
# never shown as a reason, alone or as a phrase made only of them.
_STOP_WORDS = """a about above after again against all am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did didn't
    do does doesn't doing don't down during each few for from further had hadn't has hasn't
    have haven't having he he'd he'll he's her here here's hers herself him himself his how
    how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most
    mustn't my myself no nor not of off on once only or other ought our ours ourselves out
    over own same shan't she she'd she'll she's should shouldn't so some such than that
    that's the their theirs them themselves then there there's these they they'd they'll
    they're they've this those through to too under until up very was wasn't we we'd we'll
    we're we've were weren't what what's when when's where where's which while who who's
    whom why why's will with won't would wouldn't you you'd you'll you're you've your yours
    yourself yourselves s t just also"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


@functools.lru_cache(maxsize=4_096)
def is_stop_phrase(name: str) -> bool:
    """Whether the ``word:`` feature ``name`` is made only of stop words (memoised for
    the names serving asks about most; bounded, so unique traffic keeps memory flat)."""
    kind, _, value = name.partition(":")
    return kind == "word" and bool(value) and all(w in STOP_WORDS for w in value.split(" "))


@functools.lru_cache(maxsize=256)
def written_hosts(content: str) -> dict[str, str]:
    """Host token (``xurl_cash_now_biz``) -> the host as the comment wrote it
    (``www.cash-now.biz``), so a reason names the domain a reader saw."""
    text = normalise_text(content)
    if _MAYBE_URL.search(text) is None:
        return {}
    out: dict[str, str] = {}
    for raw in URL_RE.findall(text):
        host = url_host(raw)
        if not host:
            continue
        written = re.sub(r"^(?:(?:https?|ftp)://)?", "", raw.lower().replace(" ", ""))
        written = written.split("/")[0].split("?")[0].split("#")[0].split(":")[0].strip(".")
        out.setdefault(HOST_PREFIX + re.sub(r"\W", "_", host), written)
    return out


_RUN = re.compile(r"(.)\1{3,}")


def _plain_text(content: str) -> str:
    text = reader_text(content)
    return URL_RE.sub(" ", text) if _MAYBE_URL.search(text) is not None else text


MATCHES_SHOWN = 3  # of a list or lure signal's words, the first this many are named


def describe_signal(name: str, comment: Comment) -> str:
    """A signal in words true of this comment: a count is "many" only when it is
    (one "!" is "an exclamation mark", the digits of "2026" are "a number")."""
    signal = SIGNALS[SIGNAL_INDEX[name]]
    content = comment.content
    if name == "exclaim":
        n = content.count("!") if "!" in content else 0
        if n >= 5:
            return signal.description
        return "an exclamation mark" if n <= 1 else f"{n} exclamation marks"
    if name == "digits":
        n = len(_DIGIT.findall(_plain_text(content)))
        return signal.description if n >= 10 else "a number"
    if name == "link_count":
        return f"{len(url_domains(content))} links"
    if name == "repeat":
        runs = [len(m.group(0)) for m in _RUN.finditer(content)]
        longest = max(runs, default=4)
        return f"a character repeated {longest} times in a row"
    if name == "caps":
        letters = list(filter(str.isalpha, content))
        share = sum(map(str.isupper, letters)) / max(len(letters), 1)
        return signal.description if share >= 0.5 else f"{share:.0%} of the letters in capitals"
    if name == "non_latin":
        letters = list(filter(str.isalpha, content))
        share = sum(1 for c in letters if not ("a" <= c.lower() <= "z")) / max(len(letters), 1)
        return signal.description if share >= 0.5 else f"{share:.0%} of the letters non-Latin"
    if name == "flood" and comment.flood_count > 1:
        return f"the same text was posted {comment.flood_count} times recently"
    if name in MATCHED_SIGNALS:  # which words or hosts: a moderator can check them
        text = reader_text(content)
        found = signal_matches(name, text, url_domains(text))
        if found:
            shown = ", ".join(f"'{w}'" for w in found[:MATCHES_SHOWN])
            more = f" and {len(found) - MATCHES_SHOWN} more" if len(found) > MATCHES_SHOWN else ""
            return f"{signal.description}: {shown}{more}"
    return signal.description


def describe_feature(name: str, comment: Comment | None = None) -> tuple[str, str]:
    """(kind, words a moderator understands) for a feature name of :class:`CommentFeatures`.

    With the ``comment`` the words are true of it: hosts as written, counts as
    they are. Without it, the generic words of the feature.
    """
    kind, _, value = name.partition(":")
    if kind == "word":
        if value == URL_TOKEN:
            return "feature", "contains a link"  # merges with the has_link signal
        if value == NUMBER_TOKEN:
            return "token", "a number"  # merges with a few digits, see describe_signal
        hosts = written_hosts(comment.content) if comment and HOST_PREFIX in value else None
        if " " not in value:  # one token, and no placeholder but a link's host
            if value.startswith(HOST_PREFIX):
                return "feature", f"a link to {_readable(value, hosts)}"
            # "$" of "$20" and "p" of "6p" are the model's words (numbers are cut
            # out), not a reader's: name them for what they are.
            if not any(map(str.isalnum, value)):
                return "token", f"the sign '{value}'"
            if len(value) == 1:
                return "token", f"the letter '{value}'"
            return "token", f"the word '{value}'"
        words = " ".join(_readable(w, hosts) for w in value.split(" "))
        return "token", f"the phrase '{words}'"
    if kind == "char":
        return "token", f"the letters '{value.strip()}'"
    if kind == "signal":
        if comment is not None:
            return "feature", describe_signal(value, comment)
        return "feature", SIGNALS[SIGNAL_INDEX[value]].description
    return kind, value


MIN_REASON = 0.05  # a push, in log-odds, smaller than this is no reason
# The signals whose words a word feature can have too: has_link "contains a link"
# like the link token, digits "a number" like the number token. Every other
# signal's words are its own (tests/test_features.py), so one that pushes less
# than a reason merges with nothing and cannot be shown: top_reasons does not
# work its words out from the comment.
SHARED_WORDS = frozenset({"has_link", "digits"})
_BY_COMMENT = ("", "")  # _plain_reason: the words depend on the comment


@functools.lru_cache(maxsize=4_096)
def _plain_reason(name: str) -> tuple[str, str] | None:
    """:func:`describe_feature` of a name whose words do not depend on the comment;
    None for a stop phrase (no reason), ``_BY_COMMENT`` for a signal or a link's host."""
    if is_stop_phrase(name):
        return None
    if name.startswith("signal:") or HOST_PREFIX in name:
        return _BY_COMMENT
    return describe_feature(name)


def utf16_offsets(text: str) -> list[int]:
    """``out[i]`` is the UTF-16 code-unit offset of Python index ``i`` (len+1 entries)."""
    out = [0]
    for ch in text:
        out.append(out[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return out
def char_wb_ngrams(word: str, ngram_range: tuple[int, int]) -> list[str]:
    """The ``char_wb`` n-grams scikit-learn's analyser makes from one word.

    scikit-learn's own while loop: on CPython 3.11 it measured faster than slices
    in a comprehension (24 vs 30-34 us per 12 words), so serving saves by calling
    it less (see service/registry/lean.py), not by rewriting it.
    """
    padded = f" {word} "
    lo, hi = ngram_range
    out = []
    for n in range(lo, hi + 1):
        offset = 0
        out.append(padded[offset : offset + n])
        while offset + n < len(padded):
            offset += 1
            out.append(padded[offset : offset + n])
        if offset == 0:  # a word shorter than n counts once
            break
    return out


_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def word_key(word: str) -> str:
    """The ``word:`` feature a word of the text folds its char n-grams into."""
    return "word:" + (_EDGE_PUNCT.sub("", word) or word)


def merge_contributions(
    text: str, contributions: dict[str, float], char_ngrams: tuple[int, int] | None
) -> dict[str, float]:
    """Fold character n-gram contributions into the words they came from.

    ``contributions`` maps feature names (``word:...``, ``char:...``, ``signal:...``)
    to coefficient x value for one comment whose model text is ``text``. A char
    n-gram's contribution is shared equally by its occurrences and each share is
    added to the word (``word:<w>``) it occurred in, so a moderator sees words and
    phrases, never letter fragments.
    """
    merged = {k: v for k, v in contributions.items() if not k.startswith("char:")}
    if char_ngrams is None or len(merged) == len(contributions):
        return merged
    per_word: list[tuple[str, list[str]]] = [
        (w, char_wb_ngrams(w, char_ngrams)) for w in text.split()
    ]
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
            key = word_key(word)
            merged[key] = merged.get(key, 0.0) + share
    return merged


def top_reasons(
    contributions: dict[str, float], k: int, comment: Comment | None = None
) -> list[tuple[str, str, float]]:
    """The ``k`` biggest contributions as (kind, description, value), largest first.

    Tiny pushes (under 0.05 in log-odds) are no reason; two features with the
    same description (the word and its link token) are merged; stop words are
    never a reason. With ``comment``, descriptions are true of it (see
    :func:`describe_feature`).
    """
    # Every feature is described, even the smallest: features sharing a
    # description are summed, and only the sum says whether it is a reason.
    merged: dict[str, tuple[str, float]] = {}
    for name, value in contributions.items():
        # Most names read the same whatever the comment: described once per process.
        described = _plain_reason(name)
        if described is None:
            continue
        if described is _BY_COMMENT:
            if (abs(value) < MIN_REASON and name.startswith("signal:")
                    and name[7:] not in SHARED_WORDS):
                continue  # words of its own: it would be dropped below
            described = describe_feature(name, comment)
        kind, words = described
        old = merged.get(words)
        merged[words] = (kind, value + (old[1] if old else 0.0))
    # Ranked by size, so dropping the tiny ones first leaves the same top k.
    shown = [(words, kind, v) for words, (kind, v) in merged.items() if abs(v) >= MIN_REASON]
    shown.sort(key=lambda item: (-abs(item[2]), item[0]))
    return [(kind, words, v) for words, kind, v in shown[:k]]
