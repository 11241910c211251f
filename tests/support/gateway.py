"""The local gateway as a separate process for tests that talk HTTP to it: `python -m local.server`
(gunicorn) on a free port, with the environment the caller gives (the functions' environment), its output
(the functions' logs, a crash's traceback) kept in a file rather than a pipe nobody drains."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from local.paths import ROOT


@dataclass
class RunningGateway:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of what the gateway and its functions wrote (for a failure's message)."""
        text = self.log.read_text(errors="replace")
        return text[-chars:]


@contextmanager
def gateway_process(env: dict[str, str], workers: int = 1, timeout: float = 120.0) -> Iterator[RunningGateway]:
    """`python -m local.server --port 0` with `env` added to this process's environment;
    yields once it listens, stops it (SIGINT, as Ctrl-C) afterwards."""
    fd, name = tempfile.mkstemp(prefix="ms8-gateway-", suffix=".log")
    log = Path(name)
    full_env = {**os.environ, **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.server", "--port", "0", "--workers", str(workers), "--quiet"],
        cwd=ROOT, stdout=fd, stderr=subprocess.STDOUT, env=full_env,
    )
    os.close(fd)
    try:
        url = _wait_listening(proc, log, timeout)
        yield RunningGateway(url, proc, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.unlink(missing_ok=True)


def _wait_listening(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("listening on http://"):
                return line.removeprefix("listening on ").strip()
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited ({proc.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)
    raise RuntimeError("the gateway did not start in time")
