"""Ingest of 1,000-event batches through the POST /v1/events handler, and the recompute of analytics
for 10,000 users with 90 days of activity (~1,000,000 events).

The bench database: one organization of 10,000 learners (time zones UTC, Europe/Berlin,
America/New_York, Asia/Tokyo), 100 events each spread over the last 90 days (all six verbs,
scores, skills, durations), 8 skill targets. Built once with generate_series and kept between
runs (--rebuild builds it again).

(1) recompute: ms8.services.analytics_refresh.recompute_users for all 10,000 users as the
    stale-analytics job calls it (owner connection, maintenance transaction, 1,000 users per
    call): reads their 91-day windows, computes the 4 types, upserts 40,000 snapshots.
(2) ingest: the lambda_handler of functions/post_events with a platform ingest token, each batch
    1,000 new events (all in the last day) of `learners` distinct learners of that organization,
    every one of whom has the 90-day history above. Timed per batch from the HTTP API event (body
    already serialized, as API Gateway hands it over) to the handler's answer: validation, the
    request context, the insert, the analytics of the touched users (window read, compute,
    upsert of 4 snapshots each), points and gamification rows, and the commit. The shapes go
    from one learner's sync to a batch touching 1,000 learners.
(3) replay: the same batches sent again (nothing new: nothing recomputed).
(4) baseline, same run: a Python xAPI store writing to a flat file, no database (json.loads the
    body, check each statement's required fields, append JSON lines, fsync per batch).

On a shared machine wall-clock figures move with the load, so each ingest row also shows the CPU
one batch costs, the handler's process and its PostgreSQL backend together (Linux /proc), and
the load average is printed under the table.

--http instead measures over real HTTP: the local gateway (local.server, `--workers`
processes, each serving one request at a time as a Lambda container does, with its own
database connection) on the bench database, and `--clients` concurrent keep-alive clients each
POSTing its 1,000-event batches back to back with the platform ingest token (the JWT authorizer
emulated). Events/s = events stored / elapsed time of all clients; the CPU per batch is the
gateway workers' and their PostgreSQL backends' (the clients' own is left out).

    .venv/bin/python bench/bench_ingest.py [--batches 8] [--rebuild]
    .venv/bin/python bench/bench_ingest.py --http [--clients 4] [--workers 2] [--batches 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _common
import psycopg

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MS8Bench")

from local import apigw, localdb, runtime, template
from ms8 import db
from ms8.services.analytics_refresh import recompute_users

DB = "ms8_bench_ingest"
USERS, EVENTS_PER_USER, DAYS = 10_000, 100, 90
BATCH = 1000
CHUNK = 1000  # users per recompute_users call, as the stale job does
CLIENT = "bench-ingest"
SKILLS = [f"skill-{i}" for i in range(8)]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]
SHAPES = [1, 10, 50, 100, 1000]  # distinct learners per 1,000-event batch
TARGET_INGEST = 20_000  # events/s through the handler
TARGET_HTTP = 11_500  # events/s over HTTP through the local gateway
HTTP_SHAPES = [1, 10, 100]
TARGET_RECOMPUTE_S = 30.0
BASELINE_HERE = 5_800  # events/s the target table quotes for the flat-file store

SEED = """
INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, skills,
                             score, success, duration_seconds, occurred_at)
SELECT gen_random_uuid(), u.id, u.organization_id,
       (ARRAY['completed','passed','failed','attempted','progressed','session'])[1 + (g %% 6)],
       'course-' || ((g * 7 + hashtext(u.id::text)) & 255), 'course',
       ARRAY[(%(skills)s::text[])[1 + (g %% 8)]],
       CASE WHEN g %% 6 IN (1, 2, 3) THEN ((g * 37 + ascii(u.name)) %% 100) / 100.0 END,
       CASE WHEN g %% 6 = 1 THEN true WHEN g %% 6 = 2 THEN false END,
       CASE WHEN g %% 6 IN (0, 5) THEN 300 + (g * 13) %% 1800 END,
       %(now)s - random() * make_interval(days => %(days)s)
