"""Retrain from stored labels plus data files: candidate, gate, save, report.

Two trainers share the flow:

- in memory (the default): the model of :mod:`training.train` (word and
  character TF-IDF, signals, logistic regression) is fitted on the training
  side of :func:`training.gate.split_recent`, scored with the serving model on
  the held-out side, then refitted on everything and saved;
- out of core (``--out-of-core``, or automatically above
  :data:`OUT_OF_CORE_MIN` rows): every source is streamed
  (:mod:`training.stream`: files row by row, stored labels in batches) in
  chunks of :data:`CHUNK` through hashed word n-grams and signals into
  ``SGDClassifier.partial_fit``, so memory stays flat however many rows there
  are. Duplicates are folded as they stream (the first label seen wins), the
  held-out side is drawn by a hash of the text while streaming (at most
  :data:`TEST_CAP` examples) and the saved model is the one fitted on the
  training side.

Which one runs by default is a matter of measured cost (bench/training.py,
docs/retraining.md): the in-memory trainer fits twice and its vocabularies
grow with the data, so above :data:`OUT_OF_CORE_MIN` rows it costs more time
and memory than the out-of-core one does on ten times as many.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

from service.errors import ModelError
from service.registry.versions import Registry
from service.store.db import Store
from training.datasets import Example, data_fingerprint
from training.evaluate import choose_thresholds
from training.gate import (
    RECENT_FRACTION,
    GateResult,
    decide_gate,
    evaluation_rows,
    predict,
    split_recent,
)
from training.hashing import HashedFeatures
from training.labels import read_labels
from training.report import write_report
from training.stream import (
    RowProgress,
    Source,
    Steps,
    StreamSplit,
    chain,
    chunked,
    file_sources,
    labels_source,
    shipped_source,
)
from training.train import DEFAULT_PARAMS, build_pipeline, code_version

# Rows (estimated) above which training runs out of core. Measured with the product's
# command (bench/training.py, docs/retraining.md): in memory costs 28 CPU-s and 376 MB
# at 10k rows and 106 s and 1.4 GB at 100k, more than out of core on 1M (133 CPU-s,
# 314 MB); at 20k in memory stays well under what out of core needs for 1M.
OUT_OF_CORE_MIN = 20_000
CHUNK = 20_000  # rows per partial_fit call; also the batch of every prediction
TEST_CAP = 50_000  # most held-out examples an out-of-core run keeps in memory
SGD_PARAMS: dict[str, Any] = {"loss": "log_loss", "alpha": 2e-6, "random_state": 0}


@dataclass
class RetrainResult:
    version: str
    summary: dict[str, Any]
    gate: GateResult
    report: Path
    promoted: bool = False


class TrainingDataError(ValueError):
    """The labels and files cannot make a model (too few, or one class only)."""


def _serving(registry: Registry) -> tuple[Any, str | None]:
    version = registry.current("spam")
    if version is None:
        return None, None
    try:
        return registry.load(version), version
    except ModelError:
        return None, version  # a broken serving model cannot veto a candidate


def _predict(pipeline: Any, examples: Sequence[Example]) -> list[float]:
    """Scores in batches of :data:`CHUNK`: one call on a large held-out set would build
    its whole feature matrix (hundreds of MB for a character n-gram model)."""
    out: list[float] = []
    for i in range(0, len(examples), CHUNK):
        out += predict(pipeline, examples[i : i + CHUNK])
    return out


def _gate(
    registry: Registry, test: Sequence[Example], probs: list[float], thresholds: dict[str, float]
) -> tuple[GateResult, list[float] | None]:
    candidate_rows = evaluation_rows(test, probs, thresholds)
    serving, version = _serving(registry)
    if serving is None:
        return decide_gate(candidate_rows, None, version), None
    serving_probs = _predict(serving.pipeline, test)
    serving_rows = evaluation_rows(test, serving_probs, serving.thresholds)
    return decide_gate(candidate_rows, serving_rows, version), serving_probs


def _finish(
    registry: Registry,
    pipeline: Any,
    *,
    summary: dict[str, Any],
    test: Sequence[Example],
    probs: list[float],
    thresholds: dict[str, float],
    gate: GateResult,
    serving_probs: list[float] | None,
    params: dict[str, Any],
) -> RetrainResult:
    meta = {
        "data": {k: summary[k] for k in ("description", "sources", "examples", "spam", "sha256")}
        | {"folded_duplicates": summary["folded_duplicates"]},
        "evaluation": {
            "protocol": summary["protocol"],
            "train": summary["train"],
            "test": summary["test"],
            "metrics": gate.candidate["overall"],
            "groups": gate.candidate,
        },
        "gate": gate.to_dict(),
        "trainer": summary["trainer"],
        "params": params,
        "thresholds": thresholds,
        "code_version": code_version(),
    }
    version = registry.save(pipeline, meta, family="spam")
    report = write_report(
        registry.version_dir(version),
        version=version,
        summary=summary,
        gate=gate.to_dict(),
        y=[e.label for e in test],
        candidate_probs=probs,
        serving_probs=serving_probs,
        thresholds=thresholds,
    )
    return RetrainResult(
        version, {**summary, "version": version, "thresholds": thresholds}, gate, report
    )


def retrain(
    store: Store | None,
    registry: Registry,
    files: Sequence[Path] = (),
    *,
    base: bool = True,
    out_of_core: bool | None = None,
    fraction: float = RECENT_FRACTION,
    progress: bool = True,
) -> RetrainResult:
    """Train a candidate from stored labels and ``files`` (plus the shipped set when
    ``base`` and no file is given), gate it against the serving model, save it."""
    streams = file_sources(files)  # a missing file fails here, before any work
    description = [str(p) for p in files]
    if base and not files:
        streams = [shipped_source()]
        description = ["YouTube Spam Collection v1 (shipped, CC BY 4.0)",
                       "discussion comments as ham (shipped; see ATTRIBUTION.md)"]
    if store is not None:
        streams.insert(0, labels_source(store, CHUNK))
        description.append("stored labels")
    if out_of_core is None:
        out_of_core = sum(s.rows for s in streams) > OUT_OF_CORE_MIN
    if out_of_core:
        return train_out_of_core(
            streams, registry, description=description, fraction=fraction, progress=progress
        )
    file_examples = _read_files(streams[1:] if store is not None else streams, progress)
    bar = Steps("training (in memory)", ["reading stored labels", "fitting (training side)",
                                         "gate (held-out side)", "refitting on all",
                                         "saving model and report"], progress)
    stored = read_labels(store) if store is not None else []
    bar.done()
    split = split_recent(stored, file_examples, fraction)
    _check(split.train, split.test)
    sources = Counter(s.example.source for s in stored) + Counter(e.source for e in file_examples)
    candidate = build_pipeline()
    candidate.fit([e.comment for e in split.train], [e.label for e in split.train])
    bar.done()
    probs = _predict(candidate, split.test)
    thresholds = choose_thresholds([e.label for e in split.test], probs)
    gate, serving_probs = _gate(registry, split.test, probs, thresholds)
    bar.done()
    everything = split.train + split.test
    final = build_pipeline()
    final.fit([e.comment for e in everything], [e.label for e in everything])
    bar.done()
    summary = {
        "description": description,
        "sources": dict(sources),
        "examples": len(everything),
        "folded_duplicates": split.folded,
        "spam": sum(e.label for e in everything),
        "sha256": data_fingerprint(everything),
        "train": len(split.train),
        "test": len(split.test),
        "held_out_by_site": split.held_out_by_site,
        "protocol": f"newest {fraction:.0%} of each site's labels, {fraction:.0%} of files by "
        "hash of normalised text; refitted on all",
        "trainer": "in-memory",
    }
    result = _finish(
        registry, final, summary=summary, test=split.test, probs=probs, thresholds=thresholds,
        gate=gate, serving_probs=serving_probs, params=dict(DEFAULT_PARAMS),
    )
    bar.done()
    return result


def _check(train: Sequence[Example], test: Sequence[Example]) -> None:
    if len({e.label for e in train}) < 2:
        raise TrainingDataError("the training side needs both spam and ham examples")
    if not test:
        raise TrainingDataError("nothing to hold out: add labels or data files")


def _read_files(sources: Sequence[Source], progress: bool) -> list[Example]:
    rows = RowProgress("reading", sources, CHUNK, progress)
    out: list[Example] = []
    for chunk in chunked(chain(sources), CHUNK):
        out += chunk
        rows.add(len(chunk))
    rows.close()
    return out


def train_out_of_core(
    sources: Sequence[Source],
    registry: Registry,
    *,
    description: list[str],
    fraction: float = RECENT_FRACTION,
    progress: bool = True,
    chunk: int = CHUNK,
    test_cap: int = TEST_CAP,
) -> RetrainResult:
    """One pass of ``partial_fit`` over the streamed sources; see the module doc."""
    features = HashedFeatures()
    clf = SGDClassifier(**SGD_PARAMS)
    split = StreamSplit(fraction, test_cap)
    rows = RowProgress("training (out of core)", sources, chunk, progress)
    n_train = 0
    for batch in chunked(chain(sources), chunk):
        train = split.take(batch)
        rows.add(len(batch))
        del batch  # only this chunk's training side stays alive through the fit
        if train:
            _partial_fit(clf, features, train)
            n_train += len(train)
        del train  # nor while the next chunk is read
    rows.close()
    test = split.test
    if n_train == 0 or not hasattr(clf, "coef_"):
        raise TrainingDataError("no training examples")
    _check([Example(test[0].comment, 0, ""), Example(test[0].comment, 1, "")] if test else [], test)
    steps = Steps("gate", [f"candidate on {len(test):,} held-out", "serving model on them",
                           "saving model and report"], progress)
    pipeline = Pipeline([("features", features), ("clf", clf)])
    probs = _predict(pipeline, test)
    thresholds = choose_thresholds([e.label for e in test], probs)
    steps.done()
    gate, serving_probs = _gate(registry, test, probs, thresholds)
    steps.done()
    summary = {
        "description": description,
        "sources": dict(split.sources),
        "examples": split.distinct,
        "folded_duplicates": split.folded,
        "spam": split.spam,
        "sha256": split.fingerprint.hexdigest(),
        "train": n_train,
        "test": len(test),
        "held_out_by_site": {},
        "protocol": f"{fraction:.0%} by hash of normalised text (at most {test_cap}, the "
        "smallest hashes), drawn while streaming; one streamed pass, not refitted",
        "trainer": "out-of-core",
    }
    result = _finish(
        registry, pipeline, summary=summary, test=test, probs=probs, thresholds=thresholds,
        gate=gate, serving_probs=serving_probs,
        params={**SGD_PARAMS, "n_features": features.n_features},
    )
    steps.done()
    return result


def _partial_fit(clf: SGDClassifier, features: HashedFeatures, train: list[Example]) -> None:
    """One chunk, classes balanced within it."""
    y = np.asarray([e.label for e in train])
    spam = max(int(y.sum()), 1)
    weights = np.where(y == 1, len(y) / (2 * spam), len(y) / (2 * max(len(y) - spam, 1)))
    clf.partial_fit(features.transform([e.comment for e in train]), y, classes=[0, 1],
                    sample_weight=weights)
