"""The check flow shared by the JSON API and the wire-compatible endpoints:
score, record, count. Storage failures never cost a site its verdict.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from service import metrics
from service.api.comments import comment_fields
from service.resources import Resources
from service.scoring.site_rules import site_ruleset
from service.scoring.verdicts import (
    DEFAULT_RULES,
    GUARANTEED_SPAM_RULE,
    Outcome,
    Rule,
    score_comments,
)
from service.store import writebehind
from service.store.db import CheckRecord, guid_issued, now, signed_guid
from training.text import Comment

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    guid: str
    outcome: Outcome
    cached: bool = False
    # The reasons as dicts, built once for the answer and the stored check (not kept
    # on the outcome: a cached outcome would then hold them as long as it is cached).
    reasons: list[dict[str, Any]] | None = None

    def reason_dicts(self) -> list[dict[str, Any]]:
        if self.reasons is None:
            self.reasons = self.outcome.reason_dicts()
        return self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {**self.outcome.to_dict(self.reason_dicts()), "guid": self.guid,
                "cached": self.cached}


def check_comments(
    res: Resources,
    comments: list[Comment],
    *,
    site_id: int | None,
    source: str,
    is_test: bool = False,
    store: bool = True,
    toxicity: list[dict[str, Any] | None] | None = None,
) -> list[CheckResult]:
    """Score ``comments`` and record each check (unless ``store`` is false)."""
    scorer = res.models.scorer()
    remembered = _remembered(res, site_id, comments)
    if any(r is not None for r in remembered):
        # A labelled comment (or a repeat of labelled spam) answers with its label;
        # the others are scored as usual.
        rest = [c for c, r in zip(comments, remembered, strict=True) if r is None]
        scored_rest = iter(_score(res, scorer, rest, site_id)) if rest else iter(())
        scored = [
            (r.outcome(scorer.version), False) if r is not None else next(scored_rest)
            for r in remembered
        ]
    else:
        scored = _score(res, scorer, comments, site_id)
    secret = res.settings.secret_key
    results = [CheckResult(signed_guid(secret), o, cached) for o, cached in scored]
    return _finish_check(res, comments, results, site_id=site_id, source=source,
                         is_test=is_test, store=store, toxicity=toxicity)


def _remembered(res: Resources, site_id: int | None, comments: list[Comment]) -> list[Any]:
    memory = res.label_memory
    if memory is None:
        return [None] * len(comments)
    memory.refresh()
    return [memory.match(site_id, c) for c in comments]


def _score(
    res: Resources, scorer: Any, comments: list[Comment], site_id: int | None
) -> list[tuple[Outcome, bool]]:
    """Rules, verdict cache and model for comments that carry no label."""
    deadline = time.monotonic() + res.settings.scoring_budget_seconds
    ruleset = site_ruleset(res, site_id)
    rules: tuple[Rule, ...] = DEFAULT_RULES if ruleset is None else (*DEFAULT_RULES, ruleset)
    site_cache = res.site_settings
    thresholds = site_cache.thresholds(site_id) if site_cache is not None else None
    thresholds = discard_where_known(scorer, site_cache, site_id, thresholds)
    cache = res.cache  # flood counts + verdict cache
    if cache is not None:
        # A site's lists and thresholds are part of its verdicts: a change to either is
        # never answered from a stale cached verdict.
        context = ""
        if (ruleset and ruleset.fingerprint) or thresholds:
            fingerprint = ruleset.fingerprint if ruleset else ""
            context = f"{site_id}:{fingerprint}:{sorted((thresholds or {}).items())}"
        scored = cache.score(scorer, comments, context, rules, thresholds, deadline)
    else:
        scored = [(o, False) for o in score_comments(scorer, comments, rules, thresholds, deadline)]
    return scored


NEVER = float("inf")  # a discard threshold no probability reaches
NO_SITE = "(no site)"  # training.labels.NO_SITE: labels taken without a site key


def discard_where_known(
    scorer: Any, site_cache: Any, site_id: int | None, thresholds: dict[str, float] | None
) -> dict[str, float] | None:
    """Discard only where the model's discard precision is known for this site.

    A retrained model lists the sites whose own held-out labels showed 99.5 %
    (``metadata["discard_sites"]``, training/retrain.py); elsewhere, a new site
    above all, its discard threshold was measured on other kinds of text, so
    nothing is discarded there (the verdict stays spam). A site that set its
    own discard threshold (``commentmod sites thresholds``) keeps it.
    """
    if thresholds and "discard" in thresholds:
        return thresholds
    known: dict[str, float] = scorer.model.metadata.get("discard_sites") or {}
    url = NO_SITE if site_id is None else (
        site_cache.url(site_id) if site_cache is not None else None)
    limit = known.get(url) if url is not None else None
    return {**(thresholds or {}), "discard": NEVER if limit is None else float(limit)}


def _finish_check(
    res: Resources,
    comments: list[Comment],
    results: list[CheckResult],
    *,
    site_id: int | None,
    source: str,
    is_test: bool,
    store: bool,
    toxicity: list[dict[str, Any] | None] | None,
) -> list[CheckResult]:
    """Count, record (write-behind or now) and shadow the answered checks."""
    received = now()
    for r in results:
        metrics.verdict_counter(r.outcome.verdict.value, source).inc()
    if store:
        records = [
            CheckRecord(
                guid=r.guid,
                site_id=site_id,
                source=source,
                content=c.content,
                fields=comment_fields(c),
                extra=_extra(c),
                spam_probability=r.outcome.spam_probability,
                verdict=r.outcome.verdict.value,
                discard=r.outcome.discard,
                reasons=r.reason_dicts(),
                model_version=r.outcome.model_version,
                # Akismet's test author is a site testing its integration: its check
                # is kept, as test traffic, out of the moderation queue and the stats.
                is_test=is_test or r.outcome.rule == GUARANTEED_SPAM_RULE,
                toxicity=toxicity[i] if toxicity else None,
                received_at=received,
            )
            for i, (c, r) in enumerate(zip(comments, results, strict=True))
        ]
        writebehind.record(res, records)  # journaled, then committed off the request path
    shadow = res.shadow
    if shadow is not None:  # a candidate scores the same comments; answers are unchanged
        # (with write-behind the check is not in the database yet: comment_id stays NULL)
        shadow.observe(comments, [r.outcome for r in results], [r.guid for r in results], store)
    return results


def _extra(c: Comment) -> dict[str, Any]:
    extra: dict[str, Any] = dict(c.extra)
    for name in ("honeypot", "user_role", "article_published_at"):
        if getattr(c, name):
            extra[name] = getattr(c, name)
    return extra


def record_feedback(
    res: Resources,
    *,
    label: str,
    source: str,
    actor: str,
    site_id: int | None,
    guid: str = "",
    comment: Comment | None = None,
    is_test: bool = False,
) -> tuple[int | None, int | None]:
    """Store a spam/ham label from a site or a moderator, then tell the listeners
    (the verdict cache drops the comment's cached verdict). Returns (comment id, label id).

    A label by guid alone for a check that another worker has not recorded yet is
    kept pending and joined when the check lands: then (None, None). A label that
    cannot be committed raises StorageError: it is never acknowledged.
    """
    writer = res.write_behind
    if writer is not None:
        writer.flush()  # a label for a check still queued here must find its comment
    content = comment.content if comment is not None else ""
    fields = comment_fields(comment) if comment is not None else {}
    comment_id, label_id = res.store.feedback(
        label=label, source=source, actor=actor, site_id=site_id, guid=guid,
        content=content, fields=fields, is_test=is_test,
        issued=bool(guid) and guid_issued(guid, res.settings.secret_key),
    )
    if comment_id is not None:
        for listener in res.on_feedback:
            listener(comment_id, comment)
    return comment_id, label_id
