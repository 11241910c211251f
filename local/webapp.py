"""Local only: the demo sign-in the web app uses on the local stack, and its local config.json.

- `GET /local/demo-users`: the demo users the sign-in page lists.
- `POST /local/token` `{"userId": ...}`: a token for one of them, signed by the local issuer.
- `GET /app/config.json` when the build has none (a local build never has one): the API is this
  origin and sign-in is the demo sign-in above.

The gateway serves the built app itself (local/gateway.py, /app) and calls `reply()` first for
paths no route of the template matches. None of this is part of the API on AWS (not in
template.yaml): deployed, CloudFront serves the app from a private bucket with the config.json
`local.deploy_web` writes, and users sign in through the user pool.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from local import demo, tokens
from local.paths import WEB_DIST

CONFIG_PATH = "/app/config.json"
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
    if path == CONFIG_PATH and method in ("GET", "HEAD") and not (dist / "config.json").is_file():
        return _json(200, LOCAL_CONFIG)
    if path == "/local/demo-users":
        if method != "GET":
            return _error(405, "METHOD_NOT_ALLOWED", "use GET /local/demo-users")
        return _json(200, {"items": demo_users()})
    if path == "/local/token":
        if method != "POST":
            return _error(405, "METHOD_NOT_ALLOWED", 'use POST /local/token with {"userId": ...}')
        return token(body)
    return None


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
