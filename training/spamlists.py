"""Public spam lists and multilingual lure patterns as model signals.

Pure Python, no scikit-learn: :func:`training.text.signal_vector` calls
:func:`list_signals`, so the web service (and its compiled scorer) computes the
same values as training.

The lists under ``training/data/blocklists/`` are shipped as published, each
with its licence and PROVENANCE.md (see ATTRIBUTION.md there). They never
decide a verdict by themselves: each gives its *hits, as a share of a long
text* (:data:`LURE_WORDS`), a signal whose weight the model learns, because
substring lists over-flag ordinary comments (``python -m training.listcheck``
measures that on the shipped ham).

How a list is matched, in linear time:

- **phrases** (the WordPress comment blocklist, SmokeDetector's keywords): an
  entry and the comment are both cut into word tokens (letters and digits;
  everything else separates), and an entry hits when its tokens occur as a run
  of whole tokens in the comment. "ipod-repair" matches "ipod repair" and
  "iPod-Repair", never "tripod-repairs". Each comment costs one set lookup
  per run of up to :data:`MAX_PHRASE_TOKENS` tokens. Entries shorter than
  :data:`MIN_PHRASE_CHARS` characters are dropped (the list's own author warns
  that they over-flag), and so are SmokeDetector regexes that are not plain
  words once their optional separators are expanded: a regex engine would
  backtrack on some of them and cost thousands of patterns per comment.
- **hosts** (SEO/referrer-spam hosts, SmokeDetector's websites, URL
  shorteners): the host of each link, or any domain it is a subdomain of.

The lure patterns are alternations of literal words (no nested quantifiers),
written from general knowledge of comment, SMS and chat spam in the languages
commentmod's users write in; they were not mined from any evaluation corpus.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

LISTS_DIR = Path(__file__).parent / "data" / "blocklists"
MIN_PHRASE_CHARS = 5
MIN_WORD_CHARS = 6  # a one-word entry needs this many letters ("that", "good" over-flag)
MAX_PHRASE_TOKENS = 4
# Entries that fired on the shipped ham (discussion comments, YouTube and SMS ham),
# written by ``python -m training.listcheck --write-exclusions``: measured false positives.
EXCLUSIONS = LISTS_DIR / "ham_exclusions.txt"

_TOKEN = re.compile(r"[^\W_]+")
# SmokeDetector's optional separators ("baba\W?ji", "long\W?path") and escaped dots.
_SMOKE_SEPARATOR = re.compile(r"\\W\?|\\W\*|\\s\?|\\s\*|\\W|\\s|-\?|\\-\?|\[ -\]\?")
_REGEX_META = re.compile(r"[\\()\[\]?*+{}|^$]")


_URL_WORDS = frozenset(["http", "https", "www", "com", "net", "org", "html", "php", "index"])


def tokens(text: str) -> list[str]:
    """Lower-case word tokens: letters and digits, everything else separates."""
    return _TOKEN.findall(text.lower())


def _phrase_key(entry: str) -> str | None:
    entry = entry.strip()
    if len(entry) < MIN_PHRASE_CHARS:
        return None
    words = tokens(entry)
    if not words or len(words) > MAX_PHRASE_TOKENS:
        return None
    if set(words) <= _URL_WORDS:
        return None  # "https://www." is no spam phrase
    key = " ".join(words)
    if len(words) == 1 and len(key) < MIN_WORD_CHARS:
        return None
    return key if len(key.replace(" ", "")) >= MIN_PHRASE_CHARS else None


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh if line.strip() and not line.startswith("#")]


def _smoke_literals(patterns: Iterable[str]) -> list[str]:
    """SmokeDetector regexes that are plain words once ``\\W?``-style separators
    are read as "a space or nothing": both spellings are returned."""
    out: list[str] = []
    for pattern in patterns:
        pattern = pattern.strip()
        if pattern.startswith("(?i)"):
            pattern = pattern[4:]
        pattern = pattern.replace("\\.", ".")
        spaced = _SMOKE_SEPARATOR.sub(" ", pattern)
        if _REGEX_META.search(spaced) is not None:
            continue  # a real regex: not matched (see the module doc)
        out.append(spaced)
        out.append(_SMOKE_SEPARATOR.sub("", pattern))
    return out


def raw_phrase_table(name: str) -> frozenset[str]:
    """A phrase list's normalised entries before the ham exclusions."""
    if name == "wp":
        entries = _lines(LISTS_DIR / "wp_comment_blocklist" / "blacklist.txt")
    elif name == "smoke":
        smoke = LISTS_DIR / "smokedetector_lists_2017"
        watched = [line.split("\t")[-1] for line in _lines(smoke / "watched_keywords.txt")]
        entries = _smoke_literals(_lines(smoke / "bad_keywords.txt") + watched)
    else:
        raise ValueError(f"no phrase list {name!r}")
    return frozenset(k for k in map(_phrase_key, entries) if k is not None)


