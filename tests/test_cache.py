"""The verdict cache: hit after miss, model versions, feedback, both tiers, and
scoring that goes on when Redis is killed or hangs mid-test."""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from service.api.checking import record_feedback
from service.cache import verdict_cache as cache_mod
from service.resources import EXTENSION, Resources
from tests.conftest import RedisServer
from training.features import MODEL_FIELDS, SIGNAL_INDEX, SIGNALS, Comment

SPAM = "Check out my channel and SUBSCRIBE!!! http://bit.ly/free-money win an iPhone"
HAM = "The council should publish the budget before the vote, not after. Good reporting."
TIMEOUT = 0.05


def res_of(app: Flask) -> Resources:
    res: Resources = app.extensions[EXTENSION]
    return res


def check(client: FlaskClient, content: str, **fields: str) -> dict[str, Any]:
    r = client.post("/api/v1/check", json={"content": content, **fields})
    assert r.status_code == 200, r.get_data(as_text=True)
    body: dict[str, Any] = r.get_json()
    return body


def stored_comments(app: Flask) -> int:
    from sqlalchemy import func, select

    from service.store import schema
    return int(res_of(app).store.read(
        lambda c: c.execute(select(func.count()).select_from(schema.comments)).scalar_one()
    ))


# --- the key -------------------------------------------------------------------


def test_key_covers_every_model_field() -> None:
    """MODEL_FIELDS is what the model and rules read; a field added there must be
    considered here (the time fields go in through the fast-reply flag)."""
    read_by_features_and_rules = {
        "content", "author", "author_email", "author_url", "honeypot", "user_role",
        "created_at", "article_published_at",
    }
    assert read_by_features_and_rules <= set(MODEL_FIELDS)
    assert set(cache_mod.TIME_FIELDS) <= set(MODEL_FIELDS)
    assert "flood" in {s.name for s in SIGNALS}  # flood reaches the key through the bucket


@pytest.mark.parametrize("name", [f for f in MODEL_FIELDS if f not in cache_mod.TIME_FIELDS])
def test_each_model_field_changes_the_key(name: str) -> None:
    base = Comment(content="hello there", **{n: "" for n in MODEL_FIELDS if n != "content"})
    other = dataclasses.replace(base, **{name: "something else"})
    assert cache_mod.fields_key(base) != cache_mod.fields_key(other)


def test_fields_the_model_ignores_do_not_change_the_key() -> None:
    base = Comment(content="hello there", user_ip="1.2.3.4", user_agent="a", permalink="p")
    other = dataclasses.replace(base, user_ip="5.6.7.8", user_agent="b", permalink="q",
                                referrer="r", extra={"x": 1})
    assert cache_mod.fields_key(base) == cache_mod.fields_key(other)


def test_time_fields_count_only_through_the_fast_reply_flag() -> None:
    published = "2026-01-01T10:00:00Z"
    a = Comment(content="x", created_at="2026-01-01T12:00:00Z", article_published_at=published)
    b = Comment(content="x", created_at="2026-01-01T13:30:00Z", article_published_at=published)
    fast = Comment(content="x", created_at="2026-01-01T10:00:20Z", article_published_at=published)
    assert cache_mod.fields_key(a) == cache_mod.fields_key(b)  # resubmissions stay hits
    assert cache_mod.fields_key(a) != cache_mod.fields_key(fast)
    assert SIGNAL_INDEX["fast_reply"] >= 0


def test_model_version_and_context_change_the_key() -> None:
    f = cache_mod.fields_key(Comment(content="x"))
    assert cache_mod.verdict_key("v1", f) != cache_mod.verdict_key("v2", f)
    assert cache_mod.fields_key(Comment(content="x"), "site:1") != f


# --- in-process tier (the single-machine default) --------------------------------------


def test_hit_after_miss_without_redis(app: Flask, client: FlaskClient) -> None:
    first = check(client, SPAM)
    second = check(client, SPAM)
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["verdict"] == first["verdict"] == "spam"
    assert second["spam_probability"] == first["spam_probability"]
    assert second["guid"] != first["guid"]  # a hit is a new check with its own guid
    assert stored_comments(app) == 2  # ... and it is recorded too
    assert check(client, HAM)["cached"] is False  # a different comment never gets another's


