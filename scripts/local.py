"""`make run`: the whole service on this machine, as it runs on AWS, without Docker or an account.

    python -m scripts.local run [--port 3000] [--workers N] [--quiet] [--reset-demo]

1. PostgreSQL: the embedded server in .local/pg (kept, so a second start is quick), or the
   server DATABASE_URL names (an administrator URL); the `ms8` database is created if missing
   and migrated to head, and the runtime role gets its local password.
2. Demo data (scripts.demo), once: a second start finds it and skips it. `--reset-demo` drops
   the database and loads it afresh (the comparison view only counts snapshots from the last
   7 days, so a demo loaded long ago shows less).
3. S3: moto's server on 127.0.0.1:4566 (or a free port), with the reports bucket.
4. The gateway (scripts.gateway) on http://127.0.0.1:3000: the template's routes, its JWT
   authorizer emulated with a local key, the same handlers in-process, one request at a time per
   worker process as Lambda containers do. Swagger UI at /docs.

It prints the URL, demo tokens and a first curl. Ctrl-C (or SIGTERM) stops everything it
started: the workers, the S3 server and the PostgreSQL server (unless another project database,
e.g. a test run's, still uses it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "layers" / "common")) if p not in sys.path]

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # platformdirs, on machines without one

from scripts import demo_ids, localdb, tokens  # noqa: E402

DB = localdb.DEFAULT_DB
DEFAULT_PORT = int(os.environ.get("MS8_PORT", "3000"))
S3_PORT = 4566
STATE_FILE = ROOT / ".local" / "run.json"
REGION = "eu-west-1"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_database(reset_demo: bool = False, db: str = DB) -> bool:
    """Start PostgreSQL if needed, create and migrate `db` (default `ms8`), load the demo once.

    Returns whether this call started the server (so the caller stops it at the end).
    """
    import psycopg

    from scripts import demo

    # localdb.start() re-chowns the whole data directory even when the server runs, which races
    # with a server busy dropping databases: skip it when there is nothing to start.
    started = False if localdb.EXTERNAL_ADMIN_URL or localdb.is_running() else localdb.start()
    where = ("external server (DATABASE_URL)" if localdb.EXTERNAL_ADMIN_URL
             else f"embedded, data in {localdb.PGDATA.relative_to(ROOT)}")
    log(f"postgres: {'started' if started else 'running'} ({where})")
    if reset_demo:
        localdb.drop_database(db)
    localdb.bootstrap(db)
    localdb.migrate(db)
    localdb.set_runtime_password()
    with psycopg.connect(localdb.owner_url(db), autocommit=True) as conn:
        if demo.is_loaded(conn):
            log("demo data: present")
        else:
            t0 = time.perf_counter()
            counts = demo.load(conn)
            log(f"demo data: loaded in {time.perf_counter() - t0:.1f} s ("
                + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
                + ")")
        from scripts import xapi_credential

        xapi_credential.ensure_demo(conn)
    return started


def stop_database(started: bool, db: str = DB) -> None:
    """Stop the server if this process started it and no other project database is in use."""
    if not started:
        return
    others = localdb.other_databases(db)
    if others:
        log(f"postgres: left running for {', '.join(sorted(others))}")
    else:
        localdb.stop()
        log("postgres: stopped")


def template_env(logical_ids: list[str], bucket: str) -> tuple[dict[str, str], bool]:
    """The Globals and per-function environment of template.yaml for these functions, resolved
    for local use (a `!Ref` to a parameter gives its default, to the bucket the local bucket),
    and whether any of them gets the owner secret (the scheduled jobs do)."""
    from scripts import apigw

    template = apigw.template()
    params = template.get("Parameters", {})
    sections = [template.get("Globals", {}).get("Function", {})]
    sections += [template["Resources"][i]["Properties"] for i in logical_ids]
    env: dict[str, str] = {}
    owner = False
    for props in sections:
        for name, value in ((props.get("Environment") or {}).get("Variables") or {}).items():
            ref = value.get("Ref") if isinstance(value, dict) else None
            if name in ("DB_SECRET_ARN", "OWNER_DB_SECRET_ARN"):
                owner = owner or name == "OWNER_DB_SECRET_ARN"  # locally: the URLs below
            elif ref == "ReportsBucket":
                env[name] = bucket
            elif ref in params and "Default" in params[ref]:
                default = params[ref]["Default"]
                env[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
            elif not isinstance(value, dict):
                env[name] = str(value)
    return env, owner


def function_env(s3_endpoint: str | None, logical_ids: list[str] | None = None, db: str = DB) -> dict[str, str]:
    """What the functions find in their environment on AWS, with local stand-ins.

    `logical_ids`: the functions this process will run (default: every API function). They get
    the template's variables, DATABASE_URL for the runtime role (their secret on AWS) and, only
    where the template gives them the owner secret (the scheduled jobs), OWNER_DATABASE_URL.
    Metrics are not published locally, and the AWS credentials are dummies: nothing reaches AWS.
    """
    from scripts import apigw

    bucket = os.environ.get("REPORTS_BUCKET", "ms8-reports-local")
    ids = logical_ids if logical_ids is not None else sorted({r.function.logical_id for r in apigw.routes()})
    env, owner = template_env(ids, bucket)
    env.update({
        "DATABASE_URL": localdb.runtime_url(db),
        "REPORTS_BUCKET": bucket,
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "SCOPE_PREFIX": tokens.SCOPE_PREFIX, "STAGE": "local",
    })
    if os.environ.get("POWERTOOLS_LOG_LEVEL"):
        env["POWERTOOLS_LOG_LEVEL"] = os.environ["POWERTOOLS_LOG_LEVEL"]
    if s3_endpoint:
        env["S3_ENDPOINT_URL"] = s3_endpoint
    if owner:
        env["OWNER_DATABASE_URL"] = localdb.owner_url(db)
    return env


def apply_function_env(s3_endpoint: str | None, logical_ids: list[str] | None = None, db: str = DB) -> None:
    """Set `function_env` in this process (and so in the workers it starts)."""
    for name in ("DB_SECRET_ARN", "OWNER_DB_SECRET_ARN", "OWNER_DATABASE_URL", "AWS_PROFILE",
                 "AWS_SESSION_TOKEN", "S3_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(function_env(s3_endpoint, logical_ids, db))
    config = sys.modules.get("ms8.config")
    if config is not None:  # settings are read once per process: read them again
        config.settings.cache_clear()


class S3:
    """moto's S3 server in a thread of this process, with the reports bucket."""

    def __init__(self, port: int = S3_PORT) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port if _port_free(port) else 0,
                                         verbose=False)

    def start(self, bucket: str) -> str:
        import boto3

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per S3 request

        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                              aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        return self.endpoint

    def stop(self) -> None:
        self.server.stop()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def running_state() -> dict[str, Any] | None:
    """What a running `make run` wrote (URL, S3 endpoint), if it is still alive."""
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return state


