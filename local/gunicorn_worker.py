"""The gunicorn worker of the local gateway (local/server.py): one request at a time per process, as
a Lambda container runs one invocation at a time, with HTTP keep-alive.

gunicorn's sync worker is one-at-a-time but closes the connection after every answer (and waits
for the client's FIN before taking the next one); its gthread worker keeps connections alive in a
poller but hands every request to a thread pool. This is the gthread worker with the request run on
the poller's own thread instead of a pool thread: gunicorn still parses HTTP, keeps connections
alive (its `--keep-alive` timeout), closes idle ones and supervises the processes; no thread is
started, so requests in one process never overlap. A connection is served only once it has data
(a client that connects and stays silent holds no worker), and idle ones wait in the poller.

It also answers what gunicorn refuses itself (a malformed request line, a header with control
characters, a head too large) as API Gateway answers what it refuses before any function runs:
`{"message": "<reason>"}` as JSON, instead of gunicorn's HTML page. The reason in detail goes to the
log (gunicorn logs `Invalid request from ip=...: <error>`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import selectors
import socket
import time
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"message": reason}, separators=(",", ":"))
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, (head + body).encode("latin-1"))


def _cork(sock: socket.socket, on: bool) -> None:
    """gunicorn writes the head and the body of an answer in two sends: corked, they leave in one
    TCP segment (one wake-up of the client instead of two), sent when uncorked (Linux)."""
    if hasattr(socket, "TCP_CORK"):
        with contextlib.suppress(OSError):  # a connection closed meanwhile
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, int(on))


class ApiGatewayWorker(ThreadWorker):  # type: ignore[misc]
    """gthread without its pool: requests run one at a time on the worker's only thread."""

    _serving = False

    def accept(self, listener: Any) -> None:
        """A new connection waits in the poller until its request arrives (gthread would hand it to
        a thread that blocks until then)."""
        try:
            client, addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client, addr, listener.getsockname())
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(client, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))

    def enqueue_req(self, conn: TConn) -> None:
        """Serve the connection's next request now, on this thread; then gthread's own bookkeeping
        (keep it alive in the poller, or close it)."""
        if self._serving:
            # A pipelined request already read behind the one just answered: the next turn of the
            # loop serves it (not a recursion per request).
            self.method_queue.defer(self.enqueue_req, conn)
            return
        self._serving = True
        try:
            done: futures.Future[Any] = futures.Future()
            _cork(conn.sock, True)
            try:
                done.set_result(self.handle(conn))
            except Exception as exc:  # handle() answers errors itself; anything left closes the connection
                done.set_exception(exc)
            _cork(conn.sock, False)
            self.finish_request(conn, done)
        finally:
            self._serving = False

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        original = util.write_error
        util.write_error = _write_json_error  # base.handle_error writes through gunicorn.util
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            util.write_error = original
