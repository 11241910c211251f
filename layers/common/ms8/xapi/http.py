"""HTTP glue of the xAPI functions: Basic auth against the organization's credentials, the version
header on every request and response, JSON bodies that may be arrays, the `more` cursor.

The routes are declared with `Authorizer: NONE` (no JWT: learning platforms speak Basic auth);
the credential is verified here, in the request's own transaction (ms8.db.as_xapi).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import orjson
import psycopg
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from ms8 import db
from ms8.errors import BadRequest, Unauthorized
from ms8.http import handler
from ms8.services.xapi import XapiCaller
from ms8.xapi import credentials, multipart, statements
from ms8.xapi.validate import Invalid

VERSION = "1.0.3"
ACCEPTED_VERSION = re.compile(r"^1\.0(?:\.[0-3])?\Z")
VERSION_HEADER = "X-Experience-API-Version"
CONSISTENT_HEADER = "X-Experience-API-Consistent-Through"
MAX_BODY = 6 * 1024 * 1024  # Lambda's synchronous payload limit
REALM = 'Basic realm="xAPI"'


def header(app: APIGatewayHttpResolver, name: str) -> str | None:
    return app.current_event.headers.get(name.lower())


def params(app: APIGatewayHttpResolver) -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


def check_version(app: APIGatewayHttpResolver) -> None:
    value = (header(app, VERSION_HEADER) or "").strip()
    if not value:
        raise BadRequest(f"the {VERSION_HEADER} header is required", code="VERSION_REQUIRED")
    if not ACCEPTED_VERSION.match(value):
        raise BadRequest(f"xAPI version {value} is not supported (1.0.0 to 1.0.3)", code="VERSION_NOT_SUPPORTED")


def request_body(app: APIGatewayHttpResolver) -> tuple[Any, dict[str, multipart.Part]]:
    """The statements JSON of the request and the attachment parts sent with it: application/json
    (no parts) or multipart/mixed; 400 for anything else."""
    content_type = header(app, "content-type") or "application/json"
    kind = content_type.split(";")[0].strip().lower()
    event = app.current_event.raw_event
    raw = event.get("body") or ""
    if not raw:
        raise BadRequest("the request has no body", code="EMPTY_BODY")
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    if kind == "multipart/mixed":
        try:
            return multipart.parse(data, content_type)
        except Invalid as exc:
            raise BadRequest(str(exc), code="INVALID_MULTIPART") from None
    if kind != "application/json":
        raise BadRequest("the body must be application/json or multipart/mixed", code="UNSUPPORTED_CONTENT_TYPE")
    try:
        return orjson.loads(data), {}
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON", code="INVALID_JSON") from None


@contextmanager
def xapi_tx(app: APIGatewayHttpResolver) -> Iterator[tuple[psycopg.Connection, XapiCaller]]:
    """The request's transaction as the organization of a verified credential (401 otherwise)."""
    pair = credentials.parse_basic(header(app, "authorization"))
    if pair is None:
        raise Unauthorized("Basic authentication with an xAPI credential is required")
    key, secret = pair
    with db.runtime.transaction(db.as_xapi(key)) as (conn, (org, secret_hash, home_page)):
        if not credentials.verify(key, secret, secret_hash):
            raise Unauthorized("unknown credential or wrong secret", code="UNKNOWN_CREDENTIAL")
        yield conn, XapiCaller(key, org, home_page)


def consistent_through() -> dict[str, str]:
    """Every write is durable when answered: the store is consistent through now."""
    return {CONSISTENT_HEADER: statements.format_instant(datetime.now(UTC))}


def last_modified(at: datetime) -> dict[str, str]:
    return {"Last-Modified": format_datetime(at.astimezone(UTC), usegmt=True)}


def encode_more(query: dict[str, str], after: int) -> str:
    """The `more` IRL: the original query and where the next page starts, in one opaque parameter."""
    token = base64.urlsafe_b64encode(json.dumps([query, after]).encode()).decode().rstrip("=")
    return f"/xapi/statements?more={token}"


def decode_more(token: str) -> tuple[dict[str, str], int]:
    try:
        query, after = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(query, dict) or not isinstance(after, int):
            raise ValueError
        return {str(k): str(v) for k, v in query.items()}, after
    except ValueError:
        raise BadRequest("the more cursor is not valid", code="INVALID_PARAMETER") from None


def xapi_handler(
    app: APIGatewayHttpResolver,
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point of an xAPI function: ms8.http.handler (logging, metrics, body size)
    with the version checked first and set on every answer, errors included."""
    inner = handler(app, max_body_bytes=MAX_BODY, json_objects_only=False)

    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        result = inner(event, context)
        headers = result.setdefault("headers", {})
        headers[VERSION_HEADER] = VERSION
        headers.setdefault(CONSISTENT_HEADER, consistent_through()[CONSISTENT_HEADER])
        if result.get("statusCode") == 401:
            headers["WWW-Authenticate"] = REALM
        return result

    return lambda_handler

