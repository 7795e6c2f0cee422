"""Moderator accounts under attack (issue 16): one login throttle for the web login and
HTTP Basic, per name and per address, across workers; failures in the audit log; no
timing difference between unknown and known names; sessions that really end.
"""

from __future__ import annotations

import base64
import re
import statistics
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.moderation import login_throttle
from service.moderation import moderators as mods
from service.resources import EXTENSION, Resources
from service.store import schema as t
from tests.moderation_helpers import PASSWORD

WRONG = "wrong password, again"


def res_of(app: Flask) -> Resources:
    resources: Resources = app.extensions[EXTENSION]
    return resources


def basic(name: str = "alice", password: str = PASSWORD) -> dict[str, str]:
    raw = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def token(client: FlaskClient, path: str = "/moderate/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def web_login(client: FlaskClient, name: str = "alice", password: str = PASSWORD) -> int:
    data = {"name": name, "password": password, "csrf_token": token(client)}
    return client.post("/moderate/login", data=data).status_code


def api_status(client: FlaskClient, name: str = "alice", password: str = PASSWORD) -> int:
    return client.get("/api/v1/moderation/stats", headers=basic(name, password)).status_code


@pytest.fixture(params=["database", "redis"])
def workers(request: pytest.FixtureRequest, make_app: Callable[..., Flask],
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Flask, Flask]:
    """Two apps on one database, as two gunicorn workers are: with Redis counting the
    failures, or without it (the audit log counts them)."""
    db = f"sqlite:///{tmp_path_factory.mktemp('shared')}/shared.db"
    extra = {"redis_url": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    first = make_app(database_url=db, password_hash_cost="fast", **extra)
    second = make_app(database_url=db, password_hash_cost="fast", **extra)
    mods.create(res_of(first).store, "alice", PASSWORD, hasher=mods.FAST)
    mods.create(res_of(first).store, "bob", PASSWORD, hasher=mods.FAST)
    return first, second


# --- the throttle ----------------------------------------------------------------------


def test_web_failures_lock_the_api_out_too_on_another_worker(workers: tuple[Flask, Flask]) -> None:
    web, api = workers[0].test_client(), workers[1].test_client()
    for _ in range(login_throttle.NAME_FAILURES):
        assert web_login(web, password=WRONG) == 401
    assert api_status(api) == 429  # the right password, through the other door
    assert web_login(web) == 429
    assert api_status(api, "bob") == 200  # another name is not affected


def test_api_failures_lock_the_web_login_out(workers: tuple[Flask, Flask]) -> None:
    api, web = workers[0].test_client(), workers[1].test_client()
    for _ in range(login_throttle.NAME_FAILURES):
        assert api_status(api, password=WRONG) == 401
    assert api_status(api, password=WRONG) == 429  # no argon2 spent on this guess
    assert web_login(web) == 429
    assert web_login(web, "bob") == 302


def test_one_address_spraying_many_names_is_stopped(workers: tuple[Flask, Flask]) -> None:
    client = workers[0].test_client()
    for i in range(login_throttle.ADDRESS_FAILURES):
        assert api_status(client, f"user{i}", WRONG) == 401
    assert api_status(client, "bob") == 429  # the same address, a name never tried
    other = workers[1].test_client()
    headers = {**basic("bob"), "X-Forwarded-For": "ignored"}
    r = other.get("/api/v1/moderation/stats", headers=headers,
                  environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert r.status_code == 200  # another address


def test_failures_are_in_the_audit_log(workers: tuple[Flask, Flask]) -> None:
    client = workers[0].test_client()
    api_status(client, password=WRONG)
    web_login(client, password=WRONG)
    rows = res_of(workers[0]).store.read(lambda c: c.execute(
        select(t.audit_log).where(t.audit_log.c.action == "login.failed")).all())
    assert [(r.target, r.detail["via"]) for r in rows] == [("alice", "basic"), ("alice", "web")]
    assert all(r.actor == "login@127.0.0.1" for r in rows)


# --- timing ----------------------------------------------------------------------------


def test_unknown_and_known_names_cost_the_same(make_app: Callable[..., Flask]) -> None:
    """With the production hash parameters, an unknown name costs what a real one does
    (a cheap dummy hash made 3 ms against 90 ms). CPU time of the process, so other
    processes on the machine do not count; argon2's lanes are threads of this one."""
    app = make_app(password_hash_cost="standard")
    mods.create(res_of(app).store, "alice", PASSWORD)
    client = app.test_client()
    api_status(client, "nobody", WRONG)  # warm: the dummy hash is made once per process

    def cost(name: str) -> float:
        times = []
        for _ in range(3):
            start = time.process_time()
            assert api_status(client, name, WRONG) == 401
            times.append(time.process_time() - start)
        return statistics.median(times)

    known, unknown = cost("alice"), cost("nobody")
    said = f"unknown {unknown * 1000:.0f} ms, known {known * 1000:.0f} ms"
    assert 1 / 2 < unknown / known < 2, said


def test_the_dummy_hash_has_the_real_parameters() -> None:
    for hasher in (mods.STANDARD, mods.FAST):
        params = hasher.hash("x").split("$")[3]
        assert mods.dummy_hash(hasher).split("$")[3] == params


# --- sessions that end -----------------------------------------------------------------


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    app = make_app(password_hash_cost="fast")
    mods.create(res_of(app).store, "alice", PASSWORD, hasher=mods.FAST)
    return app


def logged_in(app: Flask) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert web_login(client) == 302
    cookie = client.get_cookie("session")
    assert cookie is not None and client.get("/moderate/").status_code == 200
    return client, cookie.value


def replay(app: Flask, cookie: str) -> int:
    """Open the queue with a copy of an old session cookie, as a thief would."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get("/moderate/").status_code


def test_logout_ends_the_session_for_a_copied_cookie(app: Flask) -> None:
    client, cookie = logged_in(app)
    assert replay(app, cookie) == 200
    csrf = token(client, "/moderate/")
    assert client.post("/moderate/logout", data={"csrf_token": csrf}).status_code == 302
    assert replay(app, cookie) == 302  # back to the login page


def test_disabling_ends_sessions_and_enabling_does_not_revive_them(app: Flask) -> None:
    _, cookie = logged_in(app)
    mods.set_disabled(res_of(app).store, "alice")
    assert replay(app, cookie) == 302
    mods.set_disabled(res_of(app).store, "alice", disabled=False)
    assert replay(app, cookie) == 302


def test_a_new_password_ends_sessions_and_the_old_password(app: Flask) -> None:
    _, cookie = logged_in(app)
    client = app.test_client()
    assert api_status(client) == 200  # the old password is now in the API's auth cache
    new = "a brand new password"
    mods.set_password(res_of(app).store, "alice", new, hasher=mods.FAST)
    assert replay(app, cookie) == 302
    assert api_status(client) == 401
    assert api_status(client, password=new) == 200
    assert web_login(app.test_client(), password=new) == 302
