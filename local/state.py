"""What a running `make run` tells other local commands (its URL and S3 endpoint), in
.local/run.json while its process lives."""

from __future__ import annotations

import json
import os
from typing import Any

from local.paths import STATE

STATE_FILE = STATE / "run.json"


def write(url: str, s3_endpoint: str) -> None:
    STATE.mkdir(exist_ok=True)
    STATE_FILE.write_text(json.dumps({"pid": os.getpid(), "url": url, "s3": s3_endpoint}))


def clear() -> None:
    STATE_FILE.unlink(missing_ok=True)


def running_state() -> dict[str, Any] | None:
    """What a running `make run` wrote, if its process is still alive."""
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return state


def api_url() -> str:
    """The running `make run`'s URL, else MS8_URL, else the port `make run` would take."""
    found = running_state()
    if found:
        return str(found["url"])
    return os.environ.get("MS8_URL") or f"http://127.0.0.1:{os.environ.get('MS8_PORT', '3000')}"
