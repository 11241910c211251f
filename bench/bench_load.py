"""A bounded load run of mixed roles and routes on the local gateway: N concurrent clients (httpx,
bench_gateway.closed_loop) for T seconds, each sending its next request as soon as the previous answer is complete
(closed loop, like `wrk -c N`), cycling through reads and small writes as demo learners, trainers
and org admins. Prints per route and overall: requests, requests/s, p50, p95, p99 and errors
(any answer that is not 200, and any connection error); exits 1 on any error.

    .venv/bin/python bench/bench_load.py                           # its own gateway on the demo data
    .venv/bin/python bench/bench_load.py --clients 16 --seconds 30 --workers 2
    .venv/bin/python bench/bench_load.py --url http://127.0.0.1:3000   # a running `make run`

The mix, one slot each per cycle (GET /v1/analytics two): GET /v1/me, /v1/analytics,
/v1/analytics/summary, /v1/comparison, /v1/gamification, /v1/leaderboard as learners (ACME's 36
and GLOBEX's 5), trainers and the admin; GET /v1/aggregates as trainers and the admin; GET
/v1/users/{userId}/analytics as a trainer for one of their learners; GET /v1/reports as learners
and the admin; PUT /v1/analytics (2 items) and POST /v1/events (3 new events: the service
recomputes the learner's analytics and gamification in the request) as learners. Every client
starts at another place in the cycle and moves through the users, so all routes and roles run
concurrently.

Without --url it prepares its own database, `ms8_bench_load` (start PostgreSQL, migrate, load the
demo data once and keep it; the writes of each run stay in it), and starts the gateway on a free
port with `--workers` processes (default: one per CPU). The client pieces (the closed loop,
percentiles, CPU readings) are bench_gateway.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_gateway import Request, closed_loop, cpu_seconds, given_gateway, own_gateway, pct, prepared_database

from local import demo_ids, tokens
from local.demo import COHORT_SIZES

ROOT = Path(__file__).resolve().parent.parent


DB = "ms8_bench_load"
ACME_LEARNERS = [f"learner-{n:02d}" for n in range(1, 37)]
GLOBEX_LEARNERS = [f"{demo_ids.GLOBEX}:learner-{n:02d}" for n in range(1, 6)]
LEARNERS = ACME_LEARNERS + GLOBEX_LEARNERS
TRAINERS = ["trainer-01", "trainer-02", "trainer-03"]
ADMINS = ["admin", f"{demo_ids.GLOBEX}:admin"]
# The demo's cohorts (local.demo): trainer-0k has the next COHORT_SIZES[k - 1] learners, in order.
COHORT_STARTS = [sum(COHORT_SIZES[:k]) for k in range(len(COHORT_SIZES))]

Body = bytes | None


@dataclass(frozen=True)
class Op:
    """One slot of the mix: a route, who calls it, and the request for the i-th caller."""

    route: str
    users: list[str]
    build: Callable[[str, int], tuple[str, str, Body]]  # (user, i) -> method, path, body


def _get(path: str) -> Callable[[str, int], tuple[str, str, Body]]:
    return lambda _user, _i: ("GET", path, None)


def _learner_of(trainer: str, i: int) -> tuple[str, str, Body]:
    k = int(trainer.split("-")[1]) - 1
    learner = demo_ids.user_id(demo_ids.ACME, f"learner-{COHORT_STARTS[k] + i % COHORT_SIZES[k] + 1:02d}")
    return "GET", f"/v1/users/{learner}/analytics?limit=4", None


def _put_analytics(_user: str, i: int) -> tuple[str, str, Body]:
    items = [
        {"analyticsType": "engagement", "data": {"engagement": round(0.3 + (i % 7) / 10, 2), "sessions": i % 9}},
        {"analyticsType": "learning_velocity", "data": {"velocity": round(1 + (i % 5) / 2, 2)}},
    ]
    return "PUT", "/v1/analytics", json.dumps({"items": items}).encode()


def _post_events(_user: str, i: int) -> tuple[str, str, Body]:
    at = datetime.now(UTC) - timedelta(minutes=5)
    events = [
        {"eventId": str(uuid.uuid4()), "verb": "completed", "objectId": f"course-load-{i % 50}",
         "objectType": "course", "skills": ["sql"], "occurredAt": at.isoformat()},
        {"eventId": str(uuid.uuid4()), "verb": "passed", "objectId": f"quiz-load-{i % 50}", "objectType": "assessment",
         "skills": ["sql"], "result": {"score": round(0.5 + (i % 5) / 10, 2), "success": True},
         "occurredAt": (at + timedelta(seconds=30)).isoformat()},
        {"eventId": str(uuid.uuid4()), "verb": "session", "objectId": "app", "objectType": "session",
         "result": {"durationSeconds": 300 + i % 600}, "occurredAt": (at + timedelta(seconds=60)).isoformat()},
    ]
    return "POST", "/v1/events", json.dumps({"events": events}).encode()


EVERYONE = LEARNERS + TRAINERS + ADMINS
MIX = [
    Op("GET /v1/me", EVERYONE, _get("/v1/me")),
    Op("GET /v1/analytics", LEARNERS, _get("/v1/analytics?limit=10")),
    Op("GET /v1/analytics/summary", LEARNERS + TRAINERS, _get("/v1/analytics/summary")),
    Op("PUT /v1/analytics", LEARNERS, _put_analytics),
    Op("GET /v1/comparison", LEARNERS + TRAINERS, _get("/v1/comparison")),
    Op("GET /v1/gamification", LEARNERS, _get("/v1/gamification")),
    Op("GET /v1/analytics", LEARNERS, _get("/v1/analytics?type=mastery&limit=1")),
    Op("GET /v1/leaderboard", EVERYONE, _get("/v1/leaderboard?limit=10")),
    Op("GET /v1/aggregates", TRAINERS + ADMINS, _get("/v1/aggregates?granularity=daily")),
    Op("GET /v1/users/{userId}/analytics", TRAINERS, _learner_of),
    Op("GET /v1/reports", LEARNERS + ADMINS, _get("/v1/reports?limit=20")),
    Op("POST /v1/events", ACME_LEARNERS, _post_events),
]


@dataclass
class RouteStats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class Plan:
    """The requests of every client: client n starts at slot n of the mix and user n of each slot."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = tokens.user_token(tokens.resolve_user(user))
        return self._tokens[user]

    def requests(self, n: int) -> Iterator[Request]:
        i = n
        while True:
            for op in MIX[n % len(MIX):] + MIX[:n % len(MIX)]:
                user = op.users[i % len(op.users)]
                method, path, body = op.build(user, i)
                headers = {"Authorization": f"Bearer {self.token(user)}", "User-Agent": "bench_load",
                           "Accept": "application/json"}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                yield op.route, method, path, headers, body
            i += 1