def test_batch_mixes_hits_and_misses(client: FlaskClient) -> None:
    check(client, SPAM)
    r = client.post("/api/v1/check/batch",
                    json={"comments": [{"content": SPAM}, {"content": HAM}, {"content": HAM}]})
    results = r.get_json()["results"]
    assert [x["cached"] for x in results] == [True, False, False]
    assert [x["verdict"] for x in results] == ["spam", "ham", "ham"]
    assert check(client, HAM)["cached"] is True


def test_local_tier_is_bounded(make_app: Callable[..., Flask]) -> None:
    app = make_app(cache_local_size=3)
    client = app.test_client()
    for i in range(10):
        check(client, f"{HAM} number {i}")
    assert len(res_of(app).cache.local) == 3


def test_ttl_zero_turns_the_cache_off(make_app: Callable[..., Flask]) -> None:
    client = make_app(cache_ttl_seconds=0).test_client()
    assert [check(client, SPAM)["cached"] for _ in range(3)] == [False, False, False]


def test_feedback_drops_the_verdict_without_redis(app: Flask, client: FlaskClient) -> None:
    guid = check(client, SPAM)["guid"]
    assert check(client, SPAM)["cached"] is True
    record_feedback(res_of(app), label="ham", source="site", actor="t", site_id=None, guid=guid)
    assert check(client, SPAM)["cached"] is False


def test_new_model_version_misses(app: Flask, client: FlaskClient, model_dir: Path) -> None:
    res = res_of(app)
    old = res.models.scorer()
    check(client, SPAM)
    assert check(client, SPAM)["cached"] is True
    loaded = res.models.registry.load(old.version)  # workers serve compiled tables only
    pipeline = loaded.pipeline
    # A parameter changed without refitting: the same coefficients in a new file.
    pipeline.set_params(clf__C=pipeline.get_params()["clf__C"] * 0.5)
    version = res.models.registry.save(pipeline, {k: v for k, v in loaded.metadata.items()
                                                  if k not in {"version", "sha256"}})
    res.models.registry.set_current(version, action="promote")
    res.models.maybe_reload(force=True)
    assert res.models.scorer().version == version != old.version
    answer = check(client, SPAM)
    assert answer["cached"] is False
    assert answer["model_version"] == version


# --- with Redis -------------------------------------------------------------------


def test_hit_after_miss_shared_across_workers(make_app: Callable[..., Flask],
                                              redis_url: str) -> None:
    worker_a = make_app(redis_url=redis_url).test_client()
    worker_b = make_app(redis_url=redis_url).test_client()
    first = check(worker_a, SPAM)
    assert first["cached"] is False
    from_redis = check(worker_b, SPAM)  # another process: its local tier is empty
    assert from_redis["cached"] is True
    assert from_redis["verdict"] == first["verdict"]
    assert from_redis["reasons"][:3] == first["reasons"][:3]
    keys = redis.Redis.from_url(redis_url).keys("commentmod:verdict:*")
    assert len(keys) == 1


def test_deferred_verdicts_ride_the_next_round_trip(make_app: Callable[..., Flask],
                                                    redis_url: str) -> None:
    """With a background writer a new verdict is not a round trip of its own: it goes
    with this worker's next lookup, or the writer's next tick."""
    # Without the sync thread, whose tick would send the deferred verdict at any moment.
    app_a = make_app(redis_url=redis_url, cache_sync_seconds=0)
    cache_a = res_of(app_a).cache
    cache_a.defer_remote = True  # as when service/store/writebehind.py runs (not under testing)
    worker_a, worker_b = app_a.test_client(), make_app(redis_url=redis_url).test_client()
    r = redis.Redis.from_url(redis_url)
    assert check(worker_a, SPAM)["cached"] is False
    assert r.keys("commentmod:verdict:*") == []  # not written yet
    assert check(worker_a, HAM)["cached"] is False  # this lookup carries SPAM's verdict
    assert len(r.keys("commentmod:verdict:*")) == 1
    assert check(worker_b, SPAM)["cached"] is True  # another worker finds it in Redis
    cache_a.flush_pending()  # the writer's tick: HAM's verdict
    assert len(r.keys("commentmod:verdict:*")) == 2
    assert check(worker_b, HAM)["cached"] is True


