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

REQUESTS_PER_CONNECTION = 50


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"message": reason}, separators=(",", ":"))
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, (head + body).encode("latin-1"))


class _Conn(TConn):  # type: ignore[misc]
    """A client connection: the requests it has carried, and a close that does not wait."""

    served = 0

    def close(self, graceful: bool = False) -> None:
        """gunicorn's graceful close lingers (up to 2 s, blocking) until the client closes too, so that
        bytes it still sends cannot turn into a reset that loses the answer. On this one thread that
        would stall every other connection: with nothing unread (the request was read whole), the
        answer and the FIN are on their way and closing at once is safe; otherwise linger."""
        if graceful:
            try:
                pending = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                pending = b""
            except OSError:
                pending = None  # already reset or closed: nothing to protect
            if pending:
                super().close(graceful=True)
                return
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        super().close(graceful=False)


class ApiGatewayWorker(ThreadWorker):  # type: ignore[misc]
    """gthread without its pool: requests run one at a time on the worker's only thread."""

    _serving = False
    _left_once = False  # a new connection was left to the other workers on the last turn

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
        conn = _Conn(self.cfg, client, addr, listener.getsockname())
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(client, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """gthread's event dispatch, except that a worker with requests waiting on its connections
        leaves a new connection to the listening socket's other workers for one turn (a free one
        takes it, as a free sync worker would); if it is still there after that turn, it takes it."""
        try:
            events = self.poller.select(timeout)
        except InterruptedError:
            return
        busy = any(key.data != self.accept for key, _ in events)
        listening = False
        for key, _ in events:
            if key.data == self.accept:
                listening = True
                if busy and not self._left_once:
                    continue
            key.data(key.fileobj)
        self._left_once = busy and listening and not self._left_once

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
            try:
                done.set_result(self.handle(conn))
            except Exception as exc:  # handle() answers errors itself; anything left closes the connection
                done.set_exception(exc)
            self.finish_request(conn, done)
        finally:
            self._serving = False

    def handle_request(self, req: Any, conn: _Conn) -> bool:
        """Every REQUESTS_PER_CONNECTION-th answer on a connection says `Connection: close`: the
        client reconnects, and the accept goes to whichever worker is free then. Kept-alive
        connections stay with the worker that accepted them, so without this a worker that took
        most of a burst of connections keeps them while another idles; API Gateway spreads every
        request over the free containers."""
        conn.served += 1
        if conn.served >= REQUESTS_PER_CONNECTION:
            req.must_close = True
        return bool(super().handle_request(req, conn))

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        original = util.write_error
        util.write_error = _write_json_error  # base.handle_error writes through gunicorn.util
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            util.write_error = original
