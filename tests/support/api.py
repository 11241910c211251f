"""Calling API functions through their lambda_handler with HTTP API v2 events, as in production."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from local import apigw, runtime, template


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def error_code(self) -> str | None:
        return (self.body or {}).get("error", {}).get("code") if isinstance(self.body, dict) else None


def call(
    method: str,
    path: str,
    *,
    sub: UUID | str | None = None,
    role: str | None = None,
    claims: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """Route like API Gateway (template.yaml), then invoke that function's handler."""
    for route in template.routes():
        params = route.match(method, path)
        if params is not None:
            break
    else:
        raise AssertionError(f"no route in template.yaml for {method} {path}")
    hdrs = dict(headers or {})
    if role:
        hdrs["X-Active-Role"] = role
    if body is not None:
        hdrs.setdefault("content-type", "application/json")
    if claims is None and sub is not None:
        claims = apigw.user_claims(str(sub))
    event = apigw.http_event(
        method, path, claims=claims, route=route, path_parameters=params or None, query=query,
        headers=hdrs, body=raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
    )
    response = runtime.invoke(route.function, event)
    return Reply(response["statusCode"], apigw.json_body(response), response.get("headers") or {})
