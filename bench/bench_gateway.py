"""Load on the local gateway: N concurrent clients for T seconds over real HTTP, the new gateway
(local/gateway.py under gunicorn, local/server.py and local/gunicorn_worker.py) and the old hand-written one
(bench/old_gateway.py, kept only for this comparison) in the same run, on the same database, with
the same number of worker processes; prints both and their ratio.

Each client sends its next request as soon as the previous answer is complete (closed loop, like
`wrk -c N`), through httpx (one connection pool, a connection per client, kept alive where the
server keeps it). Every answer that is not the expected status, and every connection error, counts
as an error. The gateways alternate (old, new, old, new, ... `--rounds` times each) so that a
change in the machine's load falls on both.

    .venv/bin/python bench/bench_gateway.py                        # old and new, 16 clients, 2 x 20 s each
    .venv/bin/python bench/bench_gateway.py --url http://127.0.0.1:3000   # a running `make run` alone
    .venv/bin/python bench/bench_gateway.py --clients 16 --seconds 20 --path /v1/analytics
    .venv/bin/python bench/bench_gateway.py --mix                  # several read routes in turn

Without --url it prepares its own database, `ms8_bench_gateway`, as `make run` prepares `ms8`
(start PostgreSQL, migrate, load the demo data once and keep it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from local import demo_ids, tokens

DB = "ms8_bench_gateway"
MIX = ["/v1/analytics", "/v1/analytics/summary", "/v1/me", "/v1/comparison", "/v1/analytics?type=mastery&limit=1"]

# One request of a plan: (label for the statistics, method, path with query, headers, body).
Request = tuple[str, str, str, dict[str, str], bytes | None]


async def closed_loop(url: str, plans: list[Iterator[Request]], seconds: float,
                      record: Callable[[str, int, bytes, float], None],
                      lost: Callable[[str, Exception], None]) -> float:
    """One client per plan, each sending its plan's next request when the previous answer is in,
    until `seconds` have passed; returns the elapsed time."""
    limits = httpx.Limits(max_connections=len(plans), max_keepalive_connections=len(plans))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        deadline = time.perf_counter() + seconds

        async def one(plan: Iterator[Request]) -> None:
            while time.perf_counter() < deadline:
                label, method, path, headers, body = next(plan)
                sent = time.perf_counter()
                try:
                    response = await client.request(method, path, headers=headers, content=body)
                except httpx.HTTPError as exc:
                    lost(label, exc)
                    continue
                record(label, response.status_code, response.content, time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(one(plan) for plan in plans))
        return time.perf_counter() - started


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def _load(url: str, paths: list[str], token: str, clients: int, seconds: float, expect: int) -> tuple[Stats, float]:
    stats = Stats()
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "bench_gateway"}

    def plan(n: int) -> Iterator[Request]:
        i = n
        while True:
            yield "GET", "GET", paths[i % len(paths)], headers, None
            i += 1

    def record(_label: str, status: int, _body: bytes, seconds_taken: float) -> None:
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if status == expect:
            stats.latencies.append(seconds_taken)
        else:
            stats.errors += 1

    def lost(_label: str, _exc: Exception) -> None:
        stats.errors += 1

    elapsed = asyncio.run(closed_loop(url, [plan(n) for n in range(clients)], seconds, record, lost))
    return stats, elapsed


def pct(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else float("nan")


@dataclass
class Server:
    """The gateway under load; the process ids of its workers and their database backends when
    this script started it (to read the CPU they spend), none for a gateway given by --url."""

    url: str
    worker_pids: list[int] = field(default_factory=list)
    backend_pids: list[int] = field(default_factory=list)


def prepared_database(db: str = DB) -> bool:
    """The bench's demo database, prepared as `make run` prepares its own, and the functions'
    environment pointing at it; returns whether PostgreSQL was started here."""
    from local import stack

    started = stack.prepare_database(db=db)
    stack.apply_function_env(None, db=db)
    return started


@contextmanager
def own_gateway(workers: int, db: str = DB, kind: str = "new") -> Iterator[Server]:
    """A gateway on a free port on the prepared database: `new` (gunicorn) or `old` (the
    hand-written server of bench/old_gateway.py)."""
    if kind == "old":
        import old_gateway

        pool = old_gateway.Workers(old_gateway.bind("127.0.0.1", 0), workers, quiet=True, stdout=subprocess.DEVNULL)
        pool.start()
        try:
            yield Server(pool.url, [p.pid for p in pool.procs])
        finally:
            pool.stop()
        return
    from local import server

    gateway = server.Server(server.bind("127.0.0.1", 0), workers, quiet=True, output=subprocess.DEVNULL)
    gateway.start()
    try:
        yield Server(gateway.url, gateway.worker_pids())
    finally:
        gateway.stop()


@contextmanager
def given_gateway(url: str) -> Iterator[Server]:
    yield Server(url)


def backends(db: str = DB) -> list[int]:
    """The runtime role's backends on the bench database (one per gateway worker)."""
    import psycopg

    from local import localdb

    with psycopg.connect(localdb.admin_url(), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND usename = %s",
                            (db, localdb.RUNTIME_ROLE)).fetchall()
    return [r[0] for r in rows]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    name: str
    stats: Stats
    elapsed: float
    client_cpu: float
    server_cpu_ms: tuple[float, float] | None  # gateway workers, PostgreSQL: ms per request

    @property
    def done(self) -> int:
        return len(self.stats.latencies) + self.stats.errors

    @property
    def rate(self) -> float:
        return self.done / self.elapsed


