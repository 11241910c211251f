"""Population rollups at 100 organizations x 90 days (~1,000,000 events) from the learner days,
beside the same rollups computed from the raw events in the same run; and the trainer's learner
list through its handler.

Data (database `ms8_bench_rollups`, built once, reused; --rebuild starts again): 100
organizations x 2,500 learners (5 trainers each, every learner in one of their cohorts of 500),
100 of them active per organization with ~1,000,000 learning events over 90 days, and their
learner days built by the service's own statement (ms8.repositories.days.rebuild). One trainer
of the first organization also has a cohort of 50 active learners, for the learner list.

Timed, for a 90-day backfill (`{"date": today, "days": 90}`: 90 days, 14 weeks, 4 months):

- ours: the rollup job (ms8.jobs.rollups) from the learner days, every organization and every
  trainer cohort (600 populations), first run into an empty table and an unchanged re-run, on one
  connection and with its organizations shared over --connections (default 2:
  ROLLUP_CONNECTIONS);
- raw: the baseline, the same rollups (same figures, organization and cohorts, granularities and
  window) computed straight from learning_events (bench/rollups_raw.py) into a table of the same
  shape; every round asserts that its rows equal the job's, column for column;
- old (unless --no-old): the previous job (bench/rollups_baseline.py: per-type history of active
  learners only, from the raw events, with per-period fingerprints), a smaller computation;
- GET /v1/learners as that trainer (50 learners) through the Lambda handler: p50 and p95.

Each run prints its wall time and the CPU time of the PostgreSQL server meanwhile: every backend
(the job's other connections, parallel and I/O workers too), sampled per process; on a shared
machine the wall time also holds the waits for a core. --busy runs a second data shape, labelled as such, in
a database of its own (`ms8_bench_rollups_busy`): 20 organizations whose 100 active learners have
~12 events on each day of the 90 (~2,200,000 events, ~180,000 learner days), where the default
shape has ~1.4 events on a day with any; it shows how both ways scale with the events per learner
day. The target is judged on the default shape.

    .venv/bin/python bench/bench_rollups.py [--rounds 3] [--requests 200] [--rebuild] [--no-old] [--busy]
                                            [--connections 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NamedTuple

import psycopg
from _common import cpu_seconds, synthetic_events

from local import localdb

ROOT = Path(__file__).resolve().parent.parent

DB = "ms8_bench_rollups"
ORGS = 100
# A second data shape, labelled "busy" wherever printed: 20 organizations whose active learners
# have ~12 events on each day (22 draws), where the default shape has ~1.4 on a day with any.
# The target is judged on the default shape; this one shows how the two ways scale with events
# per learner day. Its own database.
class Shape(NamedTuple):
    db: str
    orgs: int
    draws: int


BUSY = Shape("ms8_bench_rollups_busy", 20, 22)
USERS_PER_ORG = 2_500
TRAINERS_PER_ORG = 5
ACTIVE_PER_ORG = 100
DAYS = 90
LIST_LEARNERS = 50

def fill(orgs: int, draws: int) -> str:
    return f"""
CREATE TABLE bench_meta (as_of date NOT NULL, trainer uuid);
INSERT INTO bench_meta VALUES ((now() AT TIME ZONE 'UTC')::date, NULL);
INSERT INTO organizations (name) SELECT 'bench-' || g FROM generate_series(1, {orgs}) g;
INSERT INTO users (organization_id, email, name, roles)
SELECT o.id, o.name || '-' || lpad(g::text, 5, '0') || '@bench.test', 'user ' || g, '{{learner}}'
FROM organizations o CROSS JOIN generate_series(1, {USERS_PER_ORG}) g;
INSERT INTO users (organization_id, email, name, roles)
SELECT o.id, o.name || '-trainer-' || t || '@bench.test', 'trainer ' || t, '{{trainer}}'
FROM organizations o CROSS JOIN generate_series(1, {TRAINERS_PER_ORG}) t;
-- Learner n of an organization is in the cohort of its trainer number ((n - 1) % 5 + 1).
WITH l AS (SELECT id, organization_id, row_number() OVER (PARTITION BY organization_id ORDER BY email) AS n
           FROM users WHERE roles = '{{learner}}'),