@functools.cache
def phrase_table(name: str) -> frozenset[str]:
    """The entries of a phrase list (``wp`` or ``smoke``) the signals match:
    normalised, without those that fired on the shipped ham (:data:`EXCLUSIONS`)."""
    return _phrase_entries(name)


def _phrase_entries(name: str) -> frozenset[str]:
    return raw_phrase_table(name) - frozenset(_lines(EXCLUSIONS))


def matched_phrases(words: Sequence[str], table: frozenset[str]) -> set[str]:
    """The entries of ``table`` that occur as whole-token runs in ``words``."""
    found: set[str] = set()
    n = len(words)
    for i in range(n):
        gram = words[i]
        if gram in table:
            found.add(gram)
        for j in range(i + 1, min(i + MAX_PHRASE_TOKENS, n)):
            gram = gram + " " + words[j]
            if gram in table:
                found.add(gram)
    return found


_BEGINS = 4  # bit of _phrase_index(): this run of tokens begins a longer entry


@functools.cache
def _phrase_index() -> dict[str, int]:
    """Both phrase lists as one lookup: a run of tokens -> bit 1 if it is a ``wp``
    entry, bit 2 if a ``smoke`` one, :data:`_BEGINS` if it begins an entry of more
    tokens. A run of the comment's words that begins none cannot grow into an entry."""
    index: dict[str, int] = {}
    # Not through phrase_table's cache: a serving process keeps only this index
    # (the two sets' tables would add about 4 MB to every worker).
    for bit, name in ((1, "wp"), (2, "smoke")):
        for entry in _phrase_entries(name):
            index[entry] = index.get(entry, 0) | bit
            words = entry.split(" ")
            for k in range(1, len(words)):
                run = " ".join(words[:k])
                index[run] = index.get(run, 0) | _BEGINS
    return index


def phrase_counts(words: Sequence[str]) -> tuple[int, int]:
    """``(phrase_hits(words, phrase_table("wp")), phrase_hits(words, phrase_table("smoke")))``
    in one scan of the words, one lookup per run (:func:`list_signals` needs both)."""
    hits = list(_phrases_found(words).values())
    return sum(b & 1 for b in hits), sum(b >> 1 for b in hits)


def _phrases_found(
    words: Sequence[str], where: dict[str, tuple[int, int]] | None = None
) -> dict[str, int]:
    """Each entry of either list among the runs of ``words``, in the order they
    begin, with its bits (1: ``wp``, 2: ``smoke``); with ``where``, also the first
    run of words (start, end) each was found in."""
    index = _phrase_index()
    found: dict[str, int] = {}
    n = len(words)
    for i in range(n):
        gram = words[i]
        bits = index.get(gram, 0)
        if not bits:
            continue
        if bits & 3:
            found[gram] = bits & 3
            if where is not None:
                where.setdefault(gram, (i, i + 1))
        j, end = i + 1, min(i + MAX_PHRASE_TOKENS, n)
        while bits & _BEGINS and j < end:
            gram = gram + " " + words[j]
            j += 1
            bits = index.get(gram, 0)
            if bits & 3:
                found[gram] = bits & 3
                if where is not None:
                    where.setdefault(gram, (i, j))
    return found


def _host(entry: str) -> str:
    return entry.strip().lower().removeprefix("www.").strip(".")