def measure(name: str, server: Server, paths: list[str], token: str, args: argparse.Namespace) -> Run:
    _load(server.url, paths, token, 2, 2.0, args.expect)  # warm-up: imports, connections
    if server.worker_pids:
        server.backend_pids = backends()
    gw0, pg0 = cpu_seconds(server.worker_pids), {pid: cpu_seconds([pid]) for pid in server.backend_pids}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    stats, elapsed = _load(server.url, paths, token, args.clients, args.seconds, args.expect)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    done = len(stats.latencies) + stats.errors
    per = None
    if server.worker_pids and done:
        # A worker the warm-up did not reach connects during the run: its backend counts from 0.
        pg = sum(cpu_seconds([pid]) - pg0.get(pid, 0.0) for pid in backends())
        per = ((cpu_seconds(server.worker_pids) - gw0) * 1000 / done, pg * 1000 / done)
    return Run(name, stats, elapsed, (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), per)


def row(run: Run, clients: int) -> str:
    ordered = sorted(run.stats.latencies)
    cpu = f"{run.server_cpu_ms[0]:.2f} / {run.server_cpu_ms[1]:.2f}" if run.server_cpu_ms else "-"
    return (f"{run.name:<22} {clients:>7} {run.elapsed:>7.1f} {run.done:>9} {run.stats.errors:>6} {run.rate:>8.0f} "
            f"{pct(ordered, 0.50):>7.2f} {pct(ordered, 0.95):>7.2f} {pct(ordered, 0.99):>7.2f} "
            f"{100 * run.client_cpu / run.elapsed:>9.0f}% {cpu:>17}")


def main() -> None:
    parser = argparse.ArgumentParser(description="N clients for T seconds against the local gateway, old and new")
    parser.add_argument("--url", help="a running gateway alone (default: start the old and the new on the demo data)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each gateway, alternating")
    parser.add_argument("--path", default="/v1/analytics")
    parser.add_argument("--mix", action="store_true", help=f"cycle through {', '.join(MIX)}")
    parser.add_argument("--user", default="learner-01", help="demo handle or user id whose token is sent")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gateway workers (own gateways)")
    parser.add_argument("--expect", type=int, default=200, help="the status every answer must have")
    parser.add_argument("--only", choices=["old", "new"], help="one of the two gateways")
    args = parser.parse_args()
    token = tokens.user_token(tokens.resolve_user(args.user))
    paths = MIX if args.mix else [args.path]
    runs: list[Run] = []
    if args.url:
        with given_gateway(args.url) as server:
            runs.append(measure(args.url, server, paths, token, args))
    else:
        from local import stack

        started = prepared_database()
        kinds = [args.only] if args.only else ["old", "new"]
        try:
            for n in range(args.rounds):
                for kind in kinds:
                    with own_gateway(args.workers, kind=kind) as server:
                        runs.append(measure(f"{kind} gateway, run {n + 1}", server, paths, token, args))
        finally:
            stack.stop_database(started, DB)
    where = args.url or f"own gateways, {args.workers} workers each"
    print(f"GET {' | '.join(paths)} as {args.user} ({demo_ids.ACME} demo data), {where}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'gateway':<22} {'clients':>7} {'seconds':>7} {'requests':>9} {'errors':>6} {'req/s':>8} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'client CPU':>10} {'CPU ms gw / pg':>17}")
    for run in runs:
        print(row(run, args.clients))
    by_kind = {k: [r.rate for r in runs if r.name.startswith(k)] for k in ("old", "new")}
    if by_kind["old"] and by_kind["new"]:
        old, new = statistics.mean(by_kind["old"]), statistics.mean(by_kind["new"])
        print(f"mean req/s: old {old:.0f}, new {new:.0f}; new / old = {new / old:.2f}")
    statuses: dict[int, int] = {}
    for run in runs:
        for k, v in run.stats.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    print("statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    if any(r.stats.errors for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
