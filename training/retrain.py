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
from collections import Counter, defaultdict
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
    Comparison,
    GateResult,
    TrainedOn,
    decide_gate,
    evaluation_rows,
    key_digest,
    predict,
    split_recent,
    trained_on,
)
from training.hashing import HashedFeatures
from training.labels import count_labels, iter_label_chunks, read_labels
from training.report import write_report
from training.train import DEFAULT_PARAMS, build_pipeline, code_version

OUT_OF_CORE_MIN = 200_000  # examples; more than this trains out of core
CHUNK = 20_000  # examples per partial_fit call
TEST_CAP = 50_000  # most held-out examples an out-of-core run keeps in memory
SGD_PARAMS: dict[str, Any] = {"loss": "log_loss", "alpha": 2e-6, "random_state": 0}
TRAINED_ON = "trained_on.txt"  # beside the model: one key digest per distinct text it saw
# Stored labels (a site's own traffic) weigh more than the data files: together as
# much as LABEL_SHARE of the files' weight, each between 1 and LABEL_WEIGHT_MAX.
LABEL_SHARE = 1.0
LABEL_WEIGHT_MAX = 30.0
SITE_DISCARD_MIN = 100  # held-out comments of a site above its discard threshold, at least
SITE_DISCARD_PRECISION = 0.995


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


def serving_record(registry: Registry, version: str | None) -> TrainedOn | None:
    """What the serving model was fit on: its record, with its key digests when at hand."""
    if version is None:
        return None
    meta = registry.metadata(version)
    path = registry.version_dir(version) / TRAINED_ON
    keys = set(path.read_text().split()) if path.is_file() else None
    return trained_on(meta, keys)


def label_weights(examples: Sequence[Example]) -> np.ndarray:
    """Sample weights: stored labels above the data files (see LABEL_SHARE)."""
    is_label = np.array([e.source.startswith("labels") for e in examples])
    n_labels, n_files = int(is_label.sum()), int((~is_label).sum())
    w = 1.0
    if n_labels and n_files:
        w = min(max(LABEL_SHARE * n_files / n_labels, 1.0), LABEL_WEIGHT_MAX)
    return np.where(is_label, w, 1.0)


def discard_sites(
    test: Sequence[Example], probs: Sequence[float], thresholds: dict[str, float]
) -> dict[str, float]:
    """The sites whose own held-out labels show discard is safe, with the threshold.

    ``choose_thresholds`` finds the discard threshold on the whole held-out set,
    mostly the data files: another kind of text, on which the bootstrap model
    discarded ham of new sites (89 % and 67 % discard precision on SMS and blog
    comments). A model discards only for the sites listed here (the serving
    path reads ``metadata["discard_sites"]``): those whose held-out labels show
    99.5 % precision on at least SITE_DISCARD_MIN comments above the threshold.
    Twenty (the data files' rule) proved too few: a site whose 20 held-out
    discards were all spam had 97.7 % discard precision on 1,500 more.
    """
    by_site: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(test):
        if e.source.startswith("labels"):
            by_site[e.group].append(i)
    out: dict[str, float] = {}
    for site, idx in sorted(by_site.items()):
        y = np.asarray([test[i].label for i in idx])
        p = np.asarray([probs[i] for i in idx])
        for t in np.unique(np.round(p[p >= thresholds["discard"]], 4)):
            hit = p >= t
            if hit.sum() < SITE_DISCARD_MIN:
                break
            if y[hit].mean() >= SITE_DISCARD_PRECISION:
                out[site] = float(t)
                break
    return out


def _scores(pipeline: Any, test: Sequence[Example], thresholds: dict[str, float]
            ) -> dict[str, Any] | None:
    if not test:
        return None
    return evaluation_rows(test, predict(pipeline, test), thresholds)["overall"]


def _gate(
    registry: Registry, candidate: Any, thresholds: dict[str, float],
    site_test: Sequence[Example], other_test: Sequence[Example],
    candidate_rows: dict[str, dict[str, Any]],
) -> tuple[GateResult, list[float] | None]:
    serving, version = _serving(registry)
    if serving is None:
        sites = Comparison("sites", len(site_test), None, None)
        return decide_gate(sites, Comparison("elsewhere", 0, None, None), version,
                           candidate_rows, None), None
    both = list(site_test) + list(other_test)
    serving_probs = predict(serving.pipeline, both) if both else None
    serving_rows = (
        evaluation_rows(both, serving_probs, serving.thresholds) if serving_probs else None
    )
    sites = Comparison("sites", len(site_test), _scores(candidate, site_test, thresholds),
                       _scores(serving.pipeline, site_test, serving.thresholds))
    other = Comparison("elsewhere", len(other_test), _scores(candidate, other_test, thresholds),
                       _scores(serving.pipeline, other_test, serving.thresholds))
    return decide_gate(sites, other, version, candidate_rows, serving_rows), serving_probs


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
    trained_on: tuple[dict[str, Any], list[str]] | None = None,
    discard_sites: dict[str, float] | None = None,
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
    meta["discard_sites"] = discard_sites or {}
    if trained_on is not None:
        meta["trained_on"] = trained_on[0]
    version = registry.save(pipeline, meta, family="spam")
    if trained_on is not None:  # what the next gate must not compare this model on
        (registry.version_dir(version) / TRAINED_ON).write_text("\n".join(sorted(trained_on[1])))
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
    if store is not None:
        store.join_pending()  # labels that waited for their check
    stored = read_labels(store) if store is not None else []
    bar.update()
    serving_version = registry.current("spam")
    split = split_recent(stored, file_examples, fraction, serving_record(registry, serving_version))
    _check(split.train, split.test)
    sources = Counter(s.example.source for s in stored) + Counter(e.source for e in file_examples)
    candidate = build_pipeline()
    candidate.fit([e.comment for e in split.train], [e.label for e in split.train],
                  clf__sample_weight=label_weights(split.train))
    bar.update()
    probs = predict(candidate, split.test)
    thresholds = choose_thresholds([e.label for e in split.test], probs)
    rows = evaluation_rows(split.test, probs, thresholds)
    gate, serving_probs = _gate(registry, candidate, thresholds, split.site_test,
                                split.other_test, rows)
    bar.update()
    everything = split.final
    final = build_pipeline()
    final.fit([e.comment for e in everything], [e.label for e in everything],
              clf__sample_weight=label_weights(everything))
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
        "gate_fold": len(split.gate_fold),
        "compared": {"sites": len(split.site_test), "elsewhere": len(split.other_test)},
        "protocol": f"newest {fraction:.0%} of each site's labels the serving model was not fit "
        "on, and the data files' gate fold; refitted on all but the gate fold",
        "trainer": "in-memory",
        "label_weight": float(label_weights(everything).max()) if everything else 1.0,
    }
    record = {
        "files": "outside-gate-fold",
        "labels_up_to": max((s.label_id for s in stored), default=0),
        "examples": len(everything),
        "keys": TRAINED_ON,
    }
    both = split.site_test + split.other_test
    result = _finish(
        registry, final, summary=summary, test=both or split.test,
        probs=predict(candidate, both) if both else probs, thresholds=thresholds,
        gate=gate, serving_probs=serving_probs, params=dict(DEFAULT_PARAMS),
        trained_on=(record, [key_digest(e.key) for e in everything]),
        discard_sites=discard_sites(split.test, probs, thresholds),
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
    # Streamed: the held-out side is chosen by hash, compared as "elsewhere".
    gate, serving_probs = _gate(registry, pipeline, thresholds, [], test,
                                evaluation_rows(test, probs, thresholds))
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