@functools.cache
def host_table(name: str) -> frozenset[str]:
    """Host names of a host list: ``spam_hosts`` or ``shorteners``."""
    if name == "spam_hosts":
        smoke = LISTS_DIR / "smokedetector_lists_2017" / "blacklisted_websites.txt"
        hosts = [_host(h) for h in _lines(LISTS_DIR / "referrer_spam_domains" / "spammers.txt")]
        hosts += [_host(h) for h in _smoke_literals(_lines(smoke)) if " " not in h]
    elif name == "shorteners":
        hosts = [_host(h) for h in _lines(LISTS_DIR / "url_shorteners" / "list")]
        hosts += [_host(h) for h in _lines(
            LISTS_DIR / "wp_comment_blocklist" / "reference_shorteners.txt")]
        hosts = [h for h in hosts if h not in PLATFORM_LINKS]
    else:
        raise ValueError(f"no host list {name!r}")
    return frozenset(h for h in hosts if "." in h)


# Short links of the platforms themselves (a video, a tweet, a shop's item) are
# on the shortener list but are how ordinary readers share things.
PLATFORM_LINKS = frozenset(["youtu.be", "t.co", "amzn.to", "amzn.com", "fb.me", "redd.it",
                            "wp.me", "g.co", "goo.gl", "lnkd.in", "flic.kr", "spoti.fi"])


def phrase_hits(words: Sequence[str], table: frozenset[str]) -> int:
    """How many distinct entries of ``table`` occur as whole-token runs in ``words``."""
    return len(matched_phrases(words, table))


@functools.cache
def _most_labels(table: frozenset[str]) -> int:
    return max((entry.count(".") + 1 for entry in table), default=0)


def host_hits(hosts: Iterable[str], table: frozenset[str]) -> int:
    """How many of the link ``hosts`` are on ``table`` (or under a domain on it).

    Only suffixes with no more labels than the longest entry are looked up: a
    crafted host of thousands of labels ("www.a" * N) costs linear time, not
    one join per label."""
    longest = _most_labels(table)
    hits = 0
    for host in hosts:
        parts = host.split(".")
        first = max(len(parts) - longest, 0)
        if any(".".join(parts[i:]) in table for i in range(first, len(parts) - 1)):
            hits += 1
    return hits


# --- lure patterns -----------------------------------------------------------
# Latin-script words match at a word start (\b) as prefixes ("invest" finds
# "investment"); scripts without spaces between words (Chinese) and Arabic
# match anywhere. Every pattern is one alternation of literals: linear time.


# Python's regex engine tries the branches of an alternation one by one at every
# position, so 150 words cost 150 tries per word start. The patterns are compiled
# with the alternatives grouped by their first letter ("e(?:arn|thereum)|..."),
# recursively: at a position only the branch of the letter there is entered. The
# grouping keeps the order of the alternatives that can match at the same place,
# so the same alternative wins and findall counts the same matches (tested against
# the plain alternation in tests/test_spamlists.py); measured, 2-3.5x less time.
_REGEX_SPECIAL = frozenset("\\.^$*+?{}[]|()")
_QUANTIFIER = frozenset("?*+{")
# Each compiled pattern -> the plain alternation it stands for, as (source, flags).
PLAIN: dict[re.Pattern[str], tuple[str, int]] = {}


def _first_literal(alternative: str) -> tuple[str, str, str] | None:
    """(character, its spelling, rest) when ``alternative`` starts with one literal
    character that no quantifier applies to; None for a class, an assertion or ``a?``."""
    if alternative[:1] == "\\":
        if len(alternative) < 2 or alternative[1].isalnum():
            return None  # \b, \d, \w...
        char, spelling = alternative[1], alternative[:2]
    elif not alternative or alternative[0] in _REGEX_SPECIAL:
        return None
    else:
        char, spelling = alternative[0], alternative[0]
    rest = alternative[len(spelling):]
    return None if rest[:1] in _QUANTIFIER else (char, spelling, rest)


def _same_letter(a: str, b: str, flags: int) -> bool:
    """Whether letters ``a`` and ``b`` match the same characters under ``flags``."""
    if a == b:
        return True
    return bool(flags & re.IGNORECASE) and _ignoring_case(a).fullmatch(b) is not None


@functools.cache
def _ignoring_case(letter: str) -> re.Pattern[str]:
    return re.compile(re.escape(letter), re.IGNORECASE)


