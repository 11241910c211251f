"""PgBouncer in transaction mode in front of the local PostgreSQL: the local stand-in for RDS Proxy.

A server connection belongs to a client only for the length of one transaction, then serves
whichever client comes next, exactly the behaviour that forbids session state (SET, prepared
statements, advisory locks held across transactions) in the application. The Debian package
`pgbouncer` provides the binary (`apt-get install -y pgbouncer`).

    with pgbouncer("ms8", pool_size=1) as url:   # the runtime role's URL through the pooler
        ...

    python -m local.pooler [--db ms8] [--pool-size 2] [--port 3045]   # until Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg

from local import localdb, process

CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def binary() -> str:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("pgbouncer is not installed: apt-get install -y pgbouncer")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(port: int, server_port: int, pool_size: int, workdir: Path) -> str:
    return f"""[databases]
* = host=127.0.0.1 port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {workdir / "users.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
max_db_connections = {pool_size}
server_reset_query =
server_check_delay = 0
ignore_startup_parameters = extra_float_digits,options
logfile = {workdir / "pgbouncer.log"}
pidfile = {workdir / "pgbouncer.pid"}
"""


@contextmanager
def pgbouncer(dbname: str, pool_size: int = 1, port: int | None = None) -> Iterator[str]:
    """PgBouncer (transaction pooling, at most `pool_size` server connections) in front of the local
    server; yields the runtime role's URL of `dbname` through it, stops it afterwards."""
    info = psycopg.conninfo.conninfo_to_dict(localdb.admin_url())
    port = port or _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ms8-pgbouncer-"))
    (workdir / "users.txt").write_text(
        f'"{localdb.RUNTIME_ROLE}" "{localdb.RUNTIME_PASSWORD}"\n"{localdb.OWNER_ROLE}" "{localdb.OWNER_PASSWORD}"\n'
    )
    (workdir / "pgbouncer.ini").write_text(_config(port, int(str(info.get("port") or 5432)), pool_size, workdir))
    # PgBouncer refuses to run as root: as the embedded server's own user then.
    as_user = localdb.server_user()
    for path in (workdir, workdir / "users.txt", workdir / "pgbouncer.ini"):
        if as_user:
            os.chown(path, as_user["user"], as_user["group"])  # type: ignore[arg-type]
    proc = subprocess.Popen([binary(), str(workdir / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **as_user)  # type: ignore[call-overload]
    url = f"postgresql://{localdb.RUNTIME_ROLE}:{localdb.RUNTIME_PASSWORD}@127.0.0.1:{port}/{dbname}"
    try:
        _wait(url, proc, workdir)
        yield url
    finally:
        process.stop(proc, 10, signal.SIGINT)  # SIGINT: shut down now, without waiting for clients
        shutil.rmtree(workdir, ignore_errors=True)


def _wait(url: str, proc: subprocess.Popen[bytes], workdir: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            log = workdir / "pgbouncer.log"
            raise RuntimeError(f"pgbouncer exited: {log.read_text()[-2000:] if log.exists() else ''}")
        try:
            psycopg.connect(url, connect_timeout=2, prepare_threshold=None).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PgBouncer (transaction mode) before the local PostgreSQL")
    parser.add_argument("--db", default=localdb.DEFAULT_DB)
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    with pgbouncer(args.db, args.pool_size, args.port) as url:
        print(f"DATABASE_URL={url}", flush=True)
        with suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
