"""xAPI statements over HTTP: 1,000-statement batches POSTed to /xapi/statements through the local
gateway, stored in PostgreSQL with the learning events, analytics and gamification of their
learners updated, beside a Python LRS writing to a flat file, in the same run.

The baseline is Ralph (PyPI `ralph-malph`, its `fs` backend: statements appended to a file),
installed by this bench into a throwaway virtual environment (not a project dependency) and
served by uvicorn with one worker. When it cannot be installed the bench
says so and compares with 5,800 statements/s, Ralph's pace measured on this kind of machine.

Both get the same statements (Moodle-like shapes: account or mbox actors, ADL and TinCan verbs,
scores, durations, context activities, each with its own id), one batch at a time over one
keep-alive connection, from one client, to one server worker. The bench database (`ms8_bench_xapi`):
one organization, `--learners` learners (every batch touches all of them), a credential.

    .venv/bin/python bench/bench_xapi.py [--batches 15] [--learners 50] [--workers 1] [--no-ralph]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import median_p95, migrated_database, table, verdict

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


def run(url: str, auth: tuple[str, str], bodies: list[bytes]) -> tuple[float, list[float]]:
    """Send the batches one after the other; (elapsed seconds, per-batch milliseconds)."""
    client = Client(url, auth)
    status, text = client.post(bodies[0])  # warm-up: imports, connections, caches
    if status != 200:
        raise SystemExit(f"warm-up batch answered {status}: {text[:300]!r}")
    latencies = []
    started = time.perf_counter()
    for body in bodies[1:]:
        t0 = time.perf_counter()
        status, text = client.post(body)
        latencies.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise SystemExit(f"batch answered {status}: {text[:300]!r}")
    return time.perf_counter() - started, latencies


def prepare(learners: int) -> tuple[tuple[str, str], list[tuple[uuid.UUID, str]], str]:
    """A fresh bench database with one organization, its learners and a credential."""
    import psycopg

    from scripts import localdb, xapi_credential

    migrated_database(DB, fresh=True)
    org = uuid.uuid4()
    users = [(uuid.uuid4(), f"learner-{n:04d}@bench.example") for n in range(learners)]
    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Bench')", (org,))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, %s, %s)",
                            [(u, org, e, e, ["learner"]) for u, e in users])
        cred = xapi_credential.create(conn, org, HOME, "bench")
    return cred, users, str(org)


def durable(org: str, started: datetime) -> tuple[int, int, int]:
    """Statements stored, learning events, and analytics snapshots computed since `started`."""
    import psycopg

    from scripts import localdb

    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        row = conn.execute(
            "SELECT (SELECT count(*) FROM xapi_statements WHERE organization_id = %(o)s),"
            " (SELECT count(*) FROM learning_events WHERE organization_id = %(o)s),"
            " (SELECT count(*) FROM analytics WHERE organization_id = %(o)s AND source = 'computed'"
            "  AND updated_at >= %(t)s)", {"o": org, "t": started},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


@contextmanager
def ms8_gateway(workers: int) -> Iterator[str]:
    from scripts import gateway, local

    local.apply_function_env(None, db=DB)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    pool = gateway.Workers(gateway.bind("127.0.0.1", 0), workers, quiet=True, stdout=subprocess.DEVNULL)
    pool.start()
    try:
        yield pool.url + "/xapi"
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
def ralph_server(venv: Path, where: Path) -> Iterator[tuple[str, tuple[str, str]]]:
    """Ralph's LRS with the fs backend and one Basic-auth user, on a free port."""
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
    # Ralph's ASGI app under uvicorn, one worker (`ralph runserver` is its development server,
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
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log"],
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
        yield f"http://127.0.0.1:{port}/xAPI", auth
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
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-ralph", action="store_true", help="compare with the recorded figure instead")
    parser.add_argument("--ralph-venv", type=Path, help="a virtual environment with Ralph already installed")
    args = parser.parse_args()

    cred, users, org = prepare(args.learners)
    bodies = [json.dumps(statements(users, BATCH, seed)).encode() for seed in range(args.batches + 1)]
    started = datetime.now(UTC)
    with ms8_gateway(args.workers) as url:
        elapsed, latencies = run(url, cred, bodies)
    stored, events, snapshots = durable(org, started)
    ours = args.batches * BATCH / elapsed

    ralph_rate: float | None = None
    ralph_lat: list[float] = []
    if not args.no_ralph:
        where = Path(tempfile.mkdtemp(prefix="bench-ralph-"))
        try:
            venv = args.ralph_venv or install_ralph(where)
            if venv is not None:
                ralph_bodies = [json.dumps(statements(users, BATCH, seed)).encode() for seed in range(args.batches + 1)]
                with ralph_server(venv, where) as (rurl, rauth):
                    r_elapsed, ralph_lat = run(rurl, rauth, ralph_bodies)
                ralph_rate = args.batches * BATCH / r_elapsed
        finally:
            shutil.rmtree(where, ignore_errors=True)
    baseline = ralph_rate if ralph_rate is not None else RALPH_FALLBACK

    rows = [["server", "batches", "statements/s", "batch p50 ms", "batch p95 ms"]]
    p50, p95 = median_p95(latencies)
    rows.append([f"ms8 /xapi (gateway, {args.workers} worker, PostgreSQL, analytics)", str(args.batches),
                 f"{ours:.0f}", f"{p50:.0f}", f"{p95:.0f}"])
    if ralph_rate is not None:
        r50, r95 = median_p95(ralph_lat)
        rows.append([f"Ralph {RALPH_VERSION} (fs backend, 1 worker)", str(args.batches), f"{ralph_rate:.0f}",
                     f"{r50:.0f}", f"{r95:.0f}"])
    else:
        rows.append(["Ralph fs backend (recorded figure)", "-", f"{RALPH_FALLBACK:.0f}", "-", "-"])
    print(table(rows))
    print(f"durable: {stored} statements, {events} learning events, {snapshots} analytics snapshots recomputed "
          f"({args.learners} learners, every batch touches all of them); load average {os.getloadavg()[0]:.1f}")
    ratio = ours / baseline
    print(f"ms8 / Ralph: {ratio:.2f}x (target 2x): {verdict(ratio >= 2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