def _grouped(alternatives: Sequence[str], flags: int) -> str:
    """``"|".join(alternatives)`` with alternatives that start with the same letter
    sharing one branch (see above). Exact only where nothing follows the group."""
    pieces: list[str] = []
    segment: list[tuple[str, str, str]] = []  # consecutive alternatives led by a literal

    def flush() -> None:
        groups: dict[str, list[tuple[str, str]]] = {}  # first letter -> (spelling, rest), in order
        for char, spelling, rest in segment:
            key = next((k for k in groups if _same_letter(k, char, flags)), char)
            groups.setdefault(key, []).append((spelling, rest))
        for members in groups.values():
            if len(members) == 1:
                pieces.append(members[0][0] + members[0][1])
            else:
                rests = _grouped([rest for _, rest in members], flags)
                pieces.append(f"{members[0][0]}(?:{rests})")
        segment.clear()

    for alternative in alternatives:
        if alternative == "":  # matches at once: the alternatives after it never win
            flush()
            pieces.append("")
            break
        first = _first_literal(alternative)
        if first is None:  # kept in place: whatever it can match, its order is kept
            flush()
            pieces.append(alternative)
        else:
            segment.append(first)
    flush()
    return "|".join(pieces)


def _alternation(
    prefix: str, alternatives: Sequence[str], flags: int, reference_flags: int | None = None
) -> re.Pattern[str]:
    plain = prefix + "(?:" + "|".join(alternatives) + ")"
    source = plain
    if not any(c in a for a in alternatives for c in "|()"):  # else nested groups: kept plain
        source = prefix + "(?:" + _grouped(alternatives, flags) + ")"
    compiled = re.compile(source, flags)
    PLAIN[compiled] = (plain, flags if reference_flags is None else reference_flags)
    return compiled


# The letters re.IGNORECASE treats as one beyond simple lower case: CPython's
# re._casefix._EXTRA_CASES as classes, the common letter first ("ı" matches "i",
# "σ" "ς", "ᲃ" "с"...; tests/test_spamlists.py holds the two equal).
CASE_CLASSES = (
    "iı", "sſ", "μµ", "ι\u0345\u1fbe", "\u0390\u1fd3", "\u03b0\u1fe3", "βϐ", "εϵ", "θϑ", "κϰ",
    "πϖ", "ρϱ", "σς", "φϕ", "вᲀ", "дᲁ", "оᲂ", "сᲃ", "тᲄᲅ", "ъᲆ", "ѣᲇ", "ꙋᲈ", "ṡẛ", "ﬅﬆ",
)
_ONE_CASE = {ord(c): group[0] for group in CASE_CLASSES for c in group[1:]}


def lure_text(folded: str) -> str:
    """Lower-case text as the lure patterns read it: each letter of a
    :data:`CASE_CLASSES` class as its first. The ``_words`` patterns then match
    without re.IGNORECASE (2-4x slower on these alternations) what they matched
    with it in lower-case text."""
    return folded if folded.isascii() else folded.translate(_ONE_CASE)


def _words(*alternatives: str) -> re.Pattern[str]:
    """Whole-word alternatives, in lower case, matched in :func:`lure_text`; the
    reference (:data:`PLAIN`) is the plain alternation with re.IGNORECASE in the
    lower-case text."""
    return _alternation(r"\b", [a.translate(_ONE_CASE) for a in alternatives], 0,
                        reference_flags=re.IGNORECASE)


def _anywhere(*alternatives: str) -> re.Pattern[str]:
    return _alternation("", alternatives, 0)