def test_the_writer_tick_flushes_deferred_verdicts(make_app: Callable[..., Flask],
                                                   redis_url: str) -> None:
    app = make_app(redis_url=redis_url, env="development", write_behind_interval_seconds=0.05)
    cache = res_of(app).cache
    assert cache.defer_remote is True
    check(app.test_client(), SPAM)
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 5
    while not r.keys("commentmod:verdict:*") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(r.keys("commentmod:verdict:*")) == 1
    res_of(app).write_behind.stop()


def test_feedback_invalidates_in_every_worker(make_app: Callable[..., Flask],
                                               redis_url: str) -> None:
    # Without the label memory (service/label_memory.py), which would answer the
    # labelled comment itself before the cache is asked.
    app_a = make_app(redis_url=redis_url, label_memory_size=0)
    worker_b = make_app(redis_url=redis_url, label_memory_size=0).test_client()
    worker_a = app_a.test_client()
    guid = check(worker_a, SPAM)["guid"]
    assert check(worker_b, SPAM)["cached"] is True  # now in b's local tier too
    record_feedback(res_of(app_a), label="ham", source="moderator", actor="t", site_id=None,
                    guid=guid)
    # b hears the label by pub/sub (its sync thread), within the sync lag: a repeat it
    # answers without a round trip is never trusted past that.
    wait_until_heard(res_of(app_a), res_of(worker_b.application))
    assert check(worker_b, SPAM)["cached"] is False  # b's local copy is gone
    assert check(worker_a, SPAM)["cached"] is True  # re-scored verdict is cached again


def test_a_label_on_another_database_is_not_heard(make_app: Callable[..., Flask],
                                                  redis_url: str) -> None:
    """Two services on one Redis server, each on its own database: pub/sub ignores
    databases, so the invalidation channel carries the database's number."""
    other_url = redis_url.rsplit("/", 1)[0] + "/7"  # no test's own database
    other = redis.Redis.from_url(other_url)
    other.flushdb()
    try:
        app_a = make_app(redis_url=other_url, label_memory_size=0)
        worker_b = make_app(redis_url=redis_url, label_memory_size=0).test_client()
        guid = check(app_a.test_client(), SPAM)["guid"]
        check(worker_b, SPAM)
        assert len(res_of(worker_b.application).cache.local) == 1
        record_feedback(res_of(app_a), label="ham", source="moderator", actor="t",
                        site_id=None, guid=guid)
        time.sleep(0.5)  # well past the sync lag that test_feedback_invalidates... waits
        assert len(res_of(worker_b.application).cache.local) == 1  # not b's database
    finally:
        other.flushdb()
        other.close()


def wait_until_heard(*workers: Resources, seconds: float = 2.0) -> None:
    """Until every worker's local tier has dropped what a label invalidated."""
    deadline = time.monotonic() + seconds
    while any(len(r.cache.local) for r in workers if r.cache is not None):
        assert time.monotonic() < deadline, "the invalidation was not heard in time"
        time.sleep(0.005)


def test_labels_are_heard_by_pub_sub_not_asked_per_check(
    make_app: Callable[..., Flask], redis_url: str
) -> None:
    """A worker drops another worker's labelled comment from its tier at once, and
    the first check after that asks Redis (generation compared) again."""
    app_a = make_app(redis_url=redis_url, label_memory_size=0)
    app_b = make_app(redis_url=redis_url, label_memory_size=0)
    b = app_b.test_client()
    guid = check(app_a.test_client(), SPAM)["guid"]
    assert check(b, SPAM)["cached"] is True
    assert len(res_of(app_b).cache.local) == 1
    started = time.monotonic()
    record_feedback(res_of(app_a), label="ham", source="moderator", actor="t", site_id=None,
                    guid=guid)
    wait_until_heard(res_of(app_b))
    assert time.monotonic() - started < 1.0


