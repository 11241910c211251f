"""What API Gateway hands the functions, for the local gateway, invoke and tests: HTTP API v2
(payload format 2.0) events and the claims its JWT authorizer passes on."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from local.template import Route


def http_event(
    method: str,
    path: str,
    *,
    claims: dict[str, Any] | None,
    route: Route | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | bytes | None = None,
    request_id: str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An HTTP API v2 event as API Gateway sends it after its JWT authorizer accepted the token."""
    now = time.time()
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    is_base64 = isinstance(body, bytes)
    body_text = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    rid = request_id or str(uuid.uuid4())
    route_key = route.route_key if route else f"{method} {path}"
    authorizer = (
        {"jwt": {"claims": claims, "scopes": str(claims.get("scope", "")).split() or None}}
        if claims is not None else None
    )
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method, "path": path, "protocol": "HTTP/1.1",
                "sourceIp": source_ip, "userAgent": headers.get("user-agent", ""),
            },
            "requestId": rid,
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if authorizer:
        event["requestContext"]["authorizer"] = authorizer
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body_text is not None:
        event["body"] = body_text
    return event


def user_claims(sub: str, **extra: Any) -> dict[str, Any]:
    """The claims of a user's access token, as the authorizer passes them on."""
    now = int(time.time())
    return {"sub": sub, "token_use": "access", "iat": now, "exp": now + 3600, **extra}


def service_claims(client_id: str, scopes: list[str], prefix: str = "ms8/") -> dict[str, Any]:
    """The claims of a platform service's client-credentials token."""
    now = int(time.time())
    return {
        "sub": client_id, "client_id": client_id, "token_use": "access",
        "scope": " ".join(prefix + s for s in scopes), "iat": now, "exp": now + 3600,
    }


def json_body(response: dict[str, Any]) -> Any:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body) if body else None
