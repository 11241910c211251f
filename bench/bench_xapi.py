"""xAPI statements over HTTP: 1,000-statement batches POSTed to /xapi/statements through the local
gateway, stored in PostgreSQL with their learning events and the learners' days (what the trainer's
views and the rollups read), beside a Python LRS writing to a flat file, in the same run. The
learners are noted for the refresh job, which brings their snapshots, points and gamification up
to date within a minute on AWS; the bench runs it after the batches and prints its time apart.

The baseline is Ralph (PyPI `ralph-malph`, its `fs` backend: statements appended to a file),
installed by this bench into a throwaway virtual environment (not a project dependency) and
served by uvicorn with one worker. When it cannot be installed the bench
says so and compares with 5,800 statements/s, Ralph's pace measured on this kind of machine.

Both get the same kind of statements (Moodle-like shapes: account or mbox actors, ADL and TinCan
verbs, scores, durations, context activities, each with its own id), one batch at a time over one
keep-alive connection each, to one server worker each, taking turns batch by batch so that the
load of a shared machine weighs on both alike. statements/s = 1,000 / the mean batch time. The bench database (`ms8_bench_xapi`):
one organization per batch shape (`--learners`, default 10 and 100: the learners each batch of
that shape is spread over; every batch has learners of its own), a
credential each.

    .venv/bin/python bench/bench_xapi.py [--batches 15] [--learners 10,100] [--workers 1] [--no-ralph]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import cpu_seconds, median_p95, migrated_database, table, verdict

DB = "ms8_bench_xapi"
BATCH = 1000
RALPH_VERSION = "5.1.0"
REQUESTS_VERSION = "2.34.2"  # Ralph imports it (OIDC) without declaring it for these extras
RALPH_FALLBACK = 5800.0  # statements/s, Ralph's fs backend on this kind of machine
HOME = "https://moodle.bench.example"
VERBS = [
    ("http://adlnet.gov/expapi/verbs/completed", "completed"), ("http://adlnet.gov/expapi/verbs/passed", "passed"),
    ("http://adlnet.gov/expapi/verbs/failed", "failed"), ("http://adlnet.gov/expapi/verbs/answered", "answered"),
    ("http://adlnet.gov/expapi/verbs/attempted", "attempted"), ("http://id.tincanapi.com/verb/viewed", "viewed"),
    ("http://adlnet.gov/expapi/verbs/experienced", "experienced"),
]


def statements(learners: list[tuple[uuid.UUID, str]], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` statements spread over the learners, in the shapes Moodle sends."""
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        user_id, email = learners[(i + seed) % len(learners)]
        verb_id, verb = VERBS[(i * 7 + seed) % len(VERBS)]
        actor: dict[str, Any] = ({"objectType": "Agent", "name": "Learner", "mbox": f"mailto:{email}"} if i % 2
                                 else {"objectType": "Agent", "name": "Learner",
                                       "account": {"homePage": HOME, "name": str(user_id)}})
        st: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "actor": actor,
            "verb": {"id": verb_id, "display": {"en": verb}},
            "object": {"id": f"{HOME}/mod/quiz/view.php?id={(i * 13 + seed) % 400}",
                       "definition": {"type": "http://adlnet.gov/expapi/activities/assessment",
                                      "name": {"en": f"Quiz {i % 400}"}}},
            "timestamp": (now - timedelta(minutes=(i % 600))).isoformat(),
            "context": {"platform": "Moodle", "language": "en", "contextActivities": {
                "grouping": [{"id": f"{HOME}/course/view.php?id={i % 20}",
                              "definition": {"type": "http://id.tincanapi.com/activitytype/lms/course",
                                             "name": {"en": f"Course {i % 20}"}}}],
                "category": [{"id": f"https://skills.bench.example/{i % 8}", "definition": {"name": {"en": f"skill-{i % 8}"}}}],
            }},
        }
        if verb in ("passed", "failed", "answered", "attempted", "completed"):
            st["result"] = {"score": {"raw": i % 11, "min": 0, "max": 10, "scaled": (i % 11) / 10},
                            "success": verb != "failed", "completion": True, "duration": f"PT{i % 50 + 1}M"}
        out.append(st)
    return out


