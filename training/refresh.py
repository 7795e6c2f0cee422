"""Learning within minutes: retrain, gate and promote when a site has given new labels.

A refresh is due when at least ``min_labels`` labels are newer than what the
serving model was fit on (its ``trained_on`` record), or when any are and the
serving model is older than ``max_minutes``. It runs the same retraining as
``commentmod train`` (stored labels weigh more than the shipped base corpus),
the same gate, and on a pass the same promotion, which every worker picks up
through the hot reload. Every refresh that ran is in the registry's history:
a promotion (actor ``refresh``) or a ``refused`` event with the gate's figures.
``commentmod refresh`` runs one; ``--loop`` (started beside gunicorn when
``COMMENTMOD_AUTO_REFRESH`` is on) keeps checking.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import false, func, select

from service.registry.versions import REFRESH_ACTOR, Registry, refused_by_gate
from service.store import schema as t
from service.store.db import Store
from training.gate import trained_on

log = logging.getLogger(__name__)

LOCK = ".refresh.lock"


@dataclass
class Due:
    due: bool
    new_labels: int
    why: str


def _labels_after(store: Store, label_id: int) -> int:
    q = select(func.count()).select_from(t.labels).where(
        t.labels.c.task == "spam", t.labels.c.is_test == false(), t.labels.c.id > label_id)
    return int(store.read(lambda c: c.execute(q).scalar()) or 0)


def _labels_since(store: Store, when: datetime) -> int:
    q = select(func.count()).select_from(t.labels).where(
        t.labels.c.task == "spam", t.labels.c.is_test == false(), t.labels.c.created_at > when)
    return int(store.read(lambda c: c.execute(q).scalar()) or 0)


def is_due(store: Store, registry: Registry, min_labels: int, max_minutes: float,
           now: datetime | None = None) -> Due:
    """Whether enough labels arrived since the serving model was trained."""
    now = now or datetime.now(UTC)
    version = registry.current("spam")
    if version is None:
        return Due(True, 0, "no serving model")
    meta = registry.metadata(version)
    record = trained_on(meta)
    created = datetime.fromisoformat(str(meta.get("created_at")))
    if record.labels_up_to is not None:
        n = _labels_after(store, record.labels_up_to)
    else:
        n = _labels_since(store, created)
    age = (now - created).total_seconds() / 60
    if n >= min_labels:
        return Due(True, n, f"{n} new labels (refresh after {min_labels})")
    if n and age >= max_minutes:
        return Due(True, n, f"{n} new labels and the model is {age:.0f} minutes old "
                            f"(refresh after {max_minutes:g})")
    return Due(False, n, f"{n} new labels, model {age:.0f} minutes old: not due")


@contextmanager
def refresh_lock(registry: Registry) -> Iterator[bool]:
    """One refresh at a time per model directory; yields False when another runs."""
    registry.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(registry.root / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def refresh(store: Store, registry: Registry, *, min_labels: int, max_minutes: float,
            force: bool = False) -> dict[str, Any]:
    """Run one refresh if due (or ``force``); what happened, for the CLI and the logs."""
    from training.retrain import retrain

    store.join_pending()
    due = is_due(store, registry, min_labels, max_minutes)
    if not (due.due or force):
        return {"ran": False, "why": due.why, "new_labels": due.new_labels}
    with refresh_lock(registry) as mine:
        if not mine:
            return {"ran": False, "why": "another refresh is running", "new_labels": due.new_labels}
        result = retrain(store, registry, progress=False)
    gate = result.gate
    detail = {"new_labels": due.new_labels, "why": due.why, "gate": gate.verdict}
    if gate.passed:
        registry.set_current(result.version, action="promote", actor=REFRESH_ACTOR,
                             detail=detail)
        result.promoted = True
    else:
        registry.note(result.version, "refused", actor=REFRESH_ACTOR,
                      detail={**detail, **(refused_by_gate({"gate": gate.to_dict()}) or {})})
    log.info("model.refresh", extra={"version": result.version, "promoted": result.promoted,
                                     "new_labels": due.new_labels})
    return {"ran": True, "version": result.version, "promoted": result.promoted,
            "new_labels": due.new_labels, "why": due.why, "gate": gate.to_dict(),
            "summary": {k: v for k, v in result.summary.items() if k != "description"}}
