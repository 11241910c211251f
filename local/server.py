"""The local gateway (local.gateway) served by gunicorn: worker processes that each run one request
at a time, as a Lambda container does, with their own database connection, and keep connections
alive (local/gunicorn_worker.py: gunicorn's gthread worker with the request run on its only
thread); gunicorn's arbiter replaces a worker that dies and stops them together. The worker class
also answers what gunicorn itself refuses as API Gateway does, `{"message": ...}`.
docs/PERFORMANCE.md compares it with the old hand-written server.

    python -m local.server [--host 127.0.0.1] [--port 3050] [--workers N] [--quiet]

It expects the functions' environment (DATABASE_URL, ...): `make run` (local.run) sets it and
starts this as a child process on a socket it bound itself.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import IO

from local import process
from local.paths import ROOT

DEFAULT_PORT = int(os.environ.get("MS8_PORT", "3000"))
REQUEST_TIMEOUT = 120  # seconds before gunicorn replaces a stuck worker (beyond any API function's)
# Seconds an idle kept-alive connection stays open: longer than clients keep one in their pools
# (httpx 5 s; browsers longer, but they retry a request a closed connection lost). A request sent
# just as the server closes the connection is lost (the client sees it closed without an answer);
# with gunicorn's default of 2 s, an httpx client under load can hit that window.
KEEP_ALIVE = 75


def default_workers() -> int:
    return int(os.environ.get("MS8_GATEWAY_WORKERS") or os.cpu_count() or 2)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket gunicorn serves on (port 0: a free one); bound here so that a port in
    use is reported before anything starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def _heartbeat_dir() -> list[str]:
    """Workers touch a file per request to tell the arbiter they live: on tmpfs that costs nothing."""
    return ["--worker-tmp-dir", "/dev/shm"] if os.path.isdir("/dev/shm") else []  # noqa: S108 - tmpfs, by design


def _die_with_parent() -> None:
    """In the child: SIGTERM when the parent goes away (Linux), so no gateway outlives `make run`."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """gunicorn serving `local.gateway:create_app()` on `sock` with `workers` sync workers."""

    def __init__(self, sock: socket.socket, workers: int, quiet: bool = False, output: int | IO[bytes] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.sock = sock
        self.workers = max(1, workers)
        self.quiet = quiet
        self.output = output  # where gunicorn and the functions write (default: inherited)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self, timeout: float = 120.0) -> None:
        """Start gunicorn; returns when a worker answers."""
        fd = self.sock.fileno()
        os.set_inheritable(fd, True)
        cmd = [sys.executable, "-m", "gunicorn", "--bind", f"fd://{fd}", "--workers", str(self.workers),
               "--worker-class", "local.gunicorn_worker.ApiGatewayWorker", "--keep-alive", str(KEEP_ALIVE),
               "--timeout", str(REQUEST_TIMEOUT), "--graceful-timeout", "5", *_heartbeat_dir(),
               # API Gateway takes request lines up to its 10 KB head limit; gunicorn's default is 4 KB.
               "--limit-request-line", "0", "--log-level", "warning", "local.gateway:create_app()"]
        env = {**(self.env if self.env is not None else os.environ), "MS8_GATEWAY_QUIET": "1" if self.quiet else "0"}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.output, stderr=self.output,
                                     pass_fds=(fd,), preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited ({self.proc.returncode}) while starting (see its error above)")
            try:
                with urllib.request.urlopen(f"{self.url}/.well-known/jwks.json", timeout=5):  # noqa: S310 - local
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the gateway did not start in time") from None
                time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        """gunicorn's worker processes (the arbiter's children)."""
        if self.proc is None:
            return []
        with contextlib.suppress(OSError):
            text = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read()  # noqa: SIM115
            return [int(p) for p in text.split()]
        return []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (gunicorn's graceful stop), SIGKILL if it takes longer than `timeout`."""
        if self.proc is not None:
            process.stop(self.proc, timeout)
        self.sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: a free port")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--quiet", action="store_true", help="no line per request")
    args = parser.parse_args(argv)
    server = Server(bind(args.host, args.port), args.workers, args.quiet)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    server.start()
    print(f"listening on {server.url}", flush=True)
    try:
        while not stopping and server.alive():
            time.sleep(0.2)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
