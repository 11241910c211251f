"""The committed OpenAPI document is usable as it is read: every operation and parameter described,
the role headers declared, real examples that the schemas accept (Swagger UI's "Try it out")."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from local import template
from local.paths import OPENAPI_FILE

DOC = json.loads(OPENAPI_FILE.read_text())
OPERATIONS = [(f"{m.upper()} {p}", op) for p, item in DOC["paths"].items() for m, op in item.items()]
AUTHORIZED = {r.route_key for r in template.routes() if r.authorized}


@pytest.mark.parametrize(("key", "operation"), OPERATIONS, ids=[k for k, _ in OPERATIONS])
def test_every_operation_and_parameter_is_described(key: str, operation: dict[str, Any]) -> None:
    assert operation.get("summary") and len(operation.get("description", "")) > 20, key
    for parameter in operation.get("parameters", []):
        assert parameter.get("description"), (key, parameter["name"])


@pytest.mark.parametrize(("key", "operation"), OPERATIONS, ids=[k for k, _ in OPERATIONS])
def test_the_role_headers_are_declared_behind_the_authorizer(key: str, operation: dict[str, Any]) -> None:
    headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
    if key in AUTHORIZED:
        assert {"X-Active-Role", "X-Organization-Id"} <= headers, key
    else:  # no bearer token: nothing, or the route's own scheme (xAPI: Basic)
        assert all("bearerAuth" not in scheme for scheme in operation.get("security", [])), key
        assert "security" in operation, key


def _validator(ref: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": ref, "components": DOC["components"]},
                                           format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize(("key", "operation"), [(k, o) for k, o in OPERATIONS if "requestBody" in o],
                         ids=[k for k, o in OPERATIONS if "requestBody" in o])
def test_every_request_body_has_an_example_its_schema_accepts(key: str, operation: dict[str, Any]) -> None:
    content = operation["requestBody"]["content"]["application/json"]
    assert "example" in content, key
    errors = list(_validator(content["schema"]["$ref"]).iter_errors(content["example"]))
    assert not errors, [e.message for e in errors]


def test_patterned_and_free_form_properties_carry_examples() -> None:
    missing = []
    for name, schema in DOC["components"]["schemas"].items():
        for prop_name, prop in (schema.get("properties") or {}).items():
            text = json.dumps(prop)
            if ('"pattern"' in text or prop_name in ("data", "skills")) and "examples" not in prop:
                missing.append(f"{name}.{prop_name}")
    assert not missing
