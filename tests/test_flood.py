"""The flood signal: counts across sites, reasons, the flood rule, and frequent short
replies that must stay ham."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.cache import flood

# A substantial text a spammer would paste under many articles (no obvious spam words,
# so that without the flood it is not spam).
FLOODED = ("I have been reading the coverage on this for weeks and my view is that the "
           "mayor should resign before the next council session starts")
SHORT_REPLIES = ["thanks!", "+1", "great article", "Great article!", "So true."]


def check(client: FlaskClient, content: str, **fields: str) -> dict[str, Any]:
    r = client.post("/api/v1/check", json={"content": content, **fields})
    assert r.status_code == 200, r.get_data(as_text=True)
    body: dict[str, Any] = r.get_json()
    return body


def descriptions(answer: dict[str, Any]) -> list[str]:
    return [r["description"] for r in answer["reasons"]]


@pytest.mark.parametrize(
    ("current", "previous", "progress", "expected"),
    [(5, 0, 0.5, 5), (1, 10, 0.0, 11), (1, 10, 0.5, 6), (1, 10, 0.99, 1), (0, 0, 0.3, 0)],
)
def test_sliding_window_estimate(current: int, previous: int, progress: float,
                                 expected: int) -> None:
    assert flood.estimate(current, previous, progress) == expected


@pytest.mark.parametrize(
    ("text", "substantial"),
    [
        ("thanks!", False),
        ("+1", False),
        ("great article", False),
        ("Great article, thanks for sharing!", False),
        ("see http://bit.ly/x", True),
        (FLOODED, True),
    ],
)
def test_only_substantial_texts_can_flood(text: str, substantial: bool) -> None:
    assert flood.is_substantial(text) is substantial


def test_buckets() -> None:
    bounds = flood.buckets_for(20)
    assert 20 in bounds
    counts = [flood.FloodCounts(n, 0, True) for n in (1, 2, 4, 19, 20, 500)]
    got = [bounds[flood.bucket_of(c, bounds)] for c in counts]
    assert got == [1, 2, 3, 11, 20, 51]
    assert flood.bucket_of(flood.FloodCounts(500, 0, False), bounds) == 0
    assert flood.rule_bounds(20) == (1, 20)
    assert flood.rule_bounds(0) == (1,)


def test_local_counters_are_bounded_and_windowed() -> None:
    now = [1000.0]
    counters = flood.LocalCounters(max_keys=4, clock=lambda: now[0])
    assert [counters.incr("a", 60) for _ in range(3)] == [1, 2, 3]
    now[0] += 60  # next slot, 2/3 into it: a third of the previous slot still counts
    assert counters.incr("a", 60) == 1 + 1
    now[0] += 600  # long gone
    assert counters.incr("a", 60) == 1
    for i in range(10):
        counters.incr(f"k{i}", 60)
    assert len(counters) <= 4


def test_a_full_table_evicts_the_oldest_key_not_every_key() -> None:
    now = [1000.0]
    counters = flood.LocalCounters(max_keys=100, clock=lambda: now[0])
    for i in range(100):
        counters.incr(f"k{i}", 3600)
    counters.incr("k1", 3600)  # k0 is now the least recently seen
    counters.incr("new", 3600)
    assert len(counters) == 100
    assert "k0" not in counters
    assert all(f"k{i}" in counters for i in range(1, 100))
    assert counters.incr("k1", 3600) == 3  # its count carried on through the eviction


def test_a_flood_in_progress_outlives_any_number_of_unique_texts() -> None:
    """Anyone can post 100k unique texts; that must not reset a flood's count."""
    now = [1000.0]
    counters = flood.LocalCounters(max_keys=1_000, clock=lambda: now[0])
    assert [counters.incr("t:flood", 3600) for _ in range(5)] == [1, 2, 3, 4, 5]
    for i in range(20_000):  # twenty times the table, one text each
        counters.incr(f"t:unique-{i}", 3600)
        if i % 1_000 == 0:
            assert counters.incr("t:flood", 3600) == 6 + i // 1_000
    assert len(counters) == 1_000
    assert counters.incr("t:flood", 3600) == 6 + 20
    # The unique texts were evicted one by one, oldest first: the newest are still counted.
    assert "t:unique-19999" in counters and "t:unique-0" not in counters