def test_a_repeat_makes_no_round_trip(make_app: Callable[..., Flask],
                                      redis_server: Callable[..., RedisServer]) -> None:
    """The repeat is answered from the worker's tier; its flood increment rides the
    sync thread's next batch (INCRBY), never a script call of its own."""
    server = redis_server()  # its own server: the command count is server-wide
    app = make_app(redis_url=server.url, cache_sync_seconds=0.05)
    client = app.test_client()
    sync = res_of(app).cache.sync
    assert sync is not None
    deadline = time.monotonic() + 5
    while not sync.healthy:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    short = "thanks, great piece"  # a short reply: flood bucket 0 at any count
    assert check(client, short)["cached"] is False
    r = redis.Redis.from_url(server.url)

    def calls() -> dict[str, int]:
        return {name.removeprefix("cmdstat_"): int(stat["calls"])
                for name, stat in r.info("commandstats").items()}

    before = calls()
    answers = [check(client, short) for _ in range(20)]
    assert all(a["cached"] for a in answers)
    time.sleep(0.3)  # a few sync ticks
    after = calls()
    sent = {name: n - before.get(name, 0) for name, n in after.items()
            if n != before.get(name, 0)}
    assert "evalsha" not in sent
    assert set(sent) <= {"incrby", "expire", "get", "info", "ping"}
    # ... and Redis holds the 21 sightings.
    [key] = [k for k in r.keys("commentmod:flood:text:*")]
    assert int(r.get(key) or 0) == 21


def test_feedback_with_the_comment_itself(make_app: Callable[..., Flask],
                                          redis_url: str) -> None:
    app = make_app(redis_url=redis_url)
    client = app.test_client()
    check(client, SPAM, author="bob")
    record_feedback(res_of(app), label="ham", source="site", actor="t", site_id=None,
                    comment=Comment(content=SPAM, author="bob"))
    assert check(client, SPAM, author="bob")["cached"] is False


def test_unreadable_redis_value_is_a_miss(make_app: Callable[..., Flask],
                                          redis_url: str) -> None:
    client = make_app(redis_url=redis_url).test_client()
    check(client, SPAM)
    r = redis.Redis.from_url(redis_url)
    for key in r.keys("commentmod:verdict:*"):
        r.set(key, b"{not json")
    fresh = make_app(redis_url=redis_url).test_client()
    assert check(fresh, SPAM)["cached"] is False


def test_without_sync_a_hit_is_one_round_trip(make_app: Callable[..., Flask],
                               redis_server: Callable[..., RedisServer]) -> None:
    server = redis_server()  # its own server: the command count is server-wide
    app = make_app(redis_url=server.url, cache_sync_seconds=0)  # no sync thread
    client = app.test_client()
    check(client, SPAM)
    r = redis.Redis.from_url(server.url)

    def calls() -> dict[str, int]:
        return {name.removeprefix("cmdstat_"): int(stat["calls"])
                for name, stat in r.info("commandstats").items()}

    before = calls()
    assert check(client, SPAM)["cached"] is True
    after = calls()
    sent = {name: n - before.get(name, 0) for name, n in after.items()
            if n != before.get(name, 0)}
    # One script call; the INCR/EXPIRE/GETs it runs stay inside Redis (+ our INFO call).
    assert sent.pop("evalsha") == 1
    assert set(sent) <= {"incr", "expire", "get", "info"}


# --- Redis failing mid-test ----------------------------------------------------------


def _timed(client: FlaskClient, content: str) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    body = check(client, content)
    return body, time.perf_counter() - started


def test_killed_redis_every_request_still_answered(
    make_app: Callable[..., Flask], redis_server: Callable[..., RedisServer]
) -> None:
    server = redis_server()
    app = make_app(redis_url=server.url, redis_timeout_seconds=TIMEOUT,
                   redis_retry_after_seconds=0.3)
    client = app.test_client()
    baseline = [_timed(client, f"{HAM} {i}")[1] for i in range(3)]
    assert check(client, SPAM)["cached"] is False
    server_port = server.port
    server.stop()  # killed mid-test
    answers = [_timed(client, text) for text in (SPAM, HAM, SPAM + " x", "hello", SPAM)]
    for body, elapsed in answers:
        assert body["verdict"] in {"ham", "unsure", "spam"}
        assert elapsed < max(baseline) + 2 * TIMEOUT + 0.5
    assert answers[0][0]["cached"] is True  # the local tier carried the hit
    server.port = server_port
    server.start()  # back, empty
    time.sleep(0.35)
    check(client, "a comment scored after Redis came back")
    assert redis.Redis.from_url(server.url).keys("commentmod:verdict:*")
    other_worker = make_app(redis_url=server.url).test_client()
    assert check(other_worker, "a comment scored after Redis came back")["cached"] is True
    assert not res_of(app).redis.down


