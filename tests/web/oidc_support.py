"""A stand-in for the user pool's sign-in in the browser tests of the deployed sign-in path.

It serves the built app on an origin of its own (as CloudFront does) with a `config.json` that
names an issuer, and that issuer's two OAuth endpoints: `/oauth2/authorize` remembers the PKCE
challenge and sends the browser back with a code; `/oauth2/token` swaps the code for an access
token from the local issuer only when `BASE64URL(SHA-256(code_verifier))` equals the challenge,
the client id and redirect URI match and the code is fresh (RFC 7636). What the app does between
the two is the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from local import tokens
from local.paths import WEB_DIST

CLIENT_ID = "ms8-web-test"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class Provider:
    """The stand-in's state: who signs in, the codes handed out, what the token endpoint saw."""

    user_id: uuid.UUID
    api_url: str = ""
    url: str = ""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    exchanges: list[dict[str, str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def config(self) -> dict[str, Any]:
        return {"apiUrl": self.api_url, "auth": {
            "issuer": self.url, "clientId": CLIENT_ID, "scope": "openid",
            "authorizationEndpoint": f"{self.url}/oauth2/authorize", "tokenEndpoint": f"{self.url}/oauth2/token"}}


def _handler(provider: Provider, dist: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload).encode(), {
                "content-type": "application/json", "access-control-allow-origin": "*"})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/app/config.json":
                return self._json(200, provider.config())
            if parts.path.startswith("/app/"):  # the built app, as CloudFront serves it
                rest = parts.path.removeprefix("/app/")
                file = dist / rest if rest and (dist / rest).is_file() and ".." not in rest else dist / "index.html"
                kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                return self._send(200, file.read_bytes(), {"content-type": kind})
            if parts.path == "/oauth2/authorize":
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256" \
                        or q.get("response_type") != "code" or not q.get("code_challenge"):
                    return self._json(400, {"error": "invalid_request"})
                code = secrets.token_urlsafe(16)
                provider.codes[code] = q
                back = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"
                return self._send(302, b"", {"location": back})
            return self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/oauth2/token":
                return self._json(404, {"error": "not_found"})
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["content-length"])).decode()).items()}
            provider.exchanges.append(form)
            asked = provider.codes.pop(form.get("code", ""), None)  # a code works once
            if (asked is None or form.get("grant_type") != "authorization_code"
                    or form.get("client_id") != CLIENT_ID or form.get("redirect_uri") != asked["redirect_uri"]
                    or s256(form.get("code_verifier", "")) != asked["code_challenge"]):
                return self._json(400, {"error": "invalid_grant"})
            token = tokens.user_token(provider.user_id, 3600)
            provider.issued.append(token)
            return self._json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    return Handler


@contextmanager
def provider_server(user_id: uuid.UUID, dist: Path = WEB_DIST) -> Iterator[Provider]:
    """The stand-in on a free port of 127.0.0.1; `api_url` is filled in by the caller."""
    provider = Provider(user_id)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider, dist))
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
