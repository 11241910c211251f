"""Generate the one OpenAPI 3.1 document of the API from the code of every function in template.yaml.

    python -m scripts.openapi          # write functions/get_openapi/openapi.json
    python -m scripts.openapi --check  # exit 1 when the committed file is stale
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from scripts.apigw import ROOT, routes

OUTPUT = ROOT / "functions" / "get_openapi" / "openapi.json"

DESCRIPTION = """Learning analytics for a corporate learning platform.

Every request carries `Authorization: Bearer <JWT>`. `X-Active-Role` picks the role
(`learner`, `trainer`, `org_admin`); it may be omitted when the user holds exactly one and is
honoured only if the user holds it. Errors are JSON: `{"error": {"code", "message", "requestId"}}`.
Rows another user may not see answer 404, exactly as rows that do not exist. API Gateway itself
answers a missing or invalid token (401), a path no route matches (404) and a body over 10 MB
(413), before any function runs, as `{"message": ...}`.

The `/xapi` routes are the statements resource of an xAPI 1.0.3 learning record store for learning
platforms (Moodle, Open edX, authoring tools): HTTP Basic auth with an organization's xAPI
credential instead of a JWT, the `X-Experience-API-Version` header (1.0.0 to 1.0.3) on every request
and response, and the error codes of the xAPI specification (400 for an invalid statement or
parameter, 401, 404, 409 for a statement id stored with other content, 413). The document resources
(`/xapi/activities/state`, `/xapi/activities/profile`, `/xapi/agents/profile`), `/xapi/agents` and
`/xapi/activities` are not supported: they answer 501 `NOT_SUPPORTED`."""


def generate() -> dict[str, Any]:
    merge = OpenAPIMerge(
        title="MS8 Learning Analytics API",
        version="1.0.0",
        description=DESCRIPTION,
        security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
        security=[{"bearerAuth": []}],
        on_conflict="error",
    )
    for path in sorted({r.function.module_path for r in routes()}):
        merge.add_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a function that fails to load must fail the build
        return _with_xapi(_with_error_responses(json.loads(merge.get_openapi_json_schema())))


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "requestId"],
            "properties": {
                "code": {"type": "string", "examples": ["ROLE_NOT_HELD"]},
                "message": {"type": "string"},
                "requestId": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
ERRORS = {
    "400": "Bad input (e.g. several roles held and no X-Active-Role)",
    "401": "No token, or an invalid or expired one",
    "403": "Not allowed: a role not held, or a route not open to the active role",
    "404": "Not found, or not visible to the caller",
    "422": "Validation failed",
    "503": "The database or storage is unavailable; retry",
}
BODY_ERRORS = {"409": "Conflict with the current state", "413": "The request body is too large",
               "415": "The request body is not application/json"}
# API Gateway answers these itself, before any function runs, as `{"message": ...}`: 401 from the
# JWT authorizer (no token, or an invalid or expired one), 404 for a path or method no route
# matches (e.g. a path parameter holding a `/`), 413 for a body over the HTTP API's 10 MB.
GATEWAY_ANSWERS = ("401", "404", "413")
GATEWAY_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string", "examples": ["Unauthorized"]}},
    "description": "API Gateway's own answer (no function ran): `Unauthorized`, `Not Found`, "
                   "`Request Entity Too Large`",
}


def _with_error_responses(doc: dict[str, Any]) -> dict[str, Any]:
    """Describe the API's one error shape on every operation (in place of Powertools' default 422)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)  # Powertools' own shapes: never answered (ResponseValidationError's $ref dangled)
    schemas["ErrorResponse"] = ERROR_SCHEMA
    schemas["GatewayMessage"] = GATEWAY_SCHEMA
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    either = {"content": {"application/json": {"schema": {"anyOf": [
        {"$ref": "#/components/schemas/ErrorResponse"}, {"$ref": "#/components/schemas/GatewayMessage"}]}}}}
    for path_item in doc.get("paths", {}).values():
        for method, operation in path_item.items():
            codes = dict(ERRORS)
            if method in ("put", "post", "delete"):
                codes.update(BODY_ERRORS)
            responses = operation.setdefault("responses", {})
            for code, description in codes.items():
                if code in GATEWAY_ANSWERS:
                    responses[code] = {"description": f"{description} (or API Gateway's own answer)", **either}
                else:
                    responses[code] = {"description": description, **ref}
    return doc


XAPI_SCHEME = "xapiBasic"
XAPI_OPEN = ("/xapi/about",)  # no credential needed (the specification says so)
XAPI_ERRORS = {
    "400": "Invalid statement or parameter, or a missing or unsupported X-Experience-API-Version",
    "401": "No xAPI credential, an unknown or revoked one, or a wrong secret",
    "404": "No such statement (a voided one only by voidedStatementId)",
    "409": "A statement with this id is stored with other content",
    "413": "The request body is too large",
    "501": "Not supported by this LRS",
    "503": "The database is unavailable; retry",
}


def _with_xapi(doc: dict[str, Any]) -> dict[str, Any]:
    """The xAPI routes: Basic auth (none for /about and the resources not offered) and their own
    error codes, which the xAPI specification fixes (400 where the rest of the API says 422)."""
    doc["components"]["securitySchemes"][XAPI_SCHEME] = {
        "type": "http", "scheme": "basic",
        "description": "An organization's xAPI credential: key as user name, secret as password",
    }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for path, item in doc.get("paths", {}).items():
        if not path.startswith("/xapi/"):
            continue
        for operation in item.values():
            supported = path in XAPI_OPEN or path == "/xapi/statements"
            operation["security"] = [{XAPI_SCHEME: []}] if path == "/xapi/statements" else []
            responses = {k: v for k, v in operation.get("responses", {}).items() if k.startswith("2")}
            if not supported:
                responses = {}
            for code, description in XAPI_ERRORS.items():
                if path in XAPI_OPEN and code != "503":
                    continue
                if not supported and code not in ("400", "501"):
                    continue
                if supported and code == "501":
                    continue
                responses[code] = {"description": description, **error}
            operation["responses"] = responses
    return doc


def render() -> str:
    return json.dumps(generate(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run python -m scripts.openapi", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
