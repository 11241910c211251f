"""What `make run`, `invoke`, the benches and the HTTP tests prepare before a function runs: the
database (started, migrated, the demo loaded once) and the functions' environment as the template
gives it, with local stand-ins for the secrets and the bucket."""

from __future__ import annotations

import os
import sys
import time

from local import demo, localdb, s3, template, tokens, xapi_credential
from local.paths import ROOT

DB = localdb.DEFAULT_DB
DEFAULT_BUCKET = "ms8-reports-local"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_database(reset_demo: bool = False, db: str = DB) -> bool:
    """Start PostgreSQL if needed, create and migrate `db` (default `ms8`), load the demo once.

    Returns whether this call started the server (so the caller stops it at the end).
    """
    import psycopg

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
                + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) + ")")
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


def function_env(s3_endpoint: str | None, logical_ids: list[str] | None = None, db: str = DB) -> dict[str, str]:
    """What the functions find in their environment on AWS, with local stand-ins.

    `logical_ids`: the functions this process will run (default: every API function). They get
    the template's variables, DATABASE_URL for the runtime role (their secret on AWS) and, only
    where the template gives them the owner secret (the scheduled jobs), OWNER_DATABASE_URL.
    Metrics are not published locally; the AWS credentials are the local S3's key pair: nothing
    reaches AWS.
    """
    bucket = os.environ.get("REPORTS_BUCKET", DEFAULT_BUCKET)
    ids = logical_ids if logical_ids is not None else sorted({r.function.logical_id for r in template.routes()})
    env, owner = template.function_environment(ids, bucket)
    env.update({
        "DATABASE_URL": localdb.runtime_url(db),
        "REPORTS_BUCKET": bucket,
        "AWS_ACCESS_KEY_ID": s3.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": s3.SECRET_KEY,
        "AWS_DEFAULT_REGION": s3.REGION, "AWS_REGION": s3.REGION,
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
    """Set `function_env` in this process (and so in the processes it starts)."""
    for name in ("DB_SECRET_ARN", "OWNER_DB_SECRET_ARN", "OWNER_DATABASE_URL", "AWS_PROFILE",
                 "AWS_SESSION_TOKEN", "S3_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(function_env(s3_endpoint, logical_ids, db))
    config = sys.modules.get("ms8.config")
    if config is not None:  # settings are read once per process: read them again
        config.settings.cache_clear()