def test_protected_floods_are_bounded_too() -> None:
    """Many texts each seen twice fill the protected share; its oldest fall back one at a time."""
    now = [1000.0]
    counters = flood.LocalCounters(max_keys=10, clock=lambda: now[0], protected_share=0.5)
    for i in range(30):
        counters.incr(f"f{i}", 3600)
        counters.incr(f"f{i}", 3600)
    assert len(counters) == 10
    assert all(f"f{i}" in counters for i in range(25, 30))  # the five newest floods


def test_the_check_path_keeps_a_flood_through_unique_traffic(
    make_app: Callable[..., Flask],
) -> None:
    """Without Redis, through the API: once a text is seen twice, one-off texts that overflow
    the worker's table between its posts do not reset its count."""
    client = make_app(flood_spam_count=5, flood_local_keys=20).test_client()
    answers = []
    for i in range(5):
        answers.append(check(client, FLOODED, permalink=f"https://site{i}.example/a/{i}"))
        for j in range(25 if i else 0):  # more unique texts than the table holds
            check(client, f"unique comment number {i}-{j} about the council and the budget "
                          f"and the roads in the town centre")
    assert answers[0]["verdict"] != "spam"
    assert answers[4]["verdict"] == "spam"


def test_describe_window() -> None:
    assert flood.describe_window(3600) == "hour"
    assert flood.describe_window(600) == "10 minutes"
    assert flood.describe_window(7200) == "2 hours"
    assert flood.describe_window(45) == "45 seconds"


@pytest.mark.parametrize("redis_on", [False, True])
def test_flood_across_sites_becomes_spam(make_app: Callable[..., Flask], redis_on: bool,
                                         request: pytest.FixtureRequest) -> None:
    settings: dict[str, Any] = {"flood_spam_count": 5}
    if redis_on:
        settings["redis_url"] = request.getfixturevalue("redis_url")
    client = make_app(**settings).test_client()
    answers = [check(client, FLOODED, permalink=f"https://site{i}.example/a/{i}")
               for i in range(6)]
    assert answers[0]["verdict"] != "spam"
    assert not any("posted" in d for d in descriptions(answers[0]))
    assert "the same text was posted 3 times in the last hour" in descriptions(answers[2])
    assert answers[4]["verdict"] == "spam"
    assert any("flood rule" in d for d in descriptions(answers[4]))
    assert "the same text was posted 5 times in the last hour" in descriptions(answers[4])
    assert answers[4]["discard"] is False
    # Below the threshold repeats are cache hits: the count is bucketed.
    assert [a["cached"] for a in answers] == [False, True, True, True, False, True]


@pytest.mark.parametrize("redis_on", [False, True])
def test_frequent_short_replies_stay_ham(make_app: Callable[..., Flask], redis_on: bool,
                                         request: pytest.FixtureRequest) -> None:
    settings: dict[str, Any] = {"flood_spam_count": 5}
    if redis_on:
        settings["redis_url"] = request.getfixturevalue("redis_url")
    client = make_app(**settings).test_client()
    for text in SHORT_REPLIES:
        first = check(client, text)
        for _ in range(30):
            last = check(client, text)
        assert last["verdict"] == first["verdict"] != "spam", text
        assert last["spam_probability"] == first["spam_probability"]
        assert not any("posted" in d or "flood" in d for d in descriptions(last)), text


def test_same_address_is_counted(make_app: Callable[..., Flask], redis_url: str) -> None:
    client = make_app(redis_url=redis_url).test_client()
    for i in range(flood.IP_REASON_MIN):
        answer = check(client, f"comment number {i} about the budget", user_ip="203.0.113.7")
    assert (f"{flood.IP_REASON_MIN} comments came from the same address in the last hour"
            in descriptions(answer))
    other = check(client, "another one", user_ip="198.51.100.1")
    assert not any("address" in d for d in descriptions(other))


def test_counts_are_shared_across_workers(make_app: Callable[..., Flask],
                                          redis_url: str) -> None:
    """Every check asks Redis (no sync thread): counts are exact at once. With the sync
    thread they lag by its interval (test_repeats_answered_without_redis_reach_every_worker)."""
    a = make_app(redis_url=redis_url, cache_sync_seconds=0).test_client()
    b = make_app(redis_url=redis_url, cache_sync_seconds=0).test_client()
    check(a, FLOODED)
    check(b, FLOODED)
    assert "the same text was posted 3 times in the last hour" in descriptions(check(a, FLOODED))