FROM users u CROSS JOIN generate_series(1, %(per_user)s) g
WHERE u.organization_id = %(org)s
"""


def prepare(rebuild: bool) -> uuid.UUID:
    """The bench database, reused when it is complete; returns the organization id."""
    if rebuild:
        localdb.start()
        localdb.drop_database(DB)
    _common.migrated_database(DB)
    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SELECT app.begin_maintenance()")
            row = conn.execute(
                "SELECT o.id, (SELECT count(*) FROM users), (SELECT count(*) FROM service_clients WHERE client_id = %s) "
                "FROM organizations o WHERE o.name = 'Bench'", (CLIENT,)
            ).fetchone()
        if row is not None and row[1] == USERS and row[2] == 1:
            return row[0]  # type: ignore[no-any-return]
        print(f"building {USERS:,} users x {EVENTS_PER_USER} events in {DB} (once) ...", file=sys.stderr)
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("SELECT app.begin_maintenance()")
            conn.execute("TRUNCATE organizations CASCADE")
            conn.execute("DELETE FROM service_clients WHERE client_id = %s", (CLIENT,))
            org = conn.execute("INSERT INTO organizations (name) VALUES ('Bench') RETURNING id").fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO users (organization_id, email, name, roles, timezone) "
                "SELECT %s, 'u' || g || '@bench.test', 'Learner ' || g, '{learner}', (%s::text[])[1 + g %% 4] "
                "FROM generate_series(1, %s) g",
                (org, ZONES, USERS),
            )
            conn.execute(
                "INSERT INTO skill_targets (organization_id, skill, target_level) "
                "SELECT %s, s, 0.6 + 0.04 * i FROM unnest(%s::text[]) WITH ORDINALITY AS t(s, i)",
                (org, SKILLS),
            )
            conn.execute(SEED, {"skills": SKILLS, "now": datetime.now(UTC), "days": DAYS,
                                "per_user": EVENTS_PER_USER, "org": org})
            conn.execute(
                "INSERT INTO service_clients (client_id, organization_id, scopes) VALUES (%s, %s, '{ingest}')",
                (CLIENT, org),
            )
        conn.execute("VACUUM (ANALYZE)")
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return org  # type: ignore[no-any-return]


def reset(org: uuid.UUID) -> list[uuid.UUID]:
    """Remove what earlier runs ingested (events received after the build, points, gamification)
    so every run starts from the same data; returns the learners' ids."""
    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SELECT app.begin_maintenance()")
            deleted = conn.execute(
                "DELETE FROM learning_events WHERE received_at > (SELECT min(received_at) FROM learning_events)"
            ).rowcount
            conn.execute("TRUNCATE points_ledger, gamification")
            users = [r[0] for r in conn.execute("SELECT id FROM users WHERE organization_id = %s ORDER BY id", (org,))]
        if deleted:
            conn.execute("VACUUM (ANALYZE) learning_events")
    return users