t AS (SELECT id, organization_id, row_number() OVER (PARTITION BY organization_id ORDER BY email) AS n
      FROM users WHERE roles = '{{trainer}}')
INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id)
SELECT l.organization_id, t.id, l.id
FROM l JOIN t ON t.organization_id = l.organization_id AND t.n = (l.n - 1) % {TRAINERS_PER_ORG} + 1;
{synthetic_events(ACTIVE_PER_ORG, DAYS, learners_only=True, draws=draws)}
-- The list's trainer: the first organization's 50 first (active) learners.
WITH o AS (SELECT id FROM organizations ORDER BY name LIMIT 1),
t AS (INSERT INTO users (organization_id, email, name, roles)
      SELECT id, 'list-trainer@bench.test', 'list trainer', '{{trainer}}' FROM o RETURNING id, organization_id)
INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id)
SELECT t.organization_id, t.id, u.id FROM t
JOIN LATERAL (SELECT id FROM users WHERE organization_id = t.organization_id AND roles = '{{learner}}'
              ORDER BY email LIMIT {LIST_LEARNERS}) u ON true;
UPDATE bench_meta SET trainer = (SELECT id FROM users WHERE email = 'list-trainer@bench.test');
"""


NO_AUTOVACUUM = """
DO $$ DECLARE t regclass; BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_class c
             WHERE c.relkind = 'r' AND (c.oid IN (SELECT inhrelid FROM pg_inherits
                                                  WHERE inhparent IN ('population_rollups'::regclass,
                                                                      'aggregated_analytics'::regclass))
                                        OR c.oid IN (to_regclass('app.population_rollup_inputs'),
                                                     to_regclass('bench_raw_rollups'),
                                                     to_regclass('app.rollup_inputs')))
    LOOP
        EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', t);
    END LOOP;
END $$;
"""


def prepare(rebuild: bool, db: str = DB, orgs: int = ORGS, draws: int = 2) -> tuple[str, date, str, int, int]:
    """The bench database, filled once: (owner url, the day its data ends, the list's trainer,
    events, learner days)."""
    localdb.start()
    if rebuild:
        localdb.drop_database(db)
    localdb.bootstrap(db)
    localdb.migrate(db)
    localdb.set_runtime_password()
    url = localdb.owner_url(db)
    os.environ["DATABASE_URL"] = localdb.runtime_url(db)
    os.environ["OWNER_DATABASE_URL"] = url
    from ms8 import config
    from ms8.repositories import days

    config.settings.cache_clear()
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        if conn.execute("SELECT to_regclass('bench_meta')").fetchone() == (None,):
            print("building the bench database (once) ...", flush=True)
            started = time.perf_counter()
            conn.execute(fill(orgs, draws))
            for (org,) in conn.execute("SELECT id FROM organizations").fetchall():
                days.rebuild(conn, org)
            conn.commit()
            print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        # The timed runs write tens of thousands of rows; autovacuum would then analyze them while
        # the next run is timed, and the server's CPU (what is measured) would count it there.
        # Each run starts from tables emptied and vacuumed by hand (_clear) instead.
        import rollups_raw

        conn.execute(rollups_raw.CREATE)  # the baseline's table, so that it is in the list too
        conn.execute(NO_AUTOVACUUM)
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        row = conn.execute("SELECT (SELECT as_of FROM bench_meta), (SELECT trainer::text FROM bench_meta), "
                           "(SELECT count(*) FROM learning_events), (SELECT count(*) FROM learner_daily_activity)"
                           ).fetchone()
        assert row is not None
    return url, row[0], row[1], row[2], row[3]


def _clear(url: str, tables: list[str]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        for table in tables:
            conn.execute(f"DELETE FROM {table}")
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")


def _postmaster() -> int:
    return int((localdb.PGDATA / "postmaster.pid").read_text().split()[0])


def _children() -> list[tuple[int, list[str], str]]:
    """The postmaster's children: (pid, /proc stat fields after the name, command line)."""
    postmaster, out = _postmaster(), []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                out.append((int(proc.name), fields, cmdline))
    return out


