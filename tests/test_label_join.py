"""No label is lost, and a label sticks (issue 14).

A label by guid alone may reach a worker before the check it names is
recorded (the check waits in another worker's write-behind queue): it is kept
pending and joined when the check lands. A guid never issued here is a 404.
The next check of a labelled comment answers with the label.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.store import schema as t
from service.store.db import Store, engine_for, guid_issued, new_guid, signed_guid

SECRET = "test-secret"


def test_signed_guids_are_recognised_and_others_are_not() -> None:
    guid = signed_guid(SECRET)
    assert len(guid) == 36 and guid.count("-") == 4
    assert guid_issued(guid, SECRET)
    assert not guid_issued(guid, "another secret")
    assert not guid_issued(new_guid(), SECRET)  # a plain uuid4: never issued by us
    flipped = guid[:-1] + ("0" if guid[-1] != "0" else "1")
    for bad in (flipped, "", "x" * 36, guid.replace("-", ""), "zz" + guid[2:]):
        assert not guid_issued(bad, SECRET)


def test_a_label_for_a_check_not_yet_recorded_waits_and_joins(store: Store) -> None:
    from service.store.db import CheckRecord

    guid = signed_guid(SECRET)
    assert store.feedback(label="spam", source="site", actor="a", site_id=None, guid=guid,
                          issued=True) == (None, None)
    assert store.pending_count() == 1
    record = CheckRecord(guid=guid, site_id=None, source="api", content="win a prize",
                         fields={}, extra={}, spam_probability=0.2, verdict="ham",
                         discard=False, reasons=[], model_version="m")
    store.record_checks([record])
    assert store.pending_count() == 0
    found = store.find_comment(guid=guid)
    assert found is not None
    assert store.latest_label(int(found["id"])) == "spam"


def test_a_pending_label_of_another_sites_comment_is_dropped(store: Store) -> None:
    from service.store.db import CheckRecord

    mine, theirs = store.ensure_site("mine.example"), store.ensure_site("theirs.example")
    guid = signed_guid(SECRET)
    store.feedback(label="spam", source="site", actor="a", site_id=theirs, guid=guid,
                   issued=True)
    store.record_checks([CheckRecord(guid=guid, site_id=mine, source="api", content="hello",
                                     fields={}, extra={}, spam_probability=0.1, verdict="ham",
                                     discard=False, reasons=[], model_version="m")])
    found = store.find_comment(guid=guid)
    assert found is not None and store.latest_label(int(found["id"])) is None
    assert store.pending_count() == 0


def _check(site: int | None, content: str, received_at: Any = None) -> Any:
    from service.store.db import CheckRecord

    return CheckRecord(guid=new_guid(), site_id=site, source="akismet", content=content,
                       fields={}, extra={}, spam_probability=0.1, verdict="ham",
                       discard=False, reasons=[], model_version="m", received_at=received_at)


def test_a_label_by_text_before_its_check_lands_labels_the_check_too(store: Store) -> None:
    """Akismet's submit-spam (or feedback without a guid) right after comment-check,
    answered by another worker: no comment with that text is recorded yet. The label
    is stored on a new copy at once, and the check, when it lands, is labelled too."""
    from service.store.db import now

    site = store.ensure_site("news.example")
    asked = now()
    copy_id, _ = store.feedback(label="spam", source="site", actor="site:1", site_id=site,
                                content="Win a FREE cruise, call now")
    assert copy_id is not None and store.latest_label(copy_id) == "spam"
    assert store.pending_count() == 1
    store.record_checks([_check(site, "win a free cruise,   call NOW", received_at=asked)])
    assert store.pending_count() == 0
    checked = store.find_comment(content="Win a FREE cruise, call now", site_id=site)
    assert checked is not None and int(checked["id"]) != copy_id
    assert store.latest_label(int(checked["id"])) == "spam"
    assert store.latest_label(copy_id) == "spam"  # the copy keeps its label: nothing lost


def test_a_label_by_text_waits_only_for_a_check_received_before_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another site's check, or a check received after the label, is not the one the
    label was meant for; one that never comes leaves the label on its copy alone."""
    from datetime import timedelta

    from service.store import db
    from service.store.db import now

    mine, theirs = store.ensure_site("mine.example"), store.ensure_site("theirs.example")
    store.feedback(label="ham", source="site", actor="a", site_id=mine,
                   content="Thanks for the report on the bridge")
    later = now() + timedelta(seconds=db.TEXT_LABEL_SLACK_SECONDS + 60)
    store.record_checks([_check(theirs, "Thanks for the report on the bridge", now()),
                         _check(mine, "Thanks for the report on the bridge", later)])
    assert store.pending_count() == 1
    for site in (mine, theirs):
        found = store.find_comment(content="Thanks for the report on the bridge", site_id=site)
        assert found is not None and store.latest_label(int(found["id"])) is None
    monkeypatch.setattr(db, "TEXT_LABEL_WAIT_SECONDS", 0)
    assert store.join_pending() == 0
    assert store.pending_count() == 0


