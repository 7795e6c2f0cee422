"""Faults against real processes: PostgreSQL restarted under label writes, a corrupt
model promoted under a running server, a gunicorn worker SIGKILLed mid-request,
Redis killed and restarted under load. Nothing acknowledged may be lost.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from procs import PgCluster, RedisServer, Server, post_json, start_server, wait_until
from sqlalchemy import select

from service.api.checking import record_feedback
from service.errors import StorageError
from service.registry.versions import ARTIFACT, METADATA, Registry, sha256_file
from service.resources import EXTENSION, Resources
from service.store import migrate, schema
from service.store.db import Store, engine_for
from training.features import Comment

pytestmark = pytest.mark.slow


def has_rule(app: Flask, rule: str) -> bool:
    return any(r.rule == rule for r in app.url_map.iter_rules())


# --- PostgreSQL restarted while labels are written -------------------------------


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    if not (shutil.which("runuser") and Path("/usr/lib/postgresql/15/bin/initdb").exists()):
        pytest.skip("PostgreSQL 15 server binaries not installed (apt-get install postgresql-15)")
    # Not under pytest's tmp dir: that is private to root and the postgres user
    # could not reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="commentmod-pg-"))
    cluster = PgCluster(root).init()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


class Ledger:
    """What writers were told: acknowledged label ids, refusals, anything else."""

    def __init__(self) -> None:
        self.acked: dict[str, int] = {}  # content -> label id
        self.refused: list[str] = []
        self.unexpected: list[str] = []
        self.lock = threading.Lock()


def write_labels(res: Resources, ledger: Ledger, stop: threading.Event, tag: str) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        content = f"fault label {tag} {i} buy now http://spam.example/{i}"
        try:
            _, label_id = record_feedback(
                res, label="spam" if i % 2 else "ham", source="moderator", actor="fault-test",
                site_id=None, comment=Comment(content=content),
            )
        except StorageError as exc:
            assert exc.status == 503 and exc.code == "storage_unavailable"
            with ledger.lock:
                ledger.refused.append(content)
            time.sleep(0.05)
        except Exception as exc:  # anything else is the defect we look for
            with ledger.lock:
                ledger.unexpected.append(f"{type(exc).__name__}: {exc}")
        else:
            with ledger.lock:
                ledger.acked[content] = label_id


def write_labels_http(client: Any, key: str, ledger: Ledger, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        content = f"fault label http {i} cheap pills http://spam.example/h{i}"
        r = client.post("/api/v1/feedback", json={"label": "spam", "content": content},
                        headers={"Authorization": f"Bearer {key}"})
        body = r.get_json(silent=True) or {}
        with ledger.lock:
            if r.status_code == 200 and body.get("recorded"):
                ledger.acked[content] = int(body["label_id"])
            elif r.status_code == 503 and body["error"]["code"] == "storage_unavailable":
                ledger.refused.append(content)
            else:
                ledger.unexpected.append(f"HTTP {r.status_code}: {body}")
        if r.status_code == 503:
            time.sleep(0.05)


def test_postgres_restart_loses_no_acknowledged_label(
    pg_cluster: PgCluster, make_app: Callable[..., Flask]
) -> None:
    app = make_app(database_url=pg_cluster.url)
    res: Resources = app.extensions[EXTENSION]
    ledger = Ledger()
    stop = threading.Event()
    writers = [threading.Thread(target=write_labels, args=(res, ledger, stop, str(n)))
               for n in range(2)]
    if has_rule(app, "/api/v1/feedback"):  # the site feedback endpoint (akismet branch)
        key, _ = res.store.create_key("https://fault.example")
        writers.append(threading.Thread(target=write_labels_http,
                                        args=(app.test_client(), key, ledger, stop)))
    for w in writers:
        w.start()
    restarts = 0
    try:
        for _ in range(3):
            time.sleep(0.8)
            pg_cluster.restart()
            restarts += 1
        time.sleep(0.8)
    finally:
        stop.set()
        for w in writers:
            w.join(timeout=30)

    engine = engine_for(pg_cluster.url)
    with engine.connect() as conn:
        stored = {
            row.content: row.label_id
            for row in conn.execute(
                select(schema.comments.c.content, schema.labels.c.id.label("label_id"))
                .join(schema.labels, schema.labels.c.comment_id == schema.comments.c.id)
            )
        }
    engine.dispose()
    print(f"postgres restarts={restarts} acknowledged={len(ledger.acked)} "
          f"refused={len(ledger.refused)} stored={len(stored)}")
    assert not ledger.unexpected, ledger.unexpected[:5]
    assert ledger.refused, "no write was refused: the restarts did not bite"
    assert len(ledger.acked) > 20
    missing = {c for c in ledger.acked if stored.get(c) != ledger.acked[c]}
    assert not missing, f"{len(missing)} acknowledged labels not stored: {sorted(missing)[:3]}"
    # A refused write may still have committed (the answer was lost, not the data):
    # it is never counted as written, and nothing appears that nobody wrote.
    assert set(stored) <= set(ledger.acked) | set(ledger.refused)
    assert len(stored) == len(ledger.acked) + len(set(stored) & set(ledger.refused))


# --- one served instance for the model and worker faults ------------------------


@dataclass
class Served:
    server: Server
    model_dir: Path
    db_url: str
    key: str


@pytest.fixture(scope="module")
def served(trained_model_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A gunicorn server of its own (2 workers), with a private model copy and
    SQLite file. Each test leaves it as it found it (the model pointer restored)."""
    root = tmp_path_factory.mktemp("served")
    model_dir = root / "models"
    shutil.copytree(trained_model_dir, model_dir)
    db_url = f"sqlite:///{root / 'served.sqlite3'}"
    store = Store(engine_for(db_url))
    migrate.upgrade(store.engine)
    key, _ = store.create_key("https://faults.example")
    store.engine.dispose()
    server = start_server(root, {"COMMENTMOD_MODEL_DIR": str(model_dir),
                                 "COMMENTMOD_DATABASE_URL": db_url,
                                 "COMMENTMOD_RELOAD_INTERVAL_SECONDS": "0.2"})
    yield Served(server, model_dir, db_url, key)
    server.stop()


