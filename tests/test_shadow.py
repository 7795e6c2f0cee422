"""Shadow mode: a candidate scores live traffic, answers stay the serving model's."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from service.registry.versions import Registry
from service.resources import EXTENSION, Resources
from service.scoring.shadow import set_shadow, shadow_report, shadow_version
from service.store import schema as t
from training.train import build_pipeline

SPAM = "Check out my channel and SUBSCRIBE!!! http://bit.ly/free-money win an iPhone"
HAM = "The council should publish the budget before the vote, not after. Good reporting."


def candidate(model_dir: Path, inverted: bool = False) -> str:
    """A tiny model; ``inverted`` learns the labels backwards, so it disagrees."""
    texts = [SPAM, "free money http://x.ru", HAM, "thanks for the article on the vote"]
    labels = [0, 0, 1, 1] if inverted else [1, 1, 0, 0]
    thresholds = {"unsure": 0.3, "spam": 0.5, "discard": 0.99}
    return Registry(model_dir).save(build_pipeline().fit(texts, labels),
                                    {"thresholds": thresholds, "evaluation": {}})


def rows(app: Flask) -> int:
    res: Resources = app.extensions[EXTENSION]
    return int(res.store.read(
        lambda c: c.execute(select(func.count()).select_from(t.shadow_results)).scalar()))


def test_shadow_records_without_changing_answers(make_app, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(reload_interval_seconds=0)
    client = app.test_client()
    serving = client.post("/api/v1/check", json={"content": SPAM}).get_json()
    res: Resources = app.extensions[EXTENSION]
    version = candidate(model_dir, inverted=True)
    set_shadow(res.store, version)
    assert shadow_version(res.store) == version
    for text in (SPAM, HAM):
        body = client.post("/api/v1/check", json={"content": text}).get_json()
        assert body["model_version"] == serving["model_version"]
    assert client.post("/api/v1/check", json={"content": SPAM}).get_json()["verdict"] == \
        serving["verdict"]
    report = shadow_report(res.store, version)
    assert report["n"] == 3 and report["agreement"] < 1
    assert report["disagreements"] and report["disagreements"][0]["content"]
    assert report["disagreements"][0]["comment_id"] is not None

    set_shadow(res.store, None)
    client.post("/api/v1/check", json={"content": HAM})
    assert rows(app) == 3 and shadow_version(res.store) is None


def test_a_broken_shadow_never_disturbs_serving(make_app, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(reload_interval_seconds=0)
    res: Resources = app.extensions[EXTENSION]
    version = candidate(model_dir)
    (Registry(model_dir).version_dir(version) / "model.joblib").write_bytes(b"junk")
    set_shadow(res.store, version)
    r = app.test_client().post("/api/v1/check", json={"content": HAM})
    assert r.status_code == 200 and rows(app) == 0
