"""gunicorn's sync worker, answering the requests it refuses itself (a malformed request line, a
header with control characters, a head too large) as API Gateway answers what it refuses before
any function runs: `{"message": "<reason>"}` as JSON, instead of gunicorn's HTML page. The reason
in detail goes to the log (gunicorn logs `Invalid request from ip=...: <error>`)."""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util
from gunicorn.workers.sync import SyncWorker


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"message": reason}, separators=(",", ":"))
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, (head + body).encode("latin-1"))


class ApiGatewayWorker(SyncWorker):  # type: ignore[misc]
    """A sync worker (one request at a time) whose own error answers are API Gateway's shape."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        original = util.write_error
        util.write_error = _write_json_error  # base.handle_error writes through gunicorn.util
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            util.write_error = original