def test_labels_by_text_for_comments_never_checked_wait_in_bounded_numbers(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site labelling many comments it never checked keeps each label (on its own
    copy), but only the newest few wait for a check: the writer's join stays cheap."""
    from service.store import db

    monkeypatch.setattr(db, "TEXT_LABEL_MAX_WAITING", 5)
    site = store.ensure_site("news.example")
    ids = [store.feedback(label="spam", source="site", actor="a", site_id=site,
                          content=f"never checked {i}")[0] for i in range(12)]
    assert store.pending_count() <= 5
    assert all(i is not None and store.latest_label(i) == "spam" for i in ids)


def test_a_check_written_between_the_labels_look_up_and_its_copy_is_labelled(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check lands after the label looked for it and before the copy is written:
    its id is the smaller one, and it is still the comment the label was meant for."""
    from service.store.db import now

    site = store.ensure_site("news.example")
    asked = now()
    looked_up = Store.find_comment

    def finds_nothing_then_the_check_lands(self: Store, **kw: Any) -> Any:
        found = looked_up(self, **kw)
        self.record_checks([_check(site, "Cheap flights, call now", received_at=asked)])
        return found

    monkeypatch.setattr(Store, "find_comment", finds_nothing_then_the_check_lands)
    copy_id, _ = store.feedback(label="spam", source="site", actor="a", site_id=site,
                                content="Cheap flights, call now")
    monkeypatch.setattr(Store, "find_comment", looked_up)
    assert copy_id is not None and store.pending_count() == 0
    check = store.read(lambda c: c.execute(
        select(t.comments.c.id).where(t.comments.c.source == "akismet")).scalar_one())
    assert check < copy_id and store.latest_label(check) == "spam"


def test_a_label_by_text_of_a_comment_seen_before_needs_no_wait(store: Store) -> None:
    site = store.ensure_site("news.example")
    store.record_checks([_check(site, "Buy cheap watches here")])
    comment_id, _ = store.feedback(label="spam", source="site", actor="a", site_id=site,
                                   content="Buy cheap watches here")
    assert comment_id is not None and store.latest_label(comment_id) == "spam"
    assert store.pending_count() == 0


def test_feedback_for_a_guid_never_issued_is_404(client: Any) -> None:
    r = client.post("/api/v1/feedback", json={"guid": new_guid(), "label": "spam"})
    assert r.status_code == 404
    assert "never issued" in r.get_json()["error"]["message"]


def test_a_labelled_comment_answers_with_its_label(make_app: Callable[..., Flask]) -> None:
    app = make_app(cache_ttl_seconds=3600)
    client = app.test_client()
    body = {"content": "Call 0800 123 456 now to claim your FREE cruise!!!", "author": "Bob"}
    first = client.post("/api/v1/check", json=body).get_json()
    r = client.post("/api/v1/feedback", json={"guid": first["guid"], "label": "ham"})
    assert r.status_code == 200 and r.get_json()["comment_id"] is not None
    again = client.post("/api/v1/check", json=body).get_json()
    assert again["verdict"] == "ham"
    assert again["reasons"][0]["description"] == "marked ham by the site"
    # Spam labels catch near-exact repeats by anyone; ham labels only the comment itself.
    spam = {"content": "Cheap pills at pills-shop dot com, order today", "author": "x"}
    first = client.post("/api/v1/check", json=spam).get_json()
    client.post("/api/v1/feedback", json={"guid": first["guid"], "label": "spam"})
    repeat = {"content": "  CHEAP pills at pills-shop dot com,   order today", "author": "y"}
    hit = client.post("/api/v1/check", json=repeat).get_json()
    assert hit["verdict"] == "spam"
    assert hit["reasons"][0]["description"] == "a repeat of a comment marked spam by the site"
    other = client.post("/api/v1/check", json={**body, "author": "Mallory"}).get_json()
    assert not other["reasons"] or "marked" not in other["reasons"][0]["description"]


def _post(conn: http.client.HTTPConnection, path: str, body: bytes,
          ctype: str) -> tuple[int, dict[str, str], bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": ctype})
    r = conn.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def _four_workers(
    serve: Callable[..., str], sqlite_url: str
) -> tuple[Store, str, list[http.client.HTTPConnection]]:
    """A migrated SQLite store with a site key, commentmod on it with 4 workers and
    write-behind, and two connections (gunicorn hands them to different workers)."""
    from service.store import migrate

    store = Store(engine_for(sqlite_url))
    migrate.upgrade(store.engine)
    key, _ = store.create_key("news.example")
    base = serve(workers=4, env={"COMMENTMOD_ENV": "development",
                                 "COMMENTMOD_WRITE_BEHIND_INTERVAL_SECONDS": "1.0"})
    host = urllib.parse.urlsplit(base)
    conns = [http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=30)
             for _ in range(2)]
    return store, key, conns


def _labelled_within(store: Store, guids: list[str], wanted: int, seconds: float) -> int:
    """How many of the comments with these guids hold a label, waiting up to ``seconds``
    for ``wanted`` of them (checks land from the workers' write-behind meanwhile)."""
    deadline = time.monotonic() + seconds
    labelled = 0
    while time.monotonic() < deadline:
        store.join_pending()
        labelled = store.read(lambda c: c.execute(
            select(func.count(func.distinct(t.labels.c.comment_id)))
            .select_from(t.labels.join(t.comments, t.comments.c.id == t.labels.c.comment_id))
            .where(t.comments.c.guid.in_(guids))
        ).scalar_one())
        if labelled == wanted:
            break
        time.sleep(0.5)
    return labelled


@pytest.mark.slow
def test_no_label_lost_across_four_workers(
    serve: Callable[..., str], sqlite_url: str, tmp_path: Path
) -> None:
    """2,000 check+feedback pairs back to back on 4 workers with write-behind on: 0 lost,
    over the JSON API and over Akismet; then every labelled comment answers with its label."""
    store, key, conns = _four_workers(serve, sqlite_url)
    pairs, lost, pending, guids = 2000, 0, 0, []
    for i in range(pairs):
        # Two connections: gunicorn hands them to different workers, so the label
        # often reaches a worker that does not hold the check in its queue.
        check_conn, label_conn = conns[i % 2], conns[(i + 1) % 2]
        content = f"comment number {i} about the council budget vote, call 555-{i:04d}"
        if i % 4 == 3:  # Akismet: comment-check, then submit-spam with the guid only
            form = {"api_key": key, "blog": "https://news.example", "user_ip": "10.0.0.1",
                    "comment_content": content, "comment_author": f"a{i}"}
            status, headers, _ = _post(check_conn, "/1.1/comment-check",
                                       urllib.parse.urlencode(form).encode(),
                                       "application/x-www-form-urlencoded")
            guid = headers["x-akismet-guid"]
            sub = {"api_key": key, "blog": "https://news.example", "user_ip": "10.0.0.1",
                   "guid": guid}
            status, _, answer = _post(label_conn, "/1.1/submit-spam",
                                      urllib.parse.urlencode(sub).encode(),
                                      "application/x-www-form-urlencoded")
            lost += status != 200 or not answer.startswith(b"Thanks")
        else:
            status, _, raw = _post(check_conn, "/api/v1/check",
                                   json.dumps({"content": content}).encode(), "application/json")
            guid = json.loads(raw)["guid"]
            status, _, raw = _post(label_conn, "/api/v1/feedback",
                                   json.dumps({"guid": guid, "label": "spam"}).encode(),
                                   "application/json")
            lost += status != 200
            pending += bool(json.loads(raw).get("pending"))
        guids.append(guid)
    assert lost == 0
    assert pending > pairs // 10  # the race was there: labels arrived before their checks
    labelled = _labelled_within(store, guids, pairs, seconds=30)
    assert labelled == pairs, f"{pairs - labelled} labels lost"
    assert store.pending_count() == 0
    time.sleep(1.5)  # every worker's label memory refreshes within a second
    for i in range(0, pairs, 97):
        if i % 4 == 3:
            continue
        content = f"comment number {i} about the council budget vote, call 555-{i:04d}"
        status, _, raw = _post(conns[i % 2], "/api/v1/check",
                               json.dumps({"content": content}).encode(), "application/json")
        answer = json.loads(raw)
        assert answer["verdict"] == "spam", answer
        assert "marked spam" in answer["reasons"][0]["description"]
    store.engine.dispose()


@pytest.mark.slow
def test_no_label_by_text_lost_across_four_workers(
    serve: Callable[..., str], sqlite_url: str
) -> None:
    """200 check + label-by-text pairs (Akismet submit-spam without a guid, and JSON
    feedback with the content only), each label sent to another connection than its
    check, on 4 workers with write-behind on: every checked comment is labelled."""
    store, key, conns = _four_workers(serve, sqlite_url)
    auth = {"api_key": key, "blog": "https://news.example", "user_ip": "10.0.0.1"}
    pairs, guids = 200, []
    for i in range(pairs):
        check_conn, label_conn = conns[i % 2], conns[(i + 1) % 2]
        content = f"text label {i}: the council's budget vote, call 555-{i:04d}"
        form = {**auth, "comment_content": content, "comment_author": f"a{i}"}
        if i % 2:
            status, headers, _ = _post(check_conn, "/1.1/comment-check",
                                       urllib.parse.urlencode(form).encode(),
                                       "application/x-www-form-urlencoded")
            guids.append(headers["x-akismet-guid"])
            status, _, answer = _post(label_conn, "/1.1/submit-spam",
                                      urllib.parse.urlencode(form).encode(),
                                      "application/x-www-form-urlencoded")
            assert status == 200 and answer.startswith(b"Thanks"), answer
        else:
            headers_json = json.dumps({"content": content}).encode()
            conn_auth = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
            check_conn.request("POST", "/api/v1/check", body=headers_json, headers=conn_auth)
            guids.append(json.loads(check_conn.getresponse().read())["guid"])
            label_conn.request("POST", "/api/v1/feedback", headers=conn_auth,
                               body=json.dumps({"content": content, "label": "spam"}).encode())
            r = label_conn.getresponse()
            assert r.status == 200, r.read()
            r.read()
    labelled = _labelled_within(store, guids, pairs, seconds=30)
    assert labelled == pairs, f"{pairs - labelled} checked comments left unlabelled"
    assert store.pending_count() == 0
    store.engine.dispose()
