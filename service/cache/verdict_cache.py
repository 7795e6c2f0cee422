"""The verdict cache: an in-process LRU in front, Redis behind when configured.

Key: a hash of the model version and of exactly what the verdict depends on,
the comment's :data:`training.features.MODEL_FIELDS` (``created_at`` and
``article_published_at`` enter only through the one thing features derive from
them, the fast-reply flag: otherwise every resubmission would miss), plus the
flood bucket the model saw. A new model version never finds an old verdict.

One Redis round trip per check request does everything a hit needs: one call
of :data:`LOOKUP_SCRIPT` per comment counts the floods (``INCR``) and reads the
comment's invalidation generation and the cached verdict of every flood
bucket. A miss's new verdict is written by a ``SET`` sent in front of the
worker's next lookup, or by the background writer's next tick (``SET`` right
away when there is no writer). Redis failing costs no answer
(service.cache.redis_client): the local tier and local flood counters carry on.

Feedback bumps the comment's generation in Redis (``INCR``): every worker on
every host compares the generation of its local entry with the one read in the
same round trip, so the old verdict is gone everywhere at once. Without Redis
(or while it is down) a worker cannot hear of other workers' feedback; its
local entries are then trusted for ``cache_local_ttl_seconds`` only.

**A repeat without a round trip** (``cache_sync_seconds`` > 0, the default):
feedback also publishes the comment's digest, and each worker's sync thread
(service/cache/sync.py) drops the entries it names. An entry stored while that
subscription was up, and still up, is answered from the worker's own tier with
no Redis call at all, when the flood counts it depends on are known fresh:
the increments are counted in the worker and sent in batches
(:class:`service.cache.flood.SharedCounts`). Anything else (a first sighting,
a flood bucket that moved, a stale count, the subscription down) takes the
round trip above.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from sys import intern
from typing import Any

import orjson
import redis

from service import metrics
from service.cache import flood, keys
from service.cache.redis_client import RedisGate, Script
from service.cache.sync import CacheSync
from service.config import Settings
from service.registry.notify import scoped_channel
from service.resources import Resources
from service.scoring.model import Reason, Scorer
from service.scoring.verdicts import DEFAULT_RULES, Outcome, Rule, Verdict, score_comments
from training.text import MODEL_FIELDS, SIGNAL_INDEX, Comment, signal_vector

# One comment's lookup, run inside Redis: the text and address flood counters
# (INCR this slot, read the last), the invalidation generation and the cached
# verdict of every flood bucket. KEYS: text slot, previous text slot, address
# slot and previous ("" without an address), generation, one verdict key per
# bucket. ARGV: the flood counters' TTL. A single Redis, not Cluster: the keys
# of one call hash to different slots.
LOOKUP_SCRIPT = Script("""
local ttl = tonumber(ARGV[1])
local out = {redis.call('INCR', KEYS[1]), redis.call('GET', KEYS[2]), 0, false}
redis.call('EXPIRE', KEYS[1], ttl)
if KEYS[3] ~= '' then
  out[3] = redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], ttl)
  out[4] = redis.call('GET', KEYS[4])
end
for i = 5, #KEYS do
  out[i] = redis.call('GET', KEYS[i])
end
return out
""")

PENDING_MAX = 2_000  # verdicts a worker keeps for its next round trip, at most
DROPPED_MAX = 10_000  # recent invalidations remembered, so a racing store is not kept
# ... for as long as a check may last (gunicorn's timeout is 30 s): an older one can
# race no check still running, and keeping it would grow a worker with every label.
DROPPED_SECONDS = 60.0

# Fields the key does not take verbatim: the features only read whether the
# comment came within a minute of the article (see key_values).
TIME_FIELDS = ("created_at", "article_published_at")


def fast_reply(c: Comment) -> bool:
    """The fast-reply flag, computed by the features' own code."""
    if not (c.created_at and c.article_published_at):
        return False
    probe = Comment(
        content="", created_at=c.created_at, article_published_at=c.article_published_at
    )
    return signal_vector(probe)[SIGNAL_INDEX["fast_reply"]] > 0


def key_values(c: Comment) -> list[Any]:
    """What a verdict depends on, in MODEL_FIELDS order."""
    values: list[Any] = [getattr(c, name) for name in MODEL_FIELDS if name not in TIME_FIELDS]
    values.append(fast_reply(c))
    return values


