"""Reports for a year of daily data: each format, rendered alone and generated end to end.

- render: `ms8.renderers.render` of 365 days: a personal report with all four analytics types
  (series built from a year of per-day event sums, snapshots, peer comparison), a cohort report
  (50 learners' rows, the at-risk list, 12 monthly rollups with charts) and an organization
  report (12 monthly rollups, 10 cohorts, 100 learners at risk); names in Latin extended, so the
  embedded fonts are subset into every PDF; pure CPU, median and max of --runs after one warm-up.
- end to end: POST /v1/reports through the create_report handler, as a learner with a year of
  learning events (sessions, completions and assessments on about 70 % of the days, drawn apart
  from the render rows), as the trainer of a cohort of 50 learners (150 events each over the
  year, their learner days and the year's rollups written as ingest and the rollup job would)
  and as the org admin, in the database
  `ms8_bench_reports` (rebuilt each run), S3 being moto's server on 127.0.0.1: request
  transaction, gathering under RLS, rendering, upload, recorded link; median of --runs.
- memory: per format, a fresh interpreter loads the create_report handler, generates the
  learner's year once end to end and reports its peak RSS (VmHWM): the function's whole
  footprint (Python, Powertools, psycopg, boto3, the format's library, the file).

Targets (docs/PERFORMANCE.md): PDF <= 3 s, Excel <= 1 s, CSV and JSON <= 0.3 s per report; the report
function below 512 MB peak RSS. There is no baseline to compare with.

    .venv/bin/python bench/bench_reports.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _common

if TYPE_CHECKING:
    from ms8.renderers.document import ReportFormat

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

DB = "ms8_bench_reports"
BUCKET = "ms8-bench-reports"
FORMATS: tuple[ReportFormat, ...] = ("pdf", "excel", "csv", "json")
TARGET_S = {"pdf": 3.0, "excel": 1.0, "csv": 0.3, "json": 0.3}
RSS_TARGET_MB = 512
TYPES = ["learning_velocity", "engagement", "mastery", "skill_gap"]
END = datetime.now(UTC).date() - timedelta(days=1)
START = END - timedelta(days=364)  # 365 days
ORG = uuid.uuid5(uuid.NAMESPACE_URL, "ms8-bench-reports/org")
LEARNER = uuid.uuid5(uuid.NAMESPACE_URL, "ms8-bench-reports/learner")
ADMIN = uuid.uuid5(uuid.NAMESPACE_URL, "ms8-bench-reports/admin")
TRAINER = uuid.uuid5(uuid.NAMESPACE_URL, "ms8-bench-reports/trainer")
COHORT = 50  # the trainer's learners, LEARNER among them
OTHERS = [uuid.uuid5(uuid.NAMESPACE_URL, f"ms8-bench-reports/learner-{i}") for i in range(1, COHORT)]
KINDS = (("personal", "LEARNER"), ("cohort", "TRAINER"), ("organization", "ADMIN"))


# --- data ---

def year_of_reports() -> dict[str, Any]:
    """A personal and an organization ReportData of 365 days (synthetic, fixed seed)."""
    from ms8.renderers.document import PeerComparison, ReportData, Snapshot
    from ms8.renderers.series import DaySums, SkillDay, personal_series

    rnd = random.Random(6)
    sums, skills = [], []
    for i in range(-89, 365):
        day = START + timedelta(days=i)
        if rnd.random() < 0.7:
            scored = rnd.randint(0, 2)
            completed = frozenset(f"course-{rnd.randint(1, 60)}" for _ in range(rnd.randint(0, 2)))
            sums.append(DaySums(day, rnd.randint(1, 6), completed, rnd.randint(1, 3), rnd.uniform(5, 90),
                                sum(rnd.uniform(0.4, 1) for _ in range(scored)), scored))
            skills += [SkillDay(day, rnd.choice(["sql", "python", "stats"]), rnd.uniform(0.4, 1), 1)
                       for _ in range(scored)]
    now = datetime.now(UTC)
    personal = ReportData(
        uuid.uuid4(), "personal", ORG, "Bench Org", LEARNER, "Bench Learner", "learner", START, END, "UTC", now,
        personal_series(TYPES, START, END, sums, skills, {"sql": 0.8, "python": 0.7, "stats": 0.6}),
        snapshots=tuple(Snapshot(t, "m", {"m": 0.5}, now) for t in TYPES),
        comparison=tuple(PeerComparison(t, "m", 0.5, True, 25, 0.45, 0.3, 0.5, 0.6) for t in TYPES),
    )
    cohort, organization = population_reports(now, rnd)
    return {"personal": personal, "cohort": cohort, "organization": organization}


def population_reports(now: datetime, rnd: random.Random) -> tuple[Any, Any]:
    """A year's cohort report (50 learners) and organization report (10 cohorts, 100 learners at
    risk), from the same models the API answers; the year's rollups are monthly."""
    from ms8.renderers import population as tables
    from ms8.renderers.document import ReportData
    from ms8.schemas.aggregates import Rollup
    from ms8.schemas.learners import CohortSummary, LearnerMetrics, LearnerRow, LearnerTrend, RiskReason

    def learner(i: int) -> LearnerRow:
        reasons = [RiskReason(code="inactive", message=f"no activity for {i % 20} days")] if i % 3 == 0 else []
        return LearnerRow(
            user_id=uuid.uuid4(), display_name=f"Learner Łódź {i:03d}", email=f"l{i}@bench.example",
            last_activity_at=now - timedelta(days=i % 20),
            metrics=LearnerMetrics(velocity=rnd.uniform(0, 5), engagement=rnd.random(), mastery=rnd.random(),
                                   skill_gap=rnd.random() / 3),
            trend=LearnerTrend(velocity=rnd.uniform(-2, 2), previous_velocity=rnd.uniform(0, 5)),
            at_risk=bool(reasons), risk_reasons=reasons,
        )

    months = []
    first = START.replace(day=1)
    for k in range(12):
        start = (first + timedelta(days=32 * k)).replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        months.append(Rollup(
            scope="cohort", trainer_id=TRAINER, granularity="monthly", period_start=start, period_end=end,
            days=(end - start).days, learners=COHORT, active_learners=rnd.randint(10, COHORT),
            active_share=rnd.random(), completions=rnd.randint(50, 400), velocity=rnd.uniform(0.5, 3),
            assessments=rnd.randint(20, 200), mean_score=rnd.random(), minutes_per_active_learner=rnd.uniform(30, 600),
            distribution=None,
        ))
    rows = [learner(i) for i in range(COHORT)]
    cohort = ReportData(
        uuid.uuid4(), "cohort", ORG, "Bench Org", TRAINER, "Bench Trainer", "trainer", START, END, "UTC", now, (),
        subject=f"Cohort of Bench Trainer ({COHORT} learners)",
        tables=(tables.learners_table(rows), tables.at_risk_table(rows),
                tables.trends_table(months, "monthly", "cohort's learners")),
    )
    summaries = [CohortSummary(trainer_id=uuid.uuid4(), display_name=f"Trainer {i}", learners=50, at_risk=i,
                               active_share=rnd.random()) for i in range(10)]
    at_risk = [learner(3 * i) for i in range(100)]
    organization = ReportData(
        uuid.uuid4(), "organization", ORG, "Bench Org", ADMIN, "Bench Admin", "org_admin", START, END, "UTC", now,
        (), subject="All learners of the organization (500)",
        tables=(tables.trends_table(months, "monthly", "organization's learners"),
                tables.cohorts_table(summaries, 0), tables.at_risk_table(at_risk)),
    )
    return cohort, organization


