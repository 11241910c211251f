"""A local stand-in for the HTTP API (API Gateway v2) in front of the functions of template.yaml,
as a WSGI application (served by gunicorn: local/server.py).

What it does per request, as API Gateway does:
- routes by the template's `HttpApi` events (local.template.routes(): no second list of routes);
  an unknown route or method answers 404 `{"message":"Not Found"}`;
- answers CORS preflights from the template's CorsConfiguration (plus the origins in
  MS8_CORS_ORIGINS, for a local front end) and adds the CORS headers;
- runs the JWT authorizer (local.tokens.Verifier) on every route but those with
  `Auth: {Authorizer: NONE}`: a missing, malformed, expired or wrongly signed token gets 401
  `{"message":"Unauthorized"}` before any function runs (the reason goes to the log and to the
  `www-authenticate` header);
- builds the HTTP API v2 event (local.apigw.http_event), calls the route's handler in-process
  (local.runtime) and turns its result into the response (payload format 2.0; a handler crash
  answers 500 `{"message":"Internal Server Error"}`). `x-ms8-local-function` names the function.

Locally only, it also serves Swagger UI at /docs (the committed OpenAPI document, Powertools'
bundled assets, no CDN), the issuer's keys at /.well-known/jwks.json and, if it was built, the web
app in web/dist at /app (index.html for any path that is not a file, as a single-page app needs).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from local import apigw, runtime, template, tokens, webapp
from local.paths import OPENAPI_FILE, WEB_DIST

MAX_BODY = 10 * 1024 * 1024  # the HTTP API's payload limit
JSON = "application/json"
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded",
              "application/javascript", "application/problem+json", "application/vnd.api+json")
SWAGGER_DIR = Path("aws_lambda_powertools/event_handler/openapi/swagger_ui")
LOCAL_FUNCTION_HEADER = "x-ms8-local-function"  # which function answered: local only, for debugging
APP_PREFIX = "/app"
_REASONS = {s.value: s.phrase for s in HTTPStatus}


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    note: str = ""  # why the gateway answered as it did (the log line's end), never sent


def _message(status: int, message: str, *extra: tuple[str, str], note: str = "") -> Reply:
    """API Gateway's own answers (not the functions'): `{"message": ...}`."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return Reply(status, [("content-type", JSON), *extra], body, note)


@dataclass(frozen=True)
class Cors:
    """CORS as the HttpApi's CorsConfiguration says, and MS8_CORS_ORIGINS's extra origins."""

    config: template.CorsConfiguration

    @classmethod
    def from_template(cls) -> Cors | None:
        config = template.cors(os.environ.get("MS8_CORS_ORIGINS", ""))
        return cls(config) if config else None

    def allows(self, origin: str) -> bool:
        return "*" in self.config.origins or origin in self.config.origins

    def preflight(self, origin: str, method: str) -> Reply:
        methods = self.config.methods
        if not self.allows(origin) or ("*" not in methods and method.upper() not in methods):
            return Reply(204, [], note=f"CORS: origin {origin} or method {method} not allowed")
        headers = [("access-control-allow-origin", origin), ("vary", "origin"),
                   ("access-control-allow-methods", ",".join(methods)),
                   ("access-control-allow-headers", ",".join(self.config.headers))]
        if self.config.max_age is not None:
            headers.append(("access-control-max-age", str(self.config.max_age)))
        return Reply(204, headers)


