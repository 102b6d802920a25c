"""An open-loop HTTP load generator: requests on a fixed timetable, latency counted from the scheduled time.

A closed-loop client sends its next request when the last one returns, so a stalled server also stalls the load
and the requests that would have waited are never measured (coordinated omission). Here request ``i`` is due at
``start + i / rate`` whatever happened before it; its latency runs from that due time to the last byte of the
answer, so time spent queued behind a stall, waiting for a free connection or for the generator itself, counts.
``lag`` reports how late the generator dispatched (if it is large, the generator, not the server, was short of
CPU; the latencies still include it).

The client is a minimal HTTP/1.1 keep-alive client on asyncio streams (a few tens of microseconds per request,
several times cheaper than httpx), with at most ``connections`` open at once, the most recently used reused first
(one idle for 3 s is replaced: uvicorn closes them after 5 s). A request that has no answer ``timeout`` seconds after
its due time is an error (``timeout``), as is any status other than 200/304.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# (method, path with query, extra header lines as bytes, body or None)
Request = tuple[str, str, bytes, bytes | None]


class HttpConnection:
    """One keep-alive HTTP/1.1 connection (answers with a Content-Length, as uvicorn sends them)."""

    IDLE_LIMIT = 3.0  # seconds; uvicorn closes keep-alive connections idle for 5 s

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host.encode()
        self.last_used = time.perf_counter()

    @classmethod
    async def open(cls, host: str, port: int) -> "HttpConnection":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def request(self, method: str, path: str, headers: bytes, body: bytes | None) -> int:
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method.encode(), path.encode(), self.host) + headers
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.writer.write(head + b"\r\n" + (body or b""))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        self.computed = b"x-cache: miss" in raw.lower()  # the answer was computed for this request
        length = 0
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise ValueError("chunked answers are not supported by this client")
        if length:
            await self.reader.readexactly(length)
        self.last_used = time.perf_counter()
        return status

    def close(self) -> None:
        self.writer.close()


@dataclass
class Outcome:
    """What one open-loop run measured (only the requests due after the warm-up)."""

    rate: float
    duration: float
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    def percentiles(self) -> tuple[float, float, float, float]:
        """p50, p95, p99 and max latency in ms (errors are not in them; they are counted apart)."""
        if not self.latencies:
            return (float("nan"),) * 4
        lat = np.array(self.latencies) * 1000
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        return float(p50), float(p95), float(p99), float(lat.max())

    @property
    def achieved(self) -> float:
        """Successful answers per second of the measured window."""
        return len(self.latencies) / self.duration

    def passes(self, p99_ms: float) -> bool:
        """No errors, p99 within the limit, and the server kept up with the asked rate (within 5%)."""
        return not self.n_errors and self.percentiles()[2] <= p99_ms and self.achieved >= 0.95 * self.rate

    def line(self, name: str) -> str:
        p50, p95, p99, mx = self.percentiles()
        lag = 1000 * max(self.lags) if self.lags else 0.0
        errs = f" {self.errors}" if self.errors else ""
        return (f"{name:<16} {self.rate:>7.0f} {self.achieved:>8.1f} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {mx:>8.1f} "
                f"{lag:>8.1f} {self.n_errors:>7}{errs}")


HEADER = (f"{'endpoint':<16} {'rate':>7} {'achieved':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'lag ms':>8} {'errors':>7}")


async def open_loop(host: str, port: int, make: Callable[[], Request], rate: float, duration: float, *,
                    warmup: float = 2.0, connections: int = 128, timeout: float = 5.0) -> Outcome:
    """Send ``rate`` requests per second for ``warmup + duration`` seconds; measure those due after the warm-up.

    Args:
        host, port: The server.
        make: Gives the next request (``Request``); called when it is due.
        rate: Requests per second, evenly spaced.
        duration: Measured seconds (after ``warmup``).
        connections: Most connections open at once; a due request waits for a free one (and that wait counts).
        timeout: Seconds from a request's due time after which it counts as an error.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError(f"rate and duration must be positive, got {rate} and {duration}")
    loop = asyncio.get_running_loop()
    clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
    free: asyncio.LifoQueue[HttpConnection | None] = asyncio.LifoQueue()  # the most recently used first
    for _ in range(connections):
        free.put_nowait(None)  # opened on first use
    out = Outcome(rate=rate, duration=duration)
    total, measured_from = int(rate * (warmup + duration)), int(rate * warmup)
    start = clock() + 0.05
    pending: set[asyncio.Task] = set()

    async def one(i: int, due: float) -> None:
        method, path, headers, body = make()
        conn, error, got, broken = None, None, False, False
        try:
            async with asyncio.timeout(due + timeout - clock()):
                conn = await free.get()
                got = True
                if conn is not None and clock() - conn.last_used > HttpConnection.IDLE_LIMIT:
                    conn.close()  # the server may be closing it: a new one, as a real client would
                    conn = None
                if conn is None:
                    conn = await HttpConnection.open(host, port)
                status = await conn.request(method, path, headers, body)
                if status not in (200, 304):
                    error = str(status)
        except TimeoutError:
            error, broken = "timeout", True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            error, broken = type(exc).__name__, True
        if broken and conn is not None:
            conn.close()  # a connection in an unknown state is not reused
            conn = None
        if got:
            free.put_nowait(conn)
        if i >= measured_from:
            if error is None:
                out.latencies.append(clock() - due)
            else:
                out.errors[error] = out.errors.get(error, 0) + 1

    for i in range(total):
        due = start + i / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        elif i >= measured_from:
            out.lags.append(-delay)
        task = loop.create_task(one(i, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    while not free.empty():
        conn = free.get_nowait()
        if conn is not None:
            conn.close()
    return out


def search_max_rate(run_at: Callable[[float], Outcome], p99_ms: float, start: float = 25.0, ceiling: float = 20000.0,
                    steps: int = 3, report: Callable[[Outcome], None] | None = None) -> float:
    """The highest rate that passes (``Outcome.passes``): doubling from ``start`` until a rate fails, then
    ``steps`` bisections between the last pass and the first failure. 0 when even ``start / 2 ** steps`` fails.
    A trial that fails on latency alone is run once more (one stall on a shared machine is not the server's
    limit): the rate fails when both do."""

    def passes(rate: float) -> bool:
        for attempt in range(2):
            outcome = run_at(rate)
            if report:
                report(outcome)
            if outcome.passes(p99_ms):
                return True
            if outcome.n_errors:
                return False
        return False

    good, bad, rate = 0.0, None, start
    while bad is None and rate <= ceiling:
        if passes(rate):
            good, rate = rate, rate * 2
        else:
            bad = rate
    if bad is None:
        return good
    for _ in range(steps):
        mid = (good + bad) / 2
        if passes(mid):
            good = mid
        else:
            bad = mid
    return good


async def warm(host: str, port: int, requests: list[Request], concurrency: int = 8,
               max_passes: int = 12) -> tuple[int, int, int]:
    """Send the requests, each on a new connection (so the kernel spreads them over the server's worker processes),
    ``concurrency`` at a time, pass after pass until a pass finds every answer cached (``X-Cache: hit``) or
    ``max_passes``; returns (passes, answers computed, failures)."""
    computed, failed = 0, 0

    async def one_pass() -> int:
        nonlocal computed, failed
        queue, misses = list(requests), 0

        async def worker() -> None:
            nonlocal computed, failed, misses
            while queue:
                method, path, headers, body = queue.pop()
                try:
                    conn = await HttpConnection.open(host, port)
                    try:
                        status = await asyncio.wait_for(conn.request(method, path, headers, body), 60)
                    finally:
                        conn.close()
                    if status not in (200, 304):
                        failed += 1
                    elif conn.computed:
                        computed, misses = computed + 1, misses + 1
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                    failed += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return misses

    for n in range(1, max_passes + 1):
        if not await one_pass():
            return n, computed, failed
    return max_passes, computed, failed