def test_normalised_text_is_counted_together(make_app: Callable[..., Flask],
                                             redis_url: str) -> None:
    client = make_app(redis_url=redis_url).test_client()
    check(client, FLOODED)
    check(client, FLOODED.upper())
    spaced = FLOODED.replace("mayor", "m a y o r").replace("e", "\u0435", 3)  # homoglyphs
    assert "the same text was posted 3 times in the last hour" in descriptions(
        check(client, spaced))


# --- counts of repeats answered without Redis (flood.SharedCounts) ----------------------


class Clocks:
    def __init__(self) -> None:
        self.wall = 7_200.0 + 1_800.0  # half way through a one-hour slot
        self.mono = 100.0


def shared(fresh: float = 1.0) -> tuple[flood.SharedCounts, Clocks]:
    clocks = Clocks()
    counts = flood.SharedCounts(100, fresh, clock=lambda: clocks.wall,
                                monotonic=lambda: clocks.mono)
    return counts, clocks


def test_shared_counts_estimate_only_what_redis_told_recently() -> None:
    counts, clocks = shared(fresh=1.0)
    assert counts.estimate("t:a", 3600) is None  # never learnt: ask Redis
    slot = int(clocks.wall // 3600)
    counts.learn("t:a", slot, total=4, previous=10)
    assert counts.estimate("t:a", 3600) == 4 + 1 + 5  # this check, half the last slot
    counts.add("t:a", 3600)
    counts.add("t:a", 3600)
    assert counts.estimate("t:a", 3600) == 4 + 2 + 1 + 5  # unsent increments count here
    clocks.mono += 1.5
    assert counts.estimate("t:a", 3600) is None  # too old: ask Redis again
    counts.learn("t:a", slot, total=9, previous=10)
    assert counts.estimate("t:a", 3600) == 9 + 2 + 1 + 5
    clocks.wall += 3600
    assert counts.estimate("t:a", 3600) is None  # a new slot: ask Redis


def test_shared_counts_are_sent_once_and_kept_while_redis_is_away() -> None:
    counts, clocks = shared()
    slot = int(clocks.wall // 3600)
    counts.learn("t:a", slot, total=1, previous=0)
    for _ in range(3):
        counts.add("t:a", 3600)
    items = counts.take()
    assert items == [("t:a", slot, 3)]
    assert counts.take() == []
    assert counts.estimate("t:a", 3600) == 1 + 3 + 1  # in flight still counts
    counts.unsent(items)  # Redis was not reached
    assert counts.take() == [("t:a", slot, 3)]
    counts.sent("t:a", slot, 3, total=12, previous=0)  # 8 from other workers
    assert counts.estimate("t:a", 3600) == 12 + 1
    assert counts.with_unsent("t:a", slot, 12) == 12


def test_shared_counts_are_bounded() -> None:
    counts, clocks = shared()
    slot = int(clocks.wall // 3600)
    for i in range(250):
        counts.learn(f"t:{i}", slot, total=1, previous=0)
    assert len(counts) == 100
    assert counts.estimate("t:0", 3600) is None
    assert counts.estimate("t:249", 3600) == 2


def test_repeats_answered_without_redis_reach_every_worker(
    make_app: Callable[..., Flask], redis_url: str
) -> None:
    """Two workers with their sync threads: repeats each answers from its own tier are
    counted in Redis within the sync lag, and the other worker's next look sees them."""
    import time

    import redis

    settings: dict[str, Any] = {"redis_url": redis_url, "cache_sync_seconds": 0.05,
                                "flood_spam_count": 30}
    a, b = make_app(**settings), make_app(**settings)
    for app in (a, b):
        sync = app.extensions["commentmod"].cache.sync
        deadline = time.monotonic() + 5
        while not sync.healthy:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    client_a, client_b = a.test_client(), b.test_client()
    for _ in range(12):
        check(client_a, FLOODED)
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 2
    while True:
        values = [int(r.get(k) or 0) for k in r.keys("commentmod:flood:text:*")]
        if values == [12] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert values == [12]
    assert "the same text was posted 13 times in the last hour" in descriptions(
        check(client_b, FLOODED))
