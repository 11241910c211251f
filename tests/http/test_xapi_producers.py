"""Statements in the shapes Moodle's logstore_xapi and Open edX's event-routing-backends send
(tests/fixtures/xapi), over HTTP through the local gateway into analytics, sent the way each
producer sends them:

- Moodle: batches without statement ids; on a 400 it halves the batch and sends each half, down to
  single statements, and later re-sends failed batches whole. Nothing may count twice.
- Open edX: statements with ids derived from the event (the same event always has the same id);
  it re-sends freely and treats 409 as "already stored".

Then the learner's own analytics (GET /v1/analytics with their JWT) show what was sent.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import pytest

from local import stack, tokens
from tests.support.factories import Factory
from tests.support.gateway import gateway_process
from tests.support.jobs import refresh_pending
from tests.support.xapi import credential, email_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "xapi"
MOODLE_SITE = "https://moodle.acme.example"
OPENEDX_SITE = "https://lms.openedx.acme.example"


class Http:
    """One keep-alive connection to the gateway."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)

    def send(self, method: str, path: str, headers: dict[str, str], body: Any = None,
             query: dict[str, str] | None = None) -> tuple[int, Any]:
        data = json.dumps(body) if body is not None else None
        hdrs = {**headers, **({"Content-Type": "application/json"} if data else {})}
        self.conn.request(method, path + (f"?{urlencode(query)}" if query else ""), body=data, headers=hdrs)
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None


def fill(name: str, **values: str) -> list[dict[str, Any]]:
    """A fixture with its placeholders filled: {{email}}, {{site}}, {{user_id}}, {{time:H}} (H hours
    ago, in the sender's +01:00 offset), {{uuid:X}} (the producer's deterministic id of event X)."""
    text = (FIXTURES / name).read_text()
    now = datetime.now(UTC)

    def placeholder(found: re.Match[str]) -> str:
        key, _, arg = found.group(1).partition(":")
        if key == "time":
            at = (now - timedelta(hours=float(arg))).astimezone(timezone(timedelta(hours=1)))
            return at.isoformat()
        if key == "uuid":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{values['user_id']}/{arg}"))
        return values[key]

    return list(json.loads(re.sub(r"\{\{([^}]+)\}\}", placeholder, text)))


@pytest.fixture(scope="module")
def gateway(database: str, gateway_database_url: str) -> Iterator[Http]:
    """The gateway on the server itself, then through PgBouncer in transaction mode (conftest): a
    batch sends the actors' user lookup in pipeline mode, which must hold there too."""
    env = {**stack.function_env(None, db=database), "DATABASE_URL": gateway_database_url}
    with gateway_process(env, workers=1) as running:
        yield Http(running.url)


def xapi_headers(cred: tuple[str, str]) -> dict[str, str]:
    token = base64.b64encode(f"{cred[0]}:{cred[1]}".encode()).decode()
    return {"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"}


def analytics(gw: Http, user: UUID) -> dict[str, dict[str, Any]]:
    """The learner's snapshots once the every-minute refresh job has run (as the Scheduler would)."""
    refresh_pending()
    status, body = gw.send("GET", "/v1/analytics", {"Authorization": f"Bearer {tokens.user_token(user)}"})
    assert status == 200, body
    return {i["analyticsType"]: i["data"] for i in body["items"]}


def moodle_send(gw: Http, cred: tuple[str, str], batch: list[dict[str, Any]], log: list[int]) -> None:
    """logstore_xapi's way: POST the batch; on 400 send each half, down to single statements (a
    single statement refused is given up on)."""
    status, _ = gw.send("POST", "/xapi/statements", xapi_headers(cred), batch)
    log.append(status)
    if status == 400 and len(batch) > 1:
        half = len(batch) // 2
        moodle_send(gw, cred, batch[:half], log)
        moodle_send(gw, cred, batch[half:], log)
    else:
        assert status in (200, 400)


def test_moodle_batches_without_ids_count_once(gateway: Http, factory: Factory) -> None:
    org = factory.org("Acme", ada=["learner"])
    ada = org.users["ada"]
    cred = credential(factory, org.id, MOODLE_SITE)
    statements = fill("moodle_batch.json", email=email_of(factory, ada), site=MOODLE_SITE)
    assert all("id" not in st for st in statements)
    broken = {**statements[2], "result": {"duration": "ten minutes"}}  # one statement the LRS refuses
    log: list[int] = []
    moodle_send(gateway, cred, [*statements[:2], broken, statements[3]], log)
    assert log == [400, 200, 400, 400, 200]  # whole, first half, second half, the broken one alone, the last
    # Later the failed batch is re-sent whole (minus the broken statement, which Moodle drops).
    status, ids = gateway.send("POST", "/xapi/statements", xapi_headers(cred), statements)
    assert status == 200 and len(set(ids)) == 4
    status, ids_again = gateway.send("POST", "/xapi/statements", xapi_headers(cred), statements)
    assert status == 200 and ids_again == ids
    stored = factory.sql("SELECT count(*) FROM xapi_statements WHERE organization_id = %s", (org.id,))[0][0]
    events = factory.sql("SELECT verb, count(*) FROM learning_events WHERE user_id = %s GROUP BY verb "
                         "ORDER BY verb", (ada,))
    assert stored == 4
    assert events == [("activity", 1), ("answered", 1), ("completed", 2)]
    data = analytics(gateway, ada)
    assert data["learning_velocity"]["completions"] == 2  # the quiz and the course
    assert data["engagement"]["minutes"] == 10.0
    assert data["engagement"]["active_days"] >= 1
    # The statements read back as sent, with the properties the LRS adds.
    status, body = gateway.send("GET", "/xapi/statements", xapi_headers(cred), query={"statementId": ids[1]})
    assert status == 200 and body["result"]["score"]["scaled"] == 0.7 and body["id"] == ids[1]
    assert {"stored", "authority", "version"} <= set(body)


def test_openedx_deterministic_ids_and_409(gateway: Http, factory: Factory) -> None:
    org = factory.org("Acme edX", grace=["learner"])
    grace = org.users["grace"]
    cred = credential(factory, org.id, OPENEDX_SITE)
    statements = fill("openedx_batch.json", user_id=str(grace), site=OPENEDX_SITE)
    for st in statements:  # event-routing-backends sends one statement per request
        status, ids = gateway.send("POST", "/xapi/statements", xapi_headers(cred), [st])
        assert status == 200 and ids == [st["id"]]
    # The same events re-sent (a retry after a timeout): nothing changes.
    for st in statements:
        status, _ = gateway.send("POST", "/xapi/statements", xapi_headers(cred), [st])
        assert status == 200
    # An id reused with other content: 409, which the producer takes as "already stored".
    changed = {**statements[2], "verb": {"id": "http://adlnet.gov/expapi/verbs/failed", "display": {"en": "failed"}}}
    status, body = gateway.send("POST", "/xapi/statements", xapi_headers(cred), [changed])
    assert status == 409 and body["error"]["code"] == "STATEMENT_CONFLICT"
    events = factory.sql("SELECT verb, score FROM learning_events WHERE user_id = %s ORDER BY occurred_at", (grace,))
    assert events == [("attempted", 0.5), ("activity", None), ("passed", None)]
    data = analytics(gateway, grace)
    assert data["mastery"]["mastery"] == 0.5
    status, body = gateway.send("GET", "/v1/gamification", {"Authorization": f"Bearer {tokens.user_token(grace)}"})
    assert status == 200 and body["points"] == 20 + 5  # passed once, one active day
