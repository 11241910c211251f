"""HTTP glue shared by every API function: resolver set-up, identity, errors, the request tx.

A handler module is a few lines:

    app = make_app()

    @app.get("/v1/me")
    def me() -> Me:
        with user_tx(app) as (conn, caller):
            ...

    lambda_handler = handler(app)

Identity comes only from the JWT claims that API Gateway's authorizer verified
(`requestContext.authorizer.jwt.claims`): `sub` for a user; a platform service is recognised by
a service scope (`<SCOPE_PREFIX>ingest`, `<SCOPE_PREFIX>directory`) and identified by its
client id. Organization and roles always come from the database.
"""

from __future__ import annotations

import base64
import json
import os
import re
import warnings
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, LiteralString
from uuid import UUID

import psycopg
import pydantic
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ms8 import db
from ms8.errors import AppError, BadRequest, Forbidden, Unauthorized, Unprocessable

# Most requests publish no metric of their own; Powertools would warn about that on every one.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MS8LearningAnalytics"))

JSON = "application/json"
DEFAULT_MAX_BODY = 64 * 1024
SCOPE_PREFIX = os.environ.get("SCOPE_PREFIX", "ms8/")
SERVICE_SCOPES = ("ingest", "directory")
# Control characters other than horizontal tab (which RFC 9110 allows inside a field value).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)


def _error_json(code: str, message: str, request_id: str, details: Any = None) -> str:
    """The one error shape of the API (docs/ARCHITECTURE.md, errors)."""
    error: dict[str, Any] = {"code": code, "message": message, "requestId": request_id}
    if details is not None:
        error["details"] = details
    return _dumps({"error": error})


def error_body(status: int, code: str, message: str, request_id: str, details: Any = None) -> dict[str, Any]:
    """An error as a Lambda proxy response (for refusals made before the resolver runs)."""
    return {"statusCode": status, "headers": {"Content-Type": JSON},
            "body": _error_json(code, message, request_id, details)}


def _error_response(
    app: APIGatewayHttpResolver, status: int, code: str, message: str, details: Any = None
) -> Response[str]:
    return Response(status_code=status, content_type=JSON,
                    body=_error_json(code, message, request_id(app), details))


def request_id(app: APIGatewayHttpResolver) -> str:
    return app.current_event.request_context.request_id or ""


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    # Only where and what: the offending input is not echoed back.
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": err.get("type", "")}
        for err in errors
    ]


def first_problem(details: list[dict[str, Any]]) -> str:
    """The error message: where the first problem is and what it is (`items.0.data: Field
    required`), with how many more there are; the details list them all."""
    if not details:
        return "the request is not valid"
    first = details[0]
    where = [p for p in first["loc"] if p not in ("body", "query", "path", "header")]
    text = f"{'.'.join(where) or first['loc'][0] if first['loc'] else 'request'}: {first['msg']}"
    more = len(details) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _loads(text: str) -> Any:
    """Powertools' body parser, with a 4xx for the JSON that json.loads cannot take.

    Malformed JSON (JSONDecodeError) stays Powertools' 422 `json_invalid`. What would otherwise be
    a 500: nesting deeper than the interpreter's recursion limit (RecursionError), an integer of
    more digits than Python converts (ValueError), and the non-standard NaN / Infinity literals,
    which would reach the database as numbers JSON cannot carry. A float literal beyond double
    range (1e400) parses as inf, which every numeric field of the models refuses.
    """
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise Unprocessable("the request body is nested too deeply", code="BODY_TOO_DEEP") from None
    except ValueError as exc:  # int digits limit, or _no_constant
        raise Unprocessable(f"the request body holds an unacceptable number: {str(exc)[:120]}",
                            code="NUMBER_OUT_OF_RANGE") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _model_loads(model: type[pydantic.BaseModel]) -> Callable[[str], Any]:
    """A body parser that validates straight into `model` from the JSON text, in pydantic's own
    parser (no intermediate dicts). A body the model refuses is parsed as any other (_loads), so
    Powertools validates it and answers the same 422 (or _loads' own error) as without this."""

    def loads(text: str) -> Any:
        try:
            return model.model_validate_json(text)
        except pydantic.ValidationError:
            return _loads(text)

    return loads


