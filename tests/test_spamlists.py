"""The public spam lists and lure patterns as signals (training/spamlists.py)."""

from __future__ import annotations

import csv
import pickle
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.cli.main import main
from service.registry.lean import compile_pipeline
from training import spamlists
from training.datasets import shipped_corpora
from training.features import CommentFeatures
from training.listcheck import ham_hits
from training.spamlists import LURE_WORDS, list_signals, tokens
from training.text import LEGACY_SIGNALS, SIGNAL_INDEX, SIGNALS, Comment, signal_vector
from training.train import build_pipeline


def signals(text: str) -> dict[str, float]:
    values = signal_vector(Comment(content=text))
    return {s.name: values[i] for i, s in enumerate(SIGNALS)}


def test_every_list_ships_with_its_licence_and_provenance() -> None:
    root = spamlists.LISTS_DIR
    for folder, licence in [("wp_comment_blocklist", "license.txt"),
                            ("smokedetector_lists_2017", "LICENSE-MIT"),
                            ("smokedetector_lists_2017", "LICENSE-APACHE"),
                            ("url_shorteners", "LICENSE"),
                            ("referrer_spam_domains", "README.md")]:
        assert (root / folder / licence).is_file(), (folder, licence)
        assert (root / folder / "PROVENANCE.md").is_file(), folder
    assert (root / "ATTRIBUTION.md").is_file()
    assert len(spamlists.phrase_table("wp")) > 30_000
    assert len(spamlists.phrase_table("smoke")) > 1_000
    assert len(spamlists.host_table("spam_hosts")) > 2_000
    assert "bit.ly" in spamlists.host_table("shorteners")
    assert "youtu.be" not in spamlists.host_table("shorteners")  # a platform's own link


def test_phrases_match_whole_tokens_only() -> None:
    table = frozenset(["ipod repair", "blackjack"])
    assert spamlists.phrase_hits(spamlists.tokens("Cheap iPod-Repair here"), table) == 1
    assert spamlists.phrase_hits(spamlists.tokens("my tripod repairs"), table) == 0
    assert spamlists.phrase_hits(spamlists.tokens("BLACKJACK blackjack"), table) == 1


def test_hosts_match_the_host_or_a_parent_domain() -> None:
    table = frozenset(["spam.example"])
    assert spamlists.host_hits(["a.b.spam.example", "news.org"], table) == 1
    assert spamlists.host_hits(["notspam.example"], table) == 0


def test_smokedetector_regexes_are_read_as_words_or_left_out() -> None:
    words = spamlists._smoke_literals(["baba\\W?ji", "fifa.{0,20}coins?", "ewebtonic\\.in"])
    assert words == ["baba ji", "babaji", "ewebtonic.in", "ewebtonic.in"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Contact me on WhatsApp for details", "contact_lure"),
        ("Пишите в личку, телеграм", "contact_lure"),
        ("详询电话 微信同号", "contact_lure"),
        ("Earn $500 per day with bitcoin, guaranteed profit", "money_lure"),
        ("Dapatkan hadiah pulsa gratis", "money_lure"),
        ("Please subscribe to my channel and click here", "action_lure"),
        ("hot girls dating tonight", "adult_lure"),
        ("Great deal at http://bit.ly/abc", "shortener_list"),
        ("Advice at www.adviceforum.info/x", "spam_host"),
        ("Visit 买 cheap 便宜 shoes 鞋子 store 商店 today 今天", "script_mix"),
        ("buy now buy now buy now buy now buy now buy now", "word_repeat"),
    ],
)
def test_lure_and_list_signals_fire(text: str, name: str) -> None:
    assert signals(text)[name] > 0, signals(text)


