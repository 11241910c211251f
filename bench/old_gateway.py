"""THE OLD LOCAL GATEWAY, kept only so bench/bench_gateway.py can compare it with the new one
(local/gateway.py under gunicorn, local/server.py) in the same run. Nothing else uses it; it goes
once the comparison is no longer wanted. Its emulation part now reads the template through
local.template; its HTTP/1.1 server and worker supervision are as they were.

A local stand-in for the HTTP API (API Gateway v2) in front of the functions of template.yaml.

What it does per request, as API Gateway does:
- routes by the template's `HttpApi` events (local.template.routes(): no second list of routes);
  an unknown route or method answers 404 `{"message":"Not Found"}`;
- answers CORS preflights from the template's CorsConfiguration and adds the CORS headers;
- runs the JWT authorizer (local.tokens.Verifier): a missing, malformed, expired or wrongly
  signed token gets 401 `{"message":"Unauthorized"}` before any function runs;
- builds the HTTP API v2 event (path and query parameters, headers, body, request id, the verified
  claims as strings), calls the route's handler in-process and turns its result into the response
  (payload format 2.0; a handler crash answers 500 `{"message":"Internal Server Error"}`).

Locally only, it also serves Swagger UI at /docs (the committed OpenAPI document, Powertools'
bundled assets, no CDN) and the issuer's keys at /.well-known/jwks.json.

Concurrency mirrors Lambda: each worker process serves one request at a time (a Lambda container
does), with its own database connection; `--workers` processes share one listening socket.

    python -m local.gateway serve [--host 127.0.0.1] [--port 3000] [--workers N] [--quiet]

It expects the functions' environment (DATABASE_URL, ...); `make run` (local.run) sets it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from local import apigw, runtime, template, tokens

ROOT = Path(__file__).resolve().parent.parent


MAX_HEAD = 64 * 1024
MAX_BODY = 10 * 1024 * 1024  # the HTTP API's payload limit
JSON = "application/json"
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded",
              "application/javascript", "application/problem+json", "application/vnd.api+json")
SWAGGER_DIR = Path("aws_lambda_powertools/event_handler/openapi/swagger_ui")
OPENAPI_FILE = ROOT / "functions" / "get_openapi" / "openapi.json"
LOCAL_FUNCTION_HEADER = "x-ms8-local-function"  # which function answered: local only, for debugging


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


def _message(status: int, message: str, *extra: tuple[str, str]) -> Reply:
    """API Gateway's own answers (not the functions'): `{"message": ...}`."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return Reply(status, [("content-type", JSON), *extra], body)