# --- a corrupt model promoted under a running server -----------------------------


def corrupt(model_dir: Path, kind: str) -> str:
    """A new version beside the good one, broken in one way; returns its name."""
    registry = Registry(model_dir)
    good = registry.current("spam")
    assert good is not None
    name = f"spam-2030010{len(kind) % 9}T000000Z-{abs(hash(kind)) % 16**8:08x}"
    shutil.copytree(model_dir / good, model_dir / name)
    artifact, meta_path = model_dir / name / ARTIFACT, model_dir / name / METADATA
    meta = json.loads(meta_path.read_text()) | {"version": name}
    if kind == "tampered":  # bytes changed, checksum no longer matches
        data = bytearray(artifact.read_bytes())
        data[len(data) // 2] ^= 0xFF
        artifact.write_bytes(bytes(data))
    elif kind == "truncated":  # cut short and re-checksummed: not what lean.json came from
        artifact.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 3])
        meta["sha256"] = sha256_file(artifact)
    elif kind == "garbage":  # not a joblib file at all, checksum matching
        artifact.write_bytes(b"\x80\x05 not a pickle" * 10)
        meta["sha256"] = sha256_file(artifact)
    elif kind == "sklearn":  # trained under another scikit-learn
        meta["libraries"]["scikit-learn"] = "0.24.2"
    meta_path.write_text(json.dumps(meta))
    return name


def scored_version(server: Server) -> str:
    status, body = post_json(server.base + "/api/v1/check", {"content": "hello there"})
    assert status == 200, body
    return str(body["model_version"])


def test_corrupt_model_under_a_running_server_keeps_the_old_one(served: Served) -> None:
    server, model_dir = served.server, served.model_dir
    good = Registry(model_dir).current("spam")
    pointer = model_dir / "current.json"
    original = pointer.read_text()
    log_start = server.log.stat().st_size
    try:
        assert scored_version(server) == good
        for kind in ("tampered", "truncated", "garbage", "sklearn"):
            bad = corrupt(model_dir, kind)
            pointer.write_text(json.dumps({"spam": bad}))
            time.sleep(0.5)
            versions = {scored_version(server) for _ in range(8)}  # reaches both workers
            assert versions == {good}, kind
            ready = json.loads(urllib_get(server.base + "/readyz"))
            assert ready["checks"]["model"]["version"] == good
    finally:
        pointer.write_text(original)
    log = server.log.read_text()[log_start:]
    assert log.count("model.refused") >= 4
    # A re-checksummed bad artifact no longer matches the compiled tables' source.
    for clue in ("sha256", "compiled from another", "scikit-learn 0.24.2"):
        assert clue in log, clue