def build_database() -> None:
    import psycopg

    from local import localdb
    from ms8.jobs.rollups import roll_up
    from ms8.jobs.runner import JobInput
    from ms8.repositories import days

    _common.migrated_database(DB, fresh=True)
    rnd = random.Random(6)
    events: list[tuple[Any, ...]] = []
    for i in range(-29, 365):  # events are kept 13 months: the partitions go no further back
        day = START + timedelta(days=i)
        if rnd.random() < 0.7:
            at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
            events.append((uuid.uuid4(), "session", "s", None, [], rnd.randint(300, 5400), at))
            events += [(uuid.uuid4(), "completed", f"course-{rnd.randint(1, 60)}", None, [], None, at)
                       for _ in range(rnd.randint(0, 2))]
            if rnd.random() < 0.5:
                events.append((uuid.uuid4(), "passed", "quiz", rnd.uniform(0.4, 1), [rnd.choice(["sql", "python"])],
                               None, at))
    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Bench Org')", (ORG,))
        conn.execute(
            "INSERT INTO users (id, organization_id, email, name, roles) VALUES "
            "(%s, %s, 'learner@bench.example', 'Bench Learner', '{learner}'), "
            "(%s, %s, 'admin@bench.example', 'Bench Admin', '{org_admin}')", (LEARNER, ORG, ADMIN, ORG))
        conn.execute("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES "
                     "(%s, 'sql', 0.8), (%s, 'python', 0.7)", (ORG, ORG))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, "
                "score, skills, duration_seconds, occurred_at) VALUES (%s, %s, %s, %s, %s, 'course', %s, %s, %s, %s)",
                [(e[0], LEARNER, ORG, *e[1:]) for e in events])
        for t in TYPES:
            conn.execute("INSERT INTO analytics (user_id, organization_id, role, analytics_type, data) "
                         "VALUES (%s, %s, 'learner', %s, %s::jsonb)", (LEARNER, ORG, t, json.dumps({"v": 0.5})))
        # The trainer's cohort of 50 and their year of activity (a few events a week each).
        conn.execute("INSERT INTO users (id, organization_id, email, name, roles) VALUES "
                     "(%s, %s, 'trainer@bench.example', 'Bench Trainer', '{trainer}')", (TRAINER, ORG))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO users (id, organization_id, email, name, roles) "
                            "VALUES (%s, %s, %s, %s, '{learner}')",
                            [(u, ORG, f"l{i}@bench.example", f"Łearner {i}") for i, u in enumerate(OTHERS)])
            cur.executemany("INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id) "
                            "VALUES (%s, %s, %s)", [(ORG, TRAINER, u) for u in [LEARNER, *OTHERS]])
            others: list[tuple[Any, ...]] = []
            for u in OTHERS:
                for _ in range(150):
                    day = START + timedelta(days=rnd.randint(-29, 364))
                    at = datetime(day.year, day.month, day.day, rnd.randint(6, 20), tzinfo=UTC)
                    verb = rnd.choice(["completed", "completed", "session", "passed", "failed"])
                    score = rnd.uniform(0.3, 1) if verb in ("passed", "failed") else None
                    others.append((uuid.uuid4(), u, ORG, verb, f"course-{rnd.randint(1, 80)}", score,
                                   ["sql"] if score is not None else [], rnd.randint(60, 3600), at))
            cur.executemany(
                "INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, "
                "score, skills, duration_seconds, occurred_at) VALUES (%s, %s, %s, %s, %s, 'course', %s, %s, %s, %s)",
                others)
        events += others
        # The learner days ingest would have kept (its own statement over every stored event),
        # then the nightly rollups of the year.
        days.rebuild(conn, ORG)
        today = datetime.now(UTC).date()
        roll_up(conn, JobInput(today, datetime.combine(today, datetime.min.time(), UTC), days=400, replay=True))
    print(f"database {DB}: {len(events)} learning events over 394 days", file=sys.stderr)


