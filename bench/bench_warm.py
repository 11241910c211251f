"""Warm latency of GET /v1/analytics through its Lambda handler, beside the bare SQL.

The handler path is what a warm Lambda does per request: parse and validate the event, open the
request transaction with the caller's RLS context (one round trip), run the query, commit,
validate and serialise the response. "Bare SQL" is the same SELECT on an open connection with
the context already set. Also prints CPU time per request and the peak RSS after the run.

    .venv/bin/python bench/bench_warm.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

from local import localdb

ROOT = Path(__file__).resolve().parent.parent


DB = "ms8_bench_api"


def setup() -> tuple[str, str]:
    """A bench database with 2,000 users x 4 analytics rows and an ingest client; returns
    (a user id, the runtime url)."""
    localdb.start()
    localdb.drop_database(DB)
    localdb.create_database(DB)
    import psycopg

    with psycopg.connect(localdb.owner_url(DB)) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        org = conn.execute("INSERT INTO organizations (name) VALUES ('Bench') RETURNING id").fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO users (organization_id, email, name, roles) "
            "SELECT %s, 'u' || g || '@bench.test', 'User ' || g, '{learner}' FROM generate_series(1, 2000) g",
            (org,),
        )
        conn.execute(
            "INSERT INTO analytics (user_id, organization_id, role, analytics_type, data) "
            "SELECT u.id, u.organization_id, 'learner', t, jsonb_build_object('value', random(), 'n', 42) "
            "FROM users u, unnest(ARRAY['learning_velocity','engagement','mastery','skill_gap']) t"
        )
        user = conn.execute("SELECT id FROM users ORDER BY email LIMIT 1").fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO service_clients (client_id, organization_id, scopes) "
                     "VALUES ('bench-ingest', %s, '{ingest}')", (org,))
    return str(user), localdb.runtime_url(DB)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def put_batches(url: str, runs: int = 30) -> None:
    """PUT /v1/analytics with 500 items (an ingest service writing for 125 users), through the handler."""
    import json
    import random

    import psycopg

    from local import apigw, runtime, template

    with psycopg.connect(url.replace("ms8_app:ms8_app_local", "ms8_owner:ms8_owner_local")) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        users = [str(r[0]) for r in conn.execute("SELECT id FROM users ORDER BY id LIMIT 250").fetchall()]
    route = next(r for r in template.routes() if r.route_key == "PUT /v1/analytics")
    handler = runtime.load_handler(route.function)
    context = runtime.LocalContext(route.function.logical_id, "bench")
    claims = apigw.service_claims("bench-ingest", ["ingest"])
    rng = random.Random(7)
    types = ("learning_velocity", "engagement", "mastery", "skill_gap")
    times = []
    for run in range(runs + 3):
        chosen = rng.sample(users, 125)
        items = [{"userId": u, "analyticsType": t, "data": {"value": rng.random(), "run": run}}
                 for u in chosen for t in types]
        event = apigw.http_event("PUT", "/v1/analytics", claims=claims, route=route,
                                 headers={"content-type": "application/json"}, body=json.dumps({"items": items}))
        t0 = time.perf_counter()
        response = handler(event, context)
        elapsed = (time.perf_counter() - t0) * 1000
        assert response["statusCode"] == 200, response["body"][:300]
        if run >= 3:
            times.append(elapsed)
    print(f"\nPUT /v1/analytics, 500 items (125 users x 4 types, ingest service), through the handler, {runs} runs:")
    print(f"median {statistics.median(times):.1f} ms, p95 {pct(times, .95):.1f} ms (target <= 35 ms median)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    user, url = setup()
    os.environ.update({"DATABASE_URL": url, "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
                       "POWERTOOLS_LOG_LEVEL": "WARNING", "AWS_DEFAULT_REGION": "eu-west-1"})
    import psycopg

    from local import apigw, runtime, template

    route = next(r for r in template.routes() if r.route_key == "GET /v1/analytics")
    event = apigw.http_event("GET", "/v1/analytics", claims=apigw.user_claims(user), route=route,
                             query={"limit": "10"}, headers={"accept": "application/json"})
    handler = runtime.load_handler(route.function)
    context = runtime.LocalContext(route.function.logical_id, "bench")

    for _ in range(100):  # warm up: connection opened, code paths hot
        assert handler(event, context)["statusCode"] == 200
    wall, cpu = [], []
    for _ in range(args.requests):
        t0, c0 = time.perf_counter(), time.process_time()
        handler(event, context)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    bare = []
    with psycopg.connect(url, prepare_threshold=None) as conn:
        conn.execute("SELECT * FROM app.begin_request(%s, NULL)", (user,))
        query = ("SELECT id, user_id, role, analytics_type, data, source, definition_version, window_days, "
                 "data_through, version, updated_at FROM analytics WHERE user_id = %s AND role = %s "
                 "AND (%s::text IS NULL OR analytics_type = %s) ORDER BY updated_at DESC LIMIT %s")
        params = (user, "learner", None, None, 10)
        for _ in range(100):
            conn.execute(query, params).fetchall()
        for _ in range(args.requests):
            t0 = time.perf_counter()
            conn.execute(query, params).fetchall()
            bare.append((time.perf_counter() - t0) * 1000)

    print(f"GET /v1/analytics, {args.requests} warm requests (4 rows returned), table of 8,000 analytics rows")
    print(f"{'path':<22} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    print(f"{'handler (ours)':<22} {pct(wall, .5):>8.3f} {pct(wall, .99):>8.3f} {statistics.mean(wall):>8.3f}")
    print(f"{'bare SQL':<22} {pct(bare, .5):>8.3f} {pct(bare, .99):>8.3f} {statistics.mean(bare):>8.3f}")
    overhead = pct(wall, .5) - pct(bare, .5)
    print(f"\nhandler overhead at p50: {overhead:.3f} ms (target < 1 ms); ratio handler/bare {pct(wall, .5) / pct(bare, .5):.1f}x")
    print(f"CPU per request: p50 {pct(cpu, .5):.3f} ms, mean {statistics.mean(cpu):.3f} ms (target <= 0.7 ms)")
    print(f"peak RSS after {args.requests + 100} requests: {rss_mb:.0f} MB (target < 150 MB)")
    put_batches(url)
    localdb.drop_database(DB)


if __name__ == "__main__":
    main()
