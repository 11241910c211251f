"""Batch upsert of 500 analytics items into a table of 1,000,000 rows, three ways.

(a) seed: the seed document's pattern, one INSERT ... ON CONFLICT per row in one transaction
    (runtime role, its three set_config calls for the context, no validation);
(b) ours: what PUT /v1/analytics and ingest do: pydantic validation of the 500 items
    (AnalyticsBatch), the request transaction with an `ingest` RLS context (ms8.db.as_service)
    and ms8.repositories.analytics.upsert_batch, one statement;
(b') ours without the range checks of ms8.domain.bounds (what the range validation costs);
(b'') what PUT /v1/analytics does for a platform answering the counts: the batch validated from
    its JSON text, then one statement (migration 0019: the service context, the upsert and the
    commit in one round trip, ms8.services.snapshots.write_batch_as_service);
(c) bare: one INSERT ... SELECT FROM unnest(...) ON CONFLICT as the owner in maintenance mode:
    no validation, no RLS context, the least a single statement can cost.

Every way starts from the same 500 items as they arrive on the wire (camelCase dicts), half of
them existing keys and half new, all in one organization, in random order, and commits. After
each run the new keys are deleted again (untimed), so the table stays at 1,000,000 rows. The
ways take turns, run after run. The bench database (250,000 users x 4 types, built with
generate_series) is kept between runs; --rebuild builds it again.

    .venv/bin/python bench/bench_upsert.py [--runs 30] [--rebuild]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

import _common
import orjson
import psycopg
from psycopg.types.json import Jsonb

from local import localdb
from ms8 import db
from ms8.repositories.analytics import SnapshotWrite, upsert_batch, upsert_batch_as_service
from ms8.schemas import analytics as analytics_models
from ms8.schemas.analytics import AnalyticsBatch

DB = "ms8_bench_upsert"
ORGS, USERS_PER_ORG, SPARE_USERS = 10, 25_000, 500
ROWS = ORGS * USERS_PER_ORG * 4
BATCH, EXISTING = 500, 250
TYPES = ("learning_velocity", "engagement", "mastery", "skill_gap")
CLIENT = "bench-ingest"

SEED_UPSERT = """
INSERT INTO analytics (user_id, organization_id, role, analytics_type, data)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (user_id, role, analytics_type) DO UPDATE
SET data = EXCLUDED.data, version = analytics.version + 1
"""
BARE_UPSERT = """
INSERT INTO analytics AS a (user_id, organization_id, role, analytics_type, data)
SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::jsonb[])
ON CONFLICT (user_id, role, analytics_type) DO UPDATE
SET data = EXCLUDED.data, version = a.version + 1
"""


def _ready(conn: psycopg.Connection) -> bool:
    with conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        row = conn.execute(
            "SELECT (SELECT count(*) FROM analytics), "
            "(SELECT count(*) FROM users WHERE name = 'spare'), "
            "(SELECT count(*) FROM service_clients WHERE client_id = %s)",
            (CLIENT,),
        ).fetchone()
    return row == (ROWS, SPARE_USERS, 1)


def prepare(rebuild: bool) -> None:
    """The bench database with its 1,000,000 rows, reused when it already has them."""
    _common.migrated_database(DB, fresh=rebuild)
    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn:
        if _ready(conn):
            return
        print(f"building {ROWS:,} analytics rows in {DB} (once) ...", file=sys.stderr)
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("SELECT app.begin_maintenance()")
            conn.execute("TRUNCATE organizations, users, service_clients CASCADE")
            conn.execute(
                "INSERT INTO organizations (name) SELECT 'Bench ' || g FROM generate_series(1, %s) g", (ORGS,)
            )
            conn.execute(
                "INSERT INTO users (organization_id, email, name, roles) "
                "SELECT o.id, 'u' || g || '@' || o.id || '.bench', 'user', '{learner}' "
                "FROM organizations o, generate_series(1, %s) g",
                (USERS_PER_ORG,),
            )
            conn.execute(
                "INSERT INTO analytics (user_id, organization_id, role, analytics_type, data) "
                "SELECT u.id, u.organization_id, 'learner', t, "
                "jsonb_build_object(CASE t WHEN 'learning_velocity' THEN 'velocity' WHEN 'skill_gap' THEN 'gap' "
                "ELSE t END, round(random()::numeric, 3), 'sessions', (random() * 40)::int, 'window_days', 30) "
                "FROM users u, unnest(%s::text[]) t",
                (list(TYPES),),
            )
            bench_org = conn.execute("SELECT id FROM organizations WHERE name = 'Bench 1'").fetchone()
            assert bench_org is not None
            conn.execute(
                "INSERT INTO users (organization_id, email, name, roles) "
                "SELECT %s, 'spare' || g || '@bench.test', 'spare', '{learner}' FROM generate_series(1, %s) g",
                (bench_org[0], SPARE_USERS),
            )
            conn.execute(
                "INSERT INTO service_clients (client_id, organization_id, scopes) VALUES (%s, %s, '{ingest}')",
                (CLIENT, bench_org[0]),
            )
        conn.execute("VACUUM (ANALYZE) organizations, users, analytics")
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _data(analytics_type: str, rnd: random.Random) -> dict[str, Any]:
    metric = {"learning_velocity": "velocity", "skill_gap": "gap"}.get(analytics_type, analytics_type)
    return {metric: round(rnd.random(), 3), "sessions": rnd.randint(0, 40), "window_days": 30}


class Keys:
    """The bench organization, its users with rows, and its spare users (rows for those are new)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT app.begin_maintenance()")
            row = conn.execute("SELECT id FROM organizations WHERE name = 'Bench 1'").fetchone()
            assert row is not None
            self.org: uuid.UUID = row[0]
            users = conn.execute("SELECT id, name FROM users WHERE organization_id = %s", (self.org,)).fetchall()
        self.existing = [u for u, name in users if name == "user"]
        self.spare = [u for u, name in users if name == "spare"]

    def items(self, rnd: random.Random) -> tuple[list[dict[str, Any]], list[tuple[uuid.UUID, str]]]:
        """500 items as they arrive on the wire, and the new keys among them."""
        old = {(u, rnd.choice(TYPES)) for u in rnd.sample(self.existing, EXISTING)}
        new: set[tuple[uuid.UUID, str]] = set()
        while len(new) < BATCH - EXISTING:
            new.add((rnd.choice(self.spare), rnd.choice(TYPES)))
        keys = [*old, *new]
        rnd.shuffle(keys)
        items = [{"userId": str(u), "role": "learner", "analyticsType": t, "data": _data(t, rnd)} for u, t in keys]
        return items, sorted(new)