def urllib_get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())


# --- a worker SIGKILLed mid-request --------------------------------------------


def load_loop(server: Server, stop: threading.Event, outcome: Counter[str],
              guids: list[str], labels: dict[str, int], key: str | None) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        try:
            if key and i % 3 == 0:
                content = f"worker kill label {threading.get_ident()} {i}"
                status, body = post_json(server.base + "/api/v1/feedback",
                                         {"label": "ham", "content": content},
                                         {"Authorization": f"Bearer {key}"})
                if status == 200:
                    labels[content] = int(body["label_id"])
            else:
                status, body = post_json(server.base + "/api/v1/check/batch", {
                    "comments": [{"content": f"comment {i} " + "lorem ipsum " * 50}] * 5})
                if status == 200:
                    guids.extend(r["guid"] for r in body["results"])
            outcome[str(status)] += 1
        except OSError as exc:
            outcome[f"connection:{type(exc).__name__}"] += 1


def test_worker_killed_mid_request_is_replaced_and_nothing_is_lost(served: Served) -> None:
    server = served.server
    has_feedback = post_json(server.base + "/api/v1/feedback", {})[0] != 404
    before = server.workers()
    stop, outcome = threading.Event(), Counter[str]()
    guids: list[str] = []
    labels: dict[str, int] = {}
    clients = [threading.Thread(target=load_loop, args=(
        server, stop, outcome, guids, labels, served.key if has_feedback else None))
        for _ in range(4)]
    try:
        for c in clients:
            c.start()
        time.sleep(1.0)
        killed = [server.kill_worker()]
        time.sleep(1.0)
        killed.append(server.kill_worker())
        time.sleep(1.5)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=30)
    wait_until(lambda: len(server.workers()) == len(before), 30, "replacement workers")
    assert not set(killed) & server.workers()
    for n in range(10):  # after the kills every request succeeds
        assert post_json(server.base + "/api/v1/check", {"content": f"after {n}"})[0] == 200
    print(f"worker kills={len(killed)} outcomes={dict(outcome)} checks={len(guids)} "
          f"labels={len(labels)}")
    assert not [k for k in outcome if k.startswith("5")], outcome
    assert outcome["200"] > 10
    engine = engine_for(served.db_url)
    with engine.connect() as conn:
        stored_guids = set(conn.execute(select(schema.comments.c.guid)).scalars())
        stored_labels = {content: label_id for content, label_id in conn.execute(
            select(schema.comments.c.content, schema.labels.c.id)
            .join(schema.labels, schema.labels.c.comment_id == schema.comments.c.id)
        )}
    engine.dispose()
    assert set(guids) <= stored_guids, "an answered check is missing from the database"
    assert all(stored_labels.get(c) == i for c, i in labels.items()), "an acked label is lost"


# --- Redis killed and restarted under load ---------------------------------------


def test_redis_killed_and_restarted_under_load_no_5xx(model_dir: Path, tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    server = start_server(tmp_path, {"COMMENTMOD_MODEL_DIR": str(model_dir),
                                     "COMMENTMOD_REDIS_URL": redis_server.url})
    stop, outcome = threading.Event(), Counter[str]()
    clients = [threading.Thread(target=load_loop, args=(server, stop, outcome, [], {}, None))
               for _ in range(3)]
    try:
        for c in clients:
            c.start()
        for _ in range(2):
            time.sleep(1.0)
            redis_server.kill()
            time.sleep(1.5)
            redis_server.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=30)
        server.stop()
        redis_server.kill()
    print(f"redis kills=2 outcomes={dict(outcome)}")
    assert set(outcome) == {"200"}, outcome
