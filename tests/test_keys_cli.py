"""``commentmod keys create|list|revoke`` against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from service.cli.main import main
from service.store.db import Store, engine_for


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COMMENTMOD_DATABASE_URL", db_url)
    monkeypatch.setenv("COMMENTMOD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMENTMOD_ENV", "testing")

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["keys", *args], catch_exceptions=False)

    return invoke


def test_create_prints_a_12_character_key_that_works(run, db_url: str) -> None:  # type: ignore[no-untyped-def]
    r = run("create", "--site", "https://www.News.Example/")
    assert r.exit_code == 0
    key = r.stdout.strip()
    assert re.fullmatch(r"[a-z0-9]{12}", key)
    assert "news.example" in r.stderr
    store = Store(engine_for(db_url))
    info = store.find_key(key)
    assert info is not None and info.site_url == "news.example"
    store.engine.dispose()


def test_list_shows_hints_never_keys(run) -> None:  # type: ignore[no-untyped-def]
    key = run("create", "--site", "news.example").stdout.strip()
    run("create", "--site", "blog.example")
    r = run("list")
    assert r.exit_code == 0
    assert key not in r.stdout and "........" + key[-4:] in r.stdout
    assert "news.example" in r.stdout and "blog.example" in r.stdout
    rows = json.loads(run("list", "--json").stdout)
    assert [(x["site"], x["revoked_at"]) for x in rows] == [("news.example", None),
                                                            ("blog.example", None)]
    assert all("key_hash" not in x for x in rows)


def test_revoke_by_key_and_by_id(run, db_url: str) -> None:  # type: ignore[no-untyped-def]
    first = run("create", "--site", "news.example").stdout.strip()
    second = run("create", "--site", "news.example").stdout.strip()
    assert run("revoke", first.upper()).exit_code == 0  # keys compare case-insensitively
    r = run("revoke", "2")
    assert r.exit_code == 0 and "revoked key 2" in r.stdout
    store = Store(engine_for(db_url))
    assert store.find_key(first) is None and store.find_key(second) is None
    store.engine.dispose()
    assert run("list").stdout.count("revoked") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("revoke", "nosuchkey123"), "no such key"),
        (("revoke", "999"), "no such key"),
        (("create", "--site", "   "), "site URL is required"),
        (("create", "--site", "http://"), "is not a site URL"),
        (("create", "--site", "notaurl"), "'notaurl' is not a site URL: give its host name"),
        (("create", "--site", "news..example"), "is not a site URL"),
    ],
)
def test_bad_input_is_one_clear_line(run, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    r = run(*args)
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and message in r.stderr


def test_create_needs_a_site(run) -> None:  # type: ignore[no-untyped-def]
    r = run("create")
    assert r.exit_code == 2 and "--site" in r.stderr
