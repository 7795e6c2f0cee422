"""Retrain from stored labels plus data files: candidate, gate, save, report.

Two trainers share the flow:

- in memory (the default): the model of :mod:`training.train` (word and
  character TF-IDF, signals, logistic regression) is fitted on the training
  side of :func:`training.gate.split_recent`, scored with the serving model on
  the held-out side, then refitted on everything and saved;
- out of core (``--out-of-core``, or automatically above
  :data:`OUT_OF_CORE_MIN` examples): hashed word n-grams and signals feed
  ``SGDClassifier.partial_fit`` chunk by chunk, so memory stays flat however
  many labels there are. Duplicates are folded as they stream (the first label
  seen wins), the held-out side is chosen by a hash of the text (at most
  :data:`TEST_CAP` examples) and the saved model is the one fitted on the
  training side.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline
from tqdm import tqdm

from service.errors import ModelError
from service.registry.versions import Registry
from service.store.db import Store
from training.datasets import Example, data_fingerprint, read_dataset, shipped_base
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
from training.labels import count_labels, iter_label_chunks, read_labels
from training.report import write_report
from training.train import DEFAULT_PARAMS, build_pipeline, code_version

OUT_OF_CORE_MIN = 200_000  # examples; more than this trains out of core
CHUNK = 20_000  # examples per partial_fit call
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


def _progress(total: int | None, desc: str, enabled: bool) -> tqdm[Any]:
    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, disable=not enabled)


def _serving(registry: Registry) -> tuple[Any, str | None]:
    version = registry.current("spam")
    if version is None:
        return None, None
    try:
        return registry.load(version), version
    except ModelError:
        return None, version  # a broken serving model cannot veto a candidate


def _gate(
    registry: Registry, test: Sequence[Example], probs: list[float], thresholds: dict[str, float]
) -> tuple[GateResult, list[float] | None]:
    candidate_rows = evaluation_rows(test, probs, thresholds)
    serving, version = _serving(registry)
    if serving is None:
        return decide_gate(candidate_rows, None, version), None
    serving_probs = predict(serving.pipeline, test)
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
    file_examples = [ex for path in files for ex in read_dataset(path)]
    description = [str(p) for p in files]
    if base and not files:
        file_examples = shipped_base()
        description = ["YouTube Spam Collection v1 (shipped, CC BY 4.0)",
                       "discussion comments as ham (shipped; see ATTRIBUTION.md)"]
    if store is not None:
        description.append("stored labels")
    n_labels = count_labels(store) if store is not None else 0
    if out_of_core is None:
        out_of_core = n_labels + len(file_examples) > OUT_OF_CORE_MIN
    if out_of_core:
        chunks: Iterable[list[Example]] = _chunks(store, file_examples)
        return train_out_of_core(
            chunks, registry, description=description, fraction=fraction, progress=progress
        )
    bar = _progress(5, "training", progress)
    stored = read_labels(store) if store is not None else []
    bar.update()
    split = split_recent(stored, file_examples, fraction)
    _check(split.train, split.test)
    sources = Counter(s.example.source for s in stored) + Counter(e.source for e in file_examples)
    candidate = build_pipeline()
    candidate.fit([e.comment for e in split.train], [e.label for e in split.train])
    bar.update()
    probs = predict(candidate, split.test)
    thresholds = choose_thresholds([e.label for e in split.test], probs)
    gate, serving_probs = _gate(registry, split.test, probs, thresholds)
    bar.update()
    everything = split.train + split.test
    final = build_pipeline()
    final.fit([e.comment for e in everything], [e.label for e in everything])
    bar.update()
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
    bar.update()
    bar.close()
    return result


def _check(train: Sequence[Example], test: Sequence[Example]) -> None:
    if len({e.label for e in train}) < 2:
        raise TrainingDataError("the training side needs both spam and ham examples")
    if not test:
        raise TrainingDataError("nothing to hold out: add labels or data files")


def _chunks(store: Store | None, files: Sequence[Example]) -> Iterator[list[Example]]:
    if store is not None:
        for chunk in iter_label_chunks(store, CHUNK):
            yield [s.example for s in chunk]
    for i in range(0, len(files), CHUNK):
        yield list(files[i : i + CHUNK])


def _key_hash(ex: Example) -> int:
    return int.from_bytes(hashlib.blake2b(ex.key.encode(), digest_size=8).digest(), "big")


def train_out_of_core(
    chunks: Iterable[list[Example]],
    registry: Registry,
    *,
    description: list[str],
    fraction: float = RECENT_FRACTION,
    progress: bool = True,
) -> RetrainResult:
    """One pass of ``partial_fit`` over streamed chunks; see the module doc."""
    features = HashedFeatures()
    clf = SGDClassifier(**SGD_PARAMS)
    seen: set[int] = set()
    test: list[Example] = []
    sources: Counter[str] = Counter()
    folded = n_train = n_spam = 0
    fingerprint = hashlib.sha256()
    for chunk in tqdm(chunks, desc="training (out of core)", unit="chunk", file=sys.stderr,
                      disable=not progress):
        train = []
        for ex in chunk:
            sources[ex.source] += 1
            h = _key_hash(ex)
            if h in seen:
                folded += 1
                continue
            seen.add(h)
            fingerprint.update(h.to_bytes(8, "big") + bytes([ex.label]))
            n_spam += ex.label
            if h / 2**64 < fraction and len(test) < TEST_CAP:
                test.append(ex)
            else:
                train.append(ex)
        if not train:
            continue
        y = np.asarray([e.label for e in train])
        spam = max(int(y.sum()), 1)
        weights = np.where(y == 1, len(y) / (2 * spam), len(y) / (2 * max(len(y) - spam, 1)))
        clf.partial_fit(features.transform([e.comment for e in train]), y, classes=[0, 1],
                        sample_weight=weights)
        n_train += len(train)
    if n_train == 0 or not hasattr(clf, "coef_"):
        raise TrainingDataError("no training examples")
    _check([Example(test[0].comment, 0, ""), Example(test[0].comment, 1, "")] if test else [], test)
    pipeline = Pipeline([("features", features), ("clf", clf)])
    probs = predict(pipeline, test)
    thresholds = choose_thresholds([e.label for e in test], probs)
    gate, serving_probs = _gate(registry, test, probs, thresholds)
    summary = {
        "description": description,
        "sources": dict(sources),
        "examples": n_train + len(test),
        "folded_duplicates": folded,
        "spam": n_spam,
        "sha256": fingerprint.hexdigest(),
        "train": n_train,
        "test": len(test),
        "held_out_by_site": {},
        "protocol": f"{fraction:.0%} by hash of normalised text (at most {TEST_CAP}); "
        "one streamed pass, not refitted",
        "trainer": "out-of-core",
    }
    return _finish(
        registry, pipeline, summary=summary, test=test, probs=probs, thresholds=thresholds,
        gate=gate, serving_probs=serving_probs,
        params={**SGD_PARAMS, "n_features": features.n_features},
    )