def _load(url: str, clients: int, seconds: float) -> tuple[dict[str, RouteStats], float, list[str]]:
    plan = Plan()
    for op in MIX:  # sign every token before the clock starts
        for user in op.users:
            plan.token(user)
    stats: dict[str, RouteStats] = {}
    failures: list[str] = []

    def record(route: str, status: int, body: bytes, _seconds: float) -> None:
        entry = stats.setdefault(route, RouteStats())
        entry.statuses[status] = entry.statuses.get(status, 0) + 1
        if status == 200:
            entry.latencies.append(_seconds)
        else:
            entry.errors += 1
            if len(failures) < 10:
                failures.append(f"{route} -> {status}: {body[:300]!r}")

    def lost(route: str, exc: Exception) -> None:
        stats.setdefault(route, RouteStats()).errors += 1
        failures.append(f"{route}: connection lost ({exc!r})")

    elapsed = asyncio.run(closed_loop(url, [plan.requests(n) for n in range(clients)], seconds, record, lost))
    return stats, elapsed, failures


def backends() -> list[int]:
    """The runtime role's backends on the bench database (one per gateway worker)."""
    import psycopg

    from local import localdb

    with psycopg.connect(localdb.admin_url(), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND usename = %s",
                            (DB, localdb.RUNTIME_ROLE)).fetchall()
    return [r[0] for r in rows]


def table(stats: dict[str, RouteStats], elapsed: float) -> str:
    header = f"{'route':<34} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
    lines = [header, "-" * len(header)]
    order = list(dict.fromkeys(op.route for op in MIX))
    everything = RouteStats()
    for route in order + sorted(set(stats) - set(order)):
        s = stats.get(route, RouteStats())
        everything.latencies += s.latencies
        everything.errors += s.errors
        lines.append(_row(route, s, elapsed))
    lines.append("-" * len(header))
    lines.append(_row("overall", everything, elapsed))
    return "\n".join(lines)


def _row(name: str, s: RouteStats, elapsed: float) -> str:
    done = len(s.latencies) + s.errors
    ordered = sorted(s.latencies)
    return (f"{name:<34} {done:>9} {done / elapsed:>8.1f} {pct(ordered, 0.50):>8.2f} {pct(ordered, 0.95):>8.2f} "
            f"{pct(ordered, 0.99):>8.2f} {s.errors:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description="mixed roles and routes against the local gateway for a fixed time")
    parser.add_argument("--url", help="a running gateway (default: start one on the demo data)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gateway workers (own gateway)")
    args = parser.parse_args()
    started = False if args.url else prepared_database(DB)
    with (given_gateway(args.url) if args.url else own_gateway(args.workers, DB)) as server:
        warm, _, warm_failures = _load(server.url, 2, 2.0)  # imports, connections, caches
        if server.worker_pids:
            server.backend_pids = backends()
        server_cpu0 = (cpu_seconds(server.worker_pids), cpu_seconds(server.backend_pids))
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        stats, elapsed, failures = _load(server.url, args.clients, args.seconds)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu1 = (cpu_seconds(server.worker_pids), cpu_seconds(server.backend_pids))
    if not args.url:
        from local import stack

        stack.stop_database(started, DB)
    where = args.url or f"own gateway, {args.workers} workers, database {DB}"
    print(f"{args.clients} clients for {elapsed:.1f} s, {len(MIX)} request kinds in turn, demo data ({where}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(table(stats, elapsed))
    client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    done = sum(len(s.latencies) + s.errors for s in stats.values())
    if server.worker_pids and done:
        gw, pg = ((b - a) * 1000 / done for a, b in zip(server_cpu0, server_cpu1, strict=True))
        print(f"CPU per request: gateway workers {gw:.2f} ms, PostgreSQL {pg:.2f} ms, this client "
              f"{client_cpu * 1000 / done:.2f} ms ({100 * client_cpu / elapsed:.0f}% of a core)")
    warm_errors = sum(s.errors for s in warm.values())
    errors = sum(s.errors for s in stats.values()) + warm_errors
    if warm_errors:
        print(f"warm-up errors: {warm_errors}")
    for failure in warm_failures + failures:
        print(f"  {failure}")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