def test_hung_redis_costs_at_most_the_bound(
    make_app: Callable[..., Flask], redis_server: Callable[..., RedisServer]
) -> None:
    server = redis_server()
    app = make_app(redis_url=server.url, redis_timeout_seconds=TIMEOUT,
                   redis_retry_after_seconds=5)
    client = app.test_client()
    baseline = max(_timed(client, f"{HAM} {i}")[1] for i in range(3))
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)  # alive, accepting, never answering
    try:
        first, elapsed = _timed(client, SPAM)
        assert first["verdict"] == "spam"
        assert elapsed < baseline + 2 * TIMEOUT + 0.5
        rest = [_timed(client, f"{SPAM} {i}")[1] for i in range(5)]
        assert max(rest) < baseline + 0.5  # breaker open: no waiting at all
    finally:
        server.proc.send_signal(signal.SIGCONT)


@pytest.mark.slow
def test_gunicorn_workers_share_verdicts(serve: Callable[..., str], redis_url: str) -> None:
    import httpx

    base = serve(workers=2, env={"COMMENTMOD_REDIS_URL": redis_url})
    with httpx.Client(base_url=base) as http:
        answers = [http.post("/api/v1/check", json={"content": SPAM}).json() for _ in range(6)]
    assert answers[0]["cached"] is False
    assert all(a["cached"] for a in answers[1:])
    assert len({a["verdict"] for a in answers}) == 1


@pytest.mark.parametrize(
    "setting",
    [{"cache_local_ttl_seconds": -1}, {"flood_spam_count": -1},
     {"redis_retry_after_seconds": -1}, {"cache_ttl_seconds": -5}, {"cache_local_size": 0},
     {"redis_timeout_seconds": 0}],
)
def test_bad_cache_settings_are_refused(setting: dict[str, float]) -> None:
    from service.config import load_settings
    from service.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=next(iter(setting)).upper()):
        load_settings(setting, environ={})


def test_bad_cache_setting_from_the_environment_names_the_variable() -> None:
    from service.config import load_settings
    from service.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="COMMENTMOD_FLOOD_SPAM_COUNT"):
        load_settings(environ={"COMMENTMOD_FLOOD_SPAM_COUNT": "lots"})


def test_another_workers_label_memory_hears_a_label_by_pub_sub(
    make_app: Callable[..., Flask], redis_url: str
) -> None:
    """With its own database poll an hour away, worker b answers a comment labelled on
    worker a with that label well within a second: the sync thread read it."""
    app_a = make_app(redis_url=redis_url, label_memory_refresh_seconds=3600)
    app_b = make_app(redis_url=redis_url, label_memory_refresh_seconds=3600)
    b = app_b.test_client()
    sync = res_of(app_b).cache.sync
    deadline = time.monotonic() + 5
    while not sync.healthy:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    guid = check(app_a.test_client(), SPAM)["guid"]
    assert check(b, SPAM)["verdict"] == "spam"
    started = time.monotonic()
    record_feedback(res_of(app_a), label="ham", source="moderator", actor="t", site_id=None,
                    guid=guid)
    while True:
        answer = check(b, SPAM)
        if answer["verdict"] == "ham":
            break
        assert time.monotonic() - started < 1.0, "worker b did not hear the label"
        time.sleep(0.005)
    assert "marked ham by a moderator" in [r["description"] for r in answer["reasons"]]


