"""Population rollups into yearly partitions beside the plain table, in the same run; the bytes per
row of the rollups and the learner days; and the partition job's deletion of old learner days.

Two scratch databases with the same generated data (seeded), both migrated to head: one as it is
(population_rollups partitioned), one with population_rollups made again as the plain table it was
before migration 0014 (that migration's own definition: columns, keys, index, policies), so that
both run the head's rollup statement. The data is analyzed before anything is timed, as
autovacuum would have done before a nightly run. 20 organizations x 200 learners
and 5 trainers (every learner in a cohort), 30 % of learners active a day over four months
(2 completions, 2 scored assessments with one skill, an hour a day). Timed there: the rollups of
those months (daily, weekly, monthly; every organization and cohort) into an empty table, median
of --rounds. Then, in the partitioned database, 1,000 organizations x 30 learners with 10 days
past the 7 years each (300,000 rows, about a day's worth at 1,000,000 learners) and 10 inside:
the partition job's deletion (ms8.repositories.days.delete_before as the job calls it), commit
included.

    .venv/bin/python bench/bench_retention.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from datetime import date
from pathlib import Path

import psycopg

from local import localdb
from ms8.domain.vocabulary import Granularity

FIRST, END = date(2026, 8, 1), date(2026, 12, 1)
SPANS: dict[Granularity, tuple[date, date]] = {
    "daily": (FIRST, END), "weekly": (date(2026, 8, 3), date(2026, 11, 30)), "monthly": (FIRST, END)}

POPULATION = """
SELECT setseed(0.42);
INSERT INTO organizations (id, name) SELECT gen_random_uuid(), 'org ' || g FROM generate_series(1, 20) g;
INSERT INTO users (id, organization_id, email, name, roles)
SELECT gen_random_uuid(), o.id, o.name || '-' || g || '@bench.test', 'l', '{learner}'
FROM organizations o, generate_series(1, 200) g;
INSERT INTO users (id, organization_id, email, name, roles)
SELECT gen_random_uuid(), o.id, o.name || '-t' || g || '@bench.test', 't', '{trainer}'
FROM organizations o, generate_series(1, 5) g;
INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id)
SELECT l.organization_id, t.id, l.id
FROM (SELECT id, organization_id, row_number() OVER (PARTITION BY organization_id ORDER BY email) %% 5 AS k
      FROM users WHERE roles = '{learner}') l
JOIN (SELECT id, organization_id, row_number() OVER (PARTITION BY organization_id ORDER BY email) %% 5 AS k
      FROM users WHERE roles = '{trainer}') t USING (organization_id, k);
INSERT INTO learner_daily_activity (organization_id, user_id, day, events, completions, completed_objects,
    assessments, scored, score_micros, passed, duration_seconds, sessions, skills, last_at)
SELECT u.organization_id, u.id, d::date, 20, 2,
       ARRAY['course-' || (random() * 50)::int, 'module-' || (random() * 50)::int],
       2, 2, (random() * 2000000)::bigint, 1, 3600, 3, jsonb_build_object('sql', jsonb_build_array(2, 1500000)),
       d + interval '15 hours'
FROM users u CROSS JOIN generate_series(%(first)s::date, %(end)s::date - 1, interval '1 day') d
WHERE 'learner' = ANY (u.roles) AND random() < 0.3;
"""

OLD_DAYS = """
INSERT INTO organizations (id, name) SELECT gen_random_uuid(), 'old ' || g FROM generate_series(1, 1000) g;
INSERT INTO users (id, organization_id, email, name, roles)
SELECT gen_random_uuid(), o.id, o.name || '-' || g || '@bench.test', 'l', '{learner}'
FROM organizations o, generate_series(1, 30) g WHERE o.name LIKE 'old %%';
INSERT INTO learner_daily_activity (organization_id, user_id, day, events, completions, completed_objects,
    assessments, scored, score_micros, passed, duration_seconds, sessions, skills, last_at)
SELECT u.organization_id, u.id, d::date, 20, 2, ARRAY['course-1', 'course-2'], 2, 2, 1500000, 1, 3600, 3,
       '{"sql": [2, 1500000]}', d
FROM users u JOIN organizations o ON o.id = u.organization_id AND o.name LIKE 'old %%'
CROSS JOIN (SELECT generate_series(%(cut)s::date - 14, %(cut)s::date - 5, interval '1 day')
            UNION ALL SELECT generate_series(%(cut)s::date, %(cut)s::date + 9, interval '1 day')) s(d);
