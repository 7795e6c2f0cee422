"""Model artifacts: saved with metadata and checksum, refused when not trustworthy."""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import pytest
from procs import app_process_modules

from service.errors import ModelError, ModelIntegrityError, NotFound
from service.registry.versions import (
    ARTIFACT,
    LEAN,
    METADATA,
    Registry,
    library_versions,
    sha256_file,
)
from service.scoring.model import ModelHolder, Scorer, load_scorer
from training.text import Comment


def current(model_dir: Path) -> str:
    version = Registry(model_dir).current("spam")
    assert version is not None
    return version


def test_metadata_describes_data_code_libraries_metrics_thresholds(model_dir: Path) -> None:
    meta = Registry(model_dir).metadata(current(model_dir))
    assert meta["family"] == "spam"
    assert len(meta["sha256"]) == 64
    assert meta["libraries"] == library_versions()
    assert meta["data"]["sha256"] and meta["data"]["examples"] > 1000
    assert meta["code_version"]
    assert {"accuracy", "mcc", "roc_auc"} <= set(meta["evaluation"]["metrics"])
    t = meta["thresholds"]
    assert 0 <= t["unsure"] <= t["spam"] <= t["discard"] <= 1


def test_verified_model_loads_and_scores(model_dir: Path) -> None:
    scorer = load_scorer(Registry(model_dir), current(model_dir))
    [(prob, _)] = scorer.score([__import__("training.features").features.Comment("hello")])
    assert 0 <= prob <= 1


def test_tampered_artifact_is_refused(model_dir: Path) -> None:
    version = current(model_dir)
    artifact = model_dir / version / ARTIFACT
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        Registry(model_dir).load(version)


def test_truncated_artifact_is_refused(model_dir: Path) -> None:
    version = current(model_dir)
    artifact = model_dir / version / ARTIFACT
    artifact.write_bytes(artifact.read_bytes()[:1000])
    with pytest.raises(ModelIntegrityError):
        Registry(model_dir).load(version)


def test_model_from_another_sklearn_version_is_refused(model_dir: Path) -> None:
    version = current(model_dir)
    meta_path = model_dir / version / METADATA
    meta = json.loads(meta_path.read_text())
    meta["libraries"]["scikit-learn"] = "0.24.2"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError, match=r"scikit-learn 0\.24\.2"):
        Registry(model_dir).load(version)


@pytest.mark.parametrize("name", ["../etc", "/etc/passwd", "spam-x/../../y", "..", ""])
def test_paths_outside_the_model_directory_are_refused(model_dir: Path, name: str) -> None:
    with pytest.raises(ModelIntegrityError):
        Registry(model_dir).load(name)


def test_symlinked_version_outside_the_directory_is_refused(model_dir: Path,
                                                            tmp_path: Path) -> None:
    version = current(model_dir)
    outside = tmp_path / "elsewhere"
    (model_dir / version).rename(outside)
    (model_dir / version).symlink_to(outside)
    with pytest.raises(ModelIntegrityError, match="outside"):
        Registry(model_dir).load(version)


def test_unknown_version_is_not_found(model_dir: Path) -> None:
    with pytest.raises(NotFound):
        Registry(model_dir).load("spam-20200101T000000Z-deadbeef")


def test_failed_load_keeps_the_serving_model(model_dir: Path) -> None:
    registry = Registry(model_dir)
    good = current(model_dir)
    holder = ModelHolder(registry, reload_interval=0)
    assert holder.scorer().version == good
    # A new version whose artifact is corrupt is promoted behind the service's back.
    bad_dir = model_dir / "spam-20300101T000000Z-0badf00d"
    bad_dir.mkdir()
    (bad_dir / ARTIFACT).write_bytes(b"not a pickle")
    meta = registry.metadata(good) | {"version": bad_dir.name, "sha256": "0" * 64}
    (bad_dir / METADATA).write_text(json.dumps(meta))
    (model_dir / "current.json").write_text(json.dumps({"spam": bad_dir.name}))
    holder.maybe_reload(force=True)
    assert holder.scorer().version == good
    assert holder.last_error and "refused" in holder.last_error


def test_promote_and_rollback_switch_the_pointer(model_dir: Path) -> None:
    registry = Registry(model_dir)
    first = current(model_dir)
    loaded = registry.load(first)  # the pipeline itself: workers serve its compiled tables
    pipeline = loaded.pipeline
    pipeline.named_steps["clf"].coef_ = pipeline.named_steps["clf"].coef_ * 0.5  # a new model
    second = registry.save(pipeline, {k: v for k, v in loaded.metadata.items()
                                      if k not in {"version", "sha256"}})
    assert second != first
    registry.set_current(second)
    assert registry.current() == second
    assert registry.rollback() == first
    assert registry.current() == first