@dataclass(frozen=True)
class Cors:
    """The HttpApi's CorsConfiguration, parameters resolved to their defaults (or MS8_CORS_ORIGINS)."""

    origins: tuple[str, ...]
    headers: tuple[str, ...]
    methods: tuple[str, ...]
    max_age: int | None

    @classmethod
    def from_template(cls) -> Cors | None:
        cfg = template.cors(os.environ.get("MS8_CORS_ORIGINS", ""))
        return cls(cfg.origins, cfg.headers, cfg.methods, cfg.max_age) if cfg else None

    def allows(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins

    def preflight(self, origin: str, method: str) -> Reply:
        if not self.allows(origin) or ("*" not in self.methods and method.upper() not in self.methods):
            return Reply(204, [])
        headers = [("access-control-allow-origin", origin), ("vary", "origin"),
                   ("access-control-allow-methods", ",".join(self.methods)),
                   ("access-control-allow-headers", ",".join(self.headers))]
        if self.max_age is not None:
            headers.append(("access-control-max-age", str(self.max_age)))
        return Reply(204, headers)


@dataclass(frozen=True)
class Target:
    """A route of the template with what the gateway needs to serve it."""

    route: template.Route
    authorized: bool  # behind the JWT authorizer (the default) or `Authorizer: NONE`


def _targets() -> list[Target]:
    return [Target(r, r.authorized) for r in template.routes()]


@dataclass
class Gateway:
    """Routing, authorizer, CORS, event and response mapping: everything but the sockets."""

    verifier: tokens.Verifier = field(default_factory=tokens.Verifier)
    cors: Cors | None = field(default_factory=Cors.from_template)
    targets: list[Target] = field(default_factory=_targets)

    def __post_init__(self) -> None:
        # Static paths first (API Gateway prefers the most specific route), then templated ones.
        self._static = {(t.route.method, t.route.path): t for t in self.targets if "{" not in t.route.path}
        self._dynamic = [t for t in self.targets if "{" in t.route.path]
        self._swagger: dict[str, bytes] = {}

    def warm(self) -> None:
        """Import every function once, as a provisioned container would (not on the first request)."""
        for target in self.targets:
            runtime.load_handler(target.route.function)

    def match(self, method: str, path: str) -> tuple[Target, dict[str, str]] | None:
        target = self._static.get((method, path))
        if target is not None:
            return target, {}
        for target in self._dynamic:
            params = target.route.match(method, path)
            if params is not None:
                return target, {k: unquote(v) for k, v in params.items()}
        return None

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, peer: str) -> Reply:
        path, _, raw_query = target.partition("?")
        origin = headers.get("origin")
        if method == "OPTIONS" and self.cors and origin and "access-control-request-method" in headers:
            return self.cors.preflight(origin, headers["access-control-request-method"])
        reply = self._dispatch(method, path, raw_query, headers, body, peer)
        if self.cors and origin and self.cors.allows(origin):
            reply.headers += [("access-control-allow-origin", origin), ("vary", "origin")]
        return reply

    def _dispatch(self, method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes,
                  peer: str) -> Reply:
        if len(body) > MAX_BODY:
            return _message(413, "Request Entity Too Large")
        found = self.match(method, path)
        if found is None:
            return self._local(method, path, raw_query) or _message(404, "Not Found")
        target, params = found
        claims = None
        if target.authorized:
            try:
                claims = self.verifier.verify(headers.get("authorization"))
            except tokens.InvalidToken as exc:
                return _message(401, "Unauthorized", ("www-authenticate", f'Bearer error="invalid_token" '
                                                      f'error_description="{exc}"'))
        event = apigw.http_event(
            method, path, claims=claims, route=target.route, path_parameters=params or None,
            query=_query(raw_query), headers=headers, body=_body(body, headers), source_ip=peer,
        )
        event["rawQueryString"] = raw_query
        stamp = [("apigw-requestid", event["requestContext"]["requestId"]),
                 (LOCAL_FUNCTION_HEADER, target.route.function.logical_id)]
        try:
            result = runtime.invoke(target.route.function, event)
        except Exception:  # the function failed: API Gateway answers for it
            traceback.print_exc()
            return _message(500, "Internal Server Error", *stamp)
        reply = _response(result)
        reply.headers += stamp
        return reply

    def _local(self, method: str, path: str, raw_query: str) -> Reply | None:
        """Local-only pages: Swagger UI and the issuer's public keys. Never part of the API on AWS."""
        if method != "GET":
            return None
        if path == "/.well-known/jwks.json":
            return Reply(200, [("content-type", JSON)], json.dumps(tokens.jwks()).encode())
        if path in ("/docs", "/docs/"):
            if "format=json" in raw_query:
                return self._openapi()
            return Reply(200, [("content-type", "text/html; charset=utf-8")], self._swagger_page())
        if path == "/docs/openapi.json":
            return self._openapi()
        if path in ("/docs/swagger-ui.js", "/docs/swagger-ui.css"):
            name, kind = (("swagger-ui-bundle.min.js", "application/javascript") if path.endswith(".js")
                          else ("swagger-ui.min.css", "text/css"))
            return Reply(200, [("content-type", kind), ("cache-control", "max-age=86400")], self._asset(name))
        return None

    def _openapi(self) -> Reply:
        return Reply(200, [("content-type", JSON)], OPENAPI_FILE.read_bytes())

    def _asset(self, name: str) -> bytes:
        if name not in self._swagger:
            import aws_lambda_powertools

            base = Path(aws_lambda_powertools.__file__).parent.parent / SWAGGER_DIR
            self._swagger[name] = (base / name).read_bytes()
        return self._swagger[name]

    def _swagger_page(self) -> bytes:
        from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

        spec = OPENAPI_FILE.read_text()
        html = generate_swagger_html(spec, "/docs/swagger-ui.js", "/docs/swagger-ui.css", "/docs/",
                                     None, persist_authorization=True)
        return html.encode()


def _query(raw: str) -> dict[str, str] | None:
    """queryStringParameters: repeated keys joined by commas, as payload format 2.0 does."""
    if not raw:
        return None
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params or None


def _body(body: bytes, headers: dict[str, str]) -> str | bytes | None:
    """Text bodies pass as they are; anything else is base64-encoded (isBase64Encoded)."""
    if not body:
        return None
    ctype = headers.get("content-type", "").lower()
    if not ctype or ctype.startswith(TEXT_TYPES) or "+json" in ctype:
        try:
            return body.decode()
        except UnicodeDecodeError:
            pass
    return body


def _response(result: Any) -> Reply:
    """Payload format 2.0: a dict with statusCode is the response; anything else is a 200 JSON body."""
    if not (isinstance(result, dict) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return Reply(200, [("content-type", JSON)], text.encode())
    headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(str(name).lower(), str(v)) for v in values]
    headers += [("set-cookie", str(c)) for c in result.get("cookies") or []]
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    if not any(k == "content-type" for k, _ in headers):
        headers.append(("content-type", JSON))
    return Reply(int(result["statusCode"]), headers, body)