# Flush changed pages to disk in the background, whenever they get to it: their CPU would land in
# whichever run they happen to work during. Each timed run starts after a checkpoint instead.
_FLUSHERS = ("postgres: checkpointer", "postgres: background writer")


class ServerCpu:
    """CPU seconds the local PostgreSQL server's processes use while it runs: every child of the
    postmaster (backends, the job's other connections, I/O workers, the WAL writer) but the
    flushers, sampled every 20 ms by pid (a backend that exits is counted up to its last sample;
    the postmaster's count of reaped children would race with the reading)."""

    def __init__(self) -> None:
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self._last.update(cpu_seconds([pid for pid, _, cmd in _children() if not cmd.startswith(_FLUSHERS)]))

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def __enter__(self) -> ServerCpu:
        self._sample()
        self._first = dict(self._last)  # the processes alive at the start count from here, new ones from 0
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(last - self._first.get(pid, 0.0) for pid, last in self._last.items())


def _settle(timeout: float = 10.0) -> None:
    """Until no client backend (nor autovacuum worker) is left and every exited one is reaped:
    a run starts with the server idle and ends when every backend it used has gone."""
    deadline = time.monotonic() + timeout
    while any(f[0] == "Z" or "127.0.0.1(" in cmd or "autovacuum worker" in cmd for _, f, cmd in _children()):
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL backends still open: the server's CPU cannot be told apart")
        time.sleep(0.02)


def _timed(url: str, work) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """One run in its own maintenance transaction, commit included: (seconds, CPU seconds of the
    PostgreSQL server meanwhile, rows written). The CPU is every backend's (the job's other
    connections too), from before its connection opens until every backend it used has exited,
    after a checkpoint: it tells the work apart from the waits for a core on a shared machine."""
    with psycopg.connect(localdb.admin_url(), autocommit=True) as admin:
        admin.execute("CHECKPOINT")
    _settle()
    with ServerCpu() as cpu:
        with psycopg.connect(url) as conn:
            started = time.perf_counter()
            conn.execute("SELECT app.begin_maintenance()")
            written = work(conn)
            conn.commit()
            elapsed = time.perf_counter() - started
        _settle()
    return elapsed, cpu.seconds, written


def _job(connections: int, params):  # type: ignore[no-untyped-def]
    """The rollup job's run with ROLLUP_CONNECTIONS = `connections`."""
    from ms8 import config
    from ms8.jobs import rollups

    def run(conn: psycopg.Connection) -> int:
        os.environ["ROLLUP_CONNECTIONS"] = str(connections)
        config.settings.cache_clear()
        return rollups.roll_up(conn, params).rows_written

    return run


def bench_rollups(url: str, as_of: date, rounds: int, old: bool, connections: int,
                  ) -> dict[str, tuple[float, float, int]]:
    import rollups_baseline
    import rollups_raw

    from ms8.jobs import rollups
    from ms8.jobs.runner import JobInput
    from ms8.repositories.rollups import ROLLUP_VERSION

    spans = rollups.windows(as_of, DAYS)
    params = JobInput(as_of, time_now(), days=DAYS, replay=True)
    degrees = sorted({1, connections})
    runs: dict[str, list[tuple[float, float, int]]] = {
        k: [] for k in ("raw", *(f"{n} {run}" for n in degrees for run in ("first", "again")),
                        *(("old first", "old again") if old else ()))}
    # The partition job no longer keeps the old table's years ahead (nothing but this baseline writes it).
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.ensure_yearly_partition(y) FROM generate_series(%s::int, %s::int) AS y",
                     (min(s for s, _ in spans.values()).year, as_of.year))
    for _ in range(rounds):
        if old:
            _clear(url, ["aggregated_analytics", "app.rollup_inputs"])
            runs["old first"].append(_timed(url, lambda c: rollups_baseline.run(c, spans)))
            runs["old again"].append(_timed(url, lambda c: rollups_baseline.run(c, spans)))
        runs["raw"].append(_timed(url, lambda c: rollups_raw.run(c, spans, ROLLUP_VERSION)))
        for n in degrees:
            job = _job(n, params)
            _clear(url, ["population_rollups", "app.population_rollup_inputs"])
            runs[f"{n} first"].append(_timed(url, job))
            runs[f"{n} again"].append(_timed(url, job))
            with psycopg.connect(url) as conn:
                conn.execute("SELECT app.begin_maintenance()")
                ours, raw, missing, extra = rollups_raw.differences(conn)
            # The job's rows are the raw events' rows, every column (computed_at aside).
            assert ours == raw > 0 and missing == extra == 0, (n, ours, raw, missing, extra)
    return {k: (statistics.median(t for t, _, _ in v), statistics.median(c for _, c, _ in v), v[-1][2])
            for k, v in runs.items()}


