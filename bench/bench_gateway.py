"""Load on the local gateway: N concurrent keep-alive clients for T seconds, over real HTTP.

Each client holds one HTTP/1.1 connection and sends its next request as soon as the previous
answer is complete (closed loop, like `wrk -c N`). Every answer that is not the expected status,
and every connection error, counts as an error. Prints requests/s, latency percentiles and the
CPU the client itself used (it shares the machine with the gateway and PostgreSQL).

    .venv/bin/python bench/bench_gateway.py                        # its own gateway on the demo data
    .venv/bin/python bench/bench_gateway.py --url http://127.0.0.1:3000   # a running `make run`
    .venv/bin/python bench/bench_gateway.py --clients 16 --seconds 20 --path /v1/analytics
    .venv/bin/python bench/bench_gateway.py --mix                  # several read routes in turn

Without --url it prepares its own database, `ms8_bench_gateway`, as `make run` prepares `ms8`
(start PostgreSQL, migrate, load the demo data once and keep it) and starts the gateway on a free
port with `--workers` processes (default: one per CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from local import demo_ids, tokens

ROOT = Path(__file__).resolve().parent.parent


DB = "ms8_bench_gateway"
MIX = ["/v1/analytics", "/v1/analytics/summary", "/v1/me", "/v1/comparison", "/v1/analytics?type=mastery&limit=1"]


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def _content_length(head: bytes) -> int:
    at = head.find(b"content-length:")
    if at < 0:
        return 0
    eol = head.find(b"\r\n", at)
    return int(head[at + 15:eol if eol >= 0 else len(head)])


class KeepAliveClient(asyncio.Protocol):
    """One keep-alive connection sending requests back to back until the deadline.

    Subclasses say what to send next (`next_request`) and what a complete response means
    (`on_response`, `on_lost`); the HTTP/1.1 framing and the deadline live here once.
    """

    def __init__(self, deadline: float, done: asyncio.Future[None]) -> None:
        self.deadline, self.done = deadline, done
        self.buf = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def next_request(self) -> bytes:
        raise NotImplementedError

    def on_response(self, status: int, body: bytes, seconds: float) -> None:
        raise NotImplementedError

    def on_lost(self, exc: Exception | None) -> None:
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        data = self.next_request()
        self.sent_at = time.perf_counter()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        length = _content_length(head)
        if len(self.buf) < end + 4 + length:
            return
        now = time.perf_counter()
        self.on_response(int(head[9:12]), bytes(self.buf[end + 4:end + 4 + length]), now - self.sent_at)
        del self.buf[:end + 4 + length]
        if now < self.deadline:
            self._send()
        else:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if time.perf_counter() < self.deadline:
            self.on_lost(exc)
        if not self.done.done():
            self.done.set_result(None)


class _Client(KeepAliveClient):
    """Cycles through one list of requests; counts the expected status as success."""

    def __init__(self, requests: list[bytes], stats: Stats, deadline: float, done: asyncio.Future[None],
                 expect: int) -> None:
        super().__init__(deadline, done)
        self.requests, self.stats, self.expect = requests, stats, expect
        self.i = 0

    def next_request(self) -> bytes:
        self.i += 1
        return self.requests[(self.i - 1) % len(self.requests)]

    def on_response(self, status: int, body: bytes, seconds: float) -> None:
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
        if status == self.expect:
            self.stats.latencies.append(seconds)
        else:
            self.stats.errors += 1

    def on_lost(self, exc: Exception | None) -> None:
        self.stats.errors += 1


async def _load(url: str, paths: list[str], token: str, clients: int, seconds: float, expect: int) -> tuple[Stats, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [
        (f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
         "User-Agent: bench_gateway\r\nAccept: */*\r\n\r\n").encode()
        for p in paths
    ]
    loop = asyncio.get_running_loop()
    stats = Stats()
    started = time.perf_counter()
    deadline = started + seconds
    waits = []
    for n in range(clients):
        done: asyncio.Future[None] = loop.create_future()
        rotated = requests[n % len(requests):] + requests[:n % len(requests)]
        await loop.create_connection(lambda d=done, r=rotated: _Client(r, stats, deadline, d, expect), host, port)  # type: ignore[misc]
        waits.append(done)
    await asyncio.wait_for(asyncio.gather(*waits), seconds + 30)
    return stats, time.perf_counter() - started


def pct(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else float("nan")


@dataclass
class Server:
    """The gateway under load; the process ids of its workers and their database backends when
    this script started it (to read the CPU they spend), none for a gateway given by --url."""

    url: str
    worker_pids: list[int] = field(default_factory=list)
    backend_pids: list[int] = field(default_factory=list)


@contextmanager
def own_gateway(workers: int, db: str = DB) -> Iterator[Server]:
    """A bench demo database, prepared as `make run` prepares its own, and a gateway on a free port."""
    from local import gateway, stack

    started = stack.prepare_database(db=db)
    stack.apply_function_env(None, db=db)
    pool = gateway.Workers(gateway.bind("127.0.0.1", 0), workers, quiet=True, stdout=subprocess.DEVNULL)
    pool.start()
    try:
        yield Server(pool.url, [p.pid for p in pool.procs])
    finally:
        pool.stop()
        stack.stop_database(started, db)


@contextmanager
def given_gateway(url: str) -> Iterator[Server]:
    yield Server(url)


def backends() -> list[int]:
    """The runtime role's backends on the bench database (one per gateway worker)."""
    import psycopg

    from local import localdb

    with psycopg.connect(localdb.admin_url(), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND usename = %s",
                            (DB, localdb.RUNTIME_ROLE)).fetchall()
    return [r[0] for r in rows]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description="N keep-alive clients for T seconds against the local gateway")
    parser.add_argument("--url", help="a running gateway (default: start one on the demo data)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--path", default="/v1/analytics")
    parser.add_argument("--mix", action="store_true", help=f"cycle through {', '.join(MIX)}")
    parser.add_argument("--user", default="learner-01", help="demo handle or user id whose token is sent")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gateway workers (own gateway)")
    parser.add_argument("--expect", type=int, default=200, help="the status every answer must have")
    args = parser.parse_args()
    token = tokens.user_token(tokens.resolve_user(args.user))
    paths = MIX if args.mix else [args.path]
    with (given_gateway(args.url) if args.url else own_gateway(args.workers)) as server:
        asyncio.run(_load(server.url, paths, token, 2, 2.0, args.expect))  # warm-up: imports, connections
        if server.worker_pids:
            server.backend_pids = backends()
        server_cpu0 = (cpu_seconds(server.worker_pids), cpu_seconds(server.backend_pids))
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        stats, elapsed = asyncio.run(_load(server.url, paths, token, args.clients, args.seconds, args.expect))
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu1 = (cpu_seconds(server.worker_pids), cpu_seconds(server.backend_pids))
    done = len(stats.latencies) + stats.errors
    ordered = sorted(stats.latencies)
    client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    where = args.url or f"own gateway, {args.workers} workers"
    print(f"GET {' | '.join(paths)} as {args.user} ({demo_ids.ACME} demo data), {where}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'clients':>8} {'seconds':>8} {'requests':>9} {'errors':>7} {'req/s':>8} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} {'client CPU':>10}")
    print(f"{args.clients:>8} {elapsed:>8.1f} {done:>9} {stats.errors:>7} {done / elapsed:>8.0f} "
          f"{pct(ordered, 0.50):>7.2f} {pct(ordered, 0.95):>7.2f} {pct(ordered, 0.99):>7.2f} "
          f"{pct(ordered, 1.0):>7.2f} {100 * client_cpu / elapsed:>9.0f}%")
    print("statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(stats.statuses.items())))
    if server.worker_pids and done:
        gw, pg = ((b - a) * 1000 / done for a, b in zip(server_cpu0, server_cpu1, strict=True))
        per_request = gw + pg + client_cpu * 1000 / done
        print(f"CPU per request: gateway workers {gw:.3f} ms, PostgreSQL {pg:.3f} ms, this client "
              f"{client_cpu * 1000 / done:.3f} ms; all {os.cpu_count()} CPUs to ourselves would serve "
              f"~{(os.cpu_count() or 1) * 1000 / per_request:.0f} req/s")
    if stats.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