def seed_way(conn: psycopg.Connection, org: uuid.UUID, items: list[dict[str, Any]]) -> None:
    """(a) The seed: its three set_config calls, then one upsert statement per row."""
    for name, value in (("app.current_user_id", ""), ("app.current_org_id", str(org)), ("app.current_role", "ingest")):
        conn.execute("SELECT set_config(%s, %s, true)", (name, value))
    for item in items:
        conn.execute(SEED_UPSERT, (item["userId"], org, item["role"], item["analyticsType"], Jsonb(item["data"])))
    conn.commit()


def our_way(database: db.Database, org: uuid.UUID, items: list[dict[str, Any]]) -> None:
    """(b) Ours: validate, open the request transaction with its context, one statement, commit."""
    batch = AnalyticsBatch.model_validate({"items": items})
    with database.transaction(db.as_service(CLIENT, "ingest", org)) as (conn, caller):
        assert caller.organization_id is not None
        rows = [
            SnapshotWrite(i.user_id, caller.organization_id, i.role or "learner", i.analytics_type, i.data)  # type: ignore[arg-type]
            for i in batch.items
        ]
        written = upsert_batch(conn, rows)
    assert len(written) == BATCH


def unbounded_way(database: db.Database, org: uuid.UUID, items: list[dict[str, Any]]) -> None:
    """(b') Ours with the per-field range checks switched off, to measure what they cost."""
    with mock.patch.object(analytics_models, "data_errors", return_value=[]):
        our_way(database, org, items)


def platform_way(database: db.Database, org: uuid.UUID, items: list[dict[str, Any]]) -> None:
    """(b'') A platform's batch as PUT /v1/analytics writes it now: validated from the JSON text
    as it arrives, then one statement (context, upsert, commit)."""
    batch = AnalyticsBatch.model_validate_json(orjson.dumps({"items": items}))
    writes = [(i.user_id, i.role or "learner", i.analytics_type, i.data) for i in batch.items if i.user_id]
    inserted, updated = database.run(lambda conn: upsert_batch_as_service(conn, CLIENT, "ingest", org, writes))
    assert inserted + updated == BATCH


