"""A replayed signed Coral request is answered as before, never scored or recorded again.

Coral signs the body alone (HMAC-SHA256 in X-Coral-Signature, no timestamp:
coralproject/talk, services/fetch and models/settings), so a timestamp check would
refuse every real request. What a replay could do is record the same comment again
and spend scoring time; it is answered from memory instead: in Redis (every
worker) when configured, otherwise in the worker's own memory.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.api import coral
from service.resources import EXTENSION, Resources
from service.store import schema as t
from tests.test_coral import SECRET, SPAM, TENANT, coral_body, coral_signature, post

WITH_TOXICITY_MODEL = True


def stored(res: Resources) -> int:
    return int(res.store.read(
        lambda c: c.execute(select(func.count()).select_from(t.comments)).scalar()))


@pytest.fixture(params=["memory", "redis"])
def two_workers(request: pytest.FixtureRequest, make_app: Callable[..., Flask],
                tmp_path_factory: pytest.TempPathFactory) -> tuple[Flask, Flask]:
    db = f"sqlite:///{tmp_path_factory.mktemp('coral')}/shared.db"
    extra = {"redis_url": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    first = make_app(database_url=db, **extra)
    second = make_app(database_url=db, **extra)
    coral.add_secret(first.extensions[EXTENSION].store, "https://news.example.org", TENANT, SECRET)
    return first, second


def test_a_replay_is_answered_as_before_and_not_recorded_again(
    two_workers: tuple[Flask, Flask], request: pytest.FixtureRequest
) -> None:
    first, second = two_workers
    res: Resources = first.extensions[EXTENSION]
    body = coral_body(SPAM)
    signature = coral_signature([SECRET], body)
    answer = post(first.test_client(), body, signature)
    assert answer.status_code == 200 and answer.get_json()["status"] == "REJECTED"
    assert stored(res) == 1
    again = post(first.test_client(), body, signature)
    assert again.status_code == 200 and again.get_json() == answer.get_json()
    assert stored(res) == 1
    if "redis" in request.node.callspec.id:  # the other worker knows it through Redis
        other = post(second.test_client(), body, signature)
        assert other.get_json() == answer.get_json() and stored(res) == 1
    else:  # without Redis, the other worker has not seen it: scored and recorded once more
        assert post(second.test_client(), body, signature).get_json() == answer.get_json()
        assert stored(res) == 2
    # A new comment (another body) is scored and recorded as usual.
    fresh = coral_body(SPAM + " again")
    before = stored(res)
    assert post(first.test_client(), fresh, coral_signature([SECRET], fresh)).status_code == 200
    assert stored(res) == before + 1
    # A new policy is a new answer, even for the same request.
    coral.set_policy(res.store, TENANT, {"spam_status": "PREMOD"})
    assert post(first.test_client(), body, signature).get_json()["status"] == "PREMOD"


def test_a_forged_replay_is_still_refused(two_workers: tuple[Flask, Flask]) -> None:
    first, _ = two_workers
    body = coral_body(SPAM)
    assert post(first.test_client(), body, coral_signature([SECRET], body)).status_code == 200
    tampered = body.replace(b"SUBSCRIBE", b"subscribe")
    assert post(first.test_client(), tampered, coral_signature([SECRET], body)).status_code == 401
