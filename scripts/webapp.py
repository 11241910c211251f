"""Local only: the web app's files at /app and the demo sign-in it uses on the local stack.

- `GET /app/...`: the built app (`web/dist`, made by `make web`); a path that names no file gets
  index.html (the app routes on its own), a missing build answers 503 saying how to build it.
- `GET /local/demo-users`: the demo users the sign-in page lists.
- `POST /local/token` `{"userId": ...}`: a token for one of them, signed by the local issuer.

None of this is part of the API on AWS (not in template.yaml): deployed, the app is served by
CloudFront from a private bucket and users sign in through the user pool. `reply()` is the one
entry point; the local gateway calls it for paths no route of the template matches.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from scripts import demo, tokens

ROOT = Path(__file__).resolve().parent.parent
WEB_DIST = ROOT / "web" / "dist"
APP_PREFIX = "/app"
TOKEN_TTL = 8 * 3600
JSON = "application/json"
LOCAL_CONFIG = {"apiUrl": "", "auth": None}  # what the app reads from config.json on the local stack


@dataclass
class LocalReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json(status: int, payload: Any) -> LocalReply:
    return LocalReply(status, [("content-type", JSON), ("cache-control", "no-store")],
                      json.dumps(payload, separators=(",", ":")).encode())


def _error(status: int, code: str, message: str) -> LocalReply:
    """The service's error shape, so the app reads these failures as it reads the API's."""
    return _json(status, {"error": {"code": code, "message": message, "requestId": str(uuid.uuid4())}})


def reply(method: str, path: str, body: bytes, dist: Path = WEB_DIST) -> LocalReply | None:
    """The answer for a local-only path, or None when the path is not one of them."""
    if path == APP_PREFIX or path.startswith(APP_PREFIX + "/"):
        if method not in ("GET", "HEAD"):
            return _error(405, "METHOD_NOT_ALLOWED", "the app's files are read with GET")
        return static(path, dist)
    if path == "/local/demo-users":
        if method != "GET":
            return _error(405, "METHOD_NOT_ALLOWED", "use GET /local/demo-users")
        return _json(200, {"items": demo_users()})
    if path == "/local/token":
        if method != "POST":
            return _error(405, "METHOD_NOT_ALLOWED", 'use POST /local/token with {"userId": ...}')
        return token(body)
    return None


def static(path: str, dist: Path = WEB_DIST) -> LocalReply:
    """A file of the built app; index.html for any path that is not a file (the app's own routes)."""
    if path == APP_PREFIX:  # relative URLs (config.json) resolve against /app/, not /
        return LocalReply(308, [("location", APP_PREFIX + "/")], b"")
    index = dist / "index.html"
    if not index.is_file():
        return LocalReply(503, [("content-type", "text/plain; charset=utf-8")],
                          b"The web app is not built: run `make web` (npm ci and vite build in web/).\n")
    root = dist.resolve()
    wanted = (root / path[len(APP_PREFIX) + 1:]).resolve()
    if not wanted.is_relative_to(root):  # `..` in the path: nothing outside the build
        return _error(404, "NOT_FOUND", "no such file")
    if wanted.is_file():
        kind = mimetypes.guess_type(wanted.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
            kind += "; charset=utf-8"
        # Vite names assets by content hash: cache them for good; index.html never.
        cache = "public, max-age=31536000, immutable" if wanted.parent.name == "assets" else "no-cache"
        return LocalReply(200, [("content-type", kind), ("cache-control", cache)], wanted.read_bytes())
    if wanted.name == "config.json":  # none in a local build: the API is this origin, demo sign-in
        return _json(200, LOCAL_CONFIG)
    if wanted.suffix:  # a missing file (an asset): 404, not the page
        return _error(404, "NOT_FOUND", f"no file {path}")
    return LocalReply(200, [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-cache")],
                      index.read_bytes())


@lru_cache(maxsize=1)
def demo_users() -> list[dict[str, Any]]:
    """The demo's users for the sign-in page: who they are and their roles."""
    return [{"userId": str(u.id), "handle": u.handle, "login": f"{u.org}:{u.handle}",
             "organization": demo.ORGANIZATIONS[u.org][0],
             "name": u.name, "email": u.email, "roles": list(u.roles)} for u in demo.users()]


def token(body: bytes) -> LocalReply:
    """A user token for a demo user named by `userId` (their id or handle, e.g. `learner-01`)."""
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return _error(400, "VALIDATION_ERROR", 'the body must be JSON: {"userId": "<a demo user id>"}')
    ref = payload.get("userId") if isinstance(payload, dict) else None
    if not isinstance(ref, str) or not ref:
        return _error(400, "VALIDATION_ERROR", 'userId is required: {"userId": "<a demo user id>"}')
    user_id = str(tokens.resolve_user(ref))
    if user_id not in {u["userId"] for u in demo_users()}:
        return _error(404, "NOT_FOUND", "no demo user with that id: this sign-in is for the demo users only")
    return _json(200, {"token": tokens.user_token(user_id, TOKEN_TTL), "tokenType": "Bearer",
                       "expiresIn": TOKEN_TTL})