def bare_way(conn: psycopg.Connection, org: uuid.UUID, items: list[dict[str, Any]]) -> None:
    """(c) Bare: the owner in maintenance mode, one INSERT ... SELECT FROM unnest, commit."""
    with conn.pipeline():
        conn.execute("BEGIN")
        conn.execute("SELECT app.begin_maintenance()")
    conn.execute(BARE_UPSERT, (
        [i["userId"] for i in items], [org] * len(items), [i["role"] for i in items],
        [i["analyticsType"] for i in items], [Jsonb(i["data"]) for i in items],
    ))
    conn.execute("COMMIT")


def _cleanup(owner: psycopg.Connection, new: list[tuple[uuid.UUID, str]]) -> None:
    with owner.pipeline():
        owner.execute("BEGIN")
        owner.execute("SELECT app.begin_maintenance()")
        owner.execute(
            "DELETE FROM analytics a USING unnest(%s::uuid[], %s::text[]) AS k(u, t) "
            "WHERE a.user_id = k.u AND a.role = 'learner' AND a.analytics_type = k.t",
            ([u for u, _ in new], [t for _, t in new]),
        )
        owner.execute("COMMIT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="build the 1,000,000-row table again")
    args = parser.parse_args()
    prepare(args.rebuild)

    owner = psycopg.connect(localdb.owner_url(DB), autocommit=True, prepare_threshold=None)
    seed_conn = psycopg.connect(localdb.runtime_url(DB), prepare_threshold=None)
    ours = db.Database("runtime")
    keys = Keys(owner)
    with owner.transaction():
        owner.execute("SELECT app.begin_maintenance()")
        total = owner.execute("SELECT count(*) FROM analytics").fetchone()
    assert total == (ROWS,), total

    ways: dict[str, Callable[[list[dict[str, Any]]], None]] = {
        "seed": lambda items: seed_way(seed_conn, keys.org, items),
        "ours": lambda items: our_way(ours, keys.org, items),
        "ours-unbounded": lambda items: unbounded_way(ours, keys.org, items),
        "platform": lambda items: platform_way(ours, keys.org, items),
        "bare": lambda items: bare_way(owner, keys.org, items),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    rnd = random.Random(8)
    for run in range(args.warmup + args.runs):
        order = list(ways)
        rnd.shuffle(order)
        for name in order:
            items, new = keys.items(rnd)
            started = time.perf_counter()
            ways[name](items)
            elapsed = (time.perf_counter() - started) * 1000
            _cleanup(owner, new)
            if run >= args.warmup:
                times[name].append(elapsed)

    with owner.transaction():
        owner.execute("SELECT app.begin_maintenance()")
        assert owner.execute("SELECT count(*) FROM analytics").fetchone() == (ROWS,)
    seed_conn.close()
    ours.reset()
    owner.close()

    stats = {name: _common.median_p95(values) for name, values in times.items()}
    labels = {
        "seed": "(a) seed: one INSERT ... ON CONFLICT per row, one transaction",
        "ours": "(b) ours: AnalyticsBatch + RLS context + upsert_batch (one statement)",
        "ours-unbounded": "(b') ours without the range checks of ms8.domain.bounds",
        "platform": "(b'') PUT for a platform: validated from the text, one statement (0019)",
        "bare": "(c) bare: one INSERT ... SELECT FROM unnest, owner, no validation/RLS",
    }
    print(f"Batch upsert of {BATCH} analytics items ({EXISTING} existing keys, {BATCH - EXISTING} new, one "
          f"organization) into {ROWS:,} rows; {args.runs} runs each, commit included")
    print(_common.table([
        ["way", "median ms", "p95 ms"],
        *[[labels[n], f"{stats[n][0]:.1f}", f"{stats[n][1]:.1f}"] for n in ways],
    ]))
    speedup = stats["seed"][0] / stats["ours"][0]
    overhead = stats["ours"][0] / stats["bare"][0]
    print()
    print(_common.table([
        ["ratio (medians)", "value", "target", ""],
        ["seed / ours", f"{speedup:.1f}x", ">= 4x", _common.verdict(speedup >= 4)],
        ["ours / bare", f"{overhead:.2f}x", "<= 1.3x", _common.verdict(overhead <= 1.3)],
        ["ours / ours without range checks", f"{stats['ours'][0] / stats['ours-unbounded'][0]:.3f}x", "", ""],
        ["platform, one statement / bare", f"{stats['platform'][0] / stats['bare'][0]:.2f}x", "", ""],
    ]))


if __name__ == "__main__":
    main()
