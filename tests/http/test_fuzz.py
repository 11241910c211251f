"""Fuzzing the whole API: schemathesis generates requests for every operation of the committed
OpenAPI document (functions/get_openapi/openapi.json) and sends them over HTTP through the local
gateway (routing, the JWT authorizer, the real handlers) to a database holding the demo data, with
a valid token of each role: a learner, a trainer, an org admin, the ingest and the directory
platform services. Every response must be no 5xx and what the document says for that operation:
a documented status code, its content type, its headers and its body schema.

Per operation and role: schemathesis' coverage phase (boundary values, each parameter missing or
of the wrong type, the token left out, other methods on the path) and FUZZ_EXAMPLES generated
requests, valid and invalid, derandomized: CI sends the same requests on every run. `make fuzz`
runs this module with FUZZ_EXAMPLES=500.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from local import demo, demo_ids, gateway, stack, tokens
from local import s3 as local_s3
from tests.support.demo import demo_database
from tests.support.gateway import RunningGateway, gateway_process

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
BUCKET = "ms8-reports-fuzz"

schema = schemathesis.openapi.from_path(gateway.OPENAPI_FILE, config=schemathesis.Config.from_dict({
    "generation": {"max-examples": FUZZ_EXAMPLES, "deterministic": True},
}))

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]

ACME = demo_ids.org_id(demo_ids.ACME)


def _acme(handle: str) -> str:
    return str(demo_ids.user_id(demo_ids.ACME, handle))


# Who calls, and the headers they send besides the token (users' roles come from the database).
CALLERS: dict[str, dict[str, str]] = {
    "learner": {},  # learner-01, who holds one role
    "trainer": {"X-Active-Role": "trainer"},  # trainer-01: learner-01..12 assigned
    "org_admin": {"X-Active-Role": "org_admin"},  # ACME's admin
    "ingest": {},  # demo-ingest-acme, bound to ACME
    "directory": {"X-Organization-Id": str(ACME)},  # demo-directory, platform-wide: names the organization
}


@functools.cache
def _token(caller: str) -> str:
    if caller == "ingest":
        return tokens.service_token(demo_ids.INGEST_CLIENT, ["ingest"])
    if caller == "directory":
        return tokens.service_token(demo_ids.DIRECTORY_CLIENT, ["directory"])
    return tokens.user_token({"learner": demo_ids.LEARNER, "trainer": demo_ids.TRAINER,
                              "org_admin": demo_ids.ORG_ADMIN}[caller])


# Path parameters: besides the ids schemathesis generates (which exist nowhere: 404), ids of the
# demo data, so requests reach the rows and the code behind the 404. The callers are never among
# them (an erasure or a change of roles must not take a caller's identity away mid-run), and the
# users erased by DELETE /v1/users/{userId} are not the ones the other operations read.
KNOWN: dict[str, list[str]] = {
    "userId": [_acme("learner-02"), _acme("learner-13"), _acme("trainer-02"), str(demo_ids.OTHER_ORG_LEARNER)],
    "learnerId": [_acme("learner-03"), _acme("learner-14")],
    "trainerId": [str(demo_ids.TRAINER), _acme("trainer-02")],
    "orgId": [str(ACME), str(demo_ids.org_id(demo_ids.GLOBEX))],
    "skill": list(demo.SKILLS),
}
ERASABLE = [_acme(f"learner-{n}") for n in range(30, 37)] + [str(demo_ids.user_id(demo_ids.GLOBEX, "learner-05"))]


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any] | None) -> Any:
    """Each path parameter as generated, or an id of the demo data."""
    if not path_parameters:
        return st.just(path_parameters)
    erasing = context.operation is not None and context.operation.method.upper() == "DELETE"
    choices = {
        name: st.sampled_from([value, *(ERASABLE if erasing and name == "userId" else KNOWN.get(name, []))])
        for name, value in path_parameters.items()
    }
    return st.fixed_dictionaries(choices)


@pytest.fixture(scope="module")
def fuzz_db(database: str) -> Iterator[str]:
    """The demo in a database of its own beside the session's: the fuzzer writes, erases and
    reassigns, and the other tests' counts must not see it."""
    with demo_database(f"{database}_fuzz") as name:
        yield name


@pytest.fixture(scope="module")
def api(fuzz_db: str) -> Iterator[RunningGateway]:
    """The gateway (one worker: the requests come one at a time) with the functions' environment,
    and a local S3 (moto) for the reports."""
    store = local_s3.S3(port=0, data_dir=None)
    endpoint = store.start(BUCKET)
    try:
        env = {**stack.function_env(endpoint, db=fuzz_db), "REPORTS_BUCKET": BUCKET}
        with gateway_process(env, workers=1) as running:
            yield running
    finally:
        store.stop()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize("caller", list(CALLERS))
