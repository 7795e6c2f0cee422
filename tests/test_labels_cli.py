"""``commentmod labels``, ``moderators`` and ``privacy`` through the real CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from moderation_helpers import PASSWORD, add_comment, comment_id

from service.cli.main import main
from service.moderation import moderators as mods
from service.store.db import Store, engine_for


@pytest.fixture
def cli(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        "COMMENTMOD_DATABASE_URL": db_url,
        "COMMENTMOD_DATA_DIR": str(tmp_path / "var"),
        "COMMENTMOD_PASSWORD_HASH_COST": "fast",
        "COMMENTMOD_LOG_LEVEL": "WARNING",
    }

    def run(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=env, input=stdin)

    return run


@pytest.fixture
def db(db_url: str, cli) -> Store:  # type: ignore[no-untyped-def]
    cli("db", "upgrade")
    return Store(engine_for(db_url))


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_moderators_create_list_assign_disable(cli, db: Store) -> None:  # type: ignore[no-untyped-def]
    r = cli("moderators", "create", "alice", "--site", "news.example", "--password-stdin",
            stdin=PASSWORD + "\n")
    assert r.exit_code == 2 and "no site 'news.example' (known sites: none yet)" in r.output
    r = cli("moderators", "create", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.exit_code == 2 and "give --site URL" in r.output and "or --admin" in r.output
    assert mods.list_all(db) == []
    db.ensure_site("https://news.example/")
    db.ensure_site("b.example")
    r = cli("moderators", "create", "alice", "--site", "news.example", "--password-stdin",
            stdin=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert mods.verify(db, "alice", PASSWORD, hasher=mods.FAST) is not None
    r = cli("moderators", "create", "carol", "--admin", stdin="")  # no terminal, no input
    assert r.exit_code == 2 and "Aborted" not in r.output
    assert "error: no password given and no terminal to ask for it on" in r.output
    assert "--password-stdin" in r.output
    r = cli("moderators", "create", "root", "--admin", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0 and "admin" in r.output
    assert cli("moderators", "create", "alice", "--password-stdin", stdin=PASSWORD).exit_code == 2
    r = cli("moderators", "create", "bob", "--admin", "--password-stdin", stdin="short\n")
    assert r.exit_code == 2 and "password" in r.output
    assert cli("moderators", "assign", "alice", "--site", "b.example").exit_code == 0
    listed = cli("moderators", "list").output
    assert "alice" in listed and "b.example" in listed and "news.example" in listed
    assert cli("moderators", "disable", "alice").exit_code == 0
    assert mods.verify(db, "alice", PASSWORD, hasher=mods.FAST) is None
    assert cli("moderators", "disable", "nobody").exit_code == 2


def test_import_jsonl_by_guid_and_content_is_idempotent(cli, db: Store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    guid = add_comment(db, "known comment")
    path = write_jsonl(tmp_path / "labels.jsonl", [
        {"guid": guid, "label": "spam"},
        {"content": "Known   COMMENT", "label": "spam"},  # same comment by text: a duplicate
        {"content": "brand new text", "label": "ham", "site": "https://news.example/",
         "author": "Ann", "unknown": [1]},
        {"content": "mean words", "label": "toxic", "attribute": "INSULT"},
    ])
    r = cli("labels", "import", str(path))
    assert r.exit_code == 0, r.output
    assert "3 labels added, 1 already present, 2 comments created" in r.output
    r = cli("labels", "import", str(path))
    assert "0 labels added, 4 already present, 0 comments created" in r.output
    cid = comment_id(db, guid)
    assert [(h["label"], h["source"]) for h in db.label_history(cid)] == [("spam", "import")]
    new = db.find_comment(content="brand new text")
    assert new is not None and new["author"] == "Ann" and new["source"] == "import"
    assert db.audit_entries()[0]["action"] == "labels.import"


def test_import_csv_with_multiline_text(cli, db: Store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "labels.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["content", "label", "author_email"])
        w.writerow(["line one\nline two, with comma", "spam", "a@example.org"])
    r = cli("labels", "import", str(path))
    assert r.exit_code == 0 and "1 labels added" in r.output
    found = db.find_comment(content="line one\nline two, with comma")
    assert found is not None and db.latest_label(found["id"]) == "spam"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"content": "x", "label": "maybe"}], "line 2"),
        ([{"label": "spam"}], "needs a guid or the comment's content"),
        (["not an object"], "object"),
        ([{"content": 5, "label": "spam"}], "must be a string"),
        ([{"content": "x", "label": "spam", "source": "robot"}], "source"),
        ([{"guid": "no-such-guid", "label": "spam"}], "unknown comments"),
    ],
)
def test_import_bad_file_imports_nothing(cli, db: Store, tmp_path: Path, rows: list[object],  # type: ignore[no-untyped-def]
                                         message: str) -> None:
    good = {"content": "a good row", "label": "spam"}
    path = write_jsonl(tmp_path / "bad.jsonl", [good, *rows])
    r = cli("labels", "import", str(path))
    assert r.exit_code == 2 and message in r.output
    assert db.find_comment(content="a good row") is None


def test_import_refuses_garbage_files(cli, db: Store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "x.jsonl").write_text("{broken\n")
    r = cli("labels", "import", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 2 and "not valid JSON" in r.output
    (tmp_path / "x.txt").write_text("content,label\n")
    assert "--format" in cli("labels", "import", str(tmp_path / "x.txt")).output
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert cli("labels", "import", str(tmp_path / "bin.csv")).exit_code != 0


def test_import_skips_forgotten_commenters(cli, db: Store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("privacy", "forget", "--email", "gone@example.org").exit_code == 0
    path = write_jsonl(tmp_path / "l.jsonl", [
        {"content": "from a forgotten person", "label": "spam", "author_email": "GONE@example.org"},
    ])
    r = cli("labels", "import", str(path))
    assert "1 skipped (forgotten)" in r.output
    assert db.find_comment(content="from a forgotten person") is None


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_round_trips(cli, db: Store, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    a = add_comment(db, 'spam, "quoted"\nand multi-line')
    b = add_comment(db, "ham text")
    add_comment(db, "test traffic", is_test=True)
    db.add_label(comment_id(db, a), "ham", source="site", actor="site:1")
    db.add_label(comment_id(db, a), "spam", source="moderator", actor="alice")
    db.add_label(comment_id(db, b), "ham", source="moderator", actor="alice")
    out = tmp_path / f"labels.{fmt}"
    r = cli("labels", "export", "--format", fmt, "--output", str(out))
    assert r.exit_code == 0, r.output
    if fmt == "csv":
        with out.open(newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["guid"], x["label"], x["actor"]) for x in rows] == [
        (a, "spam", "alice"), (b, "ham", "alice")]
    assert rows[0]["content"] == 'spam, "quoted"\nand multi-line'
    assert db.audit_entries()[0]["action"] == "labels.export"
    history = cli("labels", "export", "--history").output.splitlines()
    assert len(history) == 3
    r = cli("labels", "import", str(out))  # importing our own export adds nothing
    assert "0 labels added, 2 already present" in r.output


def test_privacy_commands(cli, db: Store) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from service.store.db import now

    add_comment(db, "old", received_at=now() - timedelta(days=400))
    r = cli("privacy", "purge", "--dry-run")
    assert r.exit_code == 0 and "would purge 1" in r.output
    assert "purged 1" in cli("privacy", "purge", "--days", "30").output
    assert cli("privacy", "forget").exit_code == 2
    victim = add_comment(db, "bye", user_ip="198.51.100.7")
    r = cli("privacy", "forget", "--ip", "198.51.100.7")
    assert r.exit_code == 0 and "deleted 1 comments" in r.output
    assert db.find_comment(guid=victim) is None


def test_export_leaves_out_forgotten_commenters(cli, db: Store) -> None:  # type: ignore[no-untyped-def]
    assert cli("privacy", "forget", "--ip", "192.0.2.1").exit_code == 0
    again = add_comment(db, "came back after forget", user_ip="192.0.2.1")
    db.add_label(comment_id(db, again), "spam", source="moderator")
    kept = add_comment(db, "someone else")
    db.add_label(comment_id(db, kept), "ham", source="moderator")
    lines = cli("labels", "export").output.splitlines()
    assert [json.loads(x)["guid"] for x in lines] == [kept]
