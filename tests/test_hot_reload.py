"""The whole loop through the real service: label, train, gate, promote, watch a
running gunicorn (2 workers) switch model without a failed request, roll back.

Once with Redis pub/sub (polling effectively off: an hour), once with pointer
polling alone. The labels are written with ``Store.feedback`` (the path
``service.api.checking.record_feedback`` takes), addressed by the guids the
running server answered with: POST /api/v1/feedback is another branch's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.registry.versions import Registry
from service.store import migrate
from service.store.db import Store, engine_for
from training.datasets import YOUTUBE_DIR
from training.retrain import retrain

PSY = YOUTUBE_DIR / "Youtube01-Psy.csv"
KATY = YOUTUBE_DIR / "Youtube02-KatyPerry.csv"
CITIES = ["Oslo", "Lima", "Kyiv", "Pune", "Cork", "Graz", "Bonn", "Fez", "Turku", "Riga"]
PROBE = "The weather forecast for Bergen says rain on Sunday"
# What a model that never saw the weather labels may answer for them: not spam. Whether
# it says ham or unsure depends on where its thresholds fell, which is not under test.
NOT_SPAM = ("ham", "unsure")


@pytest.fixture(scope="module")
def psy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A registry serving a one-video model, holding a candidate that learnt the
    weather labels (for the polling test, which promotes it with the CLI)."""
    root = tmp_path_factory.mktemp("psy-models")
    reg = Registry(root)
    first = retrain(None, reg, [PSY], progress=False)
    reg.set_current(first.version)
    labels = Store(engine_for(f"sqlite:///{root.parent / 'labels.sqlite3'}"))
    migrate.upgrade(labels.engine)
    for i in range(3):
        for c in CITIES:
            labels.feedback(label="spam", source="moderator", actor="mod", site_id=None,
                            content=f"The weather forecast for {c} says rain on day {i}")
    candidate = retrain(labels, reg, [KATY], progress=False)
    labels.engine.dispose()
    return root, candidate.version


@pytest.fixture
def model_dir(psy_model_dir: tuple[Path, str], tmp_path: Path) -> Path:
    """Serve a model trained on one video only: the candidate learns another."""
    target = tmp_path / "models"
    shutil.copytree(psy_model_dir[0], target)
    return target


