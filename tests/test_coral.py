"""Coral's external moderation phase: requests signed exactly as Coral signs them
(JSON.stringify(body, null, 2), HMAC-SHA256 of the raw body, one ``sha256=``
value per active secret), rotation, policy, and the CLI."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.api import coral
from service.resources import EXTENSION
from service.store import schema as t
from service.store.db import Store

SECRET = "ssc_first-secret-0123456789abcdef"
TENANT = "tenant-7f3a"
SPAM = "Check out my channel and SUBSCRIBE!!! http://bit.ly/free-money win an iPhone"
TOXIC = "You are a stupid idiot and everyone hates you."
KIND = "The council should publish the budget before the vote, not after. Good reporting."
WITH_TOXICITY_MODEL = True  # conftest's model_dir adds the toxicity family


@pytest.fixture
def store(app: Flask) -> Store:
    s: Store = app.extensions[EXTENSION].store
    coral.add_secret(s, "https://news.example.org", TENANT, SECRET)
    return s


def coral_body(text: str, tenant: str = TENANT, html: bool = False) -> bytes:
    """The request as Coral's external phase builds it (phases/external.ts)."""
    payload = {
        "tenant": {"id": tenant, "domain": "comments.news.example.org"},
        "action": "NEW",
        "comment": {"body": f"<p>{text}</p>" if html else text, "parentID": None},
        "author": {"id": "user-42", "role": "COMMENTER"},
        "story": {"id": "story-1", "url": "https://news.example.org/2026/budget"},
        "site": {"id": "site-1"},
    }
    return json.dumps(payload, indent=2, ensure_ascii=False).encode()


def coral_signature(secrets: list[str], body: bytes) -> str:
    return ",".join(
        "sha256=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets
    )


def post(client: FlaskClient, body: bytes, signature: str | None) -> Any:
    headers = {"X-Coral-Signature": signature} if signature is not None else {}
    return client.post("/coral/moderate", data=body, headers=headers,
                       content_type="application/json")


def test_signature_helper_matches_corals_format() -> None:
    body = coral_body("hello")
    assert coral.sign(SECRET, body) == coral_signature([SECRET], body)


def test_kind_comment_passes_with_204(client: FlaskClient, store: Store) -> None:
    body = coral_body(KIND)
    r = post(client, body, coral_signature([SECRET], body))
    assert r.status_code == 204 and r.data == b""


def test_toxic_comment_is_withheld_and_flagged(client: FlaskClient, store: Store) -> None:
    body = coral_body(TOXIC, html=True)
    r = post(client, body, coral_signature([SECRET], body))
    assert r.status_code == 200
    assert r.get_json() == {
        "status": "SYSTEM_WITHHELD",
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
    }
    row = store.read(lambda c: c.execute(select(t.comments)).one())
    assert row.source == "coral" and row.content == TOXIC  # HTML stripped
    assert row.verdict in {"ham", "unsure", "spam"}
    assert row.toxicity["scores"]["TOXICITY"] >= 0.8
    assert row.permalink == "https://news.example.org/2026/budget"


def test_spam_comment_is_rejected(client: FlaskClient, store: Store) -> None:
    body = coral_body(SPAM)
    r = post(client, body, coral_signature([SECRET], body))
    assert r.status_code == 200
    data = r.get_json()
    assert data["status"] == "REJECTED"
    assert {"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"} in data["actions"]


@pytest.mark.parametrize("signature", [
    None,
    "",
    "sha256=" + "0" * 64,
    coral_signature(["ssc_some-other-tenants-secret-00"], coral_body(TOXIC)),
    "sha1=" + hmac.new(SECRET.encode(), coral_body(TOXIC), hashlib.sha1).hexdigest(),
    coral_signature([SECRET], coral_body(TOXIC))[:-2],
])
def test_forged_or_missing_signature_is_refused(client: FlaskClient, store: Store,
                                                signature: str | None) -> None:
    r = post(client, coral_body(TOXIC), signature)
    assert r.status_code == 401
    assert r.get_json()["error"]["code"] == "unauthorized"
    assert store.read(lambda c: c.execute(select(t.comments)).all()) == []


def test_signature_covers_the_raw_body(client: FlaskClient, store: Store) -> None:
    body = coral_body(KIND)
    signature = coral_signature([SECRET], body)
    same_json_other_bytes = json.dumps(json.loads(body)).encode()  # re-serialised
    assert post(client, same_json_other_bytes, signature).status_code == 401
    assert post(client, body.replace(b"before", b"after!"), signature).status_code == 401