class Client:
    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        parts = urlsplit(url)
        self.path = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3",
                        "Content-Type": "application/json"}

    def post(self, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", f"{self.path}/statements", body=body, headers=self.headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()


Target = tuple[Client, list[bytes], Callable[[], list[int]]]


def run(targets: list[Target]) -> tuple[list[list[float]], list[list[float]]]:
    """Send each target's batches, taking turns batch by batch (so a change in the machine's load
    falls on both alike); per target the milliseconds of each batch after its warm-up batch, and
    the CPU milliseconds its server processes (for ms8 the gateway worker and its PostgreSQL
    backends) spent on it: on a loaded machine the wall time includes waiting for a core, the CPU
    time much less."""
    for client, bodies, _ in targets:  # warm-up: imports, connections, caches
        status, text = client.post(bodies[0])
        if status != 200:
            raise SystemExit(f"warm-up batch answered {status}: {text[:300]!r}")
    pids = [server_pids() for _, _, server_pids in targets]  # after the warm-up: connections open
    latencies: list[list[float]] = [[] for _ in targets]
    cpu: list[list[float]] = [[] for _ in targets]
    for i in range(1, len(targets[0][1])):
        for n, (client, bodies, _) in enumerate(targets):
            before = cpu_seconds(pids[n])
            t0 = time.perf_counter()
            status, text = client.post(bodies[i])
            latencies[n].append((time.perf_counter() - t0) * 1000)
            after = cpu_seconds(pids[n])
            cpu[n].append(sum(after[p] - before.get(p, after[p]) for p in after) * 1000)
            if status != 200:
                raise SystemExit(f"batch answered {status}: {text[:300]!r}")
    return latencies, cpu


Shape = tuple[tuple[str, str], list[tuple[uuid.UUID, str]], str]


def prepare(learner_counts: list[int], batches: int = 1) -> list[Shape]:
    """A fresh bench database with one organization per batch shape: `count` learners for each of
    `batches` batches, and a credential."""
    import psycopg

    from local import localdb, xapi_credential

    migrated_database(DB, fresh=True)
    shapes = []
    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        for count in learner_counts:
            org = uuid.uuid4()
            users = [(uuid.uuid4(), f"learner-{n:05d}@{org.hex[:8]}.bench.example") for n in range(count * batches)]
            conn.execute("INSERT INTO organizations (id, name) VALUES (%s, %s)", (org, f"Bench {count}"))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, %s, %s)",
                    [(u, org, e, e, ["learner"]) for u, e in users],
                )
            shapes.append((xapi_credential.create(conn, org, HOME, "bench"), users, str(org)))
    return shapes


def durable(org: str, started: datetime) -> tuple[int, int, int, int]:
    """Statements stored, learning events, learner days, and analytics snapshots computed since `started`."""
    import psycopg

    from local import localdb

    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        row = conn.execute(
            "SELECT (SELECT count(*) FROM xapi_statements WHERE organization_id = %(o)s),"
            " (SELECT count(*) FROM learning_events WHERE organization_id = %(o)s),"
            " (SELECT count(*) FROM learner_daily_activity WHERE organization_id = %(o)s),"
            " (SELECT count(*) FROM analytics WHERE organization_id = %(o)s AND source = 'computed'"
            "  AND updated_at >= %(t)s)", {"o": org, "t": started},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def refresh_pending() -> tuple[float, int]:
    """The refresh job (every minute on AWS) over every learner the batches noted: seconds and
    learners. The POSTs stored the statements, the learning events and the learner days; the job
    brings the learners' snapshots, points and gamification rows up to date."""
    from local import localdb
    from ms8 import db
    from ms8.jobs.pending import JOB
    from ms8.jobs.runner import run as run_job

    os.environ["OWNER_DATABASE_URL"] = localdb.owner_url(DB)
    db.owner.reset()
    started, learners = time.perf_counter(), 0
    while True:
        result = run_job(JOB, {})
        learners += int(result.details["users"])
        if not result.details["more"]:
            return time.perf_counter() - started, learners


def ms8_pids(pool: Any) -> list[int]:
    """The gateway's worker processes and the PostgreSQL backends connected to the bench database."""
    import psycopg

    from local import localdb

    # Not by backend_type: PostgreSQL shows it (NULL otherwise) only for the viewer's own role's
    # sessions or to a superuser, and the gateway connects as the runtime role. The bench database
    # has no other clients than the gateway's workers and this connection.
    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (DB,)).fetchall()
    if not rows:
        raise SystemExit("no PostgreSQL backend of the gateway found: its CPU could not be counted")
    return [*pool.worker_pids(), *(int(r[0]) for r in rows)]


