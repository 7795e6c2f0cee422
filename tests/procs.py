"""Throwaway real processes for fault tests and the soak bench: a PostgreSQL
cluster, a redis-server and a gunicorn server, each on a free port, each killed
or restarted on purpose. Nothing here touches the shared servers on 5432/6379.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PG_BIN = Path(os.environ.get("COMMENTMOD_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(probe: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready within {timeout} s")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- PostgreSQL ----------------------------------------------------------------


@dataclass
class PgCluster:
    """A private PostgreSQL cluster (initdb) on a free port, run as the postgres user."""

    root: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        cmd = list(argv)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    def init(self) -> PgCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.root / "data"), "-U", "postgres",
                  "--auth=trust", "-N")
        return self

    def _ctl(self, action: str, *extra: str) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-o", opts,
                  "-l", str(self.root / "pg.log"), "-w", *extra, action)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("stop", "-m", "immediate")


# --- Redis -----------------------------------------------------------------------


@dataclass
class RedisServer:
    """A redis-server on a free port, no persistence; kill() is SIGKILL."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until(lambda: port_open(self.port), 10, "redis-server")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


# --- gunicorn --------------------------------------------------------------------


@dataclass
class Server:
    """``commentmod serve`` (gunicorn; the Popen pid is the master after execve)."""

    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def workers(self) -> set[int]:
        """Pids of the master's live worker processes (from /proc)."""
        out = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields_ = stat.rsplit(")", 1)[1].split()
            if int(fields_[1]) == self.proc.pid and fields_[0] != "Z":
                out.add(int(entry.name))
        return out

    def kill_worker(self) -> int:
        pid = min(self.workers())
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(workdir: Path, env: dict[str, str], workers: int = 2,
                 timeout: float = 90, new_session: bool = False) -> Server:
    """Serve with ``env`` (COMMENTMOD_* settings) and wait for /healthz.
    ``new_session``: in a process group of its own, which a test may SIGKILL whole."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"serve-{port}.log"
    root = Path(__file__).resolve().parent.parent
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        "COMMENTMOD_ENV": "testing",
        "COMMENTMOD_SECRET_KEY": "test-secret",
        "COMMENTMOD_LOG_LEVEL": "WARNING",
        "COMMENTMOD_DATA_DIR": str(workdir / "var"),
        **env,
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port),
             "--workers", str(workers)],
            env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
            start_new_session=new_session,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until(lambda: _healthy(server.base), timeout, "commentmod serve")
        wait_until(lambda: len(server.workers()) == workers, 30, "gunicorn workers")
    except TimeoutError:
        server.stop()
        raise
    return server


def _healthy(base: str) -> bool:
    with urllib.request.urlopen(base + "/healthz", timeout=1) as r:
        return bool(r.status == 200)


def post_json(url: str, body: Any, headers: dict[str, str] | None = None,
              timeout: float = 10) -> tuple[int, Any]:
    """(status, parsed JSON body); raises OSError when the connection fails."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except http.client.HTTPException as exc:  # e.g. IncompleteRead: the worker died
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode("utf-8", "replace")


def app_process_modules(model_dir: Path, data_dir: Path, database_url: str) -> set[str]:
    """Top-level modules a fresh process holds after building the app and answering a
    check and a batch: what a gunicorn worker carries in memory."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from service.app import create_app\n"
        f"app = create_app({{'env': 'testing', 'model_dir': Path({str(model_dir)!r}), "
        f"'data_dir': Path({str(data_dir)!r}), 'database_url': {database_url!r}}})\n"
        "client = app.test_client()\n"
        "assert client.post('/api/v1/check', json={'content': 'hi there'}).status_code == 200\n"
        "batch = {'comments': [{'content': 'a'}, {'content': 'b http://x.co'}]}\n"
        "assert client.post('/api/v1/check/batch', json=batch).status_code == 200\n"
    )
    return modules_after(code)


def modules_after(code: str) -> set[str]:
    """Top-level modules a fresh Python process holds after running ``code`` from the
    repository root (the script must succeed)."""
    code += "import sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(root)}, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(out.stdout.strip().splitlines()[-1].split())
