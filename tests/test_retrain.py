"""The in-memory retrainer chooses its thresholds where the evaluations do: out of fold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import training.train as train
from service.registry.versions import Registry
from service.store import migrate
from service.store.db import Store, engine_for
from training.datasets import YOUTUBE_DIR, read_dataset
from training.evaluate import choose_thresholds
from training.gate import RECENT_FRACTION, predict, split_recent
from training.labels import read_labels
from training.retrain import label_weights, retrain
from training.train import KFOLDS, kfold_thresholds

PSY = YOUTUBE_DIR / "Youtube01-Psy.csv"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(engine_for(sqlite_url))
    migrate.upgrade(s.engine)
    site = s.ensure_site("weather.example")
    cities = ["Oslo", "Lima", "Kyiv", "Pune", "Cork", "Graz", "Bonn", "Fez", "Turku", "Riga"]
    for i in range(30):
        s.feedback(label="spam", source="moderator", actor="t", site_id=site,
                   content=f"The weather forecast for {cities[i % 10]} says rain on day {i}")
    yield s
    s.engine.dispose()


def test_thresholds_come_from_the_training_sides_folds(store: Store, tmp_path: Path) -> None:
    """Not from the held-out side the gate then scores the candidate on: the gate
    compares the candidate and the serving model on texts neither chose thresholds on."""
    reg = Registry(tmp_path / "models")
    result = retrain(store, reg, [PSY], progress=False)
    split = split_recent(read_labels(store), read_dataset(PSY), RECENT_FRACTION, None)
    chosen = kfold_thresholds(split.train, sample_weight=label_weights(split.train))
    assert chosen is not None
    meta = reg.metadata(result.version)
    assert meta["thresholds"] == result.summary["thresholds"] == chosen[0]
    assert result.summary["threshold_folds"] == KFOLDS
    assert f"stratified {KFOLDS}-fold over the training side" in meta["evaluation"]["protocol"]
    assert meta["evaluation"]["metrics"]["n"] == len(split.test)
    assert not {e.key for e in split.test} & {e.key for e in split.train}


def test_above_the_fold_bound_the_held_out_side_chooses(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train, "KFOLD_MAX", 10)
    reg = Registry(tmp_path / "models")
    result = retrain(store, reg, [PSY], progress=False)
    split = split_recent(read_labels(store), read_dataset(PSY), RECENT_FRACTION, None)
    candidate = train.build_pipeline()
    candidate.fit([e.comment for e in split.train], [e.label for e in split.train],
                  clf__sample_weight=label_weights(split.train))
    held_out = choose_thresholds([e.label for e in split.test], predict(candidate, split.test))
    assert result.summary["threshold_folds"] == 0
    assert "thresholds from that held-out side" in result.summary["protocol"]
    assert reg.metadata(result.version)["thresholds"] == held_out


def test_labels_train_the_svm_and_the_shipped_set_alone_the_bootstrap_model(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retrain with a site's labels (stored or in files) fits the Platt-scaled SVM
    (DEFAULT_PARAMS); with none, on the shipped set alone, what the bootstrap fits."""
    import training.retrain as retrain_module
    from training.stream import file_sources

    reg = Registry(tmp_path / "models")
    labelled = retrain(store, reg, [PSY], progress=False)
    assert reg.metadata(labelled.version)["params"] == train.DEFAULT_PARAMS
    assert reg.load(labelled.version).pipeline.named_steps["clf"].loss == "hinge"
    # The shipped set, small here: one YouTube file stands in for it.
    monkeypatch.setattr(retrain_module, "shipped_source", lambda: file_sources([PSY])[0])
    alone = retrain(None, reg, (), progress=False)
    assert reg.metadata(alone.version)["params"] == train.BOOTSTRAP_PARAMS
    assert reg.load(alone.version).pipeline.named_steps["clf"].loss == "log"