def post(base: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        base + "/api/v1/check", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


class Hammer:
    """Checks the probe comment continuously; every answer is kept."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.answers: list[tuple[float, int, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = post(self.base, {"content": PROBE})
            except OSError:
                status, body = 0, {}
            self.answers.append(
                (time.monotonic(), status, body.get("model_version", ""), body.get("verdict", ""))
            )
            time.sleep(0.1)

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def wait_for(base: str, version: str, verdict: str | tuple[str, ...], timeout: float) -> float:
    """Seconds until 20 answers in a row come from ``version`` with ``verdict`` (or one of)."""
    verdicts = (verdict,) if isinstance(verdict, str) else verdict
    started = time.monotonic()
    streak = 0
    while time.monotonic() - started < timeout:
        status, body = post(base, {"content": PROBE})
        assert status == 200
        ok = body["model_version"] == version and body["verdict"] in verdicts
        streak = streak + 1 if ok else 0
        if streak == 20:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"workers did not all switch to {version} in {timeout} s; last: {body}")


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )


@pytest.fixture
def loop_env(model_dir: Path, tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "COMMENTMOD_ENV": "testing",
        "COMMENTMOD_MODEL_DIR": str(model_dir),
        "COMMENTMOD_DATA_DIR": str(tmp_path / "var"),
        "COMMENTMOD_DATABASE_URL": sqlite_url,
        "COMMENTMOD_SECRET_KEY": "test-secret",
        "COMMENTMOD_LOG_LEVEL": "WARNING",
        # The probe is posted hundreds of times: keep the flood rule out of this test.
        "COMMENTMOD_FLOOD_SPAM_COUNT": "0",
    }


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(engine_for(sqlite_url))
    yield s
    s.engine.dispose()


def label_weather_comments(base: str, store: Store) -> None:
    """The site sends comments of a new kind, the model lets them through,
    moderators label them spam (by the guid the server answered with)."""
    answers = [post(base, {"content": f"The weather forecast for {c} says rain on day {i}"})
               for i in range(3) for c in CITIES]
    assert all(status == 200 for status, _ in answers)
    assert sum(body["verdict"] in NOT_SPAM for _, body in answers) >= 25
    assert post(base, {"content": PROBE})[1]["verdict"] in NOT_SPAM
    for _, body in answers:
        store.feedback(label="spam", source="moderator", actor="mod", site_id=None,
                       guid=body["guid"])


def no_failed_request(hammer: Hammer, versions: set[str]) -> int:
    statuses = [a[1] for a in hammer.answers]
    assert statuses and set(statuses) == {200}, "a request failed during a switch"
    assert {a[2] for a in hammer.answers} == versions
    return len(statuses)


@pytest.mark.slow
def test_label_train_promote_reload_rollback_with_pubsub(
    serve: Callable[..., str],
    loop_env: dict[str, str],
    store: Store,
    model_dir: Path,
    redis_url: str,
) -> None:
    extra = {
        "COMMENTMOD_REDIS_URL": redis_url,
        "COMMENTMOD_RELOAD_INTERVAL_SECONDS": "3600",  # only the notice can explain a switch
        "COMMENTMOD_FLOOD_SPAM_COUNT": "0",
    }
    env = {**loop_env, **extra}
    base = serve(workers=2, env=extra)
    time.sleep(0.5)  # let each worker's subscriber connect
    old = Registry(model_dir).current()
    assert old is not None
    label_weather_comments(base, store)

    with Hammer(base) as hammer:
        # train, see the gate's verdict, promote
        done = cli(env, "train", "--data", str(KATY), "--promote", "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        new = summary["version"]
        assert summary["promoted"] and summary["gate"]["passed"], summary["gate"]["reasons"]
        assert summary["sources"]["labels:moderator"] == 30
        # every worker answers with the new model and the new verdict
        switched = wait_for(base, new, "spam", 5.0)
        # roll back: the old model and verdict return
        back = cli(env, "models", "rollback")
        assert back.returncode == 0, back.stderr
        assert old in back.stdout
        restored = wait_for(base, old, NOT_SPAM, 5.0)

    n = no_failed_request(hammer, {old, new})
    print(f"pubsub: switched in {switched:.2f} s, rolled back in {restored:.2f} s, "
          f"{n} requests during the switches, all 200")

    # the gate's report, as the moderator pages link it
    with urllib.request.urlopen(f"{base}/models/{new}/report", timeout=10) as r:
        page = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/html")
    words = re.sub(r"<[^>]+>", "", page)  # the report marks the verdict up
    assert "Gate: passed" in words and f"Serving {old}" in words
    with urllib.request.urlopen(f"{base}/models/{new}/report/pr.png", timeout=10) as r:
        assert r.headers["Content-Type"] == "image/png" and r.read(4) == b"\x89PNG"


@pytest.mark.slow
def test_promote_and_rollback_reach_workers_by_polling(
    serve: Callable[..., str],
    loop_env: dict[str, str],
    model_dir: Path,
    psy_model_dir: tuple[Path, str],
) -> None:
    extra = {"COMMENTMOD_RELOAD_INTERVAL_SECONDS": "0.5",  # no Redis configured
             "COMMENTMOD_FLOOD_SPAM_COUNT": "0"}
    env = {**loop_env, **extra}
    base = serve(workers=2, env=extra)
    old, new = Registry(model_dir).current(), psy_model_dir[1]
    assert old is not None
    assert post(base, {"content": PROBE})[1]["verdict"] in NOT_SPAM
    with Hammer(base) as hammer:
        diff = cli(env, "models", "diff", new)
        assert diff.returncode == 0, diff.stderr
        assert "verdicts would flip" in diff.stdout
        done = cli(env, "models", "promote", new)
        assert done.returncode == 0, done.stderr
        switched = wait_for(base, new, "spam", 8.0)
        back = cli(env, "models", "rollback")
        assert back.returncode == 0, back.stderr
        restored = wait_for(base, old, NOT_SPAM, 8.0)
    n = no_failed_request(hammer, {old, new})
    print(f"polling: switched in {switched:.2f} s, rolled back in {restored:.2f} s, "
          f"{n} requests during the switches, all 200")
