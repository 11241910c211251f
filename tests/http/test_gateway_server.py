"""The local gateway's HTTP server (gunicorn with local/gunicorn_worker.py) over raw sockets: kept-
alive connections, one request at a time per worker process, a silent connection holding no worker,
pipelined requests, and a connection closed by the server only after an answer that says so."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from local import gunicorn_worker, server, stack
from tests.support.gateway import RunningGateway, gateway_process

KEYS = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: local\r\n\r\n"


@pytest.fixture(scope="module")
def one_worker(database: str) -> Iterator[RunningGateway]:
    with gateway_process(stack.function_env(None, db=database), workers=1) as running:
        yield running


def _connect(running: RunningGateway) -> socket.socket:
    host, port = running.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _answer(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer read off `sock` (content-length framed); what follows stays in `buf`."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before answering"
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        rest += chunk
    buf[:] = rest[length:]
    return int(status_line.split()[1]), headers, rest[:length]


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    return sock.recv(1) == b""


def _workers(running: RunningGateway) -> list[int]:
    """gunicorn's worker processes: the children of the arbiter, the child of `python -m local.server`."""
    def children(pid: int) -> list[int]:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    (arbiter,) = children(running.proc.pid)
    return children(arbiter)


def test_a_connection_carries_many_requests_and_closes_only_after_saying_so(one_worker: RunningGateway) -> None:
    sock, buf = _connect(one_worker), bytearray()
    with sock:
        for n in range(1, gunicorn_worker.REQUESTS_PER_CONNECTION + 1):
            sock.sendall(KEYS)
            status, headers, body = _answer(sock, buf)
            assert status == 200
            assert json.loads(body)["keys"]
            last = n == gunicorn_worker.REQUESTS_PER_CONNECTION
            assert headers["connection"] == ("close" if last else "keep-alive"), n
        assert _closed_by_server(sock)


def test_an_idle_connection_stays_open_longer_than_gunicorns_default(one_worker: RunningGateway) -> None:
    """gunicorn closes an idle connection after 2 s by default; a client that reuses one just then
    loses its request. The gateway keeps it (local/server.py KEEP_ALIVE)."""
    assert server.KEEP_ALIVE > 2
    sock, buf = _connect(one_worker), bytearray()
    with sock:
        sock.sendall(KEYS)
        assert _answer(sock, buf)[0] == 200
        time.sleep(2.5)
        sock.sendall(KEYS)
        assert _answer(sock, buf)[0] == 200


def test_a_silent_connection_holds_no_worker(one_worker: RunningGateway) -> None:
    """A connection that sends nothing (a browser's speculative one) waits in the poller: the only
    worker answers another client at once (gthread's pool thread would wait 5 s for the silent one,
    a sync worker until its timeout)."""
    with _connect(one_worker):
        started = time.monotonic()
        answer = httpx.get(f"{one_worker.url}/.well-known/jwks.json", timeout=10)
        assert answer.status_code == 200
        assert time.monotonic() - started < 3.0


def test_pipelined_requests_are_answered_in_order(one_worker: RunningGateway) -> None:
    sock, buf = _connect(one_worker), bytearray()
    with sock:
        sock.sendall(KEYS + b"GET /no/such/route HTTP/1.1\r\nHost: local\r\n\r\n" + KEYS)
        assert [_answer(sock, buf)[0] for _ in range(3)] == [200, 404, 200]


def test_workers_serve_many_connections_one_request_at_a_time(database: str) -> None:
    """Two workers, twelve clients on kept-alive connections: every request answered, and each
    worker process is one thread (requests in a process never overlap, as in a Lambda container)."""
    with gateway_process(stack.function_env(None, db=database), workers=2) as running:
        def client(_: int) -> list[int]:
            with httpx.Client(base_url=running.url, timeout=10) as http:
                return [http.get("/.well-known/jwks.json").status_code for _ in range(30)]

        with ThreadPoolExecutor(12) as pool:
            statuses = [s for batch in pool.map(client, range(12)) for s in batch]
        assert statuses == [200] * 360
        workers = _workers(running)
        assert len(workers) == 2
        assert all(len(list(Path(f"/proc/{pid}/task").iterdir())) == 1 for pid in workers)