def fields_key(c: Comment, context: str = "") -> str:
    """Hash of the comment's verdict-relevant fields, any model version.

    ``context`` is anything else the verdict depends on (per-site rules or
    thresholds, once they exist); empty while rules and thresholds are global.
    """
    return _fields_digest(context, key_values(c))


def _fields_digest(context: str, values: list[Any]) -> str:
    return hashlib.sha256(orjson.dumps([context, values])).hexdigest()[:40]


def verdict_key(model_version: str, fields: str) -> str:
    return hashlib.sha256(f"{model_version}\x00{fields}".encode()).hexdigest()[:40]


def outcome_to_json(o: Outcome) -> dict[str, Any]:
    return {
        "verdict": o.verdict.value,
        "p": o.spam_probability,
        "discard": o.discard,
        # (dataclasses.astuple deep-copies: a tenth of a miss's time went there)
        "reasons": [(r.kind, r.description, r.direction, r.weight) for r in o.reasons],
        "model_version": o.model_version,
        "rule": o.rule,
    }


def outcome_from_json(d: dict[str, Any]) -> Outcome:
    """The verdict Redis holds, as a scored one: its strings interned.

    orjson makes a new string for every value it reads; a verdict answered from
    Redis joins the local tier, and without interning each of its reasons held
    its own copies of "word", "spam" and the model version (about 1 KB more per
    entry than a verdict scored here: 8,000 such entries took 10 MB, tracemalloc).
    """
    rule = d.get("rule")
    return Outcome(
        Verdict(d["verdict"]),
        float(d["p"]),
        bool(d["discard"]),
        [Reason(intern(k), intern(desc), intern(di), float(w)) for k, desc, di, w in d["reasons"]],
        intern(str(d["model_version"])),
        rule=intern(rule) if isinstance(rule, str) else rule,
    )


@dataclass(slots=True)
class Entry:
    outcome: Outcome
    generation: int | None  # None: cached while Redis was not consulted
    created: float
    verified: float = 0.0  # last time Redis confirmed its generation (monotonic)


class LocalTier:
    """A bounded, thread-safe LRU of verdicts, keyed (fields key, verdict key, bucket).

    The keys of each fields key are indexed too: a label drops a comment's verdicts
    (every context and bucket) without scanning the tier, which every worker does
    for every label taken anywhere (pub/sub).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str, int], Entry] = OrderedDict()
        # fields -> its keys (almost always one: a list is a quarter of a set's size)
        self._by_fields: dict[str, list[tuple[str, str, int]]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int]) -> Entry | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None:
                self._data.move_to_end(key)
            return entry

    def put(self, key: tuple[str, str, int], entry: Entry) -> None:
        with self._lock:
            if key not in self._data:
                self._by_fields.setdefault(key[0], []).append(key)
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                old, _ = self._data.popitem(last=False)
                self._unindex(old)

    def _unindex(self, key: tuple[str, str, int]) -> None:
        keys = self._by_fields.get(key[0])
        if keys is not None and key in keys:
            keys.remove(key)
            if not keys:
                del self._by_fields[key[0]]

    def drop(self, key: tuple[str, str, int]) -> None:
        with self._lock:
            if self._data.pop(key, None) is not None:
                self._unindex(key)

    def drop_fields(self, fields: str) -> int:
        with self._lock:
            stale = self._by_fields.pop(fields, [])
            for k in stale:
                del self._data[k]
        return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._by_fields.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class Lookup:
    """One comment's way through the cache."""

    comment: Comment
    fields: str
    key: str
    counts: flood.FloodCounts
    bucket: int
    model_count: int  # the flood count the model and the flood rule see
    generation: int | None
    outcome: Outcome | None = None
    tier: str = ""
    started: float = 0.0  # monotonic: a drop heard after this keeps its verdict out of the tier