# --- HTTP/1.1 over asyncio: keep-alive, pipelining, Expect: 100-continue, chunked bodies ---------

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Request:
    __slots__ = ("body_length", "chunked", "continued", "head_end", "headers", "keep_alive", "method",
                 "target")

    def __init__(self, method: str, target: str, headers: dict[str, str], head_end: int,
                 keep_alive: bool) -> None:
        self.method, self.target, self.headers, self.head_end = method, target, headers, head_end
        self.keep_alive = keep_alive
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self.continued = False
        if self.chunked:
            self.body_length = -1
        else:
            try:
                self.body_length = int(headers.get("content-length", "0"))
            except ValueError:
                raise _BadRequest(400, "Bad Request") from None
            if self.body_length < 0:
                raise _BadRequest(400, "Bad Request")
            if self.body_length > MAX_BODY:
                raise _BadRequest(413, "Request Entity Too Large")


def _parse_head(buf: bytearray, end: int) -> _Request:
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, "Bad Request")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(400, "Bad Request")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    conn = headers.get("connection", "").lower()
    keep_alive = "close" not in conn if parts[2] == "HTTP/1.1" else "keep-alive" in conn
    return _Request(parts[0].upper(), parts[1], headers, end + 4, keep_alive)


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """A complete chunked body from `start`: (body, offset after it), or None if incomplete."""
    pos, body = start, bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        except ValueError:
            raise _BadRequest(400, "Bad Request") from None
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)  # optional trailers end with an empty line
            return (bytes(body), end + 4) if end >= 0 else None
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos:pos + size]
        if len(body) > MAX_BODY:
            raise _BadRequest(413, "Request Entity Too Large")
        pos += size + 2


class _Connection(asyncio.Protocol):
    def __init__(self, gateway: Gateway, log: Callable[[str], None] | None) -> None:
        self.gateway = gateway
        self.log = log
        self.buf = bytearray()
        self.request: _Request | None = None
        self.transport: asyncio.Transport | None = None
        self.peer = "127.0.0.1"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = peer[0]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            while self.transport is not None and not self.transport.is_closing() and self._next():
                pass
        except _BadRequest as exc:
            self._send(_message(exc.status, exc.args[0]), keep_alive=False)

    def _next(self) -> bool:
        """Serve the next complete request in the buffer; False when more bytes are needed."""
        if self.request is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    raise _BadRequest(431, "Request Header Fields Too Large")
                return False
            self.request = _parse_head(self.buf, end)
        req = self.request
        if req.chunked:
            done = _dechunk(self.buf, req.head_end)
            if done is None:
                self._continue(req)
                return False
            body, consumed = done
        else:
            consumed = req.head_end + req.body_length
            if len(self.buf) < consumed:
                self._continue(req)
                return False
            body = bytes(self.buf[req.head_end:consumed])
        del self.buf[:consumed]
        self.request = None
        started = time.perf_counter()
        try:
            reply = self.gateway.handle(req.method, req.target, req.headers, body, self.peer)
        except Exception:
            traceback.print_exc()
            reply = _message(500, "Internal Server Error")
        self._send(reply, req.keep_alive)
        if self.log:
            ms = (time.perf_counter() - started) * 1000
            self.log(f"{req.method} {req.target.partition('?')[0]} {reply.status} {ms:.1f} ms")
        return True

    def _continue(self, req: _Request) -> None:
        if not req.continued and req.headers.get("expect", "").lower() == "100-continue":
            req.continued = True
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _send(self, reply: Reply, keep_alive: bool) -> None:
        assert self.transport is not None
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}", f"date: {_http_date()}"]
        head += [f"{k}: {v}" for k, v in reply.headers if k not in ("content-length", "connection")]
        head.append(f"content-length: {len(reply.body)}")
        head.append("connection: keep-alive" if keep_alive else "connection: close")
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + reply.body)
        if not keep_alive:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