"""


def _maintenance(url: str, statement: str, params: dict[str, object]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        for part in filter(str.strip, statement.split(";\n")):  # parameters: one statement at a time
            conn.execute(part, {k: v for k, v in params.items() if f"%({k})s" in part})


PARTITIONING = (Path(__file__).resolve().parent.parent / "migrations" / "versions"
                / "0014_partitioned_population_rollups.py")


def _plain_rollups_table(url: str) -> None:
    """population_rollups made again as a plain table, as migration 0014's downgrade makes it."""
    spec = importlib.util.spec_from_file_location("partitioning", PARTITIONING)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with psycopg.connect(url) as conn:
        for statement in (migration.PARK, f"CREATE TABLE population_rollups ({migration.COLUMNS});",
                          migration.COMMENTS, migration.UNPARK, migration.SECURITY):
            conn.execute(statement)


def _rollups(url: str) -> tuple[float, int]:
    from ms8.repositories import rollups

    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        conn.execute("DELETE FROM population_rollups")
        conn.commit()
        conn.execute("SELECT app.begin_maintenance()")
        started = time.perf_counter()
        written = sum(rollups.rollup(conn, g, s, e).written for g, (s, e) in SPANS.items())
        conn.commit()
        return time.perf_counter() - started, written


def _bytes_per_row(url: str, table: str) -> tuple[int, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM (FULL, ANALYZE) {table}")  # the rounds' deletes leave space behind
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        size = conn.execute(
            "SELECT pg_total_relation_size(%s::regclass) + coalesce(sum(pg_total_relation_size(inhrelid)), 0) "
            "FROM pg_inherits WHERE inhparent = %s::regclass", (table, table)).fetchone()
        assert row is not None and size is not None
        return int(row[0]), int(size[0]) / int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    localdb.start()
    names = {"partitioned": "ms8_bench_retention_parts", "plain": "ms8_bench_retention_plain"}
    try:
        for kind, name in names.items():
            localdb.drop_database(name)
            localdb.bootstrap(name)
            localdb.migrate(name)
            if kind == "plain":
                _plain_rollups_table(localdb.owner_url(name))
            _maintenance(localdb.owner_url(name), POPULATION, {"first": FIRST, "end": END})
            with psycopg.connect(localdb.owner_url(name), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
        times: dict[str, list[float]] = {k: [] for k in names}
        rows: dict[str, int] = {}
        for _ in range(args.rounds):
            for kind, name in names.items():  # alternating, so that load drift hits both
                seconds, rows[kind] = _rollups(localdb.owner_url(name))
                times[kind].append(seconds)
        print(f"{'rollups, 20 orgs x 6 populations x 4 months':48} {'median s':>9} {'rows':>7}")
        for kind in names:
            print(f"{kind:48} {statistics.median(times[kind]):9.3f} {rows[kind]:7}")
        ratio = statistics.median(times["partitioned"]) / statistics.median(times["plain"])
        print(f"partitioned / plain: {ratio:.2f}")
        url = localdb.owner_url(names["partitioned"])
        for kind, table in (("partitioned", "population_rollups"), ("plain", "population_rollups"),
                            ("partitioned", "learner_daily_activity")):
            n, per_row = _bytes_per_row(localdb.owner_url(names[kind]), table)
            print(f"{table} ({kind}): {n} rows, {per_row:.0f} B/row (rows + indexes)")

        from ms8.jobs import partitions
        from ms8.repositories import days

        cut = partitions.cutoffs(date.today(), partitions.DEFAULT_EVENTS_RETENTION_MONTHS)[0]
        _maintenance(url, OLD_DAYS, {"cut": cut})
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE learner_daily_activity")
        with psycopg.connect(url) as conn:
            conn.execute("SELECT app.begin_maintenance()")
            started = time.perf_counter()
            deleted, more = days.delete_before(conn, cut, batch=partitions.LEARNER_DAYS_BATCH,
                                               batches=partitions.LEARNER_DAYS_BATCHES)
            conn.commit()
            print(f"learner days past retention deleted: {deleted} in {time.perf_counter() - started:.2f} s "
                  f"(commit included; more left: {more})")
    finally:
        for name in names.values():
            localdb.drop_database(name)


if __name__ == "__main__":
    main()
