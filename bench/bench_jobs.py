"""Scheduled jobs: the comparison refresh at 1,000,000 analytics rows beside the seed's view. (The
rollup job has its own benchmark, bench_rollups.py, beside its previous version.)

Both views are refreshed CONCURRENTLY over the same data in the same database, alternately, and
the medians compared (absolute times move between runs on a shared machine; the ratio holds).
The original database design's view (the one this service grew from; its SQL is kept in this file) is created as `seed_comparison_aggregates`.

The database `ms8_bench_jobs` is built once (100 organizations x 2,500 learners, 4 analytics
rows each; 10,000 of them active with ~1,000,000 learning events over 90 days) and reused;
--rebuild starts it again.

    .venv/bin/python bench/bench_jobs.py [--rounds 5] [--rebuild]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date
from pathlib import Path

import psycopg
from _common import synthetic_events

from local import localdb

ROOT = Path(__file__).resolve().parent.parent


DB = "ms8_bench_jobs"
ORGS = 100
USERS_PER_ORG = 2_500  # x 4 analytics types = 1,000,000 analytics rows
ACTIVE_PER_ORG = 100  # learners with events: 10,000
DAYS = 90

SEED_VIEW = """
CREATE MATERIALIZED VIEW IF NOT EXISTS seed_comparison_aggregates AS
SELECT
  organization_id,
  role,
  analytics_type,
  COUNT(DISTINCT user_id) as user_count,
  AVG((data->>'velocity')::numeric) as avg_velocity,
  AVG((data->>'engagement')::numeric) as avg_engagement,
  AVG((data->>'mastery')::numeric) as avg_mastery
FROM analytics
WHERE updated_at > NOW() - INTERVAL '7 days'
GROUP BY organization_id, role, analytics_type
HAVING COUNT(DISTINCT user_id) >= 10
WITH NO DATA;
CREATE UNIQUE INDEX IF NOT EXISTS seed_comparison_aggregates_key
    ON seed_comparison_aggregates (organization_id, role, analytics_type);
"""

FILL = f"""
CREATE TABLE bench_meta (as_of date NOT NULL);
INSERT INTO bench_meta VALUES ((now() AT TIME ZONE 'UTC')::date);
INSERT INTO organizations (name) SELECT 'bench-' || g FROM generate_series(1, {ORGS}) g;
INSERT INTO users (organization_id, email, name, roles)
SELECT o.id, o.name || '-' || g || '@bench.test', 'user ' || g,
       CASE WHEN g % 50 = 0 THEN '{{learner,trainer}}'::text[] ELSE '{{learner}}' END
FROM organizations o CROSS JOIN generate_series(1, {USERS_PER_ORG}) g;
-- Snapshots shaped like computed ones, updated over the last 10 days (7 of them count).
INSERT INTO analytics (user_id, organization_id, role, analytics_type, data, source, definition_version,
                       window_days, updated_at)
SELECT u.id, u.organization_id, 'learner', t.type,
       jsonb_build_object(t.key, round((random() * t.scale)::numeric, 4), 'trend', round(random()::numeric, 3),
                          'windowDays', 28, 'sessions', (random() * 40)::int),
       'computed', 1, 28, now() - random() * interval '10 days'
FROM users u
CROSS JOIN (VALUES ('learning_velocity', 'velocity', 5), ('engagement', 'engagement', 1),
                   ('mastery', 'mastery', 1), ('skill_gap', 'gap', 1)) AS t(type, key, scale);
-- ~1,000,000 events for the first {ACTIVE_PER_ORG} learners of each organization, {DAYS} days.
{synthetic_events(ACTIVE_PER_ORG, DAYS, learners_only=False)}
"""


def prepare(rebuild: bool) -> tuple[str, date, int, int]:
    """The bench database, filled once; (owner url, the day its data ends, analytics, events)."""
    localdb.start()
    if rebuild:
        localdb.drop_database(DB)
    localdb.bootstrap(DB)
    localdb.migrate(DB)
    localdb.set_runtime_password()
    url = localdb.owner_url(DB)
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        if conn.execute("SELECT to_regclass('bench_meta')").fetchone() == (None,):
            print("building the bench database (once) ...", flush=True)
            started = time.perf_counter()
            conn.execute(FILL)
            conn.commit()
            print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
            conn.execute("SELECT app.begin_maintenance()")
        conn.execute(SEED_VIEW)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        row = conn.execute("SELECT (SELECT as_of FROM bench_meta), (SELECT count(*) FROM analytics), "
                           "(SELECT count(*) FROM learning_events)").fetchone()
        assert row is not None
    return url, row[0], row[1], row[2]


def refresh(url: str, view: str, concurrently: bool = True) -> float:
    """One refresh in its own transaction, commit included; seconds."""
    mode = "CONCURRENTLY " if concurrently else ""
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        conn.execute("SELECT app.begin_maintenance()")
        conn.execute(f"REFRESH MATERIALIZED VIEW {mode}{view}")
        conn.commit()
        return time.perf_counter() - started


def bench_refresh(url: str, rounds: int) -> tuple[float, float, int, int]:
    for view in ("comparison_aggregates", "seed_comparison_aggregates"):
        refresh(url, view, concurrently=False)  # populate (and warm the cache)
    ours: list[float] = []
    seed: list[float] = []
    for _ in range(rounds):
        ours.append(refresh(url, "comparison_aggregates"))
        seed.append(refresh(url, "seed_comparison_aggregates"))
    with psycopg.connect(url) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM comparison_aggregates), "
                              "(SELECT count(*) FROM seed_comparison_aggregates)").fetchone()
        assert counts is not None
    return statistics.median(ours), statistics.median(seed), counts[0], counts[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    url, _, analytics, _ = prepare(args.rebuild)
    ours, seed, ours_rows, seed_rows = bench_refresh(url, args.rounds)

    print(f"\nScheduled jobs, median of {args.rounds} refreshes")
    print(f"{'work':<58} {'ours':>9} {'baseline':>9} {'ratio':>7}  target")
    print(f"{f'comparison refresh CONCURRENTLY, {analytics:,} analytics rows':<58} "
          f"{ours:>8.2f}s {seed:>8.2f}s {ours / seed:>7.2f}  <= 1.00 (baseline: the seed's view)")
    print(f"{f'  view rows: ours {ours_rows}, seed {seed_rows}':<58}")


if __name__ == "__main__":
    main()
