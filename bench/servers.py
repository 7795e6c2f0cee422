"""Start the servers the benchmark drives, find their workers, read their memory.

commentmod runs exactly as in production (``commentmod serve`` ->
service/gunicorn_conf.py: preload, sync workers); the ceiling app runs under
bench/ceiling_conf.py, the same settings without commentmod's hooks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# Redis db of the benchmarks: outside 8-15, which the tests' xdist workers flush
# around every test (tests/conftest.py), so a bench never runs into a test.
REDIS_URL = "redis://127.0.0.1:6379/7"

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1):
                    if len(self.worker_pids()) >= 1:
                        time.sleep(0.5)  # let the other workers finish booting
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} did not answer within {timeout} s; see {self.log_path}")

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: children of the master (the process we started)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def memory(self) -> dict[str, float]:
        """Largest RSS, PSS and USS of any worker, in MB (PSS/USS show copy-on-write)."""
        rows = [worker_memory(pid) for pid in self.worker_pids()]
        rows = [r for r in rows if r]
        if not rows:
            return {}
        return {k: max(r[k] for r in rows) for k in ("rss", "pss", "uss")}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def worker_memory(pid: int) -> dict[str, float]:
    """RSS from /proc/<pid>/status; PSS and USS (private pages) from smaps_rollup."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) / 1024
        kb: dict[str, int] = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                kb[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        return {}
    out["pss"] = kb.get("Pss", 0) / 1024
    out["uss"] = (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) / 1024
    return out


def python() -> str:
    return sys.executable


def commentmod_env(
    workdir: Path, model_dir: Path, *, redis_url: str = "", database_url: str = ""
) -> dict[str, str]:
    data_dir = workdir / "var"
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "COMMENTMOD_ENV": "development",
        "COMMENTMOD_MODEL_DIR": str(model_dir),
        "COMMENTMOD_DATA_DIR": str(data_dir),
        "COMMENTMOD_DATABASE_URL": database_url
        or f"sqlite:///{(data_dir / 'bench.sqlite3').resolve()}",
        "COMMENTMOD_REDIS_URL": redis_url,
        "COMMENTMOD_LOG_LEVEL": "INFO",
        "COMMENTMOD_TOXICITY_BOOTSTRAP": "false",  # no background training beside a bench
    }


def start_commentmod(
    name: str, workdir: Path, env: dict[str, str], workers: int | None
) -> Server:
    port = free_port()
    argv = [python(), "-m", "service.cli", "serve", "--port", str(port)]
    if workers:
        argv += ["--workers", str(workers)]
    return _start(name, argv, workdir, env, port)


def start_ceiling(
    workdir: Path, workers: int | None, redis_url: str = "", model_dir: Path | None = None,
    record_url: str = "",
) -> Server:
    """The bare-Flask ceiling (bench/ceiling.py); with ``model_dir``, the floor
    server, which also serves the model's scoring (``/score``, ``/score-form``);
    with ``record_url`` (a database URL), it records checks too (``/record``)."""
    port = free_port()
    env = {
        **os.environ,
        "BENCH_REDIS_URL": redis_url,
        "BENCH_MODEL_DIR": str(model_dir) if model_dir else "",
        "BENCH_RECORD_URL": record_url,
        "BENCH_RECORD_DIR": str(workdir / "journal"),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "COMMENTMOD_BIND": f"127.0.0.1:{port}",
        "COMMENTMOD_LOG_LEVEL": "info",
    }
    if workers:
        env["COMMENTMOD_WORKERS"] = str(workers)
    argv = [python(), "-m", "gunicorn", "-c", str(ROOT / "bench" / "ceiling_conf.py"),
            "bench.ceiling:app"]
    return _start("floor" if model_dir else "ceiling", argv, workdir, env, port)


def _start(name: str, argv: list[str], workdir: Path, env: dict[str, str], port: int) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name.replace(' ', '-')}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, proc, port, log_path, env)
    try:
        server.wait_ready()
    except Exception:
        server.stop()
        raise
    return server


def create_akismet_key(env: dict[str, str], site: str) -> str | None:
    """A site key through ``commentmod keys create`` (None where the command is missing)."""
    proc = subprocess.run(
        [python(), "-m", "service.cli", "keys", "create", "--site", site],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return proc.stdout.split()[0]
