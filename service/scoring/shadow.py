"""Shadow mode: a candidate model scores live traffic beside the serving one.

``commentmod models shadow VERSION`` writes a ``shadow`` row to
``model_events`` (``--off`` writes ``shadow-off``); each worker looks at the
newest such row at most every ``reload_interval_seconds`` and loads the
candidate with the same checks as a serving model. The candidate's verdicts
never reach the answer: they are stored in ``shadow_results`` beside the
serving verdict, and ``commentmod models shadow-report`` shows agreement and
disagreements. While no shadow is set, the cost per request is one clock
comparison.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from service.errors import CommentmodError
from service.registry.versions import Registry
from service.scoring.model import Scorer, load_scorer
from service.scoring.verdicts import Outcome, score_comments
from service.store import schema as t
from service.store.db import Store
from training.text import Comment

log = logging.getLogger(__name__)

SHADOW_ON = "shadow"
SHADOW_OFF = "shadow-off"


def shadow_version(store: Store, family: str = "spam") -> str | None:
    """The candidate in shadow for ``family``, or None."""
    q = (
        select(t.model_events.c.version, t.model_events.c.action)
        .where(
            t.model_events.c.family == family,
            t.model_events.c.action.in_((SHADOW_ON, SHADOW_OFF)),
        )
        .order_by(t.model_events.c.id.desc())
        .limit(1)
    )
    row = store.read(lambda c: c.execute(q).first())
    return str(row.version) if row is not None and row.action == SHADOW_ON else None


def set_shadow(store: Store, version: str | None, family: str = "spam", actor: str = "cli") -> None:
    with store.transaction() as c:
        c.execute(
            insert(t.model_events).values(
                family=family,
                version=version or "",
                previous=None,
                action=SHADOW_ON if version else SHADOW_OFF,
                actor=actor,
                at=datetime.now(UTC),
            )
        )
    store.audit(actor, "model.shadow", version or "off", {"family": family})


class ShadowModel:
    """The current shadow candidate of one worker, refreshed every ``interval`` seconds."""

    def __init__(
        self, store: Store, registry: Registry, family: str = "spam", interval: float = 2.0
    ) -> None:
        self.store = store
        self.registry = registry
        self.family = family
        self.interval = interval
        self.scorer: Scorer | None = None
        self._wanted: str | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()

    def current(self, force: bool = False) -> Scorer | None:
        now = time.monotonic()
        if force or now >= self._next_check:
            self._refresh(now)
        return self.scorer

    def _refresh(self, now: float) -> None:
        with self._lock:
            self._next_check = now + self.interval
            try:
                wanted = shadow_version(self.store, self.family)
            except CommentmodError:
                return
            if wanted == self._wanted:
                return
            self._wanted = wanted
            if wanted is None:
                self.scorer = None
                return
            try:
                self.scorer = load_scorer(self.registry, wanted)
            except Exception as exc:  # a bad candidate never disturbs serving
                self.scorer = None
                log.error("shadow.refused", extra={"version": wanted, "error": str(exc)})

    def observe(
        self,
        comments: Sequence[Comment],
        outcomes: Sequence[Outcome],
        guids: Sequence[str],
        stored: bool,
    ) -> None:
        """Score ``comments`` with the candidate and record both verdicts."""
        candidate = self.current()
        if candidate is None or not comments:
            return
        try:
            shadow = score_comments(candidate, comments)
            record_shadow(self.store, outcomes, shadow, guids if stored else [])
        except Exception as exc:  # shadow mode must never cost a site its verdict
            log.warning("shadow.failed", extra={"error": str(exc)})


def record_shadow(
    store: Store, serving: Sequence[Outcome], shadow: Sequence[Outcome], guids: Sequence[str]
) -> None:
    now = datetime.now(UTC)
    with store.transaction() as c:
        ids: dict[str, int] = {}
        if guids:
            q = select(t.comments.c.guid, t.comments.c.id).where(t.comments.c.guid.in_(guids))
            ids = {r.guid: int(r.id) for r in c.execute(q)}
        rows = [
            dict(
                comment_id=ids.get(guids[i]) if guids else None,
                serving_version=s.model_version,
                candidate_version=h.model_version,
                serving_probability=s.spam_probability,
                candidate_probability=h.spam_probability,
                serving_verdict=s.verdict.value,
                candidate_verdict=h.verdict.value,
                at=now,
            )
            for i, (s, h) in enumerate(zip(serving, shadow, strict=True))
        ]
        c.execute(insert(t.shadow_results), rows)


def shadow_report(store: Store, version: str, examples: int = 10) -> dict[str, Any]:
    """Agreement of ``version`` with the serving model on the traffic it shadowed."""
    sr = t.shadow_results
    q = (
        select(sr, t.comments.c.content)
        .select_from(sr.outerjoin(t.comments, t.comments.c.id == sr.c.comment_id))
        .where(sr.c.candidate_version == version)
        .order_by(sr.c.id)
    )
    rows = store.read(lambda c: [dict(r._mapping) for r in c.execute(q)])
    pairs = Counter((r["serving_verdict"], r["candidate_verdict"]) for r in rows)
    agree = sum(n for (a, b), n in pairs.items() if a == b)
    flips = [r for r in rows if r["serving_verdict"] != r["candidate_verdict"]]
    return {
        "candidate": version,
        "n": len(rows),
        "agreement": agree / len(rows) if rows else float("nan"),
        "serving_versions": sorted({r["serving_version"] for r in rows}),
        "pairs": {f"{a}->{b}": n for (a, b), n in sorted(pairs.items())},
        "mean_abs_difference": (
            sum(abs(r["serving_probability"] - r["candidate_probability"]) for r in rows)
            / len(rows)
            if rows
            else float("nan")
        ),
        "disagreements": [
            {
                "comment_id": r["comment_id"],
                "serving": f"{r['serving_verdict']} {r['serving_probability']:.3f}",
                "candidate": f"{r['candidate_verdict']} {r['candidate_probability']:.3f}",
                "content": (r["content"] or "")[:160],
            }
            for r in flips[-examples:]
        ],
    }
