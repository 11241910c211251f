"""Stopping the local stack's child processes (gateway, pooler, schedules): a signal, then SIGKILL
if the process takes longer than its grace period."""

from __future__ import annotations

import signal
import subprocess


def stop(proc: subprocess.Popen[bytes], timeout: float, sig: int = signal.SIGTERM) -> None:
    """Send `sig` to a running process and wait up to `timeout` seconds; kill it after that."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
