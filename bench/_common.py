"""Shared by bench_upsert.py and bench_context.py: import paths, the local database, percentiles,
the printed table."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from local import localdb

ROOT = Path(__file__).resolve().parent.parent


def migrated_database(name: str, fresh: bool = False) -> None:
    """Start the local PostgreSQL, create `name` (again, when `fresh`) if needed and bring it to
    the head revision; DATABASE_URL and OWNER_DATABASE_URL then point at it."""
    if not localdb.is_running():  # start() re-owns the whole data directory when run as root
        localdb.start()
    if fresh:
        localdb.drop_database(name)
    localdb.bootstrap(name)
    localdb.migrate(name)
    localdb.set_runtime_password()
    os.environ["DATABASE_URL"] = localdb.runtime_url(name)
    os.environ["OWNER_DATABASE_URL"] = localdb.owner_url(name)
    from ms8 import config

    config.settings.cache_clear()


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU of each process so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def median_p95(values: Sequence[float]) -> tuple[float, float]:
    return statistics.median(values), percentile(values, 95)


def table(rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: the first row is the header, the first column left-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not start in time")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Gateway:
    url: str
    proc: subprocess.Popen[bytes]

    def worker_pids(self) -> list[int]:
        """The serving processes: the command's process and all its descendants (gunicorn's
        arbiter and workers; Linux /proc)."""
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            path = Path(f"/proc/{pid}/task/{pid}/children")
            with contextlib.suppress(OSError):
                todo += [int(p) for p in path.read_text().split()]
        return found


@contextlib.contextmanager
def gateway(db: str, workers: int, database_url: str | None = None) -> Iterator[Gateway]:
    """The local gateway through its public command (`python -m local.server`) on a free
    port, with the functions' environment for database `db` (DATABASE_URL overridden by
    `database_url`, e.g. a pooler's). Nothing else of the gateway's internals is used."""
    from local import stack

    env = {**os.environ, **stack.function_env(None, db=db)}
    if database_url:
        env["DATABASE_URL"] = database_url
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.server", "--port", str(port), "--workers", str(workers), "--quiet"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_listening(url, proc)
        yield Gateway(url, proc)
    finally:
        stop(proc)


def synthetic_events(active_per_org: int, days: int, learners_only: bool, draws: int = 2) -> str:
    """SQL adding ~`draws` x 0.56 learning events a day over `days` days for the first
    `active_per_org` users (learners only, if asked) of every organization: the benches' shared
    synthetic history (2 draws: about 1.4 events on a day with any)."""
    users = "users WHERE roles = '{learner}'" if learners_only else "users"
    return f"""WITH active AS MATERIALIZED (
    SELECT id, organization_id FROM (
        SELECT id, organization_id, row_number() OVER (PARTITION BY organization_id ORDER BY email) AS n
        FROM {users}) x
    WHERE n <= {active_per_org}
), drawn AS MATERIALIZED (
    SELECT a.id, a.organization_id, d,
           (ARRAY['completed','passed','failed','attempted','progressed','session'])[1 + floor(random() * 6)::int]
               AS verb
    FROM active a CROSS JOIN generate_series(1, {days}) d CROSS JOIN generate_series(1, {draws}) k
    WHERE random() < 0.56
)
INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, skills, score,
                             success, duration_seconds, occurred_at)
SELECT gen_random_uuid(), id, organization_id, verb, 'course-' || (random() * 200)::int, 'course',
       '{{sql}}', CASE WHEN verb IN ('passed', 'failed', 'attempted') THEN random() END,
       CASE WHEN verb IN ('passed', 'failed') THEN verb = 'passed' END, (random() * 1800)::int,
       (current_date - d)::timestamp AT TIME ZONE 'UTC' + random() * interval '1 day'
FROM drawn;"""