@schema.parametrize()
@settings(deadline=timedelta(seconds=10), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_every_operation_answers_as_documented(case: schemathesis.Case, caller: str, api: RunningGateway,
                                               session: requests.Session) -> None:
    headers = {"Authorization": f"Bearer {_token(caller)}", **CALLERS[caller]}
    response = case.call(base_url=api.url, session=session, headers=headers, timeout=30)
    if response.status_code >= 500:  # the function's traceback, beside schemathesis' report
        print(f"--- gateway log (tail) ---\n{api.log_tail()}")
    case.validate_response(response, checks=CHECKS, headers=headers)


# --- what the fuzzer found, pinned: each answered a 500 or an undocumented shape before its fix ----

DOCUMENT = json.loads(gateway.OPENAPI_FILE.read_text())


def _assert_documented(method: str, path: str, response: requests.Response) -> None:
    """The response's status is documented for the operation and its body has that schema."""
    responses = DOCUMENT["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in responses, (method, path, response.status_code)
    schema_ = responses[str(response.status_code)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema_, "components": DOCUMENT["components"]}).validate(response.json())


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/plain", b'{"items": [{"analyticsType": "mastery", "data": {}}]}'),
    ("multipart/form-data", b'{"items": [{"analyticsType": "mastery", "data": {}}]}'),  # and no boundary
], ids=["text", "multipart"])
def test_a_body_that_is_not_json_is_415_not_a_crash(api: RunningGateway, session: requests.Session,
                                                     content_type: str, body: bytes) -> None:
    response = session.put(f"{api.url}/v1/analytics", data=body, timeout=30, headers={
        "Authorization": f"Bearer {_token('learner')}", "Content-Type": content_type})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    _assert_documented("PUT", "/v1/analytics", response)


def test_a_json_body_that_is_not_utf8_is_422_not_a_crash(api: RunningGateway, session: requests.Session) -> None:
    response = session.post(f"{api.url}/v1/events", data=b'{"events": ["\xb1\xff"]}', timeout=30, headers={
        "Authorization": f"Bearer {_token('ingest')}", "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == {"code": "VALIDATION_ERROR", "message": "the request body must be UTF-8 JSON",
                                        "requestId": response.headers["apigw-requestid"]}
    _assert_documented("POST", "/v1/events", response)


def test_api_gateways_own_401_and_404_are_in_the_document(api: RunningGateway, session: requests.Session) -> None:
    response = session.get(f"{api.url}/v1/me", timeout=30)  # no token: the authorizer answers
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    _assert_documented("GET", "/v1/me", response)
    # A path parameter holding a `/` matches no route: API Gateway's 404, not the function's.
    response = session.get(f"{api.url}/v1/users/a/b/analytics", timeout=30,
                           headers={"Authorization": f"Bearer {_token('trainer')}", **CALLERS["trainer"]})
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})
    _assert_documented("GET", "/v1/users/{userId}/analytics", response)


@pytest.mark.parametrize(("caller", "items"), [
    # The same row twice once the omitted role is filled in: one statement cannot upsert it twice.
    ("trainer", [{"analyticsType": "engagement", "data": {}},
                 {"analyticsType": "engagement", "role": "trainer", "data": {}}]),
    ("ingest", [{"userId": _acme("learner-04"), "analyticsType": "mastery", "data": {}},
                {"userId": _acme("learner-04"), "role": "learner", "analyticsType": "mastery", "data": {}}]),
], ids=["user", "service"])
def test_a_batch_naming_one_row_twice_is_422_not_a_crash(api: RunningGateway, session: requests.Session,
                                                         caller: str, items: list[dict[str, Any]]) -> None:
    response = session.put(f"{api.url}/v1/analytics", json={"items": items}, timeout=30,
                           headers={"Authorization": f"Bearer {_token(caller)}", **CALLERS[caller]})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "items[1] repeats an earlier item's user, role and type"
    _assert_documented("PUT", "/v1/analytics", response)


@pytest.mark.parametrize("period", [
    {"from": "0001-01-01", "to": "0001-01-02"},  # the series looks 89 days further back
    {"from": "9999-12-20"},  # the default end is 29 days later
    {"to": "0001-01-05"},  # the default start is 29 days earlier
    {"from": "1999-12-31", "to": "2000-01-01"},
], ids=["year-1", "year-9999", "default-start", "before-2000"])
def test_a_report_period_out_of_range_is_422_not_a_crash(api: RunningGateway, session: requests.Session,
                                                         period: dict[str, str]) -> None:
    response = session.post(f"{api.url}/v1/reports", json={"format": "json", **period}, timeout=30,
                            headers={"Authorization": f"Bearer {_token('learner')}"})
    assert response.status_code == 422
    assert "between 2000-01-01 and 2999-12-31" in json.dumps(response.json()["error"]["details"])
    _assert_documented("POST", "/v1/reports", response)