CONTACT = (
    _words(
        r"whats ?app", r"wa\.me", r"telegram", r"t\.me/", r"viber", r"wechat", r"we chat",
        r"kakao", r"line id", r"zalo", r"signal app", r"skype", r"snapchat", r"kik me",
        r"dm me", r"pm me", r"inbox me", r"message me", r"text me", r"call me", r"contact me",
        r"email me", r"e-mail me", r"hit me up", r"reach me", r"add me", r"call now",
        r"call us", r"contact us", r"text us", r"hotline", r"helpline", r"toll free",
        r"toll-free", r"customer care", r"customer support number", r"support number",
        r"phone number", r"whatsapp number", r"my number",
        # tech-support and booking scams, the commonest blog-comment spam
        r"customer service", r"customer support", r"tech support", r"technical support",
        r"support team", r"helpdesk", r"help desk", r"reservation number",
        r"reservations number", r"booking number", r"our experts", r"certified experts",
        # Russian, Ukrainian
        r"пишите", r"пиши в", r"в лс", r"в личку", r"в личные", r"телеграм", r"ватсап",
        r"вотсап", r"вайбер", r"звоните", r"звони", r"контакт",
        # Indonesian, Malay
        r"hubungi", r"hub\b", r"hubungi kami", r"sms ke", r"ketik", r"kirim ke", r"info lanjut",
        # Vietnamese
        r"liên hệ", r"lien he", r"inbox", r"ib mình", r"gọi ngay", r"hotline",
        # Spanish, Portuguese, French, German
        r"contáctame", r"escríbeme", r"llámame", r"chama no", r"me chama", r"contactez",
        r"appelez", r"kontaktieren sie",
    ),
    _anywhere(
        "微信", "加微", "加v", "威信", "电话", "热线", "咨询", "联系", "致电", "来电", "详询",
        "详情", "预约", "扣扣", "加qq", "qq号", "qq群", "qq:", "地址",  # QQ: lower case,
        # and only where Chinese or a colon marks it (a bare "qq" is in random link ids)
        "واتس", "واتساب", "وتساب", "تواصل", "للتواصل", "اتصل", "تيليجرام", "تلجرام",
        "سناب",
    ),
)
MONEY = (
    _words(
        r"earn", r"income", r"profit", r"invest", r"forex", r"bitcoin",
        r"btc\b", r"crypto", r"usdt", r"binance", r"ethereum", r"nft\b", r"airdrop",
        r"binary option", r"casino", r"jackpot", r"lottery", r"lotto", r"prize", r"winner",
        r"you won", r"you have won", r"claim your", r"cash prize", r"cashback", r"cash back",
        r"loan", r"payday", r"discount", r"per cent off", r"coupon",
        r"free gift", r"for free", r"free\b", r"cheap", r"best price", r"lowest price",
        r"make money", r"work from home", r"per day", r"per week", r"a day from home",
        r"guaranteed", r"bonus", r"reward", r"voucher", r"promo", r"deal\b",
        r"sale\b", r"wholesale", r"usd\b", r"dollars",
        # Russian
        r"заработ", r"доход", r"прибыл", r"инвест", r"крипт", r"биткоин", r"бесплатн",
        r"скидк", r"кредит", r"займ", r"выигр", r"приз", r"бонус", r"акци", r"руб\b",
        r"казино", r"ставк",
        # Indonesian
        r"hadiah", r"pulsa", r"diskon", r"gratis", r"menang", r"undian", r"pinjaman",
        r"kredit", r"togel", r"judi", r"rp ?\d", r"ribu", r"juta", r"untung", r"investasi",
        r"cashback", r"kuota",
        # Vietnamese
        r"giảm giá", r"khuyến mãi", r"miễn phí", r"vay\b", r"đầu tư", r"lãi", r"thưởng",
        r"kiếm tiền", r"giá rẻ", r"ưu đãi",
        # Spanish, Portuguese, French, German
        r"gratis", r"descuento", r"oferta", r"ganar dinero", r"ganhe", r"promoção",
        r"réduction", r"gratuit", r"gewinn", r"kostenlos", r"rabatt",
    ),
    _anywhere(
        "优惠", "特价", "折扣", "打折", "折起", "免费", "赠送", "送礼", "促销", "会员",
        "抽奖", "中奖", "现金", "贷款", "投资", "理财", "返利", "红包", "元起", "特惠", "秒杀",
        "限时", "全场", "低至", "钜惠", "惊喜",
        r"\$ ?\d", r"\d ?\$", r"€ ?\d", r"£ ?\d", r"\d ?% off",
        "ربح", "أرباح", "جائزة", "خصم", "مجانا", "مجاناً", "قرض", "قروض", "تمويل", "استثمار",
        "ريال", "دولار", "تداول", "فوركس", "بيتكوين", "كاش",
    ),
)
ACTION = (
    _words(
        r"click here", r"click the link", r"click on the link", r"click link",
        r"subscribe to my", r"subscribe my", r"please subscribe", r"sub to my", r"sub my",
        r"check out", r"check my", r"visit my", r"visit our", r"visit us", r"follow me",
        r"follow my", r"buy now", r"order now", r"shop now", r"join now", r"join us",
        r"sign up", r"register now", r"apply now", r"limited time", r"hurry", r"act now",
        r"don'?t miss", r"only today", r"today only", r"last chance",
        r"my channel", r"my video", r"my page", r"my profile", r"my website", r"my site",
        r"link in bio", r"link below",
        r"подпис", r"переход", r"жми", r"успей", r"только сегодня",
        r"buruan", r"segera", r"daftar", r"aktifkan", r"klik", r"kunjungi",
        r"nhanh tay", r"đăng ký", r"truy cập", r"xem ngay",
        r"haz clic", r"suscríbete", r"inscreva", r"cliquez", r"abonniere",
    ),
    _anywhere(
        "立即", "马上", "赶快", "欢迎光临", "抢购", "恭候", "敬请", "光临", "莅临", "火热",
        "اشترك", "اضغط", "تابعني", "زوروا", "اطلب", "سارع", "للطلب",
        "متوفر", "توصيل",
    ),
)
ADULT = (
    _words(
        r"porn", r"xxx\b", r"sex\b", r"sexy", r"nude", r"naked", r"camgirl", r"webcam girl",
        r"hot girls", r"dating", r"hookup", r"escort", r"onlyfans", r"viagra", r"cialis",
        r"penis", r"erection", r"weight loss", r"lose weight", r"diet pill", r"keto",
        r"секс", r"порно", r"знакомств", r"интим", r"эскорт",
        r"bokep", r"obat kuat",
    ),
    _anywhere(
        "色情", "约炮", "壮阳", "减肥", "丰胸",
        "سكس", "سکس", "نيك", "افلام", "فياجرا", "سيالس", "منشط", "تكبير", "تخسيس", "رجيم",
    ),
)


