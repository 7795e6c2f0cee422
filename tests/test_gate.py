"""The evaluation gate: the held-out split, the decision, the report, the diff."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from service.registry.versions import Registry
from service.scoring.model import load_scorer
from service.store import migrate, schema
from service.store.db import Store, engine_for
from training.datasets import YOUTUBE_DIR, Example
from training.features import Comment
from training.gate import (
    TOLERANCE,
    Comparison,
    decide_gate,
    diff_models,
    evaluation_rows,
    key_digest,
    split_recent,
    trained_on,
)
from training.labels import StoredLabel, read_labels
from training.retrain import TrainingDataError, retrain

PSY = YOUTUBE_DIR / "Youtube01-Psy.csv"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored(text: str, label: int, site: str, minutes: int, label_id: int = 0) -> StoredLabel:
    ex = Example(Comment(content=text), label, "labels:moderator", group=site)
    return StoredLabel(ex, label_id, label_id, site, T0 + timedelta(minutes=minutes))


def test_split_holds_out_each_sites_newest_labels() -> None:
    a = [stored(f"site a comment {i}", i % 2, "a", i, i) for i in range(10)]
    b = [stored(f"site b comment {i}", i % 2, "b", i, 100 + i) for i in range(5)]
    small = [stored(f"site c comment {i}", 0, "c", i, 200 + i) for i in range(3)]
    split = split_recent(a + b + small, [], fraction=0.2)
    test = {e.comment.content for e in split.test}
    assert test == {"site a comment 9", "site a comment 8", "site b comment 4"}
    assert split.held_out_by_site == {"a": 2, "b": 1}
    assert len(split.train) == 15


def test_duplicates_never_straddle_the_split() -> None:
    labels = [stored(f"comment {i}", 1, "a", i, i) for i in range(10)]
    files = [Example(Comment(content="COMMENT   9"), 0, "file.csv"),
             Example(Comment(content="comment 0"), 1, "file.csv")]
    files += [Example(Comment(content=f"file text {i}"), i % 2, "file.csv") for i in range(50)]
    split = split_recent(labels, files, fraction=0.2)
    train_keys = {e.key for e in split.train}
    test_keys = {e.key for e in split.test}
    assert not train_keys & test_keys
    assert split.folded == 2
    assert "comment 9" in test_keys and "comment 0" in train_keys


BASE = {"roc_auc": 0.95, "mcc": 0.8, "f1": 0.9, "precision_at_discard": 1.0}


def cmp(name: str, n: int = 20, **candidate: float) -> Comparison:
    return Comparison(name, n, {**BASE, **candidate}, dict(BASE))


NONE = Comparison("elsewhere", 0, None, None)


@pytest.mark.parametrize(
    ("sites", "elsewhere", "passed", "why"),
    [
        (cmp("sites", mcc=0.9), cmp("elsewhere"), True, "at least as good on the sites"),
        (cmp("sites"), cmp("elsewhere"), True, "at least as good on the sites"),
        (cmp("sites", mcc=0.7), cmp("elsewhere"), False, "worse than the serving model on the"),
        (cmp("sites", mcc=0.9), cmp("elsewhere", mcc=0.8 - TOLERANCE["mcc"] * 2), False,
         "worse elsewhere beyond the tolerance (mcc)"),
        (cmp("sites", mcc=0.9), cmp("elsewhere", mcc=0.8 - TOLERANCE["mcc"] / 2), True, "as good"),
        (cmp("sites", mcc=0.9), cmp("elsewhere", precision_at_discard=float("nan")), True,
         "as good"),  # not comparable: not a veto
        (Comparison("sites", 0, None, None), cmp("elsewhere"), True, "not worse"),
        # No site label held out (an out-of-core retrain): the refusal says so, and
        # not "better on the sites' labels", as it did to a trial operator.
        (Comparison("sites", 0, None, None), cmp("elsewhere", mcc=0.5), False,
         "refused: no site labels to compare; worse elsewhere beyond the tolerance (mcc)"),
        (cmp("sites", mcc=0.9), cmp("elsewhere", mcc=0.5), False,
         "refused: as good on the sites' labels but worse elsewhere"),
        (cmp("sites", mcc=0.9), NONE, True, "as good"),
    ],
)
def test_gate_decision(sites: Comparison, elsewhere: Comparison, passed: bool, why: str) -> None:
    result = decide_gate(sites, elsewhere, "spam-x", {"overall": dict(BASE)}, {})
    assert result.passed is passed
    assert why in result.verdict
    assert result.reasons[-1] == result.verdict


def test_one_class_of_site_labels_is_decided_by_the_verdicts_that_match_them() -> None:
    """A site that lately labelled only spam (or one comment) makes MCC 0 for every
    model: the gate compares the share of those labels each model gets right."""
    def site(tp: int, fn: int) -> dict[str, float]:
        return {**BASE, "mcc": 0.0, "accuracy": tp / (tp + fn), "tp": tp, "fn": fn,
                "tn": 0, "fp": 0}

    worse = Comparison("sites", 1, site(0, 1), site(1, 0))
    result = decide_gate(worse, NONE, "spam-x", {"overall": dict(BASE)}, {})
    assert not result.passed and "worse than the serving model" in result.verdict
    assert "all spam, share of them the verdict matches candidate 0.000 vs serving 1.000" in (
        result.reasons[0])
    # Said, since an operator reads a pass as "better": ham was not tested at all.
    assert result.reasons[1].startswith("warning: no ham among them, so the gate did not test")
    better = Comparison("sites", 4, site(3, 1), site(2, 2))
    assert decide_gate(better, NONE, "spam-x", {"overall": dict(BASE)}, {}).passed


def test_gate_passes_without_a_serving_model_or_anything_new_to_it() -> None:
    none = Comparison("sites", 0, None, None)
    first = decide_gate(none, NONE, None, {"overall": dict(BASE)}, None)
    assert first.passed and "no serving model" in first.verdict
    fresh = decide_gate(none, NONE, "spam-bootstrap", {"overall": dict(BASE)}, None)
    assert fresh.passed and "nothing is held out" in fresh.verdict


def test_what_a_model_saw_decides_what_the_gate_compares_on() -> None:
    labels = [stored(f"site a comment {i}", i % 2, "a", i, i + 1) for i in range(10)]
    files = [Example(Comment(content=f"file text {i}"), i % 2, "f.csv") for i in range(200)]
    bootstrap = trained_on({"data": {"description": ["shipped"]}})
    split = split_recent(labels, files, 0.2, bootstrap)
    assert len(split.site_test) == 2 and not split.other_test  # it saw every file text
    assert split.gate_fold and not {e.key for e in split.gate_fold} & {e.key for e in split.final}
    retrained = trained_on({"trained_on": {"files": "outside-gate-fold", "labels_up_to": 9}})
    split = split_recent(labels, files, 0.2, retrained)
    assert [e.comment.content for e in split.site_test] == ["site a comment 9"]
    assert split.other_test == split.gate_fold  # never fit on the gate fold
    keys = {key_digest(s.example.key) for s in labels[:9]}
    by_keys = trained_on({"trained_on": {"files": "outside-gate-fold"}}, keys)
    assert [e.comment.content for e in split_recent(labels, files, 0.2, by_keys).site_test] == [
        "site a comment 9"]


def test_evaluation_rows_per_group() -> None:
    test = [Example(Comment(content=f"t{i}"), i % 2, "f", group=g)
            for i, g in enumerate(["a", "a", "b", "b"])]
    out = evaluation_rows(test, [0.1, 0.9, 0.2, 0.8], {"unsure": 0.3, "spam": 0.5,
                                                       "discard": 0.95})
    assert set(out) == {"overall", "a", "b"}
    assert out["overall"]["accuracy"] == 1.0 and out["a"]["n"] == 2
    assert "precision_at_discard" in out["overall"]


def seed_weather_labels(store: Store, n: int = 30) -> None:
    # A hostile site name as a database from before site names were checked may hold
    # it (store.site_key refuses it now): the report must escape it.
    hostile = "<b>news</b>.example.org"
    with store.transaction() as c:
        c.execute(insert(schema.sites).values(url=hostile, name=hostile, settings={},
                                              created_at=datetime.now(UTC)))
    site = int(store.read(lambda c: c.execute(
        select(schema.sites.c.id).where(schema.sites.c.url == hostile)).scalar_one()))
    cities = ["Oslo", "Lima", "Kyiv", "Pune", "Cork", "Graz", "Bonn", "Fez", "Turku", "Riga"]
    for i in range(n):
        store.feedback(label="spam", source="moderator", actor="t", site_id=site,
                       content=f"The weather forecast for {cities[i % 10]} says rain on day {i}")


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    """Training tests run on SQLite only: test_labels covers the queries on both."""
    s = Store(engine_for(sqlite_url))
    migrate.upgrade(s.engine)
    yield s
    s.engine.dispose()


def test_retrain_gates_reports_and_learns_the_labels(
    sqlite_store: Store, tmp_path: Path
) -> None:
    store = sqlite_store
    reg = Registry(tmp_path / "models")
    first = retrain(None, reg, [PSY], progress=False)
    assert first.gate.passed and first.gate.serving is None
    reg.set_current(first.version)
    seed_weather_labels(store)
    result = retrain(store, reg, [PSY], progress=False)
    s = result.summary
    assert s["sources"]["labels:moderator"] == 30 and s["sources"]["Youtube01-Psy.csv"] == 350
    assert s["held_out_by_site"] == {"<b>news</b>.example.org": 6}
    assert result.gate.serving_version == reg.current()
    assert result.gate.serving is not None
    assert "<b>news</b>.example.org" in result.gate.candidate
    meta = reg.metadata(result.version)
    assert meta["gate"]["passed"] == result.gate.passed and meta["trainer"] == "in-memory"
    assert meta["trained_on"]["files"] == "outside-gate-fold"
    assert (reg.version_dir(result.version) / "trained_on.txt").is_file()
    html = result.report.read_text()
    assert "&lt;b&gt;news&lt;/b&gt;" in html and "<b>news" not in html
    for name in ("report-pr.png", "report-confusion.png", "report-histogram.png"):
        assert (result.report.parent / name).read_bytes()[:4] == b"\x89PNG"
    probe = Comment(content="The weather forecast for Oslo says rain on Sunday")
    new, old = load_scorer(reg, result.version), load_scorer(reg, str(reg.current()))
    assert new.score([probe])[0][0] > new.thresholds["spam"] > 0
    assert old.score([probe])[0][0] < old.thresholds["spam"]
    diff = diff_models(read_labels(store), old, new, examples=3)
    assert diff["n"] == 30 and diff["flips"] >= 20 and len(diff["examples"]) == 3
    assert diff["matching_label"]["candidate"] > diff["matching_label"]["serving"]


def test_out_of_core_model_serves_and_explains_with_signals(
    sqlite_store: Store, tmp_path: Path
) -> None:
    store = sqlite_store
    reg = Registry(tmp_path / "models")
    seed_weather_labels(store)
    data = [PSY, YOUTUBE_DIR / "Youtube05-Shakira.csv"]
    result = retrain(store, reg, data, out_of_core=True, progress=False)
    assert result.summary["trainer"] == "out-of-core"
    assert result.summary["sources"]["labels:moderator"] == 30
    scorer = load_scorer(reg, result.version)  # smoke test passes
    [(prob, reasons)] = scorer.score([Comment(content="subscribe http://bit.ly/x http://a.b")])
    assert 0 <= prob <= 1
    assert all(r.kind == "feature" for r in reasons)
    assert result.gate.candidate["overall"]["roc_auc"] > 0.85


def test_retrain_refuses_one_class_data(tmp_path: Path) -> None:
    data = tmp_path / "ham.csv"
    data.write_text("content,label\n" + "".join(f"text {i},ham\n" for i in range(30)))
    with pytest.raises(TrainingDataError, match="both spam and ham"):
        retrain(None, Registry(tmp_path / "m"), [data], progress=False)


def test_first_train_promote_on_a_fresh_install_passes(tmp_path: Path) -> None:
    """A bootstrap fit on all shipped data leaves nothing new to it: no gate artefact."""
    from training.train import bootstrap

    reg = Registry(tmp_path / "models")
    bootstrap(reg, PSY)
    result = retrain(None, reg, [PSY], progress=False)
    assert result.gate.passed, result.gate.reasons
    assert "nothing is held out" in result.gate.verdict


def test_out_of_core_gate_compares_only_what_the_serving_model_never_saw(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """A trial operator's out-of-core retrain was refused: the bootstrap, fit on the
    same files, scored their hash hold-out from memory ("1730 comments ... that
    neither model was fit on", the serving model at 100 %)."""
    from training.train import bootstrap

    reg = Registry(tmp_path / "models")
    bootstrap(reg, PSY)
    alone = retrain(None, reg, [PSY], out_of_core=True, progress=False)
    assert alone.gate.passed, alone.gate.reasons
    assert "nothing is held out" in alone.gate.verdict
    # A site's stored labels are new to the bootstrap: those are compared.
    seed_weather_labels(sqlite_store)
    labelled = retrain(sqlite_store, reg, [PSY], out_of_core=True, progress=False)
    compared = [r for r in labelled.gate.reasons if r.startswith("elsewhere (")]
    assert compared, labelled.gate.reasons
    n = int(compared[0].removeprefix("elsewhere (").split()[0])
    assert 0 < n <= 30 < labelled.summary["test"]  # the held-out labels, not the file's