def test_unknown_tenant_is_refused(client: FlaskClient, store: Store) -> None:
    body = coral_body(KIND, tenant="someone-else")
    assert post(client, body, coral_signature([SECRET], body)).status_code == 401


def test_rotation_accepts_old_and_new_until_the_old_expires(client: FlaskClient,
                                                            store: Store) -> None:
    new = coral.rotate_secret(store, TENANT, "ssc_second-secret-abcdef0123456789")
    body = coral_body(TOXIC)
    assert post(client, body, coral_signature([SECRET], body)).status_code == 200
    assert post(client, body, coral_signature([new], body)).status_code == 200
    assert post(client, body, coral_signature([SECRET, new], body)).status_code == 200
    newest = coral.rotate_secret(store, TENANT, "ssc_third-secret-abcdef0123456789",
                                 grace=timedelta(0))
    assert post(client, body, coral_signature([SECRET], body)).status_code == 401
    assert post(client, body, coral_signature([new], body)).status_code == 401
    assert post(client, body, coral_signature([new, newest], body)).status_code == 200


def test_policy_changes_the_answer(client: FlaskClient, store: Store) -> None:
    coral.set_policy(store, TENANT, {"toxic_status": "PREMOD", "toxic_threshold": 0.3})
    body = coral_body(TOXIC)
    assert post(client, body, coral_signature([SECRET], body)).get_json()["status"] == "PREMOD"
    coral.set_policy(store, TENANT, {"toxic_status": ""})
    assert post(client, body, coral_signature([SECRET], body)).get_json() == {
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}]
    }


@pytest.mark.parametrize("changes", [
    {"toxic_status": "DELETED"}, {"toxic_threshold": 2}, {"toxic_threshold": "high"},
    {"colour": "red"},
])
def test_invalid_policies_are_refused(store: Store, changes: dict[str, Any]) -> None:
    from service.errors import ValidationError

    with pytest.raises(ValidationError):
        coral.set_policy(store, TENANT, changes)


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1,2]", b'{"comment": {"body": 5}}'])
def test_malformed_bodies_get_a_clear_error(client: FlaskClient, store: Store,
                                            raw: bytes) -> None:
    r = post(client, raw, coral_signature([SECRET], raw))
    assert r.status_code in {400, 401}
    assert "error" in r.get_json()


def test_empty_comment_passes(client: FlaskClient, store: Store) -> None:
    body = coral_body("<p></p>")
    assert post(client, body, coral_signature([SECRET], body)).status_code == 204


def test_cli_manages_secrets_and_policy(app: Flask, sqlite_url: str, tmp_path: Path,
                                        model_dir: Path) -> None:
    from service.cli.main import main
    env = {"COMMENTMOD_DATABASE_URL": sqlite_url, "COMMENTMOD_DATA_DIR": str(tmp_path / "var"),
           "COMMENTMOD_MODEL_DIR": str(model_dir), "COMMENTMOD_LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    r = runner.invoke(main, ["coral", "add-secret", "--site", "news.example.org",
                             "--tenant", "t1"], env=env)
    assert r.exit_code == 0, r.output
    generated = r.output.strip()
    assert generated.startswith("ssc_") and len(generated) > 30
    r = runner.invoke(main, ["coral", "rotate", "--tenant", "t1", "--secret",
                             "ssc_given-secret-0123456789abcdef"], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["coral", "policy", "--tenant", "t1", "--set", "toxic_status=premod",
                             "--set", "toxic_threshold=0.7"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["toxic_status"] == "PREMOD"
    r = runner.invoke(main, ["coral", "policy", "--tenant", "t1", "--set", "toxic_status=GONE"],
                      env=env)
    assert r.exit_code == 2 and "toxic_status must be one of" in r.output
    r = runner.invoke(main, ["coral", "list"], env=env)
    assert r.exit_code == 0
    lines = [line for line in r.output.splitlines() if line.startswith("t1")]
    assert len(lines) == 2 and all("active" in line for line in lines)
    assert generated not in r.output  # only hints are listed
    r = runner.invoke(main, ["coral", "rotate", "--tenant", "nobody"], env=env)
    assert r.exit_code == 2


def test_secrets_on_both_databases(db_url: str) -> None:
    from service.store import migrate
    from service.store.db import engine_for

    s = Store(engine_for(db_url))
    migrate.upgrade(s.engine)
    coral.add_secret(s, "news.example.org", "t9", SECRET)
    coral.rotate_secret(s, "t9", "ssc_second-secret-abcdef0123456789", grace=timedelta(0))
    active = [x for x in coral.tenant_secrets(s, "t9") if x.active(coral.now())]
    assert [x.secret for x in active] == ["ssc_second-secret-abcdef0123456789"]
    s.engine.dispose()
