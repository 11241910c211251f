"""Ingest of 1,000-event batches through the POST /v1/events handler beside the bare insert of the
same events, and the recompute of analytics for 10,000 users with 90 days of activity.

The bench database: one organization of 10,000 learners (time zones UTC, Europe/Berlin,
America/New_York, Asia/Tokyo), 100 events each spread over the last 90 days (all six verbs,
scores, skills, durations), 8 skill targets, and their learner days. Built once with
generate_series and kept between runs (--rebuild builds it again).

(1) recompute: ms8.services.analytics_refresh.recompute_users for all 10,000 users as the
    stale-analytics job calls it (owner connection, maintenance transaction, 1,000 users per
    call): reads their learner days (and the events of their boundary days), computes the 4
    types, upserts 40,000 snapshots.
(2) ingest: the lambda_handler of functions/post_events with a platform ingest token, each batch
    1,000 new events (all in the last day) of 1, 100 or 500 distinct learners of that
    organization, every one of whom has the history above. Timed per batch from the HTTP API
    event (body already serialized, as API Gateway hands it over) to the handler's answer:
    validation, then one statement (app.request_service_ingest, its own transaction): the
    request context, the insert with the learner days, noting the touched learners for the
    refresh job, and the commit. Then, untimed by that row and shown on its own,
    the refresh job (ms8.jobs.pending, every minute on AWS) brings those learners' snapshots,
    points and gamification rows up to date: the work a platform's batch no longer waits for.
(3) floor, same run, batch for batch: the bare insert of the same 1,000 events: one INSERT ...
    SELECT FROM unnest(...) into learning_events as the owner in maintenance, no validation, no
    RLS context, no learner days, no analytics; committed, then deleted again (untimed) before
    the handler stores them. The ratio handler / bare (medians) is what validation, RLS and the
    learner days cost the request.
(4) replay: the same batches sent again (nothing new: nothing recomputed).

On a shared machine wall-clock figures move with the load, so each ingest row also shows the CPU
one batch costs, the handler's process and its PostgreSQL backend together (Linux /proc), the
bare insert's CPU (this process and the owner's backend) and the ratio of the two beside the
wall-clock one (the target is the wall-clock ratio); the load average is printed under the table.

--http instead measures over real HTTP: the local gateway (`python -m local.server`, `--workers`
processes) on the bench database, optionally through PgBouncer (--pooler: transaction mode,
fewer server connections than workers), and `--clients` concurrent clients each
POSTing 1,000-event batches back to back with the platform ingest token. Events/s = events
stored / elapsed time of all clients; the CPU per batch is the gateway's and the runtime role's
PostgreSQL backends' (the clients' own is left out). With --ralph (or --ralph-venv DIR, a virtual
environment with it installed), each shape is also sent, right after ours, to Ralph 5.1.0 (a
Python xAPI store appending to a flat file; bench/bench_xapi.py installs and serves it), started
afresh for each shape (an empty file: it slows down as the file grows), served by as many uvicorn
workers and driven by as many clients, each POSTing batches of 1,000 statements after a warm-up:
the ratio ours / Ralph is the pace against a store that keeps no analytics.

    .venv/bin/python bench/bench_ingest.py [--batches 8] [--rebuild]
    .venv/bin/python bench/bench_ingest.py --http [--clients 4] [--workers 2] [--batches 8] [--pooler]
                                                  [--ralph | --ralph-venv DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
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
from ms8.jobs.pending import JOB as PENDING_JOB
from ms8.jobs.runner import run as run_job
from ms8.repositories import days
from ms8.schemas.events import EventBatch
from ms8.services.analytics_refresh import recompute_users

DB = "ms8_bench_ingest"
USERS, EVENTS_PER_USER, DAYS = 10_000, 100, 90
BATCH = 1000
CHUNK = 1000  # users per recompute_users call, as the stale job does
CLIENT = "bench-ingest"
SKILLS = [f"skill-{i}" for i in range(8)]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]
SHAPES = [1, 100, 500]  # distinct learners per 1,000-event batch
TARGET_RATIO = 2.5  # handler / bare insert, for the spread batches (100 and 500 learners)
TARGET_HTTP = 15_000  # events/s over HTTP through the local gateway, 100-learner batches
HTTP_SHAPES = [1, 100, 500]
# Against Ralph over HTTP (same clients, as many workers): at least 2.5x its pace for batches
# spread over 100 learners, 3x for batches of one learner.
TARGET_VS_RALPH = {100: 2.5, 1: 3.0}
TARGET_RECOMPUTE_S = 30.0

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
            days.rebuild(conn, org)  # the history was written past ingest: its learner days
        conn.execute("VACUUM (ANALYZE)")
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return org  # type: ignore[no-any-return]


def reset(org: uuid.UUID) -> list[uuid.UUID]:
    """Remove what earlier runs ingested (events received after the build, points, gamification)
    so every run starts from the same data; returns the learners' ids."""
    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SELECT app.begin_maintenance()")
            touched: dict[uuid.UUID, set[date]] = {}
            for user, day in conn.execute(
                "DELETE FROM learning_events WHERE organization_id = %s "
                "AND received_at > (SELECT min(received_at) FROM learning_events) "
                "RETURNING user_id, (occurred_at AT TIME ZONE 'UTC')::date", (org,)
            ):
                touched.setdefault(user, set()).add(day)
            conn.execute("TRUNCATE points_ledger, gamification, analytics_pending")
            users = [r[0] for r in conn.execute("SELECT id FROM users WHERE organization_id = %s ORDER BY id", (org,))]
            # The days earlier runs added to, built again from the events left: only those, so the
            # table keeps its size (rebuilding all 600,000 days each run doubled it).
            days.rebuild_user_days(conn, org, touched)
        if touched:
            conn.execute("VACUUM (ANALYZE) learning_events, learner_daily_activity")
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