@pytest.mark.parametrize(
    ("text", "name", "matches"),
    [
        ("Contact me on WhatsApp or Telegram", "contact_lure",
         ["contact me", "whatsapp", "telegram"]),
        ("详询电话 微信同号", "contact_lure", ["详询", "电话", "微信"]),
        # A prefix as the whole word; an amount with all its digits.
        ("Earn $500 per day: INVESTMENTS, guaranteed", "money_lure",
         ["earn", "$500", "per day", "investments", "guaranteed"]),
        ("Shoes 90% off, now $1,500", "money_lure", ["90% off", "$1,500"]),
        # with its scale: a news comment's "$2 million" is not "$2"
        ("The bridge cost $2 million, or $3 more each", "money_lure", ["$2 million", "$3"]),
        # A list's phrase as the comment wrote it, not as the list's tokens read.
        ("earn $500 a day at bit.ly now", "wp_list", ["earn $500 a day", "bit.ly"]),
        ("Please subscribe to my channel", "action_lure", ["please subscribe", "my channel"]),
        ("cheap viagra and cialis", "adult_lure", ["viagra", "cialis"]),
        ("cheap viagra and cialis", "se_list", ["viagra", "cialis"]),
        ("Great deal at http://bit.ly/abc and http://bit.ly/def", "shortener_list", ["bit.ly"]),
        ("Advice at www.adviceforum.info/x", "spam_host", ["adviceforum.info"]),
        ("Thanks for the article", "money_lure", []),
        ("cheap viagra", "has_link", []),  # not a list or lure signal
    ],
)
def test_signal_matches_name_what_made_a_signal_fire(
    text: str, name: str, matches: list[str]
) -> None:
    from training.text import reader_text, url_domains

    reader = reader_text(text)
    assert spamlists.signal_matches(name, reader, url_domains(reader)) == matches


def test_a_list_or_lure_reason_names_its_words() -> None:
    """A moderator sees which words made the signal fire, the first three of them."""
    from training.text import describe_signal

    money = Comment(content="Earn $500 per day with bitcoin, guaranteed profit, free bonus")
    assert describe_signal("money_lure", money) == (
        "money, prize, crypto or investment lure: 'earn', '$500', 'per day' and 5 more")
    wp = Comment(content="cheap viagra")
    assert describe_signal("wp_list", wp).startswith("words on the WordPress comment "
                                                     "blocklist: 'viagra'")
    # Nothing found (the signal came from elsewhere): the signal's own words.
    plain = Comment(content="Thanks for the article")
    assert describe_signal("money_lure", plain) == "money, prize, crypto or investment lure"


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_signal_matches_takes_any_text(text: str) -> None:
    from training.text import reader_text, url_domains

    reader = reader_text(text)
    for name in spamlists.MATCHED_SIGNALS:
        found = spamlists.signal_matches(name, reader, url_domains(reader))
        assert all(0 < len(w) <= spamlists.MATCH_CHARS for w in found)
        assert len(found) == len(set(found))


def test_an_ordinary_news_comment_fires_no_list_signal() -> None:
    values = signals("Thanks for the thoughtful article about the council vote; the budget "
                     "figures on page two do not add up, see https://www.bbc.co.uk/news.")
    assert all(values[name] == 0 for name in spamlists.LIST_SIGNAL_NAMES), values


def test_lure_patterns_quantify_no_group() -> None:
    """Literal alternations only: no quantified group, so no nested quantifier and
    no catastrophic backtracking."""
    patterns = [p for group in (spamlists.CONTACT, spamlists.MONEY, spamlists.ACTION,
                                spamlists.ADULT) for p in group]
    for pattern in patterns:
        assert re.search(r"\)[*+?{]", pattern.pattern) is None, pattern.pattern


def test_hostile_texts_are_read_in_one_pass() -> None:
    for text in ["a-" * 50_000, "whats " * 20_000, "1 " * 50_000, "优惠" * 30_000,
                 "x." * 50_000]:
        values = spamlists.list_signals(text, [])
        assert all(0.0 <= v <= 1.0 for v in values.values())


def test_the_exclusions_cover_every_entry_that_fires_on_shipped_ham() -> None:
    """The measured false positives stay excluded: rerun
    ``python -m training.listcheck --write-exclusions`` when the ham or lists change."""
    hits = ham_hits([e for _, ex in shipped_corpora() for e in ex])
    excluded = set(spamlists._lines(spamlists.EXCLUSIONS))
    assert set(hits) <= excluded, sorted(set(hits) - excluded)[:20]


def test_a_model_fitted_with_the_legacy_signals_still_scores_and_compiles() -> None:
    texts = ["buy cheap pills http://bit.ly/x", "check out my channel",
             "the council vote was close", "thanks for the budget story"] * 5
    labels = [1, 1, 0, 0] * 5
    pipe = build_pipeline({"backoff": False, "loss": "log"}).fit(texts, labels)
    features: CommentFeatures = pipe.named_steps["features"]
    # What a model pickled before the list signals (and the backoff) looks like.
    del features.backoff
    n = features.n_word_ + features.n_char_
    keep = [SIGNAL_INDEX[name] for name in LEGACY_SIGNALS]
    clf = pipe.named_steps["clf"]
    clf.coef_ = clf.coef_[:, list(range(n)) + [n + i for i in keep]]
    clf.n_features_in_ = clf.coef_.shape[1]
    del features.signal_names_
    old = pickle.loads(pickle.dumps(pipe))  # noqa: S301 - our own object, round-tripped
    probs = old.predict_proba(texts)[:, 1]
    lean = compile_pipeline(old)
    assert lean is not None
    for text, p in zip(texts, probs, strict=True):
        assert abs(lean.probability(Comment(content=text)) - p) < 1e-9