def time_now() -> datetime:

    return datetime.now(UTC)


def bench_learner_list(trainer: str, requests: int) -> tuple[float, float, int]:
    from local import apigw, runtime, template

    route = next(r for r in template.routes() if r.route_key == "GET /v1/learners")
    handler = runtime.load_handler(route.function)
    context = runtime.LocalContext(route.function.logical_id, "bench")
    event = apigw.http_event("GET", "/v1/learners", claims=apigw.user_claims(trainer), route=route,
                             headers={"x-active-role": "trainer"})
    times = []
    items = 0
    for n in range(requests + 5):
        started = time.perf_counter()
        response = handler(event, context)
        elapsed = time.perf_counter() - started
        assert response["statusCode"] == 200, response
        if n >= 5:  # warm-up
            times.append(elapsed)
        items = len(apigw.json_body(response)["items"])
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], items


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--no-old", action="store_true", help="leave out the previous job")
    parser.add_argument("--connections", type=int, default=2,
                        help="the job is also run with ROLLUP_CONNECTIONS set to this (beside 1)")
    parser.add_argument("--busy", action="store_true",
                        help="the second data shape: 20 organizations, ~12 events per active learner day")
    args = parser.parse_args()
    shape = BUSY if args.busy else Shape(DB, ORGS, 2)
    url, as_of, trainer, events, days = prepare(args.rebuild, *shape)
    r = bench_rollups(url, as_of, args.rounds, not args.no_old, args.connections)
    raw, raw_cpu, _ = r["raw"]
    label = "BUSY data shape (not the target's): " if args.busy else ""
    print(f"\n{label}Rollups, 90-day backfill, {shape[1]} organizations, {events:,} events ({days:,} learner days); "
          f"median of {args.rounds} rounds; the job's rows equal the raw events' ({r['1 first'][2]:,} rows) "
          f"with every number of connections; cpu s: the PostgreSQL server's (every backend)")
    print(f"{'work':<56} {'seconds':>8} {'raw/this':>9} {'cpu s':>7} {'raw/this':>9}  rows written")
    names = {"raw": "raw: same rollups from learning_events (baseline)"}
    for n in sorted({1, args.connections}):
        conns = "1 connection" if n == 1 else f"{n} connections (ROLLUP_CONNECTIONS={n})"
        names[f"{n} first"] = f"job, {conns}: first run (empty tables)"
        names[f"{n} again"] = f"job, {conns}: unchanged re-run"
    names |= {"old first": "previous job (active learners per type), first run",
              "old again": "previous job, unchanged re-run"}
    for key, name in names.items():
        if key in r:
            seconds, cpu, rows = r[key]
            print(f"{name:<56} {seconds:>8.2f} {raw / seconds:>9.2f} {cpu:>7.2f} {raw_cpu / max(cpu, 0.01):>9.2f}"
                  f"  {rows:,}")
    print(f"load average after the rollups: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(flush=True)
    p50, p95, listed = bench_learner_list(trainer, args.requests)
    print(f"\nGET /v1/learners as a trainer with {listed} learners, through the handler, {args.requests} requests:"
          f" p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
