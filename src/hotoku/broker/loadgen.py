"""A small closed-loop HTTP/1.1 load generator over keep-alive sockets.

Library HTTP clients cost more CPU per request than the broker spends serving
it; on a 2-core machine that would measure the client. This one writes
pre-built requests and parses only the status line and Content-Length.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        s = sorted(self.latencies_ms)
        return s[min(len(s) - 1, int(p / 100 * len(s)))]


def build_request(method: str, host: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _worker(host: str, port: int, make: Callable[[int], bytes], counter: list[int], total: int,
                  deadline: float, res: LoadResult, ok: Callable[[int], bool]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while counter[0] < total and time.perf_counter() < deadline:
            i = counter[0]
            counter[0] += 1
            t0 = time.perf_counter()
            writer.write(make(i))
            status, _ = await _read_response(reader)
            res.latencies_ms.append((time.perf_counter() - t0) * 1000)
            res.requests += 1
            res.statuses[status] = res.statuses.get(status, 0) + 1
            if not ok(status):
                res.errors += 1
    finally:
        writer.close()


def run_load(host: str, port: int, make: Callable[[int], bytes], *, concurrency: int, total: int,
             max_seconds: float = 60.0, ok: Callable[[int], bool] = lambda s: s < 300) -> LoadResult:
    """Send ``total`` requests from ``concurrency`` connections, each waiting for its answer."""

    async def main() -> LoadResult:
        res = LoadResult()
        counter = [0]
        t0 = time.perf_counter()
        deadline = t0 + max_seconds
        await asyncio.gather(*(_worker(host, port, make, counter, total, deadline, res, ok)
                               for _ in range(concurrency)))
        res.seconds = time.perf_counter() - t0
        return res

    return asyncio.run(main())
