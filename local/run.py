"""`make run`: the whole service on this machine, as it runs on AWS, without Docker or an account.

    python -m local.run [--port 3000] [--workers N] [--quiet] [--reset-demo]

1. PostgreSQL: the embedded server in .local/pg (kept, so a second start is quick), or the
   server DATABASE_URL names (an administrator URL); the `ms8` database is created if missing
   and migrated to head, and the runtime role gets its local password (local.stack).
2. Demo data (local.demo), once: a second start finds it and skips it. `--reset-demo` drops
   the database and loads it afresh (the comparison view only counts snapshots from the last
   7 days, so a demo loaded long ago shows less).
3. S3 (local.s3): moto's S3 on 127.0.0.1:4566 (or a free port) with the reports bucket, every
   request's signature checked, the objects kept in .local/s3 between runs.
4. The gateway (local.gateway under gunicorn, local.server) on http://127.0.0.1:<port>: the
   template's routes, its JWT authorizer emulated with a local key, the same handlers, one request
   at a time per worker process as Lambda containers do. Swagger UI at /docs, the web app (if
   built into web/dist) at /app.
5. The template's every-minute schedule (the analytics refresh of learners a platform's batches
   noted) in a process of its own, every 10 s (local.schedules); the daily jobs stay by hand
   (local.invoke).

The port: `--port`, else MS8_PORT, else 3000. Extra CORS origins (a front end on another
origin): MS8_CORS_ORIGINS=http://localhost:5173,... It prints the URL, demo tokens and a first
curl. Ctrl-C (or SIGTERM) stops everything it started: the gateway, the S3 server (its objects
saved) and the PostgreSQL server (unless another project database, e.g. a test run's, uses it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from local import demo_ids, localdb, process, s3, schedules, server, stack, state, template, tokens
from local.paths import EVENTS, ROOT, WEB_DIST

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # platformdirs, on machines without one

log = stack.log


def invoke_example() -> str:
    """The banner's `invoke` line: a scheduled function of the template if there is one."""
    routed = {r.function.logical_id for r in template.routes()}
    found = [(f.logical_id, f"events/{f.event_name}.json") for f in template.functions()
             if f.logical_id not in routed and (EVENTS / f"{f.event_name}.json").exists()]
    found.sort(key=lambda pair: (pair[0] != "RefreshComparisonFunction", pair[0]))
    if found:
        return "Scheduled functions by hand: .venv/bin/python -m local.invoke " + " ".join(found[0])
    return "Any function by hand: .venv/bin/python -m local.invoke GetMeFunction events/get_me.json"


def banner(url: str, s3_endpoint: str, bucket: str, workers: int, elapsed: float) -> str:
    learner = tokens.user_token(demo_ids.LEARNER)
    trainer = tokens.user_token(demo_ids.TRAINER)
    admin = tokens.user_token(demo_ids.ORG_ADMIN)
    py = ".venv/bin/python"
    cors = template.cors(os.environ.get("MS8_CORS_ORIGINS", ""))
    frequent = ", ".join(f.logical_id for f in schedules.frequent()) or "none"
    web = f"  Web app       {url}/app\n" if (WEB_DIST / "index.html").is_file() else ""
    return f"""
MS8 Learning Analytics is running locally (ready in {elapsed:.1f} s)

  API           {url}   ({workers} gunicorn workers; routes from template.yaml)
  Swagger UI    {url}/docs
{web}  S3 (moto)     {s3_endpoint}   bucket {bucket}, signed requests only, objects kept in .local/s3
  PostgreSQL    {localdb.runtime_url(stack.DB)}
                psql: make psql   (as the owner: {py} -m local.localdb psql --owner)
  CORS origins  {', '.join(cors.origins) if cors else 'none'}   (add some: MS8_CORS_ORIGINS=http://localhost:5173)
  Schedules     {frequent} every {schedules.LOCAL_PERIOD:g} s; the daily jobs by hand

Demo tokens for the ACME organization (valid 12 hours):
  export LEARNER_TOKEN={learner}
  export TRAINER_TOKEN={trainer}
  export ADMIN_TOKEN={admin}
  Others: {py} -m local.tokens --user learner-07      (or trainer-02, admin, globex:learner-01, a user id)
          {py} -m local.tokens --client {demo_ids.INGEST_CLIENT} --scope ingest   (a platform service)

First call, the learner's analytics:
  curl -s -H 'Authorization: Bearer {learner}' '{url}/v1/analytics?limit=2'

More: curl -s -H "Authorization: Bearer $TRAINER_TOKEN" {url}/v1/users/{demo_ids.LEARNER}/analytics
      curl -s -H "Authorization: Bearer $LEARNER_TOKEN" {url}/v1/comparison
      curl -s -H "Authorization: Bearer $TRAINER_TOKEN" '{url}/v1/learners?atRisk=true'
      curl -s -H "Authorization: Bearer $ADMIN_TOKEN" '{url}/v1/aggregates?granularity=weekly'
{invoke_example()}

xAPI (learning platforms, Basic auth): endpoint {url}/xapi  key {demo_ids.XAPI_KEY}  secret {demo_ids.XAPI_SECRET}
  curl -s -u {demo_ids.XAPI_KEY}:{demo_ids.XAPI_SECRET} -H 'X-Experience-API-Version: 1.0.3' \\
       '{url}/xapi/statements?limit=2'
  Another credential: {py} -m local.xapi_credential create --org acme --home-page https://moodle.acme.example

Ctrl-C stops everything this command started.
"""


