"""Applying 10,000 `user.upserted` directory events: events per second, by how they are applied.

Every row starts from the raw EventBridge `detail` (validated into the event model) and ends with
a commit, as the platform-wide bus client (`platform-bus`, directory scope, RLS in force):

- the bus function's handler, one event per invocation (what EventBridge delivers);
- the service layer, one event per transaction (`apply_one`): the baseline;
- the service layer in batches (`apply_events`): one set-based statement per batch
  (jsonb_to_recordset), the path a batched consumer or a backfill takes;
- the same batches again (a replay: nothing changes) and with newer versions (every row updated).

Users spread over 100 organizations; the table grows as rows run (up to ~40,000 users).

    .venv/bin/python bench/bench_directory.py [--events 10000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
import uuid
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from local import localdb

ROOT = Path(__file__).resolve().parent.parent


DB = f"ms8_bench_directory_{os.getpid()}"
ORGS = 100
CLIENT = "platform-bus"
TARGET = 5000.0


def setup() -> list[uuid.UUID]:
    """A fresh migrated database with 100 organizations; returns their ids."""
    localdb.drop_database(DB)
    localdb.create_database(DB)
    os.environ.update({
        "DATABASE_URL": localdb.runtime_url(DB), "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "MS8Bench", "AWS_DEFAULT_REGION": "eu-west-1",
    })
    import psycopg

    orgs = [uuid.uuid4() for _ in range(ORGS)]
    with psycopg.connect(localdb.owner_url(DB)) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO organizations (id, name, source_version) VALUES (%s, %s, 1)",
                            [(o, f"Org {i}") for i, o in enumerate(orgs)])
    return orgs


def details(orgs: list[uuid.UUID], count: int, version: int = 1,
            ids: list[uuid.UUID] | None = None) -> list[dict[str, Any]]:
    """`count` user.upserted details as the platform sends them (JSON-ready)."""
    ids = ids or [uuid.uuid4() for _ in range(count)]
    return [
        {"id": str(uid), "organizationId": str(orgs[i % len(orgs)]), "email": f"{uid.hex}@bench.example",
         "name": f"User {i} v{version}", "roles": ["learner"] if i % 10 else ["trainer", "learner"],
         "timezone": "Europe/Berlin", "version": version}
        for i, uid in enumerate(ids)
    ]


def timed(work: Callable[[], list[str]]) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    outcomes = work()
    elapsed = time.perf_counter() - started
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return elapsed, counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--single", type=int, default=2000, help="events for the one-at-a-time rows")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No application metrics")  # Powertools, metrics disabled
    started = localdb.start()
    orgs = setup()

    from local import runtime, template
    from ms8 import db
    from ms8.services import directory

    def per_event(items: list[dict[str, Any]]) -> list[str]:
        outcomes: list[str] = []
        for detail in items:
            change = directory.parse_event("user.upserted", detail)
            with db.runtime.transaction(db.as_service(CLIENT, "directory")) as (conn, _):
                outcomes.append(directory.apply_one(conn, change).outcome)
        return outcomes

    def batched(items: list[dict[str, Any]], size: int) -> list[str]:
        outcomes: list[str] = []
        for start in range(0, len(items), size):
            changes = [directory.parse_event("user.upserted", d) for d in items[start:start + size]]
            with db.runtime.transaction(db.as_service(CLIENT, "directory")) as (conn, _):
                outcomes += [a.outcome for a in directory.apply_events(conn, changes)]
        return outcomes

    function = template.function_by_dir("directory_events")
    bus_handler = runtime.load_handler(function)
    context = runtime.LocalContext(function.logical_id, "bench")

    def through_handler(items: list[dict[str, Any]]) -> list[str]:
        outcomes = []
        # Powertools prints its metrics (EMF) to stdout even when disabled: keep them off the table.
        with contextlib.redirect_stdout(io.StringIO()):
            for i, detail in enumerate(items):
                event = {"version": "0", "id": str(uuid.UUID(int=i)), "detail-type": "user.upserted",
                         "source": "platform.identity", "account": "123456789012",
                         "time": "2026-11-26T12:00:00Z", "region": "eu-west-1", "resources": [], "detail": detail}
                outcomes.append(bus_handler(event, context)["outcome"])
        return outcomes

    per_event(details(orgs, 50))  # warm up: connection, code paths, caches
    through_handler(details(orgs, 50))
    batched(details(orgs, 2 * args.batch), args.batch)

    rows: list[tuple[str, int, float, dict[str, int]]] = []
    n = args.single
    rows.append(("bus function handler, 1 event per invocation", n, *timed(lambda: through_handler(details(orgs, n)))))
    rows.append(("service, 1 event per transaction (baseline)", n, *timed(lambda: per_event(details(orgs, n)))))
    for size in sorted({100, args.batch}):
        fresh = details(orgs, args.events)
        rows.append((f"service, batches of {size:,}", args.events, *timed(partial(batched, fresh, size))))
    ids = [uuid.UUID(d["id"]) for d in fresh]
    replay = details(orgs, args.events, version=1, ids=ids)
    rows.append((f"replay, batches of {args.batch:,} (no change)", args.events,
                 *timed(lambda: batched(replay, args.batch))))
    newer = details(orgs, args.events, version=2, ids=ids)
    rows.append((f"newer versions, batches of {args.batch:,}", args.events,
                 *timed(lambda: batched(newer, args.batch))))

    baseline = rows[1][1] / rows[1][2]
    print(f"Applying user.upserted directory events ({ORGS} organizations, RLS as the platform-wide bus client)")
    print(f"{'path':<48} {'events':>7} {'seconds':>8} {'events/s':>9} {'x base':>7}  outcomes")
    for name, count, seconds, outcomes in rows:
        rate = count / seconds
        summary = ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items()))
        print(f"{name:<48} {count:>7,} {seconds:>8.2f} {rate:>9,.0f} {rate / baseline:>7.1f}  {summary}")
    best = rows[2 if args.batch == 100 else 3]
    rate = best[1] / best[2]
    verdict = "met" if rate >= TARGET else "NOT met"
    print(f"\n{args.events:,} events in batches of {args.batch:,}: {rate:,.0f} events/s "
          f"(target >= {TARGET:,.0f}: {verdict})")

    db.runtime.reset()
    localdb.drop_database(DB)
    if started and not localdb.other_databases(DB):
        localdb.stop()


if __name__ == "__main__":
    main()
