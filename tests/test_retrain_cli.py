"""The retraining CLI: train's bad input, sites thresholds, shadow and diff commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from service.cli.main import main
from service.registry.versions import Registry
from service.store import migrate
from service.store.db import Store, engine_for


@pytest.fixture
def run(model_dir: Path, tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    env = {
        "COMMENTMOD_ENV": "testing",
        "COMMENTMOD_MODEL_DIR": str(model_dir),
        "COMMENTMOD_DATA_DIR": str(tmp_path / "var"),
        "COMMENTMOD_DATABASE_URL": sqlite_url,
        "COMMENTMOD_SECRET_KEY": "test-secret",
        "COMMENTMOD_REDIS_URL": "",
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=env)

    return invoke


def test_train_refuses_bad_input(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"content": "x", "label": "maybe"}\n')
    r = run("train", "--data", str(bad))
    assert r.exit_code == 1 and "neither spam nor ham" in r.output
    r = run("train", "--data", str(tmp_path / "missing.csv"))
    assert r.exit_code == 1 and "no such file" in r.output
    r = run("train", "--force")
    assert r.exit_code == 2 and "--force only makes sense with --promote" in r.output
    r = run("train", "--holdout", "0.9")
    assert r.exit_code == 2


def test_sites_thresholds(run, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    assert run("sites", "thresholds", "nowhere.example").exit_code == 2
    store = Store(engine_for(sqlite_url))
    store.ensure_site("https://www.News.example.org/")
    r = run("sites", "thresholds", "news.example.org", "--spam", "0.8")
    assert r.exit_code == 0, r.output
    assert '"spam": 0.8' in r.output and '"unsure": "(model)"' in r.output
    [site] = store.sites()
    assert site["settings"]["thresholds"] == {"spam": 0.8}
    r = run("sites", "thresholds", "news.example.org", "--spam", "1.5")
    assert r.exit_code == 2 and "[0, 1]" in r.output
    r = run("sites", "thresholds", "news.example.org", "--spam", "0.001", "--unsure", "0.5")
    assert r.exit_code == 2 and "unsure <= spam" in r.output
    r = run("sites", "thresholds", "news.example.org", "--reset")
    assert r.exit_code == 0 and "0.8" not in r.output
    assert "thresholds" not in store.sites()[0]["settings"]
    assert [e["action"] for e in store.audit_entries()][:2] == ["site.thresholds"] * 2


def test_sites_thresholds_after_keys_create_as_the_readme_shows(run) -> None:  # type: ignore[no-untyped-def]
    assert run("keys", "create", "--site", "https://news.example.org").exit_code == 0
    for spelling in ("news.example.org", "https://news.example.org/", "www.news.example.org"):
        r = run("sites", "thresholds", spelling, "--spam", "0.8")
        assert r.exit_code == 0, r.output
        assert r.output.startswith('news.example.org: {"unsure": "(model)", "spam": 0.8')
    r = run("sites", "thresholds", "news.example.com")
    assert r.exit_code == 2
    assert "no site 'news.example.com' (known sites: news.example.org)" in r.output


def test_shadow_commands(run, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    version = str(Registry(model_dir).current())
    assert run("models", "shadow").exit_code == 2
    assert run("models", "shadow-report").exit_code == 1
    assert run("models", "shadow", "spam-20200101T000000Z-deadbeef").exit_code == 2
    r = run("models", "shadow", version)
    assert r.exit_code == 0 and version in r.output
    r = run("models", "shadow-report")
    assert r.exit_code == 0 and "0 comments shadowed" in r.output
    assert run("models", "shadow", "--off").exit_code == 0


def test_diff_of_a_model_with_itself_flips_nothing(run, model_dir: Path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    store = Store(engine_for(sqlite_url))
    migrate.upgrade(store.engine)
    store.feedback(label="spam", source="moderator", actor="t", site_id=None, content="buy now")
    version = str(Registry(model_dir).current())
    r = run("models", "diff", version)
    assert r.exit_code == 0, r.output
    assert "1 labelled comments, 0 verdicts would flip" in r.output


def test_rollback_without_history_is_a_clear_error(run) -> None:  # type: ignore[no-untyped-def]
    r = run("models", "rollback")
    assert r.exit_code == 2 and "no earlier spam model" in r.output


def test_promoting_a_version_the_gate_refused_needs_force(run, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    reg = Registry(model_dir)
    serving = str(reg.current())
    loaded = reg.load(serving)
    gate = {"passed": False, "serving_version": serving,
            "reasons": ["refused: worse than the serving model on the sites' own newest labels"],
            "candidate": {"overall": {"mcc": 0.12}}, "serving": {"overall": {"mcc": 0.55}}}
    refused = reg.save(loaded.pipeline, {**loaded.metadata, "gate": gate})
    r = run("models", "promote", refused)
    assert r.exit_code == 3 and "refused" in r.output and "--force" in r.output
    assert reg.current() == serving
    r = run("models", "promote", refused, "--force")
    assert r.exit_code == 0 and "forced" in r.output
    event = reg.history()[-1]
    assert event["action"] == "force" and event["version"] == refused
    assert event["detail"]["candidate_overall"]["mcc"] == 0.12
    assert event["detail"]["serving_overall"]["mcc"] == 0.55
    r = run("models", "promote", serving)  # a version without a refusing gate: as before
    assert r.exit_code == 0 and reg.history()[-1]["action"] == "promote"