class VerdictCache:
    """Lookup, store and invalidation of verdicts, and the flood counters beside them."""

    def __init__(
        self,
        settings: Settings,
        gate: RedisGate | None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.lookup_script = LOOKUP_SCRIPT
        # With a background writer (service/store/writebehind.py), a new verdict reaches
        # Redis with this worker's next lookup or the writer's next tick (at most
        # write_behind_interval_seconds later), not in a round trip of its own.
        self.defer_remote = False
        self._pending: list[tuple[str, bytes]] = []
        self._pending_lock = threading.Lock()
        self.local = LocalTier(settings.cache_local_size)
        self.counters = flood.LocalCounters(settings.flood_local_keys, clock=wall)
        # With Redis and a sync thread (attach_sync): counts of repeats answered here.
        # Counts matter here only for texts this worker holds a verdict for: bounded by
        # the local tier (a text and an address each), not by the flood table.
        self.shared = flood.SharedCounts(
            2 * settings.cache_local_size, fresh_seconds=2 * settings.cache_sync_seconds,
            clock=wall,
        )
        self.sync: CacheSync | None = None
        self.on_invalidate: list[Callable[[str], None]] = []  # told of labels heard by pub/sub
        self._dropped: OrderedDict[str, float] = OrderedDict()  # fields -> when dropped
        self.all_bounds = flood.buckets_for(settings.flood_spam_count)
        self._bounds: dict[str, tuple[int, ...]] = {}
        self._clock = clock
        self._wall = wall

    @property
    def enabled(self) -> bool:
        return self.settings.cache_ttl_seconds > 0

    # --- the check path ----------------------------------------------------------
    def score(
        self,
        scorer: Scorer,
        comments: Sequence[Comment],
        context: str = "",
        rules: Sequence[Rule] = DEFAULT_RULES,
        thresholds: dict[str, float] | None = None,
        deadline: float | None = None,
    ) -> list[tuple[Outcome, bool]]:
        """(outcome, cached) per comment: cached verdicts, the rest scored in one call."""
        lookups = self.lookup(comments, scorer.version, self.bounds(scorer), context)
        outcomes = [lk.outcome for lk in lookups]
        misses = [i for i, o in enumerate(outcomes) if o is None]
        if misses:
            with_flood = (
                *rules,
                flood.flood_rule(self.settings.flood_spam_count, scorer.thresholds),
            )
            # The model and the flood rule see the bucket, so the verdict fits every count in it.
            pending = [
                dataclasses.replace(lookups[i].comment, flood_count=lookups[i].model_count)
                for i in misses
            ]
            scored = score_comments(scorer, pending, with_flood, thresholds, deadline)
            for i, outcome in zip(misses, scored, strict=True):
                outcomes[i] = outcome
            self.store([(lookups[i], o) for i, o in zip(misses, scored, strict=True)])
        out = []
        window = self.settings.flood_window_seconds
        for lk, found in zip(lookups, outcomes, strict=True):
            if found is None:  # cannot happen: every miss was scored above
                raise RuntimeError("a comment went unscored")
            outcome = found
            extra = flood.flood_reasons(lk.counts, window)
            if extra:
                outcome = dataclasses.replace(outcome, reasons=[*outcome.reasons, *extra])
            out.append((outcome, bool(lk.tier)))
        return out

    def bounds(self, scorer: Scorer) -> tuple[int, ...]:
        """Flood buckets for this model: all of them if it reads the flood signal,
        else only the flood rule's threshold (so repeats stay hits)."""
        bounds = self._bounds.get(scorer.version)
        if bounds is None:
            if flood.model_reads_flood(scorer):
                bounds = self.all_bounds
            else:
                bounds = flood.rule_bounds(self.settings.flood_spam_count)
            self._bounds = {scorer.version: bounds}
        return bounds

    def lookup(
        self,
        comments: Sequence[Comment],
        version: str,
        bounds: tuple[int, ...] = flood.BUCKETS,
        context: str = "",
    ) -> list[Lookup]:
        # The generation (and the local tier's first key part) is the comment's own:
        # feedback invalidates its verdicts under every context (site lists,
        # thresholds); the verdict key adds the context.
        started = self._clock()
        values = [key_values(c) for c in comments]
        fields = [_fields_digest("", v) for v in values]
        vkeys = (
            [verdict_key(version, _fields_digest(context, v)) for v in values]
            if context else [verdict_key(version, f) for f in fields]
        )
        fkeys = [flood.flood_keys(c) for c in comments]
        found: list[Lookup | None] = [None] * len(comments)
        if self.answers_here():
            for i, c in enumerate(comments):
                found[i] = self._repeat_here(c, fields[i], vkeys[i], fkeys[i], bounds, started)
        rest = [i for i, lk in enumerate(found) if lk is None]
        if rest:
            remote = self._remote_lookup(
                [fkeys[i] for i in rest], [fields[i] for i in rest], [vkeys[i] for i in rest],
                len(bounds),
            )
            for j, i in enumerate(rest):
                if remote is not None:
                    counts, generation, cached = remote[j]
                else:
                    counts, generation, cached = self._local_counts(fkeys[i]), None, []
                bucket = flood.bucket_of(counts, bounds)
                lk = Lookup(comments[i], fields[i], vkeys[i], counts, bucket, bounds[bucket],
                            generation, started=started)
                if self.enabled:
                    self._find(lk, cached[bucket] if cached else None)
                found[i] = lk
        return [lk for lk in found if lk is not None]

    # --- a repeat answered without Redis -------------------------------------------
    def answers_here(self) -> bool:
        """Whether a repeat may be answered from this worker's tier with no round trip:
        the cache is on, Redis is up and this worker hears its invalidations."""
        sync, gate = self.sync, self.gate
        return (
            self.enabled and sync is not None and sync.healthy
            and gate is not None and not gate.skipping()
        )

    def _repeat_here(
        self, c: Comment, fields: str, vkey: str, fk: flood.FloodKeys,
        bounds: tuple[int, ...], started: float,
    ) -> Lookup | None:
        """A verdict this worker holds, trusted without Redis, or None (ask Redis)."""
        window = self.settings.flood_window_seconds
        text = self.shared.estimate("t:" + fk.text, window)
        if text is None:
            if fk.substantial:
                return None  # the count picks the bucket: learn it from Redis first
            text = 1  # a short reply is bucket 0 whatever its count, and never a reason
        ip = 0
        if fk.ip:
            ip_count = self.shared.estimate("i:" + fk.ip, window)
            if ip_count is None:
                return None
            ip = ip_count
        counts = flood.FloodCounts(text, ip, fk.substantial)
        bucket = flood.bucket_of(counts, bounds)
        entry = self.local.get((fields, vkey, bucket))
        sync = self.sync
        if (
            entry is None or entry.generation is None or sync is None
            # Redis vouched for it (its lookup began) while this subscription was up:
            # any label since then has been heard and would have dropped it.
            or entry.verified < sync.healthy_since
            or started - entry.created >= self.settings.cache_ttl_seconds
        ):
            return None
        self.shared.add("t:" + fk.text, window)
        if fk.ip:
            self.shared.add("i:" + fk.ip, window)
        metrics.cache_counter("local", "hit").inc()
        return Lookup(c, fields, vkey, counts, bucket, bounds[bucket], entry.generation,
                      entry.outcome, "local", started)

    def heard(self, fields: str) -> None:
        """A label was taken somewhere for the comment with these fields (pub/sub)."""
        self._forget(fields)
        for listener in self.on_invalidate:
            listener(fields)

    def _forget(self, fields: str) -> None:
        self.local.drop_fields(fields)
        with self._pending_lock:
            now = self._clock()
            self._dropped[fields] = now
            self._dropped.move_to_end(fields)
            while len(self._dropped) > DROPPED_MAX or (
                next(iter(self._dropped.values())) < now - DROPPED_SECONDS
            ):
                self._dropped.popitem(last=False)

    def sync_tick(self) -> None:
        """The sync thread's tick: deferred verdicts, then this worker's flood increments
        in one pipeline; the replies are every worker's totals."""
        self.flush_pending()
        items = self.shared.take()
        if not items:
            return
        if self.gate is None:
            self.shared.unsent(items)
            return
        ttl = keys.flood_ttl(self.settings.flood_window_seconds)

        def run(client: redis.Redis) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for name, slot, n in items:
                current = _flood_key(name, slot)
                pipe.incrby(current, n)
                pipe.expire(current, ttl)
                pipe.get(_flood_key(name, slot - 1))
            return list(pipe.execute())

        replies = self.gate.call(run, op="cache.sync")
        if replies is None:
            self.shared.unsent(items)
            return
        for j, (name, slot, n) in enumerate(items):
            self.shared.sent(name, slot, n, int(replies[3 * j]), _int(replies[3 * j + 2]))

    def _find(self, lk: Lookup, remote_value: bytes | None) -> None:
        local_key = (lk.fields, lk.key, lk.bucket)
        entry = self.local.get(local_key)
        if entry is not None and self._fresh(entry, lk.generation):
            lk.outcome, lk.tier = entry.outcome, "local"
            if lk.generation is not None:  # Redis just vouched for it
                entry.verified = lk.started
            metrics.cache_counter("local", "hit").inc()
            return
        if entry is not None:
            self.local.drop(local_key)
        if remote_value is not None:
            try:
                doc = orjson.loads(remote_value)
                if doc.get("g") == lk.generation:
                    lk.outcome, lk.tier = outcome_from_json(doc["o"]), "redis"
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                lk.outcome = None  # a value we cannot read is a miss, never an error
            if lk.outcome is not None:
                entry = Entry(lk.outcome, lk.generation, self._clock(), lk.started)
                self.local.put(local_key, entry)
                metrics.cache_counter("redis", "hit").inc()
                return
        metrics.cache_counter("all", "miss").inc()

    def _fresh(self, entry: Entry, generation: int | None) -> bool:
        age = self._clock() - entry.created
        if age >= self.settings.cache_ttl_seconds:
            return False
        if generation is None:
            # Redis not consulted: nobody can tell us of feedback another worker took.
            return age < self.settings.cache_local_ttl_seconds
        return entry.generation == generation

    def store(self, scored: Sequence[tuple[Lookup, Outcome]]) -> None:
        """Keep freshly scored verdicts: locally at once; in Redis in the next round
        trip this worker makes anyway when ``defer_remote`` (see :meth:`flush_pending`),
        else in one round trip now."""
        if not self.enabled:
            return
        now = self._clock()
        for lk, outcome in scored:
            dropped = self._dropped.get(lk.fields)
            if dropped is not None and dropped >= lk.started:
                continue  # a label arrived while it was scored: not kept here
            self.local.put((lk.fields, lk.key, lk.bucket),
                           Entry(outcome, lk.generation, now, lk.started))
        remote = [(lk, o) for lk, o in scored if lk.generation is not None]
        if self.gate is None or not remote:
            return
        values = [
            (keys.verdict(lk.key, lk.bucket),
             orjson.dumps({"g": lk.generation, "o": outcome_to_json(outcome)}))
            for lk, outcome in remote
        ]
        if self.defer_remote:
            with self._pending_lock:
                self._pending.extend(values)
                del self._pending[:-PENDING_MAX]  # bounded: the oldest go first
            return
        self._set_remote(values)

    def flush_pending(self) -> None:
        """Write the verdicts waiting for a round trip (the background writer's tick)."""
        values = self._take_pending()
        if values and self.gate is not None:
            self._set_remote(values)

    def _take_pending(self) -> list[tuple[str, bytes]]:
        if not self._pending:
            return []
        with self._pending_lock:
            values, self._pending = self._pending, []
        return values

    def _set_commands(self, values: list[tuple[str, bytes]]) -> list[tuple[Any, ...]]:
        ttl = self.settings.cache_ttl_seconds
        return [("SET", key, value, "EX", ttl) for key, value in values]

    def _set_remote(self, values: list[tuple[str, bytes]]) -> None:
        commands = self._set_commands(values)

        def run(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            pipe.execute()

        if self.gate is not None:
            self.gate.call(run, op="cache.store")

    # --- flood counters ------------------------------------------------------------
    def _local_counts(self, fk: flood.FloodKeys) -> flood.FloodCounts:
        window = self.settings.flood_window_seconds
        return flood.FloodCounts(
            text=self.counters.incr("t:" + fk.text, window),
            ip=self.counters.incr("i:" + fk.ip, window) if fk.ip else 0,
            substantial=fk.substantial,
        )

    def _remote_lookup(
        self, fkeys: list[flood.FloodKeys], fields: list[str], vkeys: list[str], n_bounds: int
    ) -> list[tuple[flood.FloodCounts, int, list[bytes | None]]] | None:
        """Flood counters, generations and cached verdicts: one script call per comment,
        all of a request's calls in one round trip."""
        if self.gate is None:
            return None
        window = self.settings.flood_window_seconds
        slot, progress = flood.slot_of(self._wall(), window)
        ttl = keys.flood_ttl(window)
        n_buckets = n_bounds if self.enabled else 0
        calls = []
        for fk, f, vk in zip(fkeys, fields, vkeys, strict=True):
            ip_keys = (
                (keys.flood_ip(fk.ip, slot), keys.flood_ip(fk.ip, slot - 1)) if fk.ip else ("", "")
            )
            calls.append((
                keys.flood_text(fk.text, slot), keys.flood_text(fk.text, slot - 1), *ip_keys,
                keys.generation(f), *(keys.verdict(vk, b) for b in range(n_buckets)),
            ))

        before = self._set_commands(self._take_pending())

        def run(client: redis.Redis) -> list[Any]:
            return self.lookup_script.run(client, calls, (ttl,), before=before)

        replies = self.gate.call(run, op="cache.lookup")
        if replies is None:
            return None
        out = []
        shared = self.shared
        for fk, reply in zip(fkeys, replies, strict=True):
            # Redis's totals, plus what this worker counted and has not sent yet.
            shared.learn("t:" + fk.text, slot, int(reply[0]), _int(reply[1]))
            text = flood.estimate(
                shared.with_unsent("t:" + fk.text, slot, int(reply[0])), _int(reply[1]), progress
            )
            ip_count = 0
            if fk.ip:
                shared.learn("i:" + fk.ip, slot, int(reply[2]), _int(reply[3]))
                ip_count = flood.estimate(
                    shared.with_unsent("i:" + fk.ip, slot, int(reply[2])), _int(reply[3]),
                    progress,
                )
            counts = flood.FloodCounts(text, ip_count, fk.substantial)
            out.append((counts, _int(reply[4]), list(reply[5:])))
        return out

    # --- feedback ------------------------------------------------------------------
    def invalidate(self, comment: Comment, context: str = "") -> None:
        """Drop the comment's verdicts: here at once, elsewhere via the generation."""
        fields = fields_key(comment, context)
        self._forget(fields)
        if self.gate is None:
            return
        ttl = max(self.settings.cache_ttl_seconds, 1)

        def run(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=False)
            pipe.incr(keys.generation(fields))
            pipe.expire(keys.generation(fields), ttl)
            # every worker's sync thread, on this database only
            pipe.publish(scoped_channel(keys.INVALIDATE_CHANNEL, client), fields)
            pipe.execute()

        self.gate.call(run, op="cache.invalidate")

    def after_fork(self) -> None:
        self.local.clear()
        self._pending = []
        self._pending_lock = threading.Lock()
        self.shared = flood.SharedCounts(
            self.shared.max_keys, fresh_seconds=self.shared.fresh_seconds, clock=self._wall
        )
        self._dropped.clear()


def _flood_key(name: str, slot: int) -> str:
    """The Redis counter of a SharedCounts name (``t:`` text or ``i:`` address digest)."""
    kind, digest = name[:2], name[2:]
    return keys.flood_text(digest, slot) if kind == "t:" else keys.flood_ip(digest, slot)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def comment_from_row(row: dict[str, Any]) -> Comment:
    """The Comment a stored check was scored as (store.record_checks' columns)."""
    from service.store.db import COMMENT_COLUMNS

    values: dict[str, Any] = {
        name: row.get(column) or "" for name, column in COMMENT_COLUMNS.items()
    }
    extra = row.get("extra") or {}
    for name in ("honeypot", "user_role", "article_published_at"):
        values[name] = str(extra.get(name) or "")
    return Comment(content=row.get("content") or "", **values)


def init_cache(res: Resources) -> VerdictCache:
    """Build the Redis gate (when configured) and the cache; wire feedback, fork, readiness."""
    s = res.settings
    gate = None
    if s.redis_url:
        gate = RedisGate(
            s.redis_url, timeout=s.redis_timeout_seconds, retry_after=s.redis_retry_after_seconds
        )
        res.redis = gate
        res.readiness["redis"] = gate.probe
        res.after_fork.append(gate.after_fork)
    cache = VerdictCache(s, gate)
    res.cache = cache
    writer = res.write_behind
    if writer is not None and gate is not None:
        cache.defer_remote = True
        writer.on_tick.append(cache.flush_pending)
    res.after_fork.append(cache.after_fork)
    if gate is not None and s.cache_sync_seconds > 0 and cache.enabled:
        sync = CacheSync(
            s.redis_url, interval=s.cache_sync_seconds, timeout=s.redis_timeout_seconds,
            on_message=cache.heard, tick=cache.sync_tick, on_down=lambda: None,
        )
        cache.sync = sync
        res.after_fork.append(sync.start)
        res.on_close.append(sync.stop)
        memory = res.label_memory
        if memory is not None:
            # read the new label now, in the sync thread, not at the next check's refresh
            cache.on_invalidate.append(lambda _fields: memory.refresh(force=True))

    def on_feedback(comment_id: int, comment: Comment | None) -> None:
        if comment is None:
            try:
                comment = comment_from_row(res.store.comment(comment_id))
            except Exception:  # the label is stored; a lost invalidation only ages out
                metrics.STORE_ERRORS.labels("cache_invalidate").inc()
                return
        cache.invalidate(comment)

    res.on_feedback.append(on_feedback)
    return cache