def test_after_redis_comes_back_a_repeat_is_verified_once_then_answered_here(
    make_app: Callable[..., Flask], redis_server: Callable[..., RedisServer]
) -> None:
    """While the subscription is down nothing is answered without Redis; once it is
    back, an entry Redis vouches for again is answered without a round trip."""
    server = redis_server()
    app = make_app(redis_url=server.url, cache_sync_seconds=0.05,
                   redis_retry_after_seconds=0.1)
    client = app.test_client()
    cache = res_of(app).cache
    sync = cache.sync

    def wait(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline
            time.sleep(0.02)

    wait(lambda: sync.healthy)
    short = "thanks, great piece"
    check(client, short)
    assert cache.answers_here()
    server.stop()
    wait(lambda: not sync.healthy)
    assert not cache.answers_here()
    assert check(client, short)["cached"] is True  # Redis down: the local tier, fail open
    server.start()  # the same port
    wait(lambda: sync.healthy)
    time.sleep(0.2)  # past the breaker's pause
    r = redis.Redis.from_url(server.url)
    evalsha = lambda: int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))  # noqa: E731
    check(client, short)  # Redis vouches for the entry again (one script call)
    before = evalsha()
    assert all(check(client, short)["cached"] for _ in range(5))
    assert evalsha() == before


# --- the local tier's index ------------------------------------------------------
@given(st.lists(st.tuples(st.sampled_from(["put", "get", "drop", "drop_fields", "clear"]),
                          st.sampled_from("abcd"), st.sampled_from("xy"), st.integers(0, 2)),
                max_size=80))
@settings(max_examples=200, deadline=None)
def test_local_tier_drops_by_fields_as_a_scan_would(ops: list[tuple[str, str, str, int]]) -> None:
    """A label drops a comment's verdicts through the index, not a scan of the tier
    (every worker does it for every label heard): the same entries as a scan, LRU
    eviction included."""
    tier = cache_mod.LocalTier(5)
    outcome = cache_mod.outcome_from_json({"verdict": "ham", "p": 0.1, "discard": False,
                                           "reasons": [], "model_version": "v"})
    for op, fields, vkey, bucket in ops:
        key = (fields, vkey, bucket)
        if op == "put":
            tier.put(key, cache_mod.Entry(outcome, 1, 0.0))
        elif op == "get":
            tier.get(key)
        elif op == "drop":
            tier.drop(key)
        elif op == "clear":
            tier.clear()
        else:
            expected = [k for k in tier._data if k[0] == fields]
            assert tier.drop_fields(fields) == len(expected)
            assert not any(k[0] == fields for k in tier._data)
        assert len(tier) <= 5
        indexed = [k for keys in tier._by_fields.values() for k in keys]
        assert sorted(indexed) == sorted(tier._data)


def test_labels_heard_long_ago_are_not_kept_for_the_race_guard() -> None:
    """The guard against a verdict stored after a label raced it keeps only labels
    young enough to race a check still running, not one entry per label ever heard."""
    from service.config import load_settings

    now = [1000.0]
    cache = cache_mod.VerdictCache(load_settings({"env": "testing"}), None, clock=lambda: now[0])
    for i in range(500):
        cache.heard(f"fields-{i}")
        now[0] += 1.0
    assert len(cache._dropped) <= cache_mod.DROPPED_SECONDS + 1
    assert "fields-499" in cache._dropped and "fields-0" not in cache._dropped


def test_a_verdict_read_from_redis_shares_its_strings() -> None:
    """orjson makes a new string for every value it reads: a verdict from Redis joins
    the local tier, and its reasons must not each hold their own "spam", "token" and
    model version (about 1 KB more per entry than a verdict scored here)."""
    import orjson

    from service.scoring.model import Reason
    from service.scoring.verdicts import Outcome, Verdict

    scored = Outcome(Verdict.SPAM, 0.97, False,
                     [Reason("token", "the word “free”", "spam", 1.25)], "spam-v1", rule=None)
    raw = orjson.dumps({"o": cache_mod.outcome_to_json(scored)})
    a, b = (cache_mod.outcome_from_json(orjson.loads(raw)["o"]) for _ in range(2))
    assert a == scored and b == scored
    assert a.model_version is b.model_version
    for ra, rb in zip(a.reasons, b.reasons, strict=True):
        assert ra.kind is rb.kind and ra.direction is rb.direction
        assert ra.description is rb.description