def make_app(*, validation: bool = True, body: type[pydantic.BaseModel] | None = None) -> APIGatewayHttpResolver:
    """An HTTP API resolver with validation on (off for functions that read their raw body, as
    Powertools' validation parses every body as JSON) and the service's error mapping.

    `body`: the model of the app's request body, for a large body: it is validated once, from the
    JSON text, and Powertools' validation then takes the model as it is (the model must check
    itself in field validators, which a model instance does not run again, not in model
    validators, which it does)."""
    loads = _loads if body is None else _model_loads(body)
    app = APIGatewayHttpResolver(enable_validation=validation, serializer=_dumps, json_body_deserializer=loads)

    @app.exception_handler(AppError)  # type: ignore[untyped-decorator]
    def _app_error(exc: AppError) -> Response[str]:
        if exc.status >= 500:
            logger.warning("request failed", extra={"code": exc.code, "reason": exc.message})
        return _error_response(app, exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(exc: RequestValidationError) -> Response[str]:
        details = _validation_details(exc.errors())
        if any(d["loc"][:1] == ["response"] for d in details):
            logger.error("response failed its own schema", extra={"details": details})
            return _error_response(app, 500, "INTERNAL", "internal error")
        return _error_response(app, 422, "VALIDATION_ERROR", first_problem(details), details)

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(exc: Exception) -> Response[str]:
        if isinstance(exc, psycopg.OperationalError):
            return _error_response(app, 503, "DATABASE_UNAVAILABLE", "the database cannot be reached; try again")
        logger.exception("unhandled error")
        return _error_response(app, 500, "INTERNAL", "internal error")

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return _error_response(app, 404, "NOT_FOUND", "no such route")

    return app


def tracing_enabled() -> bool:
    """Powertools' own switch. Off, the X-Ray SDK is never imported: it costs ~150 ms of cold
    start (bench/bench_coldstart.py), while Lambda's active tracing still records each call."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() not in ("true", "1")


def handler(
    app: APIGatewayHttpResolver, *, max_body_bytes: int = DEFAULT_MAX_BODY, json_objects_only: bool = True
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point of an API function: logging context, metrics, size limit, routing,
    and Powertools Tracer subsegments when tracing is enabled for the function. A function that
    reads its body itself (xAPI: arrays, its own errors) turns `json_objects_only` off."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @metrics.log_metrics(capture_cold_start_metric=True, raise_on_empty_metrics=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        body = event.get("body") or ""
        if len(body) > max_body_bytes:
            rid = (event.get("requestContext") or {}).get("requestId", "")
            return error_body(
                413, "PAYLOAD_TOO_LARGE", f"the request body exceeds {max_body_bytes} bytes", rid
            )
        refused = _refuse_controls(event) or (_refuse_body(event) if body and json_objects_only else None)
        if refused is not None:
            rid = (event.get("requestContext") or {}).get("requestId", "")
            return error_body(*refused, rid)
        return app.resolve(event, context)

    if tracing_enabled():
        from aws_lambda_powertools import Tracer

        lambda_handler = Tracer().capture_lambda_handler(lambda_handler)
    return lambda_handler  # type: ignore[no-any-return]


def _refuse_controls(event: dict[str, Any]) -> tuple[int, str, str] | None:
    """(status, code, message) for a header or query parameter holding a control character.

    A NUL cannot travel as a database parameter (psycopg refuses it: a 500 otherwise) and no value
    this API reads has any other control character; refusing them here covers every header and
    parameter a handler may read.
    """
    for where, values in (("header", event.get("headers")), ("query parameter", event.get("queryStringParameters"))):
        for name, value in (values or {}).items():
            if _CONTROL.search(str(value)) or _CONTROL.search(str(name)):
                shown = _CONTROL.sub("?", str(name))[:60]
                return 400, "CONTROL_CHARACTER", f"the {where} {shown} contains a control character"
    return None


def _refuse_body(event: dict[str, Any]) -> tuple[int, str, str] | None:
    """(status, code, message) for a body this API never takes, before Powertools reads it.

    Every body of this API is a JSON object. Powertools fails with a 500 on a Content-Type it
    cannot read (text/plain, a multipart without a boundary) and on a base64-encoded body that is
    not UTF-8, and reads a JSON array as its first element: all refused here.
    """
    headers = event.get("headers") or {}
    ctype = next((str(v) for k, v in headers.items() if str(k).lower() == "content-type"), "").strip()
    if ctype and not ctype.startswith(JSON):  # what Powertools reads as JSON: no type, or application/json
        return 415, "UNSUPPORTED_MEDIA_TYPE", "the request body must be application/json"
    text = event["body"]
    if event.get("isBase64Encoded"):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except ValueError:  # not base64, or not UTF-8 (UnicodeDecodeError is a ValueError)
            return 422, "VALIDATION_ERROR", "the request body must be UTF-8 JSON"
    if str(text).lstrip()[:1] != "{":
        return 422, "VALIDATION_ERROR", "the request body must be a JSON object"
    return None


def _claims(app: APIGatewayHttpResolver) -> dict[str, Any]:
    authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    if not isinstance(claims, dict) or not claims.get("sub"):
        raise Unauthorized("no verified identity on the request")
    return claims


def _scopes(claims: dict[str, Any]) -> set[str]:
    raw = claims.get("scope") or claims.get("scp") or ""
    if isinstance(raw, list):
        parts = [str(s) for s in raw]
    else:
        parts = str(raw).strip("[]").replace(",", " ").split()
    return {p[len(SCOPE_PREFIX):] for p in parts if p.startswith(SCOPE_PREFIX)}


def _header(app: APIGatewayHttpResolver, name: str) -> str | None:
    value = app.current_event.headers.get(name)
    return value.strip() if value and value.strip() else None


@contextmanager
def user_tx(
    app: APIGatewayHttpResolver, roles: Collection[str] | None = None, database: db.Database | None = None
) -> Iterator[tuple[psycopg.Connection, db.UserCaller]]:
    """The request's transaction as the verified user in the role they asked for (if held).

    `roles` limits the route to those active roles (403 otherwise). `database` is the writer
    unless the route only reads and tolerates replica lag (ms8.db.reader()).
    """
    user_id, role = _user(app)
    with (database or db.runtime).transaction(db.as_user(user_id, role)) as (conn, caller):
        _check_role(caller, roles)
        yield conn, caller


def user_read(
    app: APIGatewayHttpResolver, function: LiteralString, args: tuple[object, ...] = (),
    roles: Collection[str] | None = None, database: db.Database | None = None,
) -> tuple[db.UserCaller, list[tuple[Any, ...]]]:
    """A read as the verified user in one statement and one round trip (ms8.db.read_as_user):
    the caller and the rows of the read function `function` (migration 0011).

    `database` is the writer unless the route tolerates replica lag (ms8.db.reader()).
    """
    user_id, role = _user(app)
    caller, rows = db.read_as_user(database or db.runtime, user_id, role, function, args)
    _check_role(caller, roles)
    return caller, rows


def _user(app: APIGatewayHttpResolver) -> tuple[UUID, str | None]:
    """The verified user id and the active role they ask for (X-Active-Role)."""
    claims = _claims(app)
    if _scopes(claims) & set(SERVICE_SCOPES):
        raise Forbidden("this route is for users, not platform services", code="USERS_ONLY")
    try:
        user_id = UUID(str(claims["sub"]))
    except ValueError:
        raise Unauthorized("the token's subject is not a user id") from None
    return user_id, _header(app, "x-active-role")


def _check_role(caller: db.UserCaller, roles: Collection[str] | None) -> None:
    if roles is not None and caller.active_role not in roles:
        raise Forbidden(f"this route needs one of the roles: {', '.join(sorted(roles))}", code="ROLE_NOT_ALLOWED")


@contextmanager
def principal_tx(
    app: APIGatewayHttpResolver, scope: str, roles: Collection[str] | None = None
) -> Iterator[tuple[psycopg.Connection, db.Caller]]:
    """A route open to users and to platform services holding `scope`."""
    if scope in _scopes(_claims(app)):
        with service_tx(app, scope) as (conn, service):
            yield conn, service
    else:
        with user_tx(app, roles) as (conn, user):
            yield conn, user


@contextmanager
def service_tx(app: APIGatewayHttpResolver, scope: str) -> Iterator[tuple[psycopg.Connection, db.ServiceCaller]]:
    """A route for platform services holding `scope` (e.g. the directory).

    A platform-wide service names the organization in `X-Organization-Id`; a service bound to an
    organization acts only there.
    """
    principal = service_principal(app, scope)
    if principal is None:
        raise Forbidden(f"this route needs a platform token with the {scope} scope", code="SCOPE_REQUIRED")
    client_id, org_id = principal
    with db.runtime.transaction(db.as_service(client_id, scope, org_id)) as pair:
        yield pair


def service_principal(app: APIGatewayHttpResolver, scope: str) -> tuple[str, UUID | None] | None:
    """(client id, the organization named in X-Organization-Id) of a platform service whose token
    holds `scope`; None for any other caller. For a route that sets the service's context inside
    a statement of its own instead of opening service_tx; the database checks the client, its
    scopes and the organization either way."""
    claims = _claims(app)
    if scope not in _scopes(claims):
        return None
    org_header = _header(app, "x-organization-id")
    try:
        org_id = UUID(org_header) if org_header else None
    except ValueError:
        raise BadRequest("X-Organization-Id is not a UUID") from None
    return str(claims.get("client_id") or claims["sub"]), org_id