def _count(patterns: tuple[re.Pattern[str], re.Pattern[str]], folded: str, lures: str) -> int:
    """Matches of a (``_words``, ``_anywhere``) pair: the first in :func:`lure_text`,
    the second, case-sensitive, in the lower-case text itself."""
    words, anywhere = patterns
    return len(words.findall(lures)) + len(anywhere.findall(folded))


_SCRIPTS = (
    ("latin", re.compile(r"[a-zA-Z\u00c0-\u024f]")),
    ("cyrillic", re.compile(r"[\u0400-\u04ff]")),
    ("greek", re.compile(r"[\u0370-\u03ff]")),
    ("arabic", re.compile(r"[\u0600-\u06ff\u0750-\u077f]")),
    ("hebrew", re.compile(r"[\u0590-\u05ff]")),
    ("cjk", re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")),
    ("thai", re.compile(r"[\u0e00-\u0e7f]")),
    ("devanagari", re.compile(r"[\u0900-\u097f]")),
)


def script_mix(text: str) -> float:
    """1.0 when letters of two or more scripts each make up 3 letters and 10 %."""
    if text.isascii():
        return 0.0
    counts = [len(p.findall(text)) for _, p in _SCRIPTS]
    total = sum(counts)
    if total == 0:
        return 0.0
    strong = [c for c in counts if c >= 3 and c * 10 >= total]
    return float(len(strong) >= 2)


def word_repetition(words: Sequence[str]) -> float:
    """Share of repeated word triples in a text of at least 6 words (0 when shorter):
    ordinary prose seldom repeats three words in a row, copy-pasted spam does."""
    if len(words) < 6:
        return 0.0
    triples = [(words[i], words[i + 1], words[i + 2]) for i in range(len(words) - 2)]
    return 1.0 - len(set(triples)) / len(triples)


# A list or lure signal reads its hits as a share of the text: hits / max(the
# count that saturates it, the comment's words / LURE_WORDS). A comment of up to
# LURE_WORDS words per saturating hit (45 words for three money words) reads as
# before; a longer one needs as many hits per word. Counted alone, three money
# words saturated the money lure in a 200-word rant about taxes as in a 15-word
# prize SMS, and 8 of 690 real news comments were called spam on day one
# (docs/model.md, "Lures as a share of the text"). 0 reads plain counts, as
# models fitted before it did (CommentFeatures.fitted_lure_words).
LURE_WORDS = 15


def _scaled(hits: int, saturation: float, share: float) -> float:
    """A signal's value: ``hits`` over its saturating count or the text's share."""
    return min(hits / max(saturation, share), 1.0)


def list_signals(text: str, hosts: Sequence[str], lure_words: int = LURE_WORDS) -> dict[str, float]:
    """The list and lure signals of a comment, each in [0, 1].

    ``text`` is the comment as a reader sees it (markup stripped, NFKC, no
    zero-width characters); ``hosts`` are its links' hosts; ``lure_words``: see
    :data:`LURE_WORDS`.
    """
    folded = text.lower()
    words = _TOKEN.findall(folded)  # tokens(): already lower case
    wp, smoke = phrase_counts(words)
    lures = lure_text(folded)
    share = len(words) / lure_words if lure_words > 0 else 0.0
    return {
        "wp_list": _scaled(wp, 3.0, share),
        "se_list": _scaled(smoke, 2.0, share),
        "spam_host": float(host_hits(hosts, host_table("spam_hosts")) > 0),
        "shortener_list": float(host_hits(hosts, host_table("shorteners")) > 0),
        "contact_lure": _scaled(_count(CONTACT, folded, lures), 2.0, share),
        "money_lure": _scaled(_count(MONEY, folded, lures), 3.0, share),
        "action_lure": _scaled(_count(ACTION, folded, lures), 2.0, share),
        "adult_lure": _scaled(_count(ADULT, folded, lures), 2.0, share),
        "script_mix": script_mix(text),
        "word_repeat": word_repetition(words),
    }


_LURES = {"contact_lure": CONTACT, "money_lure": MONEY, "action_lure": ACTION,
          "adult_lure": ADULT}
_LIST_BITS = {"wp_list": 1, "se_list": 2}
_HOST_TABLES = {"spam_host": "spam_hosts", "shortener_list": "shorteners"}
MATCHED_SIGNALS = frozenset([*_LURES, *_LIST_BITS, *_HOST_TABLES])
MATCH_CHARS = 40  # a matched word is shown up to this many characters
_WORD_REST = re.compile(r"\w*")
# the rest of an amount, with its scale: "$2 million", "$5k", not "$2"
_NUMBER_REST = re.compile(r"(?:[\d.,]*\d)?(?: ?(?:thousand|million|billion|trillion|bn|k|m)\b)?")
_AMOUNT = frozenset("0123456789.,")


def signal_matches(name: str, text: str, hosts: Sequence[str]) -> list[str]:
    """What made the list or lure signal ``name`` (one of :data:`MATCHED_SIGNALS`)
    fire, read as :func:`list_signals` reads it: the listed phrases, the lure words
    (a prefix such as "invest" as the whole word, "investment") or the listed
    hosts, distinct, in the order they occur; [] for any other signal. For a
    reason a moderator reads (:func:`training.text.describe_signal`), never for a score."""
    folded = text.lower()
    if name in _LIST_BITS:  # as the comment wrote it: "earn $500 a day", not "earn 500 a day"
        bit, tokens = _LIST_BITS[name], list(_TOKEN.finditer(folded))
        where: dict[str, tuple[int, int]] = {}
        phrases = _phrases_found([t.group() for t in tokens], where)
        spans = [where[p] for p, bits in phrases.items() if bits & bit]
        return list(dict.fromkeys(
            " ".join(folded[tokens[i].start():tokens[j - 1].end()][:MATCH_CHARS].split())
            for i, j in spans))
    if name in _HOST_TABLES:
        table = host_table(_HOST_TABLES[name])
        return list(dict.fromkeys(h for h in hosts if host_hits([h], table)))
    if name not in _LURES:
        return []
    words, anywhere = _LURES[name]
    lures = lure_text(folded)
    found: list[tuple[int, str]] = []
    for m in words.finditer(lures):
        rest = _WORD_REST.match(lures, m.end(), m.end() + MATCH_CHARS)
        found.append((m.start(), (m.group() + (rest.group() if rest else ""))[:MATCH_CHARS]))
    for m in anywhere.finditer(folded):  # a whole amount: "$ 500", "90% off", "$2 million"
        rest = _NUMBER_REST.match(folded, m.end(), m.end() + MATCH_CHARS)
        number = rest.group() if rest and m.group()[-1:].isdigit() else ""
        start = m.start()
        if m.group()[:1].isdigit():
            while start > max(m.start() - MATCH_CHARS, 0) and folded[start - 1] in _AMOUNT:
                start -= 1
        found.append((start, (folded[start:m.end()] + number)[:MATCH_CHARS]))
    return list(dict.fromkeys(word.strip() for _, word in sorted(found)))


LIST_SIGNAL_NAMES: tuple[str, ...] = (
    "wp_list", "se_list", "spam_host", "shortener_list", "contact_lure", "money_lure",
    "action_lure", "adult_lure", "script_mix", "word_repeat",
)