def test_rollback_without_history_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        Registry(tmp_path).rollback()


def test_no_model_means_a_clear_503_error(tmp_path: Path) -> None:
    holder = ModelHolder(Registry(tmp_path))
    with pytest.raises(ModelError, match="no current spam model"):
        holder.scorer()


# --- compiled tables (lean.json): what a worker serves ------------------------------


def test_a_linear_model_is_saved_with_its_compiled_tables(model_dir: Path) -> None:
    registry = Registry(model_dir)
    version = current(model_dir)
    lean = registry.metadata(version)["lean"]
    assert lean["file"] == LEAN and (model_dir / version / LEAN).is_file()
    assert lean["compiled_from"] == registry.metadata(version)["sha256"]
    served = registry.load_serving(version)
    assert served.pipeline is None and served.lean is not None
    full = registry.load(version)
    for comment in (Comment("hello there"), Comment("free money http://bit.ly/x subscribe")):
        assert Scorer(served).score([comment]) == Scorer(full).score([comment])


def test_tampered_tables_are_refused(model_dir: Path) -> None:
    version = current(model_dir)
    path = model_dir / version / LEAN
    path.write_bytes(path.read_bytes().replace(b'"intercept":', b'"intercept": ', 1))
    with pytest.raises(ModelIntegrityError, match=r"sha256 of lean\.json"):
        Registry(model_dir).load_serving(version)


def test_tables_compiled_from_another_artifact_are_refused(model_dir: Path) -> None:
    version = current(model_dir)
    artifact, meta_path = model_dir / version / ARTIFACT, model_dir / version / METADATA
    artifact.write_bytes(artifact.read_bytes()[:1000])  # cut short and re-checksummed
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = sha256_file(artifact)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError, match="compiled from another"):
        Registry(model_dir).load_serving(version)


def test_tables_of_another_layout_fall_back_to_the_pipeline(model_dir: Path) -> None:
    version = current(model_dir)
    path, meta_path = model_dir / version / LEAN, model_dir / version / METADATA
    tables = json.loads(path.read_text())
    path.write_text(json.dumps({**tables, "format": 99}))
    meta = json.loads(meta_path.read_text())
    meta["lean"]["sha256"] = sha256_file(path)
    meta_path.write_text(json.dumps(meta))
    served = Registry(model_dir).load_serving(version)
    assert served.pipeline is not None  # compiled afresh from the artifact


def test_a_worker_serving_tables_never_imports_scikit_learn(tmp_path: Path,
                                                            model_dir: Path) -> None:
    """Memory: scikit-learn and SciPy cost a worker about 90 MB of resident memory."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    loaded = app_process_modules(model_dir, tmp_path / "var", url)
    assert "service" in loaded and not loaded & {"sklearn", "scipy"}


def test_a_version_saved_without_tables_serves_and_can_be_compiled(model_dir: Path) -> None:
    registry = Registry(model_dir)
    version = current(model_dir)
    meta_path = model_dir / version / METADATA
    meta = json.loads(meta_path.read_text())
    del meta["lean"]
    meta_path.write_text(json.dumps(meta))
    (model_dir / version / LEAN).unlink()
    assert registry.load_serving(version).pipeline is not None  # compiled at load, as before
    assert registry.compile(version) is True
    assert registry.load_serving(version).pipeline is None
    assert registry.compile(version) is False


def test_a_swapped_out_model_is_freed(model_dir: Path) -> None:
    """Loaded models are frozen out of the cyclic collector, so nothing of one may
    sit in a reference cycle: it would outlive every promotion."""
    holder = ModelHolder(Registry(model_dir))
    holder.maybe_reload(force=True)
    lean = holder.scorer().lean
    assert lean is not None and lean.char is not None
    old_scorer, old_char = weakref.ref(holder.scorer()), weakref.ref(lean.char)
    del lean
    holder._scorer = None  # as if another version were promoted: load afresh
    assert holder.load_current()
    assert old_scorer() is None and old_char() is None


def test_a_holder_without_a_model_serves_one_as_soon_as_it_is_promoted(
    model_dir: Path, tmp_path: Path
) -> None:
    """A first model promoted after start (the toxicity bootstrap does that) is served
    by every worker at its next request, not at its next poll (an hour away here)."""
    import shutil

    version = current(model_dir)
    empty = Registry(tmp_path / "registry")
    empty.root.mkdir()
    holder = ModelHolder(empty, "spam", reload_interval=3600)
    holder.maybe_reload(force=True)
    with pytest.raises(ModelError):
        holder.scorer()
    shutil.copytree(model_dir / version, empty.root / version)
    empty.set_current(version)
    assert holder.scorer().version == version
