"""Retrain from stored labels plus data files: candidate, gate, save, report.

Two trainers share the flow:

- in memory (the default): the model of :mod:`training.train` (word and
  character TF-IDF, signals, logistic regression) is fitted on the training
  side of :func:`training.gate.split_recent`, given thresholds chosen on
  out-of-fold scores of that side (:func:`training.train.kfold_thresholds`),
  scored with the serving model on the held-out side, then refitted on
  everything and saved;
- out of core (``--out-of-core``, or automatically above
  :data:`OUT_OF_CORE_MIN` rows): every source is streamed
  (:mod:`training.stream`: files row by row, stored labels in batches) in
  chunks of :data:`CHUNK` through hashed word n-grams and signals into
  ``SGDClassifier.partial_fit``, so memory stays flat however many rows there
  are. Duplicates are folded as they stream (the first label seen wins), the
  held-out side is drawn by a hash of the text while streaming (at most
  :data:`TEST_CAP` examples), the thresholds are chosen on it (k fits would
  make the one streamed pass k passes) and the saved model is the one fitted
  on the training side.

Which one runs by default is a matter of measured cost (bench/training.py,
docs/retraining.md): the in-memory trainer fits seven times (candidate, five
folds, refit) and its vocabularies grow with the data, so above
:data:`OUT_OF_CORE_MIN` rows it costs more time and memory than the out-of-core
one does on ten times as many.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
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
from training.features import Comment
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
from training.labels import read_labels
from training.parallel import Featuriser
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
from training.train import (
    BOOTSTRAP_PARAMS,
    DEFAULT_PARAMS,
    build_pipeline,
    code_version,
    kfold_splits,
    kfold_thresholds,
)

# Rows (estimated) above which training runs out of core. Measured with the product's
# command (bench/training.py, docs/retraining.md): in memory costs 28 CPU-s and 376 MB
# at 10k rows and 106 s and 1.4 GB at 100k, more than out of core on 1M (133 CPU-s,
# 314 MB); at 20k in memory stays well under what out of core needs for 1M. With
# the 5-fold thresholds (training.train.KFOLD_MAX) 20k rows cost 90 CPU-s, still
# under out of core's 203 on 1M (bench/results/training-kfold-thresholds.json).
OUT_OF_CORE_MIN = 20_000
CHUNK = 20_000  # rows per partial_fit call; also the batch of every prediction
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
    return evaluation_rows(test, _predict(pipeline, test), thresholds)["overall"]


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
    serving_probs = _predict(serving.pipeline, both) if both else None
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
    workers: int = 0,
) -> RetrainResult:
    """Train a candidate from stored labels and ``files`` (plus the shipped set when
    ``base`` and no file is given), gate it against the serving model, save it.

    ``workers``: processes that featurise chunks for the out-of-core trainer."""
    streams = file_sources(files)  # a missing file fails here, before any work
    description = [str(p) for p in files]
    if base and not files:
        streams = [shipped_source()]
        description = ["YouTube Spam Collection v1 (shipped, CC BY 4.0)",
                       "SMS Spam Collection v.1 (shipped; see its ATTRIBUTION.md)",
                       "discussion comments as ham (shipped; see ATTRIBUTION.md)"]
    if store is not None:
        store.join_pending()  # labels that waited for their check
        streams.insert(0, labels_source(store, CHUNK))
        description.append("stored labels")
    if out_of_core is None:
        out_of_core = sum(s.rows for s in streams) > OUT_OF_CORE_MIN
    if out_of_core:
        return train_out_of_core(
            streams, registry, description=description, fraction=fraction, progress=progress,
            workers=workers,
        )
    file_examples = _read_files(streams[1:] if store is not None else streams, progress)
    bar = Steps("training (in memory)", ["reading stored labels", "fitting (training side)",
                                         "thresholds (out of fold)", "gate (held-out side)",
                                         "refitting on all", "saving model and report"],
                progress)
    stored = read_labels(store) if store is not None else []
    bar.done()
    serving_version = registry.current("spam")
    split = split_recent(stored, file_examples, fraction, serving_record(registry, serving_version))
    _check(split.train, split.test)
    sources = Counter(s.example.source for s in stored) + Counter(e.source for e in file_examples)
    # The site's labels (stored, or in its files) train the SVM; the shipped corpora
    # alone train what the bootstrap trains (training.train.BOOTSTRAP_PARAMS).
    params = DEFAULT_PARAMS if stored or files else BOOTSTRAP_PARAMS
    candidate = build_pipeline(params)
    candidate.fit([e.comment for e in split.train], [e.label for e in split.train],
                  clf__sample_weight=label_weights(split.train))
    bar.done()
    probs = _predict(candidate, split.test)
    # Thresholds from the training side's out-of-fold scores: the gate then scores the
    # candidate on a held-out side its thresholds were not chosen on, as it scores a
    # serving model trained this way (the gate fold and newer labels were in neither's
    # folds). On the held-out side itself only where the folds would cost too much.
    folds = kfold_splits([e.label for e in split.train])
    chosen = kfold_thresholds(split.train, params, sample_weight=label_weights(split.train))
    thresholds = (chosen[0] if chosen is not None
                  else choose_thresholds([e.label for e in split.test], probs))
    bar.done()
    rows = evaluation_rows(split.test, probs, thresholds)
    gate, serving_probs = _gate(registry, candidate, thresholds, split.site_test,
                                split.other_test, rows)
    bar.done()
    everything = split.final
    final = build_pipeline(params)
    final.fit([e.comment for e in everything], [e.label for e in everything],
              clf__sample_weight=label_weights(everything))
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
        "gate_fold": len(split.gate_fold),
        "compared": {"sites": len(split.site_test), "elsewhere": len(split.other_test)},
        "protocol": f"newest {fraction:.0%} of each site's labels the serving model was not fit "
        "on, and the data files' gate fold; thresholds from "
        + (f"out-of-fold scores of a stratified {folds}-fold over the training side"
           if folds else "that held-out side")
        + "; refitted on all but the gate fold",
        "threshold_folds": folds,
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
        probs=_predict(candidate, both) if both else probs, thresholds=thresholds,
        gate=gate, serving_probs=serving_probs, params=dict(params),
        trained_on=(record, [key_digest(e.key) for e in everything]),
        discard_sites=discard_sites(split.test, probs, thresholds),
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
    workers: int = 0,
) -> RetrainResult:
    """One pass of ``partial_fit`` over the streamed sources; see the module doc.

    With ``workers``, chunks are featurised in that many processes while the
    previous ones are fitted (:mod:`training.parallel`): the same model, sooner."""
    features = HashedFeatures().fit([])
    clf = SGDClassifier(**SGD_PARAMS)
    split = StreamSplit(fraction, test_cap)
    with Featuriser(features, workers) as featuriser:
        rows = RowProgress("training (out of core)", sources, chunk, progress)

        def labelled() -> Iterator[tuple[np.ndarray, list[Comment]]]:
            for batch in chunked(chain(sources), chunk):
                train = split.take(batch)
                rows.add(len(batch))
                del batch  # only the training side of the chunk stays alive
                if train:
                    labels = np.asarray([e.label for e in train])
                    comments = [e.comment for e in train]
                    del train
                    yield labels, comments

        n_train = 0
        for y, X in featuriser.map(labelled()):
            _partial_fit(clf, X, y)
            n_train += len(y)
        rows.close()
        test = split.test
        if n_train == 0 or not hasattr(clf, "coef_"):
            raise TrainingDataError("no training examples")
        _check([Example(test[0].comment, 0, ""), Example(test[0].comment, 1, "")] if test
               else [], test)
        steps = Steps("gate", [f"candidate on {len(test):,} held-out", "serving model on them",
                               "saving model and report"], progress)
        pipeline = Pipeline([("features", features), ("clf", clf)])
        probs = [float(p) for _, X in featuriser.map(
            (None, [e.comment for e in test[i : i + chunk]]) for i in range(0, len(test), chunk)
        ) for p in clf.predict_proba(X)[:, 1]]
    thresholds = choose_thresholds([e.label for e in test], probs)
    steps.done()
    # Streamed: the held-out side is chosen by hash, compared as "elsewhere", less
    # what the serving model was fit on (a bootstrap fit on the same files scored
    # them from memory, and refused every out-of-core candidate).
    record = serving_record(registry, registry.current("spam"))
    new = [i for i, e in enumerate(test) if record is None or not record.saw_streamed(e)]
    unseen = [test[i] for i in new]
    gate, serving_probs = _gate(registry, pipeline, thresholds, [], unseen,
                                evaluation_rows(test, probs, thresholds))
    # The report draws both models on the same comments: those new to both.
    shown, shown_probs = ((unseen, [probs[i] for i in new]) if serving_probs is not None
                          else (test, probs))
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
        registry, pipeline, summary=summary, test=shown, probs=shown_probs, thresholds=thresholds,
        gate=gate, serving_probs=serving_probs,
        params={**SGD_PARAMS, "n_features": features.n_features},
    )
    steps.done()
    return result


def _partial_fit(clf: SGDClassifier, X: Any, y: np.ndarray) -> None:
    """One chunk, classes balanced within it."""
    spam = max(int(y.sum()), 1)
    weights = np.where(y == 1, len(y) / (2 * spam), len(y) / (2 * max(len(y) - spam, 1)))
    clf.partial_fit(X, y, classes=[0, 1], sample_weight=weights)