def ralph_all(client: Any, bodies: list[bytes], failures: list[str]) -> None:
    """One keep-alive client of Ralph: POST the batches of statements one after the other."""
    try:
        for body in bodies:
            status, answer = client.post(body)
            if status != 200:
                failures.append(f"Ralph {status} {answer[:200]!r}")
    except (OSError, http.client.HTTPException) as exc:
        failures.append(f"Ralph {exc!r}")


def concurrently(target: Any, work: list[tuple[Any, ...]]) -> float:
    """Run target(*args, failures) for each args on threads of their own; the elapsed seconds
    (any failure ends the bench)."""
    failures: list[str] = []
    threads = [threading.Thread(target=target, args=(*a, failures)) for a in work]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"over HTTP failed ({len(failures)} errors): {failures[0]}")
    return time.perf_counter() - started


@contextlib.contextmanager
def ralph_venv(args: argparse.Namespace) -> Iterator[Path | None]:
    """Ralph's virtual environment when asked for: the one given, or installed in a scratch one."""
    import bench_xapi

    if args.ralph_venv or not args.ralph:
        yield args.ralph_venv
        return
    where = Path(tempfile.mkdtemp(prefix="bench-ralph-venv-"))
    try:
        yield bench_xapi.install_ralph(where)
    finally:
        shutil.rmtree(where, ignore_errors=True)


@contextlib.contextmanager
def fresh_ralph(venv: Path, workers: int) -> Iterator[tuple[str, tuple[str, str], int] | None]:
    """Ralph (bench_xapi's) with `workers` uvicorn workers and an empty store of its own."""
    import bench_xapi

    where = Path(tempfile.mkdtemp(prefix="bench-ralph-"))
    try:
        with bench_xapi.ralph_server(venv, where, workers=workers) as server:
            yield server
    finally:
        shutil.rmtree(where, ignore_errors=True)


