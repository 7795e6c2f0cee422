"""Liveness, readiness, metrics and logs."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.logs import JsonFormatter


def test_healthz(client: FlaskClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_readyz_reports_model_and_storage(client: FlaskClient) -> None:
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready"
    assert body["checks"]["model"]["ok"] and body["checks"]["model"]["version"].startswith("spam-")
    assert body["checks"]["storage"] == {"ok": True}


def test_readyz_is_503_without_a_model(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    client = make_app(model_dir=tmp_path / "empty").test_client()
    r = client.get("/readyz")
    assert r.status_code == 503
    assert not r.get_json()["checks"]["model"]["ok"]
    # Scoring without a model is a clear 503, not a crash.
    r = client.post("/api/v1/check", json={"content": "hello"})
    assert r.status_code == 503
    assert r.get_json()["error"]["code"] == "model_unavailable"


def test_readyz_is_503_when_the_database_is_unreachable(make_app: Callable[..., Flask],
                                                         tmp_path: Path) -> None:
    app = make_app(env="testing")
    from service.resources import EXTENSION
    from service.store.db import engine_for

    app.extensions[EXTENSION].store.engine = engine_for(
        "postgresql://postgres@127.0.0.1:1/none")
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert not r.get_json()["checks"]["storage"]["ok"]
    # Scoring still answers: a check that cannot be recorded is logged and counted.
    r = app.test_client().post("/api/v1/check", json={"content": "hello there"})
    assert r.status_code == 200


def test_metrics_count_requests_and_verdicts(client: FlaskClient) -> None:
    client.post("/api/v1/check", json={"content": "hello neighbours"})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'commentmod_requests_total{endpoint="api.check",status="200"}' in text
    assert "commentmod_request_seconds_bucket" in text
    assert "commentmod_verdicts_total" in text
    assert "commentmod_model_info" in text


def test_logs_are_json_lines_without_comment_bodies(client: FlaskClient,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    secret_text = "my very private comment body 12345"
    with caplog.at_level(logging.DEBUG):
        client.post("/api/v1/check", json={"content": secret_text})
        client.post("/api/v1/check", json={"content": secret_text, "author": 5})
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert lines
    for line in lines:
        event = json.loads(line)
        assert {"ts", "level", "event"} <= set(event)
        assert secret_text not in line


@pytest.mark.slow
def test_served_metrics_aggregate_several_workers(serve: Callable[..., str]) -> None:
    base = serve(workers=2)
    for _ in range(20):
        req = urllib.request.Request(base + "/api/v1/check", data=b'{"content": "hi all"}',
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()
    text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
    line = next(x for x in text.splitlines()
                if x.startswith('commentmod_requests_total{endpoint="api.check",status="200"}'))
    assert float(line.rsplit(" ", 1)[1]) == 20.0


def test_front_door_answers_json_to_api_clients_and_a_page_to_browsers(
    client: FlaskClient,
) -> None:
    r = client.get("/")  # curl and API clients: JSON
    assert r.status_code == 200 and r.mimetype == "application/json"
    links = r.get_json()["links"]
    hrefs = {link["href"] for link in links}
    assert {"/api/v1/openapi.json", "/moderate/", "/healthz"} <= hrefs
    for link in links:
        if link["method"] == "GET":  # every link leads somewhere (the queue: to its login)
            assert client.get(link["href"]).status_code in (200, 302), link
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    body = page.get_data(as_text=True)
    for href in ("/api/v1/openapi.json", "/moderate/", "/healthz"):
        assert f"<a href='{href}'>" in body
    assert "style-src 'unsafe-inline'" in page.headers["Content-Security-Policy"]
    assert "Accept" in page.headers["Vary"]


def _needs_an_emoji_font(ch: str) -> bool:
    code = ord(ch)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or code in (0xFE0F, 0x200D)


def test_no_page_needs_an_emoji_font(client: FlaskClient, tmp_path: Path) -> None:
    """Every template, stylesheet, script and generated page draws with ordinary fonts."""
    from training.report import write_report

    root = Path(__file__).resolve().parents[1] / "service"
    texts = {str(p): p.read_text() for d in ("templates", "static")
             for p in (root / d).rglob("*") if p.is_file()}
    texts["/"] = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    write_report(tmp_path, version="spam-x", summary={"sources": {}, "examples": 2,
                 "folded_duplicates": 0, "train": 1, "test": 2},
                 gate={"passed": True, "reasons": [], "candidate": {}}, y=[0, 1],
                 candidate_probs=[0.1, 0.9], serving_probs=None,
                 thresholds={"unsure": 0.3, "spam": 0.5, "discard": 0.9})
    texts["report"] = (tmp_path / "report.html").read_text()
    for where, text in texts.items():
        assert not [ch for ch in text if _needs_an_emoji_font(ch)], where
