"""Generate the one OpenAPI 3.1 document of the API from the code of every function in template.yaml.

    python -m local.openapi          # write functions/get_openapi/openapi.json
    python -m local.openapi --check  # exit 1 when the committed file is stale
"""

from __future__ import annotations

import ast
import json
import sys
import warnings
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from local import demo_ids
from local.paths import OPENAPI_FILE, ROOT
from local.template import Route, routes

OUTPUT = OPENAPI_FILE

DESCRIPTION = """Learning analytics for a corporate learning platform.

Every request carries `Authorization: Bearer <JWT>`. `X-Active-Role` picks the role
(`learner`, `trainer`, `org_admin`); it may be omitted when the user holds exactly one and is
honoured only if the user holds it. A platform service not bound to one organization names the
organization it acts for in `X-Organization-Id`. Errors are JSON: `{"error": {"code", "message", "requestId"}}`.
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
        doc = json.loads(merge.get_openapi_json_schema())
    return _with_examples(_with_descriptions(_with_xapi(_with_error_responses(doc))))


# Every parameter of every operation is described; a new one must be added here (generate() fails).
PARAMETERS = {
    "userId": "A user's id (UUID)",
    "orgId": "An organization's id (UUID)",
    "reportId": "A report's id (UUID), as POST /v1/reports or GET /v1/reports returned it",
    "trainerId": "The trainer's user id (UUID)",
    "learnerId": "The learner's user id (UUID)",
    "skill": "A skill name, as learning events name it (e.g. `sql`)",
    "type": "Only this analytics type: `learning_velocity`, `engagement`, `mastery` or `skill_gap`",
    "limit": "At most this many items",
    "cursor": "The `nextCursor` of the previous page, as it was; omit for the first page",
    "granularity": "The period of each row: `daily`, `weekly` or `monthly`",
    "role": "Only rows of this role's analytics (`learner`, `trainer`, `org_admin`)",
    "from": "First day (YYYY-MM-DD), inclusive",
    "to": "Last day (YYYY-MM-DD), inclusive",
}
HEADERS: list[dict[str, Any]] = [
    {"name": "X-Active-Role", "in": "header", "required": False,
     "description": "The role to act in. Needed only when the user holds several; honoured only if the "
                    "user holds it (else 403 ROLE_NOT_HELD). Services: not used.",
     "schema": {"type": "string", "enum": ["learner", "trainer", "org_admin"]}},
    {"name": "X-Organization-Id", "in": "header", "required": False,
     "description": "A platform service not bound to one organization: the organization it acts for "
                    "(UUID). Users and bound services: not needed (a different one is refused).",
     "schema": {"type": "string", "format": "uuid"}},
]


def _docstring(route: Route) -> str:
    """The handler module's docstring without its `METHOD /path: ` lead, as one paragraph per blank line."""
    text = ast.get_docstring(ast.parse(route.function.module_path.read_text())) or ""
    text = text.removeprefix(f"{route.route_key}: ").strip()
    if not text:
        raise SystemExit(f"{route.function.module_path.relative_to(ROOT)} has no docstring to describe "
                         f"{route.route_key}")
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    return "\n\n".join(paragraphs)[:1].upper() + "\n\n".join(paragraphs)[1:]


def _with_descriptions(doc: dict[str, Any]) -> dict[str, Any]:
    """Each operation: its handler's docstring; each parameter: PARAMETERS; the two role headers on
    every operation behind the authorizer (routes with `Authorizer: NONE` carry no bearer token)."""
    by_key = {(r.method.lower(), r.path): r for r in routes()}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            route = by_key[(method, path)]
            operation.setdefault("description", _docstring(route))
            for parameter in operation.get("parameters", []):
                if not parameter.get("description"):
                    if parameter["name"] not in PARAMETERS:
                        raise SystemExit(f"describe the parameter {parameter['name']!r} of {route.route_key} "
                                         "in local/openapi.py PARAMETERS")
                    parameter["description"] = PARAMETERS[parameter["name"]]
            if route.authorized:
                names = {p["name"].lower() for p in operation.get("parameters", [])}
                operation["parameters"] = operation.get("parameters", []) + [
                    h for h in HEADERS if h["name"].lower() not in names]
            else:
                operation.setdefault("security", [])  # no bearer token (xAPI sets its own scheme)
    return doc


ACME = str(demo_ids.org_id(demo_ids.ACME))
LEARNER = str(demo_ids.LEARNER)
# Examples from the demo data (`make run`), so that Swagger UI's "Try it out" sends a request that works.
PROPERTY_EXAMPLES: dict[str, Any] = {
    "skills": ["sql", "python"],
    "skill": "sql",
    "email": "learner-01@acme.example",
    "name": "Ada Abara",
    "objectId": "sql-fundamentals",
    "objectType": "course",
    "verb": "completed",
    "timezone": "Europe/Berlin",
    "kpis": ["course completions", "assessment pass rate"],
    "valuePropositions": ["analysts fluent in SQL and Python"],
    "displayName": "Ada A.",
    "data": {"mastery": 0.72, "skills": {"sql": 0.81, "python": 0.63}},
}
REQUEST_EXAMPLES: dict[str, Any] = {
    "PUT /v1/analytics": {"items": [
        {"analyticsType": "engagement", "data": {"engagement": 0.6, "sessions": 4}},
        {"analyticsType": "mastery", "data": {"mastery": 0.72, "skills": {"sql": 0.81, "python": 0.63}}}]},
    "POST /v1/events": {"events": [
        {"eventId": "0f6b1c9e-3d2a-4e57-9a1b-7c5d2e8f4a10", "verb": "completed", "objectId": "sql-fundamentals",
         "objectType": "course", "skills": ["sql"], "occurredAt": "2026-11-20T09:30:00Z"},
        {"eventId": "6c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "verb": "passed", "objectId": "sql-quiz-3",
         "objectType": "assessment", "skills": ["sql"], "result": {"score": 0.85, "success": True},
         "occurredAt": "2026-11-20T10:05:00Z"}]},
    "POST /v1/reports": {"format": "pdf", "from": "2026-11-01", "to": "2026-11-30",
                         "types": ["engagement", "mastery"]},
    "PUT /v1/organizations/{orgId}": {"name": "Acme Corporation", "kpis": ["course completions"],
                                      "valuePropositions": ["analysts fluent in SQL and Python"], "version": 2},
    "PUT /v1/users/{userId}": {"organizationId": ACME, "email": "learner-01@acme.example", "name": "Ada Abara",
                               "roles": ["learner"], "timezone": "Europe/Berlin", "version": 2},
    "PUT /v1/users/{userId}/roles": {"roles": ["learner", "trainer"]},
    "PUT /v1/skill-targets/{skill}": {"targetLevel": 0.8},
}


def _with_examples(doc: dict[str, Any]) -> dict[str, Any]:
    """A real example for every request body and for the free-text properties (without one, Swagger
    UI fills a patterned string with random characters)."""
    for schema in doc.get("components", {}).get("schemas", {}).values():
        for name, prop in (schema.get("properties") or {}).items():
            if name in PROPERTY_EXAMPLES and "examples" not in prop:
                prop["examples"] = [PROPERTY_EXAMPLES[name]]
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            key = f"{method.upper()} {path}"
            if key not in REQUEST_EXAMPLES:
                raise SystemExit(f"give {key} a request example in local/openapi.py REQUEST_EXAMPLES")
            body["content"]["application/json"]["example"] = REQUEST_EXAMPLES[key]
    return doc


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
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run .venv/bin/python -m local.openapi", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
