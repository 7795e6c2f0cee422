"""The Perspective-compatible endpoint: answers, errors in Google's shape, storage,
and Google's own discovery-based Python client against a served instance."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.resources import EXTENSION
from service.scoring import toxicity
from service.store import schema as t

TOXIC = "You are a stupid idiot and everyone hates you."
KIND = "Thank you for the careful reporting on the council budget."
ERROR_TYPE_URL = "type.googleapis.com/google.commentanalyzer.v1alpha1.Error"
WITH_TOXICITY_MODEL = True  # conftest's model_dir adds the toxicity family


@pytest.fixture
def key(app: Flask) -> str:
    k, _ = app.extensions[EXTENSION].store.create_key("https://news.example.org")
    return k


def analyze(client: FlaskClient, key: str, body: Any, path: str = "/v1alpha1/comments:analyze"):  # type: ignore[no-untyped-def]
    return client.post(f"{path}?key={key}", data=json.dumps(body),
                       content_type="application/json")


def request_body(text: str = TOXIC, **extra: Any) -> dict[str, Any]:
    return {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}, **extra}


def assert_google_error(r: Any, status: int, google_status: str, error_type: str | None) -> None:
    assert r.status_code == status
    err = r.get_json()["error"]
    assert err["code"] == status
    assert err["status"] == google_status
    assert isinstance(err["message"], str) and err["message"]
    if error_type is not None:
        assert err["details"][0]["@type"] == ERROR_TYPE_URL
        assert err["details"][0]["errorType"] == error_type


# --- answers -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1alpha1/comments:analyze", "/comments:analyze"])
def test_analyze_answers_perspectives_shape(client: FlaskClient, key: str, path: str) -> None:
    body = request_body(
        requestedAttributes={"TOXICITY": {}, "SEVERE_TOXICITY": {"scoreType": "PROBABILITY"},
                             "IDENTITY_ATTACK": {}, "PROFANITY": {}},
        clientToken="tok-1", sessionId="s", communityId="c", languages=["en"],
    )
    r = analyze(client, key, body, path)
    assert r.status_code == 200, r.get_data(as_text=True)
    data = r.get_json()
    assert set(data) == {"attributeScores", "languages", "detectedLanguages", "clientToken"}
    assert data["clientToken"] == "tok-1"
    assert data["languages"] == ["en"] and data["detectedLanguages"] == ["en"]
    assert set(data["attributeScores"]) == {"TOXICITY", "SEVERE_TOXICITY", "IDENTITY_ATTACK",
                                            "PROFANITY"}
    for entry in data["attributeScores"].values():
        assert set(entry) == {"summaryScore"}
        assert entry["summaryScore"]["type"] == "PROBABILITY"
        assert 0.0 <= entry["summaryScore"]["value"] <= 1.0


def test_toxic_scores_above_kind(client: FlaskClient, key: str) -> None:
    def score(text: str) -> float:
        data = analyze(client, key, request_body(text)).get_json()
        return float(data["attributeScores"]["TOXICITY"]["summaryScore"]["value"])

    assert score(TOXIC) > 0.5 > score(KIND)


def test_no_redirect_for_trailing_slash_or_other_methods(client: FlaskClient, key: str) -> None:
    r = client.get(f"/v1alpha1/comments:analyze?key={key}")
    assert_google_error(r, 400, "INVALID_ARGUMENT", "INVALID_REQUEST")
    r = client.post(f"/v1alpha1/comments:analyze/?key={key}", json=request_body())
    assert r.status_code == 404  # never a 308 redirect


def test_score_threshold_omits_low_scores(client: FlaskClient, key: str) -> None:
    body = request_body(KIND, requestedAttributes={"TOXICITY": {"scoreThreshold": 0.99}})
    assert analyze(client, key, body).get_json()["attributeScores"] == {}


def test_drop_unsupported_attributes(client: FlaskClient, key: str) -> None:
    body = request_body(requestedAttributes={"TOXICITY": {}, "INSULT": {}},
                        dropUnsupportedAttributes=True)
    assert set(analyze(client, key, body).get_json()["attributeScores"]) == {"TOXICITY"}
    body = request_body(languages=["uk"], dropUnsupportedAttributes=True)
    data = analyze(client, key, body).get_json()
    assert data["attributeScores"] == {} and data["languages"] == ["uk"]


def test_span_offsets_are_utf16_code_units(client: FlaskClient, key: str) -> None:
    text = "😀😀 you are a stupid idiot 🙂"
    r = analyze(client, key, request_body(text, spanAnnotations=True))
    spans = r.get_json()["attributeScores"]["TOXICITY"]["spanScores"]
    units = text.encode("utf-16-le")
    words = [units[s["begin"] * 2 : s["end"] * 2].decode("utf-16-le") for s in spans]
    assert words == ["you", "are", "a", "stupid", "idiot"]
    assert all(s["score"]["type"] == "PROBABILITY" for s in spans)
    by_word = dict(zip(words, (s["score"]["value"] for s in spans), strict=True))
    assert by_word["idiot"] > by_word["a"]


def test_checked_comment_is_stored_with_toxicity(app: Flask, client: FlaskClient,
                                                 key: str) -> None:
    analyze(client, key, request_body(TOXIC, communityId="c1"))
    store = app.extensions[EXTENSION].store
    row = store.read(lambda c: c.execute(select(t.comments)).one())
    assert row.source == "perspective" and row.content == TOXIC
    assert row.spam_probability is None and row.verdict is None
    tox = row.toxicity
    assert set(tox) == {"scores", "spans"}
    assert set(tox["scores"]) >= {"TOXICITY", "SEVERE_TOXICITY"}
    for begin, end, score in tox["spans"]:
        assert TOXIC[begin:end].strip() == TOXIC[begin:end] and score >= 0.5
    assert any("idiot" in TOXIC[b:e] for b, e, _ in tox["spans"])


def test_do_not_store_stores_nothing(app: Flask, client: FlaskClient, key: str) -> None:
    assert analyze(client, key, request_body(doNotStore=True)).status_code == 200
    store = app.extensions[EXTENSION].store
    count = store.read(lambda c: c.execute(select(func.count()).select_from(t.comments)).scalar())
    assert count == 0


# --- errors ------------------------------------------------------------------

ERROR_CASES = [
    ({"requestedAttributes": {"TOXICITY": {}}}, "COMMENT_EMPTY"),
    (request_body(""), "COMMENT_EMPTY"),
    (request_body("   "), "COMMENT_EMPTY"),
    (request_body("a" * 20_481), "COMMENT_TOO_LONG"),
    (request_body("é" * 10_241), "COMMENT_TOO_LONG"),  # 20,482 bytes of UTF-8
    ({"comment": {"text": "hello"}}, "NO_REQUESTED_ATTRIBUTES"),
    ({"comment": {"text": "hello"}, "requestedAttributes": {}}, "NO_REQUESTED_ATTRIBUTES"),
    (request_body(languages=["uk"]), "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"),
    (request_body("Привіт, як справи? Це чудова стаття про місто."),
     "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"),
    (request_body(requestedAttributes={"INSULT": {}}), "INVALID_REQUEST"),
    (request_body(requestedAttributes={"NOPE": {}}), "INVALID_REQUEST"),
    (request_body(requestedAttributes={"TOXICITY": {"scoreType": "RAW"}}), "INVALID_REQUEST"),
    (request_body(requestedAttributes={"TOXICITY": {"scoreThreshold": 2}}), "INVALID_REQUEST"),
    (request_body(requestedAttributes=["TOXICITY"]), "INVALID_REQUEST"),
    (request_body(unknownField=1), "INVALID_REQUEST"),
    (request_body(doNotStore="yes"), "INVALID_REQUEST"),
    (request_body(languages="en"), "INVALID_REQUEST"),
    (request_body(clientToken=5), "INVALID_REQUEST"),
    ({"comment": "text", "requestedAttributes": {"TOXICITY": {}}}, "INVALID_REQUEST"),
    ({"comment": {"text": ["x"]}, "requestedAttributes": {"TOXICITY": {}}}, "INVALID_REQUEST"),
    ([1, 2], "INVALID_REQUEST"),
]


@pytest.mark.parametrize(("body", "error_type"), ERROR_CASES)
def test_error_types_in_googles_shape(client: FlaskClient, key: str, body: Any,
                                      error_type: str) -> None:
    assert_google_error(analyze(client, key, body), 400, "INVALID_ARGUMENT", error_type)


def test_hostile_and_malformed_bodies(client: FlaskClient, key: str) -> None:
    r = client.post(f"/comments:analyze?key={key}", data=b"{not json",
                    content_type="application/json")
    assert_google_error(r, 400, "INVALID_ARGUMENT", "INVALID_REQUEST")
    r = client.post(f"/comments:analyze?key={key}", data=b"x" * 2_000_000,
                    content_type="application/json")
    assert_google_error(r, 400, "INVALID_ARGUMENT", "COMMENT_TOO_LONG")
    html = "<script>alert(1)</script><b>you idiot</b>"
    r = analyze(client, key, request_body(html, clientToken="<img src=x onerror=alert(1)>"))
    assert r.status_code == 200 and r.mimetype == "application/json"


def test_snake_case_names_are_accepted(client: FlaskClient, key: str) -> None:
    body = {"comment": {"text": TOXIC}, "requested_attributes": {"TOXICITY": {}},
            "client_token": "t"}
    assert analyze(client, key, body).get_json()["clientToken"] == "t"


def test_missing_and_invalid_keys(client: FlaskClient) -> None:
    r = client.post("/v1alpha1/comments:analyze", json=request_body())
    assert_google_error(r, 403, "PERMISSION_DENIED", None)
    r = client.post("/v1alpha1/comments:analyze?key=nosuchkey123", json=request_body())
    assert_google_error(r, 400, "INVALID_ARGUMENT", None)
    assert r.get_json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_rate_limit_is_resource_exhausted(make_app: Callable[..., Flask]) -> None:
    app = make_app(perspective_rate_limit=2)
    k, _ = app.extensions[EXTENSION].store.create_key("https://news.example.org")
    client = app.test_client()
    statuses = [analyze(client, k, request_body()).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    r = analyze(client, k, request_body())
    assert_google_error(r, 429, "RESOURCE_EXHAUSTED", None)
    assert int(r.headers["Retry-After"]) >= 1


def test_without_a_toxicity_model_the_endpoint_answers_503(
    make_app: Callable[..., Flask], trained_model_dir: Path, tmp_path: Path
) -> None:
    spam_only = tmp_path / "spam-only"
    shutil.copytree(trained_model_dir, spam_only)
    app = make_app(model_dir=spam_only)
    k, _ = app.extensions[EXTENSION].store.create_key("https://news.example.org")
    r = analyze(app.test_client(), k, request_body())
    assert_google_error(r, 503, "UNAVAILABLE", None)
    assert "toxicity train" in r.get_json()["error"]["message"]
    assert "Retry-After" not in r.headers  # nothing is training: a retry would not help


def test_while_serve_trains_the_first_model_503_says_so_with_retry_after(
    make_app: Callable[..., Flask], trained_model_dir: Path, tmp_path: Path
) -> None:
    spam_only = tmp_path / "spam-only"
    shutil.copytree(trained_model_dir, spam_only)
    app = make_app(model_dir=spam_only)
    data_dir = app.extensions[EXTENSION].settings.data_dir
    k, _ = app.extensions[EXTENSION].store.create_key("https://news.example.org")
    toxicity.write_bootstrap_status(data_dir, "training", started_at=time.time() - 30)
    r = analyze(app.test_client(), k, request_body())
    assert_google_error(r, 503, "UNAVAILABLE", None)
    assert "being trained for the first time" in r.get_json()["error"]["message"]
    assert 10 <= int(r.headers["Retry-After"]) <= toxicity.BOOTSTRAP_EXPECTED_SECONDS - 29
    toxicity.write_bootstrap_status(data_dir, "failed", error="TOXICITY ROC AUC too low")
    r = analyze(app.test_client(), k, request_body())
    assert "TOXICITY ROC AUC too low" in r.get_json()["error"]["message"]
    assert "Retry-After" not in r.headers
    status = json.loads((data_dir / toxicity.BOOTSTRAP_STATUS).read_text())
    (data_dir / toxicity.BOOTSTRAP_STATUS).write_text(  # above any Linux pid_max
        json.dumps({**status, "state": "training", "pid": 2**22 + 1}))
    r = analyze(app.test_client(), k, request_body())
    assert "Retry-After" not in r.headers  # a stale file of a dead trainer counts as none


# --- suggestscore ------------------------------------------------------------


def test_suggestscore_stores_a_toxicity_label(app: Flask, client: FlaskClient, key: str) -> None:
    from training.toxicity import labelled_rows

    analyze(client, key, request_body(KIND))
    body = {"comment": {"text": KIND}, "clientToken": "x",
            "attributeScores": {"TOXICITY": {"summaryScore": {"value": 1}}}}
    r = client.post(f"/v1alpha1/comments:suggestscore?key={key}", json=body)
    assert r.status_code == 200
    assert r.get_json() == {"detectedLanguages": ["en"], "requestedLanguages": [],
                            "clientToken": "x"}
    store = app.extensions[EXTENSION].store
    [label] = store.read(lambda c: c.execute(select(t.labels)).all())
    assert (label.task, label.label, label.score, label.attribute, label.source) == (
        "toxicity", "toxic", 1.0, "TOXICITY", "site")
    count = select(func.count()).select_from(t.comments)
    assert store.read(lambda c: c.execute(count).scalar()) == 1
    rows = labelled_rows(store)  # what `commentmod toxicity train --with-labels` adds
    assert [(r.text, r.labels[0]) for r in rows] == [(KIND, 1.0)]


@pytest.mark.parametrize("body", [
    {"comment": {"text": "x"}},
    {"comment": {"text": "x"}, "attributeScores": {"TOXICITY": {"summaryScore": {"value": 3}}}},
    {"comment": {"text": "x"}, "attributeScores": {"NOPE": {"summaryScore": {"value": 0}}}},
    {"comment": {"text": "x"}, "attributeScores": {"TOXICITY": "high"}},
])
def test_suggestscore_refuses_bad_scores(app: Flask, client: FlaskClient, key: str,
                                         body: Any) -> None:
    r = client.post(f"/comments:suggestscore?key={key}", json=body)
    assert_google_error(r, 400, "INVALID_ARGUMENT", "INVALID_REQUEST")
    store = app.extensions[EXTENSION].store
    assert store.read(lambda c: c.execute(select(func.count()).select_from(t.labels)).scalar()) == 0


# --- Google's own client against a served instance ----------------------------


def _client(base: str, key: str) -> Any:
    from googleapiclient import discovery

    return discovery.build(
        "commentanalyzer", "v1alpha1", developerKey=key,
        discoveryServiceUrl=base + "/$discovery/rest?version={apiVersion}",
        client_options={"api_endpoint": base + "/"}, static_discovery=False,
        cache_discovery=False,
    )


@pytest.mark.slow
def test_googles_python_client_against_served_instance(
    serve: Callable[..., str], model_dir: Path, tmp_path: Path, sqlite_url: str
) -> None:
    from googleapiclient.errors import HttpError

    from service.store.db import Store, engine_for

    base = serve(workers=1)
    store = Store(engine_for(sqlite_url))
    key, _ = store.create_key("https://news.example.org")
    api = _client(base, key)
    answer = api.comments().analyze(body={
        "comment": {"text": "😀 you are an idiot"},
        "requestedAttributes": {"TOXICITY": {}, "PROFANITY": {}},
        "spanAnnotations": True, "clientToken": "ct", "languages": ["en"],
    }).execute()
    assert answer["clientToken"] == "ct"
    assert answer["languages"] == ["en"] and answer["detectedLanguages"] == ["en"]
    tox = answer["attributeScores"]["TOXICITY"]
    assert tox["summaryScore"]["type"] == "PROBABILITY"
    assert 0.5 < tox["summaryScore"]["value"] <= 1.0
    first = tox["spanScores"][0]
    assert (first["begin"], first["end"]) == (3, 6)  # "you" after one astral emoji
    assert 0 <= answer["attributeScores"]["PROFANITY"]["summaryScore"]["value"] <= 1
    suggested = api.comments().suggestscore(body={
        "comment": {"text": "you are an idiot"},
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0}}},
        "clientToken": "s1",
    }).execute()
    assert suggested["clientToken"] == "s1"

    cases = [
        ({"comment": {"text": ""}, "requestedAttributes": {"TOXICITY": {}}}, "COMMENT_EMPTY"),
        ({"comment": {"text": "a" * 20_481}, "requestedAttributes": {"TOXICITY": {}}},
         "COMMENT_TOO_LONG"),
        ({"comment": {"text": "hello"}}, "NO_REQUESTED_ATTRIBUTES"),
        ({"comment": {"text": "hello"}, "requestedAttributes": {"TOXICITY": {}},
          "languages": ["uk"]}, "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"),
        ({"comment": {"text": "hello"}, "requestedAttributes": {"THREAT": {}}},
         "INVALID_REQUEST"),
    ]
    for body, error_type in cases:
        with pytest.raises(HttpError) as caught:
            api.comments().analyze(body=body).execute()
        assert caught.value.resp.status == 400
        err = json.loads(caught.value.content)["error"]
        assert (err["code"], err["status"]) == (400, "INVALID_ARGUMENT")
        assert err["details"][0]["errorType"] == error_type, body
    with pytest.raises(HttpError) as caught:
        _client(base, "wrongkey1234").comments().analyze(body=cases[0][0]).execute()
    assert caught.value.resp.status == 400
    assert "API key not valid" in json.loads(caught.value.content)["error"]["message"]
