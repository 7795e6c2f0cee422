"""An open-loop, fixed-rate HTTP driver (Debian's wrk has no -R, and wrk2 is not packaged).

Request ``i`` is due at ``t0 + i / rate`` whatever happened to the ones before
it; its latency is measured from that due time, not from when it was sent, so
a stalled server shows up in the percentiles instead of slowing the driver
down (the "coordinated omission" wrk2 corrects). Each request opens its own
connection, as wrk's do against gunicorn's sync workers, which close after
every response. The driver is Python on the same two cores: it takes CPU
from the server, so its numbers are conservative.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RateResult:
    rate: float
    duration: float
    sent: int = 0
    ok: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)
    max_lag_ms: float = 0.0  # how late the driver itself sent a request

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q / 100 * len(data)))]

    @property
    def achieved_rate(self) -> float:
        return self.ok / self.duration if self.duration else 0.0

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


def http_request(host: str, port: int, path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _one(
    host: str, port: int, payload: bytes, due: float, timeout: float, result: RateResult
) -> None:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(payload)
            status_line = await reader.readline()
            await reader.read()  # the server closes after the response
            writer.close()
    except TimeoutError:
        result.error("timeout")
        return
    except OSError as exc:
        result.error(type(exc).__name__)
        return
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].startswith(b"2"):
        result.error(f"status {parts[1].decode() if len(parts) > 1 else '?'}")
        return
    result.ok += 1
    result.latencies_ms.append((time.perf_counter() - due) * 1000)


async def drive(
    host: str,
    port: int,
    path: str,
    make_body: Callable[[int], bytes],
    *,
    rate: float,
    duration: float,
    content_type: str = "application/json",
    timeout: float = 5.0,
    max_outstanding: int = 1000,
) -> RateResult:
    """Send ``rate`` requests/s for ``duration`` seconds; every request is counted."""
    result = RateResult(rate=rate, duration=duration)
    total = int(rate * duration)
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.05
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.max_lag_ms = max(result.max_lag_ms, -delay * 1000)
        if len(tasks) >= max_outstanding:
            result.error("driver: too many outstanding")
            continue
        payload = http_request(host, port, path, make_body(i), content_type)
        task = asyncio.create_task(_one(host, port, payload, due, timeout, result))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        result.sent += 1
    if tasks:
        await asyncio.wait(tasks)
    return result


def run(
    base_url: str,
    path: str,
    make_body: Callable[[int], bytes],
    *,
    rate: float,
    duration: float,
    content_type: str = "application/json",
) -> RateResult:
    host_port = base_url.split("://", 1)[-1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    return asyncio.run(
        drive(host, int(port), path, make_body, rate=rate, duration=duration,
              content_type=content_type)
    )
