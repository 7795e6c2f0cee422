"""From a comment to a verdict: rules first, then the model, then thresholds.

Rules that decide alone (Akismet's test conventions, a filled honeypot, site
allow/block lists) are named in the reasons like any model feature.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from service.errors import ScoringBudgetExceeded
from service.scoring.model import Reason, Scorer
from training.text import FAMILIAR_SHARE, Comment

GUARANTEED_SPAM_AUTHORS = frozenset({"akismet-guaranteed-spam", "viagra-test-123"})
GUARANTEED_SPAM_EMAIL = "akismet-guaranteed-spam@example.com"
GUARANTEED_SPAM_RULE = "guaranteed_spam"  # the rule's name in an Outcome


class Verdict(StrEnum):
    HAM = "ham"
    UNSURE = "unsure"
    SPAM = "spam"


@dataclass(frozen=True)
class RuleHit:
    """A rule that settles the verdict: ``probability`` is what it answers."""

    name: str
    description: str
    probability: float
    discard: bool = False


Rule = Callable[[Comment], RuleHit | None]


def akismet_test_rule(c: Comment) -> RuleHit | None:
    if (
        c.author.strip().lower() in GUARANTEED_SPAM_AUTHORS
        or c.author_email.strip().lower() == GUARANTEED_SPAM_EMAIL
    ):
        return RuleHit(GUARANTEED_SPAM_RULE, "Akismet test author 'akismet-guaranteed-spam'", 1.0)
    if c.user_role.strip().lower() == "administrator":
        return RuleHit("administrator", "posted by a site administrator", 0.0)
    return None


def honeypot_rule(c: Comment) -> RuleHit | None:
    if c.honeypot.strip():
        return RuleHit(
            "honeypot", "the hidden honeypot field was filled in (bots do that)", 1.0, discard=True
        )
    return None


DEFAULT_RULES: tuple[Rule, ...] = (akismet_test_rule, honeypot_rule)


@dataclass(slots=True)
class Outcome:
    verdict: Verdict
    spam_probability: float
    discard: bool
    reasons: list[Reason]
    model_version: str
    rule: str | None = None

    def to_dict(self, reasons: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The answer's form; ``reasons`` when the caller already built them."""
        return {
            "verdict": self.verdict.value,
            "spam_probability": round(self.spam_probability, 6),
            "discard": self.discard,
            "reasons": self.reason_dicts() if reasons is None else reasons,
            "model_version": self.model_version,
        }

    def reason_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.reasons]

    @property
    def is_spam(self) -> bool:
        return self.verdict is Verdict.SPAM


def decide(probability: float, thresholds: dict[str, float]) -> tuple[Verdict, bool]:
    """Verdict and discard flag for a probability under the model's thresholds."""
    if probability >= thresholds["spam"]:
        return Verdict.SPAM, probability >= thresholds["discard"]
    if probability >= thresholds["unsure"]:
        return Verdict.UNSURE, False
    return Verdict.HAM, False


def score_comments(
    scorer: Scorer,
    comments: Sequence[Comment],
    rules: Sequence[Rule] = DEFAULT_RULES,
    thresholds: dict[str, float] | None = None,
    deadline: float | None = None,
) -> list[Outcome]:
    """Score comments in one model call; rule hits override the model's verdict.

    With a ``deadline`` (``time.monotonic()``), comments are scored in chunks and a
    batch still unscored when the deadline passes is refused with
    :class:`ScoringBudgetExceeded`: a worker is never held near its timeout.
    """
    limits = {**scorer.thresholds, **(thresholds or {})}
    hits: list[RuleHit | None] = []
    for c in comments:
        hits.append(next((h for rule in rules if (h := rule(c)) is not None), None))
    pending = [c for c, h in zip(comments, hits, strict=True) if h is None]
    scored = iter(_score_within(scorer, pending, deadline)) if pending else iter(())
    out = []
    for comment, hit in zip(comments, hits, strict=True):
        if hit is not None:
            # A rule settles the verdict; only a rule that says so makes it discardable.
            verdict, _ = decide(hit.probability, limits)
            direction = "ham" if verdict is Verdict.HAM else "spam"
            reason = Reason("rule", hit.description, direction, 0.0)
            out.append(
                Outcome(
                    verdict,
                    hit.probability,
                    hit.discard,
                    [reason],
                    scorer.version,
                    rule=hit.name,
                )
            )
            continue
        prob, reasons = next(scored)
        verdict, discard = decide(prob, limits)
        if verdict is not Verdict.HAM and scorer.by_signals(comment):
            verdict, reasons = _by_signals(prob, limits["spam"], scorer.backoff_spam(), reasons)
        if discard:
            verdict, discard, reasons = _unfamiliar(scorer, comment, verdict, reasons)
        out.append(Outcome(verdict, prob, discard, reasons, scorer.version))
    return out


BY_SIGNALS_REASON = (
    "text in words the model has not learned (another language?): judged by its links, "
    "contacts and other signals alone"
)


def _by_signals(
    prob: float, spam: float, own_spam: float, reasons: list[Reason]
) -> tuple[Verdict, list[Reason]]:
    """The verdict on a comment the model cannot read, scored by its signals alone
    (training.features.BackoffLogistic), which says so first.

    Spam needs the signals model's own spam threshold (``own_spam``: 95 % precision
    on its out-of-fold scores); a score between the text model's ``spam``
    threshold and it is ``unsure`` (a link or a phone number alone, or a word of
    money talk, in a reader's comment on a site in another language); anything
    below is ham. The text model's ``unsure`` threshold does not apply: a plain
    comment scores the signals model's base rate, above it, and every comment of
    such a site would wait for a moderator."""
    verdict = (Verdict.SPAM if prob >= own_spam else
               Verdict.UNSURE if prob >= spam else Verdict.HAM)
    direction = "ham" if verdict is Verdict.HAM else "spam"
    return verdict, [Reason("rule", BY_SIGNALS_REASON, direction, 0.0), *reasons]


def _unfamiliar(
    scorer: Scorer, comment: Comment, verdict: Verdict, reasons: list[Reason]
) -> tuple[Verdict, bool, list[Reason]]:
    """A comment unlike the model's training text is never discarded: its discard
    precision is unknown there, so a moderator sees it (``unsure``)."""
    share = scorer.familiarity(comment)
    if share is None or share >= FAMILIAR_SHARE:
        return verdict, True, reasons
    why = Reason(
        "rule", f"text unlike what the model was trained on ({1 - share:.0%} of its letters "
        "are in words new to it): a moderator should look", "ham", 0.0,
    )
    return Verdict.UNSURE, False, [why, *reasons]


# Comments scored between two looks at the deadline: the worst chunk (16 comments
# of 20,000 characters of link-like text) took about 2.6 s of CPU, measured.
SCORE_CHUNK = 16


def _score_within(
    scorer: Scorer, comments: Sequence[Comment], deadline: float | None
) -> list[tuple[float, list[Reason]]]:
    if deadline is None or len(comments) <= SCORE_CHUNK:
        return scorer.score(list(comments))
    out: list[tuple[float, list[Reason]]] = []
    for start in range(0, len(comments), SCORE_CHUNK):
        if start and time.monotonic() > deadline:
            raise ScoringBudgetExceeded(
                f"scoring stopped after {start} of {len(comments)} comments: this request "
                "needs more scoring time than one request may take; send fewer or "
                "shorter comments per batch"
            )
        out.extend(scorer.score(list(comments[start : start + SCORE_CHUNK])))
    return out