@dataclass
class Gateway:
    """Routing, authorizer, CORS, event and response mapping, local pages; a WSGI application."""

    verifier: tokens.Verifier = field(default_factory=tokens.Verifier)
    cors: Cors | None = field(default_factory=Cors.from_template)
    routes: tuple[template.Route, ...] = field(default_factory=template.routes)
    web_dist: Path = WEB_DIST
    quiet: bool = False

    def __post_init__(self) -> None:
        # Static paths first (API Gateway prefers the most specific route), then templated ones.
        self._static = {(r.method, r.path): r for r in self.routes if "{" not in r.path}
        self._dynamic = [r for r in self.routes if "{" in r.path]
        self._swagger: dict[str, bytes] = {}

    def warm(self) -> None:
        """Import every function once, as a provisioned container would (not on the first request)."""
        for route in self.routes:
            runtime.load_handler(route.function)

    def match(self, method: str, path: str) -> tuple[template.Route, dict[str, str]] | None:
        route = self._static.get((method, path))
        if route is not None:
            return route, {}
        for route in self._dynamic:
            params = route.match(method, path)
            if params is not None:
                return route, {k: unquote(v) for k, v in params.items()}
        return None

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, peer: str) -> Reply:
        """One request: `target` is the path and query as sent, `headers` lower-case."""
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
            return self._local(method, path, raw_query, body) or _message(404, "Not Found", note="no route")
        route, params = found
        claims = None
        if route.authorized:
            try:
                claims = self.verifier.verify(headers.get("authorization"))
            except tokens.InvalidToken as exc:
                return _message(401, "Unauthorized", ("www-authenticate", f'Bearer error="invalid_token" '
                                                      f'error_description="{exc}"'), note=f"authorizer: {exc}")
        event = apigw.http_event(
            method, path, claims=claims, route=route, path_parameters=params or None,
            query=_query(raw_query), headers=headers, body=_body(body, headers), source_ip=peer,
        )
        event["rawQueryString"] = raw_query
        stamp = [("apigw-requestid", event["requestContext"]["requestId"]),
                 (LOCAL_FUNCTION_HEADER, route.function.logical_id)]
        try:
            result = runtime.invoke(route.function, event)
        except Exception:  # the function failed: API Gateway answers for it
            traceback.print_exc()
            return _message(500, "Internal Server Error", *stamp, note=f"{route.function.logical_id} raised")
        reply = _response(result)
        reply.headers += stamp
        return reply

    def _local(self, method: str, path: str, raw_query: str, body: bytes = b"") -> Reply | None:
        """Local-only pages: Swagger UI, the issuer's public keys, the web app and its demo sign-in
        (local.webapp). Never on AWS."""
        web = webapp.reply(method, path, body, self.web_dist)
        if web is not None:
            return Reply(web.status, web.headers, web.body, note="local web app")
        if method not in ("GET", "HEAD"):
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
        if path == APP_PREFIX or path.startswith(APP_PREFIX + "/"):
            return self._web_app(path.removeprefix(APP_PREFIX))
        return None

    def _web_app(self, rest: str) -> Reply | None:
        """A file of web/dist, or its index.html for a client-side route; hashed assets cached long."""
        root = self.web_dist.resolve()
        if not (root / "index.html").is_file():
            return None
        wanted = (root / unquote(rest).lstrip("/")).resolve()
        if not wanted.is_relative_to(root):
            return _message(404, "Not Found", note="outside web/dist")
        if not wanted.is_file():
            if Path(rest).suffix:  # a missing asset is a 404, not the page
                return _message(404, "Not Found", note="no such file in web/dist")
            wanted = root / "index.html"
        kind = mimetypes.guess_type(wanted.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json", "image/svg+xml"):
            kind += "; charset=utf-8"
        hashed = wanted.parent.name == "assets"  # the bundler's content-hashed file names
        cache = "public, max-age=31536000, immutable" if hashed else "no-cache"
        return Reply(200, [("content-type", kind), ("cache-control", cache)], wanted.read_bytes())

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

    # --- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ["REQUEST_METHOD"].upper()
        target = environ.get("RAW_URI") or (environ.get("PATH_INFO", "") + (
            f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""))
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = value
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            reply = _message(400, "Bad Request", note="content-length is not a number")
        elif length > MAX_BODY:
            reply = _message(413, "Request Entity Too Large")
        else:
            body = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read(MAX_BODY + 1)
            try:
                reply = self.handle(method, target, headers, body, environ.get("REMOTE_ADDR") or "127.0.0.1")
            except Exception:
                traceback.print_exc()
                reply = _message(500, "Internal Server Error", note="the gateway failed")
        start_response(f"{reply.status} {_REASONS.get(reply.status, 'Unknown')}",
                       [(k, v) for k, v in reply.headers if k != "content-length"]
                       + [("content-length", str(len(reply.body)))])
        if not self.quiet or reply.note:  # quiet still tells why a request was refused
            ms = (time.perf_counter() - started) * 1000
            note = f" ({reply.note})" if reply.note else ""
            print(f"{method} {target.partition('?')[0]} {reply.status} {ms:.1f} ms{note}", file=sys.stderr, flush=True)
        return [b"" if method == "HEAD" else reply.body]


def create_app() -> Gateway:
    """The application gunicorn serves in each worker (`local.gateway:create_app()`), warm."""
    gateway = Gateway(quiet=os.environ.get("MS8_GATEWAY_QUIET") == "1")
    gateway.warm()
    return gateway


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