def over_http(users: list[uuid.UUID], rnd: random.Random, args: argparse.Namespace) -> list[list[str]]:
    """POST /v1/events through the local gateway: `clients` concurrent clients, `batches` each;
    with Ralph, the same number of 1,000-statement batches to it after each shape."""
    import bench_xapi

    from local import pooler, tokens

    token = tokens.service_token(CLIENT, ["ingest"])
    now = datetime.now(UTC)
    rows = [["work", "figure", "CPU per batch", "target", "verdict"]]
    pooled = pooler.pgbouncer(DB, pool_size=max(1, args.workers - 1)) if args.pooler else contextlib.nullcontext()
    with pooled as database_url, _common.gateway(DB, args.workers, database_url) as gw, ralph_venv(args) as venv:
        warm = [[make_batch(rnd, rnd.sample(users, 10), now)] for _ in range(2 * args.workers)]
        concurrently(post_all, [(gw.url, token, b) for b in warm])
        servers = gw.worker_pids() + runtime_backends()
        via = f"{args.workers} workers" + (f", PgBouncer pool {max(1, args.workers - 1)}" if args.pooler else "")
        for learners in HTTP_SHAPES:
            bodies = [[make_batch(rnd, rnd.sample(users, learners), now) for _ in range(args.batches)]
                      for _ in range(args.clients)]
            cpu_before = cpu_seconds(servers)
            elapsed = concurrently(post_all, [(gw.url, token, b) for b in bodies])
            batches = args.clients * args.batches
            cpu_ms = (cpu_seconds(servers) - cpu_before) / batches * 1000
            rate = batches * BATCH / elapsed
            target = learners == 100
            rows.append([f"POST 1,000 events of {learners:,} learner{'s' if learners > 1 else ''}, "
                         f"{args.clients} clients, {via}, 0 errors",
                         f"{rate:,.0f} ev/s", f"{cpu_ms:.0f} ms", f">= {TARGET_HTTP:,} ev/s" if target else "",
                         _common.verdict(rate >= TARGET_HTTP) if target else ""])
            if venv is None:
                continue
            spread = [(u, f"learner-{u.hex[:12]}@ingest.bench.example") for u in rnd.sample(users, learners)]
            lrs_bodies = [[json.dumps(bench_xapi.statements(spread, BATCH, c * (args.batches + 1) + k)).encode()
                           for k in range(args.batches + 1)] for c in range(args.clients)]
            # A Ralph of its own per shape: its flat file slows it down as it grows.
            with fresh_ralph(venv, args.workers) as lrs:
                assert lrs is not None
                url, auth, pid = lrs
                concurrently(ralph_all, [(bench_xapi.Client(url, auth), b[:1]) for b in lrs_bodies])  # warm-up
                ralph_pids = bench_xapi.process_tree(pid)
                cpu_before = cpu_seconds(ralph_pids)
                ralph_rate = batches * BATCH / concurrently(
                    ralph_all, [(bench_xapi.Client(url, auth), b[1:]) for b in lrs_bodies])
                ralph_cpu = (cpu_seconds(ralph_pids) - cpu_before) / batches * 1000
            want = TARGET_VS_RALPH.get(learners)
            rows.append([f"  Ralph {bench_xapi.RALPH_VERSION}, as many 1,000-statement batches, "
                         f"{args.workers} workers; ours / Ralph {rate / ralph_rate:.2f}x",
                         f"{ralph_rate:,.0f} st/s", f"{ralph_cpu:.0f} ms",
                         f">= {want}x Ralph" if want else "", _common.verdict(rate / ralph_rate >= want) if want else ""])
    return rows


BARE_INSERT = """
INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, skills, score,
                             success, duration_seconds, occurred_at)
SELECT x.event_id, x.user_id, %s, x.verb, x.object_id, x.object_type, string_to_array(x.skills, E'\\x1f'), x.score,
       x.success, x.duration_seconds, x.occurred_at
FROM unnest(%b::uuid[], %b::uuid[], %b::text[], %b::text[], %b::text[], %b::text[], %b::real[], %b::boolean[],
            %b::integer[], %b::timestamptz[])
     AS x(event_id, user_id, verb, object_id, object_type, skills, score, success, duration_seconds, occurred_at)
"""


