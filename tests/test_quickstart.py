"""The README, walked from a clean clone: the quick start and each user group's
first steps, run as the README shows them, so that the README cannot drift from
the product.

Every command this test runs is taken from README.md (a command missing there
fails the test); only the port, the site key and a password on stdin are filled
in. The clone is ``git clone`` of this repository's committed HEAD, with nothing
beside it. To keep the run to a few minutes, the clone's ``.venv`` borrows the
already installed dependencies of the running virtualenv (a ``.pth`` line) and
gets commentmod itself by ``pip install --no-deps -e .``, so that ``make serve``
finds the virtualenv made; everything after that (migrations, the bootstrap spam
model, gunicorn, the background toxicity model) is ``make serve`` itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from procs import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
TOXICITY_DEADLINE_S = 600.0  # from make serve to a scored analyze (4-6 min on a busy 2-core box)


def readme_command(start: str) -> str:
    """The README's command that begins with ``start``: continuation lines joined,
    a trailing ``# comment`` dropped. Fails when the README no longer shows it."""
    lines = README.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(start):
            parts = [line.strip()]
            while parts[-1].endswith("\\"):
                i += 1
                parts[-1] = parts[-1][:-1].rstrip()
                parts.append(lines[i].strip())
            command = " ".join(parts)
            return re.sub(r"\s+#\s.*$", "", command)
    raise AssertionError(f"README.md no longer shows a command starting {start!r}")


@dataclass
class Clone:
    root: Path
    port: int
    elsewhere: Path  # a directory outside the clone, for the CLI

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def shell(self, command: str, *, stdin: str | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``command`` in bash, the README's activation line first, from a directory
        that is not the clone (the CLI must not depend on it)."""
        command = command.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        script = f"{readme_command('. .venv/bin/activate')} && cd {self.elsewhere} && {command}"
        return subprocess.run(
            ["bash", "-c", script], cwd=self.root, input=stdin, capture_output=True,
            text=True, timeout=timeout, env=clean_env(), check=False,
        )


def clean_env() -> dict[str, str]:
    """The environment of a new user: no COMMENTMOD_* setting, no virtualenv."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("COMMENTMOD_", "PYTEST", "VIRTUAL_ENV", "PYTHONPATH"))}


def http(url: str, body: dict[str, object] | None = None) -> tuple[int, dict[str, str], str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()
    except OSError:
        return 0, {}, ""


def wait_for(probe: object, timeout: float, what: str) -> float:
    """Seconds until ``probe()`` is true."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if probe():  # type: ignore[operator]
            return time.monotonic() - t0
        time.sleep(1.0)
    raise AssertionError(f"{what} not within {timeout:.0f} s")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    tmp = tmp_path_factory.mktemp("quickstart")
    root = tmp / "commentmod"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(root)], check=True)
    assert not [p for p in (root / "models").iterdir() if p.is_dir()], "no model ships"
    # The virtualenv make serve would make, with the dependencies borrowed (see above).
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(subprocess.run([venv / "bin" / "python", "-c", where],
                                  check=True, capture_output=True, text=True).stdout.strip())
    (purelib / "_borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--no-deps", "-e", str(root)],
                   check=True, capture_output=True, env=clean_env())
    (venv / ".runtime").touch()
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    log = (tmp / "make-serve.log").open("w")
    make_serve = readme_command("make serve")
    assert make_serve == "make serve"
    t0 = time.monotonic()
    proc = subprocess.Popen(["make", "serve", f"PORT={port}"], cwd=root, env=clean_env(),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    c = Clone(root, port, elsewhere)
    try:
        wait_for(lambda: http(c.base + "/healthz")[0] == 200, 300, "make serve")
        print(f"\nmake serve (venv made): spam API after {time.monotonic() - t0:.0f} s")
        c.started = t0  # type: ignore[attr-defined]
        yield c
    finally:
        # make, gunicorn and the background trainer share make's process group.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a trainer still running
        log.close()


def test_readme_walk_from_a_clean_clone(clone: Clone) -> None:
    # --- quick start: score a comment --------------------------------------------
    r = clone.shell(readme_command("curl -s http://127.0.0.1:8000/api/v1/check"))
    assert r.returncode == 0, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["verdict"] == "spam" and verdict["reasons"]

    # --- the CLI, from another directory, sees the clone's state -----------------
    r = clone.shell(readme_command("commentmod models list"))
    assert r.returncode == 0 and "spam-" in r.stdout, r.stdout + r.stderr
    assert "new, empty database" not in r.stderr

    # --- news sites: a key, Akismet's verify-key, the Perspective endpoint --------
    r = clone.shell(readme_command("commentmod keys create --site"))
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip().splitlines()[0]
    assert re.fullmatch(r"[a-z0-9]{12}", key), r.stdout
    r = clone.shell(readme_command("commentmod keys list"))
    assert r.returncode == 0 and "news.example.org" in r.stdout, r.stdout + r.stderr
    req = urllib.request.Request(clone.base + "/1.1/verify-key",
                                 data=f"key={key}&blog=https://news.example.org".encode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.read() == b"valid"
    analyze = readme_command('curl -X POST "http://127.0.0.1:8000/v1alpha1/comments:analyze')
    analyze = analyze.replace("SITEKEY", key) + " -s -D /dev/stderr"
    r = clone.shell(analyze)
    first = json.loads(r.stdout)
    if "error" in first:  # the toxicity model is still training in the background
        assert first["error"]["code"] == 503, first
        assert re.search(r"(?im)^retry-after: \d+", r.stderr), r.stderr

    # --- moderators: an account, the queue's login page ---------------------------
    create = readme_command("commentmod moderators create alice --site")
    r = clone.shell(create + " --password-stdin", stdin="a long enough password 1\n")
    assert r.returncode == 0, r.stdout + r.stderr
    status, _, page = http(clone.base + "/moderate/")
    assert status == 200 and "password" in page.lower()

    # --- ops: export labels, config, health (retraining: tests/test_cli.py; here it
    # would compete for the CPU with the background toxicity training) ------------
    r = clone.shell(readme_command("commentmod labels export --format csv -o labels.csv"))
    assert r.returncode == 0, r.stderr
    assert (clone.elsewhere / "labels.csv").is_file()
    r = clone.shell("commentmod config")
    assert json.loads(r.stdout)["home"] == str(clone.root.resolve())
    assert http(clone.base + "/readyz")[0] == 200
    assert http(clone.base + "/metrics")[0] == 200
    assert not (clone.elsewhere / "var").exists() and not (clone.elsewhere / "models").exists()

    # --- the Perspective endpoint answers once the background model is promoted ----
    started: float = clone.started  # type: ignore[attr-defined]

    def scored() -> bool:
        out = clone.shell(analyze)
        return bool(out.stdout) and "attributeScores" in json.loads(out.stdout)

    wait_for(scored, TOXICITY_DEADLINE_S - (time.monotonic() - started),
             "the background toxicity model")
    print(f"Perspective endpoint scored {time.monotonic() - started:.0f} s after make serve")
    out = json.loads(clone.shell(analyze).stdout)
    assert out["attributeScores"]["TOXICITY"]["summaryScore"]["value"] > 0.5
