"""A label sticks: the next check of a labelled comment answers with its label.

Each worker keeps the newest spam/ham labels of every site in memory, keyed by
a digest of the comment's normalised text (:func:`training.text.model_text`:
case, spacing, markup, look-alike letters, numbers and links folded) and, for
the comment itself, its author:

- ``(site, text, author)``: the newest label of that comment, ham or spam;
- ``(site, text)``: the newest label of that text on the site; when it is spam
  it also catches exact and near-exact repeats by any author.

A label taken by this worker is remembered at once; labels taken by other
workers or hosts (and pending labels joined when their check lands) are read
from the database, by label id, at most every
``settings.label_memory_refresh_seconds``. The memory is consulted before the
verdict cache, so a cached verdict never hides a label. Bounded to
``settings.label_memory_size`` entries: a full memory forgets its oldest tenth.

An entry is small: its key is a 64-bit digest of (kind, site, text digest,
author) and its value one of the few possible :class:`Remembered` answers,
shared, in a plain dict: about 90 bytes an entry (tracemalloc, 100,000 entries;
217 in the OrderedDict it replaced, over 500 as tuples of strings). A worker's
memory grows by little as labels arrive, and stays bounded.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from service import metrics
from service.errors import StorageError
from service.resources import Resources
from service.scoring.model import Reason
from service.scoring.verdicts import Outcome, Verdict
from service.store import schema as t
from service.store.db import Store
from training.text import Comment, model_text

log = logging.getLogger(__name__)

WHO = {"moderator": "a moderator", "site": "the site", "import": "an imported label"}
READ_BATCH = 5_000
EVICT_DIVISOR = 10  # a full memory forgets its oldest tenth at once


@dataclass(frozen=True)
class Remembered:
    label: str  # spam | ham
    source: str  # moderator | site | import
    exact: bool  # the labelled comment itself (text and author), not a repeat

    def outcome(self, model_version: str) -> Outcome:
        who = WHO.get(self.source, self.source)
        what = "" if self.exact else "a repeat of a comment "
        spam = self.label == "spam"
        reason = Reason(
            "rule", f"{what}marked {self.label} by {who}", "spam" if spam else "ham", 0.0
        )
        return Outcome(
            Verdict.SPAM if spam else Verdict.HAM, 1.0 if spam else 0.0, False, [reason],
            model_version, rule="label",
        )


def _row(r: Any) -> tuple[int, int | None, str | None, str, str, str]:
    return (int(r[0]), r[1], r[2], str(r[3] or ""), str(r[4]), str(r[5]))


def text_digest(content: str) -> str:
    """The digest of a comment's model text; a recent short text's is remembered (every
    check of a site with labels asks, and repeats are the common case)."""
    if len(content) <= MEMO_CHARS:
        return _digest_memo(content)
    return _digest(content)


def _digest(content: str) -> str:
    return hashlib.sha256(model_text(content).encode()).hexdigest()[:32]


MEMO_CHARS = 1_000
_digest_memo = functools.lru_cache(maxsize=1024)(_digest)


def _author(comment_author: str) -> str:
    return comment_author.strip().lower()


def _key(*parts: str) -> int:
    """An entry's key: 64 bits of a digest of its parts (a false match among 100,000
    entries: about one check in 10^14)."""
    raw = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


# Every answer the memory can give, built once: entries point at these.
_SHARED: dict[tuple[str, str, bool], Remembered] = {}


def _remembered(label: str, source: str, exact: bool) -> Remembered:
    found = _SHARED.get((label, source, exact))
    if found is None:
        found = _SHARED.setdefault((label, source, exact), Remembered(label, source, exact))
    return found


class LabelMemory:
    """Per-worker memory of labels; see the module doc."""

    def __init__(
        self,
        store: Store,
        *,
        refresh_seconds: float = 1.0,
        size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.size = size
        self._clock = clock
        # A plain dict, in insertion order (half an OrderedDict's size an entry); the
        # newest label of a key is re-inserted at the end.
        self._entries: dict[int, Remembered] = {}
        self._last_id = -1  # -1: nothing read yet
        self._next = 0.0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    # --- writing ------------------------------------------------------------------
    def remember(self, site_id: int | None, content: str, author: str, label: str,
                 source: str) -> None:
        digest = text_digest(content)
        site = str(site_id)
        with self._lock:
            self._put(_key("a", site, digest, _author(author)), _remembered(label, source, True))
            self._put(_key("t", site, digest), _remembered(label, source, False))

    def _put(self, key: int, value: Remembered) -> None:
        entries = self._entries
        entries.pop(key, None)
        entries[key] = value
        if len(entries) > self.size:
            # Full: forget the oldest tenth at once, into a new dict. Deleting from the
            # front of a dict one entry at a time leaves holes every later eviction
            # scans past; a copy is compact and costs O(1) a label over time.
            keep = max(1, self.size - max(1, self.size // EVICT_DIVISOR))
            self._entries = dict(itertools.islice(entries.items(), len(entries) - keep, None))

    def refresh(self, force: bool = False) -> None:
        """Read labels newer than the last one seen (at most every refresh_seconds)."""
        now = self._clock()
        if not force and now < self._next:
            return
        self._next = now + self.refresh_seconds
        try:
            rows = self.store.read(self._read)
        except StorageError as exc:  # the memory ages; answers go on from the model
            metrics.STORE_ERRORS.labels("label_memory").inc()
            log.warning("label_memory.unreadable", extra={"error": exc.message})
            return
        for label_id, site_id, content, author, label, source in rows:
            if content is not None:
                self.remember(site_id, content, author or "", label, source)
            self._last_id = max(self._last_id, int(label_id))

    def _read(self, c: Connection) -> list[tuple[int, int | None, str | None, str, str, str]]:
        lb, cm = t.labels, t.comments
        q = (
            select(lb.c.id, cm.c.site_id, cm.c.content, cm.c.author, lb.c.label, lb.c.source)
            .join(cm, cm.c.id == lb.c.comment_id)
            .where(lb.c.task == "spam", lb.c.is_test.is_(False))
        )
        if self._last_id < 0:  # first read: the newest labels, oldest first
            newest = q.order_by(lb.c.id.desc()).limit(self.size)
            out = [_row(r) for r in c.execute(newest)]
            return out[::-1]
        rows = [
            _row(r)
            for r in c.execute(q.where(lb.c.id > self._last_id).order_by(lb.c.id).limit(READ_BATCH))
        ]
        if len(rows) == READ_BATCH:
            self._next = 0.0  # more to read: next check reads on
        return rows

    # --- reading ------------------------------------------------------------------
    def match(self, site_id: int | None, comment: Comment) -> Remembered | None:
        """The label this comment carries on this site, if any."""
        if not self._entries:
            return None
        digest = text_digest(comment.content)
        site = str(site_id)
        exact = self._entries.get(_key("a", site, digest, _author(comment.author)))
        if exact is not None:
            return exact
        repeat = self._entries.get(_key("t", site, digest))
        if repeat is not None and repeat.label == "spam":
            return repeat
        return None


def init_label_memory(res: Resources) -> LabelMemory | None:
    """Put a memory in ``res.label_memory`` (size 0 turns it off) and have
    every label this worker takes read at once."""
    s = res.settings
    if s.label_memory_size <= 0:
        return None
    memory = LabelMemory(res.store, refresh_seconds=s.label_memory_refresh_seconds,
                         size=s.label_memory_size)
    res.label_memory = memory

    def on_feedback(comment_id: int, comment: Comment | None) -> None:
        memory.refresh(force=True)

    res.on_feedback.append(on_feedback)
    return memory