def process_tree(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(p) for p in path.read_text().split())] if path.exists() else [pid]


@contextmanager
def ms8_gateway(workers: int) -> Iterator[tuple[str, Any]]:
    from local import server, stack

    stack.apply_function_env(None, db=DB)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    pool = server.Server(server.bind("127.0.0.1", 0), workers, quiet=True, output=subprocess.DEVNULL)
    pool.start()
    try:
        yield pool.url + "/xapi", pool
    finally:
        pool.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def install_ralph(where: Path) -> Path | None:
    """Ralph in its own virtual environment; None (and why, on stderr) when it cannot be installed."""
    venv = where / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"ralph-malph[cli,backend-fs,lrs]=={RALPH_VERSION}",
                        f"requests=={REQUESTS_VERSION}"],
                       check=True, capture_output=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"ralph could not be installed ({exc}); comparing with {RALPH_FALLBACK:.0f} statements/s",
              file=sys.stderr)
        return None
    return venv


@contextmanager
def ralph_server(venv: Path | None, where: Path, workers: int = 1,
                 ) -> Iterator[tuple[str, tuple[str, str], int] | None]:
    """Ralph's LRS with the fs backend and one Basic-auth user, on a free port, served by
    `workers` uvicorn workers (None: no Ralph)."""
    if venv is None:
        yield None
        return
    auth = ("bench", "bench-secret")
    ralph = str(venv / "bin" / "ralph")
    auth_file = where / "auth.json"
    env = {**os.environ, "RALPH_RUNSERVER_BACKEND": "fs", "RALPH_AUTH_FILE": str(auth_file), "RALPH_APP_DIR": str(where / "app"),
           "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(where / "statements"),
           "RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT": "100"}
    (where / "statements").mkdir(exist_ok=True)
    subprocess.run([ralph, "auth", "-u", auth[0], "-p", auth[1], "-s", "all", "-w", "-M", "mailto:bench@example.org"],
                   check=True, env=env, capture_output=True)
    port = _free_port()
    log = (where / "ralph.log").open("wb")
    # Ralph's ASGI app under uvicorn (`ralph runserver` is its development server,
    # with a file-watching reloader). Its fs backend writes each batch with the INDEX operation,
    # which refuses a file that exists: from the second batch on every POST fails. The module
    # below makes that backend append instead (its APPEND operation), nothing else.
    (where / "ralph_append.py").write_text(
        "from ralph.backends.data.base import BaseOperationType\n"
        "from ralph.backends.lrs.fs import FSLRSBackend\n"
        "FSLRSBackend.default_operation_type = BaseOperationType.APPEND\n"
        "from ralph.api import app  # noqa: E402\n"
    )
    proc = subprocess.Popen([str(venv / "bin" / "uvicorn"), "ralph_append:app", "--app-dir", str(where),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log"],
                            env=env, cwd=where, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit("ralph runserver exited") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/xAPI", auth, proc.pid
    except BaseException:
        print((where / "ralph.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=15, help="timed batches (after one warm-up)")
    parser.add_argument("--learners", type=lambda v: [int(x) for x in v.split(",")], default=[10, 100],
                        help="learners each batch is spread over, one shape per value (default 10,100)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-ralph", action="store_true", help="compare with the recorded figure instead")
    parser.add_argument("--ralph-venv", type=Path, help="a virtual environment with Ralph already installed")
    args = parser.parse_args()

    shapes = prepare(args.learners, args.batches + 1)
    # Batch k of a shape goes to its own `count` learners (a platform's batch holds the learners
    # active at that moment), so no learner piles up an unlikely history during the run.
    bodies = [[json.dumps(statements(users[k * n:(k + 1) * n], BATCH, k)).encode() for k in range(args.batches + 1)]
              for n, (_, users, _) in zip(args.learners, shapes, strict=True)]
    ralph_bodies = [json.dumps(statements(shapes[0][1][:10], BATCH, k)).encode() for k in range(args.batches + 1)]
    started = datetime.now(UTC)
    where = Path(tempfile.mkdtemp(prefix="bench-ralph-"))
    venv = None if args.no_ralph else (args.ralph_venv or install_ralph(where))
    try:
        with ms8_gateway(args.workers) as (url, pool), ralph_server(venv, where) as ralph:
            targets: list[Target] = [(Client(url, cred), shape_bodies, lambda: ms8_pids(pool))
                                     for (cred, _, _), shape_bodies in zip(shapes, bodies, strict=True)]
            if ralph is not None:
                ralph_pid = ralph[2]
                targets.append((Client(ralph[0], ralph[1]), ralph_bodies, lambda: process_tree(ralph_pid)))
            latencies, cpu = run(targets)
        refresh_s, refreshed = refresh_pending()
    finally:
        shutil.rmtree(where, ignore_errors=True)
    ralph_lat = latencies[len(shapes)] if ralph is not None else []
    ralph_rate = BATCH * 1000 / statistics.mean(ralph_lat) if ralph_lat else None
    ralph_cpu = statistics.mean(cpu[len(shapes)]) if ralph is not None else None
    baseline = ralph_rate if ralph_rate is not None else RALPH_FALLBACK

    rows = [["server", "batches", "statements/s", "batch p50 ms", "batch p95 ms", "CPU ms/batch", "vs Ralph",
             "CPU vs Ralph"]]
    verdicts = []
    for (_, users, org), lat, used in zip(shapes, latencies, cpu, strict=False):
        rate = BATCH * 1000 / statistics.mean(lat)
        p50, p95 = median_p95(lat)
        per_batch = len(users) // (args.batches + 1)
        verdicts.append((per_batch, rate / baseline, durable(org, started)))
        own_cpu = statistics.mean(used)
        rows.append([f"ms8 /xapi, batches over {per_batch} learners (gateway, {args.workers} worker)",
                     str(args.batches), f"{rate:.0f}", f"{p50:.0f}", f"{p95:.0f}", f"{own_cpu:.0f}",
                     f"{rate / baseline:.2f}x", f"{ralph_cpu / own_cpu:.2f}x" if ralph_cpu and own_cpu else "-"])
    if ralph_rate is not None:
        r50, r95 = median_p95(ralph_lat)
        rows.append([f"Ralph {RALPH_VERSION} (fs backend, 1 worker)", str(args.batches), f"{ralph_rate:.0f}",
                     f"{r50:.0f}", f"{r95:.0f}", f"{ralph_cpu:.0f}", "1.00x", "1.00x"])
    else:
        rows.append(["Ralph fs backend (recorded figure)", "-", f"{RALPH_FALLBACK:.0f}", "-", "-", "-", "1.00x", "-"])
    print(table(rows))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; the targets took turns batch by batch")
    print(f"then the refresh job (every minute on AWS): {refreshed} learners' snapshots, points and gamification "
          f"in {refresh_s:.1f} s ({refreshed / refresh_s:.0f} learners/s)")
    for learners, ratio, (stored, events, days, snapshots) in verdicts:
        print(f"{learners} learners per batch: {ratio:.2f}x Ralph (target 2x): {verdict(ratio >= 2)}; durable: "
              f"{stored} statements, {events} learning events, {days} learner days; "
              f"{snapshots} analytics snapshots recomputed by the refresh job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