def bare_insert(conn: psycopg.Connection, org: uuid.UUID, body: str) -> tuple[float, float]:
    """The floor: the batch's events in one statement, nothing else; (seconds, CPU seconds of this
    process and the connection's backend), then deleted again."""
    events = EventBatch.model_validate_json(body).events  # untimed: the same rows the handler stores
    columns = [
        [e.event_id for e in events], [e.user_id for e in events], [e.verb for e in events],
        [e.object_id for e in events], [e.object_type for e in events], ["\x1f".join(e.skills) for e in events],
        [e.result.score if e.result else None for e in events], [e.result.success if e.result else None for e in events],
        [e.result.duration_seconds if e.result else None for e in events], [e.occurred_at for e in events],
    ]
    backend = conn.info.backend_pid
    cpu_before = time.process_time() + cpu_seconds([backend])
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        conn.execute(BARE_INSERT, (org, *columns))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() + cpu_seconds([backend]) - cpu_before
    with conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        conn.execute("DELETE FROM learning_events WHERE event_id = ANY (%s)", (columns[0],))
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="timed batches per shape (per client with --http)")
    parser.add_argument("--rebuild", action="store_true", help="build the bench database again")
    parser.add_argument("--http", action="store_true", help="over HTTP through the local gateway instead")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (--http)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gateway workers (--http)")
    parser.add_argument("--pooler", action="store_true", help="the gateway through PgBouncer (--http)")
    parser.add_argument("--ralph", action="store_true", help="beside Ralph, installed in a scratch venv (--http)")
    parser.add_argument("--ralph-venv", type=Path, help="beside Ralph, from this virtual environment (--http)")
    parser.add_argument("--no-recompute", action="store_true", help="skip the 10,000-user recompute")
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
    rows = [["work", "figure", "CPU per batch", "bare insert", "handler / bare", "target", "verdict"]]
    if not args.no_recompute:
        seconds, snapshots = recompute_all(users)
        rows.append([f"recompute {len(users):,} users from their learner days ({snapshots:,} snapshots)",
                     f"{seconds:.1f} s", "", "", "", f"<= {TARGET_RECOMPUTE_S:.0f} s",
                     _common.verdict(seconds <= TARGET_RECOMPUTE_S)])

    now = datetime.now(UTC)
    owner = psycopg.connect(localdb.owner_url(DB), autocommit=True, prepare_threshold=None)
    warm = make_batch(rnd, rnd.sample(users, 10), now)
    bare_insert(owner, org, warm)
    post(handler, route, claims, warm)  # warm: imports, connection
    run_job(PENDING_JOB, {})
    backend = db.runtime.connection().info.backend_pid
    all_bodies: list[str] = []
    for learners in SHAPES:
        bodies = [make_batch(rnd, rnd.sample(users, learners), now) for _ in range(args.batches)]
        all_bodies += bodies
        times, floors, refreshes, cpu, floor_cpu = [], [], [], 0.0, 0.0
        for body in bodies:
            floor_wall, floor_cpu_s = bare_insert(owner, org, body)
            floors.append(floor_wall)
            floor_cpu += floor_cpu_s
            cpu_before = time.process_time() + cpu_seconds([backend])
            started = time.perf_counter()
            result = post(handler, route, claims, body)
            times.append(time.perf_counter() - started)
            cpu += time.process_time() + cpu_seconds([backend]) - cpu_before
            assert result["inserted"] == BATCH and result["usersQueued"] == learners, result
            started = time.perf_counter()
            done = run_job(PENDING_JOB, {})
            refreshes.append(time.perf_counter() - started)
            assert done.details["users"] == learners, done
        median, floor = statistics.median(times), statistics.median(floors)
        ratio = median / floor
        spread = learners > 1
        rows.append([f"ingest 1,000 events of {learners:,} learner{'s' if learners > 1 else ''} "
                     f"(median {median * 1000:.0f} ms)",
                     f"{BATCH / median:,.0f} ev/s", f"{cpu / len(bodies) * 1000:.0f} ms",
                     f"{BATCH / floor:,.0f} ev/s ({floor * 1000:.0f} ms, {floor_cpu / len(bodies) * 1000:.0f} ms CPU)",
                     f"{ratio:.2f}x (CPU {cpu / floor_cpu:.2f}x)" if floor_cpu else f"{ratio:.2f}x",
                     f"<= {TARGET_RATIO}x" if spread else "", _common.verdict(ratio <= TARGET_RATIO) if spread else ""])
        refresh = statistics.median(refreshes)
        rows.append([f"  then the refresh job for those {learners:,} learner{'s' if learners > 1 else ''}",
                     f"{refresh * 1000:,.0f} ms", "", "", "", "", f"{learners / refresh:,.0f} learners/s"])

    replay = all_bodies[: args.batches]
    started = time.perf_counter()
    for body in replay:
        assert post(handler, route, claims, body)["inserted"] == 0
    replay_rate = BATCH * len(replay) / (time.perf_counter() - started)
    rows.append(["replay of stored batches (nothing new)", f"{replay_rate:,.0f} ev/s", "", "", "", "", ""])
    owner.close()
    print(_common.table(rows))
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs; "
          "CPU per batch = the handler's process + its PostgreSQL backend (the bare insert's: this process + the owner's "
          "backend; Linux counts CPU in 10 ms ticks, so the CPU figures are means over the batches); events/s and the "
          "ratio from the wall-clock medians")


if __name__ == "__main__":
    main()
