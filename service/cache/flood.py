"""The flood signal: how often the same text (and the same client address) was seen
recently, across all sites.

Counts are sliding-window estimates from two fixed slots (the current one and
the one before, weighted by how much of it is still inside the window): Redis
``INCR`` counters with a TTL when Redis is configured and up, a bounded
in-process table otherwise (then each worker counts only what it saw).

A frequent *short* reply ("thanks!", "+1", "great article") is not a flood:
only texts with a link, or of at least ``SUBSTANTIAL_WORDS`` words and
``SUBSTANTIAL_CHARS`` characters, count towards the model's flood signal, the
flood rule and the reasons.

The model reads ``Comment.flood_count``; to keep cached verdicts reusable, the
count is bucketed (:data:`BUCKETS` plus the flood rule's threshold) and the
model and the rule see the bucket's lower bound,
so a verdict is a pure function of (fields, model version, bucket).
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from service.scoring.model import Reason, Scorer
from service.scoring.verdicts import Rule, RuleHit
from training.text import URL_RE, Comment, normalise_text

SUBSTANTIAL_WORDS = 8
SUBSTANTIAL_CHARS = 40
# Lower bounds of the flood buckets. The model's flood signal saturates at 51.
BUCKETS: tuple[int, ...] = (1, 2, 3, 6, 11, 21, 51)
# Counts below these are not worth a reason.
TEXT_REASON_MIN = 3
IP_REASON_MIN = 10


@dataclass(frozen=True)
class FloodCounts:
    text: int  # same normalised text, all sites, in the window (this one included)
    ip: int  # comments from the same client address in the window (0: no address)
    substantial: bool  # whether the text may count as a flood at all


def bucket_of(counts: FloodCounts, bounds: tuple[int, ...]) -> int:
    """Index of the bucket the text count falls in; short replies are always bucket 0."""
    if not counts.substantial:
        return 0
    return max(bisect_right(bounds, counts.text) - 1, 0)


def buckets_for(spam_count: int) -> tuple[int, ...]:
    """The bucket bounds with the flood rule's threshold among them."""
    extra = {spam_count} if spam_count > 0 else set()
    return tuple(sorted({*BUCKETS, *extra}))


def rule_bounds(spam_count: int) -> tuple[int, ...]:
    """The buckets when only the flood rule reads the count: below or at its threshold."""
    return (1, spam_count) if spam_count > 1 else (1,)


def model_reads_flood(scorer: Scorer) -> bool:
    """Whether the model's flood signal has a weight (a linear model trained without
    flood data has none); unknown model kinds are assumed to read it."""
    weight = scorer.signal_weight("flood")
    return weight is None or weight != 0.0


@dataclass(frozen=True)
class FloodKeys:
    """What the counters of one comment are keyed by (normalised once per check)."""

    text: str  # digest of the normalised text
    ip: str  # digest of the client address; empty without one
    substantial: bool


# A repeat (a cache hit, a flood) is normalised once per worker, not once per check:
# the text keys of recent short comments are remembered (at most 1,024 of up to
# 1,000 characters: about 1 MB at worst).
MEMO_CHARS = 1_000


def flood_keys(c: Comment) -> FloodKeys:
    content = c.content
    text, substantial = (
        _text_keys_memo(content) if len(content) <= MEMO_CHARS else _text_keys(content)
    )
    return FloodKeys(text, ip_digest(c.user_ip), substantial)


def _text_keys(content: str) -> tuple[str, bool]:
    normalised = normalise_text(content)
    return _digest(normalised), _substantial(content, normalised)


_text_keys_memo = functools.lru_cache(maxsize=1024)(_text_keys)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def text_digest(content: str) -> str:
    return _digest(normalise_text(content))


def ip_digest(ip: str) -> str:
    return _digest(ip.strip().lower()) if ip.strip() else ""


def is_substantial(content: str) -> bool:
    """Could repeating this text be a flood? Links always; otherwise long texts only."""
    return _substantial(content, normalise_text(content))


