"""Learning from a site (issue 14): discard is kept for familiar text, and the
automatic refresh retrains, gates, promotes and shows up in history and /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from service.registry.versions import Registry, refresh_counts
from service.scoring.model import load_scorer
from service.scoring.verdicts import Verdict, score_comments
from service.store import migrate
from service.store.db import Store, engine_for
from training.text import Comment

ALWAYS_DISCARD = {"unsure": 0.0, "spam": 0.0, "discard": 0.0}


def test_text_unlike_the_training_data_is_never_discarded(model_dir: Path) -> None:
    reg = Registry(model_dir)
    scorer = load_scorer(reg, str(reg.current()))
    familiar = Comment(content="Check out my new video and subscribe to my channel please")
    chinese = Comment(content="恭喜 您 获得 本期 大奖 请 回复 领取 奖金 详情 咨询 客服")
    jargon = Comment(content="zxqv plorth wibblenet grommish fnordle quuxbar splonk")
    short = Comment(content="hi")
    out = score_comments(scorer, [familiar, chinese, jargon, short], thresholds=ALWAYS_DISCARD)
    assert out[0].verdict is Verdict.SPAM and out[0].discard
    for o in out[1:3]:
        assert o.verdict is Verdict.UNSURE and not o.discard
        assert "unlike what the model was trained on" in o.reasons[0].description
    assert out[3].discard  # too few words to tell: the thresholds decide
    assert scorer.familiarity(familiar) is not None and scorer.familiarity(familiar) >= 0.6
    assert scorer.familiarity(chinese) == 0.0


def test_text_the_model_cannot_read_is_judged_by_its_signals(model_dir: Path) -> None:
    """Day one on a site in another language: a lure with a link is spam, a reader
    citing a source by its link is only unsure, a plain comment is ham (not a
    moderator's 'unsure' for every comment), and each says how it was judged."""
    from service.scoring.verdicts import BY_SIGNALS_REASON

    reg = Registry(model_dir)
    scorer = load_scorer(reg, str(reg.current()))
    lure = Comment(content="Заработок от 5000 руб в день! Пишите в личку http://bit.ly/xq1")
    plain = Comment(content="Полностью согласен с автором, правительство должно было решить")
    source = Comment(content="Вот ссылка на оригинал новости https://ria.ru/20240312/economy"
                             " там цифры немного другие")
    english = Comment(content="Great article, the council vote was close")
    assert scorer.by_signals(lure) and scorer.by_signals(plain) and scorer.by_signals(source)
    assert not scorer.by_signals(english)
    # A new site: no discard (service.api.checking.discard_where_known).
    spam, ham, cited, familiar = score_comments(scorer, [lure, plain, source, english],
                                                thresholds={"discard": 1.0})
    assert spam.verdict is Verdict.SPAM and spam.reasons[0].description == BY_SIGNALS_REASON
    assert {r.kind for r in spam.reasons[1:]} == {"feature"}  # signals, no words
    assert cited.verdict is Verdict.UNSURE and cited.reasons[0].description == BY_SIGNALS_REASON
    assert ham.verdict is Verdict.HAM
    assert ham.spam_probability >= scorer.thresholds["unsure"]  # the signals' base rate
    assert all(r.description != BY_SIGNALS_REASON for r in familiar.reasons)


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    s = Store(engine_for(sqlite_url))
    migrate.upgrade(s.engine)
    yield s
    s.engine.dispose()


@pytest.mark.slow
def test_refresh_learns_a_sites_labels_and_is_in_history_and_metrics(
    sqlite_store: Store, tmp_path: Path, make_app: object, sqlite_url: str
) -> None:
    from training.datasets import YOUTUBE_DIR
    from training.refresh import is_due, refresh
    from training.train import bootstrap

    store = sqlite_store
    reg = Registry(tmp_path / "models")
    bootstrap(reg, YOUTUBE_DIR / "Youtube01-Psy.csv")
    assert not is_due(store, reg, 10, 60).due
    site = store.ensure_site("weather.example")
    cities = ["Oslo", "Lima", "Kyiv", "Pune", "Cork", "Graz", "Bonn", "Fez", "Turku", "Riga"]
    for i in range(40):
        spam = i % 2 == 0
        text = (f"Cheap umbrellas for {cities[i % 10]} at umbrella-deals dot shop, code {i}"
                if spam else f"The council in {cities[i % 10]} met on day {i} about the bridge")
        store.feedback(label="spam" if spam else "ham", source="moderator", actor="m",
                       site_id=site, content=text)
    due = is_due(store, reg, 10, 60)
    assert due.due and due.new_labels == 40
    out = refresh(store, reg, min_labels=10, max_minutes=60)
    assert out["ran"] and out["promoted"], out["gate"]["reasons"]
    assert reg.current() == out["version"]
    assert not is_due(store, reg, 10, 60).due  # the new model was fit on those labels
    counts, last = refresh_counts(reg.history())
    assert counts == {"promoted": 1, "refused": 0} and last > 0
    app = make_app(model_dir=reg.root)  # type: ignore[operator]
    assert isinstance(app, Flask)
    page = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'commentmod_model_refreshes_total{outcome="promoted"} 1' in page
    probe = Comment(content="Cheap umbrellas for Oslo at umbrella-deals dot shop, code 77")
    new = load_scorer(reg, out["version"])
    assert new.score([probe])[0][0] >= new.thresholds["spam"]