def use_database_and_s3(endpoint: str) -> None:
    """The functions' environment on the bench database and the bench's S3 server, set the one way
    the local stack sets it (local.stack.apply_function_env: settings read again afterwards; set
    by hand, the settings read while the data was built kept the default bucket and no endpoint)."""
    from local import stack

    os.environ["REPORTS_BUCKET"] = BUCKET
    stack.apply_function_env(endpoint, db=DB)


def post_report(fmt: str, user: uuid.UUID) -> dict[str, Any]:
    from local import apigw, runtime, template

    route = next(r for r in template.routes() if r.route_key == "POST /v1/reports")
    event = apigw.http_event("POST", "/v1/reports", claims=apigw.user_claims(str(user)), route=route,
                             headers={"content-type": "application/json"},
                             body=json.dumps({"format": fmt, "from": START.isoformat(), "to": END.isoformat()}))
    response = runtime.invoke(route.function, event)
    if response["statusCode"] != 201:
        raise RuntimeError(f"POST /v1/reports answered {response['statusCode']}: {response['body']}")
    return apigw.json_body(response)  # type: ignore[no-any-return]


def timed(work: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    result = work()  # warm-up: imports, connections, caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        samples.append(time.perf_counter() - started)
    return samples, result


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec from
    the forked copy of the parent, so a child would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(fmt: str, endpoint: str) -> None:
    """Fresh interpreter: one end-to-end generation, then the peak RSS in MB on stdout."""
    use_database_and_s3(endpoint)
    report = post_report(fmt, LEARNER)
    print(json.dumps({"peakMb": peak_rss_mb(), "size": report["sizeBytes"]}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--child", choices=FORMATS)
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.endpoint)
        return

    from ms8.renderers import render

    reports = year_of_reports()
    rendered: dict[tuple[str, str], tuple[list[float], int]] = {}
    for fmt in FORMATS:
        for kind, data in reports.items():
            samples, body = timed(partial(render, data, fmt), args.runs)
            rendered[(fmt, kind)] = (samples, len(body))

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the local S3 server's access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        build_database()
        use_database_and_s3(endpoint)
        e2e: dict[tuple[str, str], list[float]] = {}
        for fmt in FORMATS:
            for kind, user in ((k, globals()[name]) for k, name in KINDS):
                e2e[(fmt, kind)] = timed(partial(post_report, fmt, user), args.runs)[0]
        rss: dict[str, float] = {}
        for fmt in FORMATS:
            out = subprocess.run(
                [sys.executable, __file__, "--child", fmt, "--endpoint", endpoint],
                check=True, capture_output=True, text=True, cwd=_common.ROOT,
            ).stdout
            rss[fmt] = json.loads(out.strip().splitlines()[-1])["peakMb"]
    finally:
        server.stop()

    rows = [["format", "report", "size", "render median", "render max", "end to end median", "target",
             "verdict", "peak RSS (fresh process)", "RSS target", "verdict"]]
    for fmt in FORMATS:
        for kind, _ in KINDS:
            samples, size = rendered[(fmt, kind)]
            total = statistics.median(e2e[(fmt, kind)])
            ok = max(statistics.median(samples), total) <= TARGET_S[fmt]
            memory = rss[fmt] if kind == "personal" else None
            rows.append([
                fmt, kind, f"{size / 1024:.0f} KB", f"{statistics.median(samples):.3f} s", f"{max(samples):.3f} s",
                f"{total:.3f} s", f"<= {TARGET_S[fmt]} s", "met" if ok else "MISSED",
                f"{memory:.1f} MB" if memory is not None else "", f"< {RSS_TARGET_MB} MB" if memory else "",
                ("met" if memory < RSS_TARGET_MB else "MISSED") if memory is not None else "",
            ])
    print(f"Reports for a year of daily data ({START} to {END}, 365 days, 4 analytics types); "
          f"{args.runs} runs after a warm-up")
    print(_common.table(rows))
    from local import localdb

    localdb.drop_database(DB)


if __name__ == "__main__":
    main()