def _substantial(content: str, normalised: str) -> bool:
    if URL_RE.search(content):
        return True
    return len(normalised) >= SUBSTANTIAL_CHARS and len(normalised.split()) >= SUBSTANTIAL_WORDS


def slot_of(now: float, window: int) -> tuple[int, float]:
    """The current slot number and how far into it we are (0..1)."""
    slot = int(now // window)
    return slot, (now - slot * window) / window


def estimate(current: int, previous: int, progress: float) -> int:
    """Sliding-window estimate: all of this slot, the part of the last one still inside."""
    return current + math.floor(previous * (1.0 - progress))


def describe_window(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"


def flood_reasons(counts: FloodCounts, window: int) -> list[Reason]:
    """Reasons worth showing a moderator, with the real (not bucketed) counts."""
    span = describe_window(window)
    reasons = []
    if counts.substantial and counts.text >= TEXT_REASON_MIN:
        reasons.append(
            Reason(
                "feature",
                f"the same text was posted {counts.text} times in the last {span}",
                "spam",
                0.0,
            )
        )
    if counts.ip >= IP_REASON_MIN:
        reasons.append(
            Reason(
                "feature",
                f"{counts.ip} comments came from the same address in the last {span}",
                "spam",
                0.0,
            )
        )
    return reasons


def flood_rule(spam_count: int, thresholds: dict[str, float]) -> Rule:
    """Spam (not discarded) once the same substantial text was seen ``spam_count`` times.

    The comment's ``flood_count`` is already zero-or-one for short replies.
    """

    def rule(c: Comment) -> RuleHit | None:
        if spam_count <= 0 or c.flood_count < spam_count:
            return None
        return RuleHit(
            "flood",
            f"the same text was posted at least {spam_count} times recently (flood rule)",
            thresholds["spam"],
        )

    return rule


class LocalCounters:
    """The in-process fallback: the same slots, at most ``max_keys`` keys.

    Full, it evicts one entry at a time, the least recently seen, never the
    whole table. A segmented LRU keeps a flood from being pushed out by
    traffic: a key seen once waits in *probation*; seen again while its count
    is live, it moves to *protected* (at most ``protected_share`` of the keys,
    whose least recent entry falls back to probation when it is full). Room is
    made from probation first, so no number of texts seen once (100k unique
    comments, say) can make a worker forget a flood in progress.
    """

    def __init__(
        self,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.time,
        protected_share: float = 0.5,
    ) -> None:
        self.max_keys = max_keys
        self.protected_max = max(1, int(max_keys * protected_share))
        self._clock = clock
        # key -> [slot, count in that slot, count in the slot before]
        self._probation: OrderedDict[str, list[int]] = OrderedDict()
        self._protected: OrderedDict[str, list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._probation) + len(self._protected)

    def __contains__(self, key: str) -> bool:
        return key in self._probation or key in self._protected

    def incr(self, key: str, window: int) -> int:
        slot, progress = slot_of(self._clock(), window)
        with self._lock:
            entry = self._protected.get(key)
            if entry is not None:
                self._protected.move_to_end(key)
            else:
                entry = self._probation.pop(key, None) or [slot, 0, 0]
            if entry[0] != slot:  # roll the slots forward
                entry[2] = entry[1] if entry[0] == slot - 1 else 0
                entry[0], entry[1] = slot, 0
            entry[1] += 1
            if key not in self._protected:
                self._file(key, entry)
            previous = entry[2]
            current = entry[1]
        return estimate(current, previous, progress)

    def _file(self, key: str, entry: list[int]) -> None:
        """Place a key that is not protected: seen again while live, it is promoted."""
        if entry[1] + entry[2] >= 2:
            self._protected[key] = entry
            if len(self._protected) > self.protected_max:
                old, demoted = self._protected.popitem(last=False)
                self._probation[old] = demoted
        else:
            self._probation[key] = entry
        while len(self) > self.max_keys:
            segment = self._probation or self._protected
            segment.popitem(last=False)


class SharedCounts:
    """Flood counts learnt from Redis plus this worker's increments not sent yet.

    With Redis, a repeat answered from the worker's own verdict tier counts here
    instead of in a round trip of its own: :meth:`take` hands the increments to
    the cache's sync thread, which sends them to Redis in one pipeline every
    ``cache_sync_seconds`` and hands back (:meth:`learn`) the totals every
    worker on every host has sent. A count therefore lags what all workers saw
    by at most two sync intervals (this worker's and the sender's). A key whose
    total was not learnt within ``fresh_seconds`` in the current slot is not
    estimated here (:meth:`estimate` returns None): that check asks Redis, as
    a first sighting does.

    Bounded to ``max_keys`` learnt keys, least recently used first out; unsent
    increments of an evicted key are still sent.
    """

    def __init__(
        self,
        max_keys: int,
        fresh_seconds: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_keys = max_keys
        self.fresh_seconds = fresh_seconds
        self._clock = clock
        self._monotonic = monotonic
        # name -> [slot, total in Redis, previous slot's total, when learnt (monotonic)]
        self._known: OrderedDict[str, list[float]] = OrderedDict()
        self._pending: dict[tuple[str, int], int] = {}
        self._inflight: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._known)

    def _unsent(self, name: str, slot: int) -> int:
        key = (name, slot)
        return self._pending.get(key, 0) + self._inflight.get(key, 0)

    def estimate(self, name: str, window: int) -> int | None:
        """This check's count (itself included) if known fresh enough, else None."""
        slot, progress = slot_of(self._clock(), window)
        entry = self._known.get(name)
        if entry is None or entry[0] != slot:
            return None
        if self._monotonic() - entry[3] > self.fresh_seconds:
            return None
        current = int(entry[1]) + self._unsent(name, slot) + 1
        return estimate(current, int(entry[2]), progress)

    def add(self, name: str, window: int) -> None:
        """Count one sighting here, to be sent with the next :meth:`take`."""
        slot, _ = slot_of(self._clock(), window)
        key = (name, slot)
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1

    def learn(self, name: str, slot: int, total: int, previous: int) -> None:
        """Redis's total for ``name`` in ``slot`` (every worker's increments sent so far)."""
        with self._lock:
            self._known[name] = [slot, total, previous, self._monotonic()]
            self._known.move_to_end(name)
            while len(self._known) > self.max_keys:
                self._known.popitem(last=False)

    def with_unsent(self, name: str, slot: int, total: int) -> int:
        """A total read from Redis plus what this worker counted and has not sent."""
        return total + self._unsent(name, slot)

    def take(self) -> list[tuple[str, int, int]]:
        """The increments to send now: (name, slot, n); they stay counted until learnt."""
        with self._lock:
            if not self._pending:
                return []
            taken = self._pending
            self._pending = {}
            for key, n in taken.items():
                self._inflight[key] = self._inflight.get(key, 0) + n
        return [(name, slot, n) for (name, slot), n in taken.items()]

    def _landed(self, key: tuple[str, int], n: int) -> None:
        """``n`` increments of ``key`` are no longer in flight (call with the lock)."""
        left = self._inflight.get(key, 0) - n
        if left > 0:
            self._inflight[key] = left
        else:
            self._inflight.pop(key, None)

    def sent(self, name: str, slot: int, n: int, total: int, previous: int) -> None:
        """Redis took ``n`` increments and answered its new total."""
        with self._lock:
            self._landed((name, slot), n)
        self.learn(name, slot, total, previous)

    def unsent(self, items: list[tuple[str, int, int]]) -> None:
        """Redis was not reached: the increments wait for the next sync (bounded)."""
        with self._lock:
            for name, slot, n in items:
                key = (name, slot)
                self._landed(key, n)
                if len(self._pending) < self.max_keys:
                    self._pending[key] = self._pending.get(key, 0) + n

    def clear(self) -> None:
        with self._lock:
            self._known.clear()
            self._pending.clear()
            self._inflight.clear()
