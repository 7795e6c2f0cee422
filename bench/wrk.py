"""Run wrk with a Lua script and read its report."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    raw: str

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read a wrk latency from {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse(out: str) -> WrkResult:
    def grab(pattern: str, default: str = "0") -> str:
        m = re.search(pattern, out)
        return m.group(1) if m else default

    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests=int(grab(r"(\d+) requests in")),
        rps=float(grab(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(grab(r"\n\s+50%\s+(\S+)", "0us")),
        p99_ms=_ms(grab(r"\n\s+99%\s+(\S+)", "0us")),
        non_2xx=int(grab(r"Non-2xx or 3xx responses: (\d+)")),
        socket_errors=sum(int(x) for x in socket.groups()) if socket else 0,
        raw=out,
    )


def run(
    url: str,
    script: str,
    *,
    duration: float,
    connections: int,
    threads: int = 2,
    timeout: float = 5.0,
    env: dict[str, str] | None = None,
) -> WrkResult:
    """wrk at fixed concurrency for ``duration`` seconds; the script is bench/lua/<script>.lua."""
    argv = [
        "wrk", f"-t{min(threads, connections)}", f"-c{connections}",
        f"-d{max(1, round(duration))}s", "--latency", "--timeout", f"{timeout:g}s",
        "-s", str(LUA / f"{script}.lua"), url,
    ]
    full_env = {**os.environ, "BENCH_LUA": str(LUA), **(env or {})}
    proc = subprocess.run(
        argv, env=full_env, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse(proc.stdout)