# --- processes ---------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on (port 0: a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _AccessLog:
    """One line per request on stderr, written a few times a second rather than per request."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        if not self.lines:
            self.loop.call_later(0.1, self.flush)
        self.lines.append(line)

    def flush(self) -> None:
        if self.lines:
            sys.stderr.write("\n".join(self.lines) + "\n")
            sys.stderr.flush()
            self.lines.clear()


def run_worker(sock: socket.socket, quiet: bool, ready_fd: int | None = None, lifeline_fd: int | None = None) -> None:
    """Serve on `sock` until SIGINT/SIGTERM or until the parent goes away (its lifeline closes)."""
    gateway = Gateway()
    gateway.warm()
    loop = asyncio.new_event_loop()
    log = None if quiet else _AccessLog(loop)
    stop = loop.create_future()

    def _stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop)
    if lifeline_fd is not None:
        loop.add_reader(lifeline_fd, _stop)  # readable only at EOF: the parent has gone

    pending: set[asyncio.Task[Any]] = set()

    def accept() -> None:
        # One connection per wake-up: every worker is woken, and an idle one gets there first, so
        # connections spread over the workers by load (asyncio's own server would take them all).
        try:
            conn, _ = sock.accept()
        except OSError:  # another worker took it
            return
        conn.setblocking(False)
        task = loop.create_task(loop.connect_accepted_socket(lambda: _Connection(gateway, log), conn))
        pending.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(pending.discard)

    async def serve() -> None:
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), accept)
        if ready_fd is not None:
            with contextlib.suppress(OSError):  # a replacement worker's parent does not wait
                os.write(ready_fd, b"1")
            os.close(ready_fd)
        await stop
        loop.remove_reader(sock.fileno())

    try:
        loop.run_until_complete(serve())
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # asked once: a repeated signal must not cut this short
            signal.signal(sig, signal.SIG_IGN)
        if log:
            log.flush()
        loop.close()
        from ms8 import db

        db.runtime.reset()
        db.owner.reset()


class Workers:
    """`count` worker processes on one listening socket; replaced when one dies, stopped together."""

    def __init__(self, sock: socket.socket, count: int, quiet: bool = False, stdout: int | None = None) -> None:
        self.sock = sock
        self.count = max(1, count)
        self.quiet = quiet
        self.stdout = stdout  # where the functions' own output goes (default: inherited)
        self.procs: list[subprocess.Popen[bytes]] = []
        self._lifeline_r, self._lifeline_w = os.pipe()
        self.stopping = False

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int]:
        ready_r, ready_w = os.pipe()
        cmd = [sys.executable, __file__, "worker", "--fd", str(self.sock.fileno()),
               "--ready-fd", str(ready_w), "--lifeline-fd", str(self._lifeline_r)]
        if self.quiet:
            cmd.append("--quiet")
        env = dict(os.environ)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.stdout,
                                pass_fds=(self.sock.fileno(), ready_w, self._lifeline_r))
        os.close(ready_w)
        return proc, ready_r

    def start(self, timeout: float = 120.0) -> None:
        """Start the workers; returns when every one of them is serving."""
        pending = []
        for _ in range(self.count):
            proc, ready = self._spawn()
            self.procs.append(proc)
            pending.append(ready)
        deadline = time.monotonic() + timeout
        for ready in pending:
            with os.fdopen(ready, "rb") as pipe:
                while not _wait_readable(pipe.fileno(), 0.2):
                    if any(p.poll() is not None for p in self.procs):
                        self.stop()
                        raise RuntimeError("a gateway worker exited while starting (see its error above)")
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError("the gateway workers did not start in time")
                if pipe.read(1) != b"1":
                    self.stop()
                    raise RuntimeError("a gateway worker exited while starting (see its error above)")

    def supervise(self) -> None:
        """Replace a worker that died (as Lambda replaces a crashed container)."""
        for i, proc in enumerate(self.procs):
            # Exit status 0 is a worker told to stop (SIGINT, SIGTERM): only a crash is replaced.
            if proc.poll() not in (None, 0) and not self.stopping:
                print(f"gateway worker {proc.pid} exited ({proc.returncode}); starting another", file=sys.stderr)
                self.procs[i], ready = self._spawn()
                os.close(ready)

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping = True
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for fd in (self._lifeline_r, self._lifeline_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.sock.close()


def _wait_readable(fd: int, timeout: float) -> bool:
    import select

    return bool(select.select([fd], [], [], timeout)[0])


def default_workers() -> int:
    return int(os.environ.get("MS8_GATEWAY_WORKERS") or os.cpu_count() or 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.gateway")
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="serve the API (the functions' environment must be set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--workers", type=int, default=default_workers())
    serve.add_argument("--quiet", action="store_true", help="no line per request")
    worker = sub.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("--fd", type=int, required=True)
    worker.add_argument("--ready-fd", type=int)
    worker.add_argument("--lifeline-fd", type=int)
    worker.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.cmd == "worker":
        run_worker(socket.socket(fileno=args.fd), args.quiet, args.ready_fd, args.lifeline_fd)
        return 0
    workers = Workers(bind(args.host, args.port), args.workers, args.quiet)
    stopping = False

    def _on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    workers.start()
    print(f"listening on {workers.url}", flush=True)
    try:
        while not stopping:
            time.sleep(0.2)
            workers.supervise()
    finally:
        workers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