def run(port: int, workers: int, quiet: bool, reset_demo: bool) -> int:
    t0 = time.perf_counter()
    try:
        sock = server.bind("127.0.0.1", port)
    except OSError as exc:
        log(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): is `make run` already running? "
            "Another port: make run RUN_ARGS='--port 3001' (or MS8_PORT=3001)")
        return 1
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        # The flag ends the waiting loop even if the exception lands somewhere that swallows it.
        nonlocal stopping
        if stopping:
            return
        stopping = True
        log(f"\n{signal.Signals(signum).name}: stopping")
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    cleanups: list[tuple[str, Callable[[], None]]] = [("socket", sock.close)]
    # Decided before starting it: a Ctrl-C in the middle of the start still stops what started.
    ours = not localdb.EXTERNAL_ADMIN_URL and not localdb.is_running()
    cleanups.append(("postgres", lambda: stack.stop_database(ours and localdb.is_running())))
    try:
        stack.prepare_database(reset_demo)
        bucket = os.environ.get("REPORTS_BUCKET", stack.DEFAULT_BUCKET)
        store = s3.S3()
        s3_endpoint = store.start(bucket)
        cleanups.append(("s3", store.stop))
        log(f"s3: moto on {s3_endpoint}, bucket {bucket}")
        stack.apply_function_env(s3_endpoint)
        gateway = server.Server(sock, workers, quiet)
        cleanups.append(("gateway", gateway.stop))
        gateway.start()
        state.write(gateway.url, s3_endpoint)
        cleanups.append(("state", state.clear))
        # Its runs log warnings and failures only (one record a run otherwise, every 10 s).
        quiet_jobs = {**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"}
        ticker = subprocess.Popen([sys.executable, "-m", "local.schedules", "--s3", s3_endpoint], cwd=ROOT,
                                  env=quiet_jobs)
        cleanups.append(("schedules", lambda: process.stop(ticker, 30)))
        print(banner(gateway.url, s3_endpoint, bucket, workers, time.perf_counter() - t0), flush=True)
        while not stopping:
            time.sleep(0.2)
            if not gateway.alive():
                log("the gateway exited: stopping")
                break
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        for name, cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:
                log(f"{name}: {exc}")
        log("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=server.DEFAULT_PORT, help="default: MS8_PORT or 3000")
    parser.add_argument("--workers", type=int, default=None, help="gateway worker processes (default: one per CPU)")
    parser.add_argument("--quiet", action="store_true", help="no line per request")
    parser.add_argument("--reset-demo", action="store_true", help="drop the local database and load the demo afresh")
    args = parser.parse_args(argv)
    with contextlib.suppress(BrokenPipeError):
        return run(args.port, args.workers or server.default_workers(), args.quiet, args.reset_demo)
    return 1


if __name__ == "__main__":
    sys.exit(main())