def recompute_all(users: list[uuid.UUID]) -> tuple[float, int]:
    """Every user's analytics as the stale job computes them: owner, maintenance, 1,000 per call."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    written = 0
    with db.owner.transaction(db.as_maintenance) as (conn, _):
        for i in range(0, len(users), CHUNK):
            written += recompute_users(conn, users[i:i + CHUNK], now)
    return time.perf_counter() - started, written


def make_batch(rnd: random.Random, learners: list[uuid.UUID], now: datetime) -> str:
    """1,000 new events of the given learners, as the request body."""
    verbs = ["completed", "passed", "failed", "attempted", "progressed", "session"]
    events = []
    for i in range(BATCH):
        verb = verbs[i % 6]
        scored = verb in ("passed", "failed", "attempted")
        event: dict[str, Any] = {
            "eventId": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "userId": str(learners[i % len(learners)]),
            "verb": verb,
            "objectId": f"course-{rnd.randrange(400)}",
            "objectType": "assessment" if scored else "course",
            "skills": [rnd.choice(SKILLS)],
            "occurredAt": (now - timedelta(seconds=rnd.randrange(86_000))).isoformat(),
        }
        if scored:
            event["result"] = {"score": round(rnd.random(), 2), "success": verb == "passed"}
        elif verb == "session":
            event["result"] = {"durationSeconds": rnd.randrange(60, 3600)}
        events.append(event)
    return json.dumps({"events": events})


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def post(handler: Any, route: template.Route, claims: dict[str, Any], body: str) -> dict[str, Any]:
    event = apigw.http_event("POST", "/v1/events", claims=claims, route=route,
                             headers={"content-type": "application/json"}, body=body)
    response = handler(event, runtime.LocalContext("PostEventsFunction", str(uuid.uuid4())))
    if response["statusCode"] != 200:
        raise SystemExit(f"ingest failed: {response['statusCode']} {response.get('body')}")
    return json.loads(response["body"])  # type: ignore[no-any-return]


def flat_file_store(bodies: list[str], path: str) -> float:
    """The baseline: validate required fields, append JSON lines, fsync; events per second."""
    required = ("eventId", "verb", "objectId", "occurredAt")
    started = time.perf_counter()
    with open(path, "a", encoding="utf-8") as out:
        for body in bodies:
            statements = json.loads(body)["events"]
            for s in statements:
                if not all(k in s for k in required):
                    raise ValueError("invalid statement")
                datetime.fromisoformat(s["occurredAt"])
                uuid.UUID(s["eventId"])
            out.write("\n".join(json.dumps(s, separators=(",", ":")) for s in statements) + "\n")
            out.flush()
            os.fsync(out.fileno())
    return len(bodies) * BATCH / (time.perf_counter() - started)


def runtime_backends() -> list[int]:
    """The runtime role's backends on the bench database (one per gateway worker)."""
    with psycopg.connect(localdb.admin_url(), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND usename = %s",
                            (DB, localdb.RUNTIME_ROLE)).fetchall()
    return [r[0] for r in rows]


