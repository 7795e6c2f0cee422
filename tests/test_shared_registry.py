"""The model registry: save/verify/load, the pointer and its history, the shared
(database) registry, and the holder that never swaps in a bad model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from service.errors import ModelIntegrityError, NotFound
from service.registry.shared import SharedRegistry, make_registry
from service.registry.versions import METADATA, Registry, promotion_stack
from service.scoring.model import ModelHolder
from service.store import schema as t
from service.store.db import Store
from training.train import build_pipeline

SPAMMY = ["subscribe to my channel http://bit.ly/x", "free money click here www.win.com",
          "check out my page and like", "cheap pills buy now http://x.ru"]
HAMMY = ["the council vote was close", "great reporting on the budget",
         "I disagree with the mayor here", "thanks for the thoughtful article"]


def tiny_pipeline(extra: str = "") -> Any:
    texts = SPAMMY + HAMMY + ([extra] if extra else [])
    labels = [1] * 4 + [0] * 4 + ([1] if extra else [])
    return build_pipeline().fit(texts, labels)


def save(reg: Registry, extra: str = "") -> str:
    thresholds = {"unsure": 0.3, "spam": 0.5, "discard": 0.95}
    return reg.save(tiny_pipeline(extra), {"thresholds": thresholds, "evaluation": {}})


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "models")


def test_save_then_load_round_trips(reg: Registry) -> None:
    version = save(reg)
    loaded = reg.load(version)
    assert loaded.version == version and loaded.family == "spam"
    assert loaded.pipeline.predict_proba(["free money http://bit.ly/y"])[0, 1] > 0.5
    assert reg.metadata(version)["sha256"] == loaded.metadata["sha256"]


def test_tampered_artifact_is_refused(reg: Registry) -> None:
    version = save(reg)
    artifact = reg.version_dir(version) / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        reg.load(version)


def test_other_sklearn_version_is_refused(reg: Registry) -> None:
    version = save(reg)
    path = reg.version_dir(version) / METADATA
    meta = json.loads(path.read_text())
    meta["libraries"]["scikit-learn"] = "0.20.0"
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError, match=r"scikit-learn 0\.20\.0"):
        reg.load(version)


@pytest.mark.parametrize("name", ["../etc", "spam/../../x", "/abs/path", "SPAM-1", ""])
def test_bad_version_names_are_refused(reg: Registry, name: str) -> None:
    with pytest.raises(ModelIntegrityError):
        reg.version_dir(name)


def test_a_version_outside_the_directory_is_refused(reg: Registry, tmp_path: Path) -> None:
    version = save(reg)
    outside = tmp_path / "elsewhere"
    (reg.version_dir(version)).rename(outside)
    (reg.root / version).symlink_to(outside)  # a valid name that resolves elsewhere
    with pytest.raises(ModelIntegrityError, match="outside"):
        reg.load(version)


def test_rollback_walks_the_history_back(reg: Registry) -> None:
    a, b, c = save(reg), save(reg, "one more spam"), save(reg, "and another spam")
    for v in (a, b, c):
        reg.set_current(v)
    assert reg.rollback() == b
    assert reg.rollback() == a  # twice goes two back, it does not oscillate
    with pytest.raises(NotFound):
        reg.rollback()
    reg.set_current(c)
    assert reg.rollback() == a


@pytest.mark.parametrize(
    ("actions", "stack"),
    [
        ([("promote", "a"), ("promote", "b")], ["a", "b"]),
        ([("promote", "a"), ("promote", "a")], ["a"]),
        ([("bootstrap", "a"), ("force", "b"), ("rollback", "a")], ["a"]),
        ([("promote", "a"), ("promote", "b"), ("promote", "c"), ("rollback", "a")], ["a"]),
        ([("shadow", "x"), ("promote", "a")], ["a"]),
    ],
)
def test_promotion_stack(actions: list[tuple[str, str]], stack: list[str]) -> None:
    events = [{"family": "spam", "action": a, "version": v} for a, v in actions]
    assert promotion_stack(events, "spam") == stack


def test_pointer_switch_leaves_no_temporary_files(reg: Registry) -> None:
    a, b = save(reg), save(reg, "x spam")
    reg.set_current(a)
    reg.set_current(b)
    assert not [p for p in reg.root.iterdir() if p.name.startswith(".")]
    assert json.loads(reg.pointer_path().read_text()) == {"spam": b}


def test_holder_keeps_serving_when_the_new_model_is_bad(reg: Registry) -> None:
    good, bad = save(reg), save(reg, "bad")
    reg.set_current(good)
    holder = ModelHolder(reg, reload_interval=0)
    assert holder.scorer().version == good
    reg.set_current(bad)
    artifact = reg.version_dir(bad) / "model.joblib"
    artifact.write_bytes(b"not a pickle")
    holder.maybe_reload(force=True)
    assert holder.scorer().version == good
    assert holder.last_error is not None and "refused" in holder.last_error


def test_holder_refuses_a_model_that_fails_its_smoke_test(reg: Registry) -> None:
    good = save(reg)
    reg.set_current(good)
    holder = ModelHolder(reg, reload_interval=0)
    holder.scorer()
    broken = reg.save(tiny_pipeline("z"), {"thresholds": {"unsure": 0.9, "spam": 0.5,
                                                          "discard": 0.1}})
    reg.set_current(broken)
    holder.maybe_reload(force=True)
    assert holder.scorer().version == good
    assert "thresholds out of order" in str(holder.last_error)


# --- the shared registry -------------------------------------------------------


def test_shared_registry_serves_another_host(store: Store, tmp_path: Path) -> None:
    trainer = SharedRegistry(tmp_path / "host-a", store)
    version = save(trainer)
    trainer.set_current(version)
    other = make_registry("database", tmp_path / "host-b", store)
    assert other.current() == version
    assert not (tmp_path / "host-b" / version).exists()
    holder = ModelHolder(other, reload_interval=0)
    assert holder.scorer().version == version  # fetched, verified, cached locally
    assert (tmp_path / "host-b" / version / "model.joblib").is_file()
    assert [m["version"] for m in other.versions()] == [version]


def test_shared_registry_refuses_tampered_bytes(store: Store, tmp_path: Path) -> None:
    trainer = SharedRegistry(tmp_path / "host-a", store)
    version = save(trainer)
    with store.transaction() as c:
        c.execute(update(t.model_artifacts).values(artifact=b"evil pickle"))
    other = SharedRegistry(tmp_path / "host-b", store)
    with pytest.raises(ModelIntegrityError, match="does not match"):
        other.load(version)
    assert not (tmp_path / "host-b" / version).exists()


def test_shared_pointer_moves_and_rolls_back(store: Store, tmp_path: Path) -> None:
    a_host = SharedRegistry(tmp_path / "host-a", store)
    b_host = SharedRegistry(tmp_path / "host-b", store)
    a, b = save(a_host), save(a_host, "more spam")
    a_host.set_current(a)
    token = b_host.pointer_token()
    holder = ModelHolder(b_host, reload_interval=0)
    assert holder.scorer().version == a
    a_host.set_current(b)
    assert b_host.pointer_token() != token
    assert holder.scorer().version == b
    assert b_host.rollback() == a
    assert holder.scorer().version == a
    assert [e["action"] for e in a_host.history()] == ["promote", "promote", "rollback"]


def test_shared_registry_unknown_version(store: Store, tmp_path: Path) -> None:
    reg = SharedRegistry(tmp_path / "m", store)
    with pytest.raises(NotFound):
        reg.load("spam-20200101T000000Z-deadbeef")