def _write_corpus(root: Path, name: str, rows: list[tuple[str, str]]) -> None:
    (root / name).mkdir(parents=True)
    with (root / name / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["content", "label"])
        writer.writerows(rows)


def test_evaluate_loco_prints_each_system_on_the_held_out_corpus(tmp_path: Path) -> None:
    spam = ["Earn $500 a day from home, WhatsApp me", "Free bitcoin, click here now",
            "Call our support number for a cheap loan", "hot girls dating, visit my site"]
    ham = ["The council should publish the figures", "I read the whole report, it is fair",
           "My street flooded again last week", "Good piece, the mayor dodged it"]
    rows = [(f"{t} {i}", "spam") for i in range(10) for t in spam]
    rows += [(f"{t} {i}", "ham") for i in range(10) for t in ham]
    _write_corpus(tmp_path, "datacamp_blog_comments", rows)
    result = CliRunner().invoke(main, [
        "evaluate", "--protocol", "loco", "--eval-only-dir", str(tmp_path), "--cap", "200",
        "--corpus", "datacamp_blog_comments", "--system", "commentmod", "--system", "tfidf-lr",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines()
             if line.startswith("datacamp_blog_comments")]
    assert [line.split()[1] for line in lines[-2:]] == ["commentmod", "tfidf-lr"]
    assert all(line.split()[2] == "80" for line in lines[-2:])  # every text scored


def test_evaluate_loco_without_measurement_corpora_says_where_it_looked(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "--protocol", "loco",
                                       "--eval-only-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert str(tmp_path) in result.output and "no measurement-only corpora" in result.output
    result = CliRunner().invoke(main, ["evaluate", "--protocol", "dayone", "--corpus", "nope",
                                       "--eval-only-dir", str(tmp_path)])
    assert result.exit_code != 0


# --- the fast forms count what the plain ones count ----------------------------
# The lure patterns are compiled grouped by first letter and both phrase lists are
# scanned at once (for speed); the signals must not change. The plain alternation
# and phrase_hits per list are the reference.

_LURES = [p for group in (spamlists.CONTACT, spamlists.MONEY, spamlists.ACTION,
                          spamlists.ADULT) for p in group]
# Letters that re.IGNORECASE matches across forms ("ı" for "i", "ſ" for "s", the
# Kelvin sign for "k"), separators, digits and scripts the patterns name.
_ODD = "ıİſKÅςᲃᲂᲄﬆ \t.-'?$€£%1٣\u200b\u0301"


def _plain(pattern: re.Pattern[str]) -> re.Pattern[str]:
    source, flags = spamlists.PLAIN[pattern]
    return re.compile(source, flags)


def _agree(pattern: re.Pattern[str], text: str) -> bool:
    """The fast pattern counts, in what list_signals gives it (lower-case text; the
    whole-word patterns in lure_text), what the plain alternation counts with its
    own flags (re.IGNORECASE for those) in the lower-case text."""
    folded = text.lower()
    read = spamlists.lure_text(folded) if spamlists.PLAIN[pattern][1] & re.IGNORECASE else folded
    return len(pattern.findall(read)) == len(_plain(pattern).findall(folded))


def _shipped_texts() -> list[str]:
    return [e.comment.content for _, ex in shipped_corpora() for e in ex]


def test_grouped_lure_patterns_count_what_the_plain_alternations_count() -> None:
    texts = _shipped_texts()
    for pattern in _LURES:
        for text in texts:
            assert _agree(pattern, text), (pattern.pattern[:40], text)


def _lure_fragments() -> list[str]:
    words = set()
    for pattern in _LURES:
        source, _ = spamlists.PLAIN[pattern]
        for alternative in source.split("(?:", 1)[1][:-1].split("|"):
            literal = re.sub(r"\\[bd]|[\\?]", "", alternative)
            words.update({literal, literal[: len(literal) // 2], literal.upper(), literal.title()})
    return sorted(w for w in words if w)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(_lure_fragments()), st.sampled_from(list(_ODD)),
                          st.text(max_size=3)), max_size=12))
def test_grouped_lure_patterns_agree_on_generated_text(pieces: list[str]) -> None:
    for joined in ("".join(pieces), " ".join(pieces)):
        for pattern in _LURES:
            assert _agree(pattern, joined), (pattern.pattern[:40], joined)


def test_case_classes_are_the_ones_re_ignorecase_uses() -> None:
    """lure_text stands in for re.IGNORECASE only while CASE_CLASSES is CPython's
    own table of letters that match across forms (re._casefix, Python 3.11+)."""
    from re._casefix import _EXTRA_CASES  # type: ignore[import-not-found]

    classes: dict[int, set[int]] = {}
    for key, others in _EXTRA_CASES.items():
        merged = {key, *others}.union(*(classes.get(c, set()) for c in (key, *others)))
        for c in merged:
            classes[c] = merged
    expected = {frozenset(map(chr, group)) for group in classes.values()}
    assert {frozenset(group) for group in spamlists.CASE_CLASSES} == expected


@pytest.mark.parametrize(
    "text", ["ВЫИГРЫШ! ПИШИТЕ В ЛИЧКУ", "Bıtcoın profıt", "ﬆop, ſubscribe to my channel"]
)
def test_lure_counts_keep_ignorecase_matches(text: str) -> None:
    for pattern in _LURES:
        assert _agree(pattern, text)


def test_qq_in_any_case_is_a_contact_lure() -> None:
    """The pattern was written "QQ" and read lower-case text: it never matched."""
    for text in ("加QQ 123456789 详谈", "加qq 123456789", "QQ号 123456789", "QQ: 123456789"):
        assert spamlists.list_signals(text, [])["contact_lure"] > 0


def test_qq_inside_a_link_id_is_no_lure() -> None:
    text = "great lyrics www.youtube.com/watch?v=yUTTX04oyqQ"
    assert spamlists.list_signals(text, ["youtube.com"])["contact_lure"] == 0


def test_grouping_keeps_which_alternative_wins() -> None:
    grouped = re.compile(spamlists._grouped(["ab", "a", "abc", "b\\d", "x?y", "ac"], 0))
    plain = re.compile("ab|a|abc|b\\d|x?y|ac")
    for text in ["abc", "ac", "aabcb1y", "xy y", "acab"]:
        assert grouped.findall(text) == plain.findall(text)


def _phrase_reference(words: list[str]) -> tuple[int, int]:
    return (spamlists.phrase_hits(words, spamlists.phrase_table("wp")),
            spamlists.phrase_hits(words, spamlists.phrase_table("smoke")))


def test_one_scan_for_both_phrase_lists_counts_what_each_list_counts() -> None:
    fired = 0
    for text in _shipped_texts():
        words = spamlists.tokens(text)
        assert spamlists.phrase_counts(words) == _phrase_reference(words), text
        fired += spamlists.phrase_counts(words) != (0, 0)
    assert fired > 100  # the comparison saw hits, not only zeros


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted({w for e in list(spamlists.phrase_table("smoke"))[:400]
                                         + list(spamlists.phrase_table("wp"))[:400]
                                         for w in e.split(" ")} | {"the", "a"})), max_size=20))
def test_phrase_scan_agrees_on_generated_word_runs(words: list[str]) -> None:
    assert spamlists.phrase_counts(words) == _phrase_reference(words)


def test_lures_count_as_a_share_of_a_long_text() -> None:
    """Three money words saturate the money lure in a short promotion, not in a
    long comment that talks about money; ``lure_words=0`` reads plain counts, as
    models fitted before the share did."""
    promo = "Earn $500 per day, guaranteed income from home"
    rant = ("The council spent $2 million of our income tax dollars on it. "
            + "The roads are worse every year and nobody answers for it. " * 10)
    assert list_signals(promo, [])["money_lure"] == 1.0
    n = len(tokens(rant))
    assert n > 3 * LURE_WORDS
    assert list_signals(rant, [])["money_lure"] == pytest.approx(3 / (n / LURE_WORDS))
    assert list_signals(rant, [], lure_words=0)["money_lure"] == 1.0
    # up to LURE_WORDS x the saturation count of words, nothing changes
    short = "win a prize, claim your cash prize now at our casino"
    assert list_signals(short, []) == list_signals(short, [], lure_words=0)
