"""Shared fixtures. Tests use the real services: the Redis on 127.0.0.1:6379 (a
dedicated db number per xdist worker, flushed around each test) and the
PostgreSQL on 127.0.0.1:5432 (a throwaway database per worker, emptied around
each test). SQLite goes through the same code path with a file per test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from service.app import close_app, create_app
from service.registry.versions import Registry
from service.store import migrate, schema
from service.store.db import Store, engine_for

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("COMMENTMOD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("COMMENTMOD_TEST_REDIS", "redis://127.0.0.1:6379")
# Servers the tests start (they inherit this) do not train a toxicity model in the
# background; tests that want one say so (tests/test_quickstart.py).
os.environ.setdefault("COMMENTMOD_TOXICITY_BOOTSTRAP", "false")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that collected no test is a failure, never a silent success."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def worker_index(worker_id: str) -> int:
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))


# --- models -------------------------------------------------------------------


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding one promoted bootstrap model, trained once per worker."""
    from training.train import bootstrap

    root = tmp_path_factory.mktemp("models")
    bootstrap(Registry(root))
    return root


@pytest.fixture
def model_dir(request: pytest.FixtureRequest, trained_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the trained registry that a test may change freely; with the
    toxicity family too in modules that set ``WITH_TOXICITY_MODEL = True``."""
    source = trained_model_dir
    if getattr(request.module, "WITH_TOXICITY_MODEL", False):
        source = request.getfixturevalue("toxicity_model_dir")
    target = tmp_path / "models"
    shutil.copytree(source, target)
    return target


# --- databases ----------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_database(worker_id: str) -> Iterator[str]:
    """A throwaway PostgreSQL database for this worker, migrated once."""
    name = f"commentmod_test_{worker_index(worker_id)}_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = engine_for(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_pg(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in schema.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that uses it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    url: str = request.getfixturevalue("pg_database")
    _empty_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(engine_for(db_url))
    migrate.upgrade(s.engine)
    yield s
    s.engine.dispose()


# --- redis --------------------------------------------------------------------


@pytest.fixture
def redis_url(worker_id: str) -> Iterator[str]:
    """A Redis db of this worker's own on the real server, flushed around the test."""
    url = f"{REDIS_BASE}/{15 - worker_index(worker_id) % 8}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


# --- the app ------------------------------------------------------------------


@pytest.fixture
def make_app(model_dir: Path, tmp_path: Path, sqlite_url: str) -> Iterator[Callable[..., Flask]]:
    """Build an app with test settings; keyword arguments override settings.

    Every app built is closed after the test: its writer stopped and its database
    pool disposed, so that a long run does not hold PostgreSQL connections until
    the garbage collector happens by (the server allows 100)."""
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        settings = {
            "env": "testing",
            "model_dir": model_dir,
            "data_dir": tmp_path / "var",
            "database_url": sqlite_url,
            "secret_key": "test-secret",
            "log_level": "WARNING",
            **overrides,
        }
        app = create_app(settings)
        built.append(app)
        return app

    yield build
    for app in built:
        close_app(app)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- served instances ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture
def serve(model_dir: Path, tmp_path: Path, sqlite_url: str) -> Iterator[Callable[..., str]]:
    """Start ``commentmod serve`` (real gunicorn) on a free port; returns its base URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(workers: int = 2, env: dict[str, str] | None = None) -> str:
        port = free_port()
        full_env = {
            **os.environ,
            "COMMENTMOD_ENV": "testing",
            "COMMENTMOD_MODEL_DIR": str(model_dir),
            "COMMENTMOD_DATA_DIR": str(tmp_path / "var"),
            "COMMENTMOD_DATABASE_URL": sqlite_url,
            "COMMENTMOD_SECRET_KEY": "test-secret",
            "COMMENTMOD_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        log = (tmp_path / f"serve-{port}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port),
             "--workers", str(workers)],
            env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/healthz", timeout=120)
        return base

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- throwaway redis-server (tests that kill, pause or password-protect Redis) ---


class RedisServer:
    """A ``redis-server`` of the test's own on a free port, without persistence."""

    def __init__(self, workdir: Path, password: str = "") -> None:
        self.port = free_port()
        self.password = password
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        if self.password:
            argv += ["--requirepass", self.password]
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Factory of throwaway redis-servers (``redis_server(password=...)``), all
    killed at the end of the test."""
    servers: list[RedisServer] = []

    def start(password: str = "") -> RedisServer:
        server = RedisServer(tmp_path, password).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc is not None:
            server.proc.send_signal(signal.SIGCONT)  # in case a test paused it
        server.stop()
# --- toxicity -----------------------------------------------------------------


@pytest.fixture(scope="session")
def toxicity_model_dir(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spam registry plus a small promoted toxicity model (a subset of the corpora)."""
    from training.toxicity import default_data_dir, train_toxicity

    data = default_data_dir()
    root = tmp_path_factory.mktemp("models-toxicity")
    shutil.copytree(trained_model_dir, root, dirs_exist_ok=True)
    registry = Registry(root)
    result = train_toxicity(
        registry, data, limit=4000, small=True, evaluate_after=False, span_tuning=40
    )
    registry.set_current(result.version)
    return root
