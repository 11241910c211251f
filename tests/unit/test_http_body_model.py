"""ms8.http.make_app(body=Model): the body validated once, straight from its JSON text, and every
body the model refuses answered exactly as by an app without it (no database: the routes here
only echo what they were given)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import Field, field_validator

from local import apigw
from local.runtime import LocalContext
from ms8.http import handler, make_app, service_principal
from ms8.schemas.base import ApiModel

CHECKS: list[int] = []


class Thing(ApiModel):
    value: float = Field(ge=0)
    tags: list[str] = Field(default_factory=list, max_length=3)


class Things(ApiModel):
    items: list[Thing] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _check(cls, items: list[Thing]) -> list[Thing]:
        CHECKS.append(len(items))
        if any(t.value > 100 for t in items):
            raise ValueError("items: a value above 100")
        return items


def _lambda(body_model: bool) -> Any:
    app = make_app(body=Things) if body_model else make_app()

    @app.put("/things")
    def put(things: Things) -> dict[str, Any]:
        return {"type": type(things).__name__, "values": [t.value for t in things.items]}

    @app.get("/who")
    def who() -> dict[str, Any]:
        found = service_principal(app, "ingest")
        return {"principal": list(map(str, found)) if found else None}

    return handler(app)


def _call(fn: Any, body: str, path: str = "/things", method: str = "PUT", **kwargs: Any) -> tuple[int, Any]:
    event = apigw.http_event(method, path, claims=kwargs.pop("claims", apigw.user_claims("u")),
                             headers={"content-type": "application/json", **kwargs.pop("headers", {})},
                             body=body or None, request_id="rid")
    response = fn(event, LocalContext("test", "rid"))
    return response["statusCode"], json.loads(response["body"])


def test_a_valid_body_is_validated_once_into_the_model() -> None:
    fn = _lambda(body_model=True)
    CHECKS.clear()
    status, body = _call(fn, '{"items": [{"value": 1.5}, {"value": 2, "tags": ["a"]}]}')
    assert (status, body) == (200, {"type": "Things", "values": [1.5, 2.0]})
    assert CHECKS == [2]


@pytest.mark.parametrize("text", [
    '{"items": []}', '{"items": [{"value": -1}]}', '{"items": [{"value": 101}]}', '{"items": [{"value": "x"}]}',
    '{"items": [{"value": 1, "extra": 1}]}', '{"items": [{"value": NaN}]}', '{"items": [{"value": 1e400}]}',
    '{"items": [{"value": ' + "9" * 5000 + "}]}", '{"items": ' + "[" * 5000 + "]" * 5000 + "}", "{not json",
    '{"items": [{"value": 1, "tags": ["a", "b", "c", "d"]}]}', '{"items": [{"value": 1}], "items2": 1}',
    '{"items": [{"value": 1, "tags": ["\\ud800"]}], "x": 1}',
])
def test_a_refused_body_answers_as_without_the_model(text: str) -> None:
    with_model, without = _call(_lambda(body_model=True), text), _call(_lambda(body_model=False), text)
    assert 400 <= with_model[0] < 500
    assert with_model == without


def test_service_principal_names_the_client_and_organization_or_none() -> None:
    fn = _lambda(body_model=False)
    org = "7d4c3e1a-0000-4000-8000-000000000001"
    claims = apigw.service_claims("svc", ["ingest"])
    assert _call(fn, "", "/who", "GET", claims=claims) == (200, {"principal": ["svc", "None"]})
    assert _call(fn, "", "/who", "GET", claims=claims, headers={"X-Organization-Id": org}) == (
        200, {"principal": ["svc", org]})
    status, body = _call(fn, "", "/who", "GET", claims=claims, headers={"X-Organization-Id": "nope"})
    assert (status, body["error"]["code"]) == (400, "BAD_REQUEST")
    assert _call(fn, "", "/who", "GET", claims=apigw.service_claims("svc", ["directory"])) == (200, {"principal": None})
    assert _call(fn, "", "/who", "GET") == (200, {"principal": None})  # a user