def post_all(url: str, token: str, bodies: list[str], failures: list[str]) -> None:
    """One keep-alive client: POST the bodies one after the other; any other answer than a 200
    storing the whole batch is a failure."""
    parts = url.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(parts[0], int(parts[1]), timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        for body in bodies:
            conn.request("POST", "/v1/events", body=body.encode(), headers=headers)
            response = conn.getresponse()
            answer = response.read()
            if response.status != 200 or json.loads(answer)["inserted"] != BATCH:
                failures.append(f"{response.status} {answer[:200]!r}")
    except (OSError, http.client.HTTPException) as exc:
        failures.append(repr(exc))
    finally:
        conn.close()


def over_http(users: list[uuid.UUID], rnd: random.Random, args: argparse.Namespace) -> list[list[str]]:
    """POST /v1/events through the local gateway: `clients` concurrent clients, `batches` each."""
    from local import server, stack, tokens

    stack.apply_function_env(None, db=DB)  # what the workers find in their environment
    token = tokens.service_token(CLIENT, ["ingest"])
    now = datetime.now(UTC)
    pool = server.Server(server.bind("127.0.0.1", 0), args.workers, quiet=True, output=subprocess.DEVNULL)
    pool.start()
    rows = [["work", "figure", "CPU per batch", "target", "verdict"]]
    try:
        warm = [[make_batch(rnd, rnd.sample(users, 10), now)] for _ in range(2 * args.workers)]
        failures: list[str] = []
        threads = [threading.Thread(target=post_all, args=(pool.url, token, b, failures)) for b in warm]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise SystemExit(f"ingest over HTTP failed: {failures[0]}")
        servers = pool.worker_pids() + runtime_backends()
        for learners in HTTP_SHAPES:
            bodies = [[make_batch(rnd, rnd.sample(users, learners), now) for _ in range(args.batches)]
                      for _ in range(args.clients)]
            threads = [threading.Thread(target=post_all, args=(pool.url, token, b, failures)) for b in bodies]
            cpu_before = cpu_seconds(servers)
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            if failures:
                raise SystemExit(f"ingest over HTTP failed: {failures[0]}")
            batches = args.clients * args.batches
            cpu_ms = (cpu_seconds(servers) - cpu_before) / batches * 1000
            rate = batches * BATCH / elapsed
            rows.append([f"POST 1,000 events of {learners:,} learner{'s' if learners > 1 else ''}, "
                         f"{args.clients} clients, {args.workers} workers",
                         f"{rate:,.0f} ev/s", f"{cpu_ms:.0f} ms", f">= {TARGET_HTTP:,} ev/s",
                         _common.verdict(rate >= TARGET_HTTP)])
    finally:
        pool.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="timed batches per shape (per client with --http)")
    parser.add_argument("--rebuild", action="store_true", help="build the bench database again")
    parser.add_argument("--http", action="store_true", help="over HTTP through the local gateway instead")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (--http)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gateway workers (--http)")
    args = parser.parse_args()

    org = prepare(args.rebuild)
    users = reset(org)
    rnd = random.Random(7)
    if args.http:
        load_before = os.getloadavg()[0]
        print(_common.table(over_http(users, rnd, args)))
        print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs; "
              "CPU per batch = the gateway workers + their PostgreSQL backends")
        return
    route = next(r for r in template.routes() if r.route_key == "POST /v1/events")
    handler = runtime.load_handler(route.function)
    claims = apigw.service_claims(CLIENT, ["ingest"])

    load_before = os.getloadavg()[0]
    seconds, snapshots = recompute_all(users)
    rows = [["work", "figure", "CPU per batch", "target", "verdict"]]
    rows.append([f"recompute {len(users):,} users, ~{len(users) * EVENTS_PER_USER:,} events ({snapshots:,} snapshots)",
                 f"{seconds:.1f} s", "", f"<= {TARGET_RECOMPUTE_S:.0f} s", _common.verdict(seconds <= TARGET_RECOMPUTE_S)])

    now = datetime.now(UTC)
    post(handler, route, claims, make_batch(rnd, rnd.sample(users, 10), now))  # warm: imports, connection
    backend = db.runtime.connection().info.backend_pid
    all_bodies: list[str] = []
    for learners in SHAPES:
        bodies = [make_batch(rnd, rnd.sample(users, learners), now) for _ in range(args.batches)]
        all_bodies += bodies
        times = []
        cpu_before = time.process_time() + cpu_seconds([backend])
        for body in bodies:
            started = time.perf_counter()
            result = post(handler, route, claims, body)
            times.append(time.perf_counter() - started)
            assert result["inserted"] == BATCH and result["usersUpdated"] == learners, result
        cpu_ms = (time.process_time() + cpu_seconds([backend]) - cpu_before) / len(bodies) * 1000
        rate = BATCH * len(times) / sum(times)
        median_ms = statistics.median(times) * 1000
        rows.append([f"ingest 1,000 events of {learners:,} learner{'s' if learners > 1 else ''} (median {median_ms:.0f} ms)",
                     f"{rate:,.0f} ev/s", f"{cpu_ms:.0f} ms", f">= {TARGET_INGEST:,} ev/s",
                     _common.verdict(rate >= TARGET_INGEST)])

    replay = all_bodies[: args.batches]
    started = time.perf_counter()
    for body in replay:
        assert post(handler, route, claims, body)["inserted"] == 0
    replay_rate = BATCH * len(replay) / (time.perf_counter() - started)
    rows.append(["replay of stored batches (nothing new)", f"{replay_rate:,.0f} ev/s", "", "", ""])

    with tempfile.TemporaryDirectory() as tmp:
        baseline = flat_file_store(all_bodies, os.path.join(tmp, "statements.jsonl"))
    rows.append([f"baseline: flat-file xAPI store, no database (quoted: {BASELINE_HERE:,})",
                 f"{baseline:,.0f} ev/s", "", "", ""])
    print(_common.table(rows))
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs; "
          "CPU per batch = the handler's process + its PostgreSQL backend")


if __name__ == "__main__":
    main()