def invoke_example() -> str:
    """The banner's `invoke` line: a scheduled function of the template if there is one."""
    from scripts import apigw

    routed = {r.function.logical_id for r in apigw.routes()}
    found = [(f.logical_id, f"events/{f.event_name}.json") for f in apigw.functions()
             if f.logical_id not in routed and (ROOT / "events" / f"{f.event_name}.json").exists()]
    found.sort(key=lambda pair: (pair[0] != "RefreshComparisonFunction", pair[0]))
    if found:
        return "Scheduled functions by hand: .venv/bin/python -m scripts.invoke " + " ".join(found[0])
    return "Any function by hand: .venv/bin/python -m scripts.invoke GetMeFunction events/get_me.json"


def banner(url: str, s3_endpoint: str, bucket: str, workers: int, elapsed: float) -> str:
    learner = tokens.user_token(demo_ids.LEARNER)
    trainer = tokens.user_token(demo_ids.TRAINER)
    admin = tokens.user_token(demo_ids.ORG_ADMIN)
    py = ".venv/bin/python"
    return f"""
MS8 Learning Analytics is running locally (ready in {elapsed:.1f} s)

  API           {url}   ({workers} worker processes; routes from template.yaml)
  Web app       {url}/app   (sign in as a demo user; local only)
  Swagger UI    {url}/docs
  S3 (moto)     {s3_endpoint}   bucket {bucket}
  PostgreSQL    {localdb.runtime_url(DB).replace(localdb.RUNTIME_PASSWORD, '***')}

Demo tokens for the ACME organization (valid 12 hours):
  export LEARNER_TOKEN={learner}
  export TRAINER_TOKEN={trainer}
  export ADMIN_TOKEN={admin}
  Others: {py} -m scripts.tokens --user learner-07      (or trainer-02, admin, globex:learner-01, a user id)
          {py} -m scripts.tokens --client {demo_ids.INGEST_CLIENT} --scope ingest   (a platform service)

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
  Another credential: {py} -m scripts.xapi_credential create --org acme --home-page https://moodle.acme.example

Ctrl-C stops everything this command started.
"""


def run(port: int, workers: int, quiet: bool, reset_demo: bool) -> int:
    from scripts import gateway

    t0 = time.perf_counter()
    try:
        sock = gateway.bind("127.0.0.1", port)
    except OSError as exc:
        log(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): is `make run` already running? "
            "Another port: .venv/bin/python -m scripts.local run --port 3001")
        return 1
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        # The flag ends the serving loop even if the exception lands somewhere that swallows it.
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
    cleanups.append(("postgres", lambda: stop_database(ours and localdb.is_running())))
    try:
        prepare_database(reset_demo)
        bucket = os.environ.get("REPORTS_BUCKET", "ms8-reports-local")
        s3 = S3()
        s3_endpoint = s3.start(bucket)
        cleanups.append(("s3", s3.stop))
        log(f"s3: moto on {s3_endpoint}, bucket {bucket}")
        apply_function_env(s3_endpoint)
        pool = gateway.Workers(sock, workers, quiet)
        cleanups.append(("gateway", pool.stop))
        pool.start()
        STATE_FILE.write_text(json.dumps({"pid": os.getpid(), "url": pool.url, "s3": s3_endpoint}))
        cleanups.append(("state", lambda: STATE_FILE.unlink(missing_ok=True)))
        print(banner(pool.url, s3_endpoint, bucket, pool.count, time.perf_counter() - t0), flush=True)
        while not stopping:
            time.sleep(0.2)
            pool.supervise()
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
    parser = argparse.ArgumentParser(prog="python -m scripts.local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    cmd = sub.add_parser("run", help="PostgreSQL, migrations, demo data, S3 and the API on 127.0.0.1")
    cmd.add_argument("--port", type=int, default=DEFAULT_PORT)
    cmd.add_argument("--workers", type=int, default=None, help="gateway worker processes (default: one per CPU)")
    cmd.add_argument("--quiet", action="store_true", help="no line per request")
    cmd.add_argument("--reset-demo", action="store_true", help="drop the local database and load the demo afresh")
    args = parser.parse_args(argv)
    from scripts import gateway

    with contextlib.suppress(BrokenPipeError):
        return run(args.port, args.workers or gateway.default_workers(), args.quiet, args.reset_demo)
    return 1


if __name__ == "__main__":
    sys.exit(main())
